// Defaults and validation in one place: raw option strings (from flags, or from a config file already
// checked for shape) in, a frozen Config out. Every message names the flag or field that was wrong.
import type { RestartPolicy } from './backoff.js';
import { formatSpan, parseSpan } from './duration.js';
import { UsageError } from './errors.js';
import {
  parseBodyPattern,
  parseHeaderAssertion,
  parseJsonAssertion,
  parseRequestHeader,
  parseStatusList,
  type JsonAssertion,
  type RequestHeader,
  type StatusRange,
} from './http-assertions.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';
export type NotifierChoice = 'auto' | 'native' | 'systemd-notify';
/** readiness gates READY=1; liveness kills and decides the watchdog; both does both. */
export type ProbeRole = 'readiness' | 'liveness' | 'both';
export type UnhealthyAction = 'kill' | 'watchdog';

export type HttpMethod = 'GET' | 'HEAD';

export interface HttpTarget {
  kind: 'http';
  url: string;
  method: HttpMethod;
  /** Sent with every request; a credential's value never reaches a message (isSecretHeader). */
  requestHeaders: RequestHeader[];
  statuses: StatusRange[];
  headers: Array<{ name: string; value: string }>;
  body: RegExp | undefined;
  json: JsonAssertion[];
  followRedirects: boolean;
}
export type ProbeTarget =
  | HttpTarget
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'exec'; command: string }
  | { kind: 'ws'; url: string; send: string | undefined; expect: RegExp | undefined };

export interface ProbeConfig {
  readonly role: ProbeRole;
  readonly target: ProbeTarget;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Whether the user gave the interval / timeout: under WatchdogSec=, sdwrap changes its own defaults first. */
  readonly intervalSet: boolean;
  readonly timeoutSet: boolean;
  readonly failureThreshold: number;
  readonly successThreshold: number;
}

export interface LogWatchConfig {
  readonly pattern: RegExp;
  readonly max: number;
  readonly windowMs: number;
}

export interface Config {
  readonly command: string;
  readonly args: readonly string[];
  /** Empty: the child counts as healthy once spawned. */
  readonly probes: readonly ProbeConfig[];
  /** The start period is one for the whole app: failures inside it do not count, and an app not
   * ready by its end is unhealthy. */
  readonly startPeriodMs: number;
  readonly stopTimeoutMs: number;
  readonly onUnhealthy: UnhealthyAction;
  readonly watchLog: LogWatchConfig | undefined;
  readonly heartbeatUrl: string | undefined;
  readonly heartbeatEveryMs: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly notifier: NotifierChoice;
  /** --no-systemd: notify nothing; restart the child here by `restart`. */
  readonly noSystemd: boolean;
  /** Set only with --no-systemd: under systemd, Restart= restarts the unit. */
  readonly restart: RestartPolicy | undefined;
  /** --control-socket as given; without it, $RUNTIME_DIRECTORY decides (control-protocol.ts). */
  readonly controlSocket: string | undefined;
  /** --metrics: where to serve Prometheus metrics; none without the flag. */
  readonly metrics: ListenAddress | undefined;
  /** --pid-file: the command may fork and exit 0; the process the file names is then the app. */
  readonly pidFile: string | undefined;
  /** How long the pid file is awaited: the start period, or --timeout when there is none. */
  readonly pidFileWaitMs: number;
  /** --notify-passthrough: the app gets a NOTIFY_SOCKET of its own; its READY and WATCHDOG are ANDed with the probes. */
  readonly notifyPassthrough: boolean;
}

/** A TCP address to listen on; `flag` names it in messages (bind errors come later, at start). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  readonly flag: string;
}

/** Every default sdwrap has. */
export const DEFAULTS = {
  interval: '10s',
  timeout: '2s',
  failureThreshold: '3',
  successThreshold: '1',
  startPeriod: '0',
  stopTimeout: '10s',
  httpStatus: '200-399',
  onUnhealthy: 'kill',
  watchLogMax: '10',
  watchLogWindow: '1min',
  heartbeatEvery: '1min',
  logLevel: 'info',
  notifier: 'auto',
  restart: 'on-failure',
  restartDelay: '1s',
  restartMaxDelay: '1min',
  maxRestarts: '5',
  restartWindow: '5min',
  restartReset: '1min',
} as const;

