// The policy, asked as questions: "what does sdwrap do when X arrives in state Y?", each answered by the
// effects the transition table lists. Every row is one situation; the whole policy (readiness gating, the
// gated watchdog, readiness lost after READY, reloads, the start period, heartbeats, log symptoms) is here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialHealth, type HealthState, type ProbeResult } from '../../src/health.js';
import {
  dueEvents,
  initialMachine,
  newMachine,
  nextDue,
  transition,
  type Effect,
  type Event,
  type Machine,
  type ProbeView,
  type RunFacts,
} from '../../src/lifecycle.js';

const FACTS: RunFacts = {
  startPeriodMs: 0,
  onUnhealthy: 'kill',
  heartbeat: false,
  heartbeatEveryMs: 60_000,
  watchdogMs: 3000,
  extendSlackMs: undefined,
  gates: [],
  pidFile: false,
  notifying: true,
};

const healthy = (lastSuccessAt: number, latency = 2): HealthState => ({
  ...initialHealth(0),
  status: 'healthy',
  successes: 1,
  lastSuccessAt,
  lastLatencyMs: latency,
});
const failing = (failures: number, lastSuccessAt?: number): HealthState => ({
  ...initialHealth(0),
  status: lastSuccessAt === undefined ? 'starting' : 'healthy',
  failures,
  lastSuccessAt,
  lastError: 'HTTP 503',
});

const probe = (description: string, role: ProbeView['role'], health: HealthState = initialHealth(0)): ProbeView => ({
  description,
  role,
  failureThreshold: 3,
  freshnessMs: 1000,
  health,
});

/** A run with the given facts and probes, in `state`. */
function at(state: Machine['state'], probes: ProbeView[], facts: Partial<RunFacts> = {}, more: Partial<Machine> = {}): Machine {
  return { ...newMachine({ ...FACTS, ...facts }, probes, 0), state, ...more };
}

const ok = (at: number, latencyMs = 2): ProbeResult => ({ ok: true, at, latencyMs, detail: 'HTTP 200' });
const bad = (at: number): ProbeResult => ({ ok: false, at, latencyMs: 5, detail: 'HTTP 503' });

/** Effects in a line each, logs by level and message (debug lines left out): what a reader of the table wants. */
function told(effects: readonly Effect[]): string[] {
  return effects
    .filter((e) => !(e.type === 'log' && e.level === 'debug'))
    .map((e) => {
      switch (e.type) {
        case 'notify':
          return `notify ${e.lines.join('|')}`;
        case 'log':
          return `${e.level} ${e.msg}`;
        case 'relay':
          return `relay ${e.signal}`;
        case 'heartbeat':
          return e.ping === 'fail' ? `heartbeat fail: ${e.reason}` : `heartbeat ${e.ping}`;
        default:
          return e.type;
      }
    });
}

interface Row {
  question: string;
  machine: Machine;
  event: Event;
  now: number;
  effects: string[];
  state?: Machine['state'];
}

const web = (health?: HealthState) => probe('GET /', 'liveness', health);
const db = (health?: HealthState) => probe('TCP db:5432', 'readiness', health);

