// Issue 5's probes through the real CLI: WebSocket, JSON assertions, the log watch, heartbeats.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const WS_SERVER = join(REPO_ROOT, 'test/fixtures/ws-server.mjs');
const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
after(stopAll);

const fast = ['--interval', '150ms', '--timeout', '400ms', '--failure-threshold', '2', '--start-period', '10s', '--stop-timeout', '1s'];

test('the game-server case: a dead websocket loop behind a healthy /healthz is found; so is an empty server', async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  try {
    const run = runSdwrap(
      [
        ...fast,
        '--ws',
        `ws://127.0.0.1:${port}/ws`,
        '--ws-send',
        'ping',
        '--ws-expect',
        '^pong$',
        '--probe',
        `liveness:http:http://127.0.0.1:${port}/status`,
        '--http-json',
        'players.online>=1',
        '--',
        process.execPath,
        WS_SERVER,
        '--port',
        String(port),
      ],
      { notifySocket: listener.address, marker },
    );
    // No players yet: not ready.
    await listener.waitFor((m) => /players\.online is 0 \(expected >= 1\)/.test(m.fields.STATUS ?? ''), 10_000);
    assert.equal(listener.all('READY').length, 0);
    await fetch(`http://127.0.0.1:${port}/control/players?n=120`);
    const ready = await listener.waitForField('READY', '1', 10_000);
    assert.equal(ready.fields.STATUS, 'healthy: all 2 probes passed');
    await fetch(`http://127.0.0.1:${port}/control/ws-dead`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'the tiny health endpoint still says ok');
    assert.deepEqual(await run.waitForExit(15_000), { code: 69, signal: null }, run.dump());
    const reason = String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason);
    assert.match(
      reason,
      /^WS ws:\/\/127\.0\.0\.1:\d+\/ws: 2 consecutive probe failures \(threshold 2\), last: timed out after 400ms: no message matching \/\^pong\$\//,
    );
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('--watch-log: a storm of matching lines makes the app unhealthy; output reaches stdout and stderr unchanged and apart', async () => {
  const marker = testMarker();
  const script = [
    'echo "starting up"',
    'echo "warning on stderr" >&2',
    'for i in 1 2; do echo "rpc error: context deadline has elapsed ($i)"; done',
    'sleep 0.5',
    // One write: with three, sdwrap may kill the app on the 4th line before it has written the 5th.
    'printf "rpc error: context deadline has elapsed (%s)\\n" 3 4 5 >&2',
    'exec sleep 30',
  ].join('; ');
  const run = runSdwrap(
    [
      '--watch-log',
      'deadline has elapsed',
      '--watch-log-max',
      '3',
      '--watch-log-window',
      '1min',
      '--stop-timeout',
      '1s',
      '--',
      'sh',
      '-c',
      script,
    ],
    { marker },
  );
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  assert.deepEqual(run.stdout, [
    'starting up',
    'rpc error: context deadline has elapsed (1)',
    'rpc error: context deadline has elapsed (2)',
  ]);
  const appStderr = run.stderr.filter((l) => !l.startsWith('{'));
  assert.deepEqual(appStderr, [
    'warning on stderr',
    'rpc error: context deadline has elapsed (3)',
    'rpc error: context deadline has elapsed (4)',
    'rpc error: context deadline has elapsed (5)',
  ]);
  assert.match(
    String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason),
    /^log watch: 4 lines matching \/deadline has elapsed\/ within 1min \(max 3\)/,
  );
  await assertNoLeftovers(marker);
});

test('--watch-log under the limit changes nothing: the exit status and every byte pass through', async () => {
  const run = runSdwrap([
    '--watch-log',
    'never-matches',
    '--',
    'sh',
    '-c',
    'printf "a\\nb\\nno newline at the end"; printf "e1\\n" >&2; exit 5',
  ]);
  assert.deepEqual(await run.waitForExit(10_000), { code: 5, signal: null }, run.dump());
  assert.deepEqual(run.stdout, ['a', 'b', 'no newline at the end']);
  assert.ok(run.stderr.includes('e1'));
});

