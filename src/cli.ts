// argv and environment in, an exit out: the only place sdwrap exits.
import { Command, CommanderError, Option } from 'commander';
import { createRequire } from 'node:module';
import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { buildConfig, DEFAULTS, type Config, type RawOptions } from './config.js';
import { EXIT, SdwrapError, UsageError } from './errors.js';
import type { ExitPlan } from './exit-plan.js';
import { createLogger, type Logger } from './logger.js';
import { createNotifier, silentNotifier } from './notify.js';
import { killCurrentTree, supervise } from './supervisor.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** One line on stderr, written synchronously (process.stderr would turn the fd the child shares non-blocking). */
function say(text: string): void {
  writeSync(2, text.endsWith('\n') ? text : `${text}\n`);
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function buildProgram(): Command {
  return new Command('sdwrap')
    .usage('[options] -- <command> [args...]')
    .description('Run <command> under systemd with probe-gated READY=1 and WATCHDOG=1, signal relay and tree kill.')
    .version(version, '-V, --version')
    .helpOption('-h, --help')
    .option('--http <url>', 'probe: healthy when GET answers --http-status (200-399) within --timeout')
    .option('--tcp <host:port>', 'probe: healthy when a TCP connection opens within --timeout')
    .option('--exec <command>', 'probe: healthy when `/bin/sh -c <command>` exits 0 within --timeout')
    .option('--ws <url>', 'probe: healthy when a WebSocket opens (and answers --ws-expect) within --timeout')
    .option('--probe <role:kind:target>', 'a probe with a role (readiness|liveness|both), repeatable: liveness:http:http://127.0.0.1:8080/healthz', collect)
    .option('--config <file>', 'read options and probes from a JSON file; flags win')
    .option('--http-status <list>', `HTTP statuses that pass, e.g. 200-299,301 (default: ${DEFAULTS.httpStatus})`)
    .option('--http-header <"Name: value">', 'HTTP response header that must be present with this value, repeatable', collect)
    .option('--http-body <regex>', 'HTTP response body must match')
    .option('--http-json <path op value>', "JSON response check, repeatable: 'players.online>=100' (ops == != >= <= > <)", collect)
    .option('--http-follow-redirects', 'follow HTTP redirects (default: a 3xx is the answer)')
    .option('--ws-send <text>', 'WebSocket probe: send this once connected')
    .option('--ws-expect <regex>', 'WebSocket probe: require a message matching this within --timeout')
    .option('--interval <span>', `time between probes, shortened to fit WatchdogSec (default: ${DEFAULTS.interval})`)
    .option('--timeout <span>', `per-probe limit; a probe past it fails and is killed (default: ${DEFAULTS.timeout})`)
    .option('--failure-threshold <n>', `consecutive failures that make the app unhealthy (default: ${DEFAULTS.failureThreshold})`)
    .option('--success-threshold <n>', `consecutive successes that make it healthy (default: ${DEFAULTS.successThreshold})`)
    .option('--start-period <span>', 'grace after spawn: failures do not count, a success ends it early; the start timeout is extended meanwhile (default: 0)')
    .option('--stop-timeout <span>', `after SIGTERM, wait this long, then SIGKILL the whole tree (default: ${DEFAULTS.stopTimeout})`)
    .option('--on-unhealthy <action>', `kill: sdwrap kills the app and exits 69; watchdog: send WATCHDOG=trigger so systemd acts (default: ${DEFAULTS.onUnhealthy})`)
    .option('--watch-log <regex>', "unhealthy when more than --watch-log-max lines of the app's output match within --watch-log-window")
    .option('--watch-log-max <n>', `matching lines tolerated within the window (default: ${DEFAULTS.watchLogMax})`)
    .option('--watch-log-window <span>', `the sliding window for --watch-log (default: ${DEFAULTS.watchLogWindow})`)
    .option('--heartbeat-url <url>', 'push heartbeats (healthchecks.io style): URL/start on spawn, URL while healthy, URL/fail when unhealthy')
    .option('--heartbeat-every <span>', `at most one healthy heartbeat per span (default: ${DEFAULTS.heartbeatEvery})`)
    .addOption(new Option('--log-level <level>', `trace|debug|info|warn|error (default: ${DEFAULTS.logLevel})`))
    .addOption(new Option('--log-format <format>', 'json|pretty (default: pretty on a terminal, json otherwise)'))
    .addOption(new Option('--notifier <kind>', 'auto|native|systemd-notify: how to reach systemd (default: auto)'))
    .option('--no-systemd', 'local mode: notify nothing, restart the app here with backoff')
    .option('--restart <policy>', `with --no-systemd: on-failure|always (default: ${DEFAULTS.restart})`)
    .option('--restart-delay <span>', `with --no-systemd: first restart delay, doubling each time (default: ${DEFAULTS.restartDelay})`)
    .option('--restart-max-delay <span>', `with --no-systemd: cap on the restart delay (default: ${DEFAULTS.restartMaxDelay})`)
    .option('--max-restarts <n>', `with --no-systemd: restarts allowed within --restart-window before giving up (default: ${DEFAULTS.maxRestarts})`)
    .option('--restart-window <span>', `with --no-systemd: the window --max-restarts counts in (default: ${DEFAULTS.restartWindow})`)
    .option('--restart-reset <span>', `with --no-systemd: healthy this long, backoff and budget start over (default: ${DEFAULTS.restartReset})`)
    .argument('[command...]', 'the app to run, with its arguments')
    .passThroughOptions()
    .allowExcessArguments(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void writeSync(1, text),
      writeErr: (text) => say(text.trimEnd()),
      // Never echo an option's value: `--heartbeat-ur=https://…/secret` must not print the secret.
      outputError: (text) => say(`sdwrap: ${text.replace(/^error: /, '').replace(/(--[\w-]+)=[^'"\s]*/g, '$1=…').trim()}`),
    });
}

