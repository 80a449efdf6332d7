// The supervisor's whole policy as data: states, events, and one pure transition function that answers
// "what happens when X arrives in state Y". Every input of a run is an event (a probe's result, a log
// symptom, a signal, a clock tick, the child's exit, the end of its tree); every output is an effect
// (notify, log, relay, kill, ping, heartbeat). supervisor.ts feeds the events in and carries the effects out;
// it decides nothing. The rules, and where they live here:
// - readiness gating: READY=1 once every probe is healthy (onProbe -> healthy), fail closed at the start
//   period's end (start-period-over), or at the first verdict with no start period (onVerdict);
// - the gated, fresh watchdog: WATCHDOG=1 on each watchdog-tick only while vouchFor says so (vouch.ts);
// - readiness lost after READY: STATUS only, no restart (onVerdict);
// - reloads: SIGHUP or `sdwrap reload` -> reloading, READY=1 again once every probe passed anew (onProbe);
// - heartbeats: ok on each vouched probe success (or heartbeat-tick with no probe), fail with every verdict.
import type { ProbeRole, UnhealthyAction } from './config.js';
import type { HealthState, ProbeResult, Verdict } from './health.js';
import { formatSpan } from './duration.js';
import { appPing } from './app-notify.js';
import { STATUS, startNote, statusText, type Status } from './status.js';
import { vouchFor } from './vouch.js';

/** The adopted daemon vanished: its status cannot be read (EXIT.APP_VANISHED, errors.ts). */
const EXIT_APP_VANISHED = 75;

export type State =
  /** Child spawned, READY=1 not yet sent. */
  | 'starting'
  /** READY=1 sent; the child is healthy. */
  | 'running'
  /** SIGHUP relayed with RELOADING=1; READY=1 again once the probes pass anew. */
  | 'reloading'
  /** The child was asked to stop (a relayed stop signal, or killed as unhealthy); waiting for it to exit. */
  | 'stopping'
  /** The child has exited; ending whatever is left of its process tree. */
  | 'reaping'
  /** Nothing left: sdwrap exits. */
  | 'done';

/** SIGABRT is what systemd's watchdog sends (WatchdogSignal=): relayed, it gets the hung app's core dump. */
export type StopSignal = 'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGABRT';
export type RelayedSignal = StopSignal | 'SIGHUP' | 'SIGUSR1' | 'SIGUSR2' | 'SIGWINCH';

