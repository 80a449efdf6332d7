// Adopted-exit latency (issue 12): with --pid-file, sdwrap is not the daemon's parent and learns of its end by
// polling /proc/<pid> (ADOPTED_POLL_MS). A daemon (`sleep`, forked by a shell that writes its pid and exits 0) is
// SIGKILLed at a random phase of the poll; the figure is the "the adopted daemon vanished" log time minus
// the kill time, and sdwrap's exit (75) after it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADOPTED_POLL_MS } from '../../src/adoption.js';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { startSdwrap } from '../lib/spawn.js';
import { max, median, round } from '../lib/stats.js';

const SLACK_MS = 50;

interface Trial {
  noticedMs: number;
  exitMs: number;
  code: number | null;
}

async function trial(dir: string, i: number): Promise<Trial> {
  const pidFile = path.join(dir, `daemon-${i}.pid`);
  // setsid: the daemon leaves the shell's session, as a daemon does; the shell exits 0 at once.
  const sd = startSdwrap(['--pid-file', pidFile, '--start-period', '10s', '--', 'sh', '-c', 'setsid sleep 600 & echo $! > "$0"', pidFile]);
  try {
    const adopted = await sd.waitLog('adopted the daemon named by the pid file', 10_000);
    await sd.waitLog('ready', 10_000);
    await sleep(Math.round(Math.random() * ADOPTED_POLL_MS));
    const killedAt = Date.now();
    process.kill(Number(adopted.json!.adoptedPid), 'SIGKILL');
    const gone = await sd.waitLog('the adopted daemon vanished', 10_000);
    const exit = await sd.waitExit(10_000);
    return { noticedMs: Number(gone.json!.time) - killedAt, exitMs: exit.at - killedAt, code: exit.code };
  } finally {
    sd.kill('SIGKILL');
    await sd.waitExit(5000);
  }
}

export async function adoptedExitRow({ quick, say }: BenchOptions): Promise<Row> {
  const trials = quick ? 3 : 10;
  say(`adopted exit: ${trials} trials, /proc polled every ${ADOPTED_POLL_MS} ms`);
  const dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-bench-pid-'));
  const results: Trial[] = [];
  try {
    for (let i = 0; i < trials; i++) results.push(await trial(dir, i));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const noticed = results.map((r) => r.noticedMs);
  const worst = max(noticed);
  const bound = ADOPTED_POLL_MS + SLACK_MS;
  return {
    id: 'adopted-exit',
    name: "Adopted daemon's end (--pid-file): SIGKILL of the daemon until sdwrap logs it",
    unit: 'ms',
    sdwrap: round(median(noticed), 1),
    sdwrapText: `median ${round(median(noticed), 1)}, worst ${round(worst, 1)}; exit ${round(median(results.map((r) => r.exitMs)), 1)} (code ${results.map((r) => r.code).join(',')})`,
    baselines: [{ name: 'the /proc poll period', value: ADOPTED_POLL_MS, text: `${ADOPTED_POLL_MS}` }],
    ratio: round(worst / ADOPTED_POLL_MS, 2),
    target: `≤ ${bound} ms every trial`,
    pass: worst <= bound && results.every((r) => r.code === 75),
    notes: [`${trials} trials, the kill at a random phase of the ${ADOPTED_POLL_MS} ms poll; sdwrap exits 75 each time`],
    detail: { trials: results },
  };
}
