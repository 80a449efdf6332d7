// The supervisor's lifecycle as data: states, events, and one pure transition function that answers
// "what happens when X arrives in state Y" in one table. supervisor.ts carries out the effects.

/** The adopted daemon vanished (EXIT.APP_VANISHED in errors.ts, kept here so the table imports nothing). */
const EXIT_APP_VANISHED = 75;

export type State =
  /** Child spawned, READY=1 not yet sent. */
  | 'starting'
  /** READY=1 sent; the child is healthy. */
  | 'running'
  /** SIGHUP relayed with RELOADING=1; READY=1 again once the probes pass anew. */
  | 'reloading'
  /** The child was asked to stop (a relayed stop signal, or killed as unhealthy); waiting for it to exit. */
  | 'stopping'
  /** The child has exited; ending whatever is left of its process tree. */
  | 'reaping'
  /** Nothing left: sdwrap exits. */
  | 'done';

/** SIGABRT is what systemd's watchdog sends (WatchdogSignal=): relayed, it gets the hung app's core dump. */
export type StopSignal = 'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGABRT';
export type RelayedSignal = StopSignal | 'SIGHUP' | 'SIGUSR1' | 'SIGUSR2' | 'SIGWINCH';

/** Signals sdwrap relays to the child unchanged; the stop signals also stop it. */
export const RELAYED_SIGNALS: readonly RelayedSignal[] = [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
  'SIGABRT',
];
export const STOP_SIGNALS: readonly StopSignal[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGABRT'];

/** kill: sdwrap ends the tree itself; watchdog: WATCHDOG=trigger, and systemd's watchdog action follows. */
export type UnhealthyAction = 'kill' | 'watchdog';

export interface ChildStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Extra log fields an event carries to the line it causes: a probe's latencyMs, the startupMs of a start. */
export type LogFields = Record<string, unknown>;

export type Event =
  | { type: 'healthy'; detail: string; fields?: LogFields }
  | { type: 'unhealthy'; reason: string; action: UnhealthyAction; fields?: LogFields }
  | { type: 'signal'; signal: RelayedSignal }
  | { type: 'child-exit'; status: ChildStatus; fields?: LogFields }
  /** The grace period after SIGTERM (--stop-timeout) ran out. */
  | { type: 'deadline' }
  /** Every process of the child's tree is gone. */
  | { type: 'tree-gone' }
  /**
   * `sdwrap reload` asked over the control socket, as ExecReload=: the reload a SIGHUP starts, less
   * RELOADING=1. systemd is reloading already, until that command exits; after a RELOADING=1 it would go
   * on reloading past a failed `sdwrap reload` until READY=1 (systemd 252 re-enters its reload state).
   * Asked again while reloading (its asker gone), it starts over: SIGHUP again, fresh probes.
   */
  | { type: 'reload-request' }
  // issue 12 (legacy apps):
  /** --notify-passthrough: the app said READY=1. */
  | { type: 'app-ready' }
  /** --pid-file: the pid file names a process to follow (`self`: the command's own pid, whose exit status sdwrap reads). */
  | { type: 'adopted'; pid: number; previous: number | undefined; self: boolean }
  /** --pid-file: the adopted daemon is gone (sdwrap is not its parent: no status). */
  | { type: 'adopted-exit'; pid: number; fields?: LogFields };

/** Why sdwrap is ending, recorded once: the first reason wins. */
export type StopCause = { kind: 'signal'; signal: StopSignal } | { kind: 'unhealthy'; reason: string };

export type Effect =
  | { type: 'notify'; lines: string[] }
  /** RELOADING=1 with MONOTONIC_USEC= of the moment, in one datagram (Type=notify-reload). */
  | { type: 'notify-reloading' }
  /** Wait for every probe to pass anew, then feed a 'healthy' event. */
  | { type: 'await-fresh-probes' }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'relay'; signal: RelayedSignal }
  /** SIGTERM (then SIGCONT, as systemd does, so a stopped process can act on it) to the child's whole tree. */
  | { type: 'terminate-tree' }
  | { type: 'kill-tree' }
  | { type: 'stop-probing' }
  | { type: 'arm-deadline' }
  | { type: 'disarm-deadline' }
  | { type: 'watch-tree' }
  /** End what is left of the tree after its head exited on its own: nothing left means tree-gone at once;
   * else SIGTERM (+SIGCONT), the deadline, and watch-tree. */
  | { type: 'reap-tree' }
  /** The tree is gone: sdwrap ends by finalCause() and the child's status (read when it does). */
  | { type: 'exit' };

