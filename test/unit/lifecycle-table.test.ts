// The transition table cell by cell, log lines included: each state with each kind of event, and the small
// helpers around it. lifecycle.test.ts follows whole stories; this pins every cell a story may not reach.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeStatus,
  finalCause,
  initialMachine,
  RELAYED_SIGNALS,
  STOP_SIGNALS,
  statusText,
  transition,
  type Event,
  type Machine,
  type ProbeView,
  type State,
} from '../../src/lifecycle.js';
import { initialHealth } from '../../src/health.js';

const probeView = (more: Partial<ProbeView> = {}): ProbeView => ({
  description: 'GET /',
  role: 'both',
  failureThreshold: 3,
  freshnessMs: 1000,
  health: initialHealth(0),
  ...more,
});
const ALL_STATES: State[] = ['starting', 'running', 'reloading', 'stopping', 'reaping', 'done'];
const at = (state: State, more: Partial<Machine> = {}): Machine => ({ ...initialMachine, state, ...more });
const exited = { code: 3, signal: null };

test('the signals sdwrap relays, and those that stop it', () => {
  assert.deepEqual(RELAYED_SIGNALS, ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGABRT']);
  assert.deepEqual(STOP_SIGNALS, ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGABRT']);
});

test('healthy: READY=1 from starting ("ready") and from reloading ("reloaded"); nothing elsewhere', () => {
  // READY=1 is the "healthy" STATUS every later one is compared with; the app is healthy from now (5).
  assert.deepEqual(transition(at('starting'), { type: 'healthy', detail: 'GET / passed in 2ms' }, 5), {
    machine: at('running', { statusKey: 'healthy', healthySince: 5 }),
    effects: [
      { type: 'notify', lines: ['READY=1', 'STATUS=healthy: GET / passed in 2ms'] },
      { type: 'log', level: 'info', msg: 'ready', fields: { detail: 'GET / passed in 2ms' } },
    ],
  });
  assert.deepEqual(transition(at('reloading', { healthySince: 1, reloadMark: 7 }), { type: 'healthy', detail: 'reloaded' }, 9), {
    machine: at('running', { statusKey: 'healthy', healthySince: 1 }),
    effects: [
      { type: 'notify', lines: ['READY=1', 'STATUS=healthy: reloaded'] },
      { type: 'log', level: 'info', msg: 'reloaded', fields: { detail: 'reloaded' } },
    ],
  });
  for (const state of ['running', 'stopping', 'reaping', 'done'] as State[]) {
    const m = at(state);
    assert.deepEqual(transition(m, { type: 'healthy', detail: 'x' }), { machine: m, effects: [] }, state);
  }
});

test('unhealthy: acted on while starting, running or reloading; the kill and the watchdog trigger, with their log lines', () => {
  for (const state of ['starting', 'running', 'reloading'] as State[]) {
    assert.deepEqual(
      transition(at(state), { type: 'unhealthy', reason: 'hung', action: 'kill' }),
      {
        machine: at('stopping', { cause: { kind: 'unhealthy', reason: 'hung' } }),
        effects: [
          { type: 'log', level: 'error', msg: 'unhealthy: killing the child', fields: { reason: 'hung' } },
          { type: 'notify', lines: ['STATUS=unhealthy, killing the app: hung'] },
          { type: 'stop-probing' },
          { type: 'terminate-tree' },
          { type: 'arm-deadline' },
        ],
      },
      state,
    );
    assert.deepEqual(
      transition(at(state), { type: 'unhealthy', reason: 'hung', action: 'watchdog' }),
      {
        machine: at('stopping', { cause: { kind: 'unhealthy', reason: 'hung' } }),
        effects: [
          { type: 'log', level: 'error', msg: "unhealthy: triggering systemd's watchdog", fields: { reason: 'hung' } },
          { type: 'notify', lines: ['WATCHDOG=trigger', 'STATUS=unhealthy, watchdog triggered: hung'] },
          { type: 'stop-probing' },
          { type: 'arm-deadline' },
        ],
      },
      state,
    );
  }
  for (const state of ['stopping', 'reaping', 'done'] as State[]) {
    const m = at(state);
    assert.deepEqual(transition(m, { type: 'unhealthy', reason: 'late', action: 'kill' }), { machine: m, effects: [] }, state);
  }
});

test('a stop signal in each state: relayed and logged where the app runs, remembered (and logged) where it is gone', () => {
  for (const state of ['starting', 'running', 'reloading'] as State[]) {
    assert.deepEqual(
      transition(at(state), { type: 'signal', signal: 'SIGINT' }),
      {
        machine: at('stopping', { cause: { kind: 'signal', signal: 'SIGINT' }, stopRequested: 'SIGINT' }),
        effects: [
          { type: 'relay', signal: 'SIGINT' },
          { type: 'log', level: 'info', msg: 'stopping: signal relayed', fields: { signal: 'SIGINT' } },
          { type: 'notify', lines: ['STOPPING=1', 'STATUS=stopping on SIGINT'] },
          { type: 'stop-probing' },
          { type: 'arm-deadline' },
        ],
      },
      state,
    );
  }
  const stopping = at('stopping', { cause: { kind: 'unhealthy', reason: 'hung' } });
  assert.deepEqual(transition(stopping, { type: 'signal', signal: 'SIGQUIT' }), {
    machine: { ...stopping, stopRequested: 'SIGQUIT' },
    effects: [
      { type: 'relay', signal: 'SIGQUIT' },
      { type: 'log', level: 'info', msg: 'signal relayed', fields: { signal: 'SIGQUIT' } },
    ],
  });
  for (const state of ['reaping', 'done'] as State[]) {
    assert.deepEqual(
      transition(at(state, { child: exited }), { type: 'signal', signal: 'SIGTERM' }),
      {
        machine: at(state, { child: exited, stopRequested: 'SIGTERM' }),
        effects: [
          { type: 'log', level: 'info', msg: 'stopping: signal received while the app was exiting', fields: { signal: 'SIGTERM' } },
        ],
      },
      state,
    );
    // Any other signal then: nothing at all.
    const m = at(state, { child: exited });
    assert.deepEqual(transition(m, { type: 'signal', signal: 'SIGUSR1' }), { machine: m, effects: [] }, state);
  }
});

test('the first stop signal is the one remembered; other signals never count as a stop asked for', () => {
  let m = at('reaping', { child: exited });
  m = transition(m, { type: 'signal', signal: 'SIGINT' }).machine;
  m = transition(m, { type: 'signal', signal: 'SIGTERM' }).machine;
  assert.equal(m.stopRequested, 'SIGINT');
  for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const) {
    for (const state of ALL_STATES)
      assert.equal(transition(at(state), { type: 'signal', signal }).machine.stopRequested, undefined, `${signal} in ${state}`);
  }
});

test('SIGHUP: a reload once READY stands, a plain relay before it and while reloading', () => {
  // Only probe runs that start after the SIGHUP (reloadMark) can end the reload.
  const withProbe = { probes: [probeView()] };
  assert.deepEqual(transition(at('running', withProbe), { type: 'signal', signal: 'SIGHUP' }, 42), {
    machine: at('reloading', { ...withProbe, statusKey: 'reloading', reloadMark: 42 }),
    effects: [
      { type: 'notify-reloading' },
      { type: 'relay', signal: 'SIGHUP' },
      { type: 'log', level: 'info', msg: 'reloading: SIGHUP relayed', fields: { signal: 'SIGHUP' } },
    ],
  });
  for (const state of ['starting', 'reloading', 'stopping'] as State[]) {
    assert.deepEqual(
      transition(at(state), { type: 'signal', signal: 'SIGHUP' }),
      {
        machine: at(state),
        effects: [
          { type: 'relay', signal: 'SIGHUP' },
          { type: 'log', level: 'info', msg: 'signal relayed', fields: { signal: 'SIGHUP' } },
        ],
      },
      state,
    );
  }
});

test('the deadline: SIGKILL for the tree while stopping or reaping, each with its warning; nothing before a stop', () => {
  assert.deepEqual(transition(at('stopping'), { type: 'deadline' }).effects, [
    { type: 'log', level: 'warn', msg: 'stop timeout reached: killing the tree' },
    { type: 'kill-tree' },
  ]);
  assert.deepEqual(transition(at('reaping'), { type: 'deadline' }).effects, [
    { type: 'log', level: 'warn', msg: 'leftover processes did not exit: killing them' },
    { type: 'kill-tree' },
  ]);
  for (const state of ['starting', 'running', 'reloading', 'done'] as State[]) {
    const m = at(state);
    assert.deepEqual(transition(m, { type: 'deadline' }), { machine: m, effects: [] }, state);
  }
});

test('the child exiting: a warning when nobody asked, info when sdwrap stopped it; once only', () => {
  assert.deepEqual(transition(at('running'), { type: 'child-exit', status: exited }), {
    machine: at('reaping', { child: exited }),
    effects: [
      { type: 'log', level: 'warn', msg: 'child exited', fields: { code: 3 } },
      { type: 'stop-probing' },
      { type: 'notify', lines: ['STATUS=app exited with code 3'] },
      { type: 'reap-tree' },
    ],
  });
  const stopping = at('stopping', { cause: { kind: 'signal', signal: 'SIGTERM' }, stopRequested: 'SIGTERM' });
  const killed = { code: null, signal: 'SIGTERM' as const };
  assert.deepEqual(transition(stopping, { type: 'child-exit', status: killed }), {
    machine: { ...stopping, state: 'reaping', child: killed },
    effects: [
      { type: 'log', level: 'info', msg: 'child exited', fields: { signal: 'SIGTERM' } },
      { type: 'stop-probing' },
      { type: 'watch-tree' },
    ],
  });
  for (const state of ['reaping', 'done'] as State[]) {
    const m = at(state, { child: exited });
    assert.deepEqual(transition(m, { type: 'child-exit', status: { code: 0, signal: null } }), { machine: m, effects: [] }, state);
  }
});

test('the tree gone: exit only from reaping', () => {
  assert.deepEqual(transition(at('reaping', { child: exited }), { type: 'tree-gone' }), {
    machine: at('done', { child: exited }),
    effects: [{ type: 'disarm-deadline' }, { type: 'exit' }],
  });
  for (const state of ['starting', 'running', 'reloading', 'stopping', 'done'] as State[]) {
    const m = at(state);
    assert.deepEqual(transition(m, { type: 'tree-gone' } as Event), { machine: m, effects: [] }, state);
  }
});

test("finalCause: a stop asked for wins over an unhealthy kill, except systemd's SIGABRT; otherwise the cause", () => {
  assert.equal(finalCause(at('done')), undefined);
  assert.deepEqual(finalCause(at('done', { stopRequested: 'SIGTERM' })), { kind: 'signal', signal: 'SIGTERM' });
  assert.deepEqual(finalCause(at('done', { cause: { kind: 'unhealthy', reason: 'r' }, stopRequested: 'SIGINT' })), {
    kind: 'signal',
    signal: 'SIGINT',
  });
  assert.deepEqual(finalCause(at('done', { cause: { kind: 'unhealthy', reason: 'r' }, stopRequested: 'SIGABRT' })), {
    kind: 'unhealthy',
    reason: 'r',
  });
  assert.deepEqual(finalCause(at('done', { cause: { kind: 'unhealthy', reason: 'r' } })), { kind: 'unhealthy', reason: 'r' });
});

test('how a child status reads', () => {
  assert.equal(statusText({ code: 3, signal: null }), 'exited with code 3');
  assert.equal(statusText({ code: null, signal: 'SIGKILL' }), 'was killed by SIGKILL');
  assert.deepEqual(describeStatus({ code: 3, signal: null }), { code: 3 });
  assert.deepEqual(describeStatus({ code: null, signal: 'SIGKILL' }), { signal: 'SIGKILL' });
});
