// --notify-passthrough's policy as a table: each datagram from the app, what it changes, what goes upstream,
// what is dropped (and said once), and when the app's own watchdog is stale. Time is a parameter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appPing, applyAppMessage, combinedStatus, initialAppNotify, parseDatagram, type AppNotifyState } from '../../src/app-notify.js';

const parse = (text: string) => {
  const parsed = parseDatagram(Buffer.from(text));
  assert.ok(parsed.ok, text);
  return parsed.assignments;
};
const apply = (state: AppNotifyState, text: string, now = 1000) => applyAppMessage(state, parse(text), now);

test('datagrams: VAR=VALUE lines; empty, NUL, oversized, non-UTF-8 and non-assignments are refused whole', () => {
  assert.deepEqual(parseDatagram(Buffer.from('READY=1\nSTATUS=up\n')), {
    ok: true,
    assignments: [
      ['READY', '1'],
      ['STATUS', 'up'],
    ],
  });
  const refused: Array<[Buffer, RegExp]> = [
    [Buffer.alloc(0), /empty/],
    [Buffer.from('READY=1\0'), /NUL/],
    [Buffer.from(`STATUS=${'x'.repeat(4096)}`), /oversized \(4103 bytes/],
    [Buffer.from([0x53, 0x3d, 0xff, 0xfe]), /not UTF-8/],
    [Buffer.from('hello world'), /not VAR=VALUE: 'hello world'/],
    [Buffer.from('READY=1\n=x'), /not VAR=VALUE/],
    [Buffer.from('ready=1'), /not VAR=VALUE/],
    [Buffer.from('\n\n'), /no assignment/],
  ];
  for (const [data, reason] of refused) {
    const parsed = parseDatagram(data);
    assert.equal(parsed.ok, false);
    if (!parsed.ok) assert.match(parsed.reason, reason);
  }
  assert.equal(parseDatagram(Buffer.from(`STATUS=${'x'.repeat(4089)}`)).ok, true, 'exactly 4096 bytes is allowed');
});

test('READY=1: the app is ready (once), its watchdog starts counting; nothing is forwarded by itself', () => {
  const first = apply(initialAppNotify, 'READY=1', 500);
  assert.deepEqual([first.state.ready, first.state.lastPingAt, first.becameReady, first.forward], [true, 500, true, []]);
  const again = apply(first.state, 'READY=1', 900);
  assert.equal(again.becameReady, false);
  assert.equal(again.state.lastPingAt, 500, 'a repeated READY=1 is no ping');
});

test('WATCHDOG=1 refreshes; WATCHDOG=trigger asks for the watchdog action; other values are dropped', () => {
  const ready = apply(initialAppNotify, 'READY=1', 0).state;
  assert.equal(apply(ready, 'WATCHDOG=1', 700).state.lastPingAt, 700);
  const trigger = apply(ready, 'WATCHDOG=trigger', 700);
  assert.deepEqual([trigger.trigger, trigger.forward, trigger.state.lastPingAt], [true, [], 0]);
  const odd = apply(ready, 'WATCHDOG=2', 700);
  assert.deepEqual([odd.trigger, odd.state.lastPingAt, odd.logs[0]?.level], [false, 0, 'debug']);
});

test('forwarded as the app said them: RELOADING=1 with MONOTONIC_USEC=, STOPPING=1, EXTEND_TIMEOUT_USEC=, ERRNO=', () => {
  const ready = apply(initialAppNotify, 'READY=1').state;
  const reload = apply(ready, 'RELOADING=1\nMONOTONIC_USEC=123');
  assert.deepEqual(reload.forward, ['RELOADING=1', 'MONOTONIC_USEC=123']);
  assert.equal(reload.state.ready, false, 'reloading: not ready until READY=1 again');
  assert.equal(apply(reload.state, 'READY=1').becameReady, true);
  assert.deepEqual(apply(ready, 'STOPPING=1').forward, ['STOPPING=1']);
  assert.deepEqual(apply(ready, 'EXTEND_TIMEOUT_USEC=5000000').forward, ['EXTEND_TIMEOUT_USEC=5000000']);
  assert.deepEqual(apply(ready, 'ERRNO=2').forward, ['ERRNO=2']);
  assert.deepEqual(apply(ready, 'MONOTONIC_USEC=1').forward, [], 'MONOTONIC_USEC= alone means nothing');
});

test('STATUS= is kept for the combined status, and marked changed only when it changes', () => {
  const one = apply(initialAppNotify, 'STATUS=serving 3 clients');
  assert.deepEqual([one.state.status, one.statusChanged, one.forward], ['serving 3 clients', true, []]);
  assert.equal(apply(one.state, 'STATUS=serving 3 clients').statusChanged, false);
  assert.equal(combinedStatus('healthy: GET / passed in 3ms', one.state.status), 'healthy: GET / passed in 3ms; app: serving 3 clients');
  assert.equal(combinedStatus('starting', undefined), 'starting');
});

test('MAINPID= and the fd store are dropped, each kind said once; BARRIER=1 silently; unknown keys at debug', () => {
  const first = apply(initialAppNotify, 'MAINPID=4242\nFDSTORE=1\nFDNAME=web');
  assert.deepEqual(first.forward, []);
  assert.deepEqual(
    first.logs.map((l) => [l.level, l.msg]),
    [
      ['info', "dropped the app's MAINPID= (sdwrap stays the main process; use --pid-file to follow a daemon); said once"],
      ['info', "dropped the app's FDSTORE= (the fd store is not passed through); said once"],
      ['info', "dropped the app's FDNAME= (the fd store is not passed through); said once"],
    ],
  );
  assert.deepEqual(apply(first.state, 'MAINPID=4243').logs, [], 'said once');
  assert.deepEqual(apply(initialAppNotify, 'BARRIER=1').logs, []);
  assert.equal(apply(initialAppNotify, 'X_CUSTOM=1').logs[0]?.level, 'debug');
});

test("the app's watchdog: fresh before its READY and without a period; stale past the period, with a reason", () => {
  assert.deepEqual(appPing(initialAppNotify, 1e9, 1000), { fresh: true }, 'not ready yet: systemd would not count either');
  const ready = apply(initialAppNotify, 'READY=1', 0).state;
  assert.deepEqual(appPing(ready, 1e9, undefined), { fresh: true }, 'no watchdog');
  assert.deepEqual(appPing(ready, 1000, 1000), { fresh: true });
  const stale = appPing(ready, 1001, 1000);
  assert.equal(stale.fresh, false);
  if (!stale.fresh) assert.equal(stale.reason, "the app's own watchdog: no WATCHDOG=1 from it for 1001ms (its WATCHDOG_USEC is 1000ms)");
  assert.deepEqual(appPing(apply(ready, 'WATCHDOG=1', 900).state, 1800, 1000), { fresh: true });
});
