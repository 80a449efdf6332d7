// The reference a user reads: `--help` (grouped, with spans, examples, exit codes and environment), the man
// page and the README's options table name the same flags; usage errors are one line that says how to fix
// the mistake and points at --help.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runSdwrap, SDWRAP_BIN, stopAll } from '../helpers/run-sdwrap.js';

after(stopAll);

const help = (...command: string[]) => spawnSync(process.execPath, [SDWRAP_BIN, ...command, '--help'], { encoding: 'utf8' });
const COMMANDS = ['probe', 'unit', 'reload'] as const;
const longFlags = (text: string) => new Set([...text.matchAll(/(?<![\w-])--[a-z][\w-]*/g)].map((m) => m[0]));

/** The flags the options section of --help lists (each option line starts with its flags). */
function helpFlags(text: string): Set<string> {
  const optionLines = text.split('\n').filter((l) => /^ {2}(-\w, )?--[a-z]/.test(l));
  return new Set(optionLines.map((l) => /--[a-z][\w-]*/.exec(l)![0]));
}

/** --help's option sections: title -> the flags it lists. */
function helpSections(text: string): Map<string, Set<string>> {
  const sections = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of text.split('\n')) {
    const title = /^([A-Z][\w ]*):$/.exec(line);
    if (title) sections.set(title[1]!, (current = new Set()));
    else if (current && /^ {2}(-\w, )?--[a-z]/.test(line)) current.add(/--[a-z][\w-]*/.exec(line)![0]);
  }
  return sections;
}

/** The long flags of the README table rows in text (rows start with "| `-"). */
function tableFlags(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .filter((l) => l.startsWith('| `-'))
      .flatMap((l) => [...longFlags(l.split(' | ')[0]!)]),
  );
}

/** The long flags a man page part lists, each at the start of a .TP tag line. */
function manFlags(text: string): Set<string> {
  const man = text.replace(/\\-/g, '-');
  return new Set(
    [...man.matchAll(/^\\fB(--[a-z][\w-]*)/gm)]
      .map((m) => m[1]!)
      .concat([...man.matchAll(/^\\fB-\w\\fR, \\fB(--[a-z][\w-]*)/gm)].map((m) => m[1]!)),
  );
}

test('--help: stdout, exit 0, options in groups, span syntax, examples, exit codes, environment', () => {
  const r = help();
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
  for (const heading of [
    'Probes:',
    'HTTP checks:',
    'WebSocket:',
    'Timing and thresholds:',
    'systemd:',
    'Local mode:',
    'Logging:',
    'Examples:',
    'Exit status:',
    'Environment:',
  ]) {
    assert.match(r.stdout, new RegExp(`^${heading}$`, 'm'), `--help has a "${heading}" section`);
  }
  assert.match(r.stdout, /<span> is a systemd time span: 500ms, 5s, 2min/);
  assert.match(r.stdout, /ExecStart=\/usr\/bin\/node \S+ --http /);
  assert.match(r.stdout, /^ {2}69 +the app was unhealthy/m);
  assert.match(r.stdout, /^ {2}NOTIFY_SOCKET$/m);
  // Each group lists its own options: --http-method under "HTTP checks", --restart under "Local mode".
  const section = (name: string) => r.stdout.split(`\n${name}:\n`)[1]!.split('\n\n')[0]!;
  assert.match(section('HTTP checks'), /--http-method/);
  assert.match(section('Local mode'), /--restart-delay/);
  assert.doesNotMatch(section('Probes'), /--restart/);
});

test('--help into a reader that goes away (| head -1): exit 0, no error', async () => {
  for (const args of [['--help'], ['probe', '--help'], ['unit', '--help']]) {
    const child = spawn(process.execPath, [SDWRAP_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Read nothing: close the pipe at once, as `head -1` does after its line.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, `${args.join(' ')}: ${stderr}`);
    assert.equal(stderr, '', args.join(' '));
  }
});

test('--help, the man page and the README options table list the same flags', () => {
  const fromHelp = helpFlags(help().stdout);
  assert.ok(fromHelp.size > 30, [...fromHelp].join(' '));
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const options = readme.split('\n## Options\n')[1]!.split('\n## ')[0]!;
  assert.deepEqual([...tableFlags(options)].sort(), [...fromHelp].sort(), 'README options table vs --help');
  // The man page, built by `npm run build` from the same source as --help; the commands come after a run's options.
  const man = readFileSync(path.join(REPO_ROOT, 'dist/sdwrap.1'), 'utf8').split('\n.SH COMMANDS\n')[0]!;
  assert.deepEqual([...manFlags(man)].sort(), [...fromHelp].sort(), 'man page vs --help');
});

test('sdwrap --help lists the commands; each command has a --help of its own', () => {
  const main = help().stdout;
  for (const command of COMMANDS) {
    assert.match(main, new RegExp(`^ {2}${command} +\\S`, 'm'), `sdwrap --help lists ${command}`);
    const r = help(command);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp(`^Usage: sdwrap ${command} `, 'm'));
    assert.match(r.stdout, /^Examples:$/m);
    assert.match(r.stdout, /^Exit status:$/m);
  }
});

