// --notify-passthrough: the app's own sd_notify, through a socket of its own, ANDed with the probes.
// Upstream is a real AF_UNIX datagram listener (NotifyListener); the app sends real datagrams.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT, type SdwrapRun } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';

const APP = join(REPO_ROOT, 'test/fixtures/notify-app.mjs');
const PRELOAD_NO_ADDON = join(REPO_ROOT, 'test/fixtures/preload-no-addon.cjs');
after(stopAll);

const probeArgs = (port: number) => ['--http', `http://127.0.0.1:${port}/healthz`, '--interval', '200ms', '--timeout', '500ms'];

test("READY=1 needs the app's READY and the probe; its STATUS is shown beside sdwrap's; junk is dropped; the socket goes at exit", async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  try {
    const run = runSdwrap(
      [
        '--notify-passthrough',
        '--log-level',
        'debug',
        ...probeArgs(port),
        '--start-period',
        '10s',
        '--',
        process.execPath,
        APP,
        '--port',
        String(port),
        '--ready-after',
        '1500',
        '--send-junk',
      ],
      { notifySocket: listener.address, marker, env: { WATCHDOG_USEC: '2000000' } },
    );
    // The probe passes long before the app says READY=1 (1.5 s after listening): READY waits for the app.
    await run.waitForLog((l) => l.msg === 'probe passed', 10_000);
    const [, , socket, usec, wpid] = await run.waitForStdout(
      /^notify-app ready pid=(\d+) socket=(\S+) watchdog_usec=(\S+) watchdog_pid=(\S+)/m,
      10_000,
    );
    const appPid = (/pid=(\d+)/.exec(run.stdout.find((l) => l.startsWith('notify-app ready'))!) ?? [])[1];
    assert.equal(usec, '2000000', "the app gets the unit's watchdog period");
    assert.equal(wpid, appPid, 'WATCHDOG_PID is the app itself');
    assert.notEqual(socket, listener.address, 'the app never gets the real notify socket');
    const ready = await listener.waitFor((m) => m.fields.READY === '1', 10_000, 'READY=1');
    const saidReady = run.logs.find((l) => l.msg === 'the app said READY=1');
    assert.ok(saidReady, run.dump());
    assert.ok(ready.receivedAt >= Number(saidReady.time) - 5, 'READY=1 upstream only after the app said it');
    assert.equal(listener.all('READY').length, 1);
    // The app's STATUS= rides along with sdwrap's own.
    await listener.waitFor((m) => /; app: tick \d+$/.test(m.fields.STATUS ?? ''), 10_000, 'combined STATUS');
    // Junk from the app: dropped, logged, sdwrap still fine; MAINPID= and FDSTORE= never go upstream.
    assert.ok(
      run.logs.some((l) => l.level === 'debug' && /oversized/.test(JSON.stringify(l))),
      run.dump(),
    );
    assert.ok(
      run.logs.some((l) => /dropped the app's MAINPID=/.test(String(l.msg))),
      run.dump(),
    );
    assert.ok(!listener.messages.some((m) => 'MAINPID' in m.fields || 'FDSTORE' in m.fields), listener.dump());
    await listener.waitFor((m) => m.fields.WATCHDOG === '1', 10_000, 'WATCHDOG=1 while both vouch');
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
    assert.equal(existsSync(dirname(socket!)), false, "the app's socket directory is removed at exit");
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test("with the systemd-notify notifier too: READY=1 after the app's, its STATUS beside sdwrap's, RELOADING=1 forwarded", async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  try {
    const run = runSdwrap(
      [
        '--notify-passthrough',
        '--notifier',
        'systemd-notify',
        ...probeArgs(port),
        '--start-period',
        '10s',
        '--',
        process.execPath,
        APP,
        '--port',
        String(port),
        '--ready-after',
        '1000',
      ],
      { notifySocket: listener.address, marker },
    );
    const [, pid] = await run.waitForStdout(/^notify-app ready pid=(\d+)/m, 10_000);
    const saidReady =
      run.logs.find((l) => l.msg === 'the app said READY=1') ?? (await run.waitForLog((l) => l.msg === 'the app said READY=1'));
    const ready = await listener.waitFor((m) => m.fields.READY === '1', 10_000, 'READY=1');
    assert.ok(ready.receivedAt >= Number(saidReady.time) - 5, 'READY=1 upstream only after the app said it');
    await listener.waitFor((m) => /; app: tick \d+$/.test(m.fields.STATUS ?? ''), 10_000, 'combined STATUS');
    process.kill(Number(pid), 'SIGHUP');
    await listener.waitFor((m) => m.fields.RELOADING === '1' && /^\d+$/.test(m.fields.MONOTONIC_USEC ?? ''), 10_000, 'RELOADING=1');
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

/**
 * Runs the notify app under `sdwrap --notify-passthrough` with an HTTP probe and a start period, waits until
 * READY=1 went upstream, and hands the run, the listener and the app's pid to `body`; then checks that nothing
 * is left running and closes the listener.
 */
async function withReadyApp(
  options: { sdwrap?: string[]; env?: NodeJS.ProcessEnv },
  body: (t: { run: SdwrapRun; listener: NotifyListener; appPid: number }) => Promise<void>,
): Promise<void> {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  try {
    const run = runSdwrap(
      [
        '--notify-passthrough',
        ...probeArgs(port),
        ...(options.sdwrap ?? []),
        '--start-period',
        '10s',
        '--',
        process.execPath,
        APP,
        '--port',
        String(port),
      ],
      { notifySocket: listener.address, marker, ...(options.env ? { env: options.env } : {}) },
    );
    const [, pid] = await run.waitForStdout(/^notify-app ready pid=(\d+)/m, 10_000);
    await listener.waitFor((m) => m.fields.READY === '1', 10_000, 'READY=1');
    await body({ run, listener, appPid: Number(pid) });
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
}

test("the app's tick stops while HTTP still answers: a liveness failure with the reason, exit 69", async () => {
  await withReadyApp({ env: { WATCHDOG_USEC: '1000000' } }, async ({ run, listener, appPid }) => {
    process.kill(appPid, 'SIGUSR1');
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    const verdict = run.logs.find((l) => l.msg === 'unhealthy: killing the child');
    assert.match(String(verdict?.reason), /the app's own watchdog: no WATCHDOG=1 from it for \d+ms/);
    assert.ok(listener.messages.some((m) => /^unhealthy, killing the app: the app's own watchdog/.test(m.fields.STATUS ?? '')));
  });
});

test('the app ticks on while HTTP hangs: the probe fails it all the same', async () => {
  await withReadyApp({ sdwrap: ['--failure-threshold', '2'], env: { WATCHDOG_USEC: '4000000' } }, async ({ run, appPid }) => {
    process.kill(appPid, 'SIGUSR2');
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    assert.match(String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason), /GET .*timed out/);
  });
});

test("the app's own reload: its RELOADING=1 is forwarded, and READY=1 goes up again only after its READY=1", async () => {
  await withReadyApp({}, async ({ run, listener, appPid }) => {
    process.kill(appPid, 'SIGHUP');
    const reloading = await listener.waitFor((m) => m.fields.RELOADING === '1', 10_000, 'RELOADING=1');
    assert.match(reloading.fields.MONOTONIC_USEC ?? '', /^\d+$/, 'MONOTONIC_USEC= in the same datagram');
    assert.equal(reloading.pid, run.pid, 'forwarded by sdwrap (the main pid), not sent by the app');
    await run.waitForStdout(/^notify-app reloaded/m, 10_000);
    const again = await listener.waitFor((m) => m.fields.READY === '1' && m.receivedAt > reloading.receivedAt, 10_000, 'READY=1 again');
    assert.ok(
      again.receivedAt - reloading.receivedAt >= 700,
      `READY=1 came ${again.receivedAt - reloading.receivedAt} ms after RELOADING=1`,
    );
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  });
});

test('without node-unix-socket the flag is refused: one line saying what to install, exit 2', async () => {
  const run = runSdwrap(['--notify-passthrough', '--', 'true'], {
    env: { NODE_OPTIONS: `--require ${PRELOAD_NO_ADDON}`, SDWRAP_TEST_HIDE_MODULE: 'node-unix-socket' },
  });
  assert.deepEqual(await run.waitForExit(10_000), { code: 2, signal: null }, run.dump());
  const lines = run.stderr.filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, run.dump());
  assert.match(lines[0]!, /^sdwrap: --notify-passthrough needs the optional package node-unix-socket.*npm install node-unix-socket/);
});
