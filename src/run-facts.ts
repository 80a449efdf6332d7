// What a run knows from its start, taken from the config and the environment once: the facts the lifecycle
// table decides by (lifecycle.ts RunFacts), and each probe's timing, fitted to systemd's watchdog.
import type { Config, ProbeConfig } from './config.js';
import type { ProbeView, RunFacts } from './lifecycle.js';
import { initialHealth } from './health.js';
import type { Probe } from './probes/probe.js';
import { planProbeTiming, type Timing } from './timing.js';

export interface PlannedProbe {
  readonly config: ProbeConfig;
  readonly probe: Probe;
  readonly timing: Timing;
}

export interface RunEnvironment {
  /** WatchdogSec= as systemd set it for sdwrap; undefined when off (or --no-systemd). */
  readonly watchdogMs: number | undefined;
  /** A notifier reaches systemd (WATCHDOG=trigger and EXTEND_TIMEOUT_USEC= can go out). */
  readonly notifying: boolean;
  readonly heartbeat: boolean;
}

/** Each probe with its timing: its own, or shortened so that a hang is noticed within WatchdogSec/3. */
export function planProbes(
  config: Config,
  probes: ReadonlyArray<{ config: ProbeConfig; probe: Probe }>,
  watchdogMs: number | undefined,
): PlannedProbe[] {
  return probes.map((p) => ({ ...p, timing: planProbeTiming(p.config, config, watchdogMs) }));
}

export function runFacts(config: Config, probes: readonly PlannedProbe[], env: RunEnvironment): RunFacts {
  return {
    startPeriodMs: config.startPeriodMs,
    // WATCHDOG=trigger needs a notifier; without one, sdwrap kills the app itself.
    onUnhealthy: config.onUnhealthy === 'watchdog' && env.notifying ? 'watchdog' : 'kill',
    heartbeat: env.heartbeat,
    heartbeatEveryMs: config.heartbeatEveryMs,
    watchdogMs: env.watchdogMs,
    // An extension covers what is left of the start period, a probe's longest run, and a stop after it.
    extendSlackMs:
      config.startPeriodMs > 0 && env.notifying
        ? Math.max(0, ...probes.map((p) => p.timing.timeoutMs)) + config.stopTimeoutMs + 1000
        : undefined,
    gates: [
      ...(config.notifyPassthrough ? (['app-ready'] as const) : []),
      ...(config.pidFile !== undefined ? (['adoption'] as const) : []),
    ],
    pidFile: config.pidFile !== undefined,
    notifying: env.notifying,
  };
}

/** The probes as the table sees them at spawn time: none has run. */
export function probeViews(probes: readonly PlannedProbe[], now: number): ProbeView[] {
  return probes.map(({ config, probe, timing }) => ({
    description: probe.description,
    role: config.role,
    failureThreshold: config.failureThreshold,
    freshnessMs: timing.freshnessMs,
    health: initialHealth(now),
  }));
}
