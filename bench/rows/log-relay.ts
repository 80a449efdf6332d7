// Log relay throughput. A child writes lines as fast as it can through `sdwrap --watch-log 'deadline has elapsed'`
// (sdwrap's stdout is /dev/null), against the same child piped through `| cat > /dev/null`: both are a relay, a
// process that reads the child's pipe and writes what it read. Throughput is bytes over the child's own time from
// its first write to its last (a pipe lets it finish only ~64 KiB ahead of the reader); the end-to-end figure
// (first write until the top process exited) is kept too. Two more baselines: the child writing to /dev/null
// directly (no relay at all), and fixtures/relay-floor.mjs, the least a Node process does to relay a child's
// pipe as a stream (read chunks, writeSync them, no line scanning). Each variant runs REPEATS times, interleaved;
// the row gives medians.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BenchOptions, type Row, notMeasured } from '../lib/row.js';
import { benchEnv, FIXTURES, Proc, SDWRAP_BIN } from '../lib/spawn.js';
import { median, round } from '../lib/stats.js';

export const WRITER = path.join(FIXTURES, 'log-writer.mjs');
const MiB = 1024 * 1024;
const NAME = 'Log relay: throughput of a child writing lines through sdwrap --watch-log';
const TARGET = '≥ 0.8x `| cat`';
/** The pattern matches no line the writer writes: every byte is searched, no line counted. */
export const WATCH_PATTERN = 'deadline has elapsed';

export function hasWatchLog(): boolean {
  const r = spawnSync(process.execPath, [SDWRAP_BIN, '--help'], { encoding: 'utf8', timeout: 10_000, env: benchEnv() });
  return `${r.stdout}${r.stderr}`.includes('--watch-log');
}

interface Run {
  mbPerS: number;
  endToEndMbPerS: number;
  seconds: number;
  exitCode: number | null;
}

type Kind = 'sdwrap' | 'direct' | 'cat' | 'node-floor';
const RELAY_FLOOR = path.join(FIXTURES, 'relay-floor.mjs');

async function runOnce(kind: Kind, bytes: number, dir: string, limitMs: number): Promise<Run> {
  const report = path.join(dir, `${kind}.json`);
  rmSync(report, { force: true });
  const writer = ['node', WRITER, '--bytes', String(bytes), '--report', report];
  const useWatch = process.env.BENCH_FORCE_LOG_ROW !== 'nowatch';
  const p =
    kind === 'sdwrap'
      ? new Proc(process.execPath, [SDWRAP_BIN, ...(useWatch ? ['--watch-log', WATCH_PATTERN] : []), '--', ...writer], {
          stdio: 'ignore-out',
        })
      : kind === 'direct'
        ? new Proc(process.execPath, writer.slice(1), { stdio: 'ignore-out' })
        : kind === 'cat'
          ? new Proc('bash', ['-c', `"$@" | cat > /dev/null`, 'pipe', process.execPath, ...writer.slice(1)], { stdio: 'ignore-out' })
          : new Proc(process.execPath, [RELAY_FLOOR, ...writer], { stdio: 'ignore-out' });
  const exit = await p.waitExit(limitMs);
  const r = JSON.parse(readFileSync(report, 'utf8')) as { bytes: number; firstWriteAt: number; lastWriteAt: number };
  const seconds = (r.lastWriteAt - r.firstWriteAt) / 1000;
  return {
    mbPerS: r.bytes / MiB / seconds,
    endToEndMbPerS: r.bytes / MiB / ((exit.at - r.firstWriteAt) / 1000),
    seconds,
    exitCode: exit.code,
  };
}

export async function logRelayRow({ quick, say }: BenchOptions): Promise<Row> {
  if (!process.env.BENCH_FORCE_LOG_ROW && !hasWatchLog()) {
    return notMeasured('log-relay', NAME, 'MB/s', TARGET, 'not measured: needs --watch-log (issue 5)');
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-bench-log-'));
  const notes: string[] = [];
  try {
    const mb = Number(process.env.BENCH_LOG_MB) || (quick ? 256 : 1024);
    const repeats = quick ? 2 : 7;
    say(`log relay: ${mb} MB through sdwrap, through cat, directly and through a minimal Node relay, ${repeats} times each, interleaved`);
    const runs: Record<Kind, Run[]> = { sdwrap: [], cat: [], direct: [], 'node-floor': [] };
    for (let i = 0; i < repeats; i++) {
      for (const kind of Object.keys(runs) as Kind[]) runs[kind].push(await runOnce(kind, mb * MiB, dir, 180_000));
    }
    const rate = (kind: Kind) => median(runs[kind].map((r) => r.mbPerS));
    const via = rate('sdwrap');
    const cat = rate('cat');
    const ratio = via / cat;
    notes.push(
      `${mb} MB of 120-byte lines, medians of ${repeats} interleaved runs (sdwrap: ${runs.sdwrap.map((r) => round(r.mbPerS, 0)).join(', ')} MB/s; cat: ${runs.cat.map((r) => round(r.mbPerS, 0)).join(', ')} MB/s); ` +
        `end-to-end (first write to exit): sdwrap ${round(median(runs.sdwrap.map((r) => r.endToEndMbPerS)), 0)} MB/s, cat ${round(median(runs.cat.map((r) => r.endToEndMbPerS)), 0)} MB/s; ` +
        `sdwrap vs writing to /dev/null directly: ${round(via / rate('direct'), 3)}x; vs the minimal Node relay: ${round(via / rate('node-floor'), 2)}x`,
    );
    const failed = runs.sdwrap.filter((r) => r.exitCode !== 0).length;
    if (failed) notes.push(`sdwrap exited non-zero in ${failed} run(s)`);
    if (process.env.BENCH_FORCE_LOG_ROW === 'nowatch')
      notes.push('BENCH_FORCE_LOG_ROW=nowatch: sdwrap ran WITHOUT --watch-log (a test of the harness, not a figure)');
    return {
      id: 'log-relay',
      name: NAME,
      unit: 'MB/s',
      sdwrap: round(via, 0),
      baselines: [
        { name: 'child | cat > /dev/null', value: round(cat, 0) },
        { name: 'child writing to /dev/null directly', value: round(rate('direct'), 0) },
        { name: 'minimal Node relay (fixtures/relay-floor.mjs)', value: round(rate('node-floor'), 0) },
      ],
      ratio: round(ratio, 2),
      target: TARGET,
      pass: ratio >= 0.8 && failed === 0,
      notes,
      detail: { mb, repeats, runs },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
