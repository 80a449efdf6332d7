// The transition table for legacy apps, asked as questions like lifecycle-policy.test.ts: READY=1
// gated by the app's own READY=1 (--notify-passthrough) and by the pid file (--pid-file); the app's own
// watchdog ANDed with the probes; the command's exit 0 while a daemon is awaited; the adopted daemon's end;
// a stop or an unhealthy pid file once the command is gone and nothing was adopted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialHealth, type HealthState } from '../../src/health.js';
import { newMachine, transition, type Effect, type Event, type Machine, type ProbeView, type RunFacts } from '../../src/lifecycle.js';

const FACTS: RunFacts = {
  startPeriodMs: 0,
  onUnhealthy: 'kill',
  heartbeat: false,
  heartbeatEveryMs: 60_000,
  watchdogMs: 2000,
  extendSlackMs: undefined,
  gates: [],
  pidFile: false,
  notifying: true,
};
const PASSTHROUGH: Partial<RunFacts> = { gates: ['app-ready'] };
const PID_FILE: Partial<RunFacts> = { gates: ['adoption'], pidFile: true };

const healthy = (lastSuccessAt: number): HealthState => ({
  ...initialHealth(0),
  status: 'healthy',
  successes: 1,
  lastSuccessAt,
  lastLatencyMs: 2,
});
const web = (health: HealthState = initialHealth(0)): ProbeView => ({
  description: 'GET /',
  role: 'both',
  failureThreshold: 3,
  freshnessMs: 1000,
  health,
});
const passes = (now: number): Event => ({
  type: 'probe',
  index: 0,
  result: { ok: true, at: now, latencyMs: 2, detail: 'HTTP 200' },
  health: healthy(now),
  verdict: { status: 'healthy' },
});

function at(state: Machine['state'], facts: Partial<RunFacts>, more: Partial<Machine> = {}, probes = [web()]): Machine {
  return { ...newMachine({ ...FACTS, ...facts }, probes, 0), state, ...more };
}

/** Effects in a line each (debug lines left out). */
function told(effects: readonly Effect[]): string[] {
  return effects
    .filter((e) => !(e.type === 'log' && e.level === 'debug'))
    .map((e) => {
      if (e.type === 'notify') return `notify ${e.lines.join('|')}`;
      if (e.type === 'log') return `${e.level} ${e.msg}`;
      if (e.type === 'relay') return `relay ${e.signal}`;
      return e.type;
    });
}

/** Events in order, at the given times: the machine after, and every effect told. */
function story(m: Machine, ...steps: Array<[Event, number]>): { machine: Machine; effects: string[] } {
  const effects: string[] = [];
  for (const [event, now] of steps) {
    const t = transition(m, event, now);
    m = t.machine;
    effects.push(...told(t.effects));
  }
  return { machine: m, effects };
}

const READY = 'notify READY=1|STATUS=healthy: GET / passed in 2ms';

test("--notify-passthrough: READY=1 needs the probes AND the app's READY=1, in either order, once", () => {
  const probesFirst = story(at('starting', PASSTHROUGH), [passes(100), 100], [passes(200), 200]);
  assert.equal(probesFirst.machine.state, 'starting');
  assert.deepEqual(probesFirst.effects, ["info probes passed; READY=1 waits for the app's READY=1"], 'said once');
  const then = story(probesFirst.machine, [{ type: 'app-ready' }, 300]);
  assert.equal(then.machine.state, 'running');
  assert.deepEqual(then.effects, ['info the app said READY=1', READY, 'info ready']);

  const appFirst = story(at('starting', PASSTHROUGH), [{ type: 'app-ready' }, 50]);
  assert.equal(appFirst.machine.state, 'starting', "the app's READY=1 alone is not enough");
  const both = story(appFirst.machine, [passes(100), 100], [{ type: 'app-ready' }, 150]);
  assert.equal(both.machine.state, 'running');
  assert.deepEqual(both.effects, [READY, 'info ready']);
});