/** A probe as written in a config file or a --probe flag, before its values are checked. */
export interface RawProbe {
  /** Where it came from, for messages: "--probe", "--config app.json: probes[2]". */
  source: string;
  /** For a probe from a config file: how a message names one of its fields ("--config app.json:9:7: probes[2].interval"). */
  where?: (field: string) => string;
  role?: string;
  kind: ProbeTarget['kind'];
  target: string;
  http?: {
    method?: string;
    requestHeaders?: string[];
    status?: string;
    headers?: string[];
    body?: string;
    json?: string[];
    followRedirects?: boolean;
  };
  ws?: { send?: string; expect?: string };
  interval?: string;
  timeout?: string;
  failureThreshold?: string;
  successThreshold?: string;
}

/** Options as the command line (or a config file, turned to the same strings) gives them. */
export interface RawOptions {
  http?: string;
  tcp?: string;
  exec?: string;
  ws?: string;
  probe?: string[];
  /** From a config file: probes with their own settings. */
  probes?: RawProbe[];
  httpMethod?: string;
  httpRequestHeader?: string[];
  httpStatus?: string;
  httpHeader?: string[];
  httpBody?: string;
  httpJson?: string[];
  httpFollowRedirects?: boolean;
  wsSend?: string;
  wsExpect?: string;
  interval?: string;
  timeout?: string;
  failureThreshold?: string;
  successThreshold?: string;
  startPeriod?: string;
  stopTimeout?: string;
  onUnhealthy?: string;
  watchLog?: string;
  watchLogMax?: string;
  watchLogWindow?: string;
  heartbeatUrl?: string;
  heartbeatEvery?: string;
  logLevel?: string;
  logFormat?: string;
  notifier?: string;
  /** commander turns --no-systemd into systemd: false. */
  systemd?: boolean;
  restart?: string;
  restartDelay?: string;
  restartMaxDelay?: string;
  maxRestarts?: string;
  restartWindow?: string;
  restartReset?: string;
  controlSocket?: string;
  metrics?: string;
  pidFile?: string;
  notifyPassthrough?: boolean;
  config?: string;
  /** Options that came from the config file: how messages name them ("--config app.json:3:5: interval"). */
  fileNames?: Partial<Record<keyof RawOptions, string>>;
}

const RESTART_FLAGS = {
  restart: '--restart',
  restartDelay: '--restart-delay',
  restartMaxDelay: '--restart-max-delay',
  maxRestarts: '--max-restarts',
  restartWindow: '--restart-window',
  restartReset: '--restart-reset',
} as const;

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];
const NOTIFIERS: readonly NotifierChoice[] = ['auto', 'native', 'systemd-notify'];
const RESTART_MODES: readonly RestartPolicy['mode'][] = ['on-failure', 'always'];
const ROLES: readonly ProbeRole[] = ['readiness', 'liveness', 'both'];
const PROBE_KINDS: readonly ProbeTarget['kind'][] = ['http', 'tcp', 'exec', 'ws'];
const HTTP_METHODS: readonly HttpMethod[] = ['GET', 'HEAD'];
const UNHEALTHY_ACTIONS: readonly UnhealthyAction[] = ['kill', 'watchdog'];

/**
 * Checks raw options and the command; throws UsageError naming the first bad one. `sdwrap probe` runs
 * without a command ({ command: 'optional' }: the command is then '').
 */
