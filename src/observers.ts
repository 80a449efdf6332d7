// Several watchers of one run (the control socket, --metrics) behind the supervisor's single observer.
import type { SupervisorObserver } from './supervisor.js';

const HOOKS = ['state', 'probe', 'watchdog', 'symptom', 'restart'] as const satisfies ReadonlyArray<keyof SupervisorObserver>;

/** One observer that tells each of `observers` (those given) everything, in order; undefined when none is given. */
export function combineObservers(...observers: Array<SupervisorObserver | undefined>): SupervisorObserver | undefined {
  const present = observers.filter((o): o is SupervisorObserver => o !== undefined);
  if (present.length <= 1) return present[0];
  const combined: Record<string, (...args: never[]) => void> = {};
  for (const hook of HOOKS) {
    const listeners = present.map((o) => o[hook]?.bind(o) as ((...args: unknown[]) => void) | undefined).filter((f) => f !== undefined);
    if (listeners.length > 0) combined[hook] = (...args: unknown[]) => listeners.forEach((f) => f(...args));
  }
  return combined as SupervisorObserver;
}
