// `sdwrap unit <name> [options] -- <command>`: prints (or writes) a unit that runs the command under sdwrap.
// This module resolves what the unit names (node, sdwrap, the command, by absolute path), asks the installed
// systemd for its version, and warns about what would not work; unit-file.ts writes the text.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { commandReference, type OptionSpec } from '../help.js';
import { isSecretHeader } from '../http-assertions.js';
import { commandProgram, readRunOptions, say } from '../program.js';
import { renderUnit, type UnitPlan } from '../unit-file.js';

const REFERENCE = commandReference('unit');
/** The first systemd with Type=notify-reload. */
const NOTIFY_RELOAD_SINCE = 253;

interface UnitOptions {
  output?: string;
  description?: string;
  environment?: string[];
  workingDirectory?: string;
  writable?: string[];
  user?: string;
  portBelow1024?: boolean;
  userUnit?: boolean;
  type?: string;
  node?: string;
  sdwrap?: string;
}

/** Runs `sdwrap unit` with the arguments after its name; resolves with the exit code. */
export async function run(argv: readonly string[], version: string): Promise<number> {
  const program = commandProgram(REFERENCE, "the app to run, with its arguments (the unit's <name> comes first)");
  const [name, ...rest] = argv;
  if (name === '-h' || name === '--help') program.parse(['--help'], { from: 'user' });
  if (name === undefined || name.startsWith('-')) {
    throw new UsageError("the unit's name comes first: sdwrap unit <name> [options] -- <command> [args...]");
  }
  const unitName = validateUnitName(name);
  program.parse(rest, { from: 'user' });
  const opts = program.opts<UnitOptions>();
  const { options, command } = await readRunOptions(program);
  if (options.systemd === false) {
    throw new UsageError('--no-systemd does not belong in a unit: there systemd restarts the app (Restart=on-failure)');
  }
  const config = buildConfig(options, command, false);
  if (opts.userUnit && opts.user !== undefined)
    throw new UsageError('--user and --user-unit: a user manager runs its units as its own user');
  if (opts.userUnit && opts.portBelow1024)
    throw new UsageError('--port-below-1024 and --user-unit: a user manager has no capability to hand out');

  // Paths named outright may be for another host, or not installed yet: a warning, not an error.
  const node = checkPath('--node', opts.node ?? process.execPath, isExecutableFile, 'an executable file');
  const sdwrap = checkPath('--sdwrap', opts.sdwrap ?? realpathSync(process.argv[1]!), isReadableFile, 'a readable file');
  const resolvedCommand = config.command.includes('/')
    ? checkPath('the command', path.resolve(config.command), isExecutableFile, 'an executable file')
    : findOnPath(config.command);
  const { type, typeWhy } = chooseType(opts.type ?? 'auto');
  const workingDirectory = opts.workingDirectory === undefined ? undefined : directory('--working-directory', opts.workingDirectory);
  const environment = (opts.environment ?? []).map(validateAssignment);
  const writable = (opts.writable ?? []).map((p) => {
    if (/[\n]/.test(p) || p.trim() === '') throw new UsageError(`--writable expects a path, got '${p}'`);
    return path.resolve(p);
  });
  if (opts.user !== undefined && !/^[a-z_][a-z0-9_-]*[$]?$/i.test(opts.user))
    throw new UsageError(`--user expects a user name, got '${opts.user}'`);
  const description = opts.description ?? `${unitName}, supervised by sdwrap`;
  if (/\n/.test(description)) throw new UsageError('--description must be one line');

  const runArgs = runArguments(rest);
  // Where the unit's files live: ProtectHome= hides the home directories.
  const files = [node, sdwrap, resolvedCommand, ...(workingDirectory ? [workingDirectory] : []), ...writable, ...configPaths(runArgs)];
  const inHome = files.filter(isUnderHome);
  const homeReadOnly = Boolean(opts.userUnit) && inHome.length > 0;
  if (!opts.userUnit) {
    for (const file of inHome) {
      say(
        `sdwrap unit: warning: ${file} is under a home directory, which ProtectHome=yes hides from the unit: install it elsewhere (see the README's Install)`,
      );
    }
  }
  for (const warning of secretWarnings(runArgs, environment)) say(`sdwrap unit: warning: ${warning}`);

  const plan: UnitPlan = {
    name: unitName,
    version,
    description,
    type,
    typeWhy,
    node,
    sdwrap,
    runArgs,
    command: resolvedCommand,
    args: config.args,
    config,
    environment,
    workingDirectory,
    writable,
    user: opts.user,
    portBelow1024: Boolean(opts.portBelow1024),
    userUnit: Boolean(opts.userUnit),
    homeReadOnly,
  };
  const text = renderUnit(plan);
  if (opts.output === undefined) {
    process.stdout.write(text);
    return 0;
  }
  const target = isDirectory(opts.output) ? path.join(opts.output, `${unitName}.service`) : path.resolve(opts.output);
  try {
    writeFileSync(target, text, { mode: 0o644 });
  } catch (error) {
    throw new UsageError(`--output ${target}: cannot write it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const ctl = opts.userUnit ? 'systemctl --user' : 'systemctl';
  say(`sdwrap unit: wrote ${target}; next: ${ctl} daemon-reload && ${ctl} enable --now ${unitName}.service`);
  return 0;
}

/** "myapp" or "myapp.service" (a template instance too: "myapp@blue"); returns the name without ".service". */
function validateUnitName(name: string): string {
  const bare = name.replace(/\.service$/, '');
  if (!/^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]+)?$/.test(bare) || bare.length > 200) {
    throw new UsageError(`'${name}' is not a unit name: use letters, digits and : _ . - (e.g. myapp, or myapp.service)`);
  }
  return bare;
}

/** Type=notify-reload only where systemd has it (253+): forced by --type, or asked of `systemctl --version`. */
function chooseType(choice: string): Pick<UnitPlan, 'type' | 'typeWhy'> {
  const reloadVia = 'ExecReload=sdwrap reload waits for the probes';
  if (choice === 'notify-reload')
    return { type: 'notify-reload', typeWhy: '--type notify-reload: systemctl reload sends SIGHUP and waits for READY=1 (systemd 253+).' };
  if (choice === 'notify') return { type: 'notify', typeWhy: `--type notify: ${reloadVia}.` };
  if (choice !== 'auto') throw new UsageError(`--type expects one of auto|notify|notify-reload, got '${choice}'`);
  const version = systemdVersion();
  if (version === undefined)
    return { type: 'notify', typeWhy: `systemctl --version gave no version: Type=notify, which every systemd has; ${reloadVia}.` };
  if (version >= NOTIFY_RELOAD_SINCE) {
    return {
      type: 'notify-reload',
      typeWhy: `systemd ${version} has Type=notify-reload: systemctl reload sends SIGHUP and waits for sdwrap's READY=1.`,
    };
  }
  return {
    type: 'notify',
    typeWhy: `systemd ${version} has no Type=notify-reload (${NOTIFY_RELOAD_SINCE}+): Type=notify, and ${reloadVia}.`,
  };
}