/** Parses argv (and the --config file it names) into a Config; throws UsageError, or CommanderError for --help/--version. */
export async function parseArgs(argv: readonly string[]): Promise<Config> {
  const program = buildProgram();
  program.parse(argv as string[], { from: 'user' });
  const all = program.opts<RawOptions>();
  // Only what the command line really said: commander fills in `systemd: true` for --no-systemd's default.
  const given = Object.fromEntries(
    Object.entries(all).filter(([key]) => program.getOptionValueSource(key) === 'cli'),
  ) as RawOptions;
  let command = program.args;
  let options = given;
  if (given.config !== undefined) {
    const { loadConfigFile } = await import('./config-file.js');
    const file = await loadConfigFile(given.config);
    options = { ...file.options, ...given };
    if (command.length === 0 && file.command) command = file.command;
  }
  return buildConfig(options, command, isatty(2));
}

async function main(argv: readonly string[]): Promise<ExitPlan> {
  let config: Config;
  try {
    config = await parseArgs(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with 0; commander already printed a bad flag's one line.
      return { kind: 'code', code: error.exitCode === 0 ? 0 : EXIT.USAGE };
    }
    throw error;
  }
  const log = await createLogger({ level: config.logLevel, format: config.logFormat });
  installLastResort(log);
  const notifier = config.noSystemd ? silentNotifier : createNotifier(config.notifier, process.env, log);
  const heartbeat = config.heartbeatUrl
    ? (await import('./heartbeat.js')).createHeartbeat(config.heartbeatUrl, log, { minIntervalMs: config.heartbeatEveryMs })
    : undefined;
  return supervise(config, { log, notifier, env: process.env, pid: process.pid, heartbeat });
}

/** A bug in sdwrap must still end with a line saying so, not a silent hang, and must not leave the app
 * running: it is in a session of its own, so nothing else would end it without systemd. */
function installLastResort(log: Logger): void {
  const die = (error: unknown) => {
    log.fatal({ err: error }, 'internal error: killing the app and exiting');
    killCurrentTree();
    process.exit(EXIT.INTERNAL);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}

function end(plan: ExitPlan): never {
  if (plan.kind === 'signal') {
    // Die by the child's signal so our parent (systemd) sees the same status the child had.
    process.kill(process.pid, plan.signal);
    process.exit(plan.fallbackCode); // reached only if the signal is ignored in this process
  }
  process.exit(plan.code);
}

main(process.argv.slice(2)).then(end, (error: unknown) => {
  if (error instanceof SdwrapError) {
    say(`sdwrap: ${error.message}`);
    process.exit(error instanceof UsageError ? EXIT.USAGE : error.exitCode);
  }
  say(`sdwrap: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  killCurrentTree();
  process.exit(EXIT.INTERNAL);
});
