// `sdwrap probe` through the real CLI: each verdict with its detail, the order given, --json's shape, the exit
// codes, secrets kept out of the output, --config, --watch's threshold states, and nothing run or left behind.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runSdwrap, stopAll, type SdwrapRun } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 's3cret-token-value';
const PASSWORD = 'pa55word-in-url';

let server: Server;
let base: string;
let status = 200;
let dir: string;
const seen: IncomingMessage[] = [];

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-probe-'));
  server = createServer((req, res) => {
    seen.push(req);
    const json = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    switch (req.url) {
      case '/healthz':
        return json(status, { status: status === 200 ? 'ok' : 'failing' });
      case '/degraded':
        return json(200, { status: 'degraded', players: { online: 3 } });
      case '/auth':
        return req.headers.authorization === `Bearer ${SECRET}` ? json(200, { ok: true }) : json(401, { ok: false });
      case '/hang':
        return; // never answers
      default:
        return json(404, {});
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  await stopAll();
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function probe(args: string[], timeoutMs = 20_000): Promise<{ run: SdwrapRun; code: number | null }> {
  const run = runSdwrap(['probe', ...args]);
  const exit = await run.waitForExit(timeoutMs);
  assert.equal(exit.signal, null, run.dump());
  return { run, code: exit.code };
}

const allOutput = (run: SdwrapRun) => [...run.stdout, ...run.stderr].join('\n');

test('each verdict, in the order given: role, kind, target, verdict, latency, and the check that failed; exit 1', async () => {
  const closed = await freePort();
  const { run, code } = await probe([
    '--http',
    `${base}/healthz`,
    '--probe',
    `readiness:http:${base}/degraded`,
    '--probe',
    `liveness:tcp:127.0.0.1:${closed}`,
    '--probe',
    'readiness:exec:echo warming up; exit 3',
    '--probe',
    'liveness:exec:true',
    '--probe',
    `readiness:http:${base}/hang`,
    '--http-json',
    'status==ok',
    '--timeout',
    '300ms',
  ]);
  assert.equal(code, 1, run.dump());
  assert.deepEqual(run.stderr, [], run.dump());
  assert.equal(run.stdout.length, 6, run.dump());
  const rows = run.stdout.map((line) => line.split(/ {2,}/));
  assert.deepEqual(
    rows.map((r) => r.slice(0, 4)),
    [
      ['PASS', 'both', 'http', `GET ${base}/healthz`],
      ['FAIL', 'readiness', 'http', `GET ${base}/degraded`],
      ['FAIL', 'liveness', 'tcp', `TCP 127.0.0.1:${closed}`],
      ['FAIL', 'readiness', 'exec', 'exec "echo warming up; exit 3"'],
      ['PASS', 'liveness', 'exec', 'exec "true"'],
      ['FAIL', 'readiness', 'http', `GET ${base}/hang`],
    ],
  );
  for (const r of rows) assert.match(r[4]!, /^\d+ms$/);
  assert.equal(rows[0]![5], 'HTTP 200');
  assert.equal(rows[1]![5], 'status is "degraded" (expected == "ok")');
  assert.match(rows[2]![5]!, /ECONNREFUSED/);
  assert.equal(rows[3]![5], 'exit 3: warming up');
  assert.equal(rows[4]![5], 'exit 0');
  assert.match(rows[5]![5]!, /^timed out after 300ms/);
  assert.ok(Number(rows[5]![4]!.replace('ms', '')) >= 290, rows[5]!.join(' | '));
});

test('--json: one object per probe, a line each, in order; exit 0 when every probe passed', async () => {
  const { run, code } = await probe(['--json', '--http', `${base}/healthz`, '--probe', 'readiness:exec:true']);
  assert.equal(code, 0, run.dump());
  const records = run.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(records.length, 2, run.dump());
  assert.deepEqual(Object.keys(records[0]!), ['probe', 'role', 'kind', 'target', 'verdict', 'ok', 'latencyMs', 'detail']);
  assert.deepEqual(
    { ...records[0], latencyMs: 0 },
    {
      probe: 1,
      role: 'both',
      kind: 'http',
      target: `GET ${base}/healthz`,
      verdict: 'pass',
      ok: true,
      latencyMs: 0,
      detail: 'HTTP 200',
    },
  );
  assert.equal(typeof records[0]!.latencyMs, 'number');
  assert.deepEqual(
    { ...records[1], latencyMs: 0 },
    {
      probe: 2,
      role: 'readiness',
      kind: 'exec',
      target: 'exec "true"',
      verdict: 'pass',
      ok: true,
      latencyMs: 0,
      detail: 'exit 0',
    },
  );
  const failing = await probe(['--json', '--http', `${base}/degraded`, '--http-json', 'players.online>=100']);
  assert.equal(failing.code, 1);
  const record = JSON.parse(failing.run.stdout[0]!) as Record<string, unknown>;
  assert.equal(record.verdict, 'fail');
  assert.equal(record.ok, false);
  assert.equal(record.detail, 'players.online is 3 (expected >= 100)');
});

test('exit 2 for usage errors: no probe, a bad flag, a bad value, a bad config file', async () => {
  writeFileSync(path.join(dir, 'bad.json'), '{ "probes": [ { "http": "x", "tcp": "y" } ] }');
  const cases: Array<[string[], RegExp]> = [
    [[], /^sdwrap probe: no probe to run/],
    [['--bogus'], /^sdwrap probe: unknown option '--bogus'/],
    [['--http', 'not a url'], /^sdwrap probe: --http expects an http:\/\/ or https:\/\/ URL/],
    [['--interval', 'soon', '--tcp', '127.0.0.1:1'], /^sdwrap probe: --interval expects a time span/],
    [
      ['--config', path.join(dir, 'bad.json')],
      /^sdwrap probe: --config .*bad\.json:1:\d+: probes\[0\]: needs exactly one of http, tcp, exec, ws/,
    ],
  ];
  for (const [args, message] of cases) {
    const { run, code } = await probe(args);
    assert.equal(code, 2, `${args.join(' ')}\n${run.dump()}`);
    assert.deepEqual(run.stdout, []);
    assert.equal(run.stderr.length, 1, run.dump());
    assert.match(run.stderr[0]!, message);
  }
});

test('secrets stay out of the output, as in a run: URL passwords, secret request headers, the heartbeat URL', async () => {
  const withPassword = `http://probe-user:${PASSWORD}@${base.slice('http://'.length)}/auth`;
  for (const format of [[], ['--json']]) {
    const { run, code } = await probe([
      ...format,
      '--http',
      `${base}/auth`,
      '--http-request-header',
      `Authorization: Bearer ${SECRET}`,
      '--http-request-header',
      `X-Api-Key: ${SECRET}`,
      '--probe',
      `readiness:http:${withPassword}`,
      '--heartbeat-url',
      `https://hc.example/${SECRET}`,
    ]);
    // The header reached the server (the probe passed), and appears nowhere in what sdwrap printed.
    assert.equal(code, 0, run.dump());
    const text = allOutput(run);
    assert.doesNotMatch(text, new RegExp(`${SECRET}|${PASSWORD}|probe-user`), text);
    assert.match(text, new RegExp(`GET ${base}/auth`));
  }
  assert.ok(
    seen.some((req) => req.headers['x-api-key'] === SECRET),
    'the secret header was sent',
  );
});

test('--config: probes and settings from the file, flags on the command line win; a command after -- is not run', async () => {
  const marker = path.join(dir, 'ran');
  const config = path.join(dir, 'probe.json');
  writeFileSync(
    config,
    JSON.stringify({
      timeout: '5s',
      probes: [
        { role: 'liveness', http: { url: `${base}/healthz`, json: ['status==ok'] } },
        { role: 'readiness', exec: 'true', failureThreshold: 2 },
      ],
      command: ['sh', '-c', `touch ${marker}`],
    }),
  );
  // Options about the app (a stop timeout, --no-systemd) are accepted and ignored, as in a pasted ExecStart=.
  const { run, code } = await probe(['--config', config, '--stop-timeout', '1s', '--no-systemd', '--', 'sh', '-c', `touch ${marker}`]);
  assert.equal(code, 0, run.dump());
  assert.deepEqual(
    run.stdout.map((l) => l.split(/ {2,}/).slice(0, 3)),
    [
      ['PASS', 'liveness', 'http'],
      ['PASS', 'readiness', 'exec'],
    ],
  );
  assert.equal(existsSync(marker), false, 'sdwrap probe ran the command');
});

test('an exec probe leaves nothing behind, even what it started in the background', async () => {
  const marker = testMarker();
  // The probe passes once the shell exits; what it put in the background dies with its process group.
  const run = runSdwrap(['probe', '--exec', 'sleep 30 >/dev/null 2>&1 & exit 0'], { marker });
  assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  await assertNoLeftovers(marker);
});

test('--watch: the threshold state as it moves (failing 1/2, unhealthy, healthy again); SIGINT ends it, 0 when healthy', async () => {
  status = 200;
  const run = runSdwrap(['probe', '--watch', '--interval', '150ms', '--failure-threshold', '2', '--http', `${base}/healthz`]);
  try {
    await run.waitForStdout(/ PASS {2}healthy +both/);
    status = 503;
    await run.waitForStdout(/ FAIL {2}failing 1\/2 +both +http +GET \S+ +\d+ms {2}HTTP 503 \(expected 200-399\)$/);
    await run.waitForStdout(/ FAIL {2}unhealthy +both/);
    // Unlike a run, it goes on probing, and shows the recovery.
    status = 200;
    const recovered = run.stdout.length;
    await waitFor(() => run.stdout.slice(recovered).some((l) => / PASS {2}healthy +both/.test(l)), { message: () => run.dump() });
    assert.match(run.stdout[0]!, /^\d\d:\d\d:\d\d\.\d{3} {2}PASS/);
    run.kill('SIGINT');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  } finally {
    status = 200;
  }
});

test('--watch --json: state and counts on each record; exit 1 when a probe is not healthy at the end', async () => {
  status = 503;
  const run = runSdwrap(['probe', '--watch', '--json', '--interval', '150ms', '--failure-threshold', '2', '--http', `${base}/healthz`]);
  try {
    await run.waitForStdout(/"state":"unhealthy"/);
    const records = run.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      records.slice(0, 2).map((r) => [r.state, r.failures, r.failureThreshold, r.successes, r.successThreshold, r.verdict]),
      [
        ['failing', 1, 2, 0, 1, 'fail'],
        ['unhealthy', 2, 2, 0, 1, 'fail'],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(String(records[0]!.time))), String(records[0]!.time));
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 1, signal: null }, run.dump());
  } finally {
    status = 200;
  }
});

test('--watch ends when its reader goes away (| head)', async () => {
  const run = runSdwrap(['probe', '--watch', '--interval', '100ms', '--http', `${base}/healthz`]);
  await run.waitForStdout(/PASS/);
  run.proc.stdout!.destroy();
  assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
});

test('a command named probe still runs as an app after --', async () => {
  const binDir = path.join(dir, 'bin');
  rmSync(binDir, { recursive: true, force: true });
  const { mkdirSync, chmodSync } = await import('node:fs');
  mkdirSync(binDir);
  writeFileSync(path.join(binDir, 'probe'), '#!/bin/sh\necho "the app named probe ran"\nexit 7\n');
  chmodSync(path.join(binDir, 'probe'), 0o755);
  const run = runSdwrap(['--no-systemd', '--restart', 'on-failure', '--max-restarts', '0', '--', 'probe'], {
    env: { PATH: `${binDir}:${process.env.PATH}` },
  });
  const exit = await run.waitForExit(10_000);
  assert.equal(exit.code, 7, run.dump());
  assert.ok(run.stdout.includes('the app named probe ran'), run.dump());
});
