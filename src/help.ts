// The reference, written once: the options by group, the span syntax, examples, exit codes and the
// environment sdwrap reads. cli.ts builds `--help` from it and build/man.ts the man page, so neither can
// drift from the other; a test holds the README's options table to the same flag set.
import { DEFAULTS } from './config.js';
import { CONTROL_SOCKET_NAME, RELOAD_EXIT } from './control-protocol.js';
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
      {
        flags: '--exec <command>',
        description: 'healthy when `/bin/sh -c <command>` exits 0 within --timeout (quote it: --exec "pg_isready -q")',
      },
      { flags: '--ws <url>', description: 'healthy when a WebSocket opens (and answers --ws-expect) within --timeout' },
      {
        flags: '--probe <role:kind:target>',
        description: 'a probe with a role (readiness, liveness or both): liveness:http:http://127.0.0.1:8080/healthz',
        repeatable: true,
      },
      { flags: '--config <file>', description: 'options and probes from a JSON file; flags given on the command line win' },
      {
        flags: '--watch-log <regex>',
        description: "unhealthy when more than --watch-log-max lines of the app's output match within --watch-log-window",
      },
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
      {
        flags: '--http-json <path op value>',
        description: "a check of the JSON body: 'players.online>=100' (ops == != >= <= > <)",
        repeatable: true,
      },
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
      {
        flags: '--interval <span>',
        description: 'time between the starts of two probes; shortened to fit WatchdogSec=',
        default: DEFAULTS.interval,
      },
      {
        flags: '--timeout <span>',
        description: 'per-probe limit; a probe past it fails and is killed; shortened to fit WatchdogSec=',
        default: DEFAULTS.timeout,
      },
      {
        flags: '--failure-threshold <n>',
        description: 'consecutive failures that make a probe unhealthy',
        default: DEFAULTS.failureThreshold,
      },
      { flags: '--success-threshold <n>', description: 'consecutive successes that make it healthy', default: DEFAULTS.successThreshold },
      {
        flags: '--start-period <span>',
        description:
          "grace after spawn: failures do not count, a success ends it early; an app not ready by its end is unhealthy; systemd's start timeout is extended meanwhile",
        default: DEFAULTS.startPeriod,
      },
      {
        flags: '--stop-timeout <span>',
        description: 'after SIGTERM, wait this long, then SIGKILL the whole tree',
        default: DEFAULTS.stopTimeout,
      },
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
      {
        flags: '--notifier <kind>',
        description: 'auto, native (the sd-notify addon) or systemd-notify (the command)',
        default: DEFAULTS.notifier,
      },
      {
        flags: '--heartbeat-url <url>',
        description: 'push heartbeats (healthchecks.io style): URL/start on spawn, URL while healthy, URL/fail when unhealthy; a secret',
      },
      { flags: '--heartbeat-every <span>', description: 'at most one healthy heartbeat per span', default: DEFAULTS.heartbeatEvery },
      {
        flags: '--control-socket <path>',
        description: 'serve `sdwrap reload` on this unix socket (mode 0600, removed at exit)',
        default: `$RUNTIME_DIRECTORY/${CONTROL_SOCKET_NAME} when RuntimeDirectory= is set`,
      },
    ],
  },
  {
    title: 'Legacy apps',
    options: [
      {
        flags: '--pid-file <path>',
        description:
          'the command may fork and exit 0: sdwrap then follows the process this file names (waiting up to --start-period, or --timeout) as the app; exits 75 when it vanishes',
      },
      {
        flags: '--notify-passthrough',
        description:
          "give the app a NOTIFY_SOCKET of its own: READY=1 needs the app's READY and the probes, WATCHDOG=1 its fresh ping and the probes (needs the node-unix-socket package)",
      },
    ],
  },
  {
    title: 'Local mode',
    options: [
      { flags: '--no-systemd', description: 'notify nothing; restart the app here, with backoff' },
      { flags: '--restart <policy>', description: 'on-failure or always', default: DEFAULTS.restart },
      { flags: '--restart-delay <span>', description: 'the first restart delay, doubling each time', default: DEFAULTS.restartDelay },
      { flags: '--restart-max-delay <span>', description: 'the cap on the restart delay', default: DEFAULTS.restartMaxDelay },
      {
        flags: '--max-restarts <n>',
        description: 'restarts allowed within --restart-window before giving up',
        default: DEFAULTS.maxRestarts,
      },
      { flags: '--restart-window <span>', description: 'the window --max-restarts counts in', default: DEFAULTS.restartWindow },
      { flags: '--restart-reset <span>', description: 'healthy this long, backoff and budget start over', default: DEFAULTS.restartReset },
    ],
  },
  {
    title: 'Monitoring',
    options: [
      {
        flags: '--metrics <host:port>',
        description: 'serve Prometheus metrics on http://<host:port>/metrics; a bare port means 127.0.0.1 (loopback only)',
      },
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
  '<span> is a systemd time span: 500ms, 5s, 2min, "1min 30s", 1h; a number without a unit is seconds; at most 24 days.';

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
  { code: String(EXIT.APP_VANISHED), meaning: '--pid-file: the daemon vanished without a stop asked for (its status cannot be read)' },
  { code: String(EXIT.NOT_EXECUTABLE), meaning: 'the command cannot be executed' },
  { code: String(EXIT.NOT_FOUND), meaning: 'the command was not found' },
];

export const ENVIRONMENT: ReadonlyArray<{ name: string; meaning: string }> = [
  { name: 'NOTIFY_SOCKET', meaning: "systemd's notify socket (Type=notify); removed from the app's environment" },
  {
    name: 'WATCHDOG_USEC, WATCHDOG_PID',
    meaning: "WatchdogSec=: sdwrap pings while the app is healthy; removed from the app's environment",
  },
  {
    name: 'LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES',
    meaning:
      "socket activation: when LISTEN_PID is sdwrap's, the fds go on to the app at the same numbers with LISTEN_PID set to the app's pid",
  },
  { name: 'JOURNAL_STREAM', meaning: 'stderr is the journal: log lines carry syslog priorities (<4> for warnings)' },
  { name: 'RUNTIME_DIRECTORY', meaning: `RuntimeDirectory=: sdwrap serves \`sdwrap reload\` on $RUNTIME_DIRECTORY/${CONTROL_SOCKET_NAME}` },
];

/** A subcommand's reference: what its --help, the man page and the README say. */
export interface CommandReference {
  name: 'probe' | 'unit' | 'reload';
  synopsis: string;
  /** One line, for the list in `sdwrap --help`. */
  summary: string;
  description: string;
  /** The options its --help lists. */
  groups: readonly OptionGroup[];
  /** Options it takes without listing them: a run's, which mean there what they mean to a run. */
  hidden: readonly OptionSpec[];
  examples: ReadonlyArray<{ title: string; command: string }>;
  exitCodes: ReadonlyArray<{ code: string; meaning: string }>;
}

const RUN_OPTIONS = OPTION_GROUPS.flatMap((g) => g.options).filter((o) => !o.flags.startsWith('-h') && !o.flags.startsWith('-V'));
const HELP_OPTION: OptionSpec = { flags: '-h, --help', description: 'show this reference and exit' };
const flagName = (o: OptionSpec) => /--[\w-]+/.exec(o.flags)![0];
/** The run's options of a group, those named (all when none is). */
function runGroup(title: string, names?: readonly string[]): OptionGroup {
  const group = OPTION_GROUPS.find((g) => g.title === title)!;
  return { title, options: names ? group.options.filter((o) => names.includes(flagName(o))) : group.options };
}

const PROBE_GROUPS: readonly OptionGroup[] = [
  runGroup('Probes', ['--http', '--tcp', '--exec', '--ws', '--probe', '--config']),
  runGroup('HTTP checks'),
  runGroup('WebSocket'),
  runGroup('Timing and thresholds', ['--interval', '--timeout', '--failure-threshold', '--success-threshold', '--start-period']),
  {
    title: 'Output',
    options: [
      { flags: '--json', description: 'one JSON object per probe result, a line each' },
      {
        flags: '--watch',
        description:
          "probe again at each probe's --interval and show its threshold state (failing 2/3, unhealthy, healthy) until interrupted",
      },
    ],
  },
  { title: 'Other', options: [HELP_OPTION] },
];

/** sdwrap unit's own options; a run's options go into ExecStart= as given. */
const UNIT_GROUPS: readonly OptionGroup[] = [
  {
    title: 'Unit file',
    options: [
      {
        flags: '--output <path>',
        description: 'write the unit to this file (or to <path>/<name>.service for a directory) instead of stdout',
      },
      { flags: '--description <text>', description: 'Description=', default: '"<name>, supervised by sdwrap"' },
      { flags: '--environment <NAME=value>', description: 'an Environment= line', repeatable: true },
      { flags: '--working-directory <dir>', description: 'WorkingDirectory= (made absolute)' },
      {
        flags: '--writable <path>',
        description: 'a path the app may write despite ProtectSystem=strict (ReadWritePaths=)',
        repeatable: true,
      },
      { flags: '--user <name>', description: 'run as this user (User=) instead of a transient DynamicUser=' },
      { flags: '--port-below-1024', description: 'let the app listen on ports below 1024 (CAP_NET_BIND_SERVICE)' },
      { flags: '--user-unit', description: 'a unit for `systemctl --user`, without the settings a user manager cannot apply' },
      {
        flags: '--type <type>',
        description: 'notify-reload (systemd 253+) or notify (with ExecReload=sdwrap reload); auto asks `systemctl --version`',
        default: 'auto',
      },
      { flags: '--node <path>', description: "node's absolute path in ExecStart=", default: 'the node running this command' },
      { flags: '--sdwrap <path>', description: "sdwrap's absolute path in ExecStart=", default: 'the real path of the sdwrap running' },
    ],
  },
  { title: 'Other', options: [HELP_OPTION] },
];

const RELOAD_GROUPS: readonly OptionGroup[] = [
  {
    title: 'Reload',
    options: [
      {
        flags: '--control-socket <path>',
        description: "the control socket of the sdwrap to reload (the run's --control-socket)",
        default: `$RUNTIME_DIRECTORY/${CONTROL_SOCKET_NAME}`,
      },
      { flags: '--timeout <span>', description: 'fail when the probes have not all passed again within this', default: '1min' },
    ],
  },
  { title: 'Other', options: [HELP_OPTION] },
];

const shown = (groups: readonly OptionGroup[]) => new Set(groups.flatMap((g) => g.options.map(flagName)));

export const COMMANDS: readonly CommandReference[] = [
  {
    name: 'probe',
    synopsis: 'sdwrap probe [options] [-- <command> [args...]]',
    summary: 'run each probe once (or keep at it with --watch) and print its verdict; spawns nothing, tells systemd nothing',
    description:
      'Runs each configured probe once, in the order given, with the options and --config file of a run, and prints for each ' +
      'its role, kind, target (secrets left out, as in the logs), verdict, latency and detail (which check failed). ' +
      'Nothing is spawned and nothing is sent to systemd: a command after -- is ignored, and so are the options about the app ' +
      'rather than its probes, so the options of an ExecStart= line can be pasted as they are.',
    groups: PROBE_GROUPS,
    hidden: RUN_OPTIONS.filter((o) => !shown(PROBE_GROUPS).has(flagName(o))),
    examples: [
      {
        title: 'Check a probe before writing the unit:',
        command: "sdwrap probe --http http://127.0.0.1:8080/healthz --http-json 'status==ok'",
      },
      {
        title: "Watch a unit's probes, as a script would read them:",
        command: 'sdwrap probe --config /etc/myapp/sdwrap.json --watch --json',
      },
    ],
    exitCodes: [
      { code: '0', meaning: 'every probe passed (--watch: every probe was healthy when interrupted)' },
      { code: '1', meaning: 'a probe failed (--watch: a probe was not healthy when interrupted)' },
      { code: String(EXIT.USAGE), meaning: 'a usage error, or no probe given' },
    ],
  },
  {
    name: 'unit',
    synopsis: 'sdwrap unit <name> [options] [--] <command> [args...]',
    summary: 'print a hardened systemd unit that runs <command> under sdwrap, its timeouts derived from the probes',
    description:
      "Prints <name>.service (or writes it with --output). A run's options (sdwrap --help) go into ExecStart= as given and set the " +
      "unit's numbers: WatchdogSec= from the liveness probes' verdict bound (x 3, plus 10%, so sdwrap never shortens its timing), " +
      'TimeoutStartSec= from the start period, TimeoutStopSec= from --stop-timeout. ExecStart= names node, sdwrap and the command ' +
      'by absolute path, resolved now. The unit has Restart=on-failure with a start limit, KillMode=mixed and the hardening block of ' +
      'the example unit; Type=notify-reload where the installed systemd has it (253 and newer), else Type=notify with ' +
      'ExecReload=sdwrap reload and a RuntimeDirectory= for its control socket. A one-line comment in the unit gives the reason ' +
      'for each choice.',
    groups: UNIT_GROUPS,
    hidden: RUN_OPTIONS,
    examples: [
      {
        title: 'A unit for an app that needs 30 s to start, installed and started:',
        command:
          'sdwrap unit myapp --http http://127.0.0.1:8080/healthz --start-period 30s --output /etc/systemd/system/ -- /opt/app/server ' +
          '&& systemctl daemon-reload && systemctl enable --now myapp',
      },
    ],
    exitCodes: [
      { code: '0', meaning: 'the unit was printed or written' },
      { code: String(EXIT.USAGE), meaning: 'a usage error, or a command, node or sdwrap not found' },
    ],
  },
  {
    name: 'reload',
    synopsis: 'sdwrap reload [options]',
    summary: 'ask the sdwrap of this unit to reload the app and wait until every probe passes again (for ExecReload=)',
    description:
      'Asks the sdwrap running in the same unit, over its control socket, to reload the app, and waits. sdwrap reloads as on a ' +
      'SIGHUP: SIGHUP relayed to the app, READY=1 once every probe started since has passed. With Type=notify and ' +
      'ExecReload=sdwrap reload, `systemctl reload` then returns only once the app serves again, also on systemd older than 253, ' +
      'which has no Type=notify-reload. Asked while another reload is under way, it waits for that one to end and then asks.',
    groups: RELOAD_GROUPS,
    hidden: [],
    examples: [
      {
        title: "A unit's reload on systemd 252 (sdwrap unit writes it):",
        command: 'ExecReload=/usr/bin/node /usr/local/bin/sdwrap reload --timeout 1min',
      },
    ],
    exitCodes: [
      { code: '0', meaning: 'reloaded: SIGHUP relayed, and every probe passed again' },
      {
        code: String(RELOAD_EXIT.FAILED),
        meaning:
          'the reload failed or was refused (probes not passing in time, the app unhealthy, stopping or still starting): the reason on stderr',
      },
      { code: String(EXIT.USAGE), meaning: 'a usage error, or no control socket to ask' },
      { code: String(RELOAD_EXIT.UNREACHABLE), meaning: 'no sdwrap answered on the control socket' },
    ],
  },
];

/** The reference of a subcommand. */
export function commandReference(name: CommandReference['name']): CommandReference {
  return COMMANDS.find((c) => c.name === name)!;
}

/** Every long flag a reference lists ("--http", "--no-systemd", ...), for the tests that compare it with the README. */
export function longFlags(groups: readonly OptionGroup[] = OPTION_GROUPS): string[] {
  return groups.flatMap((g) => g.options.map(flagName));
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
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  const commands = COMMANDS.map((c) => `  ${pad(c.name, width)}${c.summary}`).join('\n');
  return (
    `\nCommands (the first argument; \`sdwrap <command> --help\` for each; an app named like one runs as sdwrap [options] -- probe):\n${commands}\n` +
    `\n${SPAN_TEXT}\n\nExamples:\n${examples}\n\nExit status:\n${codes}\n\nEnvironment:\n${env}\n\nThe manual: man sdwrap, or README.md.\n`
  );
}

/** The text after the options in `sdwrap <command> --help`. */
export function commandEpilogue(command: CommandReference): string {
  const examples = command.examples.map((e) => `  ${e.title}\n    ${e.command}`).join('\n');
  const codes = command.exitCodes.map((e) => `  ${e.code.padEnd(9)}${e.meaning}`).join('\n');
  const span = command.groups.some((g) => g.options.some((o) => o.flags.includes('<span>'))) ? `\n${SPAN_TEXT}\n` : '';
  return `${span}\nExamples:\n${examples}\n\nExit status:\n${codes}\n\nThe manual: man sdwrap, or README.md.\n`;
}
