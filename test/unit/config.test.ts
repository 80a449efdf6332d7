import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, validateHostPort } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

const cmd = ['./server', '--port', '8080'];

test('applies the documented defaults', () => {
  const c = buildConfig({}, cmd, false);
  assert.equal(c.command, './server');
  assert.deepEqual(c.args, ['--port', '8080']);
  assert.deepEqual(c.probes, []);
  const [p] = buildConfig({ tcp: 'a:1' }, cmd, false).probes;
  assert.equal(p!.intervalMs, 10_000);
  assert.equal(p!.timeoutMs, 2000);
  assert.equal(p!.failureThreshold, 3);
  assert.equal(p!.successThreshold, 1);
  assert.equal(p!.role, 'both');
  assert.equal(c.onUnhealthy, 'kill');
  assert.equal(c.startPeriodMs, 0);
  assert.equal(c.stopTimeoutMs, 10_000);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.logFormat, 'json');
  assert.equal(buildConfig({}, cmd, true).logFormat, 'pretty');
  assert.ok(Object.isFrozen(c));
});

test('builds each probe kind', () => {
  const target = (raw: Parameters<typeof buildConfig>[0]) => buildConfig(raw, cmd, false).probes[0]!.target;
  const http = target({ http: 'http://127.0.0.1:8080/healthz' });
  assert.equal(http.kind === 'http' && http.url, 'http://127.0.0.1:8080/healthz');
  assert.equal(http.kind === 'http' && http.followRedirects, false);
  assert.deepEqual(target({ tcp: 'localhost:5432' }), { kind: 'tcp', host: 'localhost', port: 5432 });
  assert.deepEqual(validateHostPort('--tcp', '[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(target({ exec: 'pg_isready' }), { kind: 'exec', command: 'pg_isready' });
  assert.deepEqual(target({ ws: 'ws://127.0.0.1/ws', wsSend: 'ping', wsExpect: '^pong$' }), {
    kind: 'ws',
    url: 'ws://127.0.0.1/ws',
    send: 'ping',
    expect: /^pong$/,
  });
  // Several kinds at once are several probes, each gating readiness and liveness.
  assert.deepEqual(
    buildConfig({ http: 'http://a/', tcp: 'a:1' }, cmd, false).probes.map((p) => p.target.kind),
    ['http', 'tcp'],
  );
});

test('every bad value is a UsageError naming the flag', () => {
  const bad: Array<[Parameters<typeof buildConfig>[0], RegExp]> = [
    [{ tcp: 'a:1', interval: 'soon' }, /--interval/],
    [{ tcp: 'a:1', timeout: '0' }, /--timeout must be at least/],
    [{ tcp: 'a:1', failureThreshold: '0' }, /--failure-threshold/],
    [{ tcp: 'a:1', successThreshold: '1.5' }, /--success-threshold/],
    [{ startPeriod: 'x' }, /--start-period/],
    [{ stopTimeout: '-1' }, /--stop-timeout/],
    [{ logLevel: 'loud' }, /--log-level expects one of trace\|debug\|info\|warn\|error, got 'loud'/],
    [{ logFormat: 'xml' }, /--log-format/],
    [{ notifier: 'dbus' }, /--notifier/],
    [{ http: 'ftp://x/' }, /--http expects an http/],
    [{ http: 'not a url' }, /--http/],
    [{ tcp: 'localhost' }, /--tcp expects host:port/],
    [{ tcp: 'localhost:70000' }, /--tcp/],
    [{ exec: '  ' }, /--exec/],
    [{ ws: 'http://a/' }, /--ws expects a ws:\/\/ or wss:\/\/ URL/],
    [{ onUnhealthy: 'reboot' }, /--on-unhealthy expects one of kill\|watchdog/],
    [{ heartbeatEvery: '10ms' }, /--heartbeat-every must be at least 1s/],
  ];
  for (const [raw, message] of bad) {
    assert.throws(
      () => buildConfig(raw, cmd, false),
      (e: unknown) => e instanceof UsageError && message.test(e.message) && e.exitCode === 2,
      JSON.stringify(raw),
    );
  }
  assert.throws(() => buildConfig({}, [], false), /missing the command/);
});
