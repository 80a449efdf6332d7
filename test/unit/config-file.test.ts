import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config-file.js';
import { buildConfig, parseProbeFlag } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'sdwrap-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: unknown): string {
  const path = join(dir, `c${n++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

test('a config file: probes with roles and their own settings, options, the command', async () => {
  const path = file({
    command: ['./server', '--port', '8080'],
    startPeriod: '2min',
    interval: 5,
    probes: [
      { role: 'readiness', ws: { url: 'ws://127.0.0.1:8080/ws', send: 'status', expect: 'players' } },
      {
        role: 'liveness',
        http: { url: 'http://127.0.0.1:8080/status', status: '200-299', headers: { 'X-Ready': 'yes' }, json: ['players.online>=100'] },
        interval: '2s',
        failureThreshold: 5,
      },
      { tcp: '127.0.0.1:5432' },
    ],
    watchLog: { pattern: 'deadline has elapsed', max: 10, window: '30s' },
    onUnhealthy: 'watchdog',
  });
  const { options, command } = await loadConfigFile(path);
  const config = buildConfig(options, command!, false);
  assert.deepEqual(config.args, ['--port', '8080']);
  assert.equal(config.startPeriodMs, 120_000);
  assert.equal(config.onUnhealthy, 'watchdog');
  assert.deepEqual(
    config.probes.map((p) => [p.role, p.target.kind, p.intervalMs, p.failureThreshold]),
    [
      ['readiness', 'ws', 5000, 3],
      ['liveness', 'http', 2000, 5],
      ['both', 'tcp', 5000, 3],
    ],
  );
  const http = config.probes[1]!.target;
  assert.equal(http.kind === 'http' && http.headers[0]!.name.toLowerCase(), 'x-ready');
  assert.equal(http.kind === 'http' && http.json.length, 1);
  assert.deepEqual(
    { ...config.watchLog, pattern: String(config.watchLog!.pattern) },
    { pattern: '/deadline has elapsed/', max: 10, windowMs: 30_000 },
  );
});

test('config file errors name the file and the field', async () => {
  const cases: Array<[unknown, RegExp]> = [
    ['{ not json', /^--config .*c\d+\.json:1:3: not valid JSON \(invalid symbol\)$/],
    [{ probes: [{ http: 'http://a/', tcp: 'a:1' }] }, /probes\[0\]: needs exactly one of http, tcp, exec, ws/],
    [{ probes: [{ role: 'sometimes', tcp: 'a:1' }] }, /probes\[0\]\.role: /],
    [{ intervall: '5s' }, /:1:2: intervall: unknown key; did you mean 'interval'\?$/],
    [{ probes: [{ http: { url: 'http://a/', stauts: '200' } }] }, /probes\[0\]\.http\.stauts: unknown key; did you mean 'status'\?$/],
    [{ zzzzzz: 1 }, /zzzzzz: unknown key$/],
  ];
  for (const [content, message] of cases) {
    await assert.rejects(
      loadConfigFile(file(content)),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
      JSON.stringify(content),
    );
  }
  await assert.rejects(loadConfigFile(join(dir, 'missing.json')), /--config .*missing\.json: cannot read it \(ENOENT\)/);
  // Values are checked by the same validators as flags, named by their place in the file.
  const { options } = await loadConfigFile(file({ probes: [{ tcp: '127.0.0.1:5432', interval: 'soon' }] }));
  assert.throws(() => buildConfig(options, ['x'], false), /probes\[0\]\.interval expects a time span/);
});

test('config file values are named by file, line:column and field; a flag given instead names itself', async () => {
  const path = file(
    '{\n  "interval": "5s",\n  "watchLog": { "pattern": "x", "max": "lots" },\n  "probes": [\n    { "tcp": "a:1", "timeout": "soon" }\n  ]\n}\n',
  );
  const { options, command } = await loadConfigFile(path);
  assert.equal(command, undefined);
  assert.throws(
    () => buildConfig(options, ['x'], false),
    (e: unknown) => e instanceof UsageError && e.message.startsWith(`--config ${path}:5:21: probes[0].timeout expects a time span`),
  );
  const fixed = { ...options, probes: options.probes!.map((p) => ({ ...p, timeout: '1s' })) };
  assert.throws(
    () => buildConfig(fixed, ['x'], false),
    (e: unknown) => e instanceof UsageError && e.message === `--config ${path}:3:33: watchLog.max expects a whole number, got 'lots'`,
  );
  const top = await loadConfigFile(file('{\n  "stopTimeout": "later"\n}'));
  assert.throws(() => buildConfig(top.options, ['x'], false), /: --config .*:2:3: stopTimeout expects a time span/);
  // The same key given as a flag (fileNames dropped for it, as cli.ts does) is named by the flag.
  assert.throws(() => buildConfig({ ...top.options, fileNames: {} }, ['x'], false), /: --stop-timeout expects a time span/);
});

test('--probe ROLE:KIND:TARGET', () => {
  assert.deepEqual(parseProbeFlag('liveness:http:http://127.0.0.1:8080/healthz'), {
    source: '--probe',
    role: 'liveness',
    kind: 'http',
    target: 'http://127.0.0.1:8080/healthz',
  });
  assert.deepEqual(parseProbeFlag('readiness:exec:pg_isready -h localhost'), {
    source: '--probe',
    role: 'readiness',
    kind: 'exec',
    target: 'pg_isready -h localhost',
  });
  assert.throws(() => parseProbeFlag('http://x'), /--probe expects ROLE:KIND:TARGET/);
  assert.throws(() => parseProbeFlag('liveness:smtp:x'), /--probe kind expects one of http\|tcp\|exec\|ws/);
  assert.throws(() => buildConfig({ probe: ['sometimes:tcp:a:1'] }, ['x'], false), /--probe role expects one of readiness\|liveness\|both/);
  const config = buildConfig({ http: 'http://a/', probe: ['readiness:tcp:a:1'], httpStatus: '200' }, ['x'], false);
  assert.deepEqual(
    config.probes.map((p) => `${p.role} ${p.target.kind}`),
    ['both http', 'readiness tcp'],
  );
});

test('flags that need another flag say so', () => {
  assert.throws(() => buildConfig({ httpStatus: '200' }, ['x'], false), /--http-status.*need an HTTP probe/);
  assert.throws(() => buildConfig({ wsExpect: 'x' }, ['x'], false), /--ws-send and --ws-expect need a WebSocket probe/);
  assert.throws(() => buildConfig({ watchLogMax: '3' }, ['x'], false), /need --watch-log/);
  assert.throws(() => buildConfig({ watchLog: '(' }, ['x'], false), /--watch-log expects a regular expression/);
  assert.throws(() => buildConfig({ onUnhealthy: 'watchdog', systemd: false }, ['x'], false), /--on-unhealthy watchdog needs systemd/);
  assert.throws(
    () => buildConfig({ heartbeatUrl: 'ftp://secret-token@x/' }, ['x'], false),
    (e: unknown) => e instanceof UsageError && !e.message.includes('secret-token'),
  );
});
