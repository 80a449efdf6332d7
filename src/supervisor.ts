// Runs the lifecycle: spawns the child, feeds every input (probe verdicts, log symptoms, signals, child
// exit, the stop deadline, the tree's end) through one dispatch, and carries out the effects the
// transition table asks for. With --no-systemd, a Restarter runs one Run after another.
import type { Readable, Writable } from 'node:stream';
import { spawnChild, type ChildHandle } from './child.js';
import { systemClock, type Clock } from './clock.js';
import type { Config, ProbeConfig } from './config.js';
import { formatSpan } from './duration.js';
import { EXIT } from './errors.js';
import { planExit, type ExitPlan } from './exit-plan.js';
import type { HealthState, ProbeResult, Verdict } from './health.js';
import type { Heartbeat } from './heartbeat.js';
import { signalTree, terminateLeftovers, terminateTree, waitTreeGone, type TreeMember } from './kill-tree.js';
import { leftoverLines } from './leftovers.js';
import {
  finalCause,
  initialMachine,
  RELAYED_SIGNALS,
  STOP_SIGNALS,
  statusText,
  transition,
  type ChildStatus,
  type Effect,
  type Event,
  type Machine,
  type RelayedSignal,
  type State,
  type StopCause,
} from './lifecycle.js';
import type { Logger } from './logger.js';
import { emptyHistory, nextRestart, type RestartHistory, type RestartPolicy } from './backoff.js';
import type { Notifier } from './notify.js';
import { ProbeLoop } from './probe-loop.js';
import { createProbe, type Probe } from './probes/probe.js';
import { inheritedListenFds } from './socket-activation.js';
import { childEnv, watchdogPeriodMs } from './systemd-env.js';
import { planProbeTiming, type Timing } from './timing.js';
import { vouchFor } from './vouch.js';

