// How sdwrap ends, given why it stopped and how the child ended: the exit status stays transparent.
import { constants } from 'node:os';
import { EXIT } from './errors.js';
import type { ChildStatus, StopCause } from './lifecycle.js';

export type ExitPlan = { kind: 'code'; code: number } | { kind: 'signal'; signal: NodeJS.Signals; fallbackCode: number };

/**
 * Signals that sdwrap does not re-raise on itself, exiting 128+N instead: those that dump core (a core of
 * node would be a misleading artefact, and systemd-coredump would file it), and those Node itself uses or
 * ignores (SIGUSR1 starts the inspector; SIGPIPE is ignored), which would not end the process.
 */
const NOT_RERAISED = new Set<string>([
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGSEGV',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGSYS',
  'SIGUSR1',
  'SIGPIPE',
]);

/** Decides sdwrap's own ending. */
export function planExit(cause: StopCause | undefined, child: ChildStatus): ExitPlan {
  // Killed for failing its probes: never pass the SIGTERM/SIGKILL through, or systemd would read a clean stop.
  if (cause?.kind === 'unhealthy') return { kind: 'code', code: EXIT.UNHEALTHY };
  // Asked to stop, the app ignored it and sdwrap SIGKILLed it after --stop-timeout: the stop was still the
  // one requested, so end by the stop signal (a clean `systemctl stop`); the journal has the warning.
  const signal = cause?.kind === 'signal' && child.signal === 'SIGKILL' ? cause.signal : child.signal;
  if (signal) {
    const fallbackCode = 128 + (constants.signals[signal] ?? 0);
    if (NOT_RERAISED.has(signal)) return { kind: 'code', code: fallbackCode };
    return { kind: 'signal', signal, fallbackCode };
  }
  return { kind: 'code', code: child.code ?? EXIT.INTERNAL };
}
