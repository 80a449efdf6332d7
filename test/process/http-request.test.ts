// HTTP probe request options through the real CLI: --http-method and --http-request-header (also from a config
// file) reach the server, and a credential in a header never reaches logs, STATUS= or errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 's3cret-token-4f1d';
const dir = mkdtempSync(join(tmpdir(), 'sdwrap-http-request-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** A server that answers `status(req)` and remembers what each request carried. */
async function server(status: (req: http.IncomingMessage) => number) {
  const seen: Array<{ method: string; host: string | undefined; authorization: string | undefined; agent: string | undefined }> = [];
  const srv = http.createServer((req, res) => {
    seen.push({ method: req.method!, host: req.headers.host, authorization: req.headers.authorization, agent: req.headers['user-agent'] });
    res.writeHead(status(req), { 'content-type': 'text/plain', connection: 'close' });
    res.end(req.method === 'HEAD' ? undefined : 'body');
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  return { seen, url: `http://127.0.0.1:${port}/healthz`, close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}

test('--http-method HEAD and --http-request-header reach the server; Authorization decides readiness here', async () => {
  const s = await server((req) => (req.headers.authorization === `Bearer ${SECRET}` && req.headers.host === 'app.example.com' ? 200 : 401));
  const listener = await NotifyListener.start();
  try {
    const run = runSdwrap(
      [
        '--http',
        s.url,
        '--http-method',
        'head',
        '--http-request-header',
        'Host: app.example.com',
        '--http-request-header',
        `Authorization: Bearer ${SECRET}`,
        '--interval',
        '100ms',
        '--',
        'sleep',
        '30',
      ],
      { notifySocket: listener.address },
    );
    await listener.waitForField('READY', '1', 10_000);
    const first = s.seen[0]!;
    assert.deepEqual(first, { method: 'HEAD', host: 'app.example.com', authorization: `Bearer ${SECRET}`, agent: 'sdwrap-probe' });
    assert.match(listener.all('STATUS').at(-1)!.fields.STATUS!, /^healthy: HEAD http:\/\/127\.0\.0\.1:\d+\/healthz passed/);
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
  } finally {
    await listener.close();
    await s.close();
  }
});

test('a probe failing with a credential header: the secret is in no log line, STATUS= or error', async () => {
  const s = await server(() => 401);
  const listener = await NotifyListener.start();
  try {
    const run = runSdwrap(
      [
        '--http',
        s.url,
        '--http-request-header',
        `Authorization: Bearer ${SECRET}`,
        '--http-request-header',
        `X-Api-Key: ${SECRET}`,
        '--interval',
        '100ms',
        '--failure-threshold',
        '2',
        '--log-level',
        'trace',
        '--',
        'sleep',
        '30',
      ],
      { notifySocket: listener.address },
    );
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    await waitFor(() => s.seen.length >= 2);
    assert.equal(s.seen[0]!.authorization, `Bearer ${SECRET}`);
    assert.ok(
      run.logs.some((l) => l.msg === 'probe failed'),
      run.dump(),
    );
    assert.ok(!run.stderr.some((l) => l.includes(SECRET)), run.dump());
    assert.ok(!listener.messages.some((m) => m.raw.includes(SECRET)), listener.dump());
  } finally {
    await listener.close();
    await s.close();
  }
  // A malformed header is refused without echoing what may be a credential.
  const bad = runSdwrap(['--http', 'http://127.0.0.1:1/', '--http-request-header', `Bearer ${SECRET}`, '--', 'true']);
  assert.deepEqual(await bad.waitForExit(10_000), { code: 2, signal: null });
  assert.equal(bad.stderr.length, 1);
  assert.match(bad.stderr[0]!, /^sdwrap: --http-request-header expects 'Name: value'/);
  assert.ok(!bad.stderr[0]!.includes(SECRET));
});

test('method and request headers from a config file (headers as an object); HEAD refuses body checks', async () => {
  const s = await server((req) => (req.headers.host === 'cfg.example' ? 200 : 400));
  const listener = await NotifyListener.start();
  const path = join(dir, 'probe.json');
  writeFileSync(
    path,
    JSON.stringify({ probes: [{ http: { url: s.url, method: 'HEAD', requestHeaders: { Host: 'cfg.example' } } }], interval: '100ms' }),
  );
  try {
    const run = runSdwrap(['--config', path, '--', 'sleep', '30'], { notifySocket: listener.address });
    await listener.waitForField('READY', '1', 10_000);
    assert.equal(s.seen[0]!.method, 'HEAD');
    run.kill('SIGTERM');
    await run.waitForExit(10_000);
  } finally {
    await listener.close();
    await s.close();
  }
  writeFileSync(path, JSON.stringify({ probes: [{ http: { url: 'http://127.0.0.1:1/', method: 'HEAD', body: 'ok' } }] }));
  const bad = runSdwrap(['--config', path, '--', 'true']);
  assert.deepEqual(await bad.waitForExit(10_000), { code: 2, signal: null });
  assert.match(
    bad.stderr[0]!,
    /^sdwrap: --config .*probe\.json:1:\d+: probes\[0\]\.http\.method HEAD gets no body: drop .*probes\[0\]\.http\.body/,
  );
});
