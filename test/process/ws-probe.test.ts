// The WebSocket probe against a real server on 127.0.0.1: what it passes, what it fails and with which detail,
// and that no run leaves a connection open, whatever way it ended.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { wsProbe, type WsProbeOptions } from '../../src/probes/ws.js';
import type { ProbeOutcome } from '../../src/probes/probe.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/ws-server.mjs', import.meta.url));

let server: ChildProcess;
let port: number;
let output = '';

before(async () => {
  port = await freePort();
  server = spawn(process.execPath, [FIXTURE, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s));
  const lines = createInterface({ input: server.stdout! });
  lines.on('line', (line) => (output += `${line}\n`));
  await waitFor(() => /^ws-server listening port=\d+ pid=\d+$/m.test(output), {
    timeout: 5000,
    message: () => `fixture did not start:\n${output}`,
  });
});

after(async () => {
  if (server.exitCode === null && server.signalCode === null) {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, output);
  }
});

/** GET on a connection of its own (agent: false sends Connection: close), so the tests add no keep-alive sockets. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Waits until the server's only open connection is the one asking: every probe socket is gone. */
async function assertNoOpenConnections(what: string): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      last = (await get('/control/connections')).body;
      return (JSON.parse(last) as { open: number }).open === 1;
    },
    { timeout: 2000, message: () => `${what}: connections still open: ${last}` },
  );
}

const url = (path = '/ws') => `ws://127.0.0.1:${port}${path}`;

async function probeOnce(options: WsProbeOptions, ms = 2000): Promise<ProbeOutcome & { elapsed: number }> {
  const probe = wsProbe(options);
  const started = Date.now();
  try {
    const outcome = await probe.run(AbortSignal.timeout(ms));
    return { ...outcome, elapsed: Date.now() - started };
  } finally {
    await probe.close();
  }
}

async function inMode(mode: 'ws-dead' | 'ws-refuse' | 'ws-bad-accept', body: () => Promise<void>): Promise<void> {
  assert.equal((await get(`/control/${mode}`)).status, 200);
  try {
    await body();
  } finally {
    await get('/control/ws-alive');
  }
}

test('description: the whole URL without userinfo or fragment; URLs that are not WebSocket URLs throw', () => {
  assert.equal(wsProbe({ url: 'ws://user:secret@127.0.0.1:9000/game/ws?room=a#x' }).description, 'WS ws://127.0.0.1:9000/game/ws?room=a');
  assert.equal(wsProbe({ url: 'wss://example.com/ws' }).description, 'WS wss://example.com/ws');
  assert.throws(() => wsProbe({ url: 'ftp://user:secret@127.0.0.1/ws' }), {
    message: 'a WebSocket probe needs a ws:// or wss:// URL, not ftp://127.0.0.1/ws',
    code: 'SDWRAP_INTERNAL',
  });
  assert.throws(() => wsProbe({ url: '127.0.0.1:8080/ws' }), TypeError);
});

test('succeeds once the connection opens when nothing is expected', async () => {
  const { ok, detail } = await probeOnce({ url: url() });
  assert.deepEqual({ ok, detail }, { ok: true, detail: 'connected' });
});

test('send "ping", expect /^pong$/: succeeds on the answer (a #fragment in the URL is dropped, not fatal)', async () => {
  const { ok, detail } = await probeOnce({ url: `${url()}#lobby`, send: 'ping', expect: /^pong$/ });
  assert.deepEqual({ ok, detail }, { ok: true, detail: 'message matched /^pong$/' });
});

test('expect matches JSON text, binary messages decoded as UTF-8, and stateful /g expressions every time', async () => {
  await get('/control/players?n=7');
  const status = await probeOnce({ url: url(), send: 'status', expect: /"online":7\b/ });
  assert.deepEqual([status.ok, status.detail], [true, 'message matched /"online":7\\b/']);
  const binary = await probeOnce({ url: url(), send: 'binary:pong ü', expect: /^pong ü$/ });
  assert.deepEqual([binary.ok, binary.detail], [true, 'message matched /^pong ü$/']);
  const long = await probeOnce({ url: url(), send: 'y'.repeat(70_000), expect: /^echo:y{70000}$/ });
  assert.equal(long.ok, true, `64-bit frame lengths both ways: ${long.detail}`);
  const global = /pong/g;
  for (let i = 0; i < 3; i++) assert.equal((await probeOnce({ url: url(), send: 'ping', expect: global })).ok, true, `run ${i}`);
});

test('an expectation never met fails when the signal aborts, naming the last message, and settles promptly', async () => {
  const result = await probeOnce({ url: url(), send: 'hello', expect: /^pong$/ }, 300);
  assert.deepEqual([result.ok, result.detail], [false, 'no message matching /^pong$/ (last: "echo:hello")']);
  // Promptly: within the abort (300 ms) and the 1 s close grace it must not wait for after an abort.
  assert.ok(result.elapsed < 300 + 1000, `settled ${result.elapsed} ms after start`);
  const long = await probeOnce({ url: url(), send: 'x'.repeat(500), expect: /^pong$/ }, 1000);
  assert.equal(long.detail, `no message matching /^pong$/ (last: "echo:${'x'.repeat(94)}…")`, 'the last message is cut at 100 characters');
  const silent = await probeOnce({ url: url(), expect: /^pong$/ }, 300);
  assert.equal(silent.detail, 'no message matching /^pong$/ (no message received)');
});

test('a server that closes before the expected message: its close code and reason', async () => {
  const result = await probeOnce({ url: url(), send: 'close:1011:overloaded', expect: /^pong$/ });
  assert.deepEqual([result.ok, result.detail], [false, 'closed by server (code 1011: "overloaded") before a message matching /^pong$/']);
});

