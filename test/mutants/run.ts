// Hand-made mutants of the process-level rules (`npm run mutants`, run by .ci/run). Each mutant breaks one
// rule in a copy of the tree (never the working tree), the copy is built, and the tests that guard the rule run
// against it: each must fail. First the same tests run on an unmutated copy and must pass, so a failure means
// the mutant was caught, not that the tests cannot run here. Prints a table; exits 1 unless every mutant is
// killed. StrykerJS (`npm run mutation`) covers the pure modules; these are the rules it cannot reach.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Guard {
  file: string;
  /** --test-name-pattern: only the tests about this rule. */
  pattern?: string;
}

interface Mutant {
  name: string;
  file: string;
  /** Must occur exactly once in `file`. */
  from: string;
  to: string;
  guards: Guard[];
}

const MUTANTS: Mutant[] = [
  {
    name: 'WATCHDOG=1 sent unconditionally',
    file: 'src/lifecycle.ts',
    from: "    if (vouch.vouch) return this.emit({ type: 'ping-watchdog' });\n",
    // m.state is never empty: the ping goes out whatever vouchFor says (and the rest still type-checks).
    to: "    if (vouch.vouch || m.state) return this.emit({ type: 'ping-watchdog' });\n",
    guards: [{ file: 'test/unit/supervisor.test.ts' }, { file: 'test/process/watchdog.test.ts', pattern: 'hung app' }],
  },
  {
    name: 'READY=1 before the probe passes',
    file: 'src/lifecycle.ts',
    from: "    if (probes.length === 0) {\n      this.onHealthy({ type: 'healthy', detail: 'no probe configured",
    to: "    if (probes.length >= 0) {\n      this.onHealthy({ type: 'healthy', detail: 'no probe configured",
    guards: [{ file: 'test/process/notify.test.ts', pattern: 'READY=1 exactly once' }],
  },
  {
    name: 'no SIGCONT after a relayed SIGTERM',
    file: 'src/supervisor.ts',
    from: "        if (effect.signal === 'SIGTERM') this.#processes.signal(pid, 'SIGCONT');\n",
    to: '',
    guards: [{ file: 'test/process/signals.test.ts', pattern: 'followed by SIGCONT' }],
  },
  {
    name: 'no tree kill when unhealthy',
    file: 'src/lifecycle.ts',
    from: "    this.emit({ type: 'stop-probing' }, { type: 'terminate-tree' }, { type: 'arm-deadline' });\n",
    to: "    this.emit({ type: 'stop-probing' }, { type: 'arm-deadline' });\n",
    guards: [{ file: 'test/unit/lifecycle.test.ts' }, { file: 'test/process/unhealthy.test.ts', pattern: 'SIGSTOPped server' }],
  },
  {
    name: 'NOTIFY_SOCKET passed on to the app',
    file: 'src/systemd-env.ts',
    from: "['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']",
    to: "['WATCHDOG_USEC', 'WATCHDOG_PID']",
    guards: [{ file: 'test/unit/exit-timing-env.test.ts' }, { file: 'test/process/child.test.ts', pattern: '^the child inherits' }],
  },
  {
    name: "socket activation: LISTEN_PID left as sdwrap's",
    file: 'src/supervisor.ts',
    from: "...(listenFds > 0 ? ['LISTEN_PID'] : [])",
    to: "...(listenFds > 999 ? ['LISTEN_PID'] : [])",
    guards: [{ file: 'test/process/socket-activation.test.ts', pattern: 'fd 3 with LISTEN_PID' }],
  },
  {
    name: "--notify-passthrough: READY=1 without the app's READY=1",
    file: 'src/lifecycle.ts',
    from: 'if (waiting.length > 0) {',
    to: 'if (waiting.length > 99) {',
    guards: [
      { file: 'test/unit/lifecycle-legacy.test.ts' },
      { file: 'test/process/notify-passthrough.test.ts', pattern: "READY=1 needs the app's READY" },
    ],
  },
  {
    name: "--pid-file: the command's exit 0 taken for the daemon's end",
    file: 'src/lifecycle.ts',
    from: "(m.follow === 'pid-file' && event.status.code === 0 && m.state !== 'stopping')",
    to: "(m.follow === 'pid-file' && event.status.code === 99 && m.state !== 'stopping')",
    guards: [{ file: 'test/unit/lifecycle-legacy.test.ts' }, { file: 'test/process/pid-file.test.ts', pattern: 'a daemon that forks' }],
  },
];

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TEST_TIMEOUT_MS = 180_000;
const began = Date.now();
const say = (text: string) => process.stderr.write(`[mutants ${((Date.now() - began) / 1000).toFixed(0)}s] ${text}\n`);

