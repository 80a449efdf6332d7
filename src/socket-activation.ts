// Socket activation passed through: systemd hands listening sockets to sdwrap (LISTEN_FDS, LISTEN_PID =
// sdwrap's pid); sdwrap hands the same fds to the app at the same numbers, and keeps its own copies open,
// so an app restarted in place (--no-systemd) gets the very same sockets and clients queue meanwhile.
// sd_listen_fds(3) only believes LISTEN_PID when it is the caller's own pid, which is known only after
// fork: a shell sets it to its own pid ($$) and execs the app, which keeps that pid.
import { fstatSync, readlinkSync } from 'node:fs';
import { SdwrapError, EXIT } from './errors.js';

/** The first passed fd (SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;

/** LISTEN_FDS says there are fds, but they are not open in sdwrap: a wrapper in between closed them. */
class ListenFdsError extends SdwrapError {
  constructor(message: string) {
    super(message, 'SDWRAP_LISTEN_FDS_MISSING', EXIT.USAGE);
    this.name = 'ListenFdsError';
  }
}

/**
 * How many fds systemd passed to this process (0: none, or they are another process's: LISTEN_PID names
 * someone else). Throws ListenFdsError when LISTEN_PID is ours but LISTEN_FDS is not a count or the fds
 * it counts are not open.
 */
export function inheritedListenFds(env: NodeJS.ProcessEnv, ownPid: number, isOpen: (fd: number) => boolean = fdIsOpen): number {
  if (env.LISTEN_PID !== String(ownPid)) return 0;
  const text = env.LISTEN_FDS ?? '';
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new ListenFdsError(`LISTEN_PID is sdwrap's pid but LISTEN_FDS is not a count of fds ('${text}'): is the .socket unit right?`);
  }
  const count = Number(text);
  const missing: number[] = [];
  for (let fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + count; fd++) if (!isOpen(fd)) missing.push(fd);
  if (missing.length > 0) {
    throw new ListenFdsError(
      `LISTEN_FDS=${count} but fd ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not open in sdwrap: something between systemd and sdwrap closed the sockets (run sdwrap directly as ExecStart=)`,
    );
  }
  return count;
}

/**
 * Whether fd is one systemd could have passed. Open is not enough: Node takes the lowest free fds for its own
 * event loop (epoll, eventfd, signal pipe) at start-up, so when the passed fds were closed before sdwrap ran,
 * 3 and 4 hold Node's own. /proc names those "anon_inode:..." and "pipe:[...]" (a ListenFIFO= has a path).
 */
function fdIsOpen(fd: number): boolean {
  try {
    fstatSync(fd);
  } catch {
    return false;
  }
  try {
    return !/^(anon_inode:|pipe:\[)/.test(readlinkSync(`/proc/self/fd/${fd}`));
  } catch {
    return true; // no /proc: open is all we can tell
  }
}

/** The child's environment for socket activation: LISTEN_* kept (LISTEN_PID is set by the shim) when the fds
 * are passed on, scrubbed otherwise, since they name sockets the child does not get. */
export function listenEnv(env: NodeJS.ProcessEnv, listenFds: number): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  delete out.LISTEN_PID;
  if (listenFds === 0) {
    delete out.LISTEN_FDS;
    delete out.LISTEN_FDNAMES;
  }
  return out;
}

/**
 * Wraps the command so that the named variables are set to the app's own pid: `sh -c '...; exec "$@"'` keeps
 * the pid through exec. Variable names are sdwrap's own constants, never user text, so they are safe in the script.
 */
export function pidShim(command: string, args: readonly string[], pidVars: readonly string[]): { command: string; args: string[] } {
  if (pidVars.length === 0) return { command, args: [...args] };
  const assignments = pidVars.map((name) => `${name}=$$`).join(' ');
  return { command: '/bin/sh', args: ['-c', `export ${assignments}; exec "$@"`, 'sh', command, ...args] };
}

/** Node's stdio array that passes fds 3..3+N-1 at the same numbers. */
export function listenStdio(listenFds: number): number[] {
  return Array.from({ length: listenFds }, (_, i) => LISTEN_FDS_START + i);
}
