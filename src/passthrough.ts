// --notify-passthrough, the run's side: opens the app's notify socket, feeds each datagram through the policy
// (app-notify.ts), forwards what the app says to systemd, and shows the app's STATUS= beside sdwrap's own
// by wrapping the notifier. READY and the watchdog stay the supervisor's to decide: it asks `ready` and `ping`.
import { monotonicMs } from './clock.js';
import { applyAppMessage, combinedStatus, initialAppNotify, parseDatagram, type AppNotifyState } from './app-notify.js';
import { openAppNotifySocket, type AppNotifySocket } from './app-notify-socket.js';
import type { Logger } from './logger.js';
import { formatLines, type Notifier } from './notify.js';

interface PassthroughEvents {
  /** The app said READY=1 (again, after its own reload). */
  ready(): void;
  /** The app said WATCHDOG=1. */
  ping(): void;
  /** The app said RELOADING=1. */
  reloading(): void;
  /** The app sent WATCHDOG=trigger. */
  trigger(): void;
}

export class NotifyPassthrough {
  #state: AppNotifyState = initialAppNotify;
  #own = '';
  readonly #socket: AppNotifySocket;
  /** The notifier the run uses: sdwrap's STATUS= lines get the app's appended. */
  readonly notifier: Notifier;

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly upstream: Notifier,
    private readonly log: Logger,
    /** The watchdog period the app is given (WATCHDOG_USEC), or undefined without one. */
    readonly periodMs: number | undefined,
    private readonly events: PassthroughEvents,
  ) {
    this.#socket = openAppNotifySocket(
      env,
      (data) => this.#onDatagram(data),
      (error) => log.warn({ err: error.message }, "the app's notify socket failed: the app's messages are no longer heard"),
    );
    this.notifier = {
      kind: upstream.kind,
      send: (lines) => upstream.send(lines.map((line) => (line.startsWith('STATUS=') ? this.#status(line.slice(7)) : line))),
      drain: (timeoutMs) => upstream.drain(timeoutMs),
    };
  }

  /** The app's environment: its own NOTIFY_SOCKET, and WATCHDOG_USEC when there is a watchdog (WATCHDOG_PID is set at spawn). */
  childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const out: NodeJS.ProcessEnv = { ...env, NOTIFY_SOCKET: this.#socket.address };
    if (this.periodMs !== undefined) out.WATCHDOG_USEC = String(Math.round(this.periodMs * 1000));
    return out;
  }

  /** The variables the spawn sets to the app's own pid. */
  get pidVars(): string[] {
    return this.periodMs === undefined ? [] : ['WATCHDOG_PID'];
  }

  #status(own: string): string {
    this.#own = own;
    // One line, bounded, as the protocol wants: the app's part is the app's text.
    return formatLines([`STATUS=${combinedStatus(own, this.#state.status)}`])[0]!;
  }

  #onDatagram(data: Buffer): void {
    const parsed = parseDatagram(data);
    if (!parsed.ok) {
      this.log.debug({ reason: parsed.reason, bytes: data.length }, "dropped a datagram from the app's notify socket");
      return;
    }
    const before = this.#state.lastPingAt;
    // The time only marks pings here; the lifecycle keeps the one its watchdog rule reads.
    const outcome = applyAppMessage(this.#state, parsed.assignments, monotonicMs());
    this.#state = outcome.state;
    for (const line of outcome.logs) this.log[line.level](line.fields ?? {}, line.msg);
    if (outcome.forward.length > 0) this.upstream.send(outcome.forward);
    if (outcome.statusChanged && this.#own !== '') this.upstream.send([this.#status(this.#own)]);
    if (outcome.forward.includes('RELOADING=1')) this.events.reloading();
    if (outcome.becameReady) this.events.ready();
    else if (outcome.state.lastPingAt !== before) this.events.ping();
    if (outcome.trigger) this.events.trigger();
  }

  /** Closes the socket and removes its directory; safe to call twice. */
  close(): void {
    this.#socket.close();
  }
}
