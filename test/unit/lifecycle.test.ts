import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialHealth } from '../../src/health.js';
import { finalCause, initialMachine, transition, type Event, type Machine } from '../../src/lifecycle.js';

/** A run with one probe: a reload waits for it to pass anew (with none, a reload is over at once). */
const oneProbe: Machine = {
  ...initialMachine,
  probes: [{ description: 'GET /', role: 'both', failureThreshold: 3, freshnessMs: 1000, health: initialHealth(0) }],
};

function run(events: Event[], from: Machine = initialMachine) {
  let machine = from;
  const effects: string[] = [];
  for (const event of events) {
    const t = transition(machine, event);
    machine = t.machine;
    for (const e of t.effects) {
      if (e.type === 'notify') effects.push(`notify ${e.lines.join('|')}`);
      else if (e.type === 'relay') effects.push(`relay ${e.signal}`);
      else if (e.type === 'exit')
        effects.push(`exit ${finalCause(machine)?.kind ?? 'none'} ${machine.child!.code ?? machine.child!.signal}`);
      else if (e.type !== 'log') effects.push(e.type);
    }
  }
  return { machine, effects };
}

test('healthy once: READY=1 is sent exactly once', () => {
  const { machine, effects } = run([
    { type: 'healthy', detail: 'GET / passed in 2ms' },
    { type: 'healthy', detail: 'again' },
  ]);
  assert.equal(machine.state, 'running');
  assert.deepEqual(effects, ['notify READY=1|STATUS=healthy: GET / passed in 2ms']);
});

test('unhealthy: status, stop probing, TERM the tree, arm the deadline; then KILL, reap, exit', () => {
  const { machine, effects } = run([
    { type: 'healthy', detail: 'ok' },
    { type: 'unhealthy', reason: 'timed out', action: 'kill' },
    { type: 'deadline' },
    { type: 'child-exit', status: { code: null, signal: 'SIGKILL' } },
    { type: 'tree-gone' },
  ]);
  assert.equal(machine.state, 'done');
  assert.deepEqual(effects.slice(1), [
    'notify STATUS=unhealthy, killing the app: timed out',
    'stop-probing',
    'terminate-tree',
    'arm-deadline',
    'kill-tree',
    'stop-probing',
    'watch-tree',
    'disarm-deadline',
    'exit unhealthy SIGKILL',
  ]);
});

test('a stop signal: STOPPING=1, relay, deadline; the first cause is kept', () => {
  const { effects, machine } = run([
    { type: 'signal', signal: 'SIGTERM' },
    { type: 'unhealthy', reason: 'late verdict', action: 'kill' },
    { type: 'signal', signal: 'SIGINT' },
    { type: 'child-exit', status: { code: 0, signal: null } },
    { type: 'tree-gone' },
  ]);
  assert.deepEqual(effects, [
    'relay SIGTERM',
    'notify STOPPING=1|STATUS=stopping on SIGTERM',
    'stop-probing',
    'arm-deadline',
    'relay SIGINT',
    'stop-probing',
    'watch-tree',
    'disarm-deadline',
    'exit signal 0',
  ]);
  assert.deepEqual(machine.cause, { kind: 'signal', signal: 'SIGTERM' });
});

test('other signals are relayed and change nothing', () => {
  for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const) {
    // (before READY: a SIGHUP is no reload yet)
    const { machine, effects } = run([{ type: 'signal', signal }]);
    assert.equal(machine.state, 'starting');
    assert.deepEqual(effects, [`relay ${signal}`]);
  }
});

test('the child exiting on its own: STATUS says so, leftovers get TERM and a deadline', () => {
  const { effects, machine } = run([
    { type: 'healthy', detail: 'ok' },
    { type: 'child-exit', status: { code: 3, signal: null } },
    { type: 'signal', signal: 'SIGTERM' },
    { type: 'deadline' },
    { type: 'tree-gone' },
  ]);
  assert.deepEqual(effects.slice(1), [
    'stop-probing',
    'notify STATUS=app exited with code 3',
    'reap-tree',
    'kill-tree',
    'disarm-deadline',
    'exit signal 3',
  ]);
  assert.equal(machine.state, 'done');
});

test('verdicts after a stop began are ignored', () => {
  const { effects } = run([
    { type: 'signal', signal: 'SIGQUIT' },
    { type: 'healthy', detail: 'x' },
    { type: 'unhealthy', reason: 'y', action: 'kill' },
  ]);
  assert.deepEqual(effects, ['relay SIGQUIT', 'notify STOPPING=1|STATUS=stopping on SIGQUIT', 'stop-probing', 'arm-deadline']);
});

