// Where sdwrap's start-up time and memory go: `node --import tsx bench/profile-startup.ts`.
//
// Builds throw-away copies under a temp dir (never touches src/ or dist/):
//   head           git HEAD, built with tsc (what `npm run build` makes)
//   bundle-1file   HEAD's src/cli.ts bundled by esbuild into one ESM file (sd-notify left external): the lazy
//                  probe modules and their dependencies (undici, execa) end up in it, parsed at every start
//   bundle         esbuild with --splitting: cli.js holds what every run needs; each lazily imported probe
//                  (and pino-pretty) is its own chunk with its dependencies, loaded only when used
//   bundle-min     the same, minified
//   bundle-cjs     one minified CommonJS file, undici/execa/pino-pretty/zod external (required lazily), CJS bin
// and measures, interleaved, median of N runs (BENCH_QUICK=1: fewer):
//   A. wall time of `-- true` for each build, and of `node -e "await import(X)"` for each dependency
//   B. peak RSS (maxRSS at exit) of the same
//   C. VmHWM after 5 s idling with --http every 1 s, per build
//   D. the phases of HEAD's `-- true`: process start to the "spawned" log, "child exited" to process exit
// The floor: bench/experiments/floor.mjs, a dependency-free Node script doing the least a supervisor does
// for `-- true`, shows how close to `node -e 0` a Node implementation can get at all.
// Prints Markdown tables; writes bench/profile-results.json. BENCH_PROFILE_KEEP=1 keeps the builds.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/ports.js';
import { readMem } from './lib/proc.js';
import { sleep } from './lib/row.js';
import { benchEnv, cleanup, Proc, REPO_ROOT, TEST_FIXTURES } from './lib/spawn.js';
import { median, round } from './lib/stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const N = QUICK ? 5 : 15;
const OUT = fileURLToPath(new URL('./profile-results.json', import.meta.url));
const NM = path.join(REPO_ROOT, 'node_modules');
const say = (t: string) => process.stderr.write(`[profile] ${t}\n`);

