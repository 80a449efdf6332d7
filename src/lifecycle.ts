// The supervisor's lifecycle as data: states, events, and one pure transition function that answers
// "what happens when X arrives in state Y" in one table. supervisor.ts carries out the effects.

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
  | { type: 'reload-request' };

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

export interface Machine {
  readonly state: State;
  readonly cause: StopCause | undefined;
  readonly child: ChildStatus | undefined;
  /** The first stop signal received, in any state: a stop asked for is never lost (nor restarted past). */
  readonly stopRequested: StopSignal | undefined;
}

export const initialMachine: Machine = { state: 'starting', cause: undefined, child: undefined, stopRequested: undefined };

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
  switch (event.type) {
    case 'healthy':
      if (m.state !== 'starting' && m.state !== 'reloading') return same(m);
      return same({ ...m, state: 'running' }, [
        { type: 'notify', lines: ['READY=1', `STATUS=healthy: ${event.detail}`] },
        {
          type: 'log',
          level: 'info',
          msg: m.state === 'starting' ? 'ready' : 'reloaded',
          fields: { detail: event.detail, ...event.fields },
        },
      ]);

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
