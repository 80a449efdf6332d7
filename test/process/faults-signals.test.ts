// Fault injection: a burst of 1,000 mixed signals within a second. sdwrap relays them (the kernel merges
// repeats of a pending signal, so not every one arrives), does not crash, adds no listener per signal, and
// signals sent one at a time afterwards still reach the app in their order, the stop signal last.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { runSdwrap, stopAll, type SdwrapRun } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

after(stopAll);

const SIGNALS_APP = ['node', fileURLToPath(new URL('../fixtures/signals.mjs', import.meta.url))];
const BURST: NodeJS.Signals[] = ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** 1,000 signals from BURST, in a pseudo-random order, within about a second. */
async function burst(pid: number): Promise<Set<string>> {
  const sent = new Set<string>();
  let seed = 14;
  const started = performance.now();
  for (let i = 0; i < 1000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const signal = BURST[seed % BURST.length]!;
    process.kill(pid, signal);
    sent.add(signal);
    if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 40));
  }
  assert.ok(performance.now() - started < 1500, `the burst took ${Math.round(performance.now() - started)} ms`);
  return sent;
}

/**
 * The signals the app reported, in the order it got them, less SIGCONT: sdwrap sends one after each SIGTERM it
 * relays (as systemd does), and which of the two the app handles first is up to the kernel and Node.
 */
const heard = (run: SdwrapRun) =>
  run.stdout.filter((l) => l.startsWith('signal ') && l !== 'signal SIGCONT').map((l) => l.slice('signal '.length));

/** Waits for the burst to settle: the app reports no new signal for 500 ms (many times a relay's latency). */
async function settled(run: SdwrapRun): Promise<void> {
  let count = -1;
  await waitFor(
    async () => {
      if (heard(run).length !== count) {
        count = heard(run).length;
        return false;
      }
      return true;
    },
    { timeout: 10_000, interval: 500, message: 'the app kept reporting signals' },
  );
}

/** Sends each signal once the one before reached the app; the app must hear exactly these, in this order. */
async function inOrder(run: SdwrapRun, signals: NodeJS.Signals[]): Promise<void> {
  const from = heard(run).length;
  for (const [i, signal] of signals.entries()) {
    run.kill(signal);
    await waitFor(() => heard(run).length > from + i, { timeout: 5_000, message: () => `${signal} did not reach the app\n${run.dump()}` });
  }
  assert.deepEqual(heard(run).slice(from), signals, run.dump());
}

function assertNoCrashOrLeak(run: SdwrapRun): void {
  const text = run.stderr.join('\n');
  assert.ok(!/MaxListenersExceededWarning|possible EventEmitter memory leak/.test(text), `a listener leak:\n${run.dump()}`);
  assert.ok(!run.logs.some((l) => l.level === 'fatal' || /internal error/i.test(String(l.msg))), run.dump());
  assert.notEqual(run.exitStatus?.code, 70, run.dump());
}

test('1,000 mixed signals within a second: relayed, no crash, no listener leak, later signals in order', async () => {
  const marker = testMarker();
  const run = runSdwrap(['--', ...SIGNALS_APP], { marker });
  await run.waitForStdout(/^ready pid=\d+$/, 10_000);
  const sent = await burst(run.pid);
  // Every kind of signal sent reached the app at least once.
  for (const signal of sent) await run.waitForStdout(new RegExp(`^signal ${signal}$`), 5_000);
  await settled(run);
  await inOrder(run, ['SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGHUP', 'SIGUSR1', 'SIGTERM']);
  const exit = await run.waitForExit(10_000);
  assert.equal(exit.code, 0, run.dump());
  assertNoCrashOrLeak(run);
  await assertNoLeftovers(marker);
});

// Found by this test: a SIGTERM that arrived as one run ended and the next began was lost (Node closed its
// signal handles in between), and sdwrap restarted on. Now the restart loop listens throughout.
test('--no-systemd, an app that keeps crashing: 1,000 signals across runs and restart waits, then SIGTERM stops it all', async () => {
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--no-systemd',
      '--restart-delay',
      '50ms',
      '--restart-max-delay',
      '100ms',
      '--max-restarts',
      '1000',
      '--',
      'sh',
      '-c',
      'sleep 0.1; exit 1',
    ],
    { marker },
  );
  await run.waitForLog((l) => /^restarting in /.test(String(l.msg)), 10_000);
  await burst(run.pid);
  const restarts = run.logs.filter((l) => /^restarting in /.test(String(l.msg))).length;
  await run.waitForLog((l) => /^restarting in /.test(String(l.msg)) && Number(l.restart) > restarts + 2, 10_000);
  run.kill('SIGTERM');
  const exit = await run.waitForExit(10_000);
  assert.ok(exit.signal === 'SIGTERM' || exit.code !== null, run.dump());
  assertNoCrashOrLeak(run);
  await assertNoLeftovers(marker);
});

// The regression of the above, made likely to show: many crash-looping sdwraps, each stopped at a random moment.
test('--no-systemd: SIGTERM at any moment of a crash loop stops sdwrap (24 runs, random moments)', async () => {
  const marker = testMarker();
  const runs = Array.from({ length: 24 }, () =>
    runSdwrap(
      [
        '--no-systemd',
        '--restart-delay',
        '20ms',
        '--restart-max-delay',
        '50ms',
        '--max-restarts',
        '1000',
        '--',
        'sh',
        '-c',
        'sleep 0.05; exit 1',
      ],
      {
        marker,
      },
    ),
  );
  await Promise.all(runs.map((run) => run.waitForLog((l) => /^restarting in /.test(String(l.msg)), 15_000)));
  let seed = 7;
  await Promise.all(
    runs.map(async (run) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      await new Promise((resolve) => setTimeout(resolve, seed % 700));
      run.kill('SIGTERM');
    }),
  );
  const stuck = (
    await Promise.all(
      runs.map((run) =>
        run.waitForExit(5_000).then(
          () => undefined,
          () => run,
        ),
      ),
    )
  ).filter((r) => r !== undefined);
  assert.equal(stuck.length, 0, `${stuck.length} of 24 did not stop:\n${stuck[0]?.dump()}`);
  await assertNoLeftovers(marker);
});