export function buildConfig(
  raw: RawOptions,
  argv: readonly string[],
  isTTY: boolean,
  { command: need = 'required' }: { command?: 'required' | 'optional' } = {},
): Config {
  const [command = '', ...args] = argv;
  if (command === '' && need === 'required') {
    throw new UsageError('missing the command to run: sdwrap [options] -- <command> [args...]');
  }
  // Probe defaults are checked even with no probe to use them: a bad value is a mistake either way.
  if (raw.interval !== undefined) validateSpan(label(raw, 'interval', '--interval'), raw.interval, { min: 1 });
  if (raw.timeout !== undefined) validateSpan(label(raw, 'timeout', '--timeout'), raw.timeout, { min: 1 });
  if (raw.failureThreshold !== undefined) validateCount(label(raw, 'failureThreshold', '--failure-threshold'), raw.failureThreshold);
  if (raw.successThreshold !== undefined) validateCount(label(raw, 'successThreshold', '--success-threshold'), raw.successThreshold);
  const probes = normalizeProbes(raw);
  if (raw.onUnhealthy !== undefined && raw.systemd === false && raw.onUnhealthy !== 'kill') {
    throw new UsageError(`--on-unhealthy ${raw.onUnhealthy} needs systemd: with --no-systemd, sdwrap kills and restarts the app itself`);
  }
  return Object.freeze({
    command,
    args: Object.freeze(args),
    probes: Object.freeze(probes),
    startPeriodMs: validateSpan(label(raw, 'startPeriod', '--start-period'), raw.startPeriod ?? DEFAULTS.startPeriod, { min: 0 }),
    stopTimeoutMs: validateSpan(label(raw, 'stopTimeout', '--stop-timeout'), raw.stopTimeout ?? DEFAULTS.stopTimeout, { min: 0 }),
    onUnhealthy: validateChoice(label(raw, 'onUnhealthy', '--on-unhealthy'), raw.onUnhealthy ?? DEFAULTS.onUnhealthy, UNHEALTHY_ACTIONS),
    watchLog: normalizeWatchLog(raw),
    heartbeatUrl:
      raw.heartbeatUrl === undefined
        ? undefined
        : validateHttpUrl(label(raw, 'heartbeatUrl', '--heartbeat-url'), raw.heartbeatUrl, { secret: true }),
    heartbeatEveryMs: validateSpan(label(raw, 'heartbeatEvery', '--heartbeat-every'), raw.heartbeatEvery ?? DEFAULTS.heartbeatEvery, {
      min: 1000,
    }),
    logLevel: validateChoice(label(raw, 'logLevel', '--log-level'), raw.logLevel ?? DEFAULTS.logLevel, LOG_LEVELS),
    logFormat: validateChoice(label(raw, 'logFormat', '--log-format'), raw.logFormat ?? (isTTY ? 'pretty' : 'json'), LOG_FORMATS),
    notifier: validateChoice(label(raw, 'notifier', '--notifier'), raw.notifier ?? DEFAULTS.notifier, NOTIFIERS),
    noSystemd: raw.systemd === false,
    restart: normalizeRestart(raw),
    controlSocket: raw.controlSocket,
    metrics: raw.metrics === undefined ? undefined : validateListenAddress(label(raw, 'metrics', '--metrics'), raw.metrics),
    pidFile: normalizePidFile(raw),
    pidFileWaitMs:
      validateSpan(label(raw, 'startPeriod', '--start-period'), raw.startPeriod ?? DEFAULTS.startPeriod, { min: 0 }) ||
      validateSpan(label(raw, 'timeout', '--timeout'), raw.timeout ?? DEFAULTS.timeout, { min: 1 }),
    notifyPassthrough: raw.notifyPassthrough === true,
  });
}

/** --pid-file: a path; relative paths are taken from the working directory, as the app's own would be. */
function normalizePidFile(raw: RawOptions): string | undefined {
  if (raw.pidFile === undefined) return undefined;
  if (raw.pidFile.trim() === '' || raw.pidFile.endsWith('/')) {
    throw new UsageError(
      `${label(raw, 'pidFile', '--pid-file')} expects the path of the file the daemon writes its pid to, got '${raw.pidFile}'`,
    );
  }
  return raw.pidFile;
}

/** Probes from the single-kind flags (role both), from --probe, and from a config file, in that order. */
function normalizeProbes(raw: RawOptions): ProbeConfig[] {
  const fromFlags: RawProbe[] = [];
  for (const kind of PROBE_KINDS) {
    const target = raw[kind];
    if (target !== undefined)
      fromFlags.push({ source: `--${kind}`, role: 'both', kind, target: validateFlagValue(`--${kind}`, target, raw) });
  }
  for (const text of raw.probe ?? []) fromFlags.push(parseProbeFlag(validateFlagValue('--probe', text, raw)));
  // Assertion flags apply to every probe of their kind given on the command line.
  for (const probe of fromFlags) {
    if (probe.kind === 'http') {
      probe.http = {
        method: raw.httpMethod,
        requestHeaders: raw.httpRequestHeader,
        status: raw.httpStatus,
        headers: raw.httpHeader,
        body: raw.httpBody,
        json: raw.httpJson,
        followRedirects: raw.httpFollowRedirects,
      };
    }
    if (probe.kind === 'ws') probe.ws = { send: raw.wsSend, expect: raw.wsExpect };
  }
  const all = [...fromFlags, ...(raw.probes ?? [])];
  const httpFlags =
    raw.httpMethod ??
    raw.httpRequestHeader?.[0] ??
    raw.httpStatus ??
    raw.httpBody ??
    raw.httpHeader?.[0] ??
    raw.httpJson?.[0] ??
    raw.httpFollowRedirects;
  if (httpFlags !== undefined && !fromFlags.some((p) => p.kind === 'http')) {
    throw new UsageError(
      '--http-method, --http-request-header, --http-status, --http-header, --http-body, --http-json and --http-follow-redirects need an HTTP probe (--http or --probe ROLE:http:URL)',
    );
  }
  if ((raw.wsSend ?? raw.wsExpect) !== undefined && !fromFlags.some((p) => p.kind === 'ws')) {
    throw new UsageError('--ws-send and --ws-expect need a WebSocket probe (--ws or --probe ROLE:ws:URL)');
  }
  return all.map((probe) => normalizeProbe(probe, raw));
}

