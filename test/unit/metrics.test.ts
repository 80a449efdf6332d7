// --metrics: the address rules (a bare port is loopback), the config file's `metrics`, and what the observer
// hooks make of a run in prom-client's registry (names, labels, values), read back from the exposition text.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config-file.js';
import { buildConfig, validateListenAddress } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';
import { initialHealth, type HealthState } from '../../src/health.js';
import { createMetrics } from '../../src/metrics.js';
import { combineObservers } from '../../src/observers.js';
import type { RunView, SupervisorObserver } from '../../src/supervisor.js';
import { sample } from '../helpers/metrics.js';

const dir = mkdtempSync(join(tmpdir(), 'sdwrap-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('--metrics: a bare port is 127.0.0.1; host:port as given; anything else is a usage error naming the flag', () => {
  assert.deepEqual(validateListenAddress('--metrics', '9464'), { host: '127.0.0.1', port: 9464, flag: '--metrics' });
  assert.deepEqual(validateListenAddress('--metrics', '0.0.0.0:9464'), { host: '0.0.0.0', port: 9464, flag: '--metrics' });
  assert.deepEqual(validateListenAddress('--metrics', '[::1]:9464'), { host: '::1', port: 9464, flag: '--metrics' });
  for (const bad of ['', 'abc', '0', '70000', '127.0.0.1', '127.0.0.1:', ':9464', 'http://127.0.0.1:9464', '::1:9464']) {
    assert.throws(
      () => validateListenAddress('--metrics', bad),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message === `--metrics expects a port (served on 127.0.0.1) or host:port (port 1-65535, IPv6 in brackets), got '${bad}'`,
      bad,
    );
  }
  assert.equal(buildConfig({}, ['./app'], false).metrics, undefined);
  assert.deepEqual(buildConfig({ metrics: '9464' }, ['./app'], false).metrics, { host: '127.0.0.1', port: 9464, flag: '--metrics' });
});

test('the config file takes metrics as a port number or "host:port"; a bad one is named by file, line:column and key', async () => {
  const path = (name: string, content: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(content, null, 2));
    return p;
  };
  const number = await loadConfigFile(path('n.json', { metrics: 9464 }));
  assert.deepEqual(buildConfig(number.options, ['./app'], false).metrics?.port, 9464);
  const text = await loadConfigFile(path('t.json', { metrics: '[::1]:9100' }));
  assert.deepEqual(buildConfig(text.options, ['./app'], false).metrics?.host, '::1');
  const bad = await loadConfigFile(path('b.json', { metrics: 'nope' }));
  assert.throws(() => buildConfig(bad.options, ['./app'], false), /^UsageError: --config .*b\.json:2:3: metrics expects a port/);
  await assert.rejects(
    loadConfigFile(path('w.json', { metrics: true })),
    /w\.json:2:3: metrics: expected a port \(a number\) or "host:port"/,
  );
});

const view = (state: RunView['state'], cause?: RunView['cause']): RunView => ({ pid: 4242, state, cause, child: undefined });
const health = (patch: Partial<HealthState>): HealthState => ({ ...initialHealth(0), ...patch });

