import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialHealth, isFresh, recordProbe, type HealthPolicy, type HealthState, type ProbeResult } from '../../src/health.js';

const ok = (at: number): ProbeResult => ({ ok: true, at, latencyMs: 3, detail: 'HTTP 200' });
const fail = (at: number, detail = 'HTTP 503'): ProbeResult => ({ ok: false, at, latencyMs: 3, detail });

function feed(policy: HealthPolicy, results: ProbeResult[]) {
  let state: HealthState = initialHealth(0);
  const verdicts: string[] = [];
  for (const r of results) {
    const step = recordProbe(state, r, policy);
    state = step.state;
    if (step.verdict) verdicts.push(step.verdict.status === 'healthy' ? `healthy@${r.at}` : `unhealthy@${r.at}: ${step.verdict.reason}`);
  }
  return { state, verdicts };
}

test('success threshold: consecutive successes make it healthy; a failure resets the streak', () => {
  const policy = { failureThreshold: 3, successThreshold: 2, startPeriodMs: 0 };
  const { verdicts } = feed(policy, [ok(1), fail(2), ok(3), ok(4)]);
  assert.deepEqual(verdicts, ['healthy@4']);
});

test('failure threshold: consecutive failures make it unhealthy; one success resets the count', () => {
  const policy = { failureThreshold: 3, successThreshold: 1, startPeriodMs: 0 };
  const { verdicts, state } = feed(policy, [ok(1), fail(2), fail(3), ok(4), fail(5), fail(6), fail(7), fail(8)]);
  assert.equal(verdicts.length, 2);
  assert.equal(verdicts[0], 'healthy@1');
  assert.match(verdicts[1]!, /^unhealthy@7: 3 consecutive probe failures \(threshold 3\), last: HTTP 503$/);
  assert.equal(state.status, 'unhealthy');
  assert.equal(state.failures, 4, 'counting goes on; the verdict is given once');
});

test('start period: failures inside it do not count, a success ends it early', () => {
  const policy = { failureThreshold: 1, successThreshold: 1, startPeriodMs: 100 };
  const { verdicts } = feed(policy, [fail(10), fail(50), fail(99), ok(120), fail(130)]);
  assert.deepEqual(verdicts, ['healthy@120', 'unhealthy@130: 1 consecutive probe failures (threshold 1), last: HTTP 503']);
});

test('start period: failures after it count even before the first success', () => {
  const policy = { failureThreshold: 2, successThreshold: 1, startPeriodMs: 100 };
  const { verdicts } = feed(policy, [fail(50), fail(100), fail(110)]);
  assert.equal(verdicts.length, 1);
  assert.match(verdicts[0]!, /^unhealthy@110/);
});

test('an unhealthy probe turns healthy again after success-threshold successes', () => {
  const policy = { failureThreshold: 1, successThreshold: 2, startPeriodMs: 0 };
  const { verdicts, state } = feed(policy, [ok(1), ok(2), fail(3), fail(4), ok(5), ok(6)]);
  assert.deepEqual(
    verdicts.map((v) => v.split(':')[0]),
    ['healthy@2', 'unhealthy@3', 'healthy@6'],
  );
  assert.equal(state.status, 'healthy');
});

test('freshness: only a recent success vouches for the child', () => {
  const policy = { failureThreshold: 3, successThreshold: 1, startPeriodMs: 0 };
  const { state } = feed(policy, [ok(1000)]);
  assert.equal(isFresh(state, 1500, 500), true);
  assert.equal(isFresh(state, 1501, 500), false);
  assert.equal(isFresh(initialHealth(0), 0, 500), false);
});

test('edges: the start period counts from the spawn, and ends for good once the probe was healthy', () => {
  const policy = { failureThreshold: 1, successThreshold: 1, startPeriodMs: 100 };
  // Spawned at 1000: a failure at 1050 is inside the period, one at 1100 is not.
  let state = initialHealth(1000);
  state = recordProbe(state, fail(1050), policy).state;
  assert.equal(state.failures, 0);
  assert.equal(recordProbe(state, fail(1100), policy).verdict?.status, 'unhealthy');
  // Healthy within the period: the next failure counts at once, period or not.
  const long = { ...policy, startPeriodMs: 10_000 };
  const healthy = recordProbe(initialHealth(0), ok(10), long).state;
  assert.equal(recordProbe(healthy, fail(20), long).verdict?.status, 'unhealthy');
});
