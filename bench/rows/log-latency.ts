// Row 8: log relay latency, the figures the process tests used to assert (test/process/log-relay.test.ts now
// checks only what holds on any machine). Two parts, with src/log-watch.ts's relay() in this process:
// - from a child's write (a whole line or a partial one) until the chunk reaches the destination, stamped with
//   performance.timeOrigin + performance.now() on both sides;
// - the worst event-loop lag while the destination is a FIFO nobody reads (the journal stalled): the relay must
//   pause the source, not block the loop.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { systemClock } from '../../src/clock.js';
import { fdDestination, relay, SymptomCounter, type LogWatchOptions } from '../../src/log-watch.js';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { benchEnv, FIXTURES } from '../lib/spawn.js';
import { max, median, round } from '../lib/stats.js';
import { waitFor } from '../../test/helpers/wait.js';

const WRITER = path.join(FIXTURES, 'log-writer.mjs');
const watch: LogWatchOptions = { pattern: /deadline has elapsed/, max: 1_000_000, windowMs: 3_600_000 };
const counter = () => new SymptomCounter(watch, systemClock, () => {});

/** A child that, for each line on stdin, writes a timestamp to stdout: a whole line for "line", else without a newline. */
const STAMPER = `process.stdin.on('data', (c) => { const line = c.toString().trim() === 'line';
process.stdout.write((line ? '' : 'partial ') + (performance.timeOrigin + performance.now()) + (line ? '\\n' : '')); });`;

async function latencies(writes: number, started: ChildProcess[]): Promise<number[]> {
  const child = spawn(process.execPath, ['-e', STAMPER], { stdio: ['pipe', 'pipe', 'inherit'], env: benchEnv() });
  started.push(child);
  const arrivals: Array<{ at: number; text: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      arrivals.push({ at: performance.timeOrigin + performance.now(), text: chunk.toString() });
      callback();
    },
  });
  const relayed = relay(child.stdout!, destination, counter(), 'stdout');
  const out: number[] = [];
  for (let i = 0; i < writes; i++) {
    child.stdin!.write(`${i % 2 === 0 ? 'partial' : 'line'}\n`);
    const arrival = await waitFor(() => arrivals.length > i && arrivals[i], { interval: 1, timeout: 5000 });
    out.push(arrival.at - Number(arrival.text.replace('partial ', '').trim()));
  }
  child.stdin!.end();
  await relayed;
  return out;
}

async function stallLag(started: ChildProcess[]): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-bench-lag-'));
  const fifo = path.join(dir, 'journal.fifo');
  spawnSync('mkfifo', [fifo]);
  // O_RDWR: a blocking write end that needs no reader, and nobody reads it.
  const fd = openSync(fifo, 'r+');
  const child = spawn(process.execPath, [WRITER, '--bytes', String(200 * 1024 * 1024)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: benchEnv(),
  });
  started.push(child);
  try {
    void relay(child.stdout!, fdDestination(fd), counter(), 'stdout').catch(() => undefined);
    await waitFor(() => child.stdout!.isPaused(), { message: 'the source was never paused' });
    let last = performance.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 5);
      last = now;
    }, 5);
    await sleep(750);
    clearInterval(timer);
    return worst;
  } finally {
    child.kill('SIGKILL');
    child.stdout!.destroy();
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function logLatencyRow({ quick, say }: BenchOptions): Promise<Row> {
  const writes = quick ? 10 : 40;
  const started: ChildProcess[] = [];
  try {
    say(`log latency: ${writes} writes through relay(), then 750 ms with the destination stalled`);
    const l = await latencies(writes, started);
    const lag = await stallLag(started);
    const med = median(l);
    const worst = max(l);
    return {
      id: 'log-latency',
      name: "Log relay latency: a child's write until relay() hands it on; event-loop lag while the destination is full",
      unit: 'ms',
      sdwrap: round(med, 2),
      sdwrapText: `median ${round(med, 2)}, worst ${round(worst, 2)}; loop lag ${round(lag, 1)}`,
      baselines: [],
      ratio: null,
      target: 'median < 20 ms, worst < 200 ms; loop lag < 100 ms',
      pass: med < 20 && worst < 200 && lag < 100,
      notes: [
        `${writes} writes, alternately a whole line and a partial one (no newline); lag: worst delay of a 5 ms timer over 750 ms with a FIFO destination nobody reads`,
      ],
      detail: { latenciesMs: l.map((x) => round(x, 3)), stallLagMs: round(lag, 2) },
    };
  } finally {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}
