// How often to probe and how long a success stays fresh, given the flags and systemd's watchdog.
import { formatSpan } from './duration.js';
import type { Config, ProbeConfig } from './config.js';

export interface TimingInput {
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  startPeriodMs: number;
  stopTimeoutMs: number;
  /** systemd's WatchdogSec, when the watchdog is on for sdwrap. */
  watchdogMs: number | undefined;
  /** Whether the user gave --interval / --timeout (a flag or the config file), rather than the defaults. */
  intervalSet?: boolean;
  timeoutSet?: boolean;
}

/** Something the user should know about how their settings were adjusted: info when sdwrap changed one of
 * its own defaults, warn when it overrode a value the user gave. */
export interface TimingNote {
  level: 'info' | 'warn';
  msg: string;
}

export interface Timing {
  /** Time between the starts of two probes once the start period is over. */
  intervalMs: number;
  /** Time between probes while the start period runs and the child is not yet healthy. */
  startIntervalMs: number;
  /** Per-probe limit. */
  timeoutMs: number;
  /** A success older than this no longer earns a watchdog ping: the verdict bound, threshold x interval + timeout. */
  freshnessMs: number;
  notes: TimingNote[];
}

/** Shortest interval sdwrap will shorten to; below it probes would cost more than they tell. */
const MIN_INTERVAL_MS = 100;
/** Shortest timeout sdwrap will shorten to: a loaded host must still answer a loopback probe within it. */
const MIN_TIMEOUT_MS = 100;
/** During the start period readiness is probed at least this often, so READY=1 follows soon after the app is up. */
const START_INTERVAL_MS = 1000;

/**
 * Plans probe timing. Under WatchdogSec=W, sdwrap must reach its own verdict (failure-threshold x interval
 * + timeout after the last success) before systemd's watchdog would fire, so that a hung app is killed by
 * sdwrap with its reason logged rather than by systemd with none. Pings go out every W/2 while healthy,
 * so the last one may be W/2 old at the last success: the verdict must come within W/3 of it.
 * When no interval and timeout at or above the floors fit, the interval goes to its floor and a warning
 * says that systemd's watchdog will act first.
 */
export function planTiming(input: TimingInput): Timing {
  const { failureThreshold, watchdogMs } = input;
  const notes: TimingNote[] = [];
  let { intervalMs, timeoutMs } = input;
  if (watchdogMs !== undefined) {
    const budget = Math.floor(watchdogMs / 3);
    const fitted = fitBudget(budget, input);
    if (!fitted) {
      // The user's threshold leaves no room (a high one, often, to ride out a slow start). Refusing to run
      // would break a unit that worked; say plainly what will happen instead, and what would fix it.
      const need = failureThreshold * MIN_INTERVAL_MS + MIN_TIMEOUT_MS;
      intervalMs = Math.min(intervalMs, MIN_INTERVAL_MS);
      notes.push({
        level: 'warn',
        msg:
          `WatchdogSec=${formatSpan(watchdogMs)} cannot hold sdwrap's verdict: --failure-threshold ${failureThreshold} x --interval ${formatSpan(intervalMs)} ` +
          `+ --timeout ${formatSpan(timeoutMs)} is longer than WatchdogSec/3 (${formatSpan(budget)}), so on a hang systemd's watchdog will act first, ` +
          `with no reason logged: lower --failure-threshold, or raise WatchdogSec= to at least ${formatSpan(need * 3)}`,
      });
    } else if (fitted.intervalMs !== intervalMs || fitted.timeoutMs !== timeoutMs) {
      const changed = [
        fitted.intervalMs !== intervalMs ? `--interval ${formatSpan(intervalMs)} -> ${formatSpan(fitted.intervalMs)}` : '',
        fitted.timeoutMs !== timeoutMs ? `--timeout ${formatSpan(timeoutMs)} -> ${formatSpan(fitted.timeoutMs)}` : '',
      ].filter(Boolean);
      const overridden = (fitted.intervalMs !== intervalMs && input.intervalSet) || (fitted.timeoutMs !== timeoutMs && input.timeoutSet);
      notes.push({
        level: overridden ? 'warn' : 'info',
        msg:
          `${changed.join(', ')} so a hang is detected within WatchdogSec/3 (${formatSpan(budget)}): ` +
          `${failureThreshold} x ${formatSpan(fitted.intervalMs)} + ${formatSpan(fitted.timeoutMs)} = ${formatSpan(failureThreshold * fitted.intervalMs + fitted.timeoutMs)}`,
      });
      ({ intervalMs, timeoutMs } = fitted);
    }
    if (input.stopTimeoutMs > watchdogMs / 2) {
      notes.push({
        level: 'warn',
        msg: `--stop-timeout ${formatSpan(input.stopTimeoutMs)} is longer than WatchdogSec/2: if a hung app ignores SIGTERM, systemd's watchdog may fire before sdwrap's SIGKILL`,
      });
    }
  }
  return {
    intervalMs,
    startIntervalMs: Math.min(intervalMs, START_INTERVAL_MS),
    timeoutMs,
    freshnessMs: failureThreshold * intervalMs + timeoutMs,
    notes,
  };
}

/**
 * An interval and timeout whose verdict bound (threshold x interval + timeout) fits the budget, changing what
 * the user did not set before what they did, and never lengthening either. Undefined when nothing fits.
 */
function fitBudget(budget: number, input: TimingInput): { intervalMs: number; timeoutMs: number } | undefined {
  const { intervalMs, timeoutMs, failureThreshold: n } = input;
  const bound = (i: number, t: number) => n * i + t;
  if (bound(intervalMs, timeoutMs) <= budget) return { intervalMs, timeoutMs };
  // Keep the timeout, shorten the interval: when the user gave the timeout, or when the interval stays at least
  // as long as the timeout (a probe every 1.5 s with a 2 s timeout would be odd).
  const shorter = Math.floor((budget - timeoutMs) / n);
  if (!input.intervalSet || input.timeoutSet) {
    if (shorter >= MIN_INTERVAL_MS && (input.timeoutSet || shorter >= timeoutMs)) return { intervalMs: shorter, timeoutMs };
  }
  // Keep the interval the user gave, shorten the timeout.
  if (input.intervalSet && !input.timeoutSet && budget - n * intervalMs >= MIN_TIMEOUT_MS) {
    return { intervalMs, timeoutMs: Math.min(timeoutMs, budget - n * intervalMs) };
  }
  // Share the budget: interval and timeout alike, each at least its floor.
  const share = Math.floor(budget / (n + 1));
  const t = Math.min(timeoutMs, Math.max(MIN_TIMEOUT_MS, share));
  const i = Math.min(intervalMs, Math.max(MIN_INTERVAL_MS, Math.floor((budget - t) / n)));
  // What the interval's rounding (or its floor) leaves of the budget goes to the timeout.
  const fitted = { intervalMs: i, timeoutMs: Math.min(timeoutMs, budget - n * i) };
  return fitted.timeoutMs >= MIN_TIMEOUT_MS ? fitted : undefined;
}

/** A probe's timing within a run: only liveness decides the watchdog, so only liveness must fit inside it. */
export function planProbeTiming(
  probe: ProbeConfig,
  config: Pick<Config, 'startPeriodMs' | 'stopTimeoutMs'>,
  watchdogMs: number | undefined,
): Timing {
  return planTiming({
    ...probe,
    startPeriodMs: config.startPeriodMs,
    stopTimeoutMs: config.stopTimeoutMs,
    watchdogMs: probe.role === 'readiness' ? undefined : watchdogMs,
  });
}
