// Behaviour 4: an unhealthy child is killed with its whole tree, sdwrap exits 69, and no probe outlives it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, isAlive, processesWithEnv, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
const TREE = join(REPO_ROOT, 'test/fixtures/tree.mjs');
const PRELOAD_NO_PROC = join(REPO_ROOT, 'test/fixtures/preload-no-proc.cjs');
after(stopAll);

test('a SIGSTOPped server is found out in about failure-threshold x interval + timeout, and its tree killed', async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  const [threshold, interval, timeout] = [3, 200, 300];
  try {
    const run = runSdwrap(
      [
        '--http',
        `http://127.0.0.1:${port}/healthz`,
        '--interval',
        `${interval}ms`,
        '--timeout',
        `${timeout}ms`,
        '--failure-threshold',
        String(threshold),
        '--stop-timeout',
        '2s',
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(port),
      ],
      { notifySocket: listener.address, marker },
    );
    const [, pid] = await run.waitForStdout(/fixture-server listening port=\d+ pid=(\d+)/);
    await listener.waitForField('READY', '1', 10_000);
    const stoppedAt = Date.now();
    process.kill(Number(pid), 'SIGSTOP');
    assert.deepEqual(await run.waitForExit(15_000), { code: 69, signal: null }, run.dump());
    // The verdict is due threshold x interval + timeout after the hang; twice that and a second allow for a
    // loaded machine (the figure itself is `npm run bench`'s). The tree then goes within --stop-timeout.
    const bound = threshold * interval + timeout;
    const unhealthy = run.logs.find((l) => l.msg === 'unhealthy: killing the child')!;
    const verdictAfter = (unhealthy.time as number) - stoppedAt;
    assert.ok(verdictAfter < 2 * bound + 1000, `verdict ${verdictAfter} ms after the hang; bound ${bound} ms`);
    assert.equal(unhealthy.level, 'error');
    assert.match(String(unhealthy.reason), /3 consecutive probe failures \(threshold 3\), last: timed out after 300ms/);
    assert.ok(
      listener.messages.some((m) =>
        /^unhealthy, killing the app: GET .*timed out after 300ms(: no answer in time)?$/.test(m.fields.STATUS ?? ''),
      ),
      listener.dump(),
    );
    // SIGCONT followed the SIGTERM, so the stopped server could act on it and drain.
    assert.ok(run.stdout.includes('fixture-server got SIGTERM'), run.dump());
    assert.equal(isAlive(Number(pid)), false);
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('a tree that ignores SIGTERM, with a grandchild that left the session, is SIGKILLed after --stop-timeout', async () => {
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--exec',
      'test -e /nonexistent-sdwrap',
      '--interval',
      '100ms',
      '--timeout',
      '1s',
      '--failure-threshold',
      '2',
      '--start-period',
      '1s',
      '--stop-timeout',
      '500ms',
      '--',
      process.execPath,
      TREE,
      '--detached-grandchild',
      '--ignore-term',
    ],
    { marker },
  );
  await run.waitForStdout(/^tree-ready$/m);
  const members = processesWithEnv(marker.key, marker.value).map((p) => p.pid);
  assert.ok(members.length >= 5, `the tree is up: ${members.join(' ')}`);
  assert.deepEqual(await run.waitForExit(15_000), { code: 69, signal: null }, run.dump());
  assert.ok(run.stdout.includes('tree got SIGTERM'), run.dump());
  assert.ok(
    run.logs.some((l) => l.msg === 'stop timeout reached: killing the tree'),
    run.dump(),
  );
  assert.match(
    String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason),
    /^not ready by the end of the start period \(1s\): exec "test -e \/nonexistent-sdwrap" \(last: exit 1\); if the app needs longer to start, raise --start-period$/,
  );
  // sdwrap exits only once every process of the tree is gone: check at once, no grace.
  assert.deepEqual(
    processesWithEnv(marker.key, marker.value).map((p) => `${p.pid} ${p.cmdline.join(' ')}`),
    [],
  );
});

