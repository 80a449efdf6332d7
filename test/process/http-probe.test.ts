// The HTTP probe against real servers on 127.0.0.1: assertions, redirects, the body cap, aborts that release
// the socket, and a fresh connection for every probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBodyPattern, parseHeaderAssertion, parseJsonAssertion, parseStatusList } from '../../src/http-assertions.js';
import { httpProbe, type HttpProbeSpec } from '../../src/probes/http.js';
import type { Probe } from '../../src/probes/probe.js';
import { waitFor } from '../helpers/wait.js';

interface TestServer {
  url(path: string): string;
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections open now. */
  readonly open: number;
  readonly requests: http.IncomingMessage[];
  server: http.Server;
  close(): Promise<void>;
}

async function startServer(handler: http.RequestListener, configure?: (server: http.Server) => void): Promise<TestServer> {
  const server = http.createServer(handler);
  configure?.(server);
  const sockets = new Set<Socket>();
  const requests: http.IncomingMessage[] = [];
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (req: http.IncomingMessage) => requests.push(req));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    server,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function spec(url: string, more: Partial<HttpProbeSpec> = {}): HttpProbeSpec {
  return {
    url,
    method: 'GET',
    requestHeaders: [],
    statuses: [{ min: 200, max: 399 }],
    headers: [],
    json: [],
    followRedirects: false,
    ...more,
  };
}

function runOnce(probe: Probe, timeoutMs = 5000) {
  return probe.run(AbortSignal.timeout(timeoutMs));
}

/** One probe against a server of the caller's, closed afterwards (the server names what the probe is for). */
async function withProbe(_server: TestServer, s: HttpProbeSpec, fn: (probe: Probe) => Promise<void>): Promise<void> {
  const probe = httpProbe(s);
  try {
    await fn(probe);
  } finally {
    await probe.close();
  }
}

test('status list: the default accepts 2xx and 3xx; a list accepts only what it names', async () => {
  const server = await startServer((req, res) => {
    res.statusCode = Number(req.url!.slice(1));
    res.end();
  });
  try {
    await withProbe(server, spec(server.url('/200')), async (probe) => {
      assert.equal(probe.description, `GET ${server.url('/200')}`);
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
    await withProbe(server, spec(server.url('/503')), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'HTTP 503 (expected 200-399)' });
    });
    await withProbe(server, spec(server.url('/204'), { statuses: parseStatusList('200,204') }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 204' });
    });
    await withProbe(server, spec(server.url('/201'), { statuses: parseStatusList('200,204') }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'HTTP 201 (expected 200,204)' });
    });
  } finally {
    await server.close();
  }
});

test('header assertion: name case-insensitive, value exact', async () => {
  let ready = 'no';
  const server = await startServer((_req, res) => {
    res.setHeader('X-Ready', ready);
    res.end('fine');
  });
  try {
    await withProbe(server, spec(server.url('/'), { headers: [parseHeaderAssertion('x-READY: yes')] }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'header x-ready: "no" (expected "yes")' });
      ready = 'yes';
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
  } finally {
    await server.close();
  }
});

test('body pattern', async () => {
  let body = '{"status":"starting"}';
  const server = await startServer((_req, res) => res.end(body));
  try {
    await withProbe(server, spec(server.url('/'), { body: parseBodyPattern('"status": *"ok"') }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'body does not match /"status": *"ok"/' });
      body = '{"status": "ok"}';
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
  } finally {
    await server.close();
  }
});

test('JSON paths with each operator: healthy once at least 100 players are online', async () => {
  let online = 12;
  const server = await startServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ players: { online, max: 500 }, checks: [{ name: 'db', status: 'pass' }], version: '1.4.2' }));
  });
  try {
    const json = ['players.online>=100'].map((a) => parseJsonAssertion(a));
    await withProbe(server, spec(server.url('/status'), { json }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'players.online is 12 (expected >= 100)' });
      online = 100;
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
    const cases: Array<[string, boolean, string]> = [
      ['players.online>99', true, 'HTTP 200'],
      ['players.online>100', false, 'players.online is 100 (expected > 100)'],
      ['players.online<=100', true, 'HTTP 200'],
      ['players.online<100', false, 'players.online is 100 (expected < 100)'],
      ['players.max==500', true, 'HTTP 200'],
      ['checks.0.status==pass', true, 'HTTP 200'],
      ['checks.0.status!=pass', false, 'checks.0.status is "pass" (expected != "pass")'],
      ['version=="1.4.2"', true, 'HTTP 200'],
      ['players.offline>=1', false, 'players.offline is missing'],
      ['version>=1', false, 'version is "1.4.2", not a number (expected >= 1)'],
    ];
    for (const [assertion, ok, detail] of cases) {
      await withProbe(server, spec(server.url('/status'), { json: [parseJsonAssertion(assertion)] }), async (probe) => {
        assert.deepEqual(await runOnce(probe), { ok, detail }, assertion);
      });
    }
  } finally {
    await server.close();
  }
});

