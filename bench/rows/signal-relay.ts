// Row 5: SIGTERM to sdwrap until the child's handler runs, against SIGTERM sent to the same child
// directly (what the child's own signal handling costs). The child stamps process.hrtime (CLOCK_MONOTONIC,
// shared by every process) first thing in its handler; the sender stamps it just before kill().
import path from 'node:path';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { FIXTURES, Proc, startSdwrap } from '../lib/spawn.js';
import { max, median, round } from '../lib/stats.js';

const TERM_STAMP = path.join(FIXTURES, 'term-stamp.mjs');

interface Sample {
  monoMs: number;
  wallMs: number;
}

async function once(p: Proc): Promise<Sample> {
  try {
    await p.waitStdout(/^ready pid=\d+/, 10_000);
    await sleep(50); // let both event loops go idle
    const wall0 = performance.timeOrigin + performance.now();
    const mono0 = process.hrtime.bigint();
    process.kill(p.pid, 'SIGTERM');
    const m = await p.waitStdout(/^term mono=(\d+) wall=([\d.]+)/, 5000);
    await p.waitExit(10_000);
    return { monoMs: Number(BigInt(m[1]!) - mono0) / 1e6, wallMs: Number(m[2]) - wall0 };
  } finally {
    p.kill('SIGKILL');
    await p.waitExit(5000);
  }
}

export async function signalRelayRow({ quick, say }: BenchOptions): Promise<Row> {
  const trials = quick ? 5 : 20;
  say(`signal relay: ${trials} trials each through sdwrap and direct`);
  const via: Sample[] = [];
  const direct: Sample[] = [];
  for (let i = 0; i < trials; i++) {
    via.push(await once(startSdwrap(['--', 'node', TERM_STAMP])));
    direct.push(await once(new Proc(process.execPath, [TERM_STAMP])));
  }
  const v = via.map((s) => s.monoMs);
  const d = direct.map((s) => s.monoMs);
  const skew = max(via.map((s) => Math.abs(s.wallMs - s.monoMs)));
  const med = median(v);
  return {
    id: 'signal-relay',
    name: 'Signal relay latency: SIGTERM to sdwrap until the child handler runs',
    unit: 'ms',
    sdwrap: round(med, 2),
    sdwrapText: `median ${round(med, 2)}, worst ${round(max(v), 2)}`,
    baselines: [
      {
        name: 'SIGTERM sent to the child directly',
        value: round(median(d), 2),
        text: `median ${round(median(d), 2)}, worst ${round(max(d), 2)}`,
      },
    ],
    ratio: round(med / median(d), 2),
    target: 'median < 5 ms',
    pass: med < 5,
    notes: [
      `${trials} trials each, alternating; times from process.hrtime (CLOCK_MONOTONIC) in sender and child; wall-clock cross-check differs by at most ${round(skew, 2)} ms; relay adds ${round(med - median(d), 2)} ms at the median`,
    ],
    detail: { viaSdwrap: via, direct },
  };
}