const VALUE_EXAMPLE: Record<string, string> = {
  '--http': '--http http://127.0.0.1:8080/healthz',
  '--tcp': '--tcp 127.0.0.1:5432',
  '--exec': "--exec 'pg_isready -q'",
  '--ws': '--ws ws://127.0.0.1:8080/ws',
  '--probe': "--probe 'readiness:exec:pg_isready -q'",
};

/** A probe flag whose value is `--` or another option took the wrong word: `--exec -- sleep 1`. */
function validateFlagValue(flag: string, value: string, raw: RawOptions): string {
  if (raw.fileNames?.[flag.slice(2) as keyof RawOptions] === undefined && (value === '--' || /^--?[a-z]/i.test(value))) {
    throw new UsageError(
      `${flag} took '${value}' as its value: give the probe's target right after the flag, as one argument (quote a command with spaces), e.g. ${VALUE_EXAMPLE[flag]}`,
    );
  }
  return value;
}

/** `--probe ROLE:KIND:TARGET`, e.g. `liveness:http:http://127.0.0.1:8080/healthz` or `readiness:exec:pg_isready -q`. */
export function parseProbeFlag(text: string): RawProbe {
  const m = /^([a-z]+):([a-z]+):(.+)$/s.exec(text);
  if (!m) throw new UsageError(`--probe expects ROLE:KIND:TARGET (e.g. liveness:http:http://127.0.0.1:8080/healthz), got '${text}'`);
  const kind = validateChoice('--probe kind', m[2]!, PROBE_KINDS);
  return { source: '--probe', role: m[1], kind, target: m[3]! };
}

/** How a message names a probe's setting: the flag for command-line probes, the path in the file for the others. */
function settingName(probe: RawProbe, flag: string, field: string): string {
  if (probe.where) return probe.where(field);
  return probe.source.startsWith('--') ? flag : `${probe.source}.${field}`;
}

/** How a message names a top-level setting: its flag, or where it stands in the config file. */
function label(raw: RawOptions, key: keyof RawOptions, flag: string): string {
  return raw.fileNames?.[key] ?? flag;
}

function normalizeProbe(probe: RawProbe, raw: RawOptions): ProbeConfig {
  const name = (flag: string, field: keyof RawOptions & keyof RawProbe) =>
    probe.where || !probe.source.startsWith('--') ? settingName(probe, flag, field) : label(raw, field, flag);
  return Object.freeze({
    role: validateChoice(settingName(probe, `${probe.source} role`, 'role'), probe.role ?? 'both', ROLES),
    target: normalizeTarget(probe),
    intervalMs: validateSpan(name('--interval', 'interval'), probe.interval ?? raw.interval ?? DEFAULTS.interval, { min: 1 }),
    timeoutMs: validateSpan(name('--timeout', 'timeout'), probe.timeout ?? raw.timeout ?? DEFAULTS.timeout, { min: 1 }),
    intervalSet: (probe.interval ?? raw.interval) !== undefined,
    timeoutSet: (probe.timeout ?? raw.timeout) !== undefined,
    failureThreshold: validateCount(
      name('--failure-threshold', 'failureThreshold'),
      probe.failureThreshold ?? raw.failureThreshold ?? DEFAULTS.failureThreshold,
    ),
    successThreshold: validateCount(
      name('--success-threshold', 'successThreshold'),
      probe.successThreshold ?? raw.successThreshold ?? DEFAULTS.successThreshold,
    ),
  });
}