test('a body that is not JSON fails a JSON assertion', async () => {
  const server = await startServer((_req, res) => res.end('<html>ok</html>'));
  try {
    await withProbe(server, spec(server.url('/'), { json: [parseJsonAssertion('status==ok')] }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'body is not JSON' });
    });
  } finally {
    await server.close();
  }
});

test('redirects: an answer by default, followed within the same host when asked', async () => {
  let other = '';
  const server = await startServer((req, res) => {
    const to: Record<string, string> = { '/old': '/new', '/loop': '/loop', '/away': `${other}/new`, '/bad': 'http://[nope' };
    if (req.url! in to) {
      res.writeHead(302, { location: to[req.url!] });
      res.end('moved');
    } else {
      res.end('here');
    }
  });
  // "localhost" is another host name than "127.0.0.1", even when it is the same machine.
  other = `http://localhost:${server.port}`;
  try {
    await withProbe(server, spec(server.url('/old')), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 302' });
    });
    await withProbe(server, spec(server.url('/old'), { statuses: parseStatusList('200') }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'HTTP 302 (expected 200)' });
    });
    const before = server.requests.length;
    await withProbe(server, spec(server.url('/old'), { statuses: parseStatusList('200'), followRedirects: true }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
    assert.deepEqual(
      server.requests.slice(before).map((r) => r.url),
      ['/old', '/new'],
    );
    await withProbe(server, spec(server.url('/loop'), { followRedirects: true }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'HTTP 302: stopped after 5 redirects' });
    });
    await withProbe(server, spec(server.url('/away'), { statuses: parseStatusList('200'), followRedirects: true }), async (probe) => {
      assert.deepEqual(await runOnce(probe), {
        ok: false,
        detail: `HTTP 302 (expected 200); redirect to ${other}/new not followed (another host)`,
      });
    });
    await withProbe(server, spec(server.url('/away'), { followRedirects: true }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: `HTTP 302; redirect to ${other}/new not followed (another host)` });
    });
    await withProbe(server, spec(server.url('/bad'), { followRedirects: true }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 302' });
    });
    assert.equal(server.requests.filter((r) => r.headers.host?.startsWith('localhost')).length, 0, 'never went to the other host');
    await waitFor(() => server.open === 0, { message: () => `${server.open} connections still open` });
  } finally {
    await server.close();
  }
});

