// Leak checks: resident memory that keeps growing under sustained work.
//  - HTTP probes: sdwrap probes the counting server back to back (--interval 1ms) 50,000 times; its RSS over the
//    last 5,000 probes (median of samples every 20 ms) against its RSS over the 5,000 after the first 5,000.
//  - The log relay: a child writes 2 GB through `sdwrap --watch-log`; sdwrap's RSS over the last tenth of the bytes
//    against its RSS over the second tenth (the bytes written by a sample's time are interpolated from the
//    writer's first and last write: it writes at an even pace).
// Flat means it grew LIMIT_MIB or less (a smaller figure late is V8 sizing its heap down, not a leak). Medians over windows that span several of V8's full collections, because RSS saws
// up and down between them (at 500 probes a second the old generation grows from ~5 to ~20 MB, then is collected).
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { readMem } from '../lib/proc.js';
import { FIXTURES, Proc, SDWRAP_BIN, startSdwrap } from '../lib/spawn.js';
import { max, median, round } from '../lib/stats.js';
import { WATCH_PATTERN, WRITER } from './log-relay.js';

const LIMIT_MIB = 3;
const MiB = 1024 * 1024;
const SAMPLE_MS = 20;

interface Sample {
  /** Probes answered, or bytes relayed, by the sample's time. */
  progress: number;
  rssKiB: number;
}

/** The median RSS (MiB) of the samples with progress in [from, to). */
function windowMiB(samples: Sample[], from: number, to: number): { mib: number; samples: number } {
  const inside = samples.filter((s) => s.progress >= from && s.progress < to).map((s) => s.rssKiB);
  if (inside.length === 0) throw new Error(`no RSS sample between ${from} and ${to}`);
  return { mib: median(inside) / 1024, samples: inside.length };
}

function leakRow(
  id: string,
  name: string,
  early: { mib: number; samples: number },
  late: { mib: number; samples: number },
  what: { early: string; late: string },
  peakMiB: number,
  notes: string[],
  detail: Record<string, unknown>,
): Row {
  const grew = late.mib - early.mib;
  return {
    id,
    name,
    unit: 'MiB',
    sdwrap: round(late.mib, 1),
    sdwrapText: `${what.late}: ${round(late.mib, 1)}, ${grew >= 0 ? '+' : ''}${round(grew, 2)}`,
    baselines: [{ name: `RSS ${what.early}`, value: round(early.mib, 1) }],
    ratio: round(late.mib / early.mib, 3),
    target: `flat: grows ≤ ${LIMIT_MIB} MiB`,
    pass: grew <= LIMIT_MIB,
    notes: [
      `medians of ${early.samples} and ${late.samples} samples (every ${SAMPLE_MS} ms); peak RSS ${round(peakMiB, 1)} MiB; ${notes.join('; ')}`,
    ],
    detail,
  };
}

async function httpLeak(quick: boolean, say: (t: string) => void): Promise<Row> {
  const total = quick ? 10_000 : 50_000;
  const early = quick ? 1_000 : 5_000;
  const span = early;
  const port = await freePort();
  say(`leak check: ${total} HTTP probes back to back`);
  const sd = startSdwrap([
    '--http',
    `http://127.0.0.1:${port}/healthz`,
    '--interval',
    '1ms',
    '--timeout',
    '1s',
    '--start-period',
    '30s',
    '--',
    'node',
    path.join(FIXTURES, 'counting-server.mjs'),
    '--port',
    String(port),
  ]);
  const hits = () => {
    const last = sd.stdout.at(-1)?.text ?? '';
    return last.startsWith('hit ') ? Number(last.slice(4)) : 0;
  };
  const samples: Sample[] = [];
  const started = Date.now();
  try {
    await sd.waitLog('ready', 30_000);
    while (hits() < total) {
      if (Date.now() - started > 300_000) throw new Error(`only ${hits()} probes in 300 s`);
      if (sd.exit) throw new Error(`sdwrap exited after ${hits()} probes\n${sd.tail()}`);
      const mem = readMem(sd.pid);
      if (mem) samples.push({ progress: hits(), rssKiB: mem.vmRSS });
      await sleep(SAMPLE_MS);
    }
    const seconds = (Date.now() - started) / 1000;
    const peak = readMem(sd.pid)?.vmHWM ?? Number.NaN;
    const a = windowMiB(samples, early, early + span);
    const b = windowMiB(samples, total - span, total + 1);
    const half = windowMiB(samples, total / 2 - span / 2, total / 2 + span / 2);
    return leakRow(
      'leak-http',
      `Leak check: RSS of sdwrap over ${total.toLocaleString('en')} HTTP probes back to back`,
      a,
      b,
      {
        early: `over probes ${early.toLocaleString('en')}-${(early + span).toLocaleString('en')}`,
        late: `over the last ${span.toLocaleString('en')}`,
      },
      peak / 1024,
      [
        `${total} probes in ${round(seconds, 0)} s (--interval 1ms, a fresh connection each)`,
        `RSS around probe ${(total / 2).toLocaleString('en')}: ${round(half.mib, 1)} MiB (second half: ${b.mib - half.mib >= 0 ? '+' : ''}${round(b.mib - half.mib, 2)} MiB)`,
      ],
      { total, early, span, seconds, peakKiB: peak, samples: samples.filter((_, i) => i % 10 === 0) },
    );
  } finally {
    sd.kill('SIGTERM');
    await sd.waitExit(15_000);
  }
}