function normalizeTarget(probe: RawProbe): ProbeTarget {
  const name = settingName(probe, probe.source, probe.kind);
  const flag = (cli: string, field: string) => settingName(probe, cli, `${probe.kind}.${field}`);
  switch (probe.kind) {
    case 'http': {
      const http = probe.http ?? {};
      const method = validateChoice(flag('--http-method', 'method'), (http.method ?? 'GET').toUpperCase(), HTTP_METHODS);
      if (method === 'HEAD' && (http.body !== undefined || (http.json ?? []).length > 0)) {
        throw new UsageError(
          `${flag('--http-method', 'method')} HEAD gets no body: drop ${flag('--http-body', 'body')} and ${flag('--http-json', 'json')}, or use GET`,
        );
      }
      return {
        kind: 'http',
        url: validateHttpUrl(name, probe.target),
        method,
        requestHeaders: (http.requestHeaders ?? []).map((h) => parseRequestHeader(h, flag('--http-request-header', 'requestHeaders'))),
        statuses: parseStatusList(http.status ?? DEFAULTS.httpStatus, flag('--http-status', 'status')),
        headers: (http.headers ?? []).map((h) => parseHeaderAssertion(h, flag('--http-header', 'headers'))),
        body: http.body === undefined ? undefined : parseBodyPattern(http.body, flag('--http-body', 'body')),
        json: (http.json ?? []).map((j) => parseJsonAssertion(j, flag('--http-json', 'json'))),
        followRedirects: http.followRedirects ?? false,
      };
    }
    case 'tcp':
      return { kind: 'tcp', ...validateHostPort(name, probe.target) };
    case 'exec':
      if (probe.target.trim() === '') throw new UsageError(`${name} expects a shell command, got an empty string`);
      return { kind: 'exec', command: probe.target };
    case 'ws':
      return {
        kind: 'ws',
        url: validateWsUrl(name, probe.target),
        send: probe.ws?.send,
        expect: probe.ws?.expect === undefined ? undefined : validateRegex(flag('--ws-expect', 'expect'), probe.ws.expect),
      };
  }
}

function normalizeWatchLog(raw: RawOptions): LogWatchConfig | undefined {
  if (raw.watchLog === undefined) {
    if (raw.watchLogMax !== undefined || raw.watchLogWindow !== undefined) {
      throw new UsageError('--watch-log-max and --watch-log-window need --watch-log <regex>');
    }
    return undefined;
  }
  const max = raw.watchLogMax ?? DEFAULTS.watchLogMax;
  if (!/^\d+$/.test(max.trim()))
    throw new UsageError(`${label(raw, 'watchLogMax', '--watch-log-max')} expects a whole number, got '${max}'`);
  return Object.freeze({
    pattern: validateRegex(label(raw, 'watchLog', '--watch-log'), raw.watchLog),
    max: Number(max),
    windowMs: validateSpan(label(raw, 'watchLogWindow', '--watch-log-window'), raw.watchLogWindow ?? DEFAULTS.watchLogWindow, { min: 1 }),
  });
}

function normalizeRestart(raw: RawOptions): RestartPolicy | undefined {
  if (raw.systemd !== false) {
    const given = (Object.keys(RESTART_FLAGS) as Array<keyof typeof RESTART_FLAGS>).find((k) => raw[k] !== undefined);
    if (given) throw new UsageError(`${RESTART_FLAGS[given]} needs --no-systemd: under systemd, the unit's Restart= restarts the app`);
    return undefined;
  }
  const initialDelayMs = validateSpan(label(raw, 'restartDelay', '--restart-delay'), raw.restartDelay ?? DEFAULTS.restartDelay, { min: 0 });
  const maxDelayMs = validateSpan(label(raw, 'restartMaxDelay', '--restart-max-delay'), raw.restartMaxDelay ?? DEFAULTS.restartMaxDelay, {
    min: 0,
  });
  if (maxDelayMs < initialDelayMs) {
    throw new UsageError(
      `--restart-max-delay (${formatSpan(maxDelayMs)}) must not be shorter than --restart-delay (${formatSpan(initialDelayMs)})`,
    );
  }
  const maxRestarts = raw.maxRestarts ?? DEFAULTS.maxRestarts;
  if (!/^\d+$/.test(maxRestarts.trim()))
    throw new UsageError(`${label(raw, 'maxRestarts', '--max-restarts')} expects a whole number (0 never restarts), got '${maxRestarts}'`);
  return Object.freeze({
    mode: validateChoice(label(raw, 'restart', '--restart'), raw.restart ?? DEFAULTS.restart, RESTART_MODES),
    initialDelayMs,
    maxDelayMs,
    maxRestarts: Number(maxRestarts),
    windowMs: validateSpan(label(raw, 'restartWindow', '--restart-window'), raw.restartWindow ?? DEFAULTS.restartWindow, { min: 1 }),
    resetAfterMs: validateSpan(label(raw, 'restartReset', '--restart-reset'), raw.restartReset ?? DEFAULTS.restartReset, { min: 0 }),
  });
}