/** The working tree as git sees it (tracked and new files, not ignored ones), copied to `dir`. */
function copyTree(dir: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    try {
      copyFileSync(join(ROOT, file), join(dir, file));
    } catch (error) {
      // A file deleted from the working tree but still in the index.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
}

function mutate(dir: string, mutant: Mutant): void {
  const path = join(dir, mutant.file);
  const text = readFileSync(path, 'utf8');
  const count = text.split(mutant.from).length - 1;
  if (count !== 1)
    throw new Error(
      `"${mutant.name}": expected its pattern once in ${mutant.file}, found it ${count} times (the code moved: update test/mutants/run.ts)`,
    );
  writeFileSync(path, text.replace(mutant.from, mutant.to));
}

function build(dir: string): { ok: boolean; output: string } {
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: dir, encoding: 'utf8', timeout: TEST_TIMEOUT_MS });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** Runs one guard's tests in `dir`; true when they all passed. */
function passes(dir: string, guard: Guard): { passed: boolean; output: string } {
  const args = [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    ...(guard.pattern ? ['--test-name-pattern', guard.pattern] : []),
    guard.file,
  ];
  const r = spawnSync(process.execPath, args, {
    cwd: dir,
    encoding: 'utf8',
    timeout: TEST_TIMEOUT_MS,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const output = `${r.stdout}${r.stderr}`;
  // A pattern that matches no test would "pass" vacuously: count what ran.
  const ran = Number(/^# pass (\d+)/m.exec(output)?.[1] ?? 0) + Number(/^# fail (\d+)/m.exec(output)?.[1] ?? 0);
  if (ran === 0) throw new Error(`${guard.file} ${guard.pattern ?? ''}: no test ran\n${output.slice(-3000)}`);
  return { passed: r.status === 0, output };
}

const describeGuard = (g: Guard) => `${g.file}${g.pattern ? ` /${g.pattern}/` : ''}`;

function main(): number {
  const work = mkdtempSync(join(tmpdir(), 'sdwrap-mutants-'));
  try {
    say(`baseline: the guarding tests on an unmutated copy (${work})`);
    const baseline = join(work, 'baseline');
    copyTree(baseline);
    const built = build(baseline);
    if (!built.ok) throw new Error(`the unmutated copy does not build:\n${built.output}`);
    const guards = [...new Map(MUTANTS.flatMap((m) => m.guards).map((g) => [describeGuard(g), g])).values()];
    for (const guard of guards) {
      const r = passes(baseline, guard);
      if (!r.passed) throw new Error(`${describeGuard(guard)} fails without any mutant, so it can tell nothing:\n${r.output.slice(-5000)}`);
    }
    rmSync(baseline, { recursive: true, force: true });

    const rows: Array<{ name: string; result: string; by: string }> = [];
    for (const [i, mutant] of MUTANTS.entries()) {
      say(`${i + 1}/${MUTANTS.length}: ${mutant.name}`);
      const dir = join(work, `mutant-${i + 1}`);
      copyTree(dir);
      mutate(dir, mutant);
      const b = build(dir);
      if (!b.ok) {
        rows.push({ name: mutant.name, result: 'INVALID', by: `does not build: ${b.output.trim().split('\n')[0]}` });
        continue;
      }
      const killers = mutant.guards.filter((g) => !passes(dir, g).passed).map(describeGuard);
      rows.push({ name: mutant.name, result: killers.length > 0 ? 'killed' : 'SURVIVED', by: killers.join(', ') || '-' });
      rmSync(dir, { recursive: true, force: true });
    }

    const width = Math.max(...rows.map((r) => r.name.length));
    process.stdout.write(`\n${'mutant'.padEnd(width)}  result    failing tests\n`);
    for (const r of rows) process.stdout.write(`${r.name.padEnd(width)}  ${r.result.padEnd(8)}  ${r.by}\n`);
    const killed = rows.filter((r) => r.result === 'killed').length;
    process.stdout.write(`\n${killed} of ${rows.length} mutants killed in ${Math.round((Date.now() - began) / 1000)} s\n`);
    return killed === rows.length ? 0 : 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  process.exitCode = main();
} catch (error) {
  say(error instanceof Error ? error.message : String(error));
  process.exitCode = 2;
}