const rows: Row[] = [
  {
    question: 'readiness gating: one probe passes while another has not: no READY=1',
    machine: at('starting', [web(), db()]),
    event: { type: 'probe', index: 0, result: ok(100), health: healthy(100), verdict: { status: 'healthy' } },
    now: 100,
    effects: [],
    state: 'starting',
  },
  {
    question: 'readiness gating: the last probe passes: READY=1, with what passed',
    machine: at('starting', [web(healthy(100)), db()]),
    event: { type: 'probe', index: 1, result: ok(150), health: healthy(150), verdict: { status: 'healthy' } },
    now: 150,
    effects: ['notify READY=1|STATUS=healthy: all 2 probes passed', 'info ready'],
    state: 'running',
  },
  {
    question: 'a watchdog tick while every liveness probe is fresh: WATCHDOG=1',
    machine: at('running', [web(healthy(9500)), db(failing(5, 1))]),
    event: { type: 'watchdog-tick' },
    now: 10_000,
    effects: ['ping-watchdog'],
  },
  {
    question: 'a watchdog tick while one liveness probe is stale: no WATCHDOG=1 (a readiness probe failing does not matter)',
    machine: at('running', [web(healthy(8000)), probe('GET /live', 'both', healthy(9900))]),
    event: { type: 'watchdog-tick' },
    now: 10_000,
    effects: [],
  },
  {
    question: 'a watchdog tick before READY=1: no WATCHDOG=1, however fresh the probes',
    machine: at('starting', [web(healthy(9990))]),
    event: { type: 'watchdog-tick' },
    now: 10_000,
    effects: [],
  },
  {
    question: 'a watchdog tick while stopping: no WATCHDOG=1',
    machine: at('stopping', [web(healthy(9990))], {}, { cause: { kind: 'signal', signal: 'SIGTERM' } }),
    event: { type: 'watchdog-tick' },
    now: 10_000,
    effects: [],
  },
  {
    question: 'SIGTERM during the start period while a probe is in flight: relay, STOPPING=1, probing stops, the deadline',
    machine: at('starting', [web()], { startPeriodMs: 60_000 }, { due: { 'start-period-over': 60_000 } }),
    event: { type: 'signal', signal: 'SIGTERM' },
    now: 2000,
    effects: [
      'relay SIGTERM',
      'info stopping: signal relayed',
      'notify STOPPING=1|STATUS=stopping on SIGTERM',
      'stop-probing',
      'arm-deadline',
    ],
    state: 'stopping',
  },
  {
    question: 'SIGHUP while reloading: relayed, and the reload goes on (READY=1 waits for fresh probes still)',
    machine: at('reloading', [web(healthy(100))], {}, { reloadMark: 500 }),
    event: { type: 'signal', signal: 'SIGHUP' },
    now: 600,
    effects: ['relay SIGHUP', 'info signal relayed'],
    state: 'reloading',
  },
  {
    question: 'reloading: a success from a run that started before the SIGHUP does not end the reload',
    machine: at('reloading', [web(healthy(100))], {}, { reloadMark: 500 }),
    event: { type: 'probe', index: 0, result: ok(510, 20), health: healthy(510, 20), verdict: undefined },
    now: 510,
    effects: [],
    state: 'reloading',
  },
  {
    question: 'reloading: a success from a run that started just after the SIGHUP, before the app can have handled it: no READY=1 yet',
    machine: at('reloading', [web(healthy(100))], {}, { reloadMark: 500 }),
    event: { type: 'probe', index: 0, result: ok(620, 20), health: healthy(620, 20), verdict: undefined },
    now: 620,
    effects: [],
    state: 'reloading',
  },
  {
    question: 'reloading: a success from a run that started RELOAD_SETTLE_MS or more after the SIGHUP: READY=1 again',
    machine: at('reloading', [web(healthy(100))], {}, { reloadMark: 500 }),
    event: { type: 'probe', index: 0, result: ok(720, 20), health: healthy(720, 20), verdict: undefined },
    now: 720,
    effects: ['notify READY=1|STATUS=healthy: reloaded, GET / passed in 20ms', 'info reloaded'],
    state: 'running',
  },
  {
    question: 'readiness lost after READY: STATUS says so, the app is not killed',
    machine: at('running', [web(healthy(900)), db(failing(2, 500))]),
    event: { type: 'probe', index: 1, result: bad(1000), health: failing(3, 500), verdict: { status: 'unhealthy', reason: '3 failures' } },
    now: 1000,
    effects: [
      'warn probe failed',
      'notify STATUS=failing 3/3: TCP db:5432: HTTP 503',
      'warn not ready (readiness probe failing; not restarting)',
      'notify STATUS=not ready: TCP db:5432: 3 failures',
    ],
    state: 'running',
  },
  {
    question: 'liveness lost after READY: the tree is killed',
    machine: at('running', [web(failing(2, 500))]),
    event: { type: 'probe', index: 0, result: bad(1000), health: failing(3, 500), verdict: { status: 'unhealthy', reason: '3 failures' } },
    now: 1000,
    effects: [
      'warn probe failed',
      'notify STATUS=failing 3/3: GET /: HTTP 503',
      'error unhealthy: killing the child',
      'notify STATUS=unhealthy, killing the app: GET /: 3 failures',
      'stop-probing',
      'terminate-tree',
      'arm-deadline',
    ],
    state: 'stopping',
  },
  {
    question: 'never ready with no start period: killed, with the hint',
    machine: at('starting', [db(failing(2))]),
    event: { type: 'probe', index: 0, result: bad(1000), health: failing(3), verdict: { status: 'unhealthy', reason: '3 failures' } },
    now: 1000,
    effects: [
      'warn probe failed',
      'notify STATUS=failing 3/3: TCP db:5432: HTTP 503',
      'error unhealthy: killing the child',
      'notify STATUS=unhealthy, killing the app: TCP db:5432: never ready: 3 failures; if the app needs time to start, set --start-period',
      'stop-probing',
      'terminate-tree',
      'arm-deadline',
    ],
    state: 'stopping',
  },
  {
    question: 'the start period ends with a probe not ready: unhealthy (readiness fails closed), naming it',
    machine: at('starting', [web(healthy(10)), db(failing(0))], { startPeriodMs: 30_000 }, { due: { 'start-period-over': 30_000 } }),
    event: { type: 'start-period-over' },
    now: 30_000,
    effects: [
      'error unhealthy: killing the child',
      'notify STATUS=unhealthy, killing the app: not ready by the end of the start period (30s): TCP db:5432 (last: HTTP 503); if the app needs longer to start, raise --start-period',
      'stop-probing',
      'terminate-tree',
      'arm-deadline',
    ],
    state: 'stopping',
  },
  {
    question: 'the start period ends after READY: nothing',
    machine: at('running', [web(healthy(10))], { startPeriodMs: 30_000 }),
    event: { type: 'start-period-over' },
    now: 30_000,
    effects: [],
  },
  {
    question: 'an extend tick while starting: EXTEND_TIMEOUT_USEC= for what is left (at most 10 s) plus the slack',
    machine: at('starting', [web()], { startPeriodMs: 120_000, extendSlackMs: 3000 }),
    event: { type: 'extend-tick' },
    now: 115_000,
    effects: ['notify EXTEND_TIMEOUT_USEC=8000000'],
  },
  {
    question: 'a log symptom storm while running: unhealthy, and the heartbeat hears it first',
    machine: at('running', [web(healthy(10))], { heartbeat: true }),
    event: { type: 'symptom', reason: '6 lines matched /deadline/ within 1min (at most 5)' },
    now: 1000,
    effects: [
      'heartbeat fail: 6 lines matched /deadline/ within 1min (at most 5)',
      'error unhealthy: killing the child',
      'notify STATUS=unhealthy, killing the app: 6 lines matched /deadline/ within 1min (at most 5)',
      'stop-probing',
      'terminate-tree',
      'arm-deadline',
    ],
    state: 'stopping',
  },
  {
    question: 'a log symptom storm while the app is being stopped: nothing (no news)',
    machine: at('stopping', [web(healthy(10))], { heartbeat: true }, { cause: { kind: 'signal', signal: 'SIGTERM' } }),
    event: { type: 'symptom', reason: 'storm' },
    now: 1000,
    effects: [],
  },
  {
    question: '--on-unhealthy watchdog: WATCHDOG=trigger instead of a kill',
    machine: at('running', [web(failing(2, 500))], { onUnhealthy: 'watchdog' }),
    event: { type: 'probe', index: 0, result: bad(1000), health: failing(3, 500), verdict: { status: 'unhealthy', reason: '3 failures' } },
    now: 1000,
    effects: [
      'warn probe failed',
      'notify STATUS=failing 3/3: GET /: HTTP 503',
      "error unhealthy: triggering systemd's watchdog",
      'notify WATCHDOG=trigger|STATUS=unhealthy, watchdog triggered: GET /: 3 failures',
      'stop-probing',
      'arm-deadline',
    ],
    state: 'stopping',
  },
  {
    question: 'heartbeat: a vouched success pings ok',
    machine: at('running', [web(healthy(900))], { heartbeat: true }, { statusKey: 'healthy' }),
    event: { type: 'probe', index: 0, result: ok(1000), health: healthy(1000), verdict: undefined },
    now: 1000,
    effects: ['heartbeat ok'],
  },
  {
    question: 'heartbeat: a success of a readiness probe while a liveness probe is stale: no ping',
    machine: at('running', [web(healthy(100)), db(healthy(900))], { heartbeat: true }, { statusKey: 'healthy' }),
    event: { type: 'probe', index: 1, result: ok(5000), health: healthy(5000), verdict: undefined },
    now: 5000,
    effects: [],
  },
  {
    question: 'heartbeat: the app ended on its own and its tree is gone: a fail ping, then exit',
    machine: at('reaping', [], { heartbeat: true }, { child: { code: 3, signal: null } }),
    event: { type: 'tree-gone' },
    now: 5000,
    effects: ['heartbeat fail: app exited with code 3', 'disarm-deadline', 'exit'],
    state: 'done',
  },
  {
    question: 'recovered: back from failing, every probe clear: STATUS says healthy again, once',
    machine: at('running', [web(healthy(500))], {}, { statusKey: 'failing GET / 1' }),
    event: { type: 'probe', index: 0, result: ok(1000, 4), health: healthy(1000, 4), verdict: undefined },
    now: 1000,
    effects: ['info probe recovered', 'notify STATUS=healthy: GET / passed in 4ms'],
  },
  {
    question: 'a probe result after the app exited: nothing',
    machine: at('reaping', [web(healthy(500))], {}, { child: { code: 1, signal: null } }),
    event: { type: 'probe', index: 0, result: bad(1000), health: failing(3, 500), verdict: { status: 'unhealthy', reason: 'x' } },
    now: 1000,
    effects: [],
  },
];

