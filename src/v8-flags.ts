// V8 settings for the run, made once its options are known and before anything runs often.
//
// The young generation stays at its first size (--semi-space-growth-factor=1). V8 doubles it, up to 16 MiB a
// half, whenever enough has survived its collections since it last grew; under sustained work (probes back to back,
// a busy log relay) something is always in flight, so it keeps growing and the resident set climbs by tens of MiB
// for no gain: what sdwrap keeps alive is small, and a small young generation is quick to collect.
//
// Light runs turn the optimising compiler off (--no-opt). TurboFan pays for itself only in code that runs often;
// the first function it compiles maps megabytes of the compiler's own code into the process (node's binary
// pages) and every compile allocates. A run that probes once a second or less never has code hot enough to gain
// from it: the interpreter and the baseline compiler (Sparkplug) run everything. Runs that probe faster, and runs
// that relay the app's output (--watch-log), keep it. Measurements in bench/README.md.
import type { Config } from './config.js';
import { requireOptional } from './optional.js';
import type { Timing } from './timing.js';

/** A probe this often or less is light work. */
const BUSY_INTERVAL_MS = 1000;

/** Whether a run with these probe timings (after any WatchdogSec= adjustment) does too little for TurboFan to pay. */
export function isLightRun(config: Pick<Config, 'watchLog'>, timings: readonly Pick<Timing, 'intervalMs'>[]): boolean {
  return config.watchLog === undefined && timings.every((t) => t.intervalMs >= BUSY_INTERVAL_MS);
}

/** The flags for a run. */
export function v8FlagsFor(config: Pick<Config, 'watchLog'>, timings: readonly Pick<Timing, 'intervalMs'>[]): string[] {
  return ['--semi-space-growth-factor=1', ...(isLightRun(config, timings) ? ['--no-opt'] : [])];
}

/** Applies them; V8 reads both when it next decides (to grow the young generation, to optimise a function). */
export function setV8Flags(flags: readonly string[]): void {
  (requireOptional('node:v8') as typeof import('node:v8')).setFlagsFromString(flags.join(' '));
}