/** Process-wide inputs and side effects, passed in so tests can stand in for them. */
export interface SupervisorDeps {
  log: Logger;
  notifier: Notifier;
  env: NodeJS.ProcessEnv;
  pid: number;
  clock?: Clock;
  /** Where SIGTERM and friends arrive: `process` in production. */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  spawn?: typeof spawnChild;
  createProbe?: (probe: ProbeConfig, env: NodeJS.ProcessEnv) => Promise<Probe>;
  heartbeat?: Heartbeat;
  /** Watches the run from outside (the control socket): see SupervisorObserver. */
  observer?: SupervisorObserver;
  /** Where `sdwrap reload` asks for reloads (the control socket): a 'reload' event each. */
  control?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

/** What an observer is told of a run: its state, and why it is ending once it is. */
export interface RunView {
  readonly state: State;
  readonly cause: StopCause | undefined;
  /** The app's exit status, once it has exited. */
  readonly child: ChildStatus | undefined;
}

/**
 * Watches runs without steering them (the control socket's `sdwrap reload` waits on it). `state` hears
 * 'starting' when a run spawns its app and then each state the lifecycle enters, after that transition's
 * effects are carried out (READY=1 has gone out when it hears 'running'); `probe` hears each probe result.
 * Neither may throw.
 */
export interface SupervisorObserver {
  state?(view: RunView): void;
  probe?(description: string, result: ProbeResult): void;
}

/** The longest STATUS= text sent; systemd reads datagrams of at most 4096 bytes. */
const MAX_STATUS = 1024;
/** While the start period runs, the start timeout is extended by this much at a time, refreshed at half
 * of it, so a start longer than TimeoutStartSec= works but a hung sdwrap still times out. */
const EXTEND_CHUNK_MS = 10_000;

/** How long sdwrap waits, at exit, for the app's last output to reach the journal. */
const OUTPUT_FLUSH_MS = 5000;

type LogWatchModule = typeof import('./log-watch.js');
let sharedOutputs: { stdout: Writable; stderr: Writable } | undefined;

/** sdwrap's stdout and stderr as relay destinations, made once and shared by every run (restarts). */
function outputs(logWatch: LogWatchModule): { stdout: Writable; stderr: Writable } {
  if (!sharedOutputs) {
    sharedOutputs = { stdout: logWatch.fdDestination(1), stderr: logWatch.fdDestination(2) };
    // EPIPE after a relay settled has nowhere else to go; relay() reports failures while it runs.
    for (const destination of Object.values(sharedOutputs)) destination.on('error', () => {});
  }
  return sharedOutputs;
}

/** "STATUS=..." on one line, as the protocol requires. */
export function statusLine(text: string): string {
  // One line, and no NUL (systemd drops a datagram with one): app output can reach STATUS via probe details.
  // eslint-disable-next-line no-control-regex
  return `STATUS=${text.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, MAX_STATUS)}`;
}

/** CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC= wants it (libuv's hrtime is CLOCK_MONOTONIC). */
function monotonicUsec(): string {
  return String(process.hrtime.bigint() / 1000n);
}

/** The child of the run under way, so that sdwrap's last resort (a bug) can still end its tree. */
let currentChild: number | undefined;

/** Kills the current child's whole tree at once: for an internal error, when sdwrap must exit now. */
export function killCurrentTree(): void {
  if (currentChild !== undefined) signalTree(currentChild, 'SIGKILL');
}

/** How one run of the child ended. */
export interface RunOutcome {
  /** The child's pid, for the lines about it after it is gone ("restarting"). */
  pid: number;
  plan: ExitPlan;
  cause: StopCause | undefined;
  child: ChildStatus;
  /** How long the child was healthy before it ended (0 if it never was). */
  healthyForMs: number;
}

/**
 * Supervises the child; resolves with how sdwrap should end. Rejects with SpawnError if it cannot start.
 * Under systemd that is one run: systemd restarts the unit. With --no-systemd, sdwrap restarts it here.
 */
export async function supervise(config: Config, deps: SupervisorDeps): Promise<ExitPlan> {
  try {
    const first = await new Run(config, deps).start();
    if (!config.restart) return first.plan;
    return await new Restarter(config, config.restart, deps).loop(first);
  } finally {
    await deps.heartbeat?.close();
  }
}

const isLiveness = (probe: ProbeConfig) => probe.role !== 'readiness';

interface ProbeSlot {
  readonly config: ProbeConfig;
  readonly probe: Probe;
  readonly timing: Timing;
  readonly loop: ProbeLoop;
}

/** One child, from spawn to the end of its tree. */
class Run {
  #machine: Machine = initialMachine;
  #child: ChildHandle | undefined;
  #slots: ProbeSlot[] = [];
  #probesStopped: Promise<void> = Promise.resolve();
  #deadline: unknown;
  /** The watchdog's and the heartbeat's intervals, on the clock: cleared when probing stops. */
  #timers: unknown[] = [];
  /** The start period's timers: cleared once the app leaves 'starting'. */
  #startPeriodTimers: NodeJS.Timeout[] = [];
  #lastStatusKey = '';
  #pending: Event[] = [];
  #finish!: (outcome: RunOutcome) => void;
  #healthySince: number | undefined;
  #healthyFor = 0;
  #startedAt = 0;
  #reloadMark: number | undefined;
  /** "start period 2min, start timeout extended": kept in every STATUS while the app starts. */
  #startNote = '';
  #outputDone: Promise<unknown> = Promise.resolve();
  /** deps.log with the child's pid on every line, once it is spawned (`childPid`: pino's `pid` is sdwrap's own). */
  #log: Logger;
  readonly #watchdogMs: number | undefined;
  readonly #clock: Clock;
  readonly #signals: Pick<NodeJS.Process, 'on' | 'off'>;
  readonly #onSignal = (signal: NodeJS.Signals) => this.#dispatch({ type: 'signal', signal: signal as RelayedSignal });
  readonly #onReloadRequest = () => this.#dispatch({ type: 'reload-request' });

  constructor(
    private readonly config: Config,
    private readonly deps: SupervisorDeps,
  ) {
    this.#clock = deps.clock ?? systemClock;
    this.#signals = deps.signals ?? process;
    this.#log = deps.log;
    // Without systemd there is no watchdog to serve, whatever the environment says.
    this.#watchdogMs = config.noSystemd ? undefined : watchdogPeriodMs(deps.env, deps.pid);
  }

