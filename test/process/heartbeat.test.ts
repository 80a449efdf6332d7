// Heartbeat pushes against a local server that records every ping: paths, methods, the fail reason,
// throttling, coalescing, a secret URL that never reaches the logs, and a bounded close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { createHeartbeat, pingUrls, urlScrubber, type HeartbeatLog } from '../../src/heartbeat.js';
import { originOnly } from '../../src/redact.js';
import { UsageError } from '../../src/errors.js';
import { freePort } from '../helpers/ports.js';
import { holdsFor, waitFor } from '../helpers/wait.js';

interface Ping {
  method: string;
  url: string;
  body: string;
  contentType: string | undefined;
  at: number;
}

interface PingServer {
  base: string;
  pings: Ping[];
  /** Requests that arrived, answered or not. */
  arrived: number;
  readonly open: number;
  close(): Promise<void>;
}

/** Records every ping; `answer` decides what to do with it (default: 200 OK). */
async function startPingServer(answer?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<PingServer> {
  const sockets = new Set<Socket>();
  const state: PingServer = {
    base: '',
    pings: [],
    arrived: 0,
    get open() {
      return sockets.size;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    state.arrived++;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      state.pings.push({ method: req.method!, url: req.url!, body, contentType: req.headers['content-type'], at: performance.now() });
      if (answer) answer(req, res);
      else res.end('OK');
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

interface LogCall {
  level: 'warn' | 'debug';
  obj: object;
  msg: string;
}

function collectLog(): HeartbeatLog & { calls: LogCall[]; warns: () => LogCall[]; text: () => string } {
  const calls: LogCall[] = [];
  return {
    calls,
    warn: (obj, msg) => calls.push({ level: 'warn', obj, msg }),
    debug: (obj, msg) => calls.push({ level: 'debug', obj, msg }),
    warns: () => calls.filter((c) => c.level === 'warn'),
    text: () => JSON.stringify(calls),
  };
}

const token = () => randomBytes(16).toString('hex');

test('ping URLs: suffixes joined with one slash, the query kept; logs see the origin only', () => {
  const urls = (u: string) => Object.fromEntries(Object.entries(pingUrls(u)).map(([k, v]) => [k, v.href]));
  assert.deepEqual(urls('https://hc-ping.com/abc'), {
    start: 'https://hc-ping.com/abc/start',
    ok: 'https://hc-ping.com/abc',
    fail: 'https://hc-ping.com/abc/fail',
  });
  assert.deepEqual(urls('https://hc-ping.com/abc/'), {
    start: 'https://hc-ping.com/abc/start',
    ok: 'https://hc-ping.com/abc/',
    fail: 'https://hc-ping.com/abc/fail',
  });
  assert.deepEqual(urls('https://x.example/hb?token=s3cret#frag'), {
    start: 'https://x.example/hb/start?token=s3cret',
    ok: 'https://x.example/hb?token=s3cret',
    fail: 'https://x.example/hb/fail?token=s3cret',
  });
  assert.deepEqual(urls('https://x.example/?t=1'), {
    start: 'https://x.example/start?t=1',
    ok: 'https://x.example/?t=1',
    fail: 'https://x.example/fail?t=1',
  });
  assert.equal(originOnly('https://hc-ping.com/0b5c5e4e-8d2c-4c61-9c8e-1a2b3c4d5e6f'), 'https://hc-ping.com/…');
  assert.equal(originOnly('https://user:pw@uptime.betterstack.com:8443/api/v1/heartbeat/XyZ?x=1'), 'https://uptime.betterstack.com:8443/…');
  assert.equal(originOnly('not a url'), '(a URL, not shown)');
});

test('the scrubber removes the URL, its path and query, encoded or not, from any text', () => {
  const secret = token();
  const url = `https://hc-ping.com/ping/${secret}?rid=k%20ey${secret}`;
  const scrub = urlScrubber(url);
  const texts = [
    `request to ${url} failed`,
    `GET ${pingUrls(url).fail.href}: HTTP 500`,
    `path /ping/${secret}/start not found`,
    `token ${secret} rejected`,
    `query rid=k ey${secret}`,
  ];
  for (const text of texts) assert.ok(!scrub(text).includes(secret), scrub(text));
  assert.equal(scrub(`request to ${url} failed`), 'request to https://hc-ping.com/… failed');
  assert.equal(scrub('connect ECONNREFUSED 10.0.0.1:443'), 'connect ECONNREFUSED 10.0.0.1:443');
});

test('a bad URL is refused without echoing it; a throwing logger never reaches the caller', async () => {
  for (const bad of ['hc-ping.com/s3cr3t-t0ken', 'ftp://hc-ping.com/s3cr3t-t0ken']) {
    assert.throws(
      () => createHeartbeat(bad, collectLog()),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.message, '--heartbeat-url expects an http:// or https:// URL, got something else (not shown: the URL is a secret)');
        assert.ok(!JSON.stringify({ ...e, message: e.message }).includes('s3cr3t'));
        return true;
      },
    );
  }
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const port = await freePort();
  let calls = 0;
  const throwing: HeartbeatLog = {
    warn: () => {
      calls++;
      throw new Error('log sink gone');
    },
    debug: () => {
      calls++;
      throw new Error('log sink gone');
    },
  };
  const hb = createHeartbeat(`http://127.0.0.1:${port}/${token()}`, throwing);
  try {
    hb.start();
    hb.fail('x');
    await waitFor(() => calls === 2);
    await hb.close();
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('start, ok and fail reach their paths with their methods; the fail reason is the body', async () => {
  const server = await startPingServer();
  const secret = token();
  const log = collectLog();
  const hb = createHeartbeat(`${server.base}/ping/${secret}?rid=7`, log);
  try {
    assert.equal(hb.start(), undefined);
    await waitFor(() => server.pings.length === 1);
    hb.ok();
    await waitFor(() => server.pings.length === 2);
    hb.fail('3 consecutive probe failures, last: HTTP 503 (expected 200-399)');
    await waitFor(() => server.pings.length === 3);
    assert.deepEqual(
      server.pings.map(({ method, url, body }) => ({ method, url, body })),
      [
        { method: 'GET', url: `/ping/${secret}/start?rid=7`, body: '' },
        { method: 'GET', url: `/ping/${secret}?rid=7`, body: '' },
        { method: 'POST', url: `/ping/${secret}/fail?rid=7`, body: '3 consecutive probe failures, last: HTTP 503 (expected 200-399)' },
      ],
    );
    assert.equal(server.pings[2]!.contentType, 'text/plain; charset=utf-8');
    assert.equal(log.warns().length, 0, log.text());
    assert.ok(
      log.calls.some((c) => c.msg === 'heartbeat ping delivered'),
      log.text(),
    );
    assert.ok(!log.text().includes(secret), log.text());
  } finally {
    await hb.close();
    await server.close();
  }
});

test('one ping in flight: oks coalesce, start and fail are never dropped behind an ok', async () => {
  let release: (() => void) | undefined;
  // The first ping hangs until released, so everything after it has to wait.
  const server = await startPingServer((_req, res) => {
    if (server.pings.length === 1) release = () => res.end('OK');
    else res.end('OK');
  });
  const secret = token();
  const hb = createHeartbeat(`${server.base}/${secret}`, collectLog(), { minIntervalMs: 0 });
  try {
    const asked = performance.now();
    hb.ok();
    await waitFor(() => release);
    // A second request, if one went out, would arrive about as fast as the first did: wait ten times that (at least 500 ms).
    const quietMs = Math.max(500, 10 * (performance.now() - asked));
    hb.ok();
    hb.ok();
    hb.start();
    hb.ok();
    hb.fail('first');
    hb.fail('second');
    hb.ok();
    hb.ok();
    await holdsFor(() => server.arrived === 1, quietMs, { message: () => `${server.arrived} requests in flight at once` });
    release!();
    await waitFor(() => server.pings.length === 4 && server.open <= 1);
    assert.deepEqual(
      server.pings.map(({ method, url, body }) => `${method} ${url.replace(secret, 'T')} ${body}`),
      ['GET /T ', 'GET /T/start ', 'POST /T/fail second', 'GET /T '],
    );
  } finally {
    await hb.close();
    await server.close();
  }
});

test('ok is throttled to one per minIntervalMs; the first after start or fail goes out at once', async () => {
  const server = await startPingServer();
  const hb = createHeartbeat(`${server.base}/${token()}`, collectLog(), { minIntervalMs: 400 });
  const oks = () => server.pings.filter((p) => p.method === 'GET' && !p.url.endsWith('/start'));
  try {
    hb.start();
    const firstCalledAt = performance.now();
    hb.ok();
    for (let i = 0; i < 20; i++) hb.ok();
    await waitFor(() => oks().length === 1);
    // Keep calling ok() the way the supervisor does on every passing probe: a second one goes out only after the interval.
    await waitFor(
      () => {
        hb.ok();
        return oks().length >= 2;
      },
      { interval: 20 },
    );
    // Measured from the first call (not its arrival, which may lag): the second can only have been sent later.
    const gap = oks()[1]!.at - firstCalledAt;
    assert.ok(gap >= 400 * 0.98, `second ok arrived ${Math.round(gap)} ms after the first was asked for`);
    assert.equal(oks().length, 2);
    hb.fail('down');
    hb.ok();
    // Throttled, it would never come: nothing calls ok() again.
    await waitFor(() => oks().length === 3, { timeout: 2000, message: 'the ok after a fail was throttled away' });
  } finally {
    await hb.close();
    await server.close();
  }
});

/** Asserts the secret appears nowhere in what was logged, and that the redacted URL does. */
function assertRedacted(log: ReturnType<typeof collectLog>, secret: string, base: string): void {
  const text = log.text();
  assert.ok(!text.includes(secret), `the secret leaked into the log: ${text}`);
  for (const call of log.calls) assert.equal((call.obj as { heartbeat?: string }).heartbeat, `${base}/…`, text);
}

test('a refusing endpoint: warned once with the redacted URL, then quietly; nothing thrown', async () => {
  const port = await freePort();
  const secret = token();
  const base = `http://127.0.0.1:${port}`;
  const log = collectLog();
  const hb = createHeartbeat(`${base}/ping/${secret}?key=${secret}`, log, { minIntervalMs: 0 });
  try {
    hb.start();
    await waitFor(() => log.calls.length === 1);
    hb.ok();
    await waitFor(() => log.calls.length === 2);
    hb.fail(`reason mentioning ${secret}`);
    await waitFor(() => log.calls.length === 3);
    const [first, ...rest] = log.calls;
    assert.equal(first!.level, 'warn');
    assert.equal(first!.msg, 'heartbeat ping failed');
    assert.match(String((first!.obj as { error: string }).error), /ECONNREFUSED/);
    assert.deepEqual(
      rest.map((c) => c.level),
      ['debug', 'debug'],
      'later failures within minutes are not warnings',
    );
    assert.deepEqual(
      log.calls.map((c) => (c.obj as { ping: string }).ping),
      ['start', 'ok', 'fail'],
    );
    assert.deepEqual(
      log.calls.map((c) => (c.obj as { failures: number }).failures),
      [1, 2, 3],
    );
    assertRedacted(log, secret, base);
  } finally {
    await hb.close();
  }
});

test('an endpoint that never answers times out; one that answers 404 or garbage fails; none leaks the secret', async () => {
  const secret = token();
  // Never answers.
  const silent = await startPingServer(() => {});
  // Answers something that is not HTTP, echoing the request line (and so the secret) back.
  const garbage = net.createServer((socket) => socket.once('data', (data) => socket.end(`NOT HTTP ${data.toString()}\r\n\r\n`)));
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  const notFound = await startPingServer((_req, res) => ((res.statusCode = 404), res.end(`no check /ping/${secret}`)));
  const garbageBase = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
  try {
    for (const [base, expected] of [
      [silent.base, /^no answer within 200ms$/],
      [notFound.base, /^HTTP 404$/],
      [garbageBase, /./],
    ] as const) {
      const log = collectLog();
      const hb = createHeartbeat(`${base}/ping/${secret}`, log, { timeoutMs: 200 });
      hb.fail(`failing ${secret}`);
      await waitFor(() => log.warns().length === 1, { message: () => log.text() });
      assert.match(String((log.warns()[0]!.obj as { error: string }).error), expected, log.text());
      await hb.close();
      assertRedacted(log, secret, base);
    }
  } finally {
    await silent.close();
    await notFound.close();
    await new Promise<void>((resolve) => garbage.close(() => resolve()));
  }
});

test('close() lets a quick ping finish, cuts a hung one short, releases the socket, and is safe twice', async () => {
  let delayed: (() => void) | undefined;
  const slow = await startPingServer((_req, res) => (delayed = () => res.end('OK')));
  const hung = await startPingServer(() => {});
  try {
    // A fail owed at shutdown still goes out.
    const log = collectLog();
    const quick = createHeartbeat(`${slow.base}/${token()}`, log);
    const asked = performance.now();
    quick.ok();
    await waitFor(() => delayed);
    const quietMs = Math.max(500, 10 * (performance.now() - asked));
    quick.fail('unhealthy');
    const closing = quick.close();
    delayed!();
    delayed = undefined;
    await waitFor(() => delayed);
    delayed!();
    await closing;
    assert.deepEqual(
      slow.pings.map((p) => p.method),
      ['GET', 'POST'],
    );
    assert.equal(log.warns().length, 0, log.text());
    quick.start();
    quick.ok();
    await holdsFor(() => slow.arrived === 2, quietMs, { message: () => `${slow.arrived - 2} request(s) sent after close()` });
    await quick.close();
    await waitFor(() => slow.open === 0, { message: 'the socket outlived close()' });

    // A hung endpoint: close() gives up after closeTimeoutMs, not the 10 s ping timeout.
    const hb = createHeartbeat(`${hung.base}/${token()}`, collectLog(), { closeTimeoutMs: 300 });
    hb.start();
    await waitFor(() => hung.arrived === 1);
    const from = performance.now();
    await Promise.all([hb.close(), hb.close()]);
    const took = performance.now() - from;
    // Not the 10 s ping timeout: half of it leaves room for any load.
    assert.ok(took >= 300 * 0.98 && took < 5000, `close() took ${Math.round(took)} ms`);
    await waitFor(() => hung.open === 0, { message: 'the hung socket outlived close()' });
  } finally {
    await slow.close();
    await hung.close();
  }
});
