// The transition table's cells for legacy apps (issue 12): READY=1 gated by the app's own READY=1
// (--notify-passthrough) and by the pid file (--pid-file); the command's exit 0 while a daemon is awaited;
// the adopted daemon's end, vanished or stopped; a stop or an unhealthy pid file after the command is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMachine, initialMachineFor, transition, type Event, type Machine } from '../../src/lifecycle.js';

const run = (m: Machine, ...events: Event[]) => {
  const effects = [];
  for (const event of events) {
    const t = transition(m, event);
    m = t.machine;
    effects.push(...t.effects);
  }
  return { machine: m, effects };
};
const healthy: Event = { type: 'healthy', detail: 'GET / passed in 2ms' };
const adopted = (pid: number, previous?: number): Event => ({ type: 'adopted', pid, previous, self: false });
const readyLines = (effects: ReturnType<typeof run>['effects']) =>
  effects.filter((e) => e.type === 'notify' && e.lines.includes('READY=1'));

test('the first machine: gates by mode', () => {
  assert.deepEqual(initialMachineFor({ notifyPassthrough: false, pidFile: false }), initialMachine);
  assert.deepEqual(initialMachineFor({ notifyPassthrough: true, pidFile: true }).gates, ['app-ready', 'adoption']);
  assert.equal(initialMachineFor({ notifyPassthrough: false, pidFile: true }).follow, 'pid-file');
});

test("--notify-passthrough: READY=1 needs the probes AND the app's READY=1, in either order, once", () => {
  const start = initialMachineFor({ notifyPassthrough: true, pidFile: false });
  const probesFirst = run(start, healthy);
  assert.equal(probesFirst.machine.state, 'starting');
  assert.deepEqual(readyLines(probesFirst.effects), []);
  assert.deepEqual(probesFirst.effects, [
    { type: 'log', level: 'info', msg: "probes passed; READY=1 waits for the app's READY=1", fields: { detail: 'GET / passed in 2ms' } },
  ]);
  assert.deepEqual(run(probesFirst.machine, healthy).effects, [], 'said once');
  const then = run(probesFirst.machine, { type: 'app-ready' });
  assert.equal(then.machine.state, 'running');
  assert.deepEqual(then.effects, [
    { type: 'notify', lines: ['READY=1', 'STATUS=healthy: GET / passed in 2ms'] },
    { type: 'log', level: 'info', msg: 'ready', fields: { detail: 'GET / passed in 2ms' } },
  ]);
  const appFirst = run(start, { type: 'app-ready' });
  assert.equal(appFirst.machine.state, 'starting', "the app's READY=1 alone is not enough");
  assert.deepEqual(readyLines(appFirst.effects), []);
  const both = run(appFirst.machine, healthy, { type: 'app-ready' }, healthy);
  assert.equal(both.machine.state, 'running');
  assert.equal(readyLines(both.effects).length, 1);
});

test('--pid-file: READY=1 waits for the adoption too; the command exiting 0 meanwhile is not the end', () => {
  const start = initialMachineFor({ notifyPassthrough: false, pidFile: true });
  const forked = run(start, { type: 'child-exit', status: { code: 0, signal: null } }, healthy);
  assert.equal(forked.machine.state, 'starting');
  assert.deepEqual(forked.machine.commandExit, { code: 0, signal: null });
  assert.deepEqual(forked.effects[0], {
    type: 'log',
    level: 'info',
    msg: 'the command exited 0: waiting for the pid file',
    fields: { code: 0 },
  });
  assert.deepEqual(readyLines(forked.effects), []);
  const adopt = run(forked.machine, adopted(4242));
  assert.equal(adopt.machine.state, 'running');
  assert.equal(adopt.machine.follow, 'adopted');
  assert.deepEqual(adopt.effects[0], {
    type: 'log',
    level: 'info',
    msg: 'adopted the daemon named by the pid file',
    fields: { adoptedPid: 4242 },
  });
  assert.equal(readyLines(adopt.effects).length, 1);
});

test('--pid-file: the command failing before the pid file is the failure, with its status', () => {
  const t = run(initialMachineFor({ notifyPassthrough: false, pidFile: true }), { type: 'child-exit', status: { code: 3, signal: null } });
  assert.equal(t.machine.state, 'reaping');
  assert.deepEqual(t.machine.child, { code: 3, signal: null });
});