function sh(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd ?? '.'}) failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** A copy of git HEAD at `dir`, with node_modules linked and dist built by tsc. */
function checkout(dir: string, patch?: (dir: string) => void): void {
  mkdirSync(dir, { recursive: true });
  const tar = execFileSync('git', ['archive', 'HEAD'], { cwd: REPO_ROOT, maxBuffer: 1 << 28 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(NM, path.join(dir, 'node_modules'));
  patch?.(dir);
  sh(path.join(NM, '.bin', 'tsc'), ['-p', 'tsconfig.json'], dir);
}

/**
 * esbuild bundle of `from`/src/cli.ts into `dir`/dist, with package.json and bin/ beside it.
 * ESM: with --splitting each lazily imported probe is its own chunk. CJS (no splitting in esbuild): the lazy
 * dependencies stay external, so their require() runs only when the probe module is first initialised, and
 * bin/sdwrap.js is a CommonJS file (package.json without "type": "module").
 */
function bundle(from: string, dir: string, { minify = false, split = true, cjs = false } = {}): void {
  mkdirSync(path.join(dir, 'dist'), { recursive: true });
  cpSync(path.join(from, 'bin'), path.join(dir, 'bin'), { recursive: true });
  const pkg = JSON.parse(readFileSync(path.join(from, 'package.json'), 'utf8')) as Record<string, unknown>;
  if (cjs) delete pkg.type;
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  symlinkSync(NM, path.join(dir, 'node_modules'));
  const common = [
    path.join(from, 'src', 'cli.ts'),
    '--bundle',
    '--platform=node',
    '--target=node20',
    '--log-level=warning',
    '--external:sd-notify',
    ...(minify ? ['--minify'] : []),
  ];
  if (cjs) {
    sh(path.join(NM, '.bin', 'esbuild'), [
      ...common,
      '--format=cjs',
      '--external:undici',
      '--external:execa',
      '--external:pino-pretty',
      '--external:zod',
      '--define:import.meta.url=__sdwrapUrl',
      "--banner:js=const __sdwrapUrl = require('node:url').pathToFileURL(__filename).href;",
      `--outfile=${path.join(dir, 'dist', 'cli.cjs')}`,
    ]);
    writeFileSync(path.join(dir, 'bin', 'sdwrap.js'), "#!/usr/bin/env node\nrequire('../dist/cli.cjs');\n");
    return;
  }
  sh(path.join(NM, '.bin', 'esbuild'), [
    ...common,
    '--format=esm',
    // CommonJS dependencies (commander, pino) call require(): give the ESM bundle one.
    "--banner:js=import { createRequire as __sdwrapCreateRequire } from 'node:module'; const require = __sdwrapCreateRequire(import.meta.url);",
    ...(split ? ['--splitting', `--outdir=${path.join(dir, 'dist')}`] : [`--outfile=${path.join(dir, 'dist', 'cli.js')}`]),
  ]);
}

interface Variant {
  name: string;
  args: string[];
  cwd: string;
}

interface Timing {
  ms: number;
  cpuMs: number;
  rssMiB: number;
}

/** Wall ms, CPU ms (the child's own rusage) and maxRSS of each variant: medians, runs interleaved (lib/timer.py). */
function measure(variants: Variant[]): Map<string, Timing> {
  const spec = { runs: N, warmup: 1, variants: variants.map((v) => ({ name: v.name, argv: [process.execPath, ...v.args], cwd: v.cwd })) };
  const out = execFileSync('python3', [fileURLToPath(new URL('./lib/timer.py', import.meta.url)), JSON.stringify(spec)], {
    encoding: 'utf8',
    env: benchEnv(),
    timeout: 20 * 60_000,
    maxBuffer: 1 << 26,
  });
  const res = JSON.parse(out) as Record<string, { wall_ms: number; cpu_ms: number; maxrss_kib: number; status: number }[]>;
  return new Map(
    variants.map((v) => {
      const xs = res[v.name]!;
      const bad = xs.find((x) => x.status !== 0);
      if (bad) throw new Error(`${v.name}: exit status ${bad.status}`);
      return [
        v.name,
        {
          ms: round(median(xs.map((x) => x.wall_ms)), 1),
          cpuMs: round(median(xs.map((x) => x.cpu_ms)), 1),
          rssMiB: round(median(xs.map((x) => x.maxrss_kib)) / 1024, 1),
        },
      ];
    }),
  );
}

async function idleHwm(builds: Record<string, string>, settleMs: number): Promise<Record<string, number>> {
  const runs = await Promise.all(
    Object.entries(builds).map(async ([name, dir]) => {
      const port = await freePort();
      const p = new Proc(process.execPath, [
        path.join(dir, 'bin', 'sdwrap.js'),
        '--http',
        `http://127.0.0.1:${port}/healthz`,
        '--interval',
        '1s',
        '--timeout',
        '1s',
        '--',
        'node',
        path.join(TEST_FIXTURES, 'server.mjs'),
        '--port',
        String(port),
      ]);
      return { name, p };
    }),
  );
  const bare = new Proc(process.execPath, ['-e', 'setInterval(()=>{},1000)']);
  try {
    await Promise.all(runs.map((r) => r.p.waitLog('ready', 15_000)));
    await sleep(settleMs);
    const out: Record<string, number> = { 'bare node': round((readMem(bare.pid)?.vmHWM ?? Number.NaN) / 1024, 1) };
    for (const r of runs) out[r.name] = round((readMem(r.p.pid)?.vmHWM ?? Number.NaN) / 1024, 1);
    return out;
  } finally {
    for (const r of runs) r.p.kill('SIGTERM');
    bare.kill('SIGTERM');
    await Promise.all([...runs.map((r) => r.p.waitExit(15_000)), bare.waitExit(5000)]);
  }
}

/** Process start -> "spawned" log, and "child exited" log -> process reaped, for HEAD's `-- true`. */
function phases(dir: string): { toSpawnedMs: number; exitPathMs: number } {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'sdwrap.js'), '--', 'true'], {
      encoding: 'utf8',
      env: benchEnv(),
      timeout: 20_000,
    });
    const t1 = Date.now();
    const logs = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; time: number });
    const spawned = logs.find((l) => l.msg === 'spawned');
    const exited = logs.find((l) => l.msg === 'child exited');
    if (spawned && exited) {
      a.push(spawned.time - t0);
      b.push(t1 - exited.time);
    }
  }
  return { toSpawnedMs: round(median(a), 1), exitPathMs: round(median(b), 1) };
}

/**
 * What `dist/cli.js` loads before main() runs: its static imports, followed through sdwrap's own modules.
 * Returns the third-party packages (in first-seen order) and the own modules (paths relative to `dir`),
 * cli.js itself excluded. Dynamic import()s (probes, zod, pino-pretty) are lazy and not followed.
 */
export function staticGraph(dir: string): { packages: string[]; own: string[] } {
  const packages: string[] = [];
  const own: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^import\s+(?:[\s\S]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec);
        visit(target);
        continue;
      }
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!packages.includes(pkg)) packages.push(pkg);
    }
    if (!file.endsWith(`${path.sep}cli.js`)) own.push(`./${path.relative(dir, file)}`);
  };
  visit(path.join(dir, 'dist', 'cli.js'));
  return { packages, own };
}