test("--notify-passthrough: WATCHDOG=1 only while the app's last ping is fresh AND the probes vouch; a missing ping is a liveness failure", () => {
  const running = at('running', PASSTHROUGH, { app: { ready: true, lastPingAt: 9000 }, gates: [] }, [web(healthy(9900))]);
  assert.deepEqual(story(running, [{ type: 'watchdog-tick' }, 10_000]).effects, ['ping-watchdog'], 'both fresh');
  const pinged = story(running, [{ type: 'app-ping' }, 10_500]).machine;
  assert.equal(pinged.app.lastPingAt, 10_500);
  const stale = story(running, [{ type: 'watchdog-tick' }, 11_001]);
  assert.equal(stale.machine.state, 'stopping');
  assert.deepEqual(stale.effects, [
    'error unhealthy: killing the child',
    "notify STATUS=unhealthy, killing the app: the app's own watchdog: no WATCHDOG=1 from it for 2001ms (its WATCHDOG_USEC is 2000ms)",
    'stop-probing',
    'terminate-tree',
    'arm-deadline',
  ]);
  const probeStale = at('running', PASSTHROUGH, { app: { ready: true, lastPingAt: 9900 }, gates: [] }, [web(healthy(5000))]);
  assert.deepEqual(story(probeStale, [{ type: 'watchdog-tick' }, 10_000]).effects, [], 'the app pings, the probe is stale: no WATCHDOG=1');
  const beforeReady = at('starting', PASSTHROUGH, {}, [web(healthy(9900))]);
  assert.deepEqual(
    story(beforeReady, [{ type: 'watchdog-tick' }, 100_000]).effects,
    [],
    'no ping asked of an app that has not said READY=1',
  );
});

test('--notify-passthrough: WATCHDOG=trigger from the app is honoured as the watchdog action, or a kill without a notifier', () => {
  const running = at('running', PASSTHROUGH, { app: { ready: true, lastPingAt: 0 }, gates: [] });
  assert.deepEqual(story(running, [{ type: 'app-trigger' }, 10]).effects, [
    "error unhealthy: triggering systemd's watchdog",
    'notify WATCHDOG=trigger|STATUS=unhealthy, watchdog triggered: the app sent WATCHDOG=trigger',
    'stop-probing',
    'arm-deadline',
  ]);
  const silent = at('running', { ...PASSTHROUGH, notifying: false }, { app: { ready: true, lastPingAt: 0 }, gates: [] });
  assert.ok(story(silent, [{ type: 'app-trigger' }, 10]).effects.includes('terminate-tree'));
});

test('--pid-file: the command exiting 0 before the pid file is not the end; READY=1 waits for the adoption', () => {
  const forked = story(at('starting', PID_FILE), [{ type: 'child-exit', status: { code: 0, signal: null } }, 10], [passes(100), 100]);
  assert.equal(forked.machine.state, 'starting');
  assert.deepEqual(forked.effects, [
    'info the command exited 0: waiting for the pid file',
    'info probes passed; READY=1 waits for the pid file',
  ]);
  const adopted = story(forked.machine, [{ type: 'adopted', pid: 4242, previous: undefined, self: false }, 200]);
  assert.equal(adopted.machine.state, 'running');
  assert.equal(adopted.machine.follow, 'adopted');
  assert.deepEqual(adopted.effects, ['info adopted the daemon named by the pid file', READY, 'info ready']);
});

test('--pid-file: the command failing before the pid file is the failure, with its status', () => {
  const failed = story(at('starting', PID_FILE), [{ type: 'child-exit', status: { code: 3, signal: null } }, 10]);
  assert.equal(failed.machine.state, 'reaping');
  assert.deepEqual(failed.machine.child, { code: 3, signal: null });
});

test('--pid-file: once adopted, the command exiting is news only; the daemon vanishing ends the run with 75', () => {
  const running = at('running', PID_FILE, { follow: 'adopted', gates: [] });
  const launcher = story(running, [{ type: 'child-exit', status: { code: 1, signal: null } }, 10]);
  assert.equal(launcher.machine.state, 'running');
  assert.deepEqual(launcher.effects, ['info the command exited; following the daemon']);
  const gone = story(running, [{ type: 'adopted-exit', pid: 4242 }, 20]);
  assert.equal(gone.machine.state, 'reaping');
  assert.deepEqual(gone.machine.child, { code: 75, signal: null });
  assert.deepEqual(gone.effects, [
    'warn the adopted daemon vanished',
    'stop-probing',
    'notify STATUS=the adopted daemon (pid 4242) vanished',
    'reap-tree',
  ]);
});

test("--pid-file: a stop is relayed, and the daemon's exit is then the stop's clean end", () => {
  const stopping = story(at('running', PID_FILE, { follow: 'adopted', gates: [] }), [{ type: 'signal', signal: 'SIGTERM' }, 10]);
  assert.equal(stopping.machine.state, 'stopping');
  assert.ok(stopping.effects.includes('relay SIGTERM'));
  const end = story(stopping.machine, [{ type: 'adopted-exit', pid: 4242 }, 20]);
  assert.equal(end.machine.state, 'reaping');
  assert.deepEqual(end.machine.child, { code: 0, signal: null });
  assert.deepEqual(end.effects, ['info the adopted daemon exited', 'stop-probing', 'watch-tree']);
});

