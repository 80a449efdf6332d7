// What systemd's STATUS= says at each step of a run, and when it is worth saying again: a line goes out when
// what it says changes in kind (its key), not on every probe. The lifecycle table decides when; this module
// holds the words. notify.ts makes the datagram line of them (one line, bounded length).
import { formatSpan } from './duration.js';
import type { ChildStatus } from './lifecycle.js';

/** One STATUS= text and its kind: a text with the key last sent is not sent again. */
export interface Status {
  readonly key: string;
  readonly text: string;
}

/** "exited with code 3", "was killed by SIGKILL". */
export function statusText(status: ChildStatus): string {
  return status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
}

/** "start period 2min, start timeout extended": kept in every STATUS while the app starts ('' with no start period). */
export function startNote(startPeriodMs: number, extending: boolean): string {
  if (startPeriodMs <= 0) return '';
  return `start period ${formatSpan(startPeriodMs)}${extending ? ', start timeout extended' : ''}`;
}

const withNote = (note: string, separator: string) => (note ? `${separator}${note}` : '');

export const STATUS = {
  starting: (descriptions: readonly string[], note: string): Status => ({
    key: 'starting',
    text: `starting: waiting for ${descriptions.join(', ')}${note ? ` (${note})` : ''}`,
  }),
  waiting: (probe: string, detail: string, note: string): Status => ({
    key: `starting ${probe} ${detail}`,
    text: `starting: waiting for ${probe} (last: ${detail}${withNote(note, '; ')})`,
  }),
  failing: (probe: string, failures: number, threshold: number, detail: string): Status => ({
    key: `failing ${probe} ${failures}`,
    text: `failing ${failures}/${threshold}: ${probe}: ${detail}`,
  }),
  notReady: (probe: string, reason: string): Status => ({ key: `not ready ${probe}`, text: `not ready: ${probe}: ${reason}` }),
  recovered: (probe: string, latencyMs: number): Status => ({ key: 'healthy', text: `healthy: ${probe} passed in ${latencyMs}ms` }),
  /** Sent with READY=1: the key every later "healthy" line is compared with. */
  healthy: (detail: string): Status => ({ key: 'healthy', text: `healthy: ${detail}` }),
  reloading: (by: string): Status => ({ key: 'reloading', text: `reloading: SIGHUP relayed${by}, waiting for the probes` }),
  stopping: (signal: string): Status => ({ key: 'stopping', text: `stopping on ${signal}` }),
  killing: (reason: string): Status => ({ key: 'unhealthy', text: `unhealthy, killing the app: ${reason}` }),
  triggering: (reason: string): Status => ({ key: 'unhealthy', text: `unhealthy, watchdog triggered: ${reason}` }),
  exited: (status: ChildStatus): Status => ({ key: 'exited', text: `app ${statusText(status)}` }),
} as const;
