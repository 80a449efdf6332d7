// What sdwrap and `sdwrap reload` say to each other over the control socket: one request line ("reload\n"),
// answered by JSON lines, the last of which is final ('reloaded' or 'error'). Where the socket is, too.
import path from 'node:path';
import { UsageError } from './errors.js';

/** The file name under $RUNTIME_DIRECTORY. */
export const CONTROL_SOCKET_NAME = 'sdwrap.sock';

/** The only request. */
export const RELOAD_REQUEST = 'reload';

/** Why a request was turned down or a reload failed; stable, for scripts and tests. */
export type ControlErrorCode =
  /** The app is still starting: nothing to reload yet. */
  | 'not-ready'
  /** A reload is under way (asked for here or by a SIGHUP): ask again once it has ended. */
  | 'busy'
  /** The app is stopping or has exited. */
  | 'stopping'
  /** The reload began, but the app became unhealthy, or stopped, before every probe passed again. */
  | 'failed'
  /** Not a request sdwrap knows, or no request line in time. */
  | 'bad-request';

export type ControlReply =
  /** SIGHUP relayed (with RELOADING=1): waiting for every probe to pass again. */
  | { event: 'reloading' }
  /** A probe failed while the reload waits: the latest reason, should the reload time out. */
  | { event: 'probe'; probe: string; detail: string }
  /** Final: every probe has passed since the SIGHUP, and READY=1 has gone out. */
  | { event: 'reloaded'; ms: number }
  /** Final. */
  | { event: 'error'; code: ControlErrorCode; message: string };

/**
 * The control socket's path: --control-socket, else $RUNTIME_DIRECTORY/sdwrap.sock (the first directory when
 * RuntimeDirectory= lists several), else undefined. A relative --control-socket is taken from the cwd.
 */
export function controlSocketPath(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (flag !== undefined) {
    if (flag.trim() === '') throw new UsageError('--control-socket expects a path, got an empty string');
    return path.resolve(flag);
  }
  const runtime = (env.RUNTIME_DIRECTORY ?? '').split(':')[0] ?? '';
  return runtime.startsWith('/') ? path.join(runtime, CONTROL_SOCKET_NAME) : undefined;
}

/** `sdwrap reload`'s exit codes, besides 0 (reloaded) and 2 (usage). */
export const RELOAD_EXIT = {
  /** The reload failed, timed out or was refused: the reason is on stderr. */
  FAILED: 1,
  /** No sdwrap answered on the control socket. */
  UNREACHABLE: 3,
} as const;
