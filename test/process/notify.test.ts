// Behaviours 2, 3 and 8: READY=1 gated on probes, STATUS lines, watchdog pings gated on fresh health,
// and the notify socket's forms, with both notifiers (in-process addon and systemd-notify).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NotifyListener, type NotifyMessage } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { isCI } from '../helpers/ci.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
const PRELOAD_NO_ADDON = join(REPO_ROOT, 'test/fixtures/preload-no-addon.cjs');
// The in-process notifier needs the sd-notify addon, built only where libsystemd-dev was installed.
// CI installs it, so there its absence is a failure, not a skip.
const ADDON_BUILT = existsSync(join(REPO_ROOT, 'node_modules/sd-notify/build/Release/notify.node'));
const notifierSkip = (notifier: string) =>
  notifier === 'native' && !ADDON_BUILT && !isCI()
    ? 'the sd-notify addon is not built (install libsystemd-dev, then npm rebuild sd-notify)'
    : false;
after(stopAll);

/**
 * Whether a message came from sdwrap as the notifier would send it: the addon sends from sdwrap's own pid;
 * systemd-notify run by root sends with its parent's (sdwrap's) pid, run by another user with its own.
 */
function fromSdwrap(m: NotifyMessage, notifier: 'native' | 'systemd-notify', sdwrapPid: number): boolean {
  if (notifier === 'native' || process.getuid?.() === 0) return m.pid === sdwrapPid;
  return m.pid > 0 && m.pid !== sdwrapPid;
}

/** Messages of sdwrap's own (systemd-notify's BARRIER=1 handshake datagrams are not ours). */
const ours = (l: NotifyMessage[]) => l.filter((m) => !('BARRIER' in m.fields));

for (const notifier of ['native', 'systemd-notify'] as const) {
  test(
    `READY=1 exactly once, only after the server answers; STATUS tells the story (${notifier})`,
    { skip: notifierSkip(notifier) },
    async () => {
      const listener = await NotifyListener.start();
      const marker = testMarker();
      const port = await freePort();
      try {
        const spawnedAt = Date.now();
        const run = runSdwrap(
          [
            '--notifier',
            notifier,
            '--http',
            `http://127.0.0.1:${port}/healthz`,
            '--interval',
            '200ms',
            '--timeout',
            '500ms',
            '--success-threshold',
            '2',
            '--start-period',
            '20s',
            '--log-level',
            'debug',
            '--',
            process.execPath,
            SERVER,
            '--port',
            String(port),
            '--ready-after',
            '1200',
          ],
          { notifySocket: listener.address, marker },
        );
        const ready = await listener.waitFor((m) => m.fields.READY === '1', 15_000, 'READY=1');
        // The server answers 200 only 1200 ms after it started, and it started after the spawn: a lower bound, true under any load.
        assert.ok(
          ready.receivedAt - spawnedAt >= 1200,
          `READY came ${Math.round(ready.receivedAt - spawnedAt)} ms after sdwrap was spawned, before the server could be healthy`,
        );
        assert.match(ready.fields.STATUS ?? '', /^healthy: GET http:\/\/127\.0\.0\.1:\d+\/healthz passed in \d+ms$/);
        // The notifier is in-process or systemd-notify as asked, and the sender is sdwrap (or, not as root, its systemd-notify).
        assert.ok(
          fromSdwrap(ready, notifier, run.pid),
          `sender pid ${ready.pid}, sdwrap ${run.pid}, uid ${process.getuid?.()}\n${listener.dump()}`,
        );
        assert.ok(
          ours(listener.messages).some((m) =>
            /^starting: waiting for GET .*\(last: HTTP 503 \(expected 200-399\); start period 20s, start timeout extended\)$/.test(
              m.fields.STATUS ?? '',
            ),
          ),
          listener.dump(),
        );
        await run.waitForLog((l) => l.msg === 'notifier in use' && l.notifier === notifier);
        // Let more probes pass, then stop: still exactly one READY.
        const passedBefore = run.logs.filter((l) => l.msg === 'probe passed').length;
        await waitFor(() => run.logs.filter((l) => l.msg === 'probe passed').length >= passedBefore + 3, { timeout: 10_000 });
        run.kill('SIGTERM');
        await run.waitForExit(10_000);
        assert.equal(listener.all('READY').length, 1, listener.dump());
        const stopping = await listener.waitFor((m) => m.fields.STOPPING === '1', 5000);
        assert.equal(stopping.fields.STATUS, 'stopping on SIGTERM');
        await assertNoLeftovers(marker);
      } finally {
        await listener.close();
      }
    },
  );
}