function systemdVersion(): number | undefined {
  const r = spawnSync('systemctl', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /^systemd (\d+)/m.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * The run's options as given, in order, for ExecStart=: the words before the command, less sdwrap unit's own
 * options (commander has checked them all). A --config path is made absolute: the unit does not run here.
 */
function runArguments(argv: readonly string[]): string[] {
  const specs = new Map<string, { own: boolean; value: boolean }>();
  const add = (options: readonly OptionSpec[], own: boolean) => {
    for (const o of options) for (const flag of o.flags.match(/--[\w-]+/g) ?? []) specs.set(flag, { own, value: /[<[]/.test(o.flags) });
  };
  add(
    REFERENCE.groups.flatMap((g) => g.options),
    true,
  );
  add(REFERENCE.hidden, false);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--' || !word.startsWith('--')) break;
    const eq = word.indexOf('=');
    const flag = eq < 0 ? word : word.slice(0, eq);
    const spec = specs.get(flag);
    if (!spec) continue;
    let value = spec.value && eq < 0 ? argv[++i] : eq < 0 ? undefined : word.slice(eq + 1);
    if (spec.own) continue;
    if (flag === '--config' && value !== undefined) value = path.resolve(value);
    out.push(flag, ...(value === undefined ? [] : [value]));
  }
  return out;
}

function configPaths(runArgs: readonly string[]): string[] {
  return runArgs.flatMap((word, i) => {
    const next = runArgs[i + 1];
    return word === '--config' && next !== undefined ? [next] : [];
  });
}

/** A command without a slash: the first executable of that name on PATH, by absolute path. */
function findOnPath(command: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir.startsWith('/')) continue;
    const candidate = path.join(dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new UsageError(`command '${command}' not found on PATH: give its absolute path`);
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function isReadableFile(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** An absolute path, or a UsageError; a warning when it is not (yet) what it should be here. */
function checkPath(what: string, file: string, ok: (file: string) => boolean, kind: string): string {
  if (!path.isAbsolute(file) || /\n/.test(file)) throw new UsageError(`${what} must be an absolute path, got '${file}'`);
  if (!ok(file)) say(`sdwrap unit: warning: ${what} ${file} is not ${kind} on this host: the unit will not start until it is`);
  return file;
}

function directory(what: string, dir: string): string {
  const absolute = path.resolve(dir);
  if (/\n/.test(dir) || !isDirectory(absolute)) throw new UsageError(`${what} ${absolute} is not a directory`);
  return absolute;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isUnderHome(file: string): boolean {
  return /^\/(home|root|run\/user)(\/|$)/.test(file);
}

function validateAssignment(text: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(text) || /\n/.test(text))
    throw new UsageError(`--environment expects NAME=value, got '${text.split('=')[0]}=…'`);
  return text;
}

/** What a unit file would give away: it is world-readable, and `systemctl show` prints ExecStart= to anyone. */
function secretWarnings(runArgs: readonly string[], environment: readonly string[]): string[] {
  const warnings: string[] = [];
  const where = 'the unit file (world-readable; `systemctl show` prints it to any user): put it in a --config file readable by root only';
  for (const [i, flag] of runArgs.entries()) {
    const value = runArgs[i + 1] ?? '';
    if (flag === '--heartbeat-url') warnings.push(`--heartbeat-url is a secret and lands in ${where}`);
    if (flag === '--http-request-header' && isSecretHeader((value.split(':')[0] ?? '').trim()))
      warnings.push(`--http-request-header '${value.split(':')[0]}: …' lands in ${where}`);
    if (['--http', '--ws', '--probe'].includes(flag) && /:\/\/[^/@\s]*:[^/@\s]*@/.test(value))
      warnings.push(`the password in ${flag}'s URL lands in ${where}`);
  }
  for (const assignment of environment) {
    const name = assignment.split('=')[0] ?? '';
    if (isSecretHeader(name))
      warnings.push(
        `--environment ${name}=… looks like a secret; the unit file is world-readable: use LoadCredential= or an EnvironmentFile= readable by root only`,
      );
  }
  return warnings;
}