/** Expects an absolute http: or https: URL. A secret URL is never echoed back in the message. */
export function validateHttpUrl(flag: string, text: string, { secret = false }: { secret?: boolean } = {}): string {
  const shown = secret ? '(redacted)' : `'${text}'`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    validatePort(flag, text);
    throw new UsageError(`${flag} expects an http:// or https:// URL, got ${shown}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${flag} expects an http:// or https:// URL, got ${shown}`);
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    throw new UsageError(`${flag}: the user or password in the URL has a malformed %-escape, got ${secret ? '(redacted)' : `'${text}'`}`);
  }
  return url.href;
}

/** A URL that failed to parse for its port alone gets a message saying so, not "expects a URL". */
function validatePort(flag: string, text: string): void {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*):(\d+)(?:[/?#]|$)/i.exec(text.trim());
  if (m && Number(m[1]) > 65535) throw new UsageError(`${flag}: port ${m[1]} is out of range (1-65535)`);
}

/** Expects an absolute ws: or wss: URL. */
export function validateWsUrl(flag: string, text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    validatePort(flag, text);
    url = undefined;
  }
  if (!url || (url.protocol !== 'ws:' && url.protocol !== 'wss:')) {
    throw new UsageError(`${flag} expects a ws:// or wss:// URL, got '${text}'`);
  }
  return url.href;
}

/** Expects host:port, with IPv6 hosts in brackets ("[::1]:8080"). */
export function validateHostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`${flag} expects host:port (port 1-65535, IPv6 in brackets), got '${text}'`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * Expects host:port or a bare port, which means 127.0.0.1: metrics are served beyond the host only when the
 * user names an address that reaches further (0.0.0.0, [::], a host's own address).
 */
export function validateListenAddress(flag: string, text: string): ListenAddress {
  const bare = /^\d+$/.test(text.trim());
  try {
    const { host, port } = validateHostPort(flag, bare ? `127.0.0.1:${text.trim()}` : text);
    return Object.freeze({ host, port, flag });
  } catch {
    throw new UsageError(`${flag} expects a port (served on 127.0.0.1) or host:port (port 1-65535, IPv6 in brackets), got '${text}'`);
  }
}

const MAX_SPAN_MS = 2 ** 31 - 1;

/** Expects a systemd time span; returns milliseconds. */
export function validateSpan(flag: string, text: string, { min }: { min: number }): number {
  const ms = parseSpan(text);
  if (ms === undefined) {
    throw new UsageError(`${flag} expects a time span such as 500ms, 5s, 2min or "1min 30s", got '${text}'`);
  }
  if (ms < min) throw new UsageError(`${flag} must be at least ${formatSpan(min)}, got '${text}'`);
  // Node's timers hold at most 2^31-1 ms (24.8 days); past it they fire at once.
  if (ms > MAX_SPAN_MS)
    throw new UsageError(`${flag} must be at most 24 days (${formatSpan(MAX_SPAN_MS)}, the longest timer Node.js keeps), got '${text}'`);
  return ms;
}

/** Expects a whole number from 1 up. */
export function validateCount(flag: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${flag} expects a whole number of at least 1, got '${text}'`);
  }
  return Number(text);
}

/** Expects a JavaScript regular expression (without slashes). */
function validateRegex(flag: string, text: string): RegExp {
  try {
    return new RegExp(text);
  } catch (error) {
    throw new UsageError(`${flag} expects a regular expression, got '${text}': ${(error as Error).message}`);
  }
}

function validateChoice<T extends string>(flag: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`${flag} expects one of ${choices.join('|')}, got '${text}'`);
  }
  return text as T;
}
