// The reference, written once: the options by group, the span syntax, examples, exit codes and the
// environment sdwrap reads. cli.ts builds `--help` from it and build/man.ts the man page, so neither can
// drift from the other; a test holds the README's options table to the same flag set.
import { DEFAULTS } from './config.js';
import { EXIT } from './errors.js';

export interface OptionSpec {
  /** As commander takes them: "--http <url>", "-h, --help". */
  flags: string;
  description: string;
  /** Shown as "(default: ...)". */
  default?: string;
  /** The flag may be given more than once; each use adds one. */
  repeatable?: boolean;
}

export interface OptionGroup {
  title: string;
  options: OptionSpec[];
}

export const OPTION_GROUPS: readonly OptionGroup[] = [
  {
    title: 'Probes',
    options: [
      { flags: '--http <url>', description: 'healthy when a request to <url> answers a status in --http-status within --timeout' },
      { flags: '--tcp <host:port>', description: 'healthy when a TCP connection opens within --timeout (IPv6: [::1]:8080)' },
      { flags: '--exec <command>', description: 'healthy when `/bin/sh -c <command>` exits 0 within --timeout (quote it: --exec "pg_isready -q")' },
      { flags: '--ws <url>', description: 'healthy when a WebSocket opens (and answers --ws-expect) within --timeout' },
      {
        flags: '--probe <role:kind:target>',
        description: 'a probe with a role (readiness, liveness or both): liveness:http:http://127.0.0.1:8080/healthz',
        repeatable: true,
      },
      { flags: '--config <file>', description: 'options and probes from a JSON file; flags given on the command line win' },
      { flags: '--watch-log <regex>', description: "unhealthy when more than --watch-log-max lines of the app's output match within --watch-log-window" },
      { flags: '--watch-log-max <n>', description: 'matching lines tolerated within the window', default: DEFAULTS.watchLogMax },
      { flags: '--watch-log-window <span>', description: 'the sliding window of --watch-log', default: DEFAULTS.watchLogWindow },
    ],
  },
  {
    title: 'HTTP checks',
    options: [
      { flags: '--http-method <method>', description: 'GET or HEAD', default: 'GET' },
      {
        flags: '--http-request-header <"Name: value">',
        description: 'a header sent with each request (Host:, Authorization:); Authorization and other credentials are never logged',
        repeatable: true,
      },
      { flags: '--http-status <list>', description: 'statuses that pass: 200-299,301', default: DEFAULTS.httpStatus },
      { flags: '--http-header <"Name: value">', description: 'a response header that must be present with this value', repeatable: true },
      { flags: '--http-body <regex>', description: 'the response body (up to 1 MiB) must match' },
      { flags: '--http-json <path op value>', description: "a check of the JSON body: 'players.online>=100' (ops == != >= <= > <)", repeatable: true },
      { flags: '--http-follow-redirects', description: 'follow up to 5 redirects on the same host instead of judging the 3xx' },
    ],
  },
  {
    title: 'WebSocket',
    options: [
      { flags: '--ws-send <text>', description: 'send this once connected' },
      { flags: '--ws-expect <regex>', description: 'require a message matching this within --timeout' },
    ],
  },
  {
    title: 'Timing and thresholds',
    options: [
      { flags: '--interval <span>', description: 'time between the starts of two probes; shortened to fit WatchdogSec=', default: DEFAULTS.interval },
      { flags: '--timeout <span>', description: 'per-probe limit; a probe past it fails and is killed; shortened to fit WatchdogSec=', default: DEFAULTS.timeout },
      { flags: '--failure-threshold <n>', description: 'consecutive failures that make a probe unhealthy', default: DEFAULTS.failureThreshold },
      { flags: '--success-threshold <n>', description: 'consecutive successes that make it healthy', default: DEFAULTS.successThreshold },
      {
        flags: '--start-period <span>',
        description: "grace after spawn: failures do not count, a success ends it early; an app not ready by its end is unhealthy; systemd's start timeout is extended meanwhile",
        default: DEFAULTS.startPeriod,
      },
      { flags: '--stop-timeout <span>', description: 'after SIGTERM, wait this long, then SIGKILL the whole tree', default: DEFAULTS.stopTimeout },
    ],
  },
  {
    title: 'systemd',
    options: [
      {
        flags: '--on-unhealthy <action>',
        description: "kill: sdwrap kills the app and exits 69; watchdog: WATCHDOG=trigger, so systemd's watchdog action follows",
        default: DEFAULTS.onUnhealthy,
      },
      { flags: '--notifier <kind>', description: 'auto, native (the sd-notify addon) or systemd-notify (the command)', default: DEFAULTS.notifier },
      {
        flags: '--heartbeat-url <url>',
        description: 'push heartbeats (healthchecks.io style): URL/start on spawn, URL while healthy, URL/fail when unhealthy; a secret',
      },
      { flags: '--heartbeat-every <span>', description: 'at most one healthy heartbeat per span', default: DEFAULTS.heartbeatEvery },
    ],
  },
  {
    title: 'Local mode',
    options: [
      { flags: '--no-systemd', description: 'notify nothing; restart the app here, with backoff' },
      { flags: '--restart <policy>', description: 'on-failure or always', default: DEFAULTS.restart },
      { flags: '--restart-delay <span>', description: 'the first restart delay, doubling each time', default: DEFAULTS.restartDelay },
      { flags: '--restart-max-delay <span>', description: 'the cap on the restart delay', default: DEFAULTS.restartMaxDelay },
      { flags: '--max-restarts <n>', description: 'restarts allowed within --restart-window before giving up', default: DEFAULTS.maxRestarts },
      { flags: '--restart-window <span>', description: 'the window --max-restarts counts in', default: DEFAULTS.restartWindow },
      { flags: '--restart-reset <span>', description: 'healthy this long, backoff and budget start over', default: DEFAULTS.restartReset },
    ],
  },
  {
    title: 'Logging',
    options: [
      { flags: '--log-level <level>', description: 'trace, debug, info, warn or error', default: DEFAULTS.logLevel },
      { flags: '--log-format <format>', description: 'json or pretty', default: 'pretty on a terminal, json otherwise' },
    ],
  },
  {
    title: 'Other',
    options: [
      { flags: '-h, --help', description: 'show this reference and exit' },
      { flags: '-V, --version', description: "print sdwrap's version and exit" },
    ],
  },
];

