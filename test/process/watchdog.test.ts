// The watchdog gate through the real CLI: WATCHDOG=1 only once READY is out, only while the last liveness
// success is fresh, and readiness never decides. Times are the notify listener's receive times and sdwrap's
// own log times (one clock); every bound is derived from the configured timing, with margins for a loaded
// 2-core machine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NotifyListener, type NotifyMessage } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT, type LogLine } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
after(stopAll);

const pings = (listener: NotifyListener): NotifyMessage[] => listener.messages.filter((m) => m.fields.WATCHDOG === '1');
const describe = (label: string, times: number[], origin: number) =>
  `${label}: ${times.map((t) => `+${Math.round(t - origin)}ms`).join(', ')}`;

test(
  "WATCHDOG=1: none before READY; while a hung app's probes time out, pings go on only until its last success is stale",
  { timeout: 90_000 },
  async () => {
    // WatchdogSec=2s: pings every 1 s. sdwrap fits interval and timeout into WatchdogSec/3 where it can; a
    // threshold of 7 leaves no room (7 x 100ms + 100ms > 666ms), so it keeps --timeout 2s and warns. Then a hung
    // probe takes the full 2 s to fail and the verdict needs seven such failures (~14 s after the last success),
    // but a success stays fresh only 7 x 100ms + 2s = 2.7 s: between the two, the app is not yet judged
    // unhealthy and sdwrap must not vouch for it.
    const [watchdogMs, intervalMs, timeoutMs, threshold] = [2000, 100, 2000, 7];
    const freshnessMs = threshold * intervalMs + timeoutMs;
    // A ping sent within the bound may reach the listener this much later on a loaded machine; pings sent
    // regardless of freshness would still come every second for ~3 s past bound + margin.
    const marginMs = 1000;
    const listener = await NotifyListener.start();
    const marker = testMarker();
    const port = await freePort();
    try {
      const run = runSdwrap(
        [
          '--http',
          `http://127.0.0.1:${port}/healthz`,
          '--interval',
          `${intervalMs}ms`,
          '--timeout',
          `${timeoutMs}ms`,
          '--failure-threshold',
          String(threshold),
          '--start-period',
          '60s',
          '--stop-timeout',
          '500ms',
          '--log-level',
          'debug',
          '--',
          process.execPath,
          SERVER,
          '--port',
          String(port),
          '--ready-after',
          '3000',
        ],
        { notifySocket: listener.address, marker, env: { WATCHDOG_USEC: String(watchdogMs * 1000) } },
      );
      const [, serverPid] = await run.waitForStdout(/fixture-server listening port=\d+ pid=(\d+)/);
      const ready = await listener.waitForField('READY', '1', 20_000);
      // Not ready for 3 s with the watchdog timer ticking every second: a ping then would vouch for an app never seen healthy.
      const readyIndex = listener.messages.indexOf(ready);
      assert.deepEqual(
        listener.messages
          .slice(0, readyIndex)
          .filter((m) => 'WATCHDOG' in m.fields)
          .map((m) => m.raw),
        [],
        listener.dump(),
      );
      await waitFor(() => pings(listener).length >= 2, { timeout: 15_000, message: () => `pings while healthy\n${listener.dump()}` });

      process.kill(Number(serverPid), 'SIGSTOP');
      const stoppedAt = Date.now();
      assert.deepEqual(await run.waitForExit(60_000), { code: 69, signal: null }, run.dump());

      const lastOk = Math.max(...run.logs.filter((l: LogLine) => l.msg === 'probe passed').map((l) => l.time as number));
      const verdict = run.logs.find((l) => l.msg === 'unhealthy: killing the child');
      assert.ok(verdict, run.dump());
      const verdictAt = verdict.time as number;
      const pingTimes = pings(listener).map((m) => m.receivedAt);
      const report = `${describe('pings', pingTimes, lastOk)}; verdict +${Math.round(verdictAt - lastOk)}ms (times from the last success)`;
      // The case this test is about happened: a window where the app was neither judged nor fresh.
      assert.ok(verdictAt - lastOk >= freshnessMs + marginMs + 1000, `the verdict came too soon to tell: ${report}`);
      assert.deepEqual(
        pingTimes.filter((t) => t > lastOk + freshnessMs + marginMs).map((t) => `+${Math.round(t - lastOk)}ms`),
        [],
        `no ping once stale (${freshnessMs} ms): ${report}`,
      );
      // ...while a failing probe alone stops nothing as long as the last success is fresh.
      assert.ok(
        pingTimes.some((t) => t > stoppedAt),
        `pings went on while the last success was fresh: ${report}`,
      );
      assert.ok(
        pingTimes.every((t) => t < verdictAt + marginMs),
        report,
      );
      await assertNoLeftovers(marker);
    } finally {
      await listener.close();
    }
  },
);

test(
  'only liveness decides the pings, but none goes out before READY: readiness not yet passing, then failing after READY',
  { timeout: 60_000 },
  async () => {
    const listener = await NotifyListener.start();
    const marker = testMarker();
    const [ready, live] = [await freePort(), await freePort()];
    try {
      const run = runSdwrap(
        [
          '--probe',
          `readiness:http:http://127.0.0.1:${ready}/healthz`,
          '--probe',
          `liveness:tcp:127.0.0.1:${live}`,
          '--interval',
          '100ms',
          '--timeout',
          '500ms',
          '--failure-threshold',
          '2',
          '--start-period',
          '20s',
          '--stop-timeout',
          '1s',
          '--',
          'sh',
          '-c',
          `"${process.execPath}" "${SERVER}" --port ${ready} --ready-after 2500 & exec "${process.execPath}" "${SERVER}" --port ${live}`,
        ],
        { notifySocket: listener.address, marker, env: { WATCHDOG_USEC: '1000000' } },
      );
      // Liveness passes at once, readiness only after 2.5 s: the app is not ready, so no ping yet.
      const readyMsg = await listener.waitForField('READY', '1', 20_000);
      const before = listener.messages.slice(0, listener.messages.indexOf(readyMsg));
      assert.ok(
        before.some((m) => /^starting: waiting for GET .*HTTP 503/.test(m.fields.STATUS ?? '')),
        `readiness failed for a while first\n${listener.dump()}`,
      );
      assert.deepEqual(
        before.filter((m) => 'WATCHDOG' in m.fields).map((m) => m.raw),
        [],
        listener.dump(),
      );
      await fetch(`http://127.0.0.1:${ready}/control/fail`);
      const notReady = await listener.waitFor((m) => /^not ready: GET /.test(m.fields.STATUS ?? ''), 10_000, 'STATUS=not ready');
      // WatchdogSec=1s: a ping every 500 ms; three after "not ready" take 1.5 s, the deadline allows far more.
      await waitFor(() => pings(listener).filter((m) => m.receivedAt > notReady.receivedAt).length >= 3, {
        timeout: 15_000,
        message: () => `pings after readiness failed\n${listener.dump()}`,
      });
      assert.equal(run.exitStatus, undefined, run.dump());
      run.kill('SIGTERM');
      await run.waitForExit(10_000);
      await assertNoLeftovers(marker);
    } finally {
      await listener.close();
    }
  },
);
