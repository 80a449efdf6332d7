// --no-systemd: sdwrap restarts the child itself, with backoff, a budget, resets, and prompt stops.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, parseLogLine, REPO_ROOT, type LogLine } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
after(stopAll);

const restarts = (logs: LogLine[]) => logs.filter((l) => typeof l.restart === 'number' && String(l.msg).startsWith('restarting in'));

test('a crash-looping child: delays grow, the budget runs out, sdwrap exits non-zero saying why', async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  try {
    const run = runSdwrap(
      [
        '--no-systemd',
        '--restart-delay',
        '100ms',
        '--restart-max-delay',
        '350ms',
        '--max-restarts',
        '4',
        '--restart-window',
        '1min',
        '--',
        'sh',
        '-c',
        'exit 3',
      ],
      { notifySocket: listener.address, marker },
    );
    assert.deepEqual(await run.waitForExit(20_000), { code: 3, signal: null }, run.dump());
    const r = restarts(run.logs);
    assert.deepEqual(
      r.map((l) => l.restart),
      [1, 2, 3, 4],
    );
    const delays = r.map((l) => l.delayMs as number);
    // 100, 200, then the 350 cap, each with +/-25% jitter, never above the cap.
    assert.ok(delays[0]! >= 75 && delays[0]! <= 125, `${delays}`);
    assert.ok(delays[1]! >= 150 && delays[1]! <= 250, `${delays}`);
    assert.ok(
      delays.slice(2).every((d) => d >= 262 && d <= 350),
      `${delays}`,
    );
    assert.equal(run.logs.filter((l) => l.msg === 'spawned').length, 5);
    const gaveUp = run.logs.at(-1)!;
    assert.equal(gaveUp.level, 'error');
    assert.match(String(gaveUp.msg), /^gave up: 4 restarts within 1min/);
    assert.equal(gaveUp.reason, 'app exited with code 3');
    assert.deepEqual(listener.messages, [], '--no-systemd sends nothing even with NOTIFY_SOCKET set');
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('a healthy period resets the counters', async () => {
  const run = runSdwrap([
    '--no-systemd',
    '--restart-delay',
    '50ms',
    '--restart-reset',
    '400ms',
    '--max-restarts',
    '3',
    '--restart-window',
    '1min',
    '--',
    'sh',
    '-c',
    'sleep 0.6; exit 1',
  ]);
  await waitFor(() => restarts(run.logs).length >= 4, { timeout: 20_000, message: () => run.dump() });
  run.kill('SIGTERM');
  await run.waitForExit(10_000);
  // Each life was healthy for 600ms >= 400ms: every restart is a first attempt, and the budget of 3 never runs out.
  assert.deepEqual(
    restarts(run.logs)
      .map((l) => l.attempt)
      .slice(0, 4),
    [1, 1, 1, 1],
    run.dump(),
  );
  assert.ok(run.logs.some((l) => l.msg === 'app stayed healthy: restart backoff and budget reset'));
});

test('SIGTERM during a backoff wait exits at once with nothing left running', async () => {
  const marker = testMarker();
  const run = runSdwrap(['--no-systemd', '--restart-delay', '30s', '--restart-max-delay', '1min', '--', 'sh', '-c', 'exit 1'], { marker });
  await run.waitForLog((l) => String(l.msg).startsWith('restarting in'), 10_000);
  const sentAt = Date.now();
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(10_000), { code: null, signal: 'SIGTERM' }, run.dump());
  assert.ok(Date.now() - sentAt < 15_000, 'did not wait out the 30 s backoff');
  await assertNoLeftovers(marker);
});

test('an unhealthy child is restarted and probed afresh: new start period, counters reset', async () => {
  const port = await freePort();
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--no-systemd',
      '--http',
      `http://127.0.0.1:${port}/healthz`,
      '--interval',
      '100ms',
      '--timeout',
      '200ms',
      '--failure-threshold',
      '2',
      '--start-period',
      '5s',
      '--stop-timeout',
      '300ms',
      '--restart-delay',
      '100ms',
      '--',
      process.execPath,
      SERVER,
      '--port',
      String(port),
      '--ready-after',
      '300',
      '--hang-after',
      '800',
    ],
    { marker },
  );
  await waitFor(() => run.logs.filter((l) => l.msg === 'ready').length >= 2, { timeout: 20_000, message: () => run.dump() });
  const unhealthy = run.logs.filter((l) => l.msg === 'unhealthy: killing the child');
  assert.ok(unhealthy.length >= 1);
  assert.match(String(restarts(run.logs)[0]!.reason), /^unhealthy: GET .* 2 consecutive probe failures/);
  // After the restart the failure count starts from 1 again.
  const restartAt = run.logs.indexOf(restarts(run.logs)[0]!);
  await waitFor(() => run.logs.slice(restartAt).some((l) => l.msg === 'probe failed'), { timeout: 20_000, message: () => run.dump() });
  assert.equal(run.logs.slice(restartAt).find((l) => l.msg === 'probe failed')!.failures, 1);
  run.kill('SIGINT');
  await run.waitForExit(10_000);
  await assertNoLeftovers(marker);
});

