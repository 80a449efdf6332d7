// Which of V8's compilers a run needs. The optimising compiler (TurboFan) pays for itself only in code that runs
// often. The first function it compiles maps about 3.6 MiB of the compiler's own code into the process (node's
// binary pages, measured in bench/README.md) and it allocates for every compile; a run that probes once a second
// or less never has code hot enough to gain from it. Such runs turn it off, the interpreter and the baseline
// compiler (Sparkplug) run everything. Runs that probe faster, and runs that relay the app's output (--watch-log),
// keep it.
import type { Config } from './config.js';
import { requireOptional } from './optional.js';
import type { Timing } from './timing.js';

/** A probe this often or less is light work. */
export const BUSY_INTERVAL_MS = 1000;

/** Whether a run with these probe timings (after any WatchdogSec= adjustment) does too little for TurboFan to pay. */
export function isLightRun(config: Pick<Config, 'watchLog'>, timings: readonly Pick<Timing, 'intervalMs'>[]): boolean {
  return config.watchLog === undefined && timings.every((t) => t.intervalMs >= BUSY_INTERVAL_MS);
}

/** Turns TurboFan off for the rest of the process (V8 --no-opt, honoured when V8 next decides to optimise). */
export function withoutOptimisingCompiler(): void {
  (requireOptional('node:v8') as typeof import('node:v8')).setFlagsFromString('--no-opt');
}