test('--heartbeat-url: /start, healthy pings and /fail with the reason; the secret never shows', async () => {
  const secret = `tok${Math.random().toString(36).slice(2)}${Date.now()}`;
  const seen: Array<{ method: string; url: string; body: string }> = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body });
      res.end('OK');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const hbPort = (server.address() as { port: number }).port;
  const listener = await NotifyListener.start();
  const appPort = await freePort();
  try {
    const run = runSdwrap(
      [
        ...fast,
        '--heartbeat-url',
        `http://127.0.0.1:${hbPort}/ping/${secret}`,
        '--http',
        `http://127.0.0.1:${appPort}/healthz`,
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(appPort),
      ],
      { notifySocket: listener.address },
    );
    await listener.waitForField('READY', '1', 10_000);
    await waitFor(() => seen.some((r) => r.url === `/ping/${secret}`), { timeout: 10_000, message: () => JSON.stringify(seen) });
    await fetch(`http://127.0.0.1:${appPort}/control/fail`);
    assert.deepEqual(await run.waitForExit(15_000), { code: 69, signal: null }, run.dump());
    assert.deepEqual(seen.map((r) => `${r.method} ${r.url}`).slice(0, 2), [`GET /ping/${secret}/start`, `GET /ping/${secret}`]);
    const fail = seen.find((r) => r.url === `/ping/${secret}/fail`)!;
    assert.equal(fail.method, 'POST');
    assert.match(fail.body, /consecutive probe failures/);
    assert.ok(![...run.stdout, ...run.stderr].join('\n').includes(secret), 'the secret is not in the logs');
    assert.ok(!listener.messages.some((m) => m.raw.includes(secret)), 'nor in STATUS');
  } finally {
    await listener.close();
    server.close();
  }
  // An unreachable monitor: warnings name only the origin.
  const port = await freePort();
  const run = runSdwrap(['--heartbeat-url', `http://127.0.0.1:${port}/ping/${secret}`, '--', 'sh', '-c', 'sleep 0.5; exit 3']);
  assert.deepEqual(await run.waitForExit(10_000), { code: 3, signal: null }, run.dump());
  assert.ok(
    run.logs.some((l) => l.level === 'warn' && JSON.stringify(l).includes(`127.0.0.1:${port}`)),
    run.dump(),
  );
  assert.ok(![...run.stdout, ...run.stderr].join('\n').includes(secret), run.dump());
  const bad = runSdwrap(['--heartbeat-url', `ftp://127.0.0.1/${secret}`, '--', 'true']);
  assert.deepEqual(await bad.waitForExit(10_000), { code: 2, signal: null });
  assert.ok(![...bad.stdout, ...bad.stderr].join('\n').includes(secret), bad.dump());
});

/** A heartbeat monitor on 127.0.0.1 that records every ping. */
async function startMonitor(): Promise<{
  base: string;
  seen: Array<{ method: string; url: string; body: string; at: number }>;
  close(): void;
}> {
  const seen: Array<{ method: string; url: string; body: string; at: number }> = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body, at: Date.now() });
      res.end('OK');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, close: () => server.close() };
}

test('--heartbeat-url: an app that exits on its own is reported at URL/fail, with how it ended', async () => {
  const monitor = await startMonitor();
  try {
    const run = runSdwrap(['--heartbeat-url', `${monitor.base}/hb`, '--', 'sh', '-c', 'sleep 0.3; exit 3']);
    assert.deepEqual(await run.waitForExit(10_000), { code: 3, signal: null }, run.dump());
    // sdwrap waits for the fail ping before it exits.
    assert.deepEqual(
      monitor.seen.map((r) => `${r.method} ${r.url} ${r.body}`),
      ['GET /hb/start ', 'POST /hb/fail app exited with code 3'],
    );
  } finally {
    monitor.close();
  }
});

test('--heartbeat-every reaches the heartbeat: healthy pings at that pace, no faster', async () => {
  const monitor = await startMonitor();
  try {
    // No probe: the app counts as healthy once spawned, and a ping is due every --heartbeat-every (default 1min).
    const spawnedAt = Date.now();
    const run = runSdwrap(['--heartbeat-url', `${monitor.base}/hb`, '--heartbeat-every', '1s', '--', 'sleep', '30']);
    const oks = () => monitor.seen.filter((r) => r.url === '/hb');
    await waitFor(() => oks().length >= 3, { timeout: 15_000, message: () => `${JSON.stringify(monitor.seen)}\n${run.dump()}` });
    // At most one per second (less 2% timer slack), counted from the spawn: a bound no load can break.
    const elapsed = Date.now() - spawnedAt;
    assert.ok(oks().length <= Math.floor(elapsed / 980) + 1, `${oks().length} healthy pings in ${elapsed} ms`);
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
  } finally {
    monitor.close();
  }
});

