// --notify-passthrough, the policy: what the app's own sd_notify messages mean to sdwrap. Pure (time is a
// parameter), so every rule is a table test. The app's READY=1 and fresh WATCHDOG=1 are ANDed with the
// probes (the supervisor asks appReady / appPing); what systemd should hear as the app said it is forwarded;
// what would make systemd track or hold something other than sdwrap (MAINPID=, the fd store) is dropped.

/** systemd reads at most this much of a datagram; anything longer was truncated for systemd too. */
const MAX_DATAGRAM = 4096;

export interface AppNotifyState {
  /** The app said READY=1 (since its last RELOADING=1). */
  readonly ready: boolean;
  /** When its last WATCHDOG=1 arrived (or its READY=1, which starts the watchdog as systemd's does). */
  readonly lastPingAt: number | undefined;
  /** Its last STATUS=, shown beside sdwrap's own. */
  readonly status: string | undefined;
  /** Kinds of dropped message already logged: each is said once. */
  readonly droppedSaid: readonly string[];
}

export const initialAppNotify: AppNotifyState = { ready: false, lastPingAt: undefined, status: undefined, droppedSaid: [] };

type AppNotifyLog = { level: 'debug' | 'info' | 'warn'; msg: string; fields?: Record<string, unknown> };

/** What one datagram from the app leads to. */
interface AppMessageOutcome {
  state: AppNotifyState;
  /** Assignments to send upstream, in one datagram (empty: nothing). */
  forward: string[];
  /** The app's STATUS= changed: the combined STATUS= goes out. */
  statusChanged: boolean;
  /** The app said READY=1 now (first time, or again after a reload). */
  becameReady: boolean;
  /** The app asked for WATCHDOG=trigger: an unhealthy verdict with the watchdog action. */
  trigger: boolean;
  logs: AppNotifyLog[];
}

/** Assignments systemd acts on that are the app's to say: forwarded as they are. */
const FORWARDED = new Set(['RELOADING', 'STOPPING', 'EXTEND_TIMEOUT_USEC', 'ERRNO', 'BUSERROR', 'MONOTONIC_USEC']);
/** Assignments that would make systemd watch another pid or keep fds for the app: not sdwrap's to pass on. */
const DROPPED: Record<string, string> = {
  MAINPID: 'MAINPID= (sdwrap stays the main process; use --pid-file to follow a daemon)',
  FDSTORE: 'FDSTORE= (the fd store is not passed through)',
  FDSTOREREMOVE: 'FDSTOREREMOVE= (the fd store is not passed through)',
  FDNAME: 'FDNAME= (the fd store is not passed through)',
  FDPOLL: 'FDPOLL= (the fd store is not passed through)',
  BARRIER: '',
  NOTIFYACCESS: 'NOTIFYACCESS= (sdwrap decides who is heard)',
  WATCHDOG_USEC: "WATCHDOG_USEC= (the watchdog period is the unit's)",
};

/** Parses a datagram as sd_notify(3) does: newline-separated VAR=VALUE, no NUL, at most 4096 bytes, UTF-8. */
export function parseDatagram(data: Buffer): { ok: true; assignments: Array<[string, string]> } | { ok: false; reason: string } {
  if (data.length === 0) return { ok: false, reason: 'empty' };
  if (data.length > MAX_DATAGRAM) return { ok: false, reason: `oversized (${data.length} bytes, more than ${MAX_DATAGRAM})` };
  if (data.includes(0)) return { ok: false, reason: 'holds a NUL byte' };
  const text = data.toString('utf8');
  if (text.includes('\uFFFD')) return { ok: false, reason: 'not UTF-8' };
  const assignments: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0 || !/^[A-Z_][A-Z0-9_]*$/.test(line.slice(0, eq))) return { ok: false, reason: `not VAR=VALUE: '${shorten(line)}'` };
    assignments.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  if (assignments.length === 0) return { ok: false, reason: 'no assignment' };
  return { ok: true, assignments };
}

function shorten(text: string): string {
  // eslint-disable-next-line no-control-regex
  const shown = text.replace(/[\x00-\x1f\x7f]/g, '?');
  return shown.length > 60 ? `${shown.slice(0, 60)}…` : shown;
}

/** Applies one datagram's assignments (parsed) at time `now`. */
export function applyAppMessage(state: AppNotifyState, assignments: ReadonlyArray<[string, string]>, now: number): AppMessageOutcome {
  const out: AppMessageOutcome = { state, forward: [], statusChanged: false, becameReady: false, trigger: false, logs: [] };
  let next = state;
  for (const [key, value] of assignments) {
    switch (key) {
      case 'READY':
        if (value === '1' && !next.ready) {
          next = { ...next, ready: true, lastPingAt: now };
          out.becameReady = true;
          out.logs.push({ level: 'info', msg: 'the app said READY=1' });
        }
        continue;
      case 'WATCHDOG':
        if (value === '1') next = { ...next, lastPingAt: now };
        else if (value === 'trigger') out.trigger = true;
        else out.logs.push({ level: 'debug', msg: 'dropped an unknown WATCHDOG= value from the app', fields: { value: shorten(value) } });
        continue;
      case 'STATUS':
        if (value !== next.status) {
          next = { ...next, status: value };
          out.statusChanged = true;
        }
        continue;
      case 'RELOADING':
        // The app reloads: it is not ready until it says READY=1 again (Type=notify-reload's protocol).
        if (value === '1') next = { ...next, ready: false };
        out.forward.push(`${key}=${value}`);
        continue;
    }
    if (FORWARDED.has(key)) {
      out.forward.push(`${key}=${value}`);
      continue;
    }
    const why = DROPPED[key];
    if (why === '') continue; // BARRIER=1: systemd-notify's handshake; its fd was closed on receipt
    const kind = why ?? `${key}= (not known to sdwrap)`;
    if (!next.droppedSaid.includes(kind)) {
      next = { ...next, droppedSaid: [...next.droppedSaid, kind] };
      out.logs.push({ level: why ? 'info' : 'debug', msg: `dropped the app's ${kind}; said once` });
    }
  }
  // MONOTONIC_USEC= only means something beside RELOADING=1.
  if (!out.forward.some((line) => line.startsWith('RELOADING='))) out.forward = out.forward.filter((l) => !l.startsWith('MONOTONIC_USEC='));
  out.state = next;
  return out;
}

/** Whether the app's own watchdog is fresh: always before its READY=1 (systemd's watchdog starts at start-up
 * too) and without a watchdog; else its last ping is at most `periodMs` old. */
export function appPing(
  state: Pick<AppNotifyState, 'ready' | 'lastPingAt'>,
  now: number,
  periodMs: number | undefined,
): { fresh: true } | { fresh: false; reason: string; ageMs: number } {
  if (periodMs === undefined || !state.ready || state.lastPingAt === undefined) return { fresh: true };
  const ageMs = now - state.lastPingAt;
  if (ageMs <= periodMs) return { fresh: true };
  return {
    fresh: false,
    ageMs,
    reason: `the app's own watchdog: no WATCHDOG=1 from it for ${Math.round(ageMs)}ms (its WATCHDOG_USEC is ${Math.round(periodMs)}ms)`,
  };
}

/** sdwrap's STATUS text with the app's beside it: "healthy: GET /healthz passed in 3ms; app: serving 12 clients". */
export function combinedStatus(own: string, app: string | undefined): string {
  return app === undefined || app === '' ? own : `${own}; app: ${app}`;
}
