// Writes dist/sdwrap.1 from src/help.ts, the same source `sdwrap --help` is built from, so the man page
// cannot drift from the help. Run by `npm run build` (and so by prepack).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { COMMANDS, ENVIRONMENT, EXAMPLES, EXIT_CODES, OPTION_GROUPS, SPAN_TEXT, SUMMARY, describeOption } from '../src/help.js';

/** Escapes text for roff: backslashes, and a leading dot or quote that would read as a request. */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

/** Bold option names and italic placeholders, as man pages set them. */
function flags(text: string): string {
  return text
    .split(', ')
    .map((part) => {
      const [name, ...rest] = part.split(' ');
      const arg = rest.join(' ');
      return `\\fB${roff(name!)}\\fR${arg ? ` \\fI${roff(arg)}\\fR` : ''}`;
    })
    .join(', ');
}

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const lines: string[] = [
  `.TH SDWRAP 1 "" "sdwrap ${version}" "User Commands"`,
  '.SH NAME',
  'sdwrap \\- keep a service not just running but working: probe-gated READY=1 and WATCHDOG=1 for systemd',
  '.SH SYNOPSIS',
  '.B sdwrap',
  '[\\fIoptions\\fR] [\\fB\\-\\-\\fR] \\fIcommand\\fR [\\fIargs\\fR...]',
  ...COMMANDS.flatMap((c) => ['.br', roff(c.synopsis)]),
  '.SH DESCRIPTION',
  roff(SUMMARY),
  '.PP',
  roff('Option parsing stops at the first argument that is not an option; everything after the command belongs to the command.'),
  '.PP',
  roff(SPAN_TEXT),
];
lines.push('.SH OPTIONS');
for (const group of OPTION_GROUPS) {
  lines.push(`.SS ${roff(group.title)}`);
  for (const option of group.options) lines.push('.TP', flags(option.flags), roff(describeOption(option)));
}
// Each subcommand after the run's own reference: its options stay out of OPTIONS, which lists a run's.
lines.push('.SH COMMANDS', roff('The first argument may name a command; an app named like one runs as sdwrap [options] -- probe.'));
for (const command of COMMANDS) {
  lines.push(`.SS ${roff(command.synopsis)}`, roff(command.description));
  for (const group of command.groups) {
    lines.push('.PP', `\\fI${roff(group.title)}\\fR`);
    for (const option of group.options) lines.push('.TP', flags(option.flags), roff(describeOption(option)));
  }
  for (const example of command.examples)
    lines.push('.PP', roff(example.title), '.PP', '.nf', '.RS 4', roff(example.command), '.RE', '.fi');
  lines.push('.PP', 'Exit status:');
  for (const exit of command.exitCodes) lines.push('.TP', `\\fB${roff(exit.code)}\\fR`, roff(exit.meaning));
}
lines.push('.SH EXAMPLES');
for (const example of EXAMPLES) lines.push('.PP', roff(example.title), '.PP', '.nf', `.RS 4`, roff(example.command), '.RE', '.fi');
lines.push('.SH EXIT STATUS');
for (const exit of EXIT_CODES) lines.push('.TP', `\\fB${roff(exit.code)}\\fR`, roff(exit.meaning));
lines.push('.SH ENVIRONMENT');
for (const variable of ENVIRONMENT) lines.push('.TP', `\\fB${roff(variable.name)}\\fR`, roff(variable.meaning));
lines.push('.SH SEE ALSO', '\\fBsystemd.service\\fR(5), \\fBsd_notify\\fR(3), \\fBsystemd.kill\\fR(5); README.md in the package.');

mkdirSync(new URL('../dist/', import.meta.url), { recursive: true });
writeFileSync(new URL('../dist/sdwrap.1', import.meta.url), `${lines.join('\n')}\n`);
