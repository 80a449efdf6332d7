// The command-line parsers of sdwrap and its subcommands, built from help.ts (so --help, the man page and
// the README cannot drift apart), and the reading of a run's options with its --config file.
import { Command, Option } from 'commander';
import { writeSync } from 'node:fs';
import type { RawOptions } from './config.js';
import { commandEpilogue, describeOption, type CommandReference, type OptionGroup, type OptionSpec } from './help.js';

/**
 * Writes to fd 1 or 2 synchronously (process.stdout/stderr would turn an fd a child shares non-blocking). A
 * reader that went away (`sdwrap --help | head -1`) is no error of sdwrap's: what it did not read is dropped.
 */
function writeOut(fd: 1 | 2, text: string): void {
  try {
    writeSync(fd, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
  }
}

/** One line on stderr. */
export function say(text: string): void {
  writeOut(2, text.endsWith('\n') ? text : `${text}\n`);
}

/** Ends every usage error's line: where to read more. */
export const helpPointer = (command?: string) => ` (see 'sdwrap ${command ? `${command} ` : ''}--help')`;

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export interface ProgramSpec {
  /** "sdwrap", "sdwrap probe". */
  name: string;
  usage: string;
  description: string;
  groups: readonly OptionGroup[];
  /** Options taken but not listed in --help. */
  hidden?: readonly OptionSpec[];
  /** The text after the options; a function, so it is made only when help is shown. */
  epilogue: () => string;
  /** The subcommand, for the pointer at the end of a usage error. */
  command?: string;
  /** What the words after the options are, for --help; null when the command takes none. */
  argument?: string | null;
  version?: string;
}

/** The parser of a subcommand (`sdwrap probe`, ...), from its reference; `argument` says what its words are. */
export function commandProgram(reference: CommandReference, argument: string | null): Command {
  return buildProgram({
    name: `sdwrap ${reference.name}`,
    usage: reference.synopsis.replace(`sdwrap ${reference.name} `, ''),
    description: reference.description,
    groups: reference.groups,
    hidden: reference.hidden,
    epilogue: () => commandEpilogue(reference),
    command: reference.name,
    argument,
  });
}

/** A commander program that parses options up to the first argument that is not one, and never exits itself. */
export function buildProgram(spec: ProgramSpec): Command {
  const program = new Command(spec.name).usage(spec.usage).description(spec.description);
  if (spec.argument !== null) program.argument('[command...]', spec.argument ?? 'the app, with its arguments');
  program
    .passThroughOptions()
    .allowExcessArguments(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => writeOut(1, text),
      writeErr: (text) => say(text.trimEnd()),
      // Never echo an option's value: `--heartbeat-ur=https://…/secret` must not print the secret.
      // One line: commander puts its "(Did you mean --http?)" on a second one.
      outputError: (text) => {
        const line = text
          .replace(/^error: /, '')
          .replace(/(--[\w-]+)=[^'"\s]*/g, '$1=…')
          .trim()
          .replace(/\s*\n\s*/g, ' ');
        say(`sdwrap${spec.command ? ` ${spec.command}` : ''}: ${line}${helpPointer(spec.command)}`);
      },
    });
  const add = (option: OptionSpec, hidden: boolean) => {
    const built = new Option(option.flags, describeOption(option));
    if (hidden) built.hideHelp();
    program.addOption(option.repeatable ? built.argParser(collect) : built);
  };
  for (const group of spec.groups) {
    program.optionsGroup(`${group.title}:`);
    for (const option of group.options) {
      if (option.flags === '-h, --help') program.helpOption(option.flags, option.description);
      else if (option.flags === '-V, --version') program.version(spec.version ?? '', option.flags, option.description);
      else add(option, false);
    }
  }
  for (const option of spec.hidden ?? []) add(option, true);
  return program.addHelpText('after', () => spec.epilogue());
}

/**
 * A run's options as the command line gave them (only those it really gave: commander fills in
 * `systemd: true` for --no-systemd's default), merged with the --config file they name, and the command.
 */
export async function readRunOptions(program: Command): Promise<{ options: RawOptions; command: string[] }> {
  const all = program.opts<RawOptions>();
  const given = Object.fromEntries(Object.entries(all).filter(([key]) => program.getOptionValueSource(key) === 'cli')) as RawOptions;
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
  return { options, command };
}