test('--pid-file: a reload done re-reads the pid file; another pid is followed; the command as its own daemon stays a child', () => {
  const reloaded = story(at('reloading', PID_FILE, { follow: 'adopted', gates: [], reloadMark: 0 }), [passes(300), 300]);
  assert.equal(reloaded.machine.state, 'running');
  assert.equal(reloaded.effects.at(-1), 'reread-pid-file');
  const again = story(at('running', PID_FILE, { follow: 'adopted', gates: [] }), [
    { type: 'adopted', pid: 5000, previous: 4242, self: false },
    10,
  ]);
  assert.deepEqual(again.effects, ['info the pid file names another process: following it']);
  const self = story(at('starting', PID_FILE), [{ type: 'adopted', pid: 10, previous: undefined, self: true }, 10]);
  assert.equal(self.machine.follow, 'child', "the command's own pid: its exit status is read as usual");
  assert.deepEqual(story(at('running', FACTS), [{ type: 'adopted-exit', pid: 1 }, 10]).effects, [], 'no daemon adopted: nothing');
});

test('--pid-file: unhealthy or stopped after the command exited and before any adoption: reaped at once, no wait', () => {
  const waiting = at('starting', PID_FILE, { commandExit: { code: 0, signal: null } });
  const failed = story(waiting, [{ type: 'pid-file-failed', reason: '--pid-file /run/x.pid was never written after 2s' }, 2000]);
  assert.equal(failed.machine.state, 'reaping');
  assert.deepEqual(failed.machine.cause, { kind: 'unhealthy', reason: '--pid-file /run/x.pid was never written after 2s' });
  assert.deepEqual(failed.effects, [
    'error unhealthy: killing the child',
    'notify STATUS=unhealthy, killing the app: --pid-file /run/x.pid was never written after 2s',
    'stop-probing',
    'reap-tree',
  ]);
  const stopped = story(waiting, [{ type: 'signal', signal: 'SIGTERM' }, 10]);
  assert.equal(stopped.machine.state, 'reaping');
  assert.deepEqual(stopped.machine.child, { code: 0, signal: null });
  assert.ok(!stopped.effects.includes('relay SIGTERM') && !stopped.effects.includes('arm-deadline'));
  const triggered = story(at('starting', { ...PID_FILE, onUnhealthy: 'watchdog' }, { commandExit: { code: 0, signal: null } }), [
    { type: 'pid-file-failed', reason: 'x' },
    10,
  ]);
  assert.ok(!triggered.effects.some((e) => e.includes('WATCHDOG=trigger')), 'nothing left to trigger the watchdog for');
});

test('the start period ends with the gates closed: unhealthy, naming what READY=1 still waited for', () => {
  const m = at('starting', { ...PASSTHROUGH, startPeriodMs: 5000 }, { pendingReady: { type: 'healthy', detail: 'x' } }, [
    web(healthy(4000)),
  ]);
  const t = story(m, [{ type: 'start-period-over' }, 5000]);
  assert.equal(t.machine.state, 'stopping');
  assert.match(t.effects[1]!, /not ready by the end of the start period \(5s\): the app's READY=1 \(not yet\)/);
});

test("--notify-passthrough: the app's own RELOADING=1: READY=1 again only once it says READY=1 and the probes pass anew", () => {
  const running = at('running', PASSTHROUGH, { app: { ready: true, lastPingAt: 100 }, gates: [] });
  const reloading = story(running, [{ type: 'app-reloading' }, 1000]);
  assert.equal(reloading.machine.state, 'reloading');
  assert.deepEqual(reloading.effects, ['info the app is reloading (RELOADING=1 forwarded)']);
  // A probe run counts for the reload once it started RELOAD_SETTLE_MS (200 ms) after the reload began.
  const probesAgain = story(reloading.machine, [passes(1300), 1300]);
  assert.equal(probesAgain.machine.state, 'reloading', "the probes alone: the app's READY=1 is awaited");
  assert.deepEqual(probesAgain.effects, ["info probes passed; READY=1 waits for the app's READY=1"]);
  const done = story(probesAgain.machine, [{ type: 'app-ready' }, 1400]);
  assert.equal(done.machine.state, 'running');
  assert.deepEqual(done.effects, [
    'info the app said READY=1',
    READY.replace('GET / passed in 2ms', 'reloaded, GET / passed in 2ms'),
    'info reloaded',
  ]);
});