test('messages over 1 MiB fail the connection instead of being buffered', async () => {
  assert.equal((await probeOnce({ url: url(), send: 'big:1000000', expect: /^x+$/ })).ok, true);
  const result = await probeOnce({ url: url(), send: 'big:2000000', expect: /^x+$/ });
  assert.deepEqual(
    [result.ok, result.detail],
    [false, 'connection ended without a close frame (code 1006) before a message matching /^x+$/'],
  );
});

test('ws-dead: /healthz still answers 200, the handshake still completes, only send+expect sees the dead loop', async () => {
  await inMode('ws-dead', async () => {
    assert.equal((await get('/healthz')).status, 200);
    assert.equal((await probeOnce({ url: url() })).ok, true, 'a handshake-only probe is fooled too');
    const result = await probeOnce({ url: url(), send: 'ping', expect: /^pong$/ }, 300);
    assert.deepEqual([result.ok, result.detail], [false, 'no message matching /^pong$/ (no message received)']);
    // The dead server never answers the close frame: the socket is destroyed after the short grace after an
    // abort, not the 1 s one.
    assert.ok(result.elapsed < 300 + 1000, `settled ${result.elapsed} ms after start`);
  });
});

test('a refused upgrade fails with its HTTP status', async () => {
  await inMode('ws-refuse', async () => {
    const refused = await probeOnce({ url: url() });
    assert.deepEqual([refused.ok, refused.detail], [false, 'handshake failed: HTTP 503']);
  });
  const missing = await probeOnce({ url: url('/nope') });
  assert.deepEqual([missing.ok, missing.detail], [false, 'handshake failed: HTTP 404']);
});

test('a 101 answer with a wrong Sec-WebSocket-Accept fails', async () => {
  await inMode('ws-bad-accept', async () => {
    const result = await probeOnce({ url: url(), send: 'ping', expect: /^pong$/ });
    assert.deepEqual([result.ok, result.detail], [false, 'handshake failed: HTTP 101 with invalid upgrade headers']);
  });
});

test('nothing listening: connect ECONNREFUSED', async () => {
  const closedPort = await freePort();
  const result = await probeOnce({ url: `ws://127.0.0.1:${closedPort}/ws` });
  assert.deepEqual([result.ok, result.detail], [false, `connect ECONNREFUSED 127.0.0.1:${closedPort}`]);
});

test('a port undici will not connect to (a fetch "bad port") is named as such', async () => {
  const result = await probeOnce({ url: 'ws://127.0.0.1:6667/ws' });
  assert.deepEqual([result.ok, result.detail], [false, 'not attempted: undici blocks port 6667 (a "bad port" in the fetch standard)']);
});

test('a server that accepts but never answers the upgrade: no handshake answer in time, socket released', async () => {
  const silent = net.createServer();
  const sockets = new Set<net.Socket>();
  silent.on('connection', (socket) => {
    sockets.add(socket);
    socket.resume(); // an unread socket never sees the client hang up
    socket.on('close', () => sockets.delete(socket));
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  try {
    const { port: silentPort } = silent.address() as net.AddressInfo;
    const result = await probeOnce({ url: `ws://127.0.0.1:${silentPort}/ws` }, 300);
    assert.deepEqual([result.ok, result.detail], [false, 'no handshake answer in time']);
    await waitFor(() => sockets.size === 0, { timeout: 2000, message: 'the probe left its socket open' });
  } finally {
    silent.close();
  }
});

test('an already aborted signal fails at once without connecting', async () => {
  const result = await wsProbe({ url: url() }).run(AbortSignal.abort());
  assert.deepEqual(result, { ok: false, detail: 'timed out connecting' });
});

test('20 probes of each kind leave no connection open', async () => {
  await assertNoOpenConnections('before');
  const kinds: Array<[string, WsProbeOptions, number, (() => Promise<void>) | undefined]> = [
    ['open', { url: url() }, 2000, undefined],
    ['ping/pong', { url: url(), send: 'ping', expect: /^pong$/ }, 2000, undefined],
    ['never matching', { url: url(), send: 'hello', expect: /^pong$/ }, 200, undefined],
    ['closed by server', { url: url(), send: 'close:1011', expect: /^pong$/ }, 2000, undefined],
    ['not found', { url: url('/nope') }, 2000, undefined],
    ['ws-dead', { url: url(), send: 'ping', expect: /^pong$/ }, 200, async () => void (await get('/control/ws-dead'))],
    ['ws-refuse', { url: url() }, 2000, async () => void (await get('/control/ws-refuse'))],
    ['ws-bad-accept', { url: url() }, 2000, async () => void (await get('/control/ws-bad-accept'))],
  ];
  for (const [kind, options, ms, setup] of kinds) {
    await setup?.();
    try {
      const results = await Promise.all(Array.from({ length: 20 }, () => probeOnce(options, ms)));
      const expectedOk = kind === 'open' || kind === 'ping/pong';
      for (const r of results) assert.equal(r.ok, expectedOk, `${kind}: ${r.detail}`);
    } finally {
      await get('/control/ws-alive');
    }
    await assertNoOpenConnections(kind);
  }
});

test('close() is safe twice, and runs still work after it', async () => {
  const probe = wsProbe({ url: url(), send: 'ping', expect: /^pong$/ });
  assert.equal((await probe.run(AbortSignal.timeout(2000))).ok, true);
  await probe.close();
  await probe.close();
  assert.equal((await probe.run(AbortSignal.timeout(2000))).ok, true);
  await probe.close();
});
