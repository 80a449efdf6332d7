import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planExit } from '../../src/exit-plan.js';
import { planTiming } from '../../src/timing.js';
import { childEnv, isValidNotifySocket, stderrIsJournal, watchdogPeriodMs } from '../../src/systemd-env.js';
import { withSyslogPrefix } from '../../src/logger.js';

test('exit plan: transparent codes and signals; unhealthy is 69; core signals become 128+N', () => {
  assert.deepEqual(planExit(undefined, { code: 7, signal: null }), { kind: 'code', code: 7 });
  assert.deepEqual(planExit({ kind: 'signal', signal: 'SIGTERM' }, { code: 0, signal: null }), { kind: 'code', code: 0 });
  assert.deepEqual(planExit({ kind: 'signal', signal: 'SIGTERM' }, { code: null, signal: 'SIGTERM' }), {
    kind: 'signal',
    signal: 'SIGTERM',
    fallbackCode: 143,
  });
  assert.deepEqual(planExit({ kind: 'unhealthy', reason: 'x' }, { code: null, signal: 'SIGTERM' }), { kind: 'code', code: 69 });
  assert.deepEqual(planExit({ kind: 'unhealthy', reason: 'x' }, { code: 0, signal: null }), { kind: 'code', code: 69 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGSEGV' }), { kind: 'code', code: 139 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGQUIT' }), { kind: 'code', code: 131 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGUSR1' }), { kind: 'code', code: 138 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGKILL' }), { kind: 'signal', signal: 'SIGKILL', fallbackCode: 137 });
  // SIGKILLed by sdwrap's escalation after a requested stop: the stop signal, not SIGKILL.
  assert.deepEqual(planExit({ kind: 'signal', signal: 'SIGTERM' }, { code: null, signal: 'SIGKILL' }), {
    kind: 'signal',
    signal: 'SIGTERM',
    fallbackCode: 143,
  });
  assert.deepEqual(planExit({ kind: 'signal', signal: 'SIGABRT' }, { code: null, signal: 'SIGKILL' }), { kind: 'code', code: 134 });
});

test('watchdog env: read like sd_watchdog_enabled', () => {
  assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '3000000' }, 42), 3000);
  assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '3000000', WATCHDOG_PID: '42' }, 42), 3000);
  assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '3000000', WATCHDOG_PID: '43' }, 42), undefined);
  for (const bad of ['0', '', 'abc', '-5', '1e6', '99999999999999999999999']) {
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: bad }, 42), undefined, bad);
  }
  assert.equal(watchdogPeriodMs({}, 42), undefined);
});

test('child env drops exactly the notify and watchdog variables', () => {
  const env = childEnv({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '1', WATCHDOG_PID: '2', PATH: '/bin', JOURNAL_STREAM: '1:2' });
  assert.deepEqual(env, { PATH: '/bin', JOURNAL_STREAM: '1:2' });
});

test('notify socket addresses and journal stream detection', () => {
  assert.ok(isValidNotifySocket('/run/systemd/notify'));
  assert.ok(isValidNotifySocket('@abstract'));
  assert.ok(isValidNotifySocket('vsock:2:1234'));
  for (const bad of ['', '@', 'relative/path', 'tcp:1']) assert.equal(isValidNotifySocket(bad), false, bad);
  assert.ok(stderrIsJournal('8:1234', { dev: 8, ino: 1234 }));
  assert.equal(stderrIsJournal('8:1234', { dev: 8, ino: 99 }), false);
  assert.equal(stderrIsJournal(undefined, { dev: 8, ino: 1234 }), false);
  assert.equal(stderrIsJournal('garbage', { dev: 8, ino: 1234 }), false);
});