/** performance.now() around each import, in the order cli.js loads them; median over N fresh processes. */
function importSteps(dir: string): Record<string, number> {
  const { packages, own } = staticGraph(dir);
  const script = path.join(dir, 'import-steps.mjs');
  const lines = [
    "const T = {}; let t = performance.now(); T['node bootstrap (to first line of script)'] = t;",
    'const step = async (name, f) => { await f(); const n = performance.now(); T[name] = n - t; t = n; };',
    ...packages.map((p) => `await step(${JSON.stringify(p)}, () => import(${JSON.stringify(p)}));`),
    `await step(${JSON.stringify(`sdwrap's own modules (${own.length} files)`)}, async () => { for (const m of ${JSON.stringify(own)}) await import(m); });`,
    "await step('undici (lazy: --http, --ws, heartbeats)', () => import('undici'));",
    "await step('execa (lazy: --exec)', () => import('execa'));",
    'console.log(JSON.stringify(T));',
  ];
  writeFileSync(script, `${lines.join('\n')}\n`);
  const runs: Record<string, number>[] = [];
  for (let i = 0; i < N; i++) {
    const r = spawnSync(process.execPath, [script], { cwd: dir, encoding: 'utf8', env: benchEnv(), timeout: 20_000 });
    if (r.status === 0) runs.push(JSON.parse(r.stdout) as Record<string, number>);
  }
  return Object.fromEntries(Object.keys(runs[0] ?? {}).map((k) => [k, round(median(runs.map((r) => r[k]!)), 1)]));
}

export interface ScanCost {
  processes: number;
  wallMs: number;
  cpuMs: number;
  usPerProcess: number;
}

/**
 * One treeMembers() scan of /proc (mean of 20, after one untimed), with the processes the machine has, and
 * again with `extra` more (idle `sleep 30`s, SIGKILLed after; they carry the run's marker).
 */
