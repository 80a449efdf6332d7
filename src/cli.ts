// argv and environment in, an exit out: the only place sdwrap exits.
import { Command, CommanderError, Option } from 'commander';
import { createRequire } from 'node:module';
import { writeSync } from 'node:fs';
import { buildConfig, type Config, type RawOptions } from './config.js';
import { describeOption, helpEpilogue, OPTION_GROUPS, SUMMARY } from './help.js';
import { EXIT, SdwrapError, UsageError } from './errors.js';
import type { ExitPlan } from './exit-plan.js';
import { createLogger, stderrIsTerminal, type Logger } from './logger.js';
import { createNotifier, silentNotifier } from './notify.js';
import { killCurrentTree, supervise } from './supervisor.js';
import { watchdogPeriodMs } from './systemd-env.js';
import { planProbeTiming } from './timing.js';
import { setV8Flags, v8FlagsFor } from './v8-flags.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** Ends every usage error's line: where to read more. */
const HELP_POINTER = " (see 'sdwrap --help')";

/** One line on stderr, written synchronously (process.stderr would turn the fd the child shares non-blocking). */
function say(text: string): void {
  writeSync(2, text.endsWith('\n') ? text : `${text}\n`);
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function buildProgram(): Command {
  const program = new Command('sdwrap')
    .usage('[options] [--] <command> [args...]')
    .description(SUMMARY)
    .argument('[command...]', 'the app to run, with its arguments')
    .passThroughOptions()
    .allowExcessArguments(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void writeSync(1, text),
      writeErr: (text) => say(text.trimEnd()),
      // Never echo an option's value: `--heartbeat-ur=https://…/secret` must not print the secret.
      outputError: (text) => say(`sdwrap: ${text.replace(/^error: /, '').replace(/(--[\w-]+)=[^'"\s]*/g, '$1=…').trim()}${HELP_POINTER}`),
    });
  for (const group of OPTION_GROUPS) {
    program.optionsGroup(`${group.title}:`);
    for (const spec of group.options) {
      if (spec.flags === '-h, --help') program.helpOption(spec.flags, spec.description);
      else if (spec.flags === '-V, --version') program.version(version, spec.flags, spec.description);
      else {
        const option = new Option(spec.flags, describeOption(spec));
        program.addOption(spec.repeatable ? option.argParser(collect) : option);
      }
    }
  }
  // A function: the text is made only when help is shown.
  return program.addHelpText('after', () => helpEpilogue());
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
    // A flag given on the command line wins, and then names itself in messages.
    const fileNames = Object.fromEntries(Object.entries(file.options.fileNames ?? {}).filter(([key]) => !(key in given)));
    options = { ...file.options, ...given, fileNames };
    if (command.length === 0 && file.command) command = file.command;
  }
  return buildConfig(options, command, stderrIsTerminal());
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
  const env = process.env;
  // A WatchdogSec= that no probe timing can fit is the user's to fix, before anything is spawned.
  const watchdogMs = config.noSystemd ? undefined : watchdogPeriodMs(env, process.pid);
  const timings = config.probes.map((probe) => planProbeTiming(probe, config, watchdogMs));
  setV8Flags(v8FlagsFor(config, timings));
  const log = await createLogger({ level: config.logLevel, format: config.logFormat });
  installLastResort(log);
  warnAboutSetup(config, env, log);
  const notifier = config.noSystemd ? silentNotifier : createNotifier(config.notifier, process.env, log);
  const heartbeat = config.heartbeatUrl
    ? (await import('./heartbeat.js')).createHeartbeat(config.heartbeatUrl, log, { minIntervalMs: config.heartbeatEveryMs })
    : undefined;
  return supervise(config, { log, notifier, env, pid: process.pid, heartbeat });
}

/** Hints for setups that start fine but will not do what the user expects. */
function warnAboutSetup(config: Config, env: NodeJS.ProcessEnv, log: Logger): void {
  if (config.noSystemd || (env.NOTIFY_SOCKET ?? '') !== '') return;
  const why = 'NOTIFY_SOCKET is not set (is this a systemd unit with Type=notify?)';
  if (config.onUnhealthy === 'watchdog') log.warn(`--on-unhealthy watchdog: ${why}: sdwrap will kill an unhealthy app itself instead`);
  if (config.notifier === 'native') log.warn(`--notifier native: ${why}: nothing will be sent`);
  log.warn(`${why}, and --no-systemd is not given: nothing will restart the app when it fails; use --no-systemd to have sdwrap restart it`);
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
    say(`sdwrap: ${error.message}${error instanceof UsageError ? HELP_POINTER : ''}`);
    process.exit(error instanceof UsageError ? EXIT.USAGE : error.exitCode);
  }
  say(`sdwrap: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  killCurrentTree();
  process.exit(EXIT.INTERNAL);
});