test('timing: under WatchdogSec the verdict bound (threshold x interval + timeout) fits WatchdogSec/3', () => {
  const base = { intervalMs: 10_000, timeoutMs: 2000, failureThreshold: 3, startPeriodMs: 0, stopTimeoutMs: 1000 };
  const none = planTiming({ ...base, watchdogMs: undefined });
  assert.equal(none.intervalMs, 10_000);
  assert.equal(none.freshnessMs, 32_000);
  assert.deepEqual(none.notes, []);
  // Defaults only: the interval shrinks, the timeout stays while the interval is still the longer; info, not warn.
  const wd = planTiming({ ...base, watchdogMs: 30_000 });
  assert.deepEqual([wd.intervalMs, wd.timeoutMs, wd.startIntervalMs], [2666, 2000, 1000]);
  assert.equal(wd.notes.length, 1);
  assert.equal(wd.notes[0]!.level, 'info');
  assert.match(
    wd.notes[0]!.msg,
    /^--interval 10s -> 2s 666ms so a hang is detected within WatchdogSec\/3 \(10s\): 3 x 2s 666ms \+ 2s = 9s 998ms$/,
  );
  // WatchdogSec=2s with the defaults: both shrink, sharing the budget, and the promise holds.
  const two = planTiming({ ...base, watchdogMs: 2000 });
  assert.ok(3 * two.intervalMs + two.timeoutMs <= 666, JSON.stringify(two));
  assert.equal(two.freshnessMs, 3 * two.intervalMs + two.timeoutMs);
  assert.deepEqual([two.intervalMs, two.timeoutMs], [166, 168]);
  assert.equal(two.notes[0]!.level, 'info');
  assert.match(two.notes[0]!.msg, /--interval 10s -> 166ms, --timeout 2s -> 168ms/);
  // A timeout the user gave is kept when the interval alone can make room.
  const userTimeout = planTiming({ ...base, timeoutMs: 300, timeoutSet: true, watchdogMs: 3000 });
  assert.deepEqual([userTimeout.intervalMs, userTimeout.timeoutMs, userTimeout.notes[0]!.level], [233, 300, 'info']);
  // An interval the user gave is kept when the timeout alone can make room.
  const userInterval = planTiming({ ...base, intervalMs: 150, intervalSet: true, watchdogMs: 3000 });
  assert.deepEqual([userInterval.intervalMs, userInterval.timeoutMs, userInterval.notes[0]!.level], [150, 550, 'info']);
  // Values the user gave that cannot both stay: changed, with a warning.
  const both = planTiming({ ...base, intervalMs: 500, timeoutMs: 900, intervalSet: true, timeoutSet: true, watchdogMs: 1200 });
  assert.ok(3 * both.intervalMs + both.timeoutMs <= 400);
  assert.equal(both.notes[0]!.level, 'warn');
  // Nothing fits above the floors (here the threshold): the interval goes to its floor, the timeout stays, and a
  // warning says that systemd's watchdog will act first, and what to change.
  const tight = planTiming({ ...base, timeoutMs: 300, timeoutSet: true, failureThreshold: 100, watchdogMs: 3000 });
  assert.deepEqual([tight.intervalMs, tight.timeoutMs], [100, 300]);
  assert.equal(tight.notes[0]!.level, 'warn');
  assert.match(
    tight.notes[0]!.msg,
    /^WatchdogSec=3s cannot hold sdwrap's verdict: --failure-threshold 100 x --interval 100ms \+ --timeout 300ms .*systemd's watchdog will act first.*raise WatchdogSec= to at least 30s 300ms$/,
  );
  assert.deepEqual(planTiming({ ...base, intervalMs: 500, watchdogMs: 60_000 }).notes, []);
  // An interval already below the floor is never lengthened.
  assert.equal(planTiming({ ...base, intervalMs: 10, timeoutMs: 100, watchdogMs: 2000 }).intervalMs, 10);
  assert.equal(planTiming({ ...base, stopTimeoutMs: 20_000, watchdogMs: 30_000 }).notes[1]!.level, 'warn');
});

test('journal lines carry their syslog priority', () => {
  const lines: string[] = [];
  const out = withSyslogPrefix({ write: (s: string) => void lines.push(s) });
  out.write('{"level":"warn","msg":"x"}\n');
  out.write('{"level":"error","msg":"x"}\n');
  out.write('{"level":"info","msg":"x"}\n');
  out.write('{"level":"debug","msg":"x"}\n');
  assert.deepEqual(
    lines.map((l) => l.slice(0, 3)),
    ['<4>', '<3>', '<6>', '<7>'],
  );
});
