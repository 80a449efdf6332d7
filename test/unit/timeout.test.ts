import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TIMED_OUT, withTimeout } from '../../src/timeout.js';
import { FakeClock, settle } from '../helpers/fake-clock.js';

test('resolves with the value when the work settles first, and clears its timer', async () => {
  const clock = new FakeClock();
  const result = await withTimeout(Promise.resolve('done'), 1000, clock);
  assert.equal(result, 'done');
  assert.equal(clock.pending, 0);
});

test('resolves with TIMED_OUT once the time is up, while the work is still pending', async () => {
  const clock = new FakeClock();
  let result: unknown = 'unsettled';
  void withTimeout(new Promise<never>(() => {}), 1000, clock).then((r) => (result = r));
  await clock.advance(999);
  await settle();
  assert.equal(result, 'unsettled');
  await clock.advance(1);
  await settle();
  assert.equal(result, TIMED_OUT);
  assert.equal(clock.pending, 0);
});

test('rejects as the work does, and clears its timer', async () => {
  const clock = new FakeClock();
  await assert.rejects(withTimeout(Promise.reject(new Error('boom')), 1000, clock), /boom/);
  assert.equal(clock.pending, 0);
});