test('with no probe, READY=1 follows the spawn at once', async () => {
  const listener = await NotifyListener.start();
  try {
    const run = runSdwrap(['--', 'sleep', '30'], { notifySocket: listener.address });
    const ready = await listener.waitFor((m) => m.fields.READY === '1', 10_000);
    assert.equal(ready.fields.STATUS, 'healthy: no probe configured, app started');
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
  } finally {
    await listener.close();
  }
});

test('failing n/N shows in STATUS and the logs, recovery resets the count', async () => {
  const listener = await NotifyListener.start();
  const port = await freePort();
  try {
    const run = runSdwrap(
      [
        '--http',
        `http://127.0.0.1:${port}/healthz`,
        '--interval',
        '150ms',
        '--timeout',
        '500ms',
        '--failure-threshold',
        '50',
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(port),
      ],
      { notifySocket: listener.address },
    );
    await listener.waitForField('READY', '1', 10_000);
    await fetch(`http://127.0.0.1:${port}/control/fail`);
    const failing = await listener.waitFor(
      (m) => /^failing 2\/50: GET .* HTTP 500 \(expected 200-399\)$/.test(m.fields.STATUS ?? ''),
      10_000,
    );
    assert.ok(failing);
    const warn = await run.waitForLog((l) => l.msg === 'probe failed' && l.failures === 1);
    assert.equal(warn.level, 'warn');
    await fetch(`http://127.0.0.1:${port}/control/recover`);
    await listener.waitFor((m) => m.at > failing.at && /^healthy: /.test(m.fields.STATUS ?? ''), 10_000);
    await run.waitForLog((l) => l.msg === 'probe recovered');
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
  } finally {
    await listener.close();
  }
});