export const SYNOPSIS = 'sdwrap [options] [--] <command> [args...]';

export const SUMMARY =
  'Runs <command> as its child, probes it the way a client would, sends systemd READY=1 only once it is healthy ' +
  'and WATCHDOG=1 only while it stays healthy, relays signals, and kills the whole tree when it is not.';

export const SPAN_TEXT =
  '<span> is a systemd time span: 500ms, 5s, 2min, "1min 30s", 1h; a bare number is seconds; at most 24 days.';

export const EXAMPLES: ReadonlyArray<{ title: string; command: string }> = [
  {
    title: "A unit's ExecStart= (Type=notify, WatchdogSec=20s):",
    command: 'ExecStart=/usr/bin/node /usr/local/bin/sdwrap --http http://127.0.0.1:8080/healthz --start-period 30s -- /opt/app/server',
  },
  {
    title: 'Local mode, restarting the app with backoff:',
    command: 'sdwrap --no-systemd --http http://127.0.0.1:8080/healthz --start-period 30s -- ./server',
  },
  { title: 'Probes and settings from a config file:', command: 'sdwrap --config /etc/myapp/sdwrap.json -- /opt/app/server' },
];

export const EXIT_CODES: ReadonlyArray<{ code: string; meaning: string }> = [
  { code: 'N', meaning: 'the app exited with N' },
  { code: 'signal S', meaning: 'the app was killed by S (sdwrap re-raises it), or sdwrap was stopped by S' },
  { code: '128+N', meaning: 'the app was killed by a core-dumping signal N, SIGUSR1 or SIGPIPE' },
  { code: String(EXIT.USAGE), meaning: 'a usage error: a bad flag, value or config file' },
  { code: String(EXIT.UNHEALTHY), meaning: 'the app was unhealthy and sdwrap killed it' },
  { code: String(EXIT.INTERNAL), meaning: 'an internal error of sdwrap' },
  { code: String(EXIT.NOT_EXECUTABLE), meaning: 'the command cannot be executed' },
  { code: String(EXIT.NOT_FOUND), meaning: 'the command was not found' },
];

export const ENVIRONMENT: ReadonlyArray<{ name: string; meaning: string }> = [
  { name: 'NOTIFY_SOCKET', meaning: "systemd's notify socket (Type=notify); removed from the app's environment" },
  { name: 'WATCHDOG_USEC, WATCHDOG_PID', meaning: "WatchdogSec=: sdwrap pings while the app is healthy; removed from the app's environment" },
  { name: 'JOURNAL_STREAM', meaning: 'stderr is the journal: log lines carry syslog priorities (<4> for warnings)' },
];

/** Every long flag of the reference ("--http", "--no-systemd", ...), for the tests that compare it with the README. */
export function longFlags(): string[] {
  return OPTION_GROUPS.flatMap((g) => g.options.map((o) => /--[\w-]+/.exec(o.flags)![0]));
}

/** The description as shown, with its default and whether it repeats. */
export function describeOption(option: OptionSpec): string {
  const extra = [option.repeatable ? 'repeatable' : '', option.default !== undefined ? `default: ${option.default}` : '']
    .filter(Boolean)
    .join(', ');
  return extra ? `${option.description} (${extra})` : option.description;
}

/** The text after the options in `--help`. */
export function helpEpilogue(): string {
  const pad = (text: string, width: number) => text.padEnd(width);
  const examples = EXAMPLES.map((e) => `  ${e.title}\n    ${e.command}`).join('\n');
  const codes = EXIT_CODES.map((e) => `  ${pad(e.code, 9)}${e.meaning}`).join('\n');
  const env = ENVIRONMENT.map((e) => `  ${e.name}\n    ${e.meaning}`).join('\n');
  return `\n${SPAN_TEXT}\n\nExamples:\n${examples}\n\nExit status:\n${codes}\n\nEnvironment:\n${env}\n\nThe manual: man sdwrap, or README.md.\n`;
}
