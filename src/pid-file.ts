// --pid-file: following a daemon that forks, writes its pid to a file, and lets the command exit 0. sdwrap
// waits for the file, checks the pid it names, and then watches that process. sdwrap is not its parent, so
// its exit cannot be waited for: /proc/<pid> is polled, with the start time it had when adopted, so a
// pid reused by another process after the daemon's end reads as the end it is.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { monotonicMs } from './clock.js';
import { SdwrapError, EXIT, type SdwrapErrorCode } from './errors.js';

/** A pid file that yields no process to adopt: an unhealthy start (the supervisor kills what the command left). */
export class PidFileError extends SdwrapError {
  constructor(message: string, code: SdwrapErrorCode) {
    super(message, code, EXIT.UNHEALTHY);
    this.name = 'PidFileError';
  }
}

/** A process by pid and start time (field 22 of /proc/<pid>/stat, in clock ticks since boot): unique for the boot. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: string;
}

/** What a pid file held when last read: a usable pid, or why not. */
type PidFileReading = { ok: true; identity: ProcessIdentity } | { ok: false; code: SdwrapErrorCode; problem: string; permanent: boolean };

/** How the pid file looked before the command ran: a file left over from an earlier run is not the new daemon's. */
export interface PidFileSnapshot {
  readonly key: string | undefined;
}

const STAT_BUFFER = Buffer.alloc(4096);

/** The start time of a live (not zombie) process, or undefined if there is none by that pid. */
export function processStartTime(pid: number): string | undefined {
  let fd: number | undefined;
  let stat: string;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
    stat = STAT_BUFFER.toString('latin1', 0, readSync(fd, STAT_BUFFER, 0, STAT_BUFFER.length, 0));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  // comm may hold spaces and parentheses: the fields start after the last ')'. state is field 3, starttime 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

/** Whether the process adopted is still the one running under its pid. */
export function isSameProcessAlive(identity: ProcessIdentity): boolean {
  return processStartTime(identity.pid) === identity.startTime;
}

function fileKey(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.mtimeMs}:${s.size}`;
  } catch {
    return undefined;
  }
}

/** Records the pid file as it is before the command runs (usually: absent). */
export function snapshotPidFile(path: string): PidFileSnapshot {
  return { key: fileKey(path) };
}

/**
 * Reads and checks the pid file once. A missing file, an unchanged leftover, an empty or half-written one or a
 * dead pid may all be on their way to right while the daemon starts (not permanent); sdwrap's own pid and
 * PID 1 never will be.
 */
export function readPidFile(path: string, { ownPid, snapshot }: { ownPid: number; snapshot?: PidFileSnapshot }): PidFileReading {
  let text: string;
  const key = fileKey(path);
  try {
    text = readFileSync(path, 'latin1');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      ok: false,
      code: 'SDWRAP_PIDFILE_TIMEOUT',
      problem: code === 'ENOENT' ? 'was never written' : `cannot be read (${code})`,
      permanent: false,
    };
  }
  if (snapshot?.key !== undefined && key === snapshot.key) {
    return {
      ok: false,
      code: 'SDWRAP_PIDFILE_TIMEOUT',
      problem: 'still holds what it held before the command ran (not rewritten)',
      permanent: false,
    };
  }
  const trimmed = text.trim();
  if (trimmed === '') return { ok: false, code: 'SDWRAP_PIDFILE_EMPTY', problem: 'is empty', permanent: false };
  // One number on the first line, as PIDFile= takes it; anything else is not a pid file.
  const first = trimmed.split('\n', 1)[0]!.trim();
  if (!/^\d{1,10}$/.test(first) || Number(first) < 1) {
    return { ok: false, code: 'SDWRAP_PIDFILE_GARBAGE', problem: `does not hold a pid (got '${printable(first)}')`, permanent: false };
  }
  const pid = Number(first);
  if (pid === ownPid || pid === 1) {
    return {
      ok: false,
      code: 'SDWRAP_PIDFILE_FORBIDDEN',
      problem: `names ${pid === 1 ? 'PID 1' : "sdwrap's own pid"} (${pid})`,
      permanent: true,
    };
  }
  const startTime = processStartTime(pid);
  if (startTime === undefined)
    return { ok: false, code: 'SDWRAP_PIDFILE_DEAD', problem: `names pid ${pid}, which is not running`, permanent: false };
  return { ok: true, identity: { pid, startTime } };
}

function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const shown = text.replace(/[\x00-\x1f\x7f-\xff]/g, '?');
  return shown.length > 40 ? `${shown.slice(0, 40)}…` : shown;
}

export interface WaitOptions {
  ownPid: number;
  snapshot?: PidFileSnapshot;
  /** How long to wait in all (the start period, or --timeout when there is none). */
  timeoutMs: number;
  pollMs?: number;
  /** Ends the wait early (the command failed, a stop signal): resolves with undefined. */
  signal?: AbortSignal;
}

/**
 * Polls the pid file until it names a live process other than sdwrap and PID 1. Rejects with a PidFileError
 * naming the last problem seen when the time runs out, or at once for a pid that can never be right.
 */
export function waitForPidFile(path: string, options: WaitOptions): Promise<ProcessIdentity | undefined> {
  const { timeoutMs, pollMs = 50, signal } = options;
  const started = monotonicMs();
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      resolve(undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const check = () => {
      if (signal?.aborted) return;
      const reading = readPidFile(path, options);
      const expired = monotonicMs() - started >= timeoutMs;
      if (reading.ok || reading.permanent || expired) {
        signal?.removeEventListener('abort', onAbort);
        if (reading.ok) return resolve(reading.identity);
        const waited = reading.permanent ? '' : ` after ${Math.round(timeoutMs)}ms`;
        return reject(new PidFileError(`--pid-file ${path} ${reading.problem}${waited}`, reading.code));
      }
      timer = setTimeout(check, Math.min(pollMs, Math.max(1, timeoutMs - (monotonicMs() - started))));
    };
    check();
  });
}

/** A watch on a process sdwrap did not spawn. */
export interface ProcessWatch {
  /** Resolves once the process is gone (exited, a zombie, or its pid taken by another process). */
  readonly gone: Promise<void>;
  stop(): void;
}

/** Polls /proc every pollMs (the detection latency: bench/rows/adopted-exit). Linux has no exit event for a
 * non-child without pidfd, which Node does not offer. */
export function watchProcess(identity: ProcessIdentity, { pollMs = 100 }: { pollMs?: number } = {}): ProcessWatch {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const gone = new Promise<void>((resolve) => {
    const check = () => {
      if (stopped) return;
      if (!isSameProcessAlive(identity)) return resolve();
      timer = setTimeout(check, pollMs);
    };
    check();
  });
  return {
    gone,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