/** What READY=1 waits for besides the probes: the app's own READY=1 (--notify-passthrough), the daemon's pid (--pid-file). */
export type Gate = 'app-ready' | 'adoption';

/** Which process is the app: the command (child), or, with --pid-file, the daemon it names (waiting for it, or adopted). */
export type Follow = 'child' | 'pid-file' | 'adopted';

export interface Machine {
  readonly state: State;
  readonly cause: StopCause | undefined;
  readonly child: ChildStatus | undefined;
  /** The first stop signal received, in any state: a stop asked for is never lost (nor restarted past). */
  readonly stopRequested: StopSignal | undefined;
  /** Gates READY=1 still waits for; empty for a plain app. */
  readonly gates: readonly Gate[];
  /** The probes passed while a gate was still closed: READY=1 goes out with this once the gates open. */
  readonly pendingReady: { detail: string; fields?: LogFields } | undefined;
  readonly follow: Follow;
  /** --pid-file: the command's exit 0 while the pid file was awaited (nothing of the app may be left to stop). */
  readonly commandExit: ChildStatus | undefined;
}

export const initialMachine: Machine = {
  state: 'starting',
  cause: undefined,
  child: undefined,
  stopRequested: undefined,
  gates: [],
  pendingReady: undefined,
  follow: 'child',
  commandExit: undefined,
};

/** The first machine of a run: gated by the app's READY=1 and/or the pid file. */
export function initialMachineFor({ notifyPassthrough, pidFile }: { notifyPassthrough: boolean; pidFile: boolean }): Machine {
  const gates: Gate[] = [];
  if (notifyPassthrough) gates.push('app-ready');
  if (pidFile) gates.push('adoption');
  return { ...initialMachine, gates, follow: pidFile ? 'pid-file' : 'child' };
}

const GATE_TEXT: Record<Gate, string> = { 'app-ready': "the app's READY=1", adoption: 'the pid file' };

/** READY=1 (and the "ready" or "reloaded" line) from starting or reloading. */
function becomeReady(m: Machine, detail: string, fields: LogFields | undefined): Transition {
  return same({ ...m, state: 'running', pendingReady: undefined }, [
    { type: 'notify', lines: ['READY=1', `STATUS=healthy: ${detail}`] },
    { type: 'log', level: 'info', msg: m.state === 'starting' ? 'ready' : 'reloaded', fields: { detail, ...fields } },
  ]);
}

/** A gate opened: READY=1 when the probes had passed and no other gate is closed. */
function openGate(m: Machine, gate: Gate, effects: Effect[]): Transition {
  const next: Machine = { ...m, gates: m.gates.filter((g) => g !== gate) };
  if (next.state === 'starting' && next.gates.length === 0 && next.pendingReady) {
    const ready = becomeReady(next, next.pendingReady.detail, next.pendingReady.fields);
    return same(ready.machine, [...effects, ...ready.effects]);
  }
  return same(next, effects);
}

/**
 * Why sdwrap ends, all told: a stop asked for (SIGTERM, SIGINT, SIGQUIT) while an unhealthy app was being
 * killed wins over the unhealthy verdict, so `systemctl stop` then ends clean and --no-systemd does not
 * restart. SIGABRT is systemd's own watchdog action on a WATCHDOG=trigger, not a stop asked for.
 */
export function finalCause(m: Machine): StopCause | undefined {
  if (m.stopRequested && m.stopRequested !== 'SIGABRT' && m.cause?.kind !== 'signal') return { kind: 'signal', signal: m.stopRequested };
  return m.cause;
}

export interface Transition {
  machine: Machine;
  effects: Effect[];
}

const same = (machine: Machine, effects: Effect[] = []): Transition => ({ machine, effects });

/** The transition table. */
export function transition(m: Machine, event: Event): Transition {
  const t = table(m, event);
  // issue 12: a stop (or an unhealthy pid file) while --pid-file waits after the command exited: no app to
  // signal or wait for, so what the command left is reaped at once.
  if (m.follow === 'pid-file' && m.commandExit && m.state !== 'stopping' && t.machine.state === 'stopping') {
    const kept = t.effects.filter((e) => e.type === 'log' || e.type === 'notify' || e.type === 'stop-probing');
    return same({ ...t.machine, state: 'reaping', child: m.commandExit }, [...kept, { type: 'reap-tree' }]);
  }
  return t;
}