function scanCost(dir: string, extra: number): ScanCost[] {
  const code = `import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
const { treeMembers } = await import('./dist/kill-tree.js');
const out = [];
for (const add of [0, ${extra}]) {
  const kids = [];
  for (let i = 0; i < add; i++) kids.push(spawn('sleep', ['30'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, add ? 500 : 0));
  const n = readdirSync('/proc').filter((x) => /^\\d+$/.test(x)).length;
  treeMembers(2 ** 22 + 1);
  const t = performance.now();
  const c = process.cpuUsage();
  for (let i = 0; i < 20; i++) treeMembers(2 ** 22 + 1);
  const cu = process.cpuUsage(c);
  const wall = (performance.now() - t) / 20;
  out.push({ processes: n, wallMs: wall, cpuMs: (cu.user + cu.system) / 20000 });
  for (const k of kids) k.kill('SIGKILL');
}
console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: dir,
    encoding: 'utf8',
    env: benchEnv(),
    timeout: 60_000,
  });
  const rows = JSON.parse(r.stdout) as { processes: number; wallMs: number; cpuMs: number }[];
  return rows.map((o) => ({
    processes: o.processes,
    wallMs: round(o.wallMs, 2),
    cpuMs: round(o.cpuMs, 2),
    usPerProcess: round((o.cpuMs / o.processes) * 1000, 0),
  }));
}

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sdwrap-bench-profile-'));
  const commit = sh('git', ['rev-parse', '--short', 'HEAD'], REPO_ROOT).trim();
  try {
    say(`building copies of HEAD ${commit} in ${work}`);
    const head = path.join(work, 'head');
    checkout(head);
    const builds: Record<string, string> = {
      head,
      'bundle-1file': path.join(work, 'bundle-1file'),
      bundle: path.join(work, 'bundle'),
      'bundle-min': path.join(work, 'bundle-min'),
      'bundle-cjs': path.join(work, 'bundle-cjs'),
    };
    bundle(head, builds['bundle-1file']!, { split: false });
    bundle(head, builds.bundle!);
    bundle(head, builds['bundle-min']!, { minify: true });
    bundle(head, builds['bundle-cjs']!, { minify: true, cjs: true });

    say(`A/B: start-up wall time and peak RSS, ${N} interleaved runs each`);
    const imp = (what: string) => ['--input-type=module', '-e', what];
    const { packages, own } = staticGraph(head);
    say(`cli.js loads ${packages.join(', ')} and ${own.length} own modules before main()`);
    const graph = [...packages, ...own].map((m) => `await import('${m}');`).join(' ');
    const variants: Variant[] = [
      { name: 'node -e 0', args: ['-e', '0'], cwd: head },
      { name: 'node (ESM) -e 0', args: imp('0'), cwd: head },
      ...[...packages, 'undici', 'execa', 'pino-pretty'].map((m) => ({
        name: `import ${m}`,
        args: imp(`await import('${m}')`),
        cwd: head,
      })),
      { name: `import ${packages.join('+')}`, args: imp(packages.map((m) => `await import('${m}');`).join(' ')), cwd: head },
      { name: "import cli.js's module graph (no main)", args: imp(graph), cwd: head },
      ...Object.entries(builds).map(([name, dir]) => ({
        name: `${name}: sdwrap -- true`,
        args: [path.join(dir, 'bin', 'sdwrap.js'), '--', 'true'],
        cwd: dir,
      })),
      {
        name: 'floor: experiments/floor.mjs -- true (no deps, ESM)',
        args: [fileURLToPath(new URL('./experiments/floor.mjs', import.meta.url)), '--', 'true'],
        cwd: head,
      },
      {
        name: 'floor: experiments/floor.cjs -- true (no deps, CJS)',
        args: [fileURLToPath(new URL('./experiments/floor.cjs', import.meta.url)), '--', 'true'],
        cwd: head,
      },
    ];
    const startup = measure(variants);
    const base = startup.get('node (ESM) -e 0')!;
    const nodeBase = startup.get('node -e 0')!;

    say('C: VmHWM after 5 s idling with --http every 1 s');
    const hwm = await idleHwm(builds, QUICK ? 3000 : 5000);
    say('D: phases of HEAD -- true');
    const ph = phases(head);

    say('E: in-process import steps');
    const steps = importSteps(head);
    say('F: /proc scan cost');
    const scan = scanCost(head, QUICK ? 200 : 900);

    const sizes = Object.fromEntries(
      ['bundle-1file', 'bundle', 'bundle-min', 'bundle-cjs'].map((b) => [
        b,
        round(readFileSync(path.join(builds[b]!, 'dist', b === 'bundle-cjs' ? 'cli.cjs' : 'cli.js')).length / 1024, 0),
      ]),
    );
    const result = {
      commit,
      machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, date: new Date().toISOString() },
      runs: N,
      startup: Object.fromEntries(startup),
      idleHwmMiB: hwm,
      phasesMs: ph,
      importStepsMs: steps,
      procScan: scan,
      bundleKiB: sizes,
      loadavg: os.loadavg().map((x) => round(x, 2)),
    };
    writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);

    const rows = variants.map((v) => {
      const s = startup.get(v.name)!;
      const ref = v.name.startsWith('import') ? base : nodeBase;
      const plus = (x: number) => (x >= 0 ? `+${round(x, 1)}` : `${round(x, 1)}`);
      return [v.name, s.ms, plus(s.ms - ref.ms), s.cpuMs, plus(s.cpuMs - ref.cpuMs), s.rssMiB, `${round(s.ms / nodeBase.ms, 2)}x`];
    });
    process.stdout.write(
      `\nHEAD ${commit}, ${N} runs each (medians; base: node -e 0, for the import rows node --input-type=module -e 0)\n\n`,
    );
    process.stdout.write(
      `${table(['Run', 'wall ms', 'wall over base', 'CPU ms', 'CPU over base', 'maxRSS MiB', 'wall vs node -e 0'], rows)}\n\n`,
    );
    process.stdout.write(
      `${table(
        ['Build', 'VmHWM MiB after idling with --http', 'vs bare node'],
        Object.entries(hwm).map(([k, v]) => [k, v, `${round(v / hwm['bare node']!, 2)}x`]),
      )}\n\n`,
    );
    process.stdout.write(
      `${table(
        ['Import step (in cli.js order, in-process)', 'ms (median)'],
        Object.entries(steps).map(([k, v]) => [k, v]),
      )}\n\n`,
    );
    process.stdout.write(
      `${table(
        ['/proc scan (kill-tree.js treeMembers)', 'wall ms', 'CPU ms', 'CPU µs per process'],
        scan.map((x) => [`${x.processes} processes`, x.wallMs, x.cpuMs, x.usPerProcess]),
      )}\n`,
    );
    process.stdout.write(
      '(the end of every run does three scans: watch-tree, then signalTree for SIGTERM and again for SIGCONT; waitTreeGone repeats one every 20 ms while leftovers live)\n\n',
    );
    process.stdout.write(
      `HEAD -- true phases: process start to "spawned" log ${ph.toSpawnedMs} ms; "child exited" log to process reaped ${ph.exitPathMs} ms\n`,
    );
    process.stdout.write(`dist/cli.js sizes (KiB, without lazy chunks): ${JSON.stringify(sizes)}\nwritten to ${OUT}\n`);
  } finally {
    await cleanup();
    if (process.env.BENCH_PROFILE_KEEP) say(`kept the builds in ${work} (each has bin/sdwrap.js, for BENCH_SDWRAP_BIN)`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch(async (error: unknown) => {
  say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await cleanup();
  process.exit(1);
});
