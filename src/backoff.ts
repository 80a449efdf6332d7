// When to restart a child in --no-systemd mode: exponential backoff with jitter, capped; a restart budget
// per sliding window; both forgotten once the child has stayed healthy long enough. Pure: time and
// randomness are passed in.
import { formatSpan } from './duration.js';

export interface RestartPolicy {
  /** 'on-failure': restart after a non-zero exit, a signal, or an unhealthy kill; 'always': after any exit. */
  mode: 'on-failure' | 'always';
  initialDelayMs: number;
  maxDelayMs: number;
  /** How many restarts `windowMs` may hold before sdwrap gives up. */
  maxRestarts: number;
  windowMs: number;
  /** A child healthy for this long earns a clean slate: backoff and budget start over. */
  resetAfterMs: number;
}

export interface RestartHistory {
  /** Restarts since the last reset: the backoff exponent. */
  readonly streak: number;
  /** When each restart within the window happened. */
  readonly times: readonly number[];
}

export const emptyHistory: RestartHistory = { streak: 0, times: [] };

export type RestartDecision = { kind: 'restart'; delayMs: number; restart: number } | { kind: 'give-up'; reason: string };

/** The delay before restart number `streak + 1`: initial x 2^streak, +/-25% jitter, never above the cap. */
export function backoffDelay(streak: number, policy: RestartPolicy, random: () => number): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(streak, 52));
  // Jitter spreads restarts of many wrapped apps that failed together (one dependency down).
  return Math.round(Math.min(policy.maxDelayMs, base * (0.75 + 0.5 * random())));
}

/** Decides about the next restart, given how long the child that just ended had been healthy. */
export function nextRestart(
  history: RestartHistory,
  policy: RestartPolicy,
  now: number,
  healthyForMs: number,
  random: () => number = Math.random,
): { history: RestartHistory; decision: RestartDecision } {
  // Only a child that was healthy at all earns the reset (with --restart-reset 0, any healthy moment does).
  const base = healthyForMs > 0 && healthyForMs >= policy.resetAfterMs ? emptyHistory : history;
  const times = base.times.filter((t) => now - t < policy.windowMs);
  if (times.length >= policy.maxRestarts) {
    return {
      history: { ...base, times },
      decision: {
        kind: 'give-up',
        reason: `gave up: ${times.length} restarts within ${formatSpan(policy.windowMs)} (--max-restarts ${policy.maxRestarts} --restart-window ${formatSpan(policy.windowMs)})`,
      },
    };
  }
  const delayMs = backoffDelay(base.streak, policy, random);
  const next = { streak: base.streak + 1, times: [...times, now] };
  return { history: next, decision: { kind: 'restart', delayMs, restart: next.streak } };
}