test('the observer hooks feed sdwrap_* metrics with Prometheus names, a probe label, and the cheap process metrics', async () => {
  const metrics = createMetrics({ version: '1.2.3', notifier: 'native' });
  const o = metrics.observer;
  const probe = 'GET http://127.0.0.1:8080/healthz';
  const before = (await metrics.render()).body;
  assert.equal(sample(before, 'sdwrap_build_info{version="1.2.3",notifier="native"}'), 1);
  assert.equal(sample(before, 'sdwrap_ready'), 0);
  assert.equal(sample(before, 'sdwrap_watchdog_pings_total{outcome="sent"}'), 0, 'both outcomes exist before the first tick');
  assert.equal(sample(before, 'sdwrap_last_unhealthy_time_seconds'), 0);

  const t0 = Date.now() / 1000;
  o.state!(view('starting'));
  o.probe!(probe, { ok: true, at: 1, latencyMs: 3, detail: 'HTTP 200' }, health({ status: 'healthy', successes: 1 }));
  o.state!(view('running'));
  o.watchdog!(true);
  o.watchdog!(true);
  o.probe!(probe, { ok: false, at: 2, latencyMs: 2000, detail: 'timed out' }, health({ status: 'healthy', failures: 1 }));
  o.probe!(probe, { ok: false, at: 3, latencyMs: 2000, detail: 'timed out' }, health({ status: 'unhealthy', failures: 2 }));
  o.watchdog!(false);
  o.symptom!(2);
  o.symptom!(1);
  metrics.heartbeatFailure();
  o.state!(view('stopping', { kind: 'unhealthy', reason: 'x' }));
  o.state!(view('reaping', { kind: 'unhealthy', reason: 'x' }));
  o.restart!();

  const { contentType, body } = await metrics.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  const p = `probe="${probe}"`;
  assert.equal(sample(body, `sdwrap_probe_duration_seconds_count{${p}}`), 3);
  assert.equal(sample(body, `sdwrap_probe_duration_seconds_sum{${p}}`), 4.003);
  assert.equal(sample(body, `sdwrap_probe_duration_seconds_bucket{le="0.005",${p}}`), 1);
  assert.equal(sample(body, `sdwrap_probe_results_total{${p},outcome="success"}`), 1);
  assert.equal(sample(body, `sdwrap_probe_results_total{${p},outcome="failure"}`), 2);
  assert.equal(sample(body, `sdwrap_probe_consecutive_failures{${p}}`), 2);
  assert.equal(sample(body, `sdwrap_probe_state{${p},state="unhealthy"}`), 1);
  assert.equal(sample(body, `sdwrap_probe_state{${p},state="healthy"}`), 0);
  assert.equal(sample(body, 'sdwrap_ready'), 1);
  assert.equal(sample(body, 'sdwrap_watchdog_pings_total{outcome="sent"}'), 2);
  assert.equal(sample(body, 'sdwrap_watchdog_pings_total{outcome="withheld"}'), 1);
  assert.equal(sample(body, 'sdwrap_log_symptoms_total'), 3);
  assert.equal(sample(body, 'sdwrap_heartbeat_failures_total'), 1);
  assert.equal(sample(body, 'sdwrap_restarts_total'), 1);
  const started = sample(body, 'sdwrap_child_start_time_seconds')!;
  const unhealthy = sample(body, 'sdwrap_last_unhealthy_time_seconds')!;
  assert.ok(started >= t0 - 1 && started <= Date.now() / 1000, `child start ${started}`);
  assert.ok(unhealthy >= started && unhealthy <= Date.now() / 1000, `unhealthy at ${unhealthy}`);
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds']) {
    assert.ok((sample(body, name) ?? -1) >= 0, `${name} is served`);
  }

  // The restarted app spawns: not ready until it passes again; the unhealthy time is kept, the start time moves.
  o.state!(view('starting'));
  const again = (await metrics.render()).body;
  assert.equal(sample(again, 'sdwrap_ready'), 0);
  assert.equal(sample(again, 'sdwrap_last_unhealthy_time_seconds'), unhealthy);
});

test('combineObservers tells every observer every hook, in order; one observer is passed through as it is', () => {
  const heard: string[] = [];
  const a: SupervisorObserver = { state: (v) => heard.push(`a:${v.state}`), restart: () => heard.push('a:restart') };
  const b: SupervisorObserver = { state: (v) => heard.push(`b:${v.state}`), watchdog: (sent) => heard.push(`b:${sent}`) };
  const both = combineObservers(a, undefined, b)!;
  both.state!(view('running'));
  both.restart!();
  both.watchdog!(false);
  assert.equal(both.symptom, undefined);
  assert.deepEqual(heard, ['a:running', 'b:running', 'a:restart', 'b:false']);
  assert.equal(combineObservers(undefined, a), a);
  assert.equal(combineObservers(), undefined);
});