test("each command's --help, its part of the man page and its README table list the same flags", () => {
  const mainSections = helpSections(help().stdout);
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const commandsPart = readme.split('\n## Commands\n')[1]!.split('\n## ')[0]!;
  const man = readFileSync(path.join(REPO_ROOT, 'dist/sdwrap.1'), 'utf8').split('\n.SH COMMANDS\n')[1]!.split('\n.SH ')[0]!;
  for (const command of COMMANDS) {
    const text = help(command).stdout;
    const fromHelp = helpFlags(text);
    assert.ok(fromHelp.has('--help'), text);
    const manPart = man.split(/^\.SS /m).find((part) => part.startsWith(`sdwrap ${command} `));
    assert.ok(manPart, `the man page has a section for sdwrap ${command}`);
    assert.deepEqual([...manFlags(manPart)].sort(), [...fromHelp].sort(), `man page vs sdwrap ${command} --help`);
    // The README lists a command's own options; a section the run's --help has too (Probes, HTTP checks, ...) is
    // the run's options, which the README's Options table lists.
    const own = new Set(
      [...helpSections(text)].flatMap(([title, flags]) => (title !== 'Other' && mainSections.has(title) ? [] : [...flags])),
    );
    const section = commandsPart.split(`\n### sdwrap ${command}\n`)[1]?.split('\n### ')[0];
    assert.ok(section, `README has a "### sdwrap ${command}" section under "## Commands"`);
    assert.deepEqual([...tableFlags(section)].sort(), [...own].sort(), `README's sdwrap ${command} table vs its --help`);
  }
});

test('usage errors: one line, exit 2, the real problem named, a pointer to --help', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--interval', 'soon', '--', 'true'], /^sdwrap: --interval expects a time span .*got 'soon' \(see 'sdwrap --help'\)$/],
    [['--bogus', '--', 'true'], /^sdwrap: unknown option '--bogus'.* \(see 'sdwrap --help'\)$/],
    [['--htp', 'x', '--', 'true'], /^sdwrap: unknown option '--htp' \(Did you mean --http\?\) \(see 'sdwrap --help'\)$/],
    // A port out of range is named as such, not as "expects a URL".
    [['--http', 'http://127.0.0.1:70000/healthz', '--', 'true'], /^sdwrap: --http: port 70000 is out of range \(1-65535\)/],
    [['--ws', 'ws://127.0.0.1:99999/ws', '--', 'true'], /^sdwrap: --ws: port 99999 is out of range \(1-65535\)/],
    [['--heartbeat-url', 'https://hc.example:123456/secret-uuid', '--', 'true'], /^sdwrap: --heartbeat-url: port 123456 is out of range/],
    // The span limit in the unit the README uses (24 days).
    [['--interval', '30d', '--', 'true'], /^sdwrap: --interval must be at most 24 days \(24d 20h 31min 23s 647ms/],
    // A probe flag that took `--` or another option as its value.
    [['--exec', '--', 'sleep', '1'], /^sdwrap: --exec took '--' as its value: .*quote.*e\.g\. --exec 'pg_isready -q'/],
    [
      ['--http', '--timeout', '1s', '--', 'true'],
      /^sdwrap: --http took '--timeout' as its value: .*e\.g\. --http http:\/\/127\.0\.0\.1:8080\/healthz/,
    ],
    [['--probe', '-x', '--', 'true'], /^sdwrap: --probe took '-x' as its value/],
  ];
  // A command's usage errors point at its own --help.
  cases.push(
    [['probe'], /^sdwrap probe: no probe to run: .* \(see 'sdwrap probe --help'\)$/],
    [['probe', '--bogus'], /^sdwrap probe: unknown option '--bogus' \(see 'sdwrap probe --help'\)$/],
    [['unit', '--http', 'x'], /^sdwrap unit: the unit's name comes first: .* \(see 'sdwrap unit --help'\)$/],
    [
      ['reload', '--timeout', 'soon', '--control-socket', '/nonexistent'],
      /^sdwrap reload: --timeout expects a time span .* \(see 'sdwrap reload --help'\)$/,
    ],
  );
  for (const [args, message] of cases) {
    const run = runSdwrap(args);
    assert.deepEqual(await run.waitForExit(10_000), { code: 2, signal: null }, `${args.join(' ')}\n${run.dump()}`);
    assert.equal(run.stderr.length, 1, run.dump());
    assert.match(run.stderr[0]!, message);
    assert.doesNotMatch(run.stderr[0]!, /secret-uuid/);
  }
});
