// Issue 5's systemd conversation and probe roles: readiness vs liveness, WATCHDOG=trigger,
// EXTEND_TIMEOUT_USEC= during the start period, and reloads (RELOADING=1 with MONOTONIC_USEC=).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
after(stopAll);

const fast = ['--interval', '100ms', '--timeout', '300ms', '--failure-threshold', '2'];

test('a readiness probe failing after READY never restarts the app: STATUS and logs say so; a liveness probe failing kills it', async () => {
  const listener = await NotifyListener.start();
  const [ready, live] = [await freePort(), await freePort()];
  const marker = testMarker();
  try {
    // Two fixture servers stand in for the app's two faces: a dependency-backed readiness endpoint and its own liveness.
    const run = runSdwrap(
      [
        ...fast,
        '--probe',
        `readiness:http:http://127.0.0.1:${ready}/healthz`,
        '--probe',
        `liveness:http:http://127.0.0.1:${live}/healthz`,
        '--start-period',
        '10s',
        '--stop-timeout',
        '2s',
        '--log-level',
        'debug',
        '--',
        'sh',
        '-c',
        `"${process.execPath}" "${SERVER}" --port ${ready} & exec "${process.execPath}" "${SERVER}" --port ${live}`,
      ],
      { notifySocket: listener.address, marker },
    );
    const readyMsg = await listener.waitForField('READY', '1', 15_000);
    assert.equal(readyMsg.fields.STATUS, 'healthy: all 2 probes passed');
    await fetch(`http://127.0.0.1:${ready}/control/fail`);
    await listener.waitFor(
      (m) => /^not ready: GET http:\/\/127\.0\.0\.1:\d+\/healthz: 2 consecutive probe failures/.test(m.fields.STATUS ?? ''),
      10_000,
    );
    const warn = await run.waitForLog((l) => l.msg === 'not ready (readiness probe failing; not restarting)');
    assert.equal(warn.level, 'warn');
    // Still alive well past the failure threshold: many more probe rounds go by.
    const passedBefore = run.logs.filter((l) => l.msg === 'probe passed').length;
    await waitFor(() => run.logs.filter((l) => l.msg === 'probe passed').length >= passedBefore + 10, { timeout: 10_000 });
    assert.equal(run.exitStatus, undefined, run.dump());
    await fetch(`http://127.0.0.1:${ready}/control/recover`);
    await listener.waitFor((m) => m.at > Number(warn.time) && /^healthy: /.test(m.fields.STATUS ?? ''), 10_000);
    assert.equal(listener.all('READY').length, 1, 'recovering readiness is not a second READY');
    // The liveness probe failing is fatal: sdwrap kills the app (which drains and exits 0 on SIGTERM) and exits 69.
    await fetch(`http://127.0.0.1:${live}/control/fail`);
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    const reason = String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason);
    assert.match(reason, new RegExp(`^GET http://127\\.0\\.0\\.1:${live}/healthz: 2 consecutive probe failures`), run.dump());
    assert.ok(run.stdout.includes('fixture-server got SIGTERM'), run.dump());
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('--on-unhealthy watchdog sends WATCHDOG=trigger instead of killing; SIGABRT from systemd is relayed; a deadline backs it up', async () => {
  const listener = await NotifyListener.start();
  const port = await freePort();
  const marker = testMarker();
  try {
    const run = runSdwrap(
      [
        ...fast,
        '--on-unhealthy',
        'watchdog',
        '--stop-timeout',
        '800ms',
        '--start-period',
        '10s',
        '--http',
        `http://127.0.0.1:${port}/healthz`,
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(port),
      ],
      { notifySocket: listener.address, marker },
    );
    await listener.waitForField('READY', '1', 10_000);
    await fetch(`http://127.0.0.1:${port}/control/fail`);
    const trigger = await listener.waitForField('WATCHDOG', 'trigger', 10_000);
    assert.match(trigger.fields.STATUS ?? '', /^unhealthy, watchdog triggered: GET .* HTTP 500 \(expected 200-399\)$/);
    assert.equal(trigger.pid, run.pid);
    assert.ok(
      run.stdout.every((l) => !l.includes('got SIGTERM')),
      'the app was left for systemd to handle',
    );
    // systemd's watchdog action: SIGABRT to the main process, which relays it.
    run.kill('SIGABRT');
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    assert.ok(
      run.logs.some((l) => l.msg === 'signal relayed' && l.signal === 'SIGABRT'),
      run.dump(),
    );
    await assertNoLeftovers(marker);
    // Without systemd acting, sdwrap kills the tree itself at the deadline.
    const port2 = await freePort();
    const alone = runSdwrap(
      [
        ...fast,
        '--on-unhealthy',
        'watchdog',
        '--stop-timeout',
        '500ms',
        '--start-period',
        '10s',
        '--http',
        `http://127.0.0.1:${port2}/healthz`,
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(port2),
      ],
      { notifySocket: listener.address, marker },
    );
    await listener.waitFor((m) => m.pid === alone.pid && m.fields.READY === '1', 10_000);
    await fetch(`http://127.0.0.1:${port2}/control/fail`);
    assert.deepEqual(await alone.waitForExit(10_000), { code: 69, signal: null }, alone.dump());
    assert.ok(alone.logs.some((l) => l.msg === 'stop timeout reached: killing the tree'));
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test("the start period extends systemd's start timeout (EXTEND_TIMEOUT_USEC) and says so", async () => {
  const listener = await NotifyListener.start();
  const port = await freePort();
  try {
    const run = runSdwrap(
      [
        '--http',
        `http://127.0.0.1:${port}/healthz`,
        '--start-period',
        '1min',
        '--timeout',
        '500ms',
        '--stop-timeout',
        '2s',
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(port),
        '--ready-after',
        '1500',
      ],
      { notifySocket: listener.address },
    );
    const extend = await listener.waitForField('EXTEND_TIMEOUT_USEC', undefined, 10_000);
    // 10s chunk + probe timeout + stop timeout + 1s slack.
    assert.equal(Number(extend.fields.EXTEND_TIMEOUT_USEC), 13_500_000);
    assert.ok(
      listener.messages.some((m) =>
        /^starting: waiting for GET .* \(start period 1min, start timeout extended\)$/.test(m.fields.STATUS ?? ''),
      ),
      listener.dump(),
    );
    const ready = await listener.waitForField('READY', '1', 10_000);
    const countAtReady = listener.all('EXTEND_TIMEOUT_USEC').length;
    // A negative: outlast one refresh period (EXTEND_CHUNK_MS / 2 = 5 s) and see no extension arrive.
    await waitFor(() => Date.now() - ready.at > 5500, { timeout: 10_000 });
    assert.equal(listener.all('EXTEND_TIMEOUT_USEC').length, countAtReady, 'no extension once ready');
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
  } finally {
    await listener.close();
  }
});

test('a reload: RELOADING=1 and MONOTONIC_USEC in one datagram, SIGHUP relayed, READY=1 after the next probe passes', async () => {
  const listener = await NotifyListener.start();
  const port = await freePort();
  try {
    const run = runSdwrap(
      ['--http', `http://127.0.0.1:${port}/healthz`, '--interval', '300ms', '--', process.execPath, SERVER, '--port', String(port)],
      {
        notifySocket: listener.address,
      },
    );
    await listener.waitForField('READY', '1', 10_000);
    const before = process.hrtime.bigint() / 1000n;
    run.kill('SIGHUP');
    const reloading = await listener.waitForField('RELOADING', '1', 5000);
    const after = process.hrtime.bigint() / 1000n;
    const mono = BigInt(reloading.fields.MONOTONIC_USEC!);
    assert.ok(mono >= before && mono <= after, `MONOTONIC_USEC ${mono} is CLOCK_MONOTONIC now (${before}..${after})`);
    await run.waitForStdout(/fixture-server got SIGHUP/);
    const readyAgain = await listener.waitFor((m) => m.fields.READY === '1' && m.at >= reloading.at, 5000);
    assert.match(readyAgain.fields.STATUS ?? '', /^healthy: reloaded, GET .* passed in \d+ms$/);
    await run.waitForLog((l) => l.msg === 'reloaded', 5000);
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null });
  } finally {
    await listener.close();
  }
});
