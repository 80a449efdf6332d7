// argv and environment in, an exit out: the only place sdwrap exits. The first argument may name a
// subcommand (probe, unit, reload), each in a module of its own, loaded only when asked for.
import { CommanderError } from 'commander';
import { loadDgramAddon } from './app-notify-socket.js';
import { createRequire } from 'node:module';
import { buildConfig, type Config } from './config.js';
import { controlSocketPath } from './control-protocol.js';
import { helpEpilogue, OPTION_GROUPS, SUMMARY, SYNOPSIS } from './help.js';
import { EXIT, InternalError, SdwrapError, UsageError } from './errors.js';
import type { ExitPlan } from './exit-plan.js';
import { createLogger, stderrIsTerminal, type Logger } from './logger.js';
import { createNotifier, silentNotifier } from './notify.js';
import { combineObservers } from './observers.js';
import { buildProgram, helpPointer, readRunOptions, say } from './program.js';
import { processControl } from './kill-tree.js';
import { supervise, type SupervisorObserver } from './supervisor.js';
import { watchdogPeriodMs } from './systemd-env.js';
import { planProbeTiming } from './timing.js';
import { setV8Flags, v8FlagsFor } from './v8-flags.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** The subcommands: each module's run() takes the arguments after its name and resolves with an exit code. */
const COMMANDS: Record<string, () => Promise<{ run(argv: readonly string[], version: string): Promise<number> }>> = {
  probe: () => import('./commands/probe.js'),
  unit: () => import('./commands/unit.js'),
  reload: () => import('./commands/reload.js'),
};

/** The subcommand being run, for the pointer at the end of a usage error. */
let subcommand: string | undefined;

/** Parses argv (and the --config file it names) into a Config; throws UsageError, or CommanderError for --help/--version. */
export async function parseArgs(argv: readonly string[]): Promise<Config> {
  const program = buildProgram({
    name: 'sdwrap',
    usage: SYNOPSIS.replace(/^sdwrap /, ''),
    description: SUMMARY,
    groups: OPTION_GROUPS,
    epilogue: helpEpilogue,
    version,
  });
  program.parse(argv as string[], { from: 'user' });
  const { options, command } = await readRunOptions(program);
  return buildConfig(options, command, stderrIsTerminal());
}

async function main(argv: readonly string[]): Promise<ExitPlan> {
  let config: Config;
  try {
    const load = COMMANDS[argv[0] ?? ''];
    if (load) {
      subcommand = argv[0];
      return { kind: 'code', code: await (await load()).run(argv.slice(1), version) };
    }
    config = await parseArgs(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with 0; commander already printed a bad flag's one line.
      return { kind: 'code', code: error.exitCode === 0 ? 0 : EXIT.USAGE };
    }
    throw error;
  }
  // Without its addon --notify-passthrough cannot work: refuse it now, in one line, before anything starts.
  if (config.notifyPassthrough) loadDgramAddon();
  const env = process.env;
  const watchdogMs = config.noSystemd ? undefined : watchdogPeriodMs(env, process.pid);
  setV8Flags(
    v8FlagsFor(
      config,
      config.probes.map((probe) => planProbeTiming(probe, config, watchdogMs)),
    ),
  );
  const log = await createLogger({ level: config.logLevel, format: config.logFormat });
  installLastResort(log);
  const notifier = config.noSystemd ? silentNotifier : createNotifier(config.notifier, process.env, log);
  // Bound before the app is spawned, and before the setup warnings: a port in use is a usage error, alone on stderr.
  const metrics = config.metrics
    ? await (await import('./metrics.js')).startMetrics(config.metrics, { version, notifier: notifier.kind, log })
    : undefined;
  warnAboutSetup(config, env, log);
  const heartbeat = config.heartbeatUrl
    ? (await import('./heartbeat.js')).createHeartbeat(config.heartbeatUrl, log, {
        minIntervalMs: config.heartbeatEveryMs,
        onFailure: metrics?.heartbeatFailure,
      })
    : undefined;
  // `sdwrap reload` asks over the control socket: its requests reach the supervisor as 'reload' events.
  const socketPath = controlSocketPath(config.controlSocket, env);
  const control = socketPath
    ? await (
        await import('./control-socket.js')
      ).serveControlSocket({
        path: socketPath,
        origin: config.controlSocket === undefined ? '$RUNTIME_DIRECTORY' : '--control-socket',
        log,
        drain: () => notifier.drain(),
      })
    : undefined;
  try {
    return await supervise(config, {
      log,
      notifier,
      env,
      pid: process.pid,
      heartbeat,
      control: control?.requests,
      observer: combineObservers(control?.observer, metrics?.observer, lastResortWatch),
    });
  } finally {
    await control?.close();
    await metrics?.server.close();
  }
}

/** The app of the run under way, so that sdwrap's last resort (a bug) can still end its tree. */
let appPid: number | undefined;

/** Notes each run's app for the last resort. */
const lastResortWatch: SupervisorObserver = {
  state(view) {
    appPid = view.state === 'done' ? undefined : view.pid;
  },
};

/** Kills the current app's whole tree at once: for an internal error, when sdwrap must exit now. */
function killCurrentTree(): void {
  if (appPid !== undefined) processControl.killTree(appPid);
}

/** Hints for setups that start fine but will not do what the user expects. */
function warnAboutSetup(config: Config, env: NodeJS.ProcessEnv, log: Logger): void {
  if (config.noSystemd || (env.NOTIFY_SOCKET ?? '') !== '') return;
  const why = 'NOTIFY_SOCKET is not set (is this a systemd unit with Type=notify?)';
  if (config.onUnhealthy === 'watchdog') log.warn(`--on-unhealthy watchdog: ${why}: sdwrap will kill an unhealthy app itself instead`);
  if (config.notifier === 'native') log.warn(`--notifier native: ${why}: nothing will be sent`);
  // Worded without the socket's name: an unset one is the normal state of a run by hand.
  log.warn(
    'not under systemd, and --no-systemd is not given: nothing will restart the app when it fails (use --no-systemd to have sdwrap restart it)',
  );
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
  // An InternalError is a bug: reported like any other, with its stack.
  if (error instanceof SdwrapError && !(error instanceof InternalError)) {
    say(`sdwrap${subcommand ? ` ${subcommand}` : ''}: ${error.message}${error instanceof UsageError ? helpPointer(subcommand) : ''}`);
    process.exit(error instanceof UsageError ? EXIT.USAGE : error.exitCode);
  }
  say(`sdwrap: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  killCurrentTree();
  process.exit(EXIT.INTERNAL);
});