/** An HTTP server whose answers each assertion flag can tell apart. */
async function startAsserted(): Promise<{ url: (path: string) => string; server: Server }> {
  const state = { url: (_: string) => '', server: undefined as unknown as Server };
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    switch (req.url) {
      case '/no-content':
        res.statusCode = 204;
        return res.end();
      case '/not-ready-header':
        res.setHeader('X-Ready', 'no');
        return res.end('ok');
      case '/wrong-body':
        return res.end('degraded');
      case '/redirect':
        res.statusCode = 302;
        res.setHeader('Location', '/broken');
        return res.end();
      case '/broken':
        res.statusCode = 503;
        return res.end();
      default:
        res.statusCode = 404;
        return res.end();
    }
  };
  state.server = createServer(answer);
  state.server.listen(0, '127.0.0.1');
  await once(state.server, 'listening');
  const { port } = state.server.address() as { port: number };
  state.url = (path) => `http://127.0.0.1:${port}${path}`;
  return state;
}

test('the HTTP assertion flags reach the probe from the command line', async () => {
  const server = await startAsserted();
  try {
    // Each answer passes the default check (200-399, nothing else asked); only the flag makes it fail.
    const cases: Array<[string, string[], RegExp]> = [
      ['/no-content', ['--http-status', '200'], /last: HTTP 204 \(expected 200\); if the app needs time to start, set --start-period$/],
      [
        '/not-ready-header',
        ['--http-header', 'X-Ready: yes'],
        /last: header x-ready: "no" \(expected "yes"\); if the app needs time to start, set --start-period$/,
      ],
      ['/wrong-body', ['--http-body', '^ok$'], /last: body does not match \/\^ok\$\/; if the app needs time to start, set --start-period$/],
      [
        '/redirect',
        ['--http-follow-redirects'],
        /last: HTTP 503 \(expected 200-399\); if the app needs time to start, set --start-period$/,
      ],
    ];
    for (const [path, flags, reason] of cases) {
      const run = runSdwrap([
        '--http',
        server.url(path),
        ...flags,
        '--failure-threshold',
        '1',
        '--interval',
        '100ms',
        '--stop-timeout',
        '1s',
        '--',
        'sleep',
        '30',
      ]);
      assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, `${flags.join(' ')}\n${run.dump()}`);
      assert.match(String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason), reason, run.dump());
    }
  } finally {
    server.server.closeAllConnections();
    server.server.close();
  }
});

test('probes never overlap: a probe slower than --interval delays the next, never runs beside it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdwrap-overlap-'));
  const trace = join(dir, 'trace');
  const marker = testMarker();
  try {
    // Each probe writes "start", takes 300 ms, writes "end"; the interval is 50 ms.
    const startedAt = Date.now();
    const run = runSdwrap(
      [
        '--exec',
        `echo start >> '${trace}'; sleep 0.3; echo end >> '${trace}'`,
        '--interval',
        '50ms',
        '--timeout',
        '5s',
        '--',
        'sleep',
        '30',
      ],
      { marker },
    );
    const events = () => (existsSync(trace) ? readFileSync(trace, 'utf8').trim().split('\n') : []);
    await waitFor(() => events().filter((e) => e === 'end').length >= 5, { timeout: 15_000, message: () => run.dump() });
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
    await assertNoLeftovers(marker);
    // Strictly start, end, start, end...: a probe starts only once the one before has ended.
    const seen = events();
    assert.ok(
      seen.every((e, i) => e === (i % 2 === 0 ? 'start' : 'end')),
      seen.join(' '),
    );
    // So no more than one start per 300 ms since sdwrap was spawned.
    const starts = seen.filter((e) => e === 'start').length;
    assert.ok(starts <= Math.floor((Date.now() - startedAt) / 300) + 1, `${starts} probes in ${Date.now() - startedAt} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
