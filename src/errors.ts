// Errors with stable codes, and the exit codes sdwrap itself chooses. Only cli.ts exits.

/** Exit codes of sdwrap's own making; everything else is the child's status passed through. */
export const EXIT = {
  /** A bad flag, value or config: the user's mistake. */
  USAGE: 2,
  /** Liveness failed: sdwrap killed the child's tree (sysexits EX_UNAVAILABLE). */
  UNHEALTHY: 69,
  /** --pid-file: the adopted app vanished without a stop asked for. Its status cannot be read (sdwrap is not
   * its parent), so sdwrap reports a failure Restart=on-failure restarts (sysexits EX_TEMPFAIL). */
  APP_VANISHED: 75,
  /** sdwrap itself failed (a bug): sysexits EX_SOFTWARE. */
  INTERNAL: 70,
  /** The command exists but cannot be executed. */
  NOT_EXECUTABLE: 126,
  /** The command was not found. */
  NOT_FOUND: 127,
} as const;

export type SdwrapErrorCode =
  | 'SDWRAP_USAGE'
  | 'SDWRAP_SPAWN_NOT_FOUND'
  | 'SDWRAP_SPAWN_NOT_EXECUTABLE'
  | 'SDWRAP_SPAWN_FAILED'
  | 'SDWRAP_INTERNAL'
  /** Socket activation: LISTEN_PID is sdwrap's, but LISTEN_FDS is not a count or its fds are not open. */
  | 'SDWRAP_LISTEN_FDS_MISSING'
  /** --pid-file: no usable pid in the file by the deadline (never written, empty, garbage, a dead pid). */
  | 'SDWRAP_PIDFILE_TIMEOUT'
  | 'SDWRAP_PIDFILE_EMPTY'
  | 'SDWRAP_PIDFILE_GARBAGE'
  | 'SDWRAP_PIDFILE_DEAD'
  /** --pid-file names sdwrap itself or PID 1: adopting it would kill the wrong thing. */
  | 'SDWRAP_PIDFILE_FORBIDDEN'
  /** --notify-passthrough without the node-unix-socket addon. */
  | 'SDWRAP_NOTIFY_ADDON_MISSING';

/** Base class: `code` is stable and what callers and tests check; `exitCode` is what cli.ts exits with. */
export class SdwrapError extends Error {
  constructor(
    message: string,
    readonly code: SdwrapErrorCode,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'SdwrapError';
  }
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Control characters and line separators (a newline in a quoted value) as escapes, so a message stays one line. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this replaces
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A flag, value or config the user got wrong: one line (whatever text it quotes), exit 2. */
export class UsageError extends SdwrapError {
  constructor(message: string) {
    super(oneLine(message), 'SDWRAP_USAGE', EXIT.USAGE);
    this.name = 'UsageError';
  }
}

/** The command could not be started at all (not found, not executable). */
export class SpawnError extends SdwrapError {
  constructor(message: string, code: SdwrapErrorCode, exitCode: number) {
    super(message, code, exitCode);
    this.name = 'SpawnError';
  }
}

/**
 * A caller broke a module's contract (a value config.ts should already have refused): a bug in sdwrap, not the
 * user's mistake. cli.ts reports it with its stack, as any other internal error, and exits 70.
 */
export class InternalError extends SdwrapError {
  constructor(message: string) {
    super(message, 'SDWRAP_INTERNAL', EXIT.INTERNAL);
    this.name = 'InternalError';
  }
}

/** "ECONNREFUSED 127.0.0.1:8080"-style text for an error: its message, its errno code, and its causes. */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const cause = error.cause instanceof Error ? `: ${errorText(error.cause)}` : '';
    return `${error.message}${code && !error.message.includes(code) ? ` (${code})` : ''}${cause}`;
  }
  return String(error);
}
