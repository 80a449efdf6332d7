// Runs the lifecycle: spawns the child, feeds every input (probe verdicts, signals, child exit, the stop
// deadline, the tree's end) through one dispatch, and carries out the effects the transition table asks for.
import { spawnChild, type ChildHandle } from './child.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { formatSpan } from './duration.js';
import { isFresh, type HealthState, type ProbeResult, type Verdict } from './health.js';
import { signalTree, terminateTree, waitTreeGone } from './kill-tree.js';
import { initialMachine, RELAYED_SIGNALS, transition, type Effect, type Event, type Machine, type RelayedSignal } from './lifecycle.js';
import type { Logger } from './logger.js';
import type { Notifier } from './notify.js';
import { planExit, type ExitPlan } from './exit-plan.js';
import { ProbeLoop } from './probe-loop.js';
import { createProbe, type Probe } from './probes/probe.js';
import { childEnv, watchdogPeriodMs } from './systemd-env.js';
import { planTiming, type Timing } from './timing.js';

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
  createProbe?: (config: Config, env: NodeJS.ProcessEnv) => Promise<Probe | undefined>;
}

/** The longest STATUS= text sent; systemd reads datagrams of at most 4096 bytes. */
const MAX_STATUS = 1024;

/** "STATUS=..." on one line, as the protocol requires. */
export function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, ' ').slice(0, MAX_STATUS)}`;
}

const defaultCreateProbe = async (config: Config, env: NodeJS.ProcessEnv) =>
  config.probe ? createProbe(config.probe, env) : undefined;

/** Supervises one run of the child; resolves with how sdwrap should end. Rejects with SpawnError if it cannot start. */
export async function supervise(config: Config, deps: SupervisorDeps): Promise<ExitPlan> {
  const run = new Run(config, deps);
  return run.start();
}

class Run {
  #machine: Machine = initialMachine;
  #child: ChildHandle | undefined;
  #loop: ProbeLoop | undefined;
  #probesStopped: Promise<void> = Promise.resolve();
  #deadline: unknown;
  #watchdogTimer: NodeJS.Timeout | undefined;
  #lastStatusKey = '';
  #pending: Event[] = [];
  #finish!: (plan: ExitPlan) => void;
  readonly #timing: Timing;
  readonly #clock: Clock;
  readonly #signals: Pick<NodeJS.Process, 'on' | 'off'>;
  readonly #onSignal = (signal: NodeJS.Signals) => this.#dispatch({ type: 'signal', signal: signal as RelayedSignal });

  constructor(
    private readonly config: Config,
    private readonly deps: SupervisorDeps,
  ) {
    this.#clock = deps.clock ?? systemClock;
    this.#signals = deps.signals ?? process;
    const watchdogMs = watchdogPeriodMs(deps.env, deps.pid);
    this.#timing = planTiming({ ...config, watchdogMs });
    for (const note of this.#timing.notes) deps.log.warn(note);
    if (watchdogMs !== undefined) {
      deps.log.info({ watchdog: formatSpan(watchdogMs), interval: formatSpan(this.#timing.intervalMs) }, 'systemd watchdog on');
    }
  }

  async start(): Promise<ExitPlan> {
    const { config, deps } = this;
    const done = new Promise<ExitPlan>((resolve) => (this.#finish = resolve));
    // Listen before spawning, so a stop signal that arrives early is relayed rather than killing sdwrap.
    for (const signal of RELAYED_SIGNALS) this.#signals.on(signal, this.#onSignal);
    const env = childEnv(deps.env);
    let probe: Probe | undefined;
    try {
      probe = await (deps.createProbe ?? defaultCreateProbe)(config, env);
      this.#child = await (deps.spawn ?? spawnChild)(config.command, config.args, env);
    } catch (error) {
      await probe?.close();
      this.#removeSignalHandlers();
      throw error;
    }
    const child = this.#child;
    if (deps.notifier.kind !== 'none') deps.log.info({ notifier: deps.notifier.kind, notifySocket: deps.env.NOTIFY_SOCKET }, 'notifier in use');
    deps.log.info({ pid: child.pid, command: [config.command, ...config.args] }, 'spawned');
    child.exited.then((status) => this.#dispatch({ type: 'child-exit', status }));
    if (probe) {
      this.#status('starting', `starting: waiting for ${probe.description}`);
      this.#loop = new ProbeLoop(probe, this.#timing, config, this.#clock, {
        onResult: (result, state) => this.#onProbeResult(probe, result, state),
        onVerdict: (verdict, state) => this.#onVerdict(probe, verdict, state),
      });
      this.#loop.start();
    } else {
      this.#dispatch({ type: 'healthy', detail: 'no probe configured, app started' });
    }
    if (this.#timing.pingEveryMs !== undefined) {
      this.#watchdogTimer = setInterval(() => this.#ping(), this.#timing.pingEveryMs);
    }
    for (const event of this.#pending.splice(0)) this.#dispatch(event);
    return done;
  }

  /** WATCHDOG=1 only while READY has been sent and the child is healthy with a fresh success. */
  #ping(): void {
    if (this.#machine.state !== 'running') return;
    const state = this.#loop?.state;
    if (state && (state.status !== 'healthy' || !isFresh(state, this.#clock.now(), this.#timing.freshnessMs))) {
      this.deps.log.debug('watchdog ping withheld: no fresh success');
      return;
    }
    this.deps.notifier.send(['WATCHDOG=1']);
  }

  #onProbeResult(probe: Probe, result: ProbeResult, state: HealthState): void {
    const { log } = this.deps;
    const fields = { probe: probe.description, ok: result.ok, detail: result.detail, latencyMs: Math.round(result.latencyMs) };
    if (result.ok) {
      log.debug(fields, 'probe passed');
      if (state.status === 'healthy' && this.#lastStatusKey.startsWith('failing')) {
        log.info(fields, 'probe recovered');
        this.#status('healthy', `healthy: ${probe.description} ${result.detail} in ${fields.latencyMs}ms`);
      }
    } else if (state.failures === 0) {
      log.debug(fields, 'probe failed during the start period');
      this.#status(`starting ${result.detail}`, `starting: waiting for ${probe.description} (last: ${result.detail})`);
    } else if (state.status !== 'unhealthy') {
      log.warn({ ...fields, failures: state.failures, threshold: this.config.failureThreshold }, 'probe failed');
      this.#status(
        `failing ${state.failures}`,
        `failing ${state.failures}/${this.config.failureThreshold}: ${probe.description}: ${result.detail}`,
      );
    }
  }

  #onVerdict(probe: Probe, verdict: Verdict, state: HealthState): void {
    if (verdict.status === 'unhealthy') return this.#dispatch({ type: 'unhealthy', reason: `${probe.description}: ${verdict.reason}` });
    this.#lastStatusKey = 'healthy';
    this.#dispatch({ type: 'healthy', detail: `${probe.description} passed in ${Math.round(state.lastLatencyMs ?? 0)}ms` });
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
    this.#machine = machine;
    for (const effect of effects) this.#perform(effect);
  }

  #perform(effect: Effect): void {
    const { deps, config } = this;
    const pid = this.#child!.pid;
    switch (effect.type) {
      case 'notify':
        return deps.notifier.send(effect.lines.map((line) => (line.startsWith('STATUS=') ? statusLine(line.slice(7)) : line)));
      case 'log':
        return deps.log[effect.level](effect.fields ?? {}, effect.msg);
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
        return terminateTree(pid);
      case 'kill-tree':
        return signalTree(pid, 'SIGKILL');
      case 'stop-probing':
        clearInterval(this.#watchdogTimer);
        if (this.#loop) {
          const loop = this.#loop;
          this.#loop = undefined;
          this.#probesStopped = loop.stop();
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
      case 'exit':
        void this.#exit(planExit(effect.cause, effect.child));
        return;
    }
  }

  async #exit(plan: ExitPlan): Promise<void> {
    await this.#probesStopped;
    await this.deps.notifier.drain();
    this.#removeSignalHandlers();
    this.#finish(plan);
  }

  #removeSignalHandlers(): void {
    for (const signal of RELAYED_SIGNALS) this.#signals.off(signal, this.#onSignal);
  }
}
