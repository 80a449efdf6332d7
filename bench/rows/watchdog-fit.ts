// The promise sdwrap makes under WatchdogSec=: its own verdict comes within WatchdogSec/3 of the last success,
// so a hung app is killed by sdwrap, with its reason logged, before systemd's watchdog would fire. Measured
// with WatchdogSec=2s (WATCHDOG_USEC=2000000) and the default flags (interval 10s, timeout 2s, threshold 3),
// which sdwrap must shorten on its own: SIGSTOP of the app until the verdict, and until its tree is gone.
import { type BenchOptions, type Row } from '../lib/row.js';
import { detectionTrial, latencyRow, type DetectionTrial } from './detection.js';

const WATCHDOG_MS = 2000;
const BUDGET_MS = Math.floor(WATCHDOG_MS / 3);
/** Scheduling slack on a loaded machine: the verdict is timed by the log line, the tree by polling. */
const SLACK_MS = 100;

export async function watchdogFitRows({ quick, say }: BenchOptions): Promise<Row[]> {
  const trials = quick ? 3 : 10;
  say(`watchdog fit: ${trials} trials, WATCHDOG_USEC=2000000, default probe flags (bound WatchdogSec/3 = ${BUDGET_MS} ms)`);
  const results: DetectionTrial[] = [];
  for (let i = 0; i < trials; i++) {
    // 166 ms is the interval sdwrap picks here: a random phase within it.
    results.push(
      await detectionTrial(
        (port) => ['--http', `http://127.0.0.1:${port}/healthz`],
        { WATCHDOG_USEC: String(WATCHDOG_MS * 1000), WATCHDOG_PID: undefined },
        166,
      ),
    );
  }
  const badExit = results.filter((r) => r.exitCode !== 69).length;
  const bound = { name: 'WatchdogSec/3', ms: BUDGET_MS, text: `${BUDGET_MS}`, target: 'WatchdogSec/3' };
  const notes = badExit ? [`${badExit} trial(s) did not end with exit code 69`] : [];
  const row = (id: string, name: string, xs: number[], what: string) =>
    latencyRow({ id, name, xs, what, bound, slackMs: SLACK_MS, badExit, notes, detail: { trials: results, watchdogMs: WATCHDOG_MS } });
  return [
    row(
      'watchdog-fit-verdict',
      'WatchdogSec=2s, default flags: SIGSTOP until the "unhealthy" verdict',
      results.map((r) => r.verdictMs),
      'verdict',
    ),
    row(
      'watchdog-fit-tree-gone',
      'WatchdogSec=2s, default flags: SIGSTOP until the tree is gone',
      results.map((r) => r.treeGoneMs),
      'tree gone',
    ),
  ];
}
