// How often to probe and how long a success stays fresh, given the flags and systemd's watchdog.
import { formatSpan } from './duration.js';

export interface TimingInput {
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  startPeriodMs: number;
  stopTimeoutMs: number;
  /** systemd's WatchdogSec, when the watchdog is on for sdwrap. */
  watchdogMs: number | undefined;
}

export interface Timing {
  /** Time between the starts of two probes once the start period is over. */
  intervalMs: number;
  /** Time between probes while the start period runs and the child is not yet healthy. */
  startIntervalMs: number;
  /** Per-probe limit. */
  timeoutMs: number;
  /** A success older than this no longer earns a watchdog ping. */
  freshnessMs: number;
  /** How often to send WATCHDOG=1 (when healthy and fresh), if the watchdog is on. */
  pingEveryMs: number | undefined;
  /** Things the user should know about how their flags were adjusted. */
  notes: string[];
}

/** Shortest interval sdwrap will shorten to; below it probes would cost more than they tell. */
export const MIN_INTERVAL_MS = 100;
/** During the start period readiness is probed at least this often, so READY=1 follows soon after the app is up. */
export const START_INTERVAL_MS = 1000;

/**
 * Plans probe timing. Under WatchdogSec=W, sdwrap must reach its own verdict (failure-threshold x interval
 * + timeout after the last success) before systemd's watchdog would fire, so that a hung app is killed by
 * sdwrap with its reason logged rather than by systemd with none. Pings go out every W/2 while healthy,
 * so the last one may be W/2 old at the last success: the verdict must come within W/3 of it.
 */
export function planTiming(input: TimingInput): Timing {
  const notes: string[] = [];
  let { intervalMs } = input;
  const { timeoutMs, failureThreshold, watchdogMs } = input;
  if (watchdogMs !== undefined) {
    const budget = watchdogMs / 3;
    const fitting = Math.floor((budget - timeoutMs) / failureThreshold);
    if (fitting < intervalMs) {
      // Never below the floor, and never longer than asked for: "shortened" must shorten.
      intervalMs = Math.min(intervalMs, Math.max(MIN_INTERVAL_MS, fitting));
      notes.push(
        `--interval shortened to ${formatSpan(intervalMs)} so a hang is detected within WatchdogSec/3 (${formatSpan(budget)})`,
      );
      if (fitting < MIN_INTERVAL_MS) {
        notes.push(
          `WatchdogSec=${formatSpan(watchdogMs)} is too short for --timeout ${formatSpan(timeoutMs)} x --failure-threshold ${failureThreshold}: systemd's watchdog may fire before sdwrap's verdict`,
        );
      }
    }
    if (input.stopTimeoutMs > watchdogMs / 2) {
      notes.push(
        `--stop-timeout ${formatSpan(input.stopTimeoutMs)} is longer than WatchdogSec/2: if a hung app ignores SIGTERM, systemd's watchdog may fire before sdwrap's SIGKILL`,
      );
    }
  }
  return {
    intervalMs,
    startIntervalMs: Math.min(intervalMs, START_INTERVAL_MS),
    timeoutMs,
    freshnessMs: failureThreshold * intervalMs + timeoutMs,
    pingEveryMs: watchdogMs === undefined ? undefined : watchdogMs / 2,
    notes,
  };
}
