// The watchdog's rule, pure: whether sdwrap vouches for the app now. WATCHDOG=1 (and a healthy heartbeat)
// goes out only when it does, so this is the rule that makes systemd's watchdog mean "the app works".
import { isFresh, type HealthState } from './health.js';
import type { ProbeRole } from './config.js';
import type { State } from './lifecycle.js';

/** What the rule needs to know of one probe. */
export interface VouchProbe {
  readonly role: ProbeRole;
  readonly health: HealthState;
  /** A success older than this no longer counts (Timing.freshnessMs). */
  readonly freshnessMs: number;
}

/** Why sdwrap does or does not vouch: `stale` names the first liveness probe (by index) in the way. */
export type Vouch = { vouch: true } | { vouch: false; why: 'not running' } | { vouch: false; why: 'stale'; probe: number };

/** Only liveness probes (and `both`) decide the watchdog: a dependency's outage checked by readiness must not
 * make systemd kill the app. */
export const decidesWatchdog = (role: ProbeRole): boolean => role !== 'readiness';

/**
 * Vouch now iff READY=1 was sent and no stop is under way (state running or reloading), and every liveness
 * probe is healthy with a success no older than its freshness bound: a probe loop that stalls, or a probe
 * that has not passed lately, stops the pings.
 */
export function vouchFor(state: State, probes: readonly VouchProbe[], now: number): Vouch {
  if (state !== 'running' && state !== 'reloading') return { vouch: false, why: 'not running' };
  for (const [index, probe] of probes.entries()) {
    if (!decidesWatchdog(probe.role)) continue;
    if (probe.health.status !== 'healthy' || !isFresh(probe.health, now, probe.freshnessMs)) {
      return { vouch: false, why: 'stale', probe: index };
    }
  }
  return { vouch: true };
}
