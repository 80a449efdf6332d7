// One bounded wait: whatever sdwrap waits for on its way out (a notify queue, a heartbeat, the app's output)
// must not keep it from exiting.
import { systemClock, type Clock } from './clock.js';

/** What withTimeout resolves with when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * Waits for `work` at most `ms`: resolves with its value, or with TIMED_OUT once the time is up; rejects as it
 * does. The timer is cleared either way, so a wait that ended early never holds the event loop open.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, clock: Clock = systemClock): Promise<T | typeof TIMED_OUT> {
  let timer: unknown;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => (timer = clock.setTimeout(() => resolve(TIMED_OUT), ms)));
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clock.clearTimeout(timer);
  }
}