test('userinfo is sent as Basic auth and never shown', async () => {
  const server = await startServer((req, res) => {
    res.statusCode = req.headers.authorization === `Basic ${Buffer.from('probe:s3cr@t').toString('base64')}` ? 200 : 401;
    res.end();
  });
  try {
    const url = `http://probe:s3cr%40t@127.0.0.1:${server.port}/private`;
    await withProbe(server, spec(url), async (probe) => {
      assert.equal(probe.description, `GET http://127.0.0.1:${server.port}/private`);
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
  } finally {
    await server.close();
  }
});

test('HEAD and request headers as given; credentials and secret headers only to their own origin across a redirect', async () => {
  const other = await startServer((_req, res) => res.end('elsewhere'));
  const server = await startServer((req, res) => {
    if (req.url === '/start') res.writeHead(302, { location: other.url('/next') });
    res.end('body a HEAD never gets');
  });
  try {
    const url = `http://probe:pw@127.0.0.1:${server.port}/start`;
    const requestHeaders = [
      { name: 'X-Api-Key', value: 'k3y' },
      { name: 'X-Trace', value: 't1' },
    ];
    await withProbe(server, spec(url, { method: 'HEAD', requestHeaders, followRedirects: true }), async (probe) => {
      assert.equal(probe.description, `HEAD http://127.0.0.1:${server.port}/start`);
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
    const [first] = server.requests;
    const [second] = other.requests;
    assert.equal(first!.method, 'HEAD');
    assert.equal(first!.headers.authorization, `Basic ${Buffer.from('probe:pw').toString('base64')}`);
    assert.equal(first!.headers['x-api-key'], 'k3y');
    assert.equal(first!.headers['x-trace'], 't1');
    assert.equal(second!.method, 'HEAD');
    assert.equal(second!.url, '/next');
    assert.equal(second!.headers.authorization, undefined, 'Basic auth went to another origin');
    assert.equal(second!.headers['x-api-key'], undefined, 'a secret header went to another origin');
    assert.equal(second!.headers['x-trace'], 't1');
  } finally {
    await server.close();
    await other.close();
  }
});

test('a repeated response header passes when any one of its values matches', async () => {
  const server = await startServer((_req, res) => {
    res.setHeader('X-Ready', ['no', 'yes']);
    res.end();
  });
  try {
    await withProbe(server, spec(server.url('/'), { headers: [parseHeaderAssertion('X-Ready: yes')] }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
    await withProbe(server, spec(server.url('/'), { headers: [parseHeaderAssertion('X-Ready: maybe')] }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: false, detail: 'header x-ready: "no", "yes" (expected "maybe")' });
    });
  } finally {
    await server.close();
  }
});

test('https: the certificate is verified (a self-signed one fails the probe)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sdwrap-https-'));
  try {
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore', timeout: 30_000 },
    );
    if (made.status !== 0) return t.skip('openssl cannot make a certificate here');
    let served = 0;
    const server = https.createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (_req, res) => {
        served++;
        res.end('ok');
      },
    );
    let handshakes = 0;
    server.on('secureConnection', () => handshakes++);
    server.on('tlsClientError', () => handshakes++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const probe = httpProbe(spec(`https://127.0.0.1:${(server.address() as AddressInfo).port}/`));
      const outcome = await runOnce(probe);
      await probe.close();
      assert.equal(outcome.ok, false);
      assert.match(outcome.detail, /self[- ]signed certificate/);
      assert.equal(served, 0);
      await waitFor(() => handshakes === 1, { message: 'the TLS handshake never reached the server' });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bodies past 1 MiB fail a body assertion and close the socket; unread bodies are drained or dropped', async () => {
  const big = Buffer.alloc(2 * 1024 * 1024, 'a');
  const server = await startServer((req, res) => {
    if (req.url === '/chunked') {
      // No content-length: the cap has to be found while reading.
      res.write(big.subarray(0, 1024 * 1024));
      res.end(big.subarray(1024 * 1024));
    } else if (req.url === '/exact') {
      res.end(Buffer.alloc(1024 * 1024, 'a'));
    } else {
      res.end(big);
    }
  });
  try {
    for (const path of ['/sized', '/chunked']) {
      await withProbe(server, spec(server.url(path), { body: /a/ }), async (probe) => {
        assert.deepEqual(await runOnce(probe), { ok: false, detail: 'body larger than 1 MiB' }, path);
        await waitFor(() => server.open === 0, { message: () => `${path}: the socket of an oversized body stays open` });
      });
    }
    await withProbe(server, spec(server.url('/exact'), { body: /^a+$/ }), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
    });
    await withProbe(server, spec(server.url('/sized')), async (probe) => {
      assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
      await waitFor(() => server.open === 0, { message: 'an unread large body keeps its socket' });
    });
    // One connection per probe: none reopened behind a body cut short.
    assert.equal(server.connections, 4);
  } finally {
    await server.close();
  }
});

/** Whether the client has the response headers of a request to `path` (node:http's diagnostics channel). */
function headersReceived(path: string): { seen: () => boolean; stop: () => void } {
  let seen = false;
  // Published when the response's head has been parsed, before any of its body is read.
  const channel = 'http.client.response.finish';
  const onHeaders = (message: unknown) => {
    if ((message as { request: { path: string } }).request.path === path) seen = true;
  };
  subscribe(channel, onHeaders);
  return { seen: () => seen, stop: () => unsubscribe(channel, onHeaders) };
}