/** Signals sdwrap relays to the child unchanged; the stop signals also stop it. */
export const RELAYED_SIGNALS: readonly RelayedSignal[] = [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
  'SIGABRT',
];
export const STOP_SIGNALS: readonly StopSignal[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGABRT'];

export type { UnhealthyAction };

export interface ChildStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Extra log fields an event carries to the line it causes: a probe's latencyMs, the startupMs of a start. */
export type LogFields = Record<string, unknown>;

/** What a run knows from its start and never changes. */
export interface RunFacts {
  /** --start-period; 0 for none. */
  readonly startPeriodMs: number;
  /** What an unhealthy verdict does ('watchdog' only where a notifier can send WATCHDOG=trigger). */
  readonly onUnhealthy: UnhealthyAction;
  /** A heartbeat URL is set: start, ok and fail pings go out. */
  readonly heartbeat: boolean;
  /** With no probe, how often the heartbeat vouches for the app. */
  readonly heartbeatEveryMs: number;
  /** WatchdogSec=, when systemd's watchdog is on: WATCHDOG=1 is due every half of it. */
  readonly watchdogMs: number | undefined;
  /** While the start period runs, EXTEND_TIMEOUT_USEC= asks for this much more than what is left of it (the
   * longest probe timeout, the stop timeout, a second): undefined when not extending (no notifier). */
  readonly extendSlackMs: number | undefined;
  /** What READY=1 waits for besides the probes: the app's own READY=1, the daemon's pid file. */
  readonly gates: readonly Gate[];
  /** --pid-file: the command may fork and exit 0; the daemon its pid file names is the app. */
  readonly pidFile: boolean;
  /** A notifier reaches systemd: the app's own WATCHDOG=trigger can go out as one. */
  readonly notifying: boolean;
}

/** What READY=1 waits for besides the probes: the app's READY=1 (--notify-passthrough), the pid file (--pid-file). */
export type Gate = 'app-ready' | 'adoption';
const GATE_TEXT: Record<Gate, string> = { 'app-ready': "the app's READY=1", adoption: 'the pid file' };

/** Which process is the app: the command, or with --pid-file the daemon its pid file names (awaited, then adopted). */
export type Follow = 'child' | 'pid-file' | 'adopted';

/** One probe as the policy sees it: what it is, and its health as its loop last reported. */
export interface ProbeView {
  readonly description: string;
  readonly role: ProbeRole;
  readonly failureThreshold: number;
  /** A success older than this no longer vouches (Timing.freshnessMs). */
  readonly freshnessMs: number;
  readonly health: HealthState;
}

/** When each clock-driven event is next due, in monotonic ms; absent when it is not. */
export interface Due {
  readonly 'watchdog-tick'?: number;
  readonly 'heartbeat-tick'?: number;
  readonly 'start-period-over'?: number;
  readonly 'extend-tick'?: number;
}
type Tick = keyof Due;

export type Event =
  /** The app is spawned: probing and the clock-driven events start. */
  | { type: 'started' }
  /** A probe finished: its result, the health its loop folded it into, and the verdict if the health changed. */
  | { type: 'probe'; index: number; result: ProbeResult; health: HealthState; verdict: Verdict | undefined }
  /** --watch-log: the symptom came more often than allowed. */
  | { type: 'symptom'; reason: string }
  /** The verdicts the rules reach: ready (or reloaded), and unhealthy with what to do about it. */
  | { type: 'healthy'; detail: string; fields?: LogFields }
  | { type: 'unhealthy'; reason: string; action: UnhealthyAction; fields?: LogFields }
  | { type: 'signal'; signal: RelayedSignal }
  | { type: 'child-exit'; status: ChildStatus; fields?: LogFields }
  /** The grace period after SIGTERM (--stop-timeout) ran out. */
  | { type: 'deadline' }
  /** Every process of the child's tree is gone. */
  | { type: 'tree-gone' }
  /**
   * `sdwrap reload` asked over the control socket, as ExecReload=: the reload a SIGHUP starts, less
   * RELOADING=1. systemd is reloading already, until that command exits; after a RELOADING=1 it would go
   * on reloading past a failed `sdwrap reload` until READY=1 (systemd 252 re-enters its reload state).
   * Asked again while reloading (its asker gone), it starts over: SIGHUP again, fresh probes.
   */
  | { type: 'reload-request' }
  /** Time for WATCHDOG=1, if sdwrap vouches (every WatchdogSec/2). */
  | { type: 'watchdog-tick' }
  /** Time for a heartbeat, if sdwrap vouches (with no probe, whose successes would send them). */
  | { type: 'heartbeat-tick' }
  /** The start period is over: an app not ready by now is unhealthy. */
  | { type: 'start-period-over' }
  /** Time to extend systemd's start timeout again. */
  | { type: 'extend-tick' }
  // --notify-passthrough: what the app said on its own notify socket.
  /** The app said READY=1. */
  | { type: 'app-ready' }
  /** The app said WATCHDOG=1. */
  | { type: 'app-ping' }
  /** The app said RELOADING=1 (forwarded as it came): READY=1 again once it says READY=1 and the probes pass anew. */
  | { type: 'app-reloading' }
  /** The app said WATCHDOG=trigger. */
  | { type: 'app-trigger' }
  // --pid-file.
  /** The pid file names a process to follow (first, or another after a re-read); `self`: the command's own pid. */
  | { type: 'adopted'; pid: number; previous: number | undefined; self: boolean }
  /** The adopted daemon is gone (sdwrap is not its parent: no status). */
  | { type: 'adopted-exit'; pid: number; fields?: LogFields }
  /** No usable pid in the pid file in time, or one that can never be right. */
  | { type: 'pid-file-failed'; reason: string };

/** Why sdwrap is ending, recorded once: the first reason wins. */
export type StopCause = { kind: 'signal'; signal: StopSignal } | { kind: 'unhealthy'; reason: string };

export type Effect =
  | { type: 'notify'; lines: string[] }
  /** RELOADING=1 with MONOTONIC_USEC= of the moment, and the STATUS, in one datagram (Type=notify-reloading). */
  | { type: 'notify-reloading' }
  | { type: 'ping-watchdog' }
  | { type: 'heartbeat'; ping: 'start' | 'ok' }
  | { type: 'heartbeat'; ping: 'fail'; reason: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'start-probes' }
  | { type: 'relay'; signal: RelayedSignal }
  /** SIGTERM (then SIGCONT, as systemd does, so a stopped process can act on it) to the child's whole tree. */
  | { type: 'terminate-tree' }
  | { type: 'kill-tree' }
  | { type: 'stop-probing' }
  | { type: 'arm-deadline' }
  | { type: 'disarm-deadline' }
  | { type: 'watch-tree' }
  /** End what is left of the tree after its head exited on its own: nothing left means tree-gone at once;
   * else SIGTERM (+SIGCONT), the deadline, and watch-tree. */
  | { type: 'reap-tree' }
  /** The tree is gone: sdwrap ends by finalCause() and the child's status (read when it does). */
  | { type: 'exit' }
  /** --pid-file: read the pid file again (after a reload: a daemon that re-execs writes a new pid). */
  | { type: 'reread-pid-file' };

export interface Machine {
  readonly state: State;
  readonly cause: StopCause | undefined;
  readonly child: ChildStatus | undefined;
  /** The first stop signal received, in any state: a stop asked for is never lost (nor restarted past). */
  readonly stopRequested: StopSignal | undefined;
  readonly facts: RunFacts;
  readonly probes: readonly ProbeView[];
  /** When the app was spawned. */
  readonly startedAt: number;
  readonly due: Due;
  /** The kind of the last STATUS= sent (see status.ts). */
  readonly statusKey: string;
  /** A reload under way: when its SIGHUP went out. Only probe runs that started after it count. */
  readonly reloadMark: number | undefined;
  /** When READY=1 first went out, and how long the app stayed healthy from then (set once it stops). */
  readonly healthySince: number | undefined;
  readonly healthyForMs: number;
  /** Gates READY=1 still waits for (facts.gates at first). */
  readonly gates: readonly Gate[];
  /** The probes passed while a gate was closed: READY=1 goes out with this once the gates open. */
  readonly pendingReady: Extract<Event, { type: 'healthy' }> | undefined;
  readonly follow: Follow;
  /** --pid-file: the command's exit while the pid file was awaited; with nothing adopted, nothing is left to stop. */
  readonly commandExit: ChildStatus | undefined;
  /** --notify-passthrough: whether the app said READY=1, and when its last WATCHDOG=1 (or READY=1) came. */
  readonly app: { readonly ready: boolean; readonly lastPingAt: number | undefined };
}

const noFacts: RunFacts = {
  startPeriodMs: 0,
  onUnhealthy: 'kill',
  heartbeat: false,
  heartbeatEveryMs: 0,
  watchdogMs: undefined,
  extendSlackMs: undefined,
  gates: [],
  pidFile: false,
  notifying: false,
};

export const initialMachine: Machine = {
  state: 'starting',
  cause: undefined,
  child: undefined,
  stopRequested: undefined,
  facts: noFacts,
  probes: [],
  startedAt: 0,
  due: {},
  statusKey: '',
  reloadMark: undefined,
  healthySince: undefined,
  healthyForMs: 0,
  gates: [],
  pendingReady: undefined,
  follow: 'child',
  commandExit: undefined,
  app: { ready: false, lastPingAt: undefined },
};

/** A run's machine at spawn time: its facts, its probes (not yet run), nothing due until 'started'. */
export function newMachine(facts: RunFacts, probes: readonly ProbeView[], now: number): Machine {
  return { ...initialMachine, facts, probes, startedAt: now, gates: facts.gates, follow: facts.pidFile ? 'pid-file' : 'child' };
}

/**
 * Why sdwrap ends, all told: a stop asked for (SIGTERM, SIGINT, SIGQUIT) while an unhealthy app was being
 * killed wins over the unhealthy verdict, so `systemctl stop` then ends clean and --no-systemd does not
 * restart. SIGABRT is systemd's own watchdog action on a WATCHDOG=trigger, not a stop asked for.
 */
export function finalCause(m: Machine): StopCause | undefined {
  if (m.stopRequested && m.stopRequested !== 'SIGABRT' && m.cause?.kind !== 'signal') return { kind: 'signal', signal: m.stopRequested };
  return m.cause;
}

export interface Transition {
  machine: Machine;
  effects: Effect[];
}

const LIVE: readonly State[] = ['starting', 'running', 'reloading'];
/** The app runs and its fate is not decided: probes, symptoms and ticks still count. */
export const isLive = (state: State): boolean => LIVE.includes(state);
const decidesLiveness = (probe: ProbeView) => probe.role !== 'readiness';
/** The time between two EXTEND_TIMEOUT_USEC=: each extends by at most twice this, so a hung sdwrap still times out. */
export const EXTEND_EVERY_MS = 5000;

/**
 * The transition table: `now` is the monotonic time the event arrives at (tests of cells that do not read
 * the clock may leave it out).
 */
export function transition(m: Machine, event: Event, now = 0): Transition {
  const step = new Step(m, now);
  step.apply(event);
  return { machine: step.settled(m), effects: step.effects };
}

/** The clock-driven events due at `now`, in the order they are to be dispatched. */
export function dueEvents(m: Machine, now: number): Event[] {
  const order: Tick[] = ['extend-tick', 'start-period-over', 'watchdog-tick', 'heartbeat-tick'];
  return order.filter((tick) => (m.due[tick] ?? Infinity) <= now).map((type) => ({ type }));
}

/** When the next clock-driven event is due (undefined: none is). */
export function nextDue(m: Machine): number | undefined {
  const times = Object.values(m.due).filter((t): t is number => t !== undefined);
  return times.length > 0 ? Math.min(...times) : undefined;
}

/** One transition under way: the machine as it changes, and the effects in order. */
class Step {
  readonly effects: Effect[] = [];

  constructor(
    public m: Machine,
    readonly now: number,
  ) {}

  set(patch: Partial<Machine>): void {
    this.m = { ...this.m, ...patch };
  }

  emit(...effects: Effect[]): void {
    this.effects.push(...effects);
  }

  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.emit(fields === undefined ? { type: 'log', level, msg } : { type: 'log', level, msg, fields });
  }

  /** STATUS= when what it says changed in kind since the last one. */
  status({ key, text }: Status): void {
    if (key === this.m.statusKey) return;
    this.set({ statusKey: key });
    this.emit({ type: 'notify', lines: [`STATUS=${text}`] });
  }

  schedule(tick: Tick, at: number | undefined): void {
    const due: Record<string, number | undefined> = { ...this.m.due, [tick]: at };
    if (at === undefined) delete due[tick];
    this.set({ due: due as Due });
  }

  /** Bookkeeping every transition ends with: what is due only while starting or live stops being due, and
   * the time the app stayed healthy is taken when it leaves the live states. */
  settled(before: Machine): Machine {
    const m = this.m;
    let { due, healthyForMs } = m;
    if (m.state !== 'starting' && (due['start-period-over'] !== undefined || due['extend-tick'] !== undefined)) {
      due = { ...due };
      delete (due as Record<string, unknown>)['start-period-over'];
      delete (due as Record<string, unknown>)['extend-tick'];
    }
    if (!isLive(m.state) && Object.keys(due).length > 0) due = {};
    if (isLive(before.state) && !isLive(m.state) && m.healthySince !== undefined && healthyForMs === 0) {
      healthyForMs = this.now - m.healthySince;
    }
    return due === m.due && healthyForMs === m.healthyForMs ? m : { ...m, due, healthyForMs };
  }

  apply(event: Event): void {
    const { m } = this;
    switch (event.type) {
      case 'started':
        return this.onStarted();
      case 'probe':
        return this.onProbe(event);
      case 'symptom':
        return this.unhealthy(event.reason);
      case 'healthy':
        return this.onHealthy(event);
      case 'unhealthy':
        return this.onUnhealthy(event);
      case 'signal':
        return this.onSignal(event.signal);
      case 'reload-request':
        if (m.state !== 'running' && m.state !== 'reloading') return;
        return this.reload('reload-request');
      case 'watchdog-tick':
        return this.onWatchdogTick();
      case 'heartbeat-tick':
        this.reschedule('heartbeat-tick', m.facts.heartbeatEveryMs);
        if (vouchFor(m.state, m.probes, this.now).vouch && this.appPing().fresh) this.emit({ type: 'heartbeat', ping: 'ok' });
        return;
      case 'start-period-over':
        this.schedule('start-period-over', undefined);
        return this.onStartPeriodOver();
      case 'extend-tick':
        return this.extendStart();
      case 'deadline':
        if (m.state !== 'stopping' && m.state !== 'reaping') return;
        this.log(
          'warn',
          m.state === 'stopping' ? 'stop timeout reached: killing the tree' : 'leftover processes did not exit: killing them',
        );
        return this.emit({ type: 'kill-tree' });
      case 'child-exit':
        return this.onChildExit(event);
      case 'app-ready':
        if (!isLive(m.state) || m.app.ready) return;
        this.set({ app: { ready: true, lastPingAt: this.now } });
        this.log('info', 'the app said READY=1');
        return this.openGate('app-ready');
      case 'app-ping':
        if (isLive(m.state)) this.set({ app: { ...m.app, lastPingAt: this.now } });
        return;
      case 'app-reloading':
        if (m.state !== 'running' && m.state !== 'reloading') return;
        this.set({ state: 'reloading', reloadMark: this.now, statusKey: 'reloading', app: { ready: false, lastPingAt: undefined } });
        return this.log('info', 'the app is reloading (RELOADING=1 forwarded)');
      case 'app-trigger':
        if (!isLive(m.state)) return;
        // The app asks for systemd's watchdog action: honoured as such where a notifier can send it.
        if (m.facts.heartbeat) this.emit({ type: 'heartbeat', ping: 'fail', reason: 'the app sent WATCHDOG=trigger' });
        return this.onUnhealthy({
          type: 'unhealthy',
          reason: 'the app sent WATCHDOG=trigger',
          action: m.facts.notifying ? 'watchdog' : 'kill',
        });
      case 'adopted':
        return this.onAdopted(event);
      case 'adopted-exit':
        return this.onAdoptedExit(event);
      case 'pid-file-failed':
        return this.unhealthy(event.reason);
      case 'tree-gone':
        if (m.state !== 'reaping') return;
        this.set({ state: 'done' });
        // Nobody stopped it and no verdict was reached: the app ended on its own, which a heartbeat reports.
        if (m.facts.heartbeat && m.cause === undefined && m.stopRequested === undefined && m.child) {
          this.emit({ type: 'heartbeat', ping: 'fail', reason: `app ${statusText(m.child)}` });
        }
        return this.emit({ type: 'disarm-deadline' }, { type: 'exit' });
    }
  }

  onStarted(): void {
    const { facts, probes } = this.m;
    if (facts.heartbeat) this.emit({ type: 'heartbeat', ping: 'start' });
    if (probes.length === 0) {
      this.onHealthy({ type: 'healthy', detail: 'no probe configured, app started', fields: { startupMs: 0 } });
    } else {
      const note = this.startNote();
      this.status(
        STATUS.starting(
          probes.map((p) => p.description),
          note,
        ),
      );
      this.emit({ type: 'start-probes' });
    }
    if (facts.watchdogMs !== undefined) {
      this.log('info', 'systemd watchdog on', { watchdog: formatSpan(facts.watchdogMs) });
      this.schedule('watchdog-tick', this.now + facts.watchdogMs / 2);
    }
    // With probes, each vouched success sends the heartbeat; with none, a tick does.
    if (facts.heartbeat && probes.length === 0) this.schedule('heartbeat-tick', this.now + facts.heartbeatEveryMs);
    if (facts.startPeriodMs > 0 && this.m.state === 'starting') {
      this.schedule('start-period-over', this.now + facts.startPeriodMs);
      if (facts.extendSlackMs !== undefined) this.extendStart();
    }
  }

  startNote(): string {
    return startNote(this.m.facts.startPeriodMs, this.m.facts.extendSlackMs !== undefined);
  }

  /** The next tick of a periodic event: a period after the last one was due, or after now if far behind. */
  reschedule(tick: Tick, periodMs: number): void {
    const last = this.m.due[tick] ?? this.now;
    const next = last + periodMs;
    this.schedule(tick, next > this.now ? next : this.now + periodMs);
  }

  /** --notify-passthrough: whether the app's own watchdog is fresh (always, without the flag or a watchdog). */
  appPing(): ReturnType<typeof appPing> {
    if (!this.m.facts.gates.includes('app-ready')) return { fresh: true };
    return appPing(this.m.app, this.now, this.m.facts.watchdogMs);
  }

  onWatchdogTick(): void {
    const { m } = this;
    if (m.facts.watchdogMs === undefined) return;
    this.reschedule('watchdog-tick', m.facts.watchdogMs / 2);
    // The app's own watchdog ANDed with the probes: a missing ping is a liveness failure.
    const app = this.appPing();
    if (!app.fresh) return this.unhealthy(app.reason, { ageMs: Math.round(app.ageMs) });
    const vouch = vouchFor(m.state, m.probes, this.now);
    if (vouch.vouch) return this.emit({ type: 'ping-watchdog' });
    if (vouch.why === 'stale') this.log('debug', 'not vouching: no fresh success', { probe: m.probes[vouch.probe]?.description });
  }

  /** EXTEND_TIMEOUT_USEC= while the start period runs, so systemd's TimeoutStartSec= does not end a slow start. */
  extendStart(): void {
    const { facts, startedAt } = this.m;
    const remaining = facts.startPeriodMs - (this.now - startedAt);
    if (facts.extendSlackMs === undefined || remaining <= 0 || this.m.state !== 'starting') return this.schedule('extend-tick', undefined);
    const usec = Math.round((Math.min(remaining, 2 * EXTEND_EVERY_MS) + facts.extendSlackMs) * 1000);
    this.emit({ type: 'notify', lines: [`EXTEND_TIMEOUT_USEC=${usec}`] });
    this.schedule('extend-tick', this.now + EXTEND_EVERY_MS);
  }

  /** Readiness fails closed: an app not ready when the start period ends is unhealthy. */
  onStartPeriodOver(): void {
    const { m } = this;
    if (m.state !== 'starting') return;
    const why = [
      ...m.probes
        .filter((p) => p.health.status !== 'healthy')
        .map((p) => `${p.description}${p.health.lastError ? ` (last: ${p.health.lastError})` : ' (no probe finished)'}`),
      ...m.gates.map((g) => `${GATE_TEXT[g]} (not yet)`),
    ].join(', ');
    this.unhealthy(
      `not ready by the end of the start period (${formatSpan(m.facts.startPeriodMs)}): ${why}; if the app needs longer to start, raise --start-period`,
    );
  }

  onProbe(event: Extract<Event, { type: 'probe' }>): void {
    if (!isLive(this.m.state)) return;
    const before = this.m.probes[event.index];
    if (!before) return;
    const probes = this.m.probes.slice();
    const probe: ProbeView = { ...before, health: event.health };
    probes[event.index] = probe;
    this.set({ probes });
    this.onResult(probe, event.result);
    if (event.verdict) this.onVerdict(probe, event.verdict);
  }

  onResult(probe: ProbeView, result: ProbeResult): void {
    const { m } = this;
    const latencyMs = Math.round(result.latencyMs);
    const fields = { probe: probe.description, ok: result.ok, detail: result.detail, latencyMs };
    const { health } = probe;
    if (result.ok) {
      this.log('debug', 'probe passed', fields);
      // Back from failing (or from not ready): say so once every probe is healthy again.
      const allClear = m.probes.every((p) => p.health.status === 'healthy' && p.health.failures === 0);
      if (m.state === 'running' && m.statusKey !== 'healthy' && allClear) {
        this.log('info', 'probe recovered', { probe: probe.description, latencyMs });
        this.status(STATUS.recovered(probe.description, latencyMs));
      }
      if (m.facts.heartbeat && vouchFor(m.state, m.probes, this.now).vouch && this.appPing().fresh) {
        this.emit({ type: 'heartbeat', ping: 'ok' });
      }
      if (m.state === 'reloading' && m.reloadMark !== undefined && allPassedSince(m.probes, m.reloadMark + RELOAD_SETTLE_MS)) {
        this.onHealthy({
          type: 'healthy',
          detail: `reloaded, ${probe.description} passed in ${latencyMs}ms`,
          fields: { startupMs: Math.round(this.now - m.reloadMark), latencyMs },
        });
      }
    } else if (health.failures === 0) {
      this.log('debug', 'probe failed during the start period', fields);
      if (m.state === 'starting') this.status(STATUS.waiting(probe.description, result.detail, this.startNote()));
    } else if (health.status !== 'unhealthy') {
      this.log('warn', 'probe failed', { ...fields, failures: health.failures, threshold: probe.failureThreshold });
      this.status(STATUS.failing(probe.description, health.failures, probe.failureThreshold, result.detail));
    }
  }

  onVerdict(probe: ProbeView, verdict: Verdict): void {
    const { m } = this;
    const latencyMs = Math.round(probe.health.lastLatencyMs ?? 0);
    if (verdict.status === 'unhealthy') {
      const fields = { probe: probe.description, latencyMs };
      // Never ready (with no start period, failures count from the first probe): say what would have helped.
      const neverReady = m.state === 'starting' && m.facts.startPeriodMs === 0;
      const hint = neverReady ? '; if the app needs time to start, set --start-period' : '';
      if (decidesLiveness(probe)) {
        return this.unhealthy(`${probe.description}: ${neverReady ? 'never ready: ' : ''}${verdict.reason}${hint}`, fields);
      }
      // Not ready at all, with no start period whose end would fail it closed: fail it closed now.
      if (neverReady) return this.unhealthy(`${probe.description}: never ready: ${verdict.reason}${hint}`, fields);
      // Readiness lost after start: systemd has no "not ready any more" state, so it is told in STATUS only.
      if (m.state === 'running') {
        this.log('warn', 'not ready (readiness probe failing; not restarting)', { ...fields, reason: verdict.reason });
        this.status(STATUS.notReady(probe.description, verdict.reason));
      }
      return;
    }
    if (m.state === 'starting' && m.probes.every((p) => p.health.status === 'healthy')) {
      const detail = m.probes.length === 1 ? `${probe.description} passed in ${latencyMs}ms` : `all ${m.probes.length} probes passed`;
      this.onHealthy({ type: 'healthy', detail, fields: { startupMs: Math.round(this.now - m.startedAt), latencyMs } });
    }
  }

  /** A verdict of unhealthy, reached by a probe, the start period or a log symptom: acted on once. */
  unhealthy(reason: string, fields?: LogFields): void {
    // A log storm while the app shuts down, or a second verdict during a kill, is no news for anyone.
    if (!isLive(this.m.state)) return;
    if (this.m.facts.heartbeat) this.emit({ type: 'heartbeat', ping: 'fail', reason });
    this.onUnhealthy({ type: 'unhealthy', reason, action: this.m.facts.onUnhealthy, ...(fields ? { fields } : {}) });
  }

  onHealthy(event: Extract<Event, { type: 'healthy' }>): void {
    const { m } = this;
    if (m.state !== 'starting' && m.state !== 'reloading') return;
    // The probes alone do not make this app ready; said once, not at every passing probe. After
    // the app's own RELOADING=1, its READY=1 is awaited again.
    const waiting: Gate[] =
      m.state === 'starting' ? [...m.gates] : m.facts.gates.includes('app-ready') && !m.app.ready ? ['app-ready'] : [];
    if (waiting.length > 0) {
      if (!m.pendingReady) this.log('info', `probes passed; READY=1 waits for ${waiting.map((g) => GATE_TEXT[g]).join(' and ')}`);
      return this.set({ pendingReady: event });
    }
    this.set({
      state: 'running',
      statusKey: 'healthy',
      reloadMark: undefined,
      healthySince: m.healthySince ?? this.now,
      pendingReady: undefined,
    });
    this.emit({ type: 'notify', lines: ['READY=1', `STATUS=${STATUS.healthy(event.detail).text}`] });
    this.log('info', m.state === 'starting' ? 'ready' : 'reloaded', { detail: event.detail, ...event.fields });
    // A daemon may re-exec on reload: its pid file is read again once the reload is done.
    if (m.state === 'reloading' && m.follow === 'adopted') this.emit({ type: 'reread-pid-file' });
  }

  /** A gate of READY=1 opened: READY=1 now if the probes had passed and no other gate is closed. */
  openGate(gate: Gate): void {
    const gates = this.m.gates.filter((g) => g !== gate);
    this.set({ gates });
    const pending = this.m.pendingReady;
    if ((this.m.state === 'starting' || this.m.state === 'reloading') && gates.length === 0 && pending) this.onHealthy(pending);
  }

  onAdopted(event: Extract<Event, { type: 'adopted' }>): void {
    if (!isLive(this.m.state)) return;
    const fields = { adoptedPid: event.pid, ...(event.previous === undefined ? {} : { previousPid: event.previous }) };
    this.log(
      'info',
      event.previous === undefined ? 'adopted the daemon named by the pid file' : 'the pid file names another process: following it',
      fields,
    );
    // The command's own pid: it is the app, and its exit status is read as usual.
    this.set({ follow: event.self ? 'child' : 'adopted' });
    this.openGate('adoption');
  }

  /** The adopted daemon is gone. Its status cannot be read: after a stop or a verdict, the end asked for (0);
   * else it vanished, a failure (75) that Restart=on-failure restarts. */
  onAdoptedExit(event: Extract<Event, { type: 'adopted-exit' }>): void {
    const { m } = this;
    if (m.follow !== 'adopted' || m.state === 'reaping' || m.state === 'done') return;
    const stopped = m.cause !== undefined || m.stopRequested !== undefined;
    const fields = { adoptedPid: event.pid, ...event.fields };
    this.log(stopped ? 'info' : 'warn', stopped ? 'the adopted daemon exited' : 'the adopted daemon vanished', fields);
    this.emit({ type: 'stop-probing' });
    if (!stopped) this.emit({ type: 'notify', lines: [`STATUS=the adopted daemon (pid ${event.pid}) vanished`] });
    this.emit(m.state === 'stopping' ? { type: 'watch-tree' } : { type: 'reap-tree' });
    this.set({ state: 'reaping', child: { code: stopped ? 0 : EXIT_APP_VANISHED, signal: null } });
  }

  onUnhealthy(event: Extract<Event, { type: 'unhealthy' }>): void {
    if (!isLive(this.m.state)) return;
    this.set({ state: 'stopping', cause: { kind: 'unhealthy', reason: event.reason } });
    if (this.nothingToStop()) {
      this.log('error', 'unhealthy: killing the child', { reason: event.reason, ...event.fields });
      this.emit({ type: 'notify', lines: [`STATUS=${STATUS.killing(event.reason).text}`] });
      return this.reapWhatIsLeft();
    }
    if (event.action === 'watchdog') {
      // systemd's watchdog action will signal sdwrap (SIGABRT by default); if it never comes, kill at the deadline.
      this.log('error', "unhealthy: triggering systemd's watchdog", { reason: event.reason, ...event.fields });
      this.emit({ type: 'notify', lines: ['WATCHDOG=trigger', `STATUS=${STATUS.triggering(event.reason).text}`] });
      return this.emit({ type: 'stop-probing' }, { type: 'arm-deadline' });
    }
    this.log('error', 'unhealthy: killing the child', { reason: event.reason, ...event.fields });
    this.emit({ type: 'notify', lines: [`STATUS=${STATUS.killing(event.reason).text}`] });
    this.emit({ type: 'stop-probing' }, { type: 'terminate-tree' }, { type: 'arm-deadline' });
  }

  onSignal(signal: RelayedSignal): void {
    const stop = (STOP_SIGNALS as readonly string[]).includes(signal);
    if (stop && this.m.stopRequested === undefined) this.set({ stopRequested: signal as StopSignal });
    const { state } = this.m;
    if (state === 'done' || state === 'reaping') {
      // The child is gone; a stop now still means "do not restart it" (--no-systemd).
      if (stop) this.log('info', 'stopping: signal received while the app was exiting', { signal });
      return;
    }
    // A reload (systemctl reload, Type=notify-reload): systemd waits for READY=1 after RELOADING=1.
    if (signal === 'SIGHUP' && state === 'running') return this.reload('signal');
    if (!stop || state === 'stopping') {
      this.emit({ type: 'relay', signal });
      return this.log('info', 'signal relayed', { signal });
    }
    this.set({ state: 'stopping', cause: { kind: 'signal', signal: signal as StopSignal } });
    if (this.nothingToStop()) {
      this.log('info', 'stopping: no app to relay the signal to', { signal });
      this.emit({ type: 'notify', lines: ['STOPPING=1', `STATUS=${STATUS.stopping(signal).text}`] });
      return this.reapWhatIsLeft();
    }
    // Relay first: the app's grace period starts now, not after a log line that may wait on the journal.
    this.emit({ type: 'relay', signal });
    this.log('info', 'stopping: signal relayed', { signal });
    this.emit({ type: 'notify', lines: ['STOPPING=1', `STATUS=${STATUS.stopping(signal).text}`] });
    this.emit({ type: 'stop-probing' }, { type: 'arm-deadline' });
  }

  /** --pid-file: the command exited and no daemon is adopted yet: there is no app to signal, trigger or wait for. */
  nothingToStop(): boolean {
    return this.m.follow === 'pid-file' && this.m.commandExit !== undefined;
  }

  /** Ends what the command left, at once, as after an app's own exit. */
  reapWhatIsLeft(): void {
    this.set({ state: 'reaping', child: this.m.commandExit });
    this.emit({ type: 'stop-probing' }, { type: 'reap-tree' });
  }

  /** SIGHUP to the app; READY=1 again once every probe passed with a run that started after it. */
  reload(by: 'signal' | 'reload-request'): void {
    this.set({ state: 'reloading', reloadMark: this.now });
    if (by === 'signal') {
      this.set({ statusKey: 'reloading' });
      this.emit({ type: 'notify-reloading' }, { type: 'relay', signal: 'SIGHUP' });
      this.log('info', 'reloading: SIGHUP relayed', { signal: 'SIGHUP' });
    } else {
      this.emit({ type: 'notify', lines: [`STATUS=${STATUS.reloading(' (sdwrap reload)').text}`] }, { type: 'relay', signal: 'SIGHUP' });
      this.log('info', 'reloading: SIGHUP relayed', { signal: 'SIGHUP', by: 'sdwrap reload' });
    }
    if (this.m.probes.length === 0) this.onHealthy({ type: 'healthy', detail: 'reloaded (no probe configured)', fields: { startupMs: 0 } });
  }

  onChildExit(event: Extract<Event, { type: 'child-exit' }>): void {
    const { m } = this;
    if (m.state === 'reaping' || m.state === 'done') return;
    // --pid-file: the command's exit 0 before the pid file is the daemon forking, not the end; once a daemon
    // is adopted, the command's exit is only news.
    if (m.follow === 'adopted' || (m.follow === 'pid-file' && event.status.code === 0 && m.state !== 'stopping')) {
      const fields = { ...describeStatus(event.status), ...event.fields };
      if (m.follow === 'adopted') return this.log('info', 'the command exited; following the daemon', fields);
      this.set({ commandExit: event.status });
      return this.log('info', 'the command exited 0: waiting for the pid file', fields);
    }
    this.log(m.cause === undefined ? 'warn' : 'info', 'child exited', { ...describeStatus(event.status), ...event.fields });
    this.emit({ type: 'stop-probing' });
    if (m.cause === undefined) this.emit({ type: 'notify', lines: [`STATUS=${STATUS.exited(event.status).text}`] });
    // A tree whose head is gone gets the same treatment as a stop: TERM, grace, KILL. When stopping, the
    // TERM went out and the deadline runs already.
    this.emit(m.state === 'stopping' ? { type: 'watch-tree' } : { type: 'reap-tree' });
    this.set({ state: 'reaping', child: event.status });
  }
}

/**
 * A reload counts only probe runs that started this long after the SIGHUP: the app handles the signal in its
 * own time, and a request that reaches it first is answered by the old config (the e2e suite saw a
 * `systemctl reload` return 1 time in 20 before the new config was served, with a probe 1 ms after the SIGHUP).
 */
export const RELOAD_SETTLE_MS = 200;

/** Whether every probe is healthy with a success from a run that started at or after mark: a probe already
 * in flight when SIGHUP went out may carry the app's answer from before its reload. */
function allPassedSince(probes: readonly ProbeView[], mark: number): boolean {
  return probes.every(
    ({ health }) => health.status === 'healthy' && (health.lastSuccessAt ?? -Infinity) - (health.lastLatencyMs ?? 0) >= mark,
  );
}

export { statusText };

/** Log fields for a child's exit status. */
export function describeStatus(status: ChildStatus): Record<string, unknown> {
  return status.signal ? { signal: status.signal } : { code: status.code };
}
