// Runs the lifecycle: spawns the child, feeds every input (probe verdicts, signals, child exit, the stop
// deadline, the tree's end) through one dispatch, and carries out the effects the transition table asks for.
import { constants } from 'node:os';
import { spawnChild, type ChildHandle } from './child.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { formatSpan } from './duration.js';
import { isFresh, type HealthState, type ProbeResult, type Verdict } from './health.js';
import { signalTree, terminateTree, waitTreeGone } from './kill-tree.js';
import { initialMachine, RELAYED_SIGNALS, STOP_SIGNALS, statusText, transition, type ChildStatus, type Effect, type Event, type Machine, type RelayedSignal, type StopCause } from './lifecycle.js';
import { emptyHistory, nextRestart, type RestartHistory, type RestartPolicy } from './backoff.js';
import { EXIT } from './errors.js';
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

/** How one run of the child ended. */
export interface RunOutcome {
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
  const first = await new Run(config, deps).start();
  if (!config.restart) return first.plan;
  return new Restarter(config, config.restart, deps).loop(first);
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
  #finish!: (outcome: RunOutcome) => void;
  #healthySince: number | undefined;
  #healthyFor = 0;
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
    // Without systemd there is no watchdog to serve, whatever the environment says.
    const watchdogMs = config.noSystemd ? undefined : watchdogPeriodMs(deps.env, deps.pid);
    this.#timing = planTiming({ ...config, watchdogMs });
    for (const note of this.#timing.notes) deps.log.warn(note);
    if (watchdogMs !== undefined) {
      deps.log.info({ watchdog: formatSpan(watchdogMs), interval: formatSpan(this.#timing.intervalMs) }, 'systemd watchdog on');
    }
  }

  async start(): Promise<RunOutcome> {
    const { config, deps } = this;
    const done = new Promise<RunOutcome>((resolve) => (this.#finish = resolve));
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
    if (machine.state === 'running' && this.#machine.state !== 'running') this.#healthySince = this.#clock.now();
    if (machine.state !== 'running' && this.#machine.state === 'running') this.#healthyFor = this.#clock.now() - this.#healthySince!;
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
        void this.#exit({ plan: planExit(effect.cause, effect.child), cause: effect.cause, child: effect.child, healthyForMs: this.#healthyFor });
        return;
    }
  }

  async #exit(outcome: RunOutcome): Promise<void> {
    await this.#probesStopped;
    await this.deps.notifier.drain();
    this.#removeSignalHandlers();
    this.#finish(outcome);
  }

  #removeSignalHandlers(): void {
    for (const signal of RELAYED_SIGNALS) this.#signals.off(signal, this.#onSignal);
  }
}

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
      if (outcome.healthyForMs >= this.policy.resetAfterMs && this.#history.streak > 0) log.info({ healthyForMs: Math.round(outcome.healthyForMs) }, 'app stayed healthy: restart backoff and budget reset');
      this.#history = history;
      if (decision.kind === 'give-up') {
        log.error({ reason: why, restarts: this.#total }, decision.reason);
        return { kind: 'code', code: giveUpCode(outcome) };
      }
      this.#total += 1;
      log.warn(
        { restart: this.#total, attempt: decision.restart, delayMs: decision.delayMs, delay: formatSpan(decision.delayMs), reason: why },
        `restarting in ${formatSpan(decision.delayMs)}`,
      );
      const stop = await this.#wait(decision.delayMs);
      if (stop) {
        log.info({ signal: stop }, 'stopping: signal during the restart wait');
        return { kind: 'signal', signal: stop, fallbackCode: 128 + constants.signals[stop] };
      }
      outcome = await new Run(this.config, this.deps).start();
    }
  }

  /** Waits out the backoff; resolves early with the stop signal if one arrives. */
  #wait(ms: number): Promise<NodeJS.Signals | undefined> {
    return new Promise((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        if (!(STOP_SIGNALS as readonly string[]).includes(signal)) return;
        done(signal);
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