test('--restart on-failure stops after a clean exit; --restart always restarts it', async () => {
  const onFailure = runSdwrap(['--no-systemd', '--', 'true']);
  assert.deepEqual(await onFailure.waitForExit(10_000), { code: 0, signal: null });
  assert.equal(restarts(onFailure.logs).length, 0);
  const always = runSdwrap(['--no-systemd', '--restart', 'always', '--restart-delay', '10ms', '--max-restarts', '2', '--', 'true']);
  assert.deepEqual(await always.waitForExit(10_000), { code: 69, signal: null }, always.dump());
  assert.equal(restarts(always.logs).length, 2);
});

test('giving up on an app that died by a signal: 128+N as a code, not the signal (sdwrap was not asked to stop)', async () => {
  const run = runSdwrap(['--no-systemd', '--restart-delay', '10ms', '--max-restarts', '1', '--', 'sh', '-c', 'kill -TERM $$']);
  assert.deepEqual(await run.waitForExit(10_000), { code: 143, signal: null }, run.dump());
  assert.equal(restarts(run.logs).length, 1, run.dump());
  const gaveUp = run.logs.at(-1)!;
  assert.match(String(gaveUp.msg), /^gave up: 1 restarts within/, run.dump());
  assert.equal(gaveUp.reason, 'app was killed by SIGTERM');
});

test('restart flags need --no-systemd', async () => {
  const run = runSdwrap(['--max-restarts', '3', '--', 'true']);
  assert.deepEqual(await run.waitForExit(10_000), { code: 2, signal: null });
  assert.match(run.stderr[0]!, /^sdwrap: --max-restarts needs --no-systemd/);
});

test('the demo shows a detected hang and a restart within 60 seconds, and Ctrl-C ends it cleanly', async () => {
  const port = await freePort();
  const marker = testMarker();
  const demo = spawn('sh', ['examples/demo.sh', '--log-format', 'json'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...marker.env, PORT: String(port), NOTIFY_SOCKET: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const stdout: string[] = [];
  createInterface({ input: demo.stderr }).on('line', (line) => {
    const log = parseLogLine(line);
    if (log) logs.push(log);
  });
  createInterface({ input: demo.stdout }).on('line', (line) => stdout.push(line));
  const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
  try {
    await waitFor(() => logs.filter((l) => l.msg === 'ready').length >= 2, {
      timeout: 60_000,
      interval: 200,
      message: () => [...stdout, ...logs.map((l) => JSON.stringify(l))].join('\n'),
    });
    assert.ok(stdout.some((l) => l.includes('hanging now')));
    assert.match(String(logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason), /consecutive probe failures/);
    assert.ok(restarts(logs).length >= 1);
    demo.kill('SIGINT');
    await exited;
    await assertNoLeftovers(marker);
  } finally {
    demo.kill('SIGKILL');
  }
});
