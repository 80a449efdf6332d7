// planTiming at its edges: when the interval is shortened (and said so), when WatchdogSec is too short, and when
// --stop-timeout is too long for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planTiming } from '../../src/timing.js';

const base = { intervalMs: 3000, timeoutMs: 1000, failureThreshold: 3, startPeriodMs: 0, stopTimeoutMs: 1000 };

test('an interval that fits the watchdog exactly is left alone, without a note', () => {
  // WatchdogSec=30s: the verdict must come within 10 s: (10000 - 1000) / 3 = 3000.
  const t = planTiming({ ...base, watchdogMs: 30_000 });
  assert.equal(t.intervalMs, 3000);
  assert.deepEqual(t.notes, []);
  assert.equal(t.freshnessMs, 3 * 3000 + 1000);
});

test('shortened to the floor exactly: a note, but no warning that the watchdog is too short', () => {
  // WatchdogSec=3.9s: (3900 / 3 - 1000) / 3 = 100, the floor itself. At 4.8s: (1600 - 1000) / 3 = 200.
  // The timeout is the user's, so the interval alone makes room, down to its floor.
  const atFloor = planTiming({ ...base, timeoutMs: 1000, timeoutSet: true, watchdogMs: 3900 });
  assert.equal(atFloor.intervalMs, 100);
  assert.deepEqual(atFloor.notes, [
    { level: 'info', msg: '--interval 3s -> 100ms so a hang is detected within WatchdogSec/3 (1s 300ms): 3 x 100ms + 1s = 1s 300ms' },
  ]);
  const above = planTiming({ ...base, timeoutSet: true, watchdogMs: 4800 });
  assert.equal(above.intervalMs, 200);
  assert.equal(above.notes.length, 1);
});

test('--stop-timeout longer than WatchdogSec/2 is warned about; exactly half is not', () => {
  const half = planTiming({ ...base, intervalMs: 100, stopTimeoutMs: 15_000, watchdogMs: 30_000 });
  assert.deepEqual(half.notes, []);
  const longer = planTiming({ ...base, intervalMs: 100, stopTimeoutMs: 15_001, watchdogMs: 30_000 });
  assert.deepEqual(longer.notes, [
    {
      level: 'warn',
      msg: "--stop-timeout 15s 1ms is longer than WatchdogSec/2: if a hung app ignores SIGTERM, systemd's watchdog may fire before sdwrap's SIGKILL",
    },
  ]);
  assert.deepEqual(planTiming({ ...base, stopTimeoutMs: 60_000, watchdogMs: undefined }).notes, [], 'no watchdog, no warning');
});
