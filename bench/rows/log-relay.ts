// Row 6: log relay throughput. Measured only when sdwrap has --watch-log (issue 5): a child writes lines
// as fast as it can through sdwrap --watch-log 'deadline has elapsed' (sdwrap's stdout is /dev/null),
// against the same child writing to /dev/null directly. Throughput is bytes over the child's own time from
// its first write to its last (a pipe lets it finish only ~64 KiB ahead of the reader); the end-to-end
// figure (first write until the top process exited) is kept too. Two more baselines show what any relay is
// up against: `| cat > /dev/null`, and experiments/relay-floor.mjs, the least a Node process does to relay
// a child's pipe (read chunks, writeSync them, no line scanning).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BenchOptions, type Row, notMeasured } from '../lib/row.js';
import { benchEnv, FIXTURES, Proc, SDWRAP_BIN } from '../lib/spawn.js';
import { round } from '../lib/stats.js';

const WRITER = path.join(FIXTURES, 'log-writer.mjs');
const MiB = 1024 * 1024;
const NAME = 'Log relay: throughput of a child writing lines through sdwrap --watch-log';
const TARGET = '≥ 0.8x direct';

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

const RELAY_FLOOR = path.join(FIXTURES, '..', 'experiments', 'relay-floor.mjs');

async function runOnce(kind: 'sdwrap' | 'direct' | 'cat' | 'node-floor', bytes: number, dir: string, limitMs: number): Promise<Run> {
  const report = path.join(dir, `${kind}.json`);
  rmSync(report, { force: true });
  const writer = ['node', WRITER, '--bytes', String(bytes), '--report', report];
  const useWatch = process.env.BENCH_FORCE_LOG_ROW !== 'nowatch';
  const p =
    kind === 'sdwrap'
      ? new Proc(process.execPath, [SDWRAP_BIN, ...(useWatch ? ['--watch-log', 'deadline has elapsed'] : []), '--', ...writer], { stdio: 'ignore-out' })
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
    let mb = Number(process.env.BENCH_LOG_MB) || 0;
    if (!mb && quick) mb = 64;
    if (!mb) {
      // 1 GB unless that would take over 60 s through sdwrap: estimate from a 64 MB run.
      const probe = await runOnce('sdwrap', 64 * MiB, dir, 60_000);
      const projected = 1024 / probe.mbPerS;
      mb = projected > 60 ? 256 : 1024;
      if (mb === 256) notes.push(`256 MB, not 1 GB: 1 GB would take ~${Math.round(projected)} s through sdwrap (set BENCH_LOG_MB to override)`);
    }
    say(`log relay: ${mb} MB through sdwrap, directly, through cat and through a minimal Node relay`);
    const direct = await runOnce('direct', mb * MiB, dir, 120_000);
    const via = await runOnce('sdwrap', mb * MiB, dir, 180_000);
    const cat = await runOnce('cat', mb * MiB, dir, 120_000);
    const floor = await runOnce('node-floor', mb * MiB, dir, 120_000);
    const ratio = via.mbPerS / direct.mbPerS;
    notes.push(
      `${mb} MB of 120-byte lines; end-to-end (first write to exit): sdwrap ${round(via.endToEndMbPerS, 0)} MB/s, direct ${round(direct.endToEndMbPerS, 0)} MB/s; ` +
        `sdwrap vs \`| cat\`: ${round(via.mbPerS / cat.mbPerS, 2)}x; vs the minimal Node relay: ${round(via.mbPerS / floor.mbPerS, 2)}x`,
    );
    if (via.exitCode !== 0) notes.push(`sdwrap exited ${via.exitCode}`);
    if (process.env.BENCH_FORCE_LOG_ROW === 'nowatch') notes.push('BENCH_FORCE_LOG_ROW=nowatch: sdwrap ran WITHOUT --watch-log (a test of the harness, not a figure)');
    return {
      id: 'log-relay',
      name: NAME,
      unit: 'MB/s',
      sdwrap: round(via.mbPerS, 0),
      baselines: [
        { name: 'child writing to /dev/null directly', value: round(direct.mbPerS, 0) },
        { name: 'child | cat > /dev/null', value: round(cat.mbPerS, 0) },
        { name: 'minimal Node relay (experiments/relay-floor.mjs)', value: round(floor.mbPerS, 0) },
      ],
      ratio: round(ratio, 2),
      target: TARGET,
      pass: ratio >= 0.8 && via.exitCode === 0,
      notes,
      detail: { mb, direct, sdwrap: via, cat, nodeFloor: floor },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
