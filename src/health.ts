// The threshold state machine: probe results in, healthy/unhealthy verdicts out. Pure: time is passed in.

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthPolicy {
  failureThreshold: number;
  successThreshold: number;
  startPeriodMs: number;
}

export interface HealthState {
  readonly status: HealthStatus;
  /** Consecutive successes, and consecutive failures that counted (not those inside the start period). */
  readonly successes: number;
  readonly failures: number;
  readonly startedAt: number;
  readonly lastSuccessAt: number | undefined;
  readonly lastLatencyMs: number | undefined;
  readonly lastError: string | undefined;
}

export interface ProbeResult {
  ok: boolean;
  /** When the probe finished. */
  at: number;
  latencyMs: number;
  /** Why it failed, or what it saw ("HTTP 200"). */
  detail: string;
}

/** A verdict that changed: becoming healthy, or unhealthy with the reason. */
export type Verdict = { status: 'healthy' } | { status: 'unhealthy'; reason: string };

export interface Step {
  state: HealthState;
  verdict: Verdict | undefined;
}

/** Fresh counters for a newly spawned child. */
export function initialHealth(startedAt: number): HealthState {
  return {
    status: 'starting',
    successes: 0,
    failures: 0,
    startedAt,
    lastSuccessAt: undefined,
    lastLatencyMs: undefined,
    lastError: undefined,
  };
}

/** True while the start period runs and the child has not yet been healthy. */
export function inStartPeriod(state: HealthState, policy: HealthPolicy, now: number): boolean {
  return state.status === 'starting' && now - state.startedAt < policy.startPeriodMs;
}

/** Folds one probe result into the state. An unhealthy probe turns healthy again after success-threshold
 * successes (a liveness failure is acted on at once, so only readiness probes live to see that). */
export function recordProbe(state: HealthState, result: ProbeResult, policy: HealthPolicy): Step {
  if (result.ok) {
    const successes = state.successes + 1;
    const next: HealthState = {
      ...state,
      successes,
      failures: 0,
      lastSuccessAt: result.at,
      lastLatencyMs: result.latencyMs,
    };
    if (state.status !== 'healthy' && successes >= policy.successThreshold) {
      return { state: { ...next, status: 'healthy' }, verdict: { status: 'healthy' } };
    }
    return { state: next, verdict: undefined };
  }
  // Failures inside the start period do not count (a success ends the period early).
  if (inStartPeriod(state, policy, result.at)) {
    return { state: { ...state, successes: 0, lastError: result.detail }, verdict: undefined };
  }
  const failures = state.failures + 1;
  const next: HealthState = { ...state, successes: 0, failures, lastError: result.detail };
  if (failures >= policy.failureThreshold && state.status !== 'unhealthy') {
    const reason = `${failures} consecutive probe failures (threshold ${policy.failureThreshold}), last: ${result.detail}`;
    return { state: { ...next, status: 'unhealthy' }, verdict: { status: 'unhealthy', reason } };
  }
  return { state: next, verdict: undefined };
}

/** Whether the last success is recent enough to vouch for the child (a stalled probe loop stops pings). */
export function isFresh(state: HealthState, now: number, freshnessMs: number): boolean {
  return state.lastSuccessAt !== undefined && now - state.lastSuccessAt <= freshnessMs;
}