test('an abort mid-response settles the probe promptly and closes the socket', async () => {
  const server = await startServer((req, res) => {
    if (req.url === '/silent') return; // never answers
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"status":'); // ...and stalls
  });
  try {
    for (const [path, more] of [
      ['/stall', {}],
      ['/stall', { json: [parseJsonAssertion('status==ok')] }],
      ['/silent', {}],
    ] as const) {
      await withProbe(server, spec(server.url(path), more as Partial<HttpProbeSpec>), async (probe) => {
        const watch = headersReceived(path);
        const controller = new AbortController();
        const connectionsBefore = server.connections;
        try {
          const outcome = probe.run(controller.signal);
          if (path === '/silent') await waitFor(() => server.requests.some((r) => r.url === '/silent'));
          else await waitFor(watch.seen, { message: 'the probe never got the headers' });
          const abortedAt = performance.now();
          controller.abort();
          assert.deepEqual(await outcome, { ok: false, detail: 'no answer in time' });
          const took = performance.now() - abortedAt;
          // The server never finishes: without the abort it would never settle. Any load fits in 2 s.
          assert.ok(took < 2000, `settled ${Math.round(took)} ms after the abort`);
          await waitFor(() => server.open === 0, {
            timeout: 2000,
            message: `${path} ${JSON.stringify(more)}: the server still sees the socket open`,
          });
          // undici 7 would connect once more for the aborted request (nodejs/undici#5845); the probe prevents it.
          assert.equal(server.connections, connectionsBefore + 1);
        } finally {
          watch.stop();
        }
      });
    }
    // Aborted before it starts: no connection at all.
    await withProbe(server, spec(server.url('/stall')), async (probe) => {
      const before = server.connections;
      assert.deepEqual(await probe.run(AbortSignal.abort()), { ok: false, detail: 'no answer in time' });
      assert.equal(server.connections, before);
    });
  } finally {
    await server.close();
  }
});

test('no leaked sockets after 50 probes: at most one kept alive, none after close()', async () => {
  // Every kind of answer in turn: healthy, unhealthy, not JSON, too big to read, too big to drain.
  const answers = [
    (res: http.ServerResponse) => res.end('{"ok":true}'),
    (res: http.ServerResponse) => ((res.statusCode = 503), res.end('{"ok":false}')),
    (res: http.ServerResponse) => res.end('not json'),
    (res: http.ServerResponse) => res.end(Buffer.alloc(2 * 1024 * 1024)),
    (res: http.ServerResponse) => res.end('{"ok":false}'),
  ];
  let served = 0;
  const server = await startServer((_req, res) => answers[served++ % answers.length]!(res));
  try {
    for (const more of [{ json: [parseJsonAssertion('ok==true')] }, {}]) {
      const probe = httpProbe(spec(server.url('/'), more));
      const outcomes = new Set<string>();
      for (let n = 0; n < 50; n++) outcomes.add((await runOnce(probe)).detail);
      assert.ok(outcomes.size >= 2, `varied answers: ${[...outcomes].join(' | ')}`);
      await waitFor(() => server.open <= 1, { message: () => `${server.open} connections open after 50 probes` });
      await probe.close();
      await probe.close();
      await waitFor(() => server.open === 0, { message: () => `${server.open} connections still open after close()` });
    }
  } finally {
    await server.close();
  }
});

test('a fresh connection per probe, asking the server to close it, and none left open', async () => {
  // The server would keep connections alive for a minute: any reuse would show.
  const server = await startServer(
    (_req, res) => res.end('ok'),
    (s) => (s.keepAliveTimeout = 60_000),
  );
  try {
    await withProbe(server, spec(server.url('/')), async (probe) => {
      for (let n = 1; n <= 30; n++) {
        assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' });
        assert.equal(server.connections, n, `probe ${n}`);
        await waitFor(() => server.open === 0, { timeout: 2000, message: () => `probe ${n}: ${server.open} connections still open` });
      }
    });
    assert.equal(server.requests.length, 30);
    assert.ok(
      server.requests.every((r) => r.headers.connection === 'close'),
      'every request says Connection: close',
    );
  } finally {
    await server.close();
  }
});

test('a server that drops a kept-alive connection at the worst moment fails no probe', async () => {
  // Announces keep-alive, then closes the connection without a word the moment a second request arrives on it:
  // what a client that reuses an idle socket meets when the server's idle timer fires as it writes.
  let connections = 0;
  let reused = 0;
  const server = net.createServer((socket) => {
    connections++;
    let served = 0;
    socket.on('data', () => {
      if (served++ > 0) {
        reused++;
        return socket.destroy();
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\nok');
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const probe = httpProbe(spec(`http://127.0.0.1:${port}/`));
    try {
      for (let n = 0; n < 50; n++) assert.deepEqual(await runOnce(probe), { ok: true, detail: 'HTTP 200' }, `probe ${n + 1}`);
    } finally {
      await probe.close();
    }
    assert.equal(connections, 50);
    assert.equal(reused, 0);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
