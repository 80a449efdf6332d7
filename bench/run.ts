// sdwrap benchmark suite: `npm run bench` (BENCH_QUICK=1 for a smoke run with fewer trials).
// One run prints one Markdown table, each row sdwrap's figure beside the baselines measured in the same run,
// and writes bench/results.json. Loopback only; every loop is bounded in count and time; every process
// started carries one marker in its environment and is SIGKILLed at the end if still alive.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { type Row } from './lib/row.js';
import { cleanup, MARKER, SDWRAP_BIN } from './lib/spawn.js';
import { fmt } from './lib/stats.js';
import { adoptedExitRow } from './rows/adopted-exit.js';
import { detectionRows } from './rows/detection.js';
import { logLatencyRow } from './rows/log-latency.js';
import { logRelayRow } from './rows/log-relay.js';
import { leakRows } from './rows/leak.js';
import { memoryRows } from './rows/memory.js';
import { probeCostRow } from './rows/probe-cost.js';
import { signalRelayRow } from './rows/signal-relay.js';
import { startupRow } from './rows/startup.js';
import { watchdogFitRows } from './rows/watchdog-fit.js';

const RESULTS = process.env.BENCH_RESULTS || fileURLToPath(new URL('./results.json', import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';
/** The whole run may not take longer than this; then it cleans up and fails. */
const RUN_LIMIT_MS = 15 * 60_000;

const began = Date.now();
const say = (text: string) => process.stderr.write(`[bench ${((Date.now() - began) / 1000).toFixed(1)}s] ${text}\n`);

/** The commit measured, and whether the working tree (which `npm run bench` builds) differs from it. */
function gitState(): { commit: string; dirty: boolean } | undefined {
  try {
    const opts = { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' as const, timeout: 10_000 };
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'bin', 'package.json'], opts).trim() !== '';
    return { commit, dirty };
  } catch {
    return undefined;
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    totalMemGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
    /** 1/5/15-minute load averages: other work on the machine skews every figure. */
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    quick: QUICK,
    git: gitState(),
    sdwrapBin: SDWRAP_BIN,
  };
}

function failedRow(id: string, error: unknown): Row {
  const msg = error instanceof Error ? error.message : String(error);
  return {
    id,
    name: id,
    unit: '',
    sdwrap: null,
    sdwrapText: `error: ${msg.split('\n')[0]}`,
    baselines: [],
    ratio: null,
    target: '',
    pass: false,
    notes: [msg],
    detail: {},
  };
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(rows: Row[]): string {
  const out = ['| # | Figure | sdwrap | Baseline (same run) | Ratio | Target | Result |', '|---|---|---|---|---|---|---|'];
  rows.forEach((r, i) => {
    const unit = r.unit ? ` ${r.unit}` : '';
    const sd = r.sdwrapText ? `${r.sdwrapText}${r.sdwrap === null ? '' : unit}` : r.sdwrap === null ? '—' : `${fmt(r.sdwrap)}${unit}`;
    const base =
      r.baselines.length === 0
        ? '—'
        : r.baselines
            .map((b) => `${b.name}: ${b.text ?? (b.value === null ? 'n/a' : fmt(b.value))}${b.value === null ? '' : unit}`)
            .join('; ');
    const ratio = r.ratio === null ? '—' : `${fmt(r.ratio)}x`;
    const result = r.pass === null ? 'not measured' : r.pass ? 'pass' : '**miss**';
    out.push(`| ${i + 1} | ${cell(r.name)} | ${cell(sd)} | ${cell(base)} | ${ratio} | ${cell(r.target)} | ${result} |`);
  });
  return out.join('\n');
}

async function main(): Promise<number> {
  const opts = { quick: QUICK, say };
  say(`machine: ${JSON.stringify(machine())}; marker ${MARKER.key}=${MARKER.value}`);
  const rows: Row[] = [];
  const steps: [string, () => Promise<Row | Row[]>][] = [
    ['startup', () => startupRow(opts)],
    ['memory', () => memoryRows(opts)],
    ['probe-cost', () => probeCostRow(opts)],
    ['detection', () => detectionRows(opts)],
    ['watchdog-fit', () => watchdogFitRows(opts)],
    ['signal-relay', () => signalRelayRow(opts)],
    ['adopted-exit', () => adoptedExitRow(opts)],
    ['log-relay', () => logRelayRow(opts)],
    ['log-latency', () => logLatencyRow(opts)],
    ['leak', () => leakRows(opts)],
  ];
  const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
  for (const [id, step] of steps) {
    if (only && !only.includes(id)) continue;
    try {
      const r = await step();
      rows.push(...(Array.isArray(r) ? r : [r]));
    } catch (error) {
      say(`${id} failed: ${error instanceof Error ? error.message : String(error)}`);
      rows.push(failedRow(id, error));
    }
    const killed = await cleanup();
    if (killed) say(`${id}: SIGKILLed ${killed} leftover process(es)`);
  }
  const m = machine();
  const seconds = Math.round((Date.now() - began) / 100) / 10;
  writeFileSync(RESULTS, `${JSON.stringify({ machine: m, seconds, rows }, null, 2)}\n`);
  const line = `Machine: ${m.cpu}, ${m.cores} cores, ${m.totalMemGiB} GiB RAM, Node ${m.node}, ${m.kernel}, ${m.date}${QUICK ? ' (BENCH_QUICK)' : ''}; load average at the end ${m.loadavg.join(' ')}; run took ${seconds} s; sdwrap ${m.git ? `${m.git.commit}${m.git.dirty ? ' + uncommitted changes' : ''}` : 'unknown commit'}`;
  process.stdout.write(
    `\n${table(rows)}\n\n${line}\n\nNotes:\n${rows.flatMap((r, i) => r.notes.map((n) => `- ${i + 1}. ${n}`)).join('\n')}\n\nResults written to ${RESULTS}\n`,
  );
  return 0;
}

const limit = setTimeout(() => {
  say(`run exceeded ${RUN_LIMIT_MS / 1000} s: cleaning up and failing`);
  void cleanup().finally(() => process.exit(1));
}, RUN_LIMIT_MS);
limit.unref();

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    say(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (error: unknown) => {
    say(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await cleanup();
    process.exit(1);
  },
);
