// Row 4: detection latency. The fixture server (sdwrap's child) is SIGSTOPped at a random phase of the
// probe cycle; we time how long until its tree is gone (the server pid is no longer alive), against the
// configured bound failure-threshold x interval + timeout. The verdict (the "unhealthy: killing the
// child" log's time minus the SIGSTOP time) is kept separately: it is what the bound describes.
import path from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import { isAlive } from '../../test/helpers/processes.js';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { startSdwrap, TEST_FIXTURES } from '../lib/spawn.js';
import { max, median, round } from '../lib/stats.js';

const THRESHOLD = 2;
const INTERVAL_MS = 200;
const TIMEOUT_MS = 200;
export const BOUND_MS = THRESHOLD * INTERVAL_MS + TIMEOUT_MS;
const SLACK_MS = 100;

export interface DetectionTrial {
  phaseMs: number;
  verdictMs: number;
  treeGoneMs: number;
  sdwrapExitMs: number;
  exitCode: number | null;
}

/** The fixture server under sdwrap with `probeArgs`, SIGSTOPped at a random phase of a probe cycle of `cycleMs`. */
export async function detectionTrial(
  probeArgs: (port: number) => string[] = (port) => [
    '--http',
    `http://127.0.0.1:${port}/healthz`,
    '--interval',
    `${INTERVAL_MS}ms`,
    '--timeout',
    `${TIMEOUT_MS}ms`,
    '--failure-threshold',
    String(THRESHOLD),
  ],
  env: Record<string, string | undefined> = {},
  cycleMs = INTERVAL_MS,
): Promise<DetectionTrial> {
  const port = await freePort();
  const sd = startSdwrap(
    [
      ...probeArgs(port),
      // The start period only keeps a slow start (a loaded machine) from counting as a failure: the first
      // success ends it, and the trial begins after READY.
      '--stop-timeout',
      '2s',
      '--start-period',
      '10s',
      '--',
      'node',
      path.join(TEST_FIXTURES, 'server.mjs'),
      '--port',
      String(port),
    ],
    env,
  );
  try {
    const m = await sd.waitStdout(/fixture-server listening port=\d+ pid=(\d+)/, 10_000);
    const serverPid = Number(m[1]);
    await sd.waitLog('ready', 10_000);
    // A random phase within the probe cycle, so the trials sample best and worst cases.
    const phaseMs = Math.round(Math.random() * cycleMs);
    await sleep(phaseMs);
    const stoppedAt = Date.now();
    process.kill(serverPid, 'SIGSTOP');
    let goneAt: number | undefined;
    while (Date.now() - stoppedAt < 10_000) {
      if (!isAlive(serverPid)) {
        goneAt = Date.now();
        break;
      }
      await sleep(1);
    }
    if (goneAt === undefined) throw new Error(`the hung server (pid ${serverPid}) was still alive 10 s after SIGSTOP\n${sd.tail()}`);
    const exit = await sd.waitExit(10_000);
    const verdict = await sd.waitLog('unhealthy: killing the child', 1000);
    return {
      phaseMs,
      verdictMs: Number(verdict.json!.time) - stoppedAt,
      treeGoneMs: goneAt - stoppedAt,
      sdwrapExitMs: exit.at - stoppedAt,
      exitCode: exit.code,
    };
  } finally {
    sd.kill('SIGKILL');
    await sd.waitExit(5000);
  }
}

export async function detectionRows({ quick, say }: BenchOptions): Promise<Row[]> {
  const trials = quick ? 3 : 10;
  say(
    `detection: ${trials} trials, --failure-threshold ${THRESHOLD} --interval ${INTERVAL_MS}ms --timeout ${TIMEOUT_MS}ms (bound ${BOUND_MS} ms)`,
  );
  const results: DetectionTrial[] = [];
  for (let i = 0; i < trials; i++) results.push(await detectionTrial());
  const gone = results.map((r) => r.treeGoneMs);
  const verdicts = results.map((r) => r.verdictMs);
  const exits = results.map((r) => r.sdwrapExitMs);
  const badExit = results.filter((r) => r.exitCode !== 69).length;
  const notes = [
    `${trials} trials, SIGSTOP at a random phase 0-${INTERVAL_MS} ms after READY; tree gone = server pid dead (polled every 1 ms); sdwrap exit: median ${round(median(exits), 0)} ms, worst ${round(max(exits), 0)} ms`,
  ];
  if (badExit) notes.push(`${badExit} trial(s) did not end with exit code 69`);
  const bound = { name: 'bound: threshold x interval + timeout', ms: BOUND_MS, text: `bound ${BOUND_MS}`, target: 'bound' };
  const detail = { trials: results, boundMs: BOUND_MS, threshold: THRESHOLD, intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS };
  const row = (id: string, name: string, xs: number[], what: string) =>
    latencyRow({ id, name, xs, what, bound, slackMs: SLACK_MS, badExit, notes, detail });
  return [
    row('detection-tree-gone', 'Detection latency: SIGSTOP of the child until its tree is gone', gone, 'tree gone'),
    {
      ...row('detection-verdict', 'Detection latency: SIGSTOP until the "unhealthy" verdict (log time)', verdicts, 'verdict'),
      notes: [],
      detail: {},
    },
  ];
}

export interface LatencyRowSpec {
  id: string;
  name: string;
  /** One latency per trial, in ms. */
  xs: number[];
  /** What is timed, for the target's wording: "verdict", "tree gone". */
  what: string;
  bound: { name: string; ms: number; text: string; target: string };
  slackMs: number;
  /** Trials that did not end with exit code 69. */
  badExit: number;
  notes: string[];
  detail: Record<string, unknown>;
}

/** A row of latencies against a bound plus slack, which every trial must meet. */
export function latencyRow(s: LatencyRowSpec): Row {
  const worst = max(s.xs);
  const limit = s.bound.ms + s.slackMs;
  return {
    id: s.id,
    name: s.name,
    unit: 'ms',
    sdwrap: round(worst, 0),
    sdwrapText: `median ${round(median(s.xs), 0)}, worst ${round(worst, 0)}`,
    baselines: [{ name: s.bound.name, value: s.bound.ms, text: s.bound.text }],
    ratio: round(worst / s.bound.ms, 2),
    target: `${s.what} ≤ ${s.bound.target} + ${s.slackMs} ms (${limit} ms) in every trial`,
    pass: worst <= limit && s.badExit === 0,
    notes: s.notes,
    detail: s.detail,
  };
}