test('--on-unhealthy watchdog: WATCHDOG=trigger, stop pinging, and a deadline in case systemd does nothing', () => {
  const { effects, machine } = run([
    { type: 'healthy', detail: 'ok' },
    { type: 'unhealthy', reason: 'hung', action: 'watchdog' },
    { type: 'signal', signal: 'SIGABRT' },
    { type: 'child-exit', status: { code: null, signal: 'SIGABRT' } },
    { type: 'tree-gone' },
  ]);
  assert.deepEqual(effects.slice(1), [
    'notify WATCHDOG=trigger|STATUS=unhealthy, watchdog triggered: hung',
    'stop-probing',
    'arm-deadline',
    'relay SIGABRT',
    'stop-probing',
    'watch-tree',
    'disarm-deadline',
    'exit unhealthy SIGABRT',
  ]);
  assert.equal(machine.state, 'done');
});

test('a reload: SIGHUP after READY sends RELOADING=1, relays, waits for fresh probes, then READY=1 again', () => {
  const { effects, machine } = run(
    [
      { type: 'healthy', detail: 'ok' },
      { type: 'signal', signal: 'SIGHUP' },
      { type: 'signal', signal: 'SIGHUP' },
      { type: 'healthy', detail: 'reloaded' },
    ],
    oneProbe,
  );
  assert.deepEqual(effects.slice(1), ['notify-reloading', 'relay SIGHUP', 'relay SIGHUP', 'notify READY=1|STATUS=healthy: reloaded']);
  assert.equal(machine.state, 'running');
});

test('a reload asked by sdwrap reload: as a SIGHUP, less RELOADING=1 (systemd reloads while ExecReload= runs); asked again, it starts over', () => {
  const { effects, machine } = run(
    [
      { type: 'reload-request' },
      { type: 'healthy', detail: 'ok' },
      { type: 'reload-request' },
      { type: 'reload-request' },
      { type: 'healthy', detail: 'reloaded' },
    ],
    oneProbe,
  );
  const reload = ['notify STATUS=reloading: SIGHUP relayed (sdwrap reload), waiting for the probes', 'relay SIGHUP'];
  // Before READY=1 there is nothing to reload: the control socket refuses, and the table ignores it.
  assert.deepEqual(effects, ['notify READY=1|STATUS=healthy: ok', ...reload, ...reload, 'notify READY=1|STATUS=healthy: reloaded']);
  assert.equal(machine.state, 'running');
  for (const from of [[{ type: 'signal', signal: 'SIGTERM' }], [{ type: 'child-exit', status: { code: 0, signal: null } }]] as Event[][]) {
    const stopping = run([{ type: 'healthy', detail: 'ok' }, ...from, { type: 'reload-request' }]);
    assert.ok(!stopping.effects.includes('relay SIGHUP'), `${from[0]!.type}: ${stopping.effects.join(', ')}`);
  }
});

test('SIGABRT (systemd watchdog) stops like SIGTERM', () => {
  const { effects } = run([
    { type: 'healthy', detail: 'ok' },
    { type: 'signal', signal: 'SIGABRT' },
  ]);
  assert.deepEqual(effects.slice(1), ['relay SIGABRT', 'notify STOPPING=1|STATUS=stopping on SIGABRT', 'stop-probing', 'arm-deadline']);
});

test('a stop signal while the app is already exiting, or after, is remembered (no restart), nothing else', () => {
  for (const late of [[], [{ type: 'tree-gone' } as const]]) {
    const { machine, effects } = run([
      { type: 'child-exit', status: { code: 1, signal: null } },
      ...late,
      { type: 'signal', signal: 'SIGINT' },
    ]);
    assert.deepEqual(finalCause(machine), { kind: 'signal', signal: 'SIGINT' });
    assert.ok(!effects.includes('relay SIGINT'));
  }
});

test("a stop asked for during an unhealthy kill wins (clean stop, no restart); systemd's SIGABRT does not", () => {
  const kill = [
    { type: 'healthy', detail: 'ok' },
    { type: 'unhealthy', reason: 'hung', action: 'kill' },
  ] as const;
  const stopped = run([...kill, { type: 'signal', signal: 'SIGTERM' }]);
  assert.deepEqual(stopped.effects.slice(-1), ['relay SIGTERM']);
  assert.deepEqual(finalCause(stopped.machine), { kind: 'signal', signal: 'SIGTERM' });
  const aborted = run([...kill, { type: 'signal', signal: 'SIGABRT' }]);
  assert.deepEqual(finalCause(aborted.machine), { kind: 'unhealthy', reason: 'hung' });
});
