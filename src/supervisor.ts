// Runs the lifecycle: spawns the child, feeds every input (probe results, log symptoms, signals, reload
// requests, clock ticks, the child's exit, the tree's end) through one dispatch into the transition table
// (lifecycle.ts), and carries out the effects it asks for. It decides nothing itself. With --no-systemd,
// restarter.ts runs one Run after another.
import type { ChildHandle } from './child.js';
import { spawnChild } from './child.js';
import { Alarm, systemClock, type Clock } from './clock.js';
import type { Config, ProbeConfig } from './config.js';
import { formatSpan } from './duration.js';
import { planExit, type ExitPlan } from './exit-plan.js';
import type { HealthState, ProbeResult } from './health.js';
import type { Heartbeat } from './heartbeat.js';
import { commandOf, processControl, terminateLeftovers, type ProcessControl } from './kill-tree.js';
import {
  dueEvents,
  finalCause,
  newMachine,
  nextDue,
  RELAYED_SIGNALS,
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
import { formatLines, reloadingLines, type Notifier } from './notify.js';
import { ProbeLoop } from './probe-loop.js';
import { createProbe, type Probe } from './probes/probe.js';
import { restartLoop, StopWatch } from './restarter.js';
import { planProbes, probeViews, runFacts } from './run-facts.js';
import { STATUS } from './status.js';
import { childEnv, watchdogPeriodMs } from './systemd-env.js';
import { withTimeout } from './timeout.js';
import { Adoption } from './adoption.js';
import { leftoverLines, serviceCgroupStrays } from './leftovers.js';
import { NotifyPassthrough } from './passthrough.js';
import { inheritedListenFds } from './socket-activation.js';

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
  /** Signals and kills of the app's processes. */
  processes?: ProcessControl;
  createProbe?: (probe: ProbeConfig, env: NodeJS.ProcessEnv) => Promise<Probe>;
  heartbeat?: Heartbeat;
  /** Watches the run from outside (the control socket, the last-resort kill): see SupervisorObserver. */
  observer?: SupervisorObserver;
  /** Where `sdwrap reload` asks for reloads (the control socket): a 'reload' event each. */
  control?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

/** What an observer is told of a run: its app's pid, its state, and why it is ending once it is. */
export interface RunView {
  readonly pid: number;
  readonly state: State;
  readonly cause: StopCause | undefined;
  /** The app's exit status, once it has exited. */
  readonly child: ChildStatus | undefined;
}

/**
 * Watches runs without steering them (the control socket, --metrics, the last-resort kill). `state` hears
 * 'starting' when a run spawns its app and then each state the lifecycle enters, after that transition's
 * effects are carried out (READY=1 has gone out when it hears 'running'); `probe` hears each probe result
 * with the probe's health after it. None may throw.
 */
export interface SupervisorObserver {
  state?(view: RunView): void;
  probe?(description: string, result: ProbeResult, health: HealthState): void;
  /** Each watchdog tick (every half WatchdogSec=): whether WATCHDOG=1 went out or was withheld. */
  watchdog?(sent: boolean): void;
  /** Lines of the app's output that matched --watch-log. */
  symptom?(lines: number): void;
  /** --no-systemd: the app is being restarted (the next run spawns). */
  restart?(): void;
}

/** How long sdwrap waits, at exit, for the app's last output to reach the journal. */
const OUTPUT_FLUSH_MS = 5000;

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
  // --no-systemd: stop signals are heard from before the first run, so none falls between two runs.
  const stops = config.restart ? new StopWatch(deps.signals ?? process) : undefined;
  try {
    const run = () => new Run(config, deps).start();
    const first = await run();
    if (!config.restart || !stops) return first.plan;
    return await restartLoop(first, config.restart, {
      log: deps.log,
      clock: deps.clock ?? systemClock,
      stops,
      run,
      onRestart: () => deps.observer?.restart?.(),
    });
  } finally {
    stops?.close();
    await deps.heartbeat?.close();
  }
}