  async start(): Promise<RunOutcome> {
    const { config, deps } = this;
    const done = new Promise<RunOutcome>((resolve) => (this.#finish = resolve));
    // Listen before spawning, so a stop signal that arrives early is relayed rather than killing sdwrap.
    for (const signal of RELAYED_SIGNALS) this.#signals.on(signal, this.#onSignal);
    deps.control?.on('reload', this.#onReloadRequest);
    const probes: Array<{ config: ProbeConfig; probe: Probe }> = [];
    let env = deps.env;
    let listenFds = 0;
    try {
      listenFds = inheritedListenFds(deps.env, deps.pid); // issue 12: socket activation passed through
      env = childEnv(deps.env, listenFds);
      for (const probe of config.probes) probes.push({ config: probe, probe: await (deps.createProbe ?? defaultCreateProbe)(probe, env) });
      const logWatch = config.watchLog ? await import('./log-watch.js') : undefined;
      this.#child = await (deps.spawn ?? spawnChild)(config.command, config.args, env, {
        pipeOutput: logWatch !== undefined,
        listenFds,
        pidVars: listenFds > 0 ? ['LISTEN_PID'] : [],
      });
      if (logWatch && config.watchLog) {
        const counter = new logWatch.SymptomCounter(config.watchLog, this.#clock, (reason) => this.#unhealthy(reason));
        const out = outputs(logWatch);
        const relayed = (source: Readable | undefined, destination: Writable, stream: 'stdout' | 'stderr') =>
          source
            ? logWatch.relay(source, destination, counter, stream).then(
                () => logWatch.flushed(destination),
                (error: Error) => deps.log.warn({ stream, err: error.message }, "cannot write the app's output"),
              )
            : undefined;
        const { stdout, stderr } = this.#child;
        this.#outputDone = Promise.all([relayed(stdout, out.stdout, 'stdout'), relayed(stderr, out.stderr, 'stderr')]);
      }
    } catch (error) {
      await Promise.all(probes.map((p) => p.probe.close()));
      this.#removeSignalHandlers();
      throw error;
    }
    const child = this.#child;
    currentChild = child.pid;
    this.#startedAt = this.#clock.now();
    if (deps.notifier.kind !== 'none')
      deps.log.info({ notifier: deps.notifier.kind, notifySocket: deps.env.NOTIFY_SOCKET }, 'notifier in use');
    this.#log = deps.log.child({ childPid: child.pid });
    this.#log.info({ command: [config.command, ...config.args] }, 'spawned');
    deps.heartbeat?.start();
    child.exited.then((status) =>
      this.#dispatch({ type: 'child-exit', status, fields: { uptimeMs: Math.round(this.#clock.now() - this.#startedAt) } }),
    );
    deps.observer?.state?.({ state: 'starting', cause: undefined, child: undefined });
    this.#startProbes(probes);
    this.#startTimers();
    for (const event of this.#pending.splice(0)) this.#dispatch(event);
    return done;
  }

  #startProbes(probes: Array<{ config: ProbeConfig; probe: Probe }>): void {
    const { config, deps } = this;
    for (const { config: probeConfig, probe } of probes) {
      const timing = planProbeTiming(probeConfig, config, this.#watchdogMs);
      for (const note of timing.notes) {
        this.#log[note.level](
          { probe: probe.description, interval: formatSpan(timing.intervalMs), timeout: formatSpan(timing.timeoutMs) },
          note.msg,
        );
      }
      const policy = { ...probeConfig, startPeriodMs: config.startPeriodMs };
      const slot: ProbeSlot = {
        config: probeConfig,
        probe,
        timing,
        loop: new ProbeLoop(
          probe,
          timing,
          policy,
          this.#clock,
          {
            onResult: (result, state) => this.#onProbeResult(slot, result, state),
            onVerdict: (verdict, state) => this.#onVerdict(slot, verdict, state),
          },
          isLiveness(probeConfig),
        ),
      };
      this.#slots.push(slot);
    }
    if (this.#slots.length === 0) {
      this.#dispatch({ type: 'healthy', detail: 'no probe configured, app started', fields: { startupMs: 0 } });
      return;
    }
    const extended = config.startPeriodMs > 0 && deps.notifier.kind !== 'none' ? ', start timeout extended' : '';
    this.#startNote = config.startPeriodMs > 0 ? `start period ${formatSpan(config.startPeriodMs)}${extended}` : '';
    const note = this.#startNote ? ` (${this.#startNote})` : '';
    this.#status('starting', `starting: waiting for ${this.#slots.map((s) => s.probe.description).join(', ')}${note}`);
    for (const slot of this.#slots) slot.loop.start();
  }

  #startTimers(): void {
    const { config, deps } = this;
    if (this.#watchdogMs !== undefined) {
      this.#log.info({ watchdog: formatSpan(this.#watchdogMs) }, 'systemd watchdog on');
      this.#timers.push(this.#clock.setInterval(() => this.#vouch() && deps.notifier.send(['WATCHDOG=1']), this.#watchdogMs / 2));
    }
    if (deps.heartbeat && this.#slots.length === 0) {
      this.#timers.push(this.#clock.setInterval(() => this.#vouch() && deps.heartbeat!.ok(), config.heartbeatEveryMs));
    }
    // Only while starting: with no probe the app is running already. #dispatch clears these on leaving 'starting'.
    if (config.startPeriodMs > 0 && this.#machine.state === 'starting') {
      this.#startPeriodTimers.push(setTimeout(() => this.#endStartPeriod(), config.startPeriodMs));
      if (deps.notifier.kind !== 'none') {
        this.#extendStart();
        this.#startPeriodTimers.push(setInterval(() => this.#extendStart(), EXTEND_CHUNK_MS / 2));
      }
    }
  }

  /** EXTEND_TIMEOUT_USEC= while the start period runs, so systemd's TimeoutStartSec= does not end a slow start. */
  #extendStart(): void {
    const remaining = this.config.startPeriodMs - (this.#clock.now() - this.#startedAt);
    if (remaining <= 0) return;
    const slack = Math.max(0, ...this.#slots.map((s) => s.timing.timeoutMs)) + this.config.stopTimeoutMs + 1000;
    this.deps.notifier.send([`EXTEND_TIMEOUT_USEC=${Math.round((Math.min(remaining, EXTEND_CHUNK_MS) + slack) * 1000)}`]);
  }

  /** Readiness fails closed: an app not ready when the start period ends is unhealthy. */
  #endStartPeriod(): void {
    const waiting = this.#slots.filter((s) => s.loop.state.status !== 'healthy');
    const why = waiting
      .map((s) => `${s.probe.description}${s.loop.state.lastError ? ` (last: ${s.loop.state.lastError})` : ' (no probe finished)'}`)
      .join(', ');
    this.#unhealthy(
      `not ready by the end of the start period (${formatSpan(this.config.startPeriodMs)}): ${why}; if the app needs longer to start, raise --start-period`,
    );
  }

  #unhealthy(reason: string, fields?: Record<string, unknown>): void {
    // A log storm while the app shuts down, or a second verdict during a kill, is no news for anyone.
    const live = this.#machine.state === 'starting' || this.#machine.state === 'running' || this.#machine.state === 'reloading';
    if (!live) return;
    const action = this.config.onUnhealthy === 'watchdog' && this.deps.notifier.kind !== 'none' ? 'watchdog' : 'kill';
    this.deps.heartbeat?.fail(reason);
    this.#dispatch({ type: 'unhealthy', reason, action, fields });
  }

