// Edge cases found in review: each once crashed sdwrap, lost a stop, hung, or leaked a secret.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

after(stopAll);

test("a NUL byte in a probe's output (it reaches STATUS) neither crashes sdwrap nor leaves the app", async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  try {
    for (const notifier of ['systemd-notify', 'auto']) {
      const run = runSdwrap(
        [
          '--notifier',
          notifier,
          '--exec',
          'printf "bad\\000x\\n"; exit 1',
          '--interval',
          '100ms',
          '--failure-threshold',
          '2',
          '--',
          'sleep',
          '30',
        ],
        {
          notifySocket: listener.address,
          marker,
        },
      );
      assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
      assert.ok(!run.logs.some((l) => l.level === 'fatal'), run.dump());
    }
    assert.ok(listener.messages.every((m) => !m.raw.includes('\0')));
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('--no-systemd: SIGTERM while an unhealthy app is being killed stops sdwrap; no restart', async () => {
  const marker = testMarker();
  const port = await freePort();
  const run = runSdwrap(
    [
      '--no-systemd',
      '--tcp',
      `127.0.0.1:${port}`,
      '--failure-threshold',
      '1',
      '--interval',
      '100ms',
      '--stop-timeout',
      '2s',
      '--',
      'sh',
      '-c',
      'trap "" TERM; sleep 30 & wait',
    ],
    { marker },
  );
  await run.waitForLog((l) => l.msg === 'unhealthy: killing the child', 10_000);
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(10_000), { code: null, signal: 'SIGTERM' }, run.dump());
  assert.equal(run.logs.filter((l) => l.msg === 'spawned').length, 1, run.dump());
  await assertNoLeftovers(marker);
});

test('a readiness probe that never passes, with no start period, fails closed instead of hanging', async () => {
  const port = await freePort();
  const run = runSdwrap([
    '--probe',
    `readiness:tcp:127.0.0.1:${port}`,
    '--failure-threshold',
    '2',
    '--interval',
    '100ms',
    '--',
    'sleep',
    '30',
  ]);
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  assert.match(String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason), /never ready: 2 consecutive probe failures/);
});

test('user errors stay one line: spans past 24 days, a malformed %-escape, and a secret in a mistyped flag', async () => {
  const secret = `s3cr3t${Date.now()}`;
  const cases: Array<[string[], RegExp]> = [
    [
      ['--stop-timeout', '30d', '--', 'true'],
      /^sdwrap: --stop-timeout must be at most 24 days \(24d 20h 31min 23s 647ms, the longest timer Node.js keeps\), got '30d' \(see 'sdwrap --help'\)$/,
    ],
    [['--http', 'http://us%er:pw@127.0.0.1:1/', '--', 'true'], /^sdwrap: --http: the user or password in the URL has a malformed %-escape/],
    [[`--heartbeat-ur=https://hc-ping.com/${secret}`, '--', 'true'], /^sdwrap: unknown option '--heartbeat-ur=…' \(see 'sdwrap --help'\)$/],
  ];
  for (const [argv, message] of cases) {
    const run = runSdwrap(argv);
    assert.deepEqual(await run.waitForExit(10_000), { code: 2, signal: null }, run.dump());
    assert.equal(run.stderr.length, 1, run.dump());
    assert.match(run.stderr[0]!, message);
    assert.ok(!run.stderr[0]!.includes(secret));
  }
});

test('heartbeats go out with readiness probes only', async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url!);
    res.end('OK');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  try {
    const run = runSdwrap([
      '--heartbeat-url',
      `http://127.0.0.1:${port}/hb`,
      '--probe',
      `readiness:tcp:127.0.0.1:${port}`,
      '--interval',
      '100ms',
      '--',
      'sleep',
      '30',
    ]);
    await waitFor(() => seen.includes('/hb'), { timeout: 10_000, message: () => `${JSON.stringify(seen)}\n${run.dump()}` });
    assert.equal(seen[0], '/hb/start');
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
  } finally {
    server.close();
  }
});
