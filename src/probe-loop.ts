// Runs one probe on a schedule: never two at once, each under its own timeout, results folded into the
// health state. A liveness loop stops for good at its first unhealthy verdict: that failure is acted on
// once, and the child it judged is on its way out. A readiness loop goes on, to see the app recover.
import type { Clock } from './clock.js';
import { formatSpan } from './duration.js';
import {
  inStartPeriod,
  initialHealth,
  recordProbe,
  type HealthPolicy,
  type HealthState,
  type ProbeResult,
  type Verdict,
} from './health.js';
import type { Probe } from './probes/probe.js';
import type { Timing } from './timing.js';

/** Hears each result, with the health it was folded into and the verdict when that health changed. */
export type ProbeStep = (result: ProbeResult, state: HealthState, verdict: Verdict | undefined) => void;

export class ProbeLoop {
  #state: HealthState;
  #stopped = false;
  #wake: (() => void) | undefined;
  /** Aborts a probe in flight when the loop stops. */
  readonly #stopping = new AbortController();
  #done: Promise<void> | undefined;

  constructor(
    private readonly probe: Probe,
    private readonly timing: Timing,
    private readonly policy: HealthPolicy,
    private readonly clock: Clock,
    private readonly stopOnUnhealthy: boolean,
    private readonly onStep: ProbeStep,
  ) {
    this.#state = initialHealth(clock.now());
  }

  get state(): HealthState {
    return this.#state;
  }

  start(): void {
    this.#done = this.#loop();
  }

  /** Stops probing: aborts a probe in flight and resolves once it has settled (its socket or process gone). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort();
    this.#wake?.();
    await this.#done;
    await this.probe.close();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      const started = this.clock.now();
      const result = await runProbeOnce(this.probe, this.timing.timeoutMs, this.clock, this.#stopping.signal);
      if (this.#stopped) break;
      const { state, verdict } = recordProbe(this.#state, result, this.policy);
      this.#state = state;
      if (verdict?.status === 'unhealthy' && this.stopOnUnhealthy) this.#stopped = true;
      this.onStep(result, state, verdict);
      const cadence = inStartPeriod(this.#state, this.policy, this.clock.now()) ? this.timing.startIntervalMs : this.timing.intervalMs;
      await this.#sleep(started + cadence - this.clock.now());
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        this.clock.clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }
}

/**
 * Runs a probe once under its timeout (and `stop`, which aborts it early): a probe past its timeout is a
 * failure, settled only once what it started is released. The probe loop and `sdwrap probe` share it.
 */
export async function runProbeOnce(probe: Probe, timeoutMs: number, clock: Clock, stop?: AbortSignal): Promise<ProbeResult> {
  const started = clock.now();
  const controller = new AbortController();
  const onStop = () => controller.abort();
  if (stop?.aborted) controller.abort();
  stop?.addEventListener('abort', onStop, { once: true });
  let timedOut = false;
  const timer = clock.setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    const outcome = await probe.run(controller.signal);
    const at = clock.now();
    // A probe that knows more than "no answer" (what a WebSocket last said) keeps its word after the timeout's.
    const detail = timedOut ? `timed out after ${formatSpan(timeoutMs)}${outcome.detail ? `: ${outcome.detail}` : ''}` : outcome.detail;
    return { ok: outcome.ok && !timedOut, at, latencyMs: at - started, detail };
  } catch (error) {
    const at = clock.now();
    return { ok: false, at, latencyMs: at - started, detail: error instanceof Error ? error.message : String(error) };
  } finally {
    clock.clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  }
}