async function relayLeak(quick: boolean, say: (t: string) => void): Promise<Row> {
  const mb = quick ? 512 : 2048;
  const dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-bench-leak-'));
  const report = path.join(dir, 'writer.json');
  say(`leak check: ${mb} MB through sdwrap --watch-log`);
  try {
    const sd = new Proc(
      process.execPath,
      [SDWRAP_BIN, '--watch-log', WATCH_PATTERN, '--', 'node', WRITER, '--bytes', String(mb * MiB), '--report', report],
      { stdio: 'ignore-out' },
    );
    const timed: Array<{ at: number; rssKiB: number }> = [];
    let peak = 0;
    const started = Date.now();
    while (!sd.exit) {
      if (Date.now() - started > 300_000) throw new Error(`${mb} MB took longer than 300 s`);
      const mem = readMem(sd.pid);
      if (mem && mem.vmRSS > 0) {
        timed.push({ at: Date.now(), rssKiB: mem.vmRSS });
        peak = Math.max(peak, mem.vmHWM);
      }
      await sleep(5);
    }
    const exit = await sd.waitExit(5000);
    if (exit.code !== 0) throw new Error(`sdwrap exited ${exit.code}\n${sd.tail()}`);
    const r = JSON.parse(readFileSync(report, 'utf8')) as { bytes: number; firstWriteAt: number; lastWriteAt: number };
    const share = (at: number) => Math.min(1, Math.max(0, (at - r.firstWriteAt) / (r.lastWriteAt - r.firstWriteAt)));
    // Only samples while the writer wrote: before it, sdwrap is still starting; after it, it is exiting.
    const samples = timed
      .filter((s) => s.at >= r.firstWriteAt && s.at <= r.lastWriteAt)
      .map((s) => ({ progress: share(s.at), rssKiB: s.rssKiB }));
    const a = windowMiB(samples, 0.1, 0.2);
    const b = windowMiB(samples, 0.9, 1.0001);
    const seconds = (r.lastWriteAt - r.firstWriteAt) / 1000;
    return leakRow(
      'leak-relay',
      `Leak check: RSS of sdwrap relaying ${mb >= 1024 ? `${mb / 1024} GB` : `${mb} MB`} with --watch-log`,
      a,
      b,
      { early: `over the 2nd tenth of the bytes`, late: 'over the last tenth' },
      peak / 1024,
      [
        `${mb} MB in ${round(seconds, 1)} s (${round(mb / seconds, 0)} MB/s), ${samples.length} samples; RSS max while relaying ${round(max(samples.map((s) => s.rssKiB)) / 1024, 1)} MiB`,
      ],
      { mb, seconds, peakKiB: peak, samples: samples.map((s) => ({ share: round(s.progress, 3), rssKiB: s.rssKiB })) },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function leakRows({ quick, say }: BenchOptions): Promise<Row[]> {
  return [await httpLeak(quick, say), await relayLeak(quick, say)];
}