function table(m: Machine, event: Event): Transition {
  switch (event.type) {
    case 'healthy':
      if (m.state !== 'starting' && m.state !== 'reloading') return same(m);
      if (m.state === 'starting' && m.gates.length > 0) {
        // issue 12: the probes alone do not make the app ready; said once, not at every passing probe.
        const waiting = m.gates.map((g) => GATE_TEXT[g]).join(' and ');
        return same(
          { ...m, pendingReady: { detail: event.detail, fields: event.fields } },
          m.pendingReady
            ? []
            : [{ type: 'log', level: 'info', msg: `probes passed; READY=1 waits for ${waiting}`, fields: { detail: event.detail } }],
        );
      }
      return becomeReady(m, event.detail, event.fields);

    case 'app-ready':
      if (!m.gates.includes('app-ready')) return same(m);
      return openGate(m, 'app-ready', []);

    case 'adopted': {
      if (m.state !== 'starting' && m.state !== 'running' && m.state !== 'reloading') return same(m);
      const msg =
        event.previous === undefined ? 'adopted the daemon named by the pid file' : 'the pid file names another process: following it';
      const fields = { adoptedPid: event.pid, ...(event.previous === undefined ? {} : { previousPid: event.previous }) };
      // The command's own pid: it is the app, and its exit status will be read as usual.
      return openGate({ ...m, follow: event.self ? 'child' : 'adopted' }, 'adoption', [{ type: 'log', level: 'info', msg, fields }]);
    }

    case 'adopted-exit': {
      if (m.follow !== 'adopted' || m.state === 'reaping' || m.state === 'done') return same(m);
      // Its status cannot be read. Asked to stop (or killed as unhealthy): the end that was asked for, 0.
      // Otherwise it vanished: a failure Restart=on-failure restarts.
      const stopped = m.cause !== undefined || m.stopRequested !== undefined;
      const status: ChildStatus = { code: stopped ? 0 : EXIT_APP_VANISHED, signal: null };
      const effects: Effect[] = [
        {
          type: 'log',
          level: stopped ? 'info' : 'warn',
          msg: stopped ? 'the adopted daemon exited' : 'the adopted daemon vanished',
          fields: { adoptedPid: event.pid, ...event.fields },
        },
        { type: 'stop-probing' },
      ];
      if (!stopped) effects.push({ type: 'notify', lines: [`STATUS=the adopted daemon (pid ${event.pid}) vanished`] });
      effects.push(m.state === 'stopping' ? { type: 'watch-tree' } : { type: 'reap-tree' });
      return same({ ...m, state: 'reaping', child: status }, effects);
    }

    case 'unhealthy': {
      if (m.state !== 'starting' && m.state !== 'running' && m.state !== 'reloading') return same(m);
      const next: Machine = { ...m, state: 'stopping', cause: { kind: 'unhealthy', reason: event.reason } };
      if (event.action === 'watchdog') {
        // systemd's watchdog action will signal sdwrap (SIGABRT by default); if it never comes, kill at the deadline.
        return same(next, [
          {
            type: 'log',
            level: 'error',
            msg: "unhealthy: triggering systemd's watchdog",
            fields: { reason: event.reason, ...event.fields },
          },
          { type: 'notify', lines: ['WATCHDOG=trigger', `STATUS=unhealthy, watchdog triggered: ${event.reason}`] },
          { type: 'stop-probing' },
          { type: 'arm-deadline' },
        ]);
      }
      return same(next, [
        { type: 'log', level: 'error', msg: 'unhealthy: killing the child', fields: { reason: event.reason, ...event.fields } },
        { type: 'notify', lines: [`STATUS=unhealthy, killing the app: ${event.reason}`] },
        { type: 'stop-probing' },
        { type: 'terminate-tree' },
        { type: 'arm-deadline' },
      ]);
    }

    case 'signal': {
      const stop = (STOP_SIGNALS as readonly string[]).includes(event.signal);
      if (stop && m.stopRequested === undefined) m = { ...m, stopRequested: event.signal as StopSignal };
      if (m.state === 'done' || m.state === 'reaping') {
        // The child is gone; a stop now still means "do not restart it" (--no-systemd).
        return same(
          m,
          stop
            ? [{ type: 'log', level: 'info', msg: 'stopping: signal received while the app was exiting', fields: { signal: event.signal } }]
            : [],
        );
      }
      if (event.signal === 'SIGHUP' && m.state === 'running') {
        // A reload (systemctl reload, Type=notify-reload): systemd waits for READY=1 after RELOADING=1.
        return same({ ...m, state: 'reloading' }, [
          { type: 'notify-reloading' },
          { type: 'relay', signal: event.signal },
          { type: 'log', level: 'info', msg: 'reloading: SIGHUP relayed', fields: { signal: event.signal } },
          { type: 'await-fresh-probes' },
        ]);
      }
      if (!stop || m.state === 'stopping') {
        return same(m, [
          { type: 'relay', signal: event.signal },
          { type: 'log', level: 'info', msg: 'signal relayed', fields: { signal: event.signal } },
        ]);
      }
      const signal = event.signal as StopSignal;
      // Relay first: the app's grace period starts now, not after a log line that may wait on the journal.
      return same({ ...m, state: 'stopping', cause: { kind: 'signal', signal } }, [
        { type: 'relay', signal },
        { type: 'log', level: 'info', msg: 'stopping: signal relayed', fields: { signal } },
        { type: 'notify', lines: ['STOPPING=1', `STATUS=stopping on ${signal}`] },
        { type: 'stop-probing' },
        { type: 'arm-deadline' },
      ]);
    }

    case 'reload-request':
      if (m.state !== 'running' && m.state !== 'reloading') return same(m);
      return same({ ...m, state: 'reloading' }, [
        { type: 'notify', lines: ['STATUS=reloading: SIGHUP relayed (sdwrap reload), waiting for the probes'] },
        { type: 'relay', signal: 'SIGHUP' },
        { type: 'log', level: 'info', msg: 'reloading: SIGHUP relayed', fields: { signal: 'SIGHUP', by: 'sdwrap reload' } },
        { type: 'await-fresh-probes' },
      ]);

    case 'deadline':
      if (m.state !== 'stopping' && m.state !== 'reaping') return same(m);
      return same(m, [
        {
          type: 'log',
          level: 'warn',
          msg: m.state === 'stopping' ? 'stop timeout reached: killing the tree' : 'leftover processes did not exit: killing them',
        },
        { type: 'kill-tree' },
      ]);

    case 'child-exit': {
      if (m.state === 'reaping' || m.state === 'done') return same(m);
      // issue 12: with --pid-file, the command's exit 0 before the pid file is the daemon forking, not the end;
      // once a daemon is adopted, the command's exit is only news.
      if (m.follow === 'adopted' || (m.follow === 'pid-file' && event.status.code === 0 && m.state !== 'stopping')) {
        const msg = m.follow === 'adopted' ? 'the command exited; following the daemon' : 'the command exited 0: waiting for the pid file';
        return same(m.follow === 'adopted' ? m : { ...m, commandExit: event.status }, [
          { type: 'log', level: 'info', msg, fields: { ...describeStatus(event.status), ...event.fields } },
        ]);
      }
      const effects: Effect[] = [
        {
          type: 'log',
          level: m.cause === undefined ? 'warn' : 'info',
          msg: 'child exited',
          fields: { ...describeStatus(event.status), ...event.fields },
        },
        { type: 'stop-probing' },
      ];
      if (m.cause === undefined) effects.push({ type: 'notify', lines: [`STATUS=app ${statusText(event.status)}`] });
      // A tree whose head is gone gets the same treatment as a stop: TERM, grace, KILL. When stopping, the
      // TERM went out and the deadline runs already.
      effects.push(m.state === 'stopping' ? { type: 'watch-tree' } : { type: 'reap-tree' });
      return same({ ...m, state: 'reaping', child: event.status }, effects);
    }

    case 'tree-gone':
      if (m.state !== 'reaping') return same(m);
      return same({ ...m, state: 'done' }, [{ type: 'disarm-deadline' }, { type: 'exit' }]);
  }
}

/** "exited with code 3", "was killed by SIGKILL". */
export function statusText(status: ChildStatus): string {
  return status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
}

/** Log fields for a child's exit status. */
export function describeStatus(status: ChildStatus): Record<string, unknown> {
  return status.signal ? { signal: status.signal } : { code: status.code };
}