test('readiness fails closed: never healthy by the end of the start period', async () => {
  const port = await freePort();
  const listener = await NotifyListener.start();
  try {
    const run = runSdwrap(['--tcp', `127.0.0.1:${port}`, '--start-period', '800ms', '--interval', '100ms', '--', 'sleep', '30'], {
      notifySocket: listener.address,
    });
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    assert.match(
      String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason),
      /^not ready by the end of the start period \(800ms\): TCP 127\.0\.0\.1:\d+ \(last: .*ECONNREFUSED.*\); if the app needs longer to start, raise --start-period$/,
    );
    assert.equal(listener.all('READY').length, 0);
  } finally {
    await listener.close();
  }
});

test('a probe past its timeout fails and is killed with everything it started', async () => {
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--exec',
      'sleep 100 & sleep 101',
      '--timeout',
      '200ms',
      '--interval',
      '100ms',
      '--failure-threshold',
      '2',
      '--stop-timeout',
      '1s',
      '--',
      'sleep',
      '30',
    ],
    { marker },
  );
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  assert.match(String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason), /last: timed out after 200ms/);
  assert.deepEqual(
    processesWithEnv(marker.key, marker.value).map((p) => p.cmdline.join(' ')),
    [],
  );
});

test('no probe keeps running after the child is gone', async () => {
  const marker = testMarker();
  const run = runSdwrap(['--exec', 'sleep 60', '--timeout', '30s', '--interval', '100ms', '--', 'sh', '-c', 'sleep 0.5; exit 3'], {
    marker,
  });
  await waitFor(() => processesWithEnv(marker.key, marker.value).some((p) => p.cmdline.join(' ') === 'sleep 60'), {
    timeout: 10_000,
    message: 'the probe runs',
  });
  const exit = await run.waitForExit(10_000);
  assert.deepEqual(exit, { code: 3, signal: null }, run.dump());
  assert.deepEqual(
    processesWithEnv(marker.key, marker.value).map((p) => p.cmdline.join(' ')),
    [],
  );
});

test('leftovers of a child that exited on its own are ended before sdwrap exits', async () => {
  const marker = testMarker();
  const run = runSdwrap(
    ['--stop-timeout', '300ms', '--', 'sh', '-c', 'trap "" TERM; (trap "" TERM; exec sleep 100) & sleep 100 & exit 4'],
    { marker },
  );
  assert.deepEqual(await run.waitForExit(10_000), { code: 4, signal: null }, run.dump());
  assert.ok(
    run.logs.some((l) => l.msg === 'leftover processes did not exit: killing them'),
    run.dump(),
  );
  assert.deepEqual(
    processesWithEnv(marker.key, marker.value).map((p) => p.cmdline.join(' ')),
    [],
  );
});

test('TCP probe: a listening port is healthy', async () => {
  const port = await freePort();
  const listener = await NotifyListener.start();
  try {
    const run = runSdwrap(['--tcp', `127.0.0.1:${port}`, '--start-period', '10s', '--', process.execPath, SERVER, '--port', String(port)], {
      notifySocket: listener.address,
    });
    const ready = await listener.waitForField('READY', '1', 10_000);
    assert.match(ready.fields.STATUS ?? '', /^healthy: TCP 127\.0\.0\.1:\d+ passed in \d+ms$/);
    run.kill('SIGINT');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  } finally {
    await listener.close();
  }
});

test('where /proc is missing, the tree is still ended: the group, then tree-kill walking the descendants', async () => {
  // The preload makes sdwrap's /proc check fail, as on a system without /proc; `ps` (which tree-kill runs) still
  // works. The detached grandchild left the app's session and group: only a walk of the descendants finds it.
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--exec',
      'exit 1',
      '--interval',
      '100ms',
      '--start-period',
      '500ms',
      '--stop-timeout',
      '1s',
      '--',
      process.execPath,
      TREE,
      '--detached-grandchild',
      '--ignore-term',
    ],
    { marker, env: { NODE_OPTIONS: `--require "${PRELOAD_NO_PROC}"` } },
  );
  await run.waitForStdout(/^tree-ready$/m);
  const members = processesWithEnv(marker.key, marker.value).map((p) => p.pid);
  assert.ok(members.length >= 5, `the tree is up: ${members.join(' ')}`);
  assert.deepEqual(await run.waitForExit(15_000), { code: 69, signal: null }, run.dump());
  assert.ok(run.stdout.includes('tree got SIGTERM'), run.dump());
  // tree-kill signals asynchronously (it runs ps first): allow it the usual grace.
  await assertNoLeftovers(marker);
});