/** One child, from spawn to the end of its tree. */
class Run {
  /** Undefined until the child is spawned: events before that wait in #pending. */
  #machine: Machine | undefined;
  #pending: Event[] = [];
  #child!: ChildHandle;
  #loops: ProbeLoop[] = [];
  #probesStopped: Promise<void> = Promise.resolve();
  #outputDone: Promise<unknown> = Promise.resolve();
  /** The run's one timer, armed for the earliest of the stop deadline and the table's next due event. */
  readonly #alarm: Alarm;
  #stopAt: number | undefined;
  #finish!: (outcome: RunOutcome) => void;
  /** deps.log with the child's pid on every line, once it is spawned (`childPid`: pino's `pid` is sdwrap's own). */
  #log: Logger;
  readonly #clock: Clock;
  readonly #signals: Pick<NodeJS.Process, 'on' | 'off'>;
  readonly #processes: ProcessControl;
  /** --notify-passthrough's socket (its notifier adds the app's STATUS=), --pid-file's adoption. */
  #passthrough: NotifyPassthrough | undefined;
  #adoption: Adoption | undefined;
  #notifier: Notifier;
  readonly #onSignal = (signal: NodeJS.Signals) => this.#dispatch({ type: 'signal', signal: signal as RelayedSignal });
  readonly #onReloadRequest = () => this.#dispatch({ type: 'reload-request' });

  constructor(
    private readonly config: Config,
    private readonly deps: SupervisorDeps,
  ) {
    this.#clock = deps.clock ?? systemClock;
    this.#signals = deps.signals ?? process;
    this.#processes = deps.processes ?? processControl;
    this.#log = deps.log;
    this.#notifier = deps.notifier;
    this.#alarm = new Alarm(this.#clock, () => this.#onAlarm());
  }

  async start(): Promise<RunOutcome> {
    const { config, deps } = this;
    const done = new Promise<RunOutcome>((resolve) => (this.#finish = resolve));
    // Listen before spawning, so a stop signal that arrives early is relayed rather than killing sdwrap.
    for (const signal of RELAYED_SIGNALS) this.#signals.on(signal, this.#onSignal);
    deps.control?.on('reload', this.#onReloadRequest);
    const probes: Array<{ config: ProbeConfig; probe: Probe }> = [];
    // Without systemd there is no watchdog to serve, whatever the environment says.
    const watchdogMs = config.noSystemd ? undefined : watchdogPeriodMs(deps.env, deps.pid);
    try {
      // Socket activation's fds go on to the app; the app's own notify socket; the pid file's snapshot.
      const listenFds = inheritedListenFds(deps.env, deps.pid);
      const env = childEnv(deps.env, listenFds);
      for (const probe of config.probes) probes.push({ config: probe, probe: await (deps.createProbe ?? defaultCreateProbe)(probe, env) });
      const logWatch = config.watchLog ? await import('./log-watch.js') : undefined;
      this.#startLegacy(watchdogMs);
      const pidVars = [...(listenFds > 0 ? ['LISTEN_PID'] : []), ...(config.pidFile ? [] : (this.#passthrough?.pidVars ?? []))];
      this.#child = await (deps.spawn ?? spawnChild)(config.command, config.args, this.#passthrough?.childEnv(env) ?? env, {
        pipeOutput: logWatch !== undefined,
        listenFds,
        pidVars,
      });
      if (logWatch && config.watchLog) {
        this.#outputDone = logWatch.watchOutput(
          this.#child,
          config.watchLog,
          this.#clock,
          (reason) => this.#dispatch({ type: 'symptom', reason }),
          (stream, error) => deps.log.warn({ stream, err: error.message }, "cannot write the app's output"),
          (lines) => deps.observer?.symptom?.(lines),
        );
      }
    } catch (error) {
      await Promise.all(probes.map((p) => p.probe.close()));
      this.#closeLegacy();
      this.#removeListeners();
      throw error;
    }
    const { pid } = this.#child;
    const startedAt = this.#clock.now();
    if (deps.notifier.kind !== 'none')
      deps.log.info({ notifier: deps.notifier.kind, notifySocket: deps.env.NOTIFY_SOCKET }, 'notifier in use');
    this.#log = deps.log.child({ childPid: pid });
    this.#log.info({ command: [config.command, ...config.args] }, 'spawned');
    this.#child.exited.then((status) =>
      this.#dispatch({ type: 'child-exit', status, fields: { uptimeMs: Math.round(this.#clock.now() - startedAt) } }),
    );
    const planned = planProbes(config, probes, watchdogMs);
    for (const { probe, timing } of planned) {
      const fields = { probe: probe.description, interval: formatSpan(timing.intervalMs), timeout: formatSpan(timing.timeoutMs) };
      for (const note of timing.notes) this.#log[note.level](fields, note.msg);
    }
    const facts = runFacts(config, planned, {
      watchdogMs,
      notifying: deps.notifier.kind !== 'none',
      heartbeat: deps.heartbeat !== undefined,
    });
    this.#loops = planned.map(({ config: probeConfig, probe, timing }, index) => {
      const policy = { ...probeConfig, startPeriodMs: config.startPeriodMs };
      return new ProbeLoop(probe, timing, policy, this.#clock, probeConfig.role !== 'readiness', (result, health, verdict) => {
        deps.observer?.probe?.(probe.description, result, health);
        this.#dispatch({ type: 'probe', index, result, health, verdict });
      });
    });
    this.#machine = newMachine(facts, probeViews(planned, startedAt), startedAt);
    deps.observer?.state?.({ pid, state: 'starting', cause: undefined, child: undefined });
    this.#dispatch({ type: 'started' });
    this.#adoption?.start(config.pidFileWaitMs);
    for (const event of this.#pending.splice(0)) this.#dispatch(event);
    return done;
  }