for (const row of rows) {
  test(row.question, () => {
    const { machine, effects } = transition(row.machine, row.event, row.now);
    assert.deepEqual(told(effects), row.effects);
    assert.equal(machine.state, row.state ?? row.machine.state);
  });
}

test('started: with probes, STATUS names them and probing starts; the watchdog, start period and extensions are scheduled', () => {
  const m = newMachine({ ...FACTS, startPeriodMs: 60_000, extendSlackMs: 2000 }, [web(), db()], 100);
  const { machine, effects } = transition(m, { type: 'started' }, 100);
  assert.deepEqual(told(effects), [
    'notify STATUS=starting: waiting for GET /, TCP db:5432 (start period 1min, start timeout extended)',
    'start-probes',
    'info systemd watchdog on',
    'notify EXTEND_TIMEOUT_USEC=12000000',
  ]);
  assert.deepEqual(machine.due, { 'watchdog-tick': 1600, 'start-period-over': 60_100, 'extend-tick': 5100 });
  assert.equal(nextDue(machine), 1600);
  assert.deepEqual(dueEvents(machine, 5100), [{ type: 'extend-tick' }, { type: 'watchdog-tick' }]);
});

test('started with no probe: READY=1 at once, heartbeat start, and heartbeat ticks instead of probe successes', () => {
  const m = newMachine({ ...FACTS, watchdogMs: undefined, heartbeat: true }, [], 0);
  const { machine, effects } = transition(m, { type: 'started' }, 0);
  assert.deepEqual(told(effects), ['heartbeat start', 'notify READY=1|STATUS=healthy: no probe configured, app started', 'info ready']);
  assert.deepEqual(machine.due, { 'heartbeat-tick': 60_000 });
  const tick = transition(machine, { type: 'heartbeat-tick' }, 60_000);
  assert.deepEqual(told(tick.effects), ['heartbeat ok']);
  assert.deepEqual(tick.machine.due, { 'heartbeat-tick': 120_000 });
});

