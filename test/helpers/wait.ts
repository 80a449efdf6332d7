/**
 * Poll-with-deadline helper. Never sleep-and-hope: poll a condition until it
 * holds or the deadline passes.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Total time budget in ms (default 10 000). */
  timeout?: number;
  /** Poll interval in ms (default 25). */
  interval?: number;
  /** Error message on timeout; a function is evaluated lazily at timeout. */
  message?: string | (() => string);
}

type Falsy = undefined | false | null | 0 | '';

/**
 * Polls `fn` until it returns (or resolves to) a truthy value and resolves with
 * that value. Errors thrown by `fn` are treated as "not yet" and the last one is
 * reported if the deadline passes.
 */
export async function waitFor<T>(fn: () => T | Falsy | Promise<T | Falsy>, opts: WaitOptions = {}): Promise<T> {
  const timeout = opts.timeout ?? 10_000;
  const interval = opts.interval ?? 25;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await delay(Math.min(interval, remaining));
  }
  const base = typeof opts.message === 'function' ? opts.message() : (opts.message ?? 'condition not met');
  const suffix = lastError !== undefined ? ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})` : '';
  throw new Error(`waitFor timed out after ${timeout} ms: ${base}${suffix}`);
}

/**
 * The negative twin of waitFor: checks `fn` every `interval` ms for `ms` ms (a quiet period the caller derives
 * from the timing under test) and throws as soon as it does not hold. "Nothing happened" is only worth
 * asserting after long enough for it to have happened.
 */
export async function holdsFor(
  fn: () => boolean,
  ms: number,
  opts: { interval?: number; message?: string | (() => string) } = {},
): Promise<void> {
  const interval = opts.interval ?? 25;
  const deadline = Date.now() + ms;
  for (;;) {
    if (!fn()) {
      const base = typeof opts.message === 'function' ? opts.message() : (opts.message ?? 'condition stopped holding');
      throw new Error(`holdsFor: ${base} (within the ${ms} ms quiet period)`);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return;
    await delay(Math.min(interval, remaining));
  }
}