test("WATCHDOG=1 every half period while healthy, none after the verdict, which comes before systemd's would", async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  // WatchdogSec=3s: a ping every 1.5 s. Times are the listener's receive times, not the (busier) test process's.
  const watchdogMs = 3000;
  const periodMs = watchdogMs / 2;
  try {
    const run = runSdwrap(
      [
        '--http',
        `http://127.0.0.1:${port}/healthz`,
        '--interval',
        '100ms',
        '--timeout',
        '300ms',
        '--failure-threshold',
        '3',
        '--stop-timeout',
        '1s',
        // A node server on a loaded machine may take longer than 3 x 100 ms to listen.
        '--start-period',
        '10s',
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(port),
      ],
      { notifySocket: listener.address, marker, env: { WATCHDOG_USEC: String(watchdogMs * 1000) } },
    );
    const [, serverPid] = await run.waitForStdout(/fixture-server listening port=\d+ pid=(\d+)/);
    await listener.waitForField('READY', '1', 10_000);
    await waitFor(() => listener.all('WATCHDOG').length >= 5, { timeout: 20_000, message: () => listener.dump() });
    assert.ok(
      listener.all('WATCHDOG').every((m) => m.fields.WATCHDOG === '1' && m.pid === run.pid),
      listener.dump(),
    );
    const times = listener.all('WATCHDOG').map((m) => m.receivedAt);
    const gaps = times.slice(1).map((t, i) => Math.round(t - times[i]!));
    // The timer never fires early, so on average the pings are at least a period apart; one delivered late
    // makes its gap long and the next short, so the bound is on the mean (tolerating one ping late by a period).
    const mean = (times.at(-1)! - times[0]!) / gaps.length;
    assert.ok(mean >= periodMs * (1 - 1 / gaps.length), `pings every WatchdogSec/2 (${periodMs} ms), got gaps ${gaps.join(', ')}`);
    // And never a gap systemd's watchdog would fire in.
    assert.ok(
      gaps.every((gap) => gap < watchdogMs),
      `a gap of WatchdogSec (${watchdogMs} ms) or more: ${gaps.join(', ')}`,
    );
    // Hang the server: the pings stop, and sdwrap kills it before systemd's watchdog would have fired.
    process.kill(Number(serverPid), 'SIGSTOP');
    const exit = await run.waitForExit(15_000);
    assert.deepEqual(exit, { code: 69, signal: null }, run.dump());
    const lastPing = Math.max(...listener.all('WATCHDOG').map((m) => m.receivedAt));
    const unhealthyLog = run.logs.find((l) => l.msg === 'unhealthy: killing the child')!;
    assert.ok(unhealthyLog, run.dump());
    assert.ok(
      (unhealthyLog.time as number) - lastPing < watchdogMs,
      `verdict ${(unhealthyLog.time as number) - lastPing} ms after the last ping: systemd would have fired first`,
    );
    // The verdict stops the timer at once; a ping sent just before it may still be on its way.
    assert.ok(
      lastPing < (unhealthyLog.time as number) + 1000,
      `a ping ${Math.round(lastPing - (unhealthyLog.time as number))} ms after the verdict`,
    );
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('WATCHDOG_USEC=0, garbage, or another WATCHDOG_PID: no pings, no crash', async () => {
  for (const env of [{ WATCHDOG_USEC: '0' }, { WATCHDOG_USEC: 'soon' }, { WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' }]) {
    const listener = await NotifyListener.start();
    try {
      const run = runSdwrap(['--', 'sleep', '30'], { notifySocket: listener.address, env });
      await listener.waitForField('READY', '1', 10_000);
      const readyAt = Date.now();
      // 200ms would be WatchdogSec if it were honoured: wait several periods and see none.
      await waitFor(() => Date.now() - readyAt > 700 || listener.all('WATCHDOG').length > 0);
      assert.equal(listener.all('WATCHDOG').length, 0, `${JSON.stringify(env)}: ${listener.dump()}`);
      run.kill('SIGTERM');
      assert.deepEqual(await run.waitForExit(10_000), { code: null, signal: 'SIGTERM' });
    } finally {
      await listener.close();
    }
  }
});

test('no NOTIFY_SOCKET: works, notifies nothing, says nothing about it', async () => {
  const run = runSdwrap(['--log-level', 'debug', '--', 'sh', '-c', 'exit 0']);
  assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null });
  assert.ok(!run.stderr.some((l) => /notif/i.test(l)), run.dump());
});

for (const notifier of ['native', 'systemd-notify'] as const) {
  test(`an abstract @socket works (${notifier})`, { skip: notifierSkip(notifier) }, async () => {
    const listener = await NotifyListener.start({ abstract: true });
    assert.ok(listener.address.startsWith('@'));
    try {
      const run = runSdwrap(['--notifier', notifier, '--', 'sleep', '30'], { notifySocket: listener.address });
      const ready = await listener.waitForField('READY', '1', 10_000);
      assert.ok(fromSdwrap(ready, notifier, run.pid), `sender pid ${ready.pid}, sdwrap ${run.pid}, uid ${process.getuid?.()}`);
      run.kill('SIGTERM');
      await run.waitForExit(10_000);
    } finally {
      await listener.close();
    }
  });
}

test('an unreachable socket is logged once and is not fatal', async () => {
  const run = runSdwrap(['--', 'sh', '-c', 'sleep 0.3; exit 5'], { notifySocket: '/tmp/sdwrap-no-such-socket' });
  assert.deepEqual(await run.waitForExit(10_000), { code: 5, signal: null }, run.dump());
  assert.equal(run.logs.filter((l) => l.msg === 'notify socket is unreachable: systemd will not hear from sdwrap').length, 1, run.dump());
  const bad = runSdwrap(['--', 'true'], { notifySocket: 'not-a-socket-address' });
  assert.deepEqual(await bad.waitForExit(10_000), { code: 0, signal: null });
  assert.equal(bad.logs.filter((l) => l.level === 'warn' && /NOTIFY_SOCKET/.test(String(l.msg))).length, 1, bad.dump());
});

test('--notifier auto falls back to systemd-notify where the addon is missing; --notifier native says so and does too', async () => {
  const listener = await NotifyListener.start();
  try {
    for (const choice of ['auto', 'native'] as const) {
      const run = runSdwrap(['--notifier', choice, '--', 'sleep', '30'], {
        notifySocket: listener.address,
        env: { NODE_OPTIONS: `--require "${PRELOAD_NO_ADDON}"` },
      });
      const inUse = await run.waitForLog((l) => l.msg === 'notifier in use', 10_000);
      assert.equal(inUse.notifier, 'systemd-notify', run.dump());
      const ready = await listener.waitFor(
        (m) => m.fields.READY === '1' && fromSdwrap(m, 'systemd-notify', run.pid) && m.receivedAt >= (inUse.time as number) - 1000,
        10_000,
        `READY=1 (${choice})`,
      );
      assert.equal(ready.fields.STATUS, 'healthy: no probe configured, app started');
      const warned = run.logs.some(
        (l) => l.level === 'warn' && /the sd-notify addon is not built; using systemd-notify/.test(String(l.msg)),
      );
      assert.equal(warned, choice === 'native', run.dump());
      run.kill('SIGTERM');
      assert.deepEqual(await run.waitForExit(10_000), { code: null, signal: 'SIGTERM' }, run.dump());
    }
  } finally {
    await listener.close();
  }
});