  /** Whether sdwrap vouches for the app now (the rule is vouchFor's). */
  #vouch(): boolean {
    const probes = this.#slots.map((s) => ({ role: s.config.role, health: s.loop.state, freshnessMs: s.timing.freshnessMs }));
    const verdict = vouchFor(this.#machine.state, probes, this.#clock.now());
    if (!verdict.vouch && verdict.why === 'stale') {
      this.#log.debug({ probe: this.#slots[verdict.probe]!.probe.description }, 'not vouching: no fresh success');
    }
    return verdict.vouch;
  }

  #onProbeResult(slot: ProbeSlot, result: ProbeResult, state: HealthState): void {
    const log = this.#log;
    const { probe } = slot;
    const fields = { probe: probe.description, ok: result.ok, detail: result.detail, latencyMs: Math.round(result.latencyMs) };
    this.deps.observer?.probe?.(probe.description, result);
    if (result.ok) {
      log.debug(fields, 'probe passed');
      // Back from failing (or from not ready): say so once every probe is healthy again.
      const allClear = this.#slots.every((s) => s.loop.state.status === 'healthy' && s.loop.state.failures === 0);
      if (this.#machine.state === 'running' && this.#lastStatusKey !== 'healthy' && allClear) {
        log.info({ probe: probe.description, latencyMs: fields.latencyMs }, 'probe recovered');
        this.#status('healthy', `healthy: ${probe.description} passed in ${fields.latencyMs}ms`);
      }
      if (this.deps.heartbeat && this.#vouch()) this.deps.heartbeat.ok();
      const mark = this.#reloadMark;
      if (this.#machine.state === 'reloading' && mark !== undefined && this.#allPassedSince(mark)) {
        this.#reloadMark = undefined;
        this.#dispatch({
          type: 'healthy',
          detail: `reloaded, ${probe.description} passed in ${fields.latencyMs}ms`,
          fields: { startupMs: Math.round(this.#clock.now() - mark), latencyMs: fields.latencyMs },
        });
      }
    } else if (state.failures === 0) {
      log.debug(fields, 'probe failed during the start period');
      if (this.#machine.state === 'starting') {
        const note = this.#startNote ? `; ${this.#startNote}` : '';
        this.#status(
          `starting ${probe.description} ${result.detail}`,
          `starting: waiting for ${probe.description} (last: ${result.detail}${note})`,
        );
      }
    } else if (state.status !== 'unhealthy') {
      log.warn({ ...fields, failures: state.failures, threshold: slot.config.failureThreshold }, 'probe failed');
      this.#status(
        `failing ${probe.description} ${state.failures}`,
        `failing ${state.failures}/${slot.config.failureThreshold}: ${probe.description}: ${result.detail}`,
      );
    }
  }

  /** Whether every probe is healthy with a success that started at or after mark: a probe already in flight
   * when SIGHUP went out may carry the app's answer from before its reload. */
  #allPassedSince(mark: number): boolean {
    return this.#slots.every(
      ({ loop: { state } }) => state.status === 'healthy' && (state.lastSuccessAt ?? -Infinity) - (state.lastLatencyMs ?? 0) >= mark,
    );
  }

  #onVerdict(slot: ProbeSlot, verdict: Verdict, state: HealthState): void {
    const log = this.#log;
    const { probe } = slot;
    const latencyMs = Math.round(state.lastLatencyMs ?? 0);
    if (verdict.status === 'unhealthy') {
      const fields = { probe: probe.description, latencyMs };
      // Never ready (with no start period, failures count from the first probe): say what would have helped.
      const neverReady = this.#machine.state === 'starting' && this.config.startPeriodMs === 0;
      const hint = neverReady ? '; if the app needs time to start, set --start-period' : '';
      if (isLiveness(slot.config)) {
        return this.#unhealthy(`${probe.description}: ${neverReady ? 'never ready: ' : ''}${verdict.reason}${hint}`, fields);
      }
      // Not ready at all, with no start period whose end would fail it closed: fail it closed now.
      if (neverReady) return this.#unhealthy(`${probe.description}: never ready: ${verdict.reason}${hint}`, fields);
      // Readiness lost after start: systemd has no "not ready any more" state, so it is told in STATUS only.
      if (this.#machine.state === 'running') {
        log.warn({ ...fields, reason: verdict.reason }, 'not ready (readiness probe failing; not restarting)');
        this.#status(`not ready ${probe.description}`, `not ready: ${probe.description}: ${verdict.reason}`);
      }
      return;
    }
    const detail = `${probe.description} passed in ${latencyMs}ms`;
    if (this.#machine.state === 'starting') {
      if (this.#slots.every((s) => s.loop.state.status === 'healthy')) {
        const fields = { startupMs: Math.round(this.#clock.now() - this.#startedAt), latencyMs };
        this.#dispatch({ type: 'healthy', detail: this.#slots.length === 1 ? detail : `all ${this.#slots.length} probes passed`, fields });
      }
    }
  }

  /** Sends STATUS= when what it says has changed in kind, not on every probe. */
  #status(key: string, text: string): void {
    if (key === this.#lastStatusKey) return;
    this.#lastStatusKey = key;
    this.deps.notifier.send([statusLine(text)]);
  }

  #dispatch(event: Event): void {
    if (!this.#child) {
      this.#pending.push(event);
      return;
    }
    const { machine, effects } = transition(this.#machine, event);
    const now = this.#clock.now();
    if (machine.state === 'running' && this.#healthySince === undefined) this.#healthySince = now;
    if ((machine.state === 'stopping' || machine.state === 'reaping') && this.#healthySince !== undefined && this.#healthyFor === 0) {
      this.#healthyFor = now - this.#healthySince;
    }
    if (event.type === 'healthy' && machine.state === 'running') this.#lastStatusKey = 'healthy';
    if (machine.state !== 'starting' && this.#startPeriodTimers.length > 0) {
      for (const timer of this.#startPeriodTimers) clearTimeout(timer);
      this.#startPeriodTimers = [];
    }
    const previous = this.#machine.state;
    this.#machine = machine;
    for (const effect of effects) this.#perform(effect);
    if (machine.state !== previous) this.deps.observer?.state?.({ state: machine.state, cause: finalCause(machine), child: machine.child });
  }

  #perform(effect: Effect): void {
    const { deps, config } = this;
    const pid = this.#child!.pid;
    switch (effect.type) {
      case 'notify':
        return deps.notifier.send(effect.lines.map((line) => (line.startsWith('STATUS=') ? statusLine(line.slice(7)) : line)));
      case 'notify-reloading':
        this.#lastStatusKey = 'reloading';
        return deps.notifier.send([
          'RELOADING=1',
          `MONOTONIC_USEC=${monotonicUsec()}`,
          statusLine('reloading: SIGHUP relayed, waiting for the probes'),
        ]);
      case 'await-fresh-probes':
        this.#reloadMark = this.#clock.now();
        if (this.#slots.length === 0) {
          queueMicrotask(() => this.#dispatch({ type: 'healthy', detail: 'reloaded (no probe configured)', fields: { startupMs: 0 } }));
        }
        return;
      case 'log':
        return this.#log[effect.level](effect.fields ?? {}, effect.msg);
      case 'relay':
        try {
          process.kill(pid, effect.signal);
          // systemd follows SIGTERM with SIGCONT so a stopped process can act on it; do as it would.
          if (effect.signal === 'SIGTERM') process.kill(pid, 'SIGCONT');
        } catch {
          // the child is already gone; its exit event is on its way
        }
        return;
      case 'terminate-tree':
        terminateTree(pid);
        return;
      case 'kill-tree':
        signalTree(pid, 'SIGKILL');
        return;
      case 'stop-probing':
        for (const timer of this.#timers) this.#clock.clearInterval(timer);
        this.#timers = [];
        if (this.#slots.length > 0) {
          const slots = this.#slots;
          this.#slots = [];
          this.#probesStopped = Promise.all(slots.map((s) => s.loop.stop())).then(() => undefined);
        }
        return;
      case 'arm-deadline':
        this.#clock.clearTimeout(this.#deadline);
        this.#deadline = this.#clock.setTimeout(() => this.#dispatch({ type: 'deadline' }), config.stopTimeoutMs);
        return;
      case 'disarm-deadline':
        return this.#clock.clearTimeout(this.#deadline);
      case 'watch-tree':
        void waitTreeGone(pid).then(() => this.#dispatch({ type: 'tree-gone' }));
        return;
      case 'reap-tree': {
        // One /proc scan: usually nothing is left and sdwrap can go at once.
        const left = terminateLeftovers(pid);
        this.#logLeftovers(left); // issue 12: say what is ended
        if (left.length === 0) {
          queueMicrotask(() => this.#dispatch({ type: 'tree-gone' }));
          return;
        }
        this.#perform({ type: 'arm-deadline' });
        this.#perform({ type: 'watch-tree' });
        return;
      }
      case 'exit':
        if (this.#machine.cause === undefined && this.#machine.stopRequested === undefined) {
          deps.heartbeat?.fail(`app ${statusText(this.#machine.child!)}`);
        }
        void this.#exit();
        return;
    }
  }

  #logLeftovers(left: TreeMember[]): void {
    const options = {
      status: this.#machine.child,
      uptimeMs: this.#clock.now() - this.#startedAt,
      pidFile: this.config.pidFile !== undefined,
    };
    for (const line of leftoverLines(left, options)) this.#log[line.level](line.fields, line.msg);
  }

  async #exit(): Promise<void> {
    await this.#probesStopped;
    // Every byte the app wrote reaches sdwrap's stdout/stderr before sdwrap goes, within a bound counted from
    // here: a journal that reads nothing must not keep sdwrap from exiting.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#outputDone, new Promise((resolve) => (timer = setTimeout(resolve, OUTPUT_FLUSH_MS)))]);
    clearTimeout(timer);
    await this.deps.notifier.drain();
    this.#removeSignalHandlers();
    // Read only now: a stop signal that came while the output drained still counts.
    const cause = finalCause(this.#machine);
    const child = this.#machine.child!;
    currentChild = undefined;
    this.#finish({ pid: this.#child!.pid, plan: planExit(cause, child), cause, child, healthyForMs: this.#healthyFor });
  }

  #removeSignalHandlers(): void {
    for (const signal of RELAYED_SIGNALS) this.#signals.off(signal, this.#onSignal);
    this.deps.control?.off('reload', this.#onReloadRequest);
  }
}

const defaultCreateProbe = (probe: ProbeConfig, env: NodeJS.ProcessEnv) => createProbe(probe.target, env);

/** --no-systemd: restarts the child by its policy, with backoff, until the budget runs out or a signal stops sdwrap. */
class Restarter {
  #history: RestartHistory = emptyHistory;
  #total = 0;
  readonly #clock: Clock;
  readonly #signals: Pick<NodeJS.Process, 'on' | 'off'>;

  constructor(
    private readonly config: Config,
    private readonly policy: RestartPolicy,
    private readonly deps: SupervisorDeps,
    private readonly random: () => number = Math.random,
  ) {
    this.#clock = deps.clock ?? systemClock;
    this.#signals = deps.signals ?? process;
  }

  async loop(first: RunOutcome): Promise<ExitPlan> {
    const { log } = this.deps;
    let outcome = first;
    for (;;) {
      if (outcome.cause?.kind === 'signal') return outcome.plan;
      const failed = outcome.cause?.kind === 'unhealthy' || outcome.child.signal !== null || outcome.child.code !== 0;
      if (!failed && this.policy.mode === 'on-failure') return outcome.plan;
      const why = outcome.cause?.kind === 'unhealthy' ? `unhealthy: ${outcome.cause.reason}` : `app ${statusText(outcome.child)}`;
      const { history, decision } = nextRestart(this.#history, this.policy, this.#clock.now(), outcome.healthyForMs, this.random);
      if (outcome.healthyForMs > 0 && outcome.healthyForMs >= this.policy.resetAfterMs && this.#history.streak > 0) {
        log.info({ healthyForMs: Math.round(outcome.healthyForMs) }, 'app stayed healthy: restart backoff and budget reset');
      }
      this.#history = history;
      if (decision.kind === 'give-up') {
        log.error({ childPid: outcome.pid, reason: why, restarts: this.#total }, decision.reason);
        return { kind: 'code', code: giveUpCode(outcome) };
      }
      this.#total += 1;
      log.warn(
        {
          childPid: outcome.pid,
          restart: this.#total,
          attempt: decision.restart,
          delayMs: decision.delayMs,
          delay: formatSpan(decision.delayMs),
          reason: why,
        },
        `restarting in ${formatSpan(decision.delayMs)}`,
      );
      const stop = await this.#wait(decision.delayMs);
      if (stop) {
        log.info({ signal: stop }, 'stopping: signal during the restart wait');
        // As if the app had died by it: SIGQUIT and SIGABRT become 128+N, never a core of node.
        return planExit(undefined, { code: null, signal: stop });
      }
      outcome = await new Run(this.config, this.deps).start();
    }
  }

  /** Waits out the backoff; resolves early with the stop signal if one arrives. */
  #wait(ms: number): Promise<NodeJS.Signals | undefined> {
    return new Promise((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        if ((STOP_SIGNALS as readonly string[]).includes(signal)) done(signal);
      };
      const timer = this.#clock.setTimeout(() => done(undefined), ms);
      const done = (signal: NodeJS.Signals | undefined) => {
        this.#clock.clearTimeout(timer);
        for (const s of RELAYED_SIGNALS) this.#signals.off(s, onSignal);
        resolve(signal);
      };
      for (const s of RELAYED_SIGNALS) this.#signals.on(s, onSignal);
    });
  }
}

/** The last run's status, as a code (no re-raise after giving up); exits that were not failures
 * (--restart always) still must not look like success. */
function giveUpCode(outcome: RunOutcome): number {
  if (outcome.plan.kind === 'signal') return outcome.plan.fallbackCode;
  return outcome.plan.code === 0 ? EXIT.UNHEALTHY : outcome.plan.code;
}