test('the watchdog keeps its cadence: each tick is due a half period after the last was due, not after it ran', () => {
  let m = transition(newMachine(FACTS, [web()], 0), { type: 'started' }, 0).machine;
  assert.equal(m.due['watchdog-tick'], 1500);
  m = transition(m, { type: 'watchdog-tick' }, 1530).machine;
  assert.equal(m.due['watchdog-tick'], 3000);
  // Far behind (the event loop was blocked): the next one is a half period from now, not a burst.
  m = transition(m, { type: 'watchdog-tick' }, 9000).machine;
  assert.equal(m.due['watchdog-tick'], 10_500);
});

test('leaving the live states: nothing is due any more, and how long the app was healthy is kept', () => {
  let m = transition(newMachine({ ...FACTS, startPeriodMs: 10_000 }, [web()], 0), { type: 'started' }, 0).machine;
  m = transition(m, { type: 'probe', index: 0, result: ok(400), health: healthy(400), verdict: { status: 'healthy' } }, 400).machine;
  assert.equal(m.state, 'running');
  assert.deepEqual(Object.keys(m.due), ['watchdog-tick'], 'the start period is over once READY=1 is out');
  m = transition(m, { type: 'signal', signal: 'SIGTERM' }, 5400).machine;
  assert.deepEqual(m.due, {});
  assert.equal(m.healthyForMs, 5000);
  assert.equal(nextDue(m), undefined);
});

test('a reload with no probe is over at once', () => {
  const { machine, effects } = transition({ ...initialMachine, state: 'running' }, { type: 'reload-request' }, 10);
  assert.deepEqual(told(effects), [
    'notify STATUS=reloading: SIGHUP relayed (sdwrap reload), waiting for the probes',
    'relay SIGHUP',
    'info reloading: SIGHUP relayed',
    'notify READY=1|STATUS=healthy: reloaded (no probe configured)',
    'info reloaded',
  ]);
  assert.equal(machine.state, 'running');
});
