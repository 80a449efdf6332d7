// Behaviour 5: signals reach the child unchanged; stop signals send STOPPING=1 and escalate after --stop-timeout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, readProc, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const SIGNALS = join(REPO_ROOT, 'test/fixtures/signals.mjs');
const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
after(stopAll);

test('HUP, USR1, USR2 and WINCH reach the child unchanged; TERM stops it cleanly', async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  try {
    const run = runSdwrap(['--', process.execPath, SIGNALS], { notifySocket: listener.address, marker });
    await run.waitForStdout(/^ready pid=\d+/m);
    for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const) {
      run.kill(signal);
      await run.waitForStdout(new RegExp(`^signal ${signal}$`, 'm'));
      await run.waitForLog((l) => /relayed/.test(String(l.msg)) && l.signal === signal);
    }
    assert.equal(listener.all('STOPPING').length, 0, 'relaying is not stopping');
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
    assert.ok(run.stdout.includes('signal SIGTERM'));
    const stopping = await listener.waitForField('STOPPING', '1', 5000);
    assert.equal(stopping.fields.STATUS, 'stopping on SIGTERM');
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('SIGINT and SIGQUIT stop too; a child that dies by the signal makes sdwrap die by it', async () => {
  const listener = await NotifyListener.start();
  try {
    const run = runSdwrap(['--', process.execPath, SIGNALS, '--die-on', 'SIGINT'], { notifySocket: listener.address });
    await run.waitForStdout(/^ready pid=\d+/m);
    run.kill('SIGINT');
    assert.deepEqual(await run.waitForExit(10_000), { code: null, signal: 'SIGINT' }, run.dump());
    assert.equal((await listener.waitForField('STOPPING', '1', 5000)).fields.STATUS, 'stopping on SIGINT');
    const quit = runSdwrap(['--', process.execPath, SIGNALS, '--exit-on', 'SIGQUIT', '--exit-code', '0'], {
      notifySocket: listener.address,
    });
    await quit.waitForStdout(/^ready pid=\d+/m);
    quit.kill('SIGQUIT');
    assert.deepEqual(await quit.waitForExit(10_000), { code: 0, signal: null }, quit.dump());
    assert.ok(listener.messages.some((m) => m.pid === quit.pid && m.fields.STOPPING === '1'));
  } finally {
    await listener.close();
  }
});

test('a child that ignores SIGTERM is SIGKILLed after --stop-timeout; the stop still ends clean', async () => {
  const marker = testMarker();
  const run = runSdwrap(['--stop-timeout', '700ms', '--', process.execPath, SIGNALS, '--ignore-term'], { marker });
  await run.waitForStdout(/^ready pid=\d+/m);
  const sentAt = Date.now();
  run.kill('SIGTERM');
  await run.waitForStdout(/^signal SIGTERM$/m);
  const exit = await run.waitForExit(10_000);
  const took = Date.now() - sentAt;
  // sdwrap ends by the SIGTERM it was asked to stop with, so systemd reads a clean stop, not Result=signal.
  assert.deepEqual(exit, { code: null, signal: 'SIGTERM' }, run.dump());
  assert.ok(took >= 700, `killed after ${took} ms, before the stop timeout`);
  assert.ok(
    run.logs.some((l) => l.msg === 'stop timeout reached: killing the tree' && l.level === 'warn'),
    run.dump(),
  );
  await assertNoLeftovers(marker);
});

test('a draining child gets its time; a second signal is relayed too', async () => {
  const port = await freePort();
  const run = runSdwrap(['--stop-timeout', '5s', '--', process.execPath, SERVER, '--port', String(port), '--drain-ms', '800']);
  await run.waitForStdout(/fixture-server listening/);
  const sentAt = Date.now();
  run.kill('SIGTERM');
  await run.waitForStdout(/fixture-server got SIGTERM/);
  run.kill('SIGHUP');
  await run.waitForStdout(/fixture-server got SIGHUP/);
  assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  assert.ok(Date.now() - sentAt >= 800, 'waited for the drain');
  assert.ok(run.stdout.includes('fixture-server drained'), run.dump());
});

test('a relayed SIGTERM is followed by SIGCONT: a stopped app acts on it at once, not at the stop timeout', async () => {
  const marker = testMarker();
  // Without the SIGCONT the stopped app would sit on its SIGTERM until the 60 s stop timeout's SIGKILL.
  const run = runSdwrap(['--stop-timeout', '60s', '--', process.execPath, SIGNALS], { marker });
  const [, pid] = await run.waitForStdout(/^ready pid=(\d+)/m);
  process.kill(Number(pid), 'SIGSTOP');
  await waitFor(() => readProc(Number(pid))?.state === 'T', { message: 'the app never stopped' });
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  assert.ok(run.stdout.includes('signal SIGTERM'), run.dump());
  assert.ok(!run.logs.some((l) => l.msg === 'stop timeout reached: killing the tree'), run.dump());
  await assertNoLeftovers(marker);
});

test("SIGABRT (systemd's watchdog signal) reaches the app, with STOPPING=1", async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  try {
    const run = runSdwrap(['--', process.execPath, SIGNALS, '--exit-on', 'SIGABRT', '--exit-code', '7'], {
      notifySocket: listener.address,
      marker,
    });
    await run.waitForStdout(/^ready pid=\d+/m);
    await listener.waitForField('READY', '1', 10_000);
    run.kill('SIGABRT');
    assert.deepEqual(await run.waitForExit(10_000), { code: 7, signal: null }, run.dump());
    assert.ok(run.stdout.includes('signal SIGABRT'), run.dump());
    const stopping = await listener.waitForField('STOPPING', '1', 5000);
    assert.equal(stopping.fields.STATUS, 'stopping on SIGABRT');
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('a SIGINT the app ignores: SIGKILL after --stop-timeout, and sdwrap ends by SIGINT, the stop asked for', async () => {
  const marker = testMarker();
  // signals.mjs prints SIGINT and keeps running.
  const run = runSdwrap(['--stop-timeout', '500ms', '--', process.execPath, SIGNALS], { marker });
  await run.waitForStdout(/^ready pid=\d+/m);
  run.kill('SIGINT');
  await run.waitForStdout(/^signal SIGINT$/m);
  assert.deepEqual(await run.waitForExit(10_000), { code: null, signal: 'SIGINT' }, run.dump());
  assert.ok(
    run.logs.some((l) => l.msg === 'stop timeout reached: killing the tree' && l.level === 'warn'),
    run.dump(),
  );
  await assertNoLeftovers(marker);
});
