// Time as a dependency, so logic that waits can be driven by a test.

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/**
 * Monotonic milliseconds from process.hrtime (CLOCK_MONOTONIC), not performance.now(): the `performance` global
 * loads perf_hooks and its dozen modules, about 1 MiB of memory for one clock read.
 */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1000 + nanoseconds / 1e6;
}

export const systemClock: Clock = {
  now: monotonicMs,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/** One timer, re-armed for a moment rather than after a delay: setting it again moves it, `undefined` clears it. */
export class Alarm {
  #handle: unknown;
  #at: number | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly onFire: () => void,
  ) {}

  set(at: number | undefined): void {
    if (at === this.#at) return;
    this.clock.clearTimeout(this.#handle);
    this.#at = at;
    if (at === undefined) return;
    this.#handle = this.clock.setTimeout(
      () => {
        this.#at = undefined;
        this.onFire();
      },
      Math.max(0, at - this.clock.now()),
    );
  }
}
