// The watchdog's rule (src/vouch.ts): WATCHDOG=1 only while READY stands, and every liveness probe is healthy
// with a fresh success; readiness probes never decide.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialHealth, type HealthState } from '../../src/health.js';
import type { State } from '../../src/lifecycle.js';
import { decidesWatchdog, vouchFor, type VouchProbe } from '../../src/vouch.js';

const FRESH_MS = 1000;
const NOW = 10_000;

function health(status: HealthState['status'], lastSuccessAt: number | undefined): HealthState {
  return { ...initialHealth(0), status, lastSuccessAt, successes: lastSuccessAt === undefined ? 0 : 1 };
}
/** A probe whose last success was `age` ms before NOW (null: it never passed). */
const probe = (role: VouchProbe['role'], status: HealthState['status'] = 'healthy', age: number | null = 10): VouchProbe => ({
  role,
  health: health(status, age === null ? undefined : NOW - age),
  freshnessMs: FRESH_MS,
});

test('vouches only once READY stands and no stop is under way: running or reloading', () => {
  const fine = [probe('liveness')];
  for (const state of ['running', 'reloading'] as State[]) assert.deepEqual(vouchFor(state, fine, NOW), { vouch: true }, state);
  for (const state of ['starting', 'stopping', 'reaping', 'done'] as State[]) {
    assert.deepEqual(vouchFor(state, fine, NOW), { vouch: false, why: 'not running' }, state);
    assert.deepEqual(vouchFor(state, [], NOW), { vouch: false, why: 'not running' }, `${state}, no probe`);
  }
});

test('with no probe, a running app is vouched for', () => {
  assert.deepEqual(vouchFor('running', [], NOW), { vouch: true });
});

test('a liveness probe that is not healthy stops the pings, whatever its last success', () => {
  for (const status of ['starting', 'unhealthy'] as const) {
    assert.deepEqual(vouchFor('running', [probe('liveness', status)], NOW), { vouch: false, why: 'stale', probe: 0 }, status);
    assert.deepEqual(vouchFor('running', [probe('both', status)], NOW), { vouch: false, why: 'stale', probe: 0 }, `both, ${status}`);
  }
});

test('freshness: a success exactly freshnessMs old still counts, one a millisecond older does not, none never does', () => {
  assert.deepEqual(vouchFor('running', [probe('liveness', 'healthy', FRESH_MS)], NOW), { vouch: true });
  assert.deepEqual(vouchFor('running', [probe('liveness', 'healthy', FRESH_MS + 1)], NOW), { vouch: false, why: 'stale', probe: 0 });
  assert.deepEqual(vouchFor('running', [probe('both', 'healthy', FRESH_MS + 1)], NOW), { vouch: false, why: 'stale', probe: 0 });
  assert.deepEqual(vouchFor('running', [probe('liveness', 'healthy', null)], NOW), { vouch: false, why: 'stale', probe: 0 });
  // Each probe is judged by its own bound.
  const slow: VouchProbe = { ...probe('liveness', 'healthy', 5000), freshnessMs: 5000 };
  assert.deepEqual(vouchFor('running', [slow], NOW), { vouch: true });
});

test('only liveness decides: a failing or stale readiness probe changes nothing', () => {
  const readinessDown = [probe('readiness', 'unhealthy', null), probe('liveness')];
  assert.deepEqual(vouchFor('running', readinessDown, NOW), { vouch: true });
  assert.deepEqual(vouchFor('running', [probe('readiness', 'healthy', 60_000)], NOW), { vouch: true });
  assert.equal(decidesWatchdog('readiness'), false);
  assert.equal(decidesWatchdog('liveness'), true);
  assert.equal(decidesWatchdog('both'), true);
});

test('every liveness probe must be fine; the first one in the way is named', () => {
  const probes = [
    probe('readiness', 'unhealthy'),
    probe('liveness'),
    probe('both', 'healthy', FRESH_MS + 1),
    probe('liveness', 'unhealthy'),
  ];
  assert.deepEqual(vouchFor('running', probes, NOW), { vouch: false, why: 'stale', probe: 2 });
  assert.deepEqual(vouchFor('running', probes.slice(0, 2), NOW), { vouch: true });
});
