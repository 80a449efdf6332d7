import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, validateHostPort } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

const cmd = ['./server', '--port', '8080'];

test('applies the documented defaults', () => {
  const c = buildConfig({}, cmd, false);
  assert.equal(c.command, './server');
  assert.deepEqual(c.args, ['--port', '8080']);
  assert.equal(c.probe, undefined);
  assert.equal(c.intervalMs, 10_000);
  assert.equal(c.timeoutMs, 2000);
  assert.equal(c.failureThreshold, 3);
  assert.equal(c.successThreshold, 1);
  assert.equal(c.startPeriodMs, 0);
  assert.equal(c.stopTimeoutMs, 10_000);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.logFormat, 'json');
  assert.equal(buildConfig({}, cmd, true).logFormat, 'pretty');
  assert.ok(Object.isFrozen(c));
});

test('builds each probe kind', () => {
  assert.deepEqual(buildConfig({ http: 'http://127.0.0.1:8080/healthz' }, cmd, false).probe, { kind: 'http', url: 'http://127.0.0.1:8080/healthz' });
  assert.deepEqual(buildConfig({ tcp: 'localhost:5432' }, cmd, false).probe, { kind: 'tcp', host: 'localhost', port: 5432 });
  assert.deepEqual(validateHostPort('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(buildConfig({ exec: 'pg_isready' }, cmd, false).probe, { kind: 'exec', command: 'pg_isready' });
});

test('every bad value is a UsageError naming the flag', () => {
  const bad: Array<[Parameters<typeof buildConfig>[0], RegExp]> = [
    [{ interval: 'soon' }, /--interval/],
    [{ timeout: '0' }, /--timeout must be at least/],
    [{ failureThreshold: '0' }, /--failure-threshold/],
    [{ successThreshold: '1.5' }, /--success-threshold/],
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
    [{ http: 'http://a/', tcp: 'a:1' }, /only one probe may be given, got --http and --tcp/],
  ];
  for (const [raw, message] of bad) {
    assert.throws(() => buildConfig(raw, cmd, false), (e: unknown) => e instanceof UsageError && message.test(e.message) && e.exitCode === 2, JSON.stringify(raw));
  }
  assert.throws(() => buildConfig({}, [], false), /missing the command/);
});