  /** --notify-passthrough's socket and --pid-file's adoption, both reporting through #dispatch. */
  #startLegacy(watchdogMs: number | undefined): void {
    const { config, deps } = this;
    if (config.notifyPassthrough) {
      this.#passthrough = new NotifyPassthrough(deps.env, deps.notifier, deps.log, watchdogMs, {
        ready: () => this.#dispatch({ type: 'app-ready' }),
        ping: () => this.#dispatch({ type: 'app-ping' }),
        reloading: () => this.#dispatch({ type: 'app-reloading' }),
        trigger: () => this.#dispatch({ type: 'app-trigger' }),
      });
      this.#notifier = this.#passthrough.notifier;
    }
    if (config.pidFile) {
      this.#adoption = new Adoption(
        config.pidFile,
        deps.pid,
        {
          adopted: (identity, previous) =>
            this.#dispatch({ type: 'adopted', pid: identity.pid, previous: previous?.pid, self: identity.pid === this.#child?.pid }),
          failed: (reason) => this.#dispatch({ type: 'pid-file-failed', reason }),
          gone: (identity) => this.#dispatch({ type: 'adopted-exit', pid: identity.pid }),
        },
        deps.log,
      );
    }
  }

  #closeLegacy(): void {
    this.#passthrough?.close();
    this.#adoption?.close();
  }

  /** The process signals go to: the adopted daemon once there is one, else the child. */
  #appPid(): number {
    const adopted = this.#adoption?.identity;
    return adopted && this.#machine?.follow === 'adopted' ? adopted.pid : this.#child.pid;
  }

  /** The roots of the app's tree: the child's session, and the adopted daemon's. */
  #roots(): number[] {
    const adopted = this.#adoption?.identity?.pid;
    return adopted !== undefined && adopted !== this.#child.pid ? [this.#child.pid, adopted] : [this.#child.pid];
  }

  /** SIGTERM to what is left after the app's exit, saying how many and which; how many there were. */
  #terminateLeftovers(): number {
    const left = this.#roots().flatMap((root) => terminateLeftovers(root));
    const status = this.#machine!.child;
    const uptimeMs = this.#clock.now() - this.#machine!.startedAt;
    const pidFile = this.config.pidFile !== undefined;
    // A daemon that left the tree is found, for the hint only, in the unit's cgroup.
    const strays = left.length === 0 && !pidFile && status?.code === 0 ? serviceCgroupStrays(this.deps.pid, commandOf) : [];
    const options = { status, uptimeMs, pidFile, strays };
    for (const line of leftoverLines(left, options)) this.#log[line.level](line.fields, line.msg);
    return left.length;
  }

  #dispatch(event: Event): void {
    const before = this.#machine;
    if (!before) return void this.#pending.push(event);
    const { machine, effects } = transition(before, event, this.#clock.now());
    this.#machine = machine;
    for (const effect of effects) this.#perform(effect);
    this.#arm();
    if (event.type === 'watchdog-tick') this.deps.observer?.watchdog?.(effects.some((e) => e.type === 'ping-watchdog'));
    if (machine.state !== before.state) {
      this.deps.observer?.state?.({ pid: this.#child.pid, state: machine.state, cause: finalCause(machine), child: machine.child });
    }
  }

  /** The run's one timer: the stop deadline, then whatever the table has due by now. */
  #onAlarm(): void {
    const now = this.#clock.now();
    if (this.#stopAt !== undefined && this.#stopAt <= now) {
      this.#stopAt = undefined;
      this.#dispatch({ type: 'deadline' });
    }
    for (const event of dueEvents(this.#machine!, now)) this.#dispatch(event);
    this.#arm();
  }

  #arm(): void {
    const at = Math.min(nextDue(this.#machine!) ?? Infinity, this.#stopAt ?? Infinity);
    this.#alarm.set(Number.isFinite(at) ? at : undefined);
  }

  #perform(effect: Effect): void {
    const { deps } = this;
    const pid = this.#appPid();
    const roots = this.#roots();
    switch (effect.type) {
      case 'notify':
        return this.#notifier.send(formatLines(effect.lines));
      case 'notify-reloading':
        return this.#notifier.send(reloadingLines(STATUS.reloading('').text));
      case 'ping-watchdog':
        return this.#notifier.send(['WATCHDOG=1']);
      case 'heartbeat':
        if (effect.ping === 'fail') return deps.heartbeat?.fail(effect.reason);
        return effect.ping === 'start' ? deps.heartbeat?.start() : deps.heartbeat?.ok();
      case 'log':
        return this.#log[effect.level](effect.fields ?? {}, effect.msg);
      case 'start-probes':
        for (const loop of this.#loops) loop.start();
        return;
      case 'relay':
        this.#processes.signal(pid, effect.signal);
        // systemd follows SIGTERM with SIGCONT so a stopped process can act on it; do as it would.
        if (effect.signal === 'SIGTERM') this.#processes.signal(pid, 'SIGCONT');
        return;
      case 'terminate-tree':
        for (const root of roots) this.#processes.terminateTree(root);
        return;
      case 'kill-tree':
        for (const root of roots) this.#processes.killTree(root);
        return;
      case 'stop-probing': {
        const loops = this.#loops.splice(0);
        if (loops.length > 0) this.#probesStopped = Promise.all(loops.map((loop) => loop.stop())).then(() => undefined);
        return;
      }
      case 'arm-deadline':
        this.#stopAt = this.#clock.now() + this.config.stopTimeoutMs;
        return;
      case 'disarm-deadline':
        this.#stopAt = undefined;
        return;
      case 'watch-tree':
        void Promise.all(roots.map((root) => this.#processes.waitTreeGone(root))).then(() => this.#dispatch({ type: 'tree-gone' }));
        return;
      case 'reap-tree': {
        // One /proc scan: usually nothing is left and sdwrap can go at once. The real processes' leftovers are
        // named in the log; a stand-in ProcessControl (tests) only counts.
        const left =
          this.#processes === processControl ? this.#terminateLeftovers() : sum(roots.map((r) => this.#processes.terminateTree(r)));
        if (left === 0) return queueMicrotask(() => this.#dispatch({ type: 'tree-gone' }));
        this.#perform({ type: 'arm-deadline' });
        return this.#perform({ type: 'watch-tree' });
      }
      case 'reread-pid-file':
        return this.#adoption?.reread();
      case 'exit':
        void this.#exit();
        return;
    }
  }

  async #exit(): Promise<void> {
    await this.#probesStopped;
    // Every byte the app wrote reaches sdwrap's stdout/stderr before sdwrap goes, within a bound counted from
    // here: a journal that reads nothing must not keep sdwrap from exiting.
    await withTimeout(this.#outputDone, OUTPUT_FLUSH_MS, this.#clock);
    await this.deps.notifier.drain();
    this.#closeLegacy();
    this.#removeListeners();
    this.#alarm.set(undefined);
    // Read only now: a stop signal that came while the output drained still counts.
    const machine = this.#machine!;
    const cause = finalCause(machine);
    const child = machine.child!;
    this.#finish({ pid: this.#child.pid, plan: planExit(cause, child), cause, child, healthyForMs: machine.healthyForMs });
  }

  #removeListeners(): void {
    for (const signal of RELAYED_SIGNALS) this.#signals.off(signal, this.#onSignal);
    this.deps.control?.off('reload', this.#onReloadRequest);
  }
}

const defaultCreateProbe = (probe: ProbeConfig, env: NodeJS.ProcessEnv) => createProbe(probe.target, env);

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
