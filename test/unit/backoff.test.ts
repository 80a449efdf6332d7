import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, emptyHistory, nextRestart, type RestartHistory, type RestartPolicy } from '../../src/backoff.js';

const policy: RestartPolicy = {
  mode: 'on-failure',
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  maxRestarts: 5,
  windowMs: 300_000,
  resetAfterMs: 60_000,
};
const mid = () => 0.5; // no jitter
const low = () => 0;
const high = () => 0.999999;

test('backoff doubles from the initial delay and is capped', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 20, 2000].map((n) => backoffDelay(n, policy, mid)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000],
  );
});

test('jitter stays within +/-25% and never passes the cap', () => {
  assert.equal(backoffDelay(2, policy, low), 3000);
  assert.equal(backoffDelay(2, policy, high), 5000);
  assert.equal(backoffDelay(6, policy, high), 60_000);
  assert.equal(backoffDelay(0, { ...policy, initialDelayMs: 0 }, high), 0);
});

test('the budget: max restarts within the window, then give up; old restarts fall out of the window', () => {
  let history: RestartHistory = emptyHistory;
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = nextRestart(history, policy, i * 1000, 0, mid);
    assert.equal(r.decision.kind, 'restart');
    if (r.decision.kind === 'restart') delays.push(r.decision.delayMs);
    history = r.history;
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000]);
  const sixth = nextRestart(history, policy, 5000, 0, mid);
  assert.equal(sixth.decision.kind, 'give-up');
  assert.match((sixth.decision as { reason: string }).reason, /gave up: 5 restarts within 5min \(--max-restarts 5 --restart-window 5min\)/);
  // Later, the first restarts have left the window: one more is allowed, at the grown delay.
  const later = nextRestart(history, policy, 300_500, 0, mid);
  assert.deepEqual(later.decision, { kind: 'restart', delayMs: 32_000, restart: 6 });
});

test('a child healthy for --restart-reset resets backoff and budget', () => {
  let history: RestartHistory = emptyHistory;
  for (let i = 0; i < 4; i++) history = nextRestart(history, policy, i, 0, mid).history;
  assert.equal(history.streak, 4);
  const afterShortLife = nextRestart(history, policy, 10, 59_999, mid);
  assert.deepEqual(afterShortLife.decision, { kind: 'restart', delayMs: 16_000, restart: 5 });
  const afterHealthyLife = nextRestart(history, policy, 10, 60_000, mid);
  assert.deepEqual(afterHealthyLife.decision, { kind: 'restart', delayMs: 1000, restart: 1 });
});

test('--max-restarts 0 never restarts', () => {
  assert.equal(nextRestart(emptyHistory, { ...policy, maxRestarts: 0 }, 0, 0, mid).decision.kind, 'give-up');
});

test('edges: --restart-reset 0 resets only after a healthy moment; a restart exactly one window ago no longer counts; giving up keeps the history', () => {
  const zeroReset: RestartPolicy = { ...policy, resetAfterMs: 0 };
  const history: RestartHistory = { streak: 3, times: [1000] };
  // Never healthy: no reset even with --restart-reset 0, so the streak goes on.
  assert.equal(nextRestart(history, zeroReset, 2000, 0, mid).history.streak, 4);
  assert.equal(nextRestart(history, zeroReset, 2000, 1, mid).history.streak, 1);
  // One restart left in the budget of 1, exactly windowMs old: out of the window, so a restart is allowed.
  const one: RestartPolicy = { ...policy, maxRestarts: 1 };
  assert.equal(nextRestart({ streak: 1, times: [0] }, one, policy.windowMs, 0, mid).decision.kind, 'restart');
  assert.equal(nextRestart({ streak: 1, times: [1] }, one, policy.windowMs, 0, mid).decision.kind, 'give-up');
  const gaveUp = nextRestart({ streak: 7, times: [10, 20] }, { ...policy, maxRestarts: 2 }, 30, 0, mid);
  assert.deepEqual(gaveUp.history, { streak: 7, times: [10, 20] });
  assert.deepEqual(emptyHistory, { streak: 0, times: [] });
});
