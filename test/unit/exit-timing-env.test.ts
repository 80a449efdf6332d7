import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planExit } from '../../src/exit-plan.js';
import { planTiming } from '../../src/timing.js';
import { childEnv, isValidNotifySocket, stderrIsJournal, watchdogPeriodMs } from '../../src/systemd-env.js';
import { withSyslogPrefix } from '../../src/logger.js';

test('exit plan: transparent codes and signals; unhealthy is 69; core signals become 128+N', () => {
  assert.deepEqual(planExit(undefined, { code: 7, signal: null }), { kind: 'code', code: 7 });
  assert.deepEqual(planExit({ kind: 'signal', signal: 'SIGTERM' }, { code: 0, signal: null }), { kind: 'code', code: 0 });
  assert.deepEqual(planExit({ kind: 'signal', signal: 'SIGTERM' }, { code: null, signal: 'SIGTERM' }), { kind: 'signal', signal: 'SIGTERM', fallbackCode: 143 });
  assert.deepEqual(planExit({ kind: 'unhealthy', reason: 'x' }, { code: null, signal: 'SIGTERM' }), { kind: 'code', code: 69 });
  assert.deepEqual(planExit({ kind: 'unhealthy', reason: 'x' }, { code: 0, signal: null }), { kind: 'code', code: 69 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGSEGV' }), { kind: 'code', code: 139 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGQUIT' }), { kind: 'code', code: 131 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGUSR1' }), { kind: 'code', code: 138 });
  assert.deepEqual(planExit(undefined, { code: null, signal: 'SIGKILL' }), { kind: 'signal', signal: 'SIGKILL', fallbackCode: 137 });
  // SIGKILLed by sdwrap's escalation after a requested stop: the stop signal, not SIGKILL.
  assert.deepEqual(planExit({ kind: 'signal', signal: 'SIGTERM' }, { code: null, signal: 'SIGKILL' }), { kind: 'signal', signal: 'SIGTERM', fallbackCode: 143 });
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

test('timing: the interval shrinks so the verdict comes within WatchdogSec/3', () => {
  const base = { intervalMs: 10_000, timeoutMs: 2000, failureThreshold: 3, startPeriodMs: 0, stopTimeoutMs: 1000 };
  const none = planTiming({ ...base, watchdogMs: undefined });
  assert.equal(none.intervalMs, 10_000);
  assert.equal(none.pingEveryMs, undefined);
  assert.equal(none.freshnessMs, 32_000);
  const wd = planTiming({ ...base, watchdogMs: 30_000 });
  assert.equal(wd.intervalMs, 2666);
  assert.ok(3 * wd.intervalMs + 2000 <= 10_000);
  assert.equal(wd.pingEveryMs, 15_000);
  assert.equal(wd.startIntervalMs, 1000);
  assert.match(wd.notes[0]!, /--interval shortened to 2s 666ms/);
  const tight = planTiming({ ...base, watchdogMs: 3000 });
  assert.equal(tight.intervalMs, 100);
  assert.ok(tight.notes.some((n) => /too short/.test(n)));
  assert.deepEqual(planTiming({ ...base, intervalMs: 500, watchdogMs: 60_000 }).notes, []);
  // An interval already below the floor is never lengthened.
  assert.equal(planTiming({ ...base, intervalMs: 10, timeoutMs: 1000, watchdogMs: 2000 }).intervalMs, 10);
});

test('journal lines carry their syslog priority', () => {
  const lines: string[] = [];
  const out = withSyslogPrefix({ write: (s: string) => void lines.push(s) });
  out.write('{"level":"warn","msg":"x"}\n');
  out.write('{"level":"error","msg":"x"}\n');
  out.write('{"level":"info","msg":"x"}\n');
  out.write('{"level":"debug","msg":"x"}\n');
  assert.deepEqual(lines.map((l) => l.slice(0, 3)), ['<4>', '<3>', '<6>', '<7>']);
});
