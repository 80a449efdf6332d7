// The numbers `sdwrap unit` derives, and the hardening block it copies, checked against what they must agree with:
// planProbeTiming under the generated WatchdogSec= (no adjustment, no note) and units/sdwrap-example.service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildConfig, type RawOptions } from '../../src/config.js';
import { planProbeTiming } from '../../src/timing.js';
import { execArg, HARDENING, planUnitTimings } from '../../src/unit-file.js';

const config = (raw: RawOptions) => buildConfig(raw, ['/opt/app/server'], false);

test("the hardening block is the example unit's, setting for setting, in order", () => {
  const example = readFileSync(new URL('../../units/sdwrap-example.service', import.meta.url), 'utf8');
  const block = example.split('# --- Hardening')[1]!.split('\n[Install]')[0]!;
  const settings = block
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('-'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
  assert.deepEqual(
    settings,
    HARDENING.map(([k, v]) => [k, v]),
  );
  assert.ok(!HARDENING.some(([key]) => key === 'MemoryDenyWriteExecute'), 'MemoryDenyWriteExecute= breaks V8');
});

test('under the generated WatchdogSec=, every probe keeps its interval and timeout, and nothing is noted', () => {
  const grid: RawOptions[] = [
    { http: 'http://127.0.0.1:8080/healthz' },
    { http: 'http://127.0.0.1:8080/healthz', startPeriod: '30s' },
    { tcp: '127.0.0.1:1', interval: '500ms', timeout: '300ms' },
    { tcp: '127.0.0.1:1', interval: '100ms', timeout: '100ms', failureThreshold: '1' },
    { exec: 'true', interval: '1min', timeout: '30s', failureThreshold: '10' },
    { tcp: '127.0.0.1:1', interval: '1s', timeout: '250ms', stopTimeout: '2min' },
    { probe: ['liveness:tcp:127.0.0.1:1', 'readiness:http:http://127.0.0.1:1/'], interval: '2s', failureThreshold: '5' },
    { probe: ['readiness:tcp:127.0.0.1:1'], stopTimeout: '45s' },
    {},
  ];
  for (const raw of grid) {
    const c = config(raw);
    const t = planUnitTimings(c);
    assert.equal(t.watchdogMs % 1000, 0, `WatchdogSec= in whole seconds: ${t.watchdogMs}`);
    for (const probe of c.probes) {
      const timing = planProbeTiming(probe, c, t.watchdogMs);
      assert.deepEqual(timing.notes, [], `${JSON.stringify(raw)}: WatchdogSec=${t.watchdogMs}ms`);
      assert.equal(timing.intervalMs, probe.intervalMs);
      assert.equal(timing.timeoutMs, probe.timeoutMs);
    }
    assert.ok(t.timeoutStopMs > c.stopTimeoutMs, 'TimeoutStopSec= longer than --stop-timeout');
    assert.ok(t.watchdogMs >= 2 * c.stopTimeoutMs, "sdwrap's kill within WatchdogSec/2");
    assert.ok(t.timeoutStartMs >= c.startPeriodMs + c.stopTimeoutMs, 'TimeoutStartSec= covers the start period and the stop');
    assert.ok(t.reloadTimeoutMs < t.timeoutStartMs, "sdwrap reload gives up before systemd's ExecReload= timeout");
  }
});

test('WatchdogSec= is 3 x the longest liveness verdict bound + 10%, in whole seconds; readiness probes do not count', () => {
  // 3 x 10s + 2s = 32s; x 3 = 96s; + 10% = 105.6s -> 106s.
  assert.equal(planUnitTimings(config({ http: 'http://127.0.0.1:8080/' })).watchdogMs, 106_000);
  const mixed = config({ probe: ['liveness:tcp:127.0.0.1:1', 'readiness:exec:sleep 1'], interval: '1s', timeout: '500ms' });
  // Liveness: 3 x 1s + 500ms = 3.5s; x 3 x 1.1 = 11.55s -> 12s, but 2 x --stop-timeout (10s) outweighs it.
  assert.equal(planUnitTimings(mixed).watchdogMs, 20_000);
  assert.equal(
    planUnitTimings(config({ probe: ['liveness:tcp:127.0.0.1:1'], interval: '1s', timeout: '500ms', stopTimeout: '1s' })).watchdogMs,
    12_000,
  );
  // Only readiness probes: the pings vouch for sdwrap alone.
  assert.equal(planUnitTimings(config({ probe: ['readiness:tcp:127.0.0.1:1'], interval: '1min' })).watchdogMs, 30_000);
});

test('ExecStart= arguments: % and $ doubled, quoted where needed', () => {
  assert.equal(execArg('/opt/app/server'), '/opt/app/server');
  assert.equal(execArg('--http-json'), '--http-json');
  assert.equal(execArg('status==ok'), 'status==ok');
  assert.equal(execArg('50%'), '50%%');
  assert.equal(execArg('$HOME'), '"$$HOME"');
  assert.equal(execArg('a b'), '"a b"');
  assert.equal(execArg('say "hi"\\'), '"say \\"hi\\"\\\\"');
  assert.equal(execArg(''), '""');
});