test('--pid-file: once adopted, the command exiting is news only; the daemon vanishing ends the run with 75', () => {
  const running = run(initialMachineFor({ notifyPassthrough: false, pidFile: true }), adopted(4242), healthy).machine;
  assert.equal(running.state, 'running');
  const launcher = run(running, { type: 'child-exit', status: { code: 1, signal: null } });
  assert.equal(launcher.machine.state, 'running');
  assert.equal((launcher.effects[0] as { msg: string }).msg, 'the command exited; following the daemon');
  const gone = run(running, { type: 'adopted-exit', pid: 4242 });
  assert.equal(gone.machine.state, 'reaping');
  assert.deepEqual(gone.machine.child, { code: 75, signal: null });
  assert.deepEqual(gone.effects, [
    { type: 'log', level: 'warn', msg: 'the adopted daemon vanished', fields: { adoptedPid: 4242 } },
    { type: 'stop-probing' },
    { type: 'notify', lines: ['STATUS=the adopted daemon (pid 4242) vanished'] },
    { type: 'reap-tree' },
  ]);
});

test("--pid-file: a stop is relayed, and the daemon's exit then is the stop's clean end", () => {
  const running = run(initialMachineFor({ notifyPassthrough: false, pidFile: true }), adopted(4242), healthy).machine;
  const stopping = run(running, { type: 'signal', signal: 'SIGTERM' });
  assert.equal(stopping.machine.state, 'stopping');
  assert.ok(stopping.effects.some((e) => e.type === 'relay' && e.signal === 'SIGTERM'));
  const end = run(stopping.machine, { type: 'adopted-exit', pid: 4242 });
  assert.equal(end.machine.state, 'reaping');
  assert.deepEqual(end.machine.child, { code: 0, signal: null });
  assert.deepEqual(end.effects, [
    { type: 'log', level: 'info', msg: 'the adopted daemon exited', fields: { adoptedPid: 4242 } },
    { type: 'stop-probing' },
    { type: 'watch-tree' },
  ]);
});

test('--pid-file: another pid after a re-read is followed; an adopted-exit of a plain child means nothing', () => {
  const running = run(initialMachineFor({ notifyPassthrough: false, pidFile: true }), adopted(4242), healthy).machine;
  const again = run(running, adopted(5000, 4242));
  assert.equal(again.machine.state, 'running');
  assert.deepEqual(again.effects, [
    {
      type: 'log',
      level: 'info',
      msg: 'the pid file names another process: following it',
      fields: { adoptedPid: 5000, previousPid: 4242 },
    },
  ]);
  assert.deepEqual(run(initialMachine, { type: 'adopted-exit', pid: 1 }).effects, []);
  const self = run(initialMachineFor({ notifyPassthrough: false, pidFile: true }), {
    type: 'adopted',
    pid: 10,
    previous: undefined,
    self: true,
  });
  assert.equal(self.machine.follow, 'child', "the command's own pid: its exit status is read as usual");
});

test('--pid-file: unhealthy or stopped after the command exited and before any adoption: reaped at once, no wait', () => {
  const waiting = run(initialMachineFor({ notifyPassthrough: false, pidFile: true }), {
    type: 'child-exit',
    status: { code: 0, signal: null },
  }).machine;
  const failed = run(waiting, { type: 'unhealthy', reason: '--pid-file /run/x.pid was never written after 2s', action: 'kill' });
  assert.equal(failed.machine.state, 'reaping');
  assert.deepEqual(failed.machine.cause, { kind: 'unhealthy', reason: '--pid-file /run/x.pid was never written after 2s' });
  assert.deepEqual(
    failed.effects.map((e) => e.type),
    ['log', 'notify', 'stop-probing', 'reap-tree'],
  );
  const stopped = run(waiting, { type: 'signal', signal: 'SIGTERM' });
  assert.equal(stopped.machine.state, 'reaping');
  assert.deepEqual(stopped.machine.child, { code: 0, signal: null });
  assert.ok(!stopped.effects.some((e) => e.type === 'relay' || e.type === 'arm-deadline'));
});
