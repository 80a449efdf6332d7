// Defaults and validation in one place: raw option strings in, a frozen Config out.
import { parseSpan, formatSpan } from './duration.js';
import { UsageError } from './errors.js';
import type { RestartPolicy } from './backoff.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';
export type NotifierChoice = 'auto' | 'native' | 'systemd-notify';

export type ProbeSpec =
  | { kind: 'http'; url: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'exec'; command: string };

export interface Config {
  readonly command: string;
  readonly args: readonly string[];
  /** Absent: the child counts as healthy once spawned. */
  readonly probe: ProbeSpec | undefined;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
  readonly startPeriodMs: number;
  readonly stopTimeoutMs: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly notifier: NotifierChoice;
  /** --no-systemd: notify nothing; restart the child here by `restart`. */
  readonly noSystemd: boolean;
  /** Set only with --no-systemd: under systemd, Restart= restarts the unit. */
  readonly restart: RestartPolicy | undefined;
}

/** Every default sdwrap has. */
export const DEFAULTS = {
  interval: '10s',
  timeout: '2s',
  failureThreshold: '3',
  successThreshold: '1',
  startPeriod: '0',
  stopTimeout: '10s',
  logLevel: 'info',
  notifier: 'auto',
  restart: 'on-failure',
  restartDelay: '1s',
  restartMaxDelay: '1min',
  maxRestarts: '5',
  restartWindow: '5min',
  restartReset: '1min',
} as const;

/** Options as the command line gives them: strings, not yet checked. */
export interface RawOptions {
  http?: string;
  tcp?: string;
  exec?: string;
  interval?: string;
  timeout?: string;
  failureThreshold?: string;
  successThreshold?: string;
  startPeriod?: string;
  stopTimeout?: string;
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

/** Checks raw options and the command; throws UsageError naming the first bad one. */
export function buildConfig(raw: RawOptions, argv: readonly string[], isTTY: boolean): Config {
  const [command, ...args] = argv;
  if (command === undefined || command === '') {
    throw new UsageError('missing the command to run: sdwrap [options] -- <command> [args...]');
  }
  const probe = normalizeProbe(raw);
  const intervalMs = validateSpan('--interval', raw.interval ?? DEFAULTS.interval, { min: 1 });
  const timeoutMs = validateSpan('--timeout', raw.timeout ?? DEFAULTS.timeout, { min: 1 });
  return Object.freeze({
    command,
    args: Object.freeze(args),
    probe,
    intervalMs,
    timeoutMs,
    failureThreshold: validateCount('--failure-threshold', raw.failureThreshold ?? DEFAULTS.failureThreshold),
    successThreshold: validateCount('--success-threshold', raw.successThreshold ?? DEFAULTS.successThreshold),
    startPeriodMs: validateSpan('--start-period', raw.startPeriod ?? DEFAULTS.startPeriod, { min: 0 }),
    stopTimeoutMs: validateSpan('--stop-timeout', raw.stopTimeout ?? DEFAULTS.stopTimeout, { min: 0 }),
    logLevel: validateChoice('--log-level', raw.logLevel ?? DEFAULTS.logLevel, LOG_LEVELS),
    logFormat: validateChoice('--log-format', raw.logFormat ?? (isTTY ? 'pretty' : 'json'), LOG_FORMATS),
    notifier: validateChoice('--notifier', raw.notifier ?? DEFAULTS.notifier, NOTIFIERS),
    noSystemd: raw.systemd === false,
    restart: normalizeRestart(raw),
  });
}

function normalizeRestart(raw: RawOptions): RestartPolicy | undefined {
  if (raw.systemd !== false) {
    const given = (Object.keys(RESTART_FLAGS) as Array<keyof typeof RESTART_FLAGS>).find((k) => raw[k] !== undefined);
    if (given) throw new UsageError(`${RESTART_FLAGS[given]} needs --no-systemd: under systemd, the unit's Restart= restarts the app`);
    return undefined;
  }
  const initialDelayMs = validateSpan('--restart-delay', raw.restartDelay ?? DEFAULTS.restartDelay, { min: 0 });
  const maxDelayMs = validateSpan('--restart-max-delay', raw.restartMaxDelay ?? DEFAULTS.restartMaxDelay, { min: 0 });
  if (maxDelayMs < initialDelayMs) {
    throw new UsageError(`--restart-max-delay (${formatSpan(maxDelayMs)}) must not be shorter than --restart-delay (${formatSpan(initialDelayMs)})`);
  }
  const maxRestarts = raw.maxRestarts ?? DEFAULTS.maxRestarts;
  if (!/^\d+$/.test(maxRestarts.trim())) throw new UsageError(`--max-restarts expects a whole number (0 never restarts), got '${maxRestarts}'`);
  return Object.freeze({
    mode: validateChoice('--restart', raw.restart ?? DEFAULTS.restart, RESTART_MODES),
    initialDelayMs,
    maxDelayMs,
    maxRestarts: Number(maxRestarts),
    windowMs: validateSpan('--restart-window', raw.restartWindow ?? DEFAULTS.restartWindow, { min: 1 }),
    resetAfterMs: validateSpan('--restart-reset', raw.restartReset ?? DEFAULTS.restartReset, { min: 0 }),
  });
}

function normalizeProbe(raw: RawOptions): ProbeSpec | undefined {
  const given = (['http', 'tcp', 'exec'] as const).filter((k) => raw[k] !== undefined);
  if (given.length > 1) {
    throw new UsageError(`only one probe may be given, got ${given.map((k) => `--${k}`).join(' and ')}`);
  }
  if (raw.http !== undefined) return { kind: 'http', url: validateHttpUrl(raw.http) };
  if (raw.tcp !== undefined) return { kind: 'tcp', ...validateHostPort(raw.tcp) };
  if (raw.exec !== undefined) {
    if (raw.exec.trim() === '') throw new UsageError('--exec expects a shell command, got an empty string');
    return { kind: 'exec', command: raw.exec };
  }
  return undefined;
}

/** Expects an absolute http: or https: URL. */
export function validateHttpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--http expects an http:// or https:// URL, got '${text}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--http expects an http:// or https:// URL, got '${text}'`);
  }
  return url.href;
}

/** Expects host:port, with IPv6 hosts in brackets ("[::1]:8080"). */
export function validateHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`--tcp expects host:port (port 1-65535, IPv6 in brackets), got '${text}'`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

/** Expects a systemd time span; returns milliseconds. */
export function validateSpan(flag: string, text: string, { min }: { min: number }): number {
  const ms = parseSpan(text);
  if (ms === undefined) {
    throw new UsageError(`${flag} expects a time span such as 500ms, 5s, 2min or "1min 30s", got '${text}'`);
  }
  if (ms < min) throw new UsageError(`${flag} must be at least ${formatSpan(min)}, got '${text}'`);
  return ms;
}

/** Expects a whole number from 1 up. */
export function validateCount(flag: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${flag} expects a whole number of at least 1, got '${text}'`);
  }
  return Number(text);
}

function validateChoice<T extends string>(flag: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`${flag} expects one of ${choices.join('|')}, got '${text}'`);
  }
  return text as T;
}
