// What systemd tells sdwrap through its environment, read the way libsystemd reads it.
import { listenEnv } from './socket-activation.js';

/** Variables that belong to sdwrap's conversation with systemd and must not reach the child,
 * or the app could send READY=1 behind the wrapper's back. */
const SYSTEMD_ONLY_VARS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/** The child's environment: sdwrap's own, less the notify and watchdog variables; the socket activation
 * variables kept only when sdwrap passes `listenFds` fds on (LISTEN_PID is then set by the spawn shim). */
export function childEnv(env: NodeJS.ProcessEnv, listenFds = 0): NodeJS.ProcessEnv {
  const out = listenEnv(env, listenFds);
  for (const key of SYSTEMD_ONLY_VARS) delete out[key];
  return out;
}

/** The watchdog period in ms, or undefined when the watchdog is off for this process
 * (unset, zero or unparsable WATCHDOG_USEC, or a WATCHDOG_PID naming another process): sd_watchdog_enabled(3). */
export function watchdogPeriodMs(env: NodeJS.ProcessEnv, ownPid: number): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d+$/.test(usec)) return undefined;
  const value = Number(usec);
  if (!Number.isSafeInteger(value) || value <= 0) return undefined;
  const pid = env.WATCHDOG_PID;
  if (pid !== undefined && pid !== '' && pid !== String(ownPid)) return undefined;
  return value / 1000;
}

/** Whether NOTIFY_SOCKET names something sd_notify can send to: an absolute path, an abstract `@name`, or vsock. */
export function isValidNotifySocket(address: string): boolean {
  return (
    (address.startsWith('/') && address.length > 1) ||
    (address.startsWith('@') && address.length > 1) ||
    /^vsock(-stream|-dgram|-seqpacket)?:\d+:\d+$/.test(address)
  );
}

/** Whether stderr is the journal: JOURNAL_STREAM is "dev:inode" of the stream systemd connected (systemd.exec(5)). */
export function stderrIsJournal(journalStream: string | undefined, stderr: { dev: number; ino: number } | undefined): boolean {
  if (!journalStream || !stderr) return false;
  const m = /^(\d+):(\d+)$/.exec(journalStream);
  return m !== null && Number(m[1]) === stderr.dev && Number(m[2]) === stderr.ino;
}
