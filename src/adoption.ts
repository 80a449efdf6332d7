// --pid-file, the run's side: snapshot the pid file before the command runs, wait for it, adopt the process
// it names and watch it, re-read it after a reload or when the adopted process ends (a daemon that re-execs
// writes a new pid). Each outcome is reported to the supervisor as an event; the lifecycle decides.
import type { Logger } from './logger.js';
import {
  isSameProcessAlive,
  readPidFile,
  snapshotPidFile,
  waitForPidFile,
  watchProcess,
  type PidFileSnapshot,
  type ProcessIdentity,
  type ProcessWatch,
} from './pid-file.js';

/** How often /proc/<pid> is polled for the adopted process's end: the detection latency (bench: adopted-exit). */
export const ADOPTED_POLL_MS = 100;

interface AdoptionEvents {
  /** The pid file named a process to follow (first time, or another one after a re-read). */
  adopted(identity: ProcessIdentity, previous: ProcessIdentity | undefined): void;
  /** No usable pid by the deadline, or one that can never be right: an unhealthy start. */
  failed(reason: string): void;
  /** The adopted process is gone, and the pid file names no other live process. */
  gone(identity: ProcessIdentity): void;
}

export class Adoption {
  #snapshot: PidFileSnapshot;
  #identity: ProcessIdentity | undefined;
  #watch: ProcessWatch | undefined;
  readonly #abort = new AbortController();
  #closed = false;

  constructor(
    readonly path: string,
    private readonly ownPid: number,
    private readonly events: AdoptionEvents,
    private readonly log: Logger,
  ) {
    // Taken before the command runs: a file left by an earlier run is not this daemon's.
    this.#snapshot = snapshotPidFile(path);
  }

  /** The adopted process, once there is one. */
  get identity(): ProcessIdentity | undefined {
    return this.#identity;
  }

  /** Starts waiting for the pid file (after the spawn), for at most timeoutMs. */
  start(timeoutMs: number): void {
    waitForPidFile(this.path, { ownPid: this.ownPid, snapshot: this.#snapshot, timeoutMs, signal: this.#abort.signal }).then(
      (identity) => {
        if (identity && !this.#closed) this.#adopt(identity);
      },
      (error: Error) => {
        if (!this.#closed) this.events.failed(error.message);
      },
    );
  }

  /** Re-reads the pid file (after a reload: a daemon that re-execs may have a new pid); follows a new live pid. */
  reread(): void {
    if (this.#closed || !this.#identity) return;
    const reading = readPidFile(this.path, { ownPid: this.ownPid });
    if (!reading.ok) {
      this.log.debug({ pidFile: this.path, problem: reading.problem }, 'pid file re-read: keeping the daemon followed');
      return;
    }
    if (reading.identity.pid !== this.#identity.pid || reading.identity.startTime !== this.#identity.startTime)
      this.#adopt(reading.identity);
  }

  #adopt(identity: ProcessIdentity): void {
    const previous = this.#identity;
    this.#watch?.stop();
    this.#identity = identity;
    const watch = watchProcess(identity, { pollMs: ADOPTED_POLL_MS });
    this.#watch = watch;
    void watch.gone.then(() => {
      if (this.#closed || this.#watch !== watch) return;
      // A daemon that re-execs or hands over writes its new pid first: follow that one instead of ending.
      this.reread();
      if (this.#identity === identity || !isSameProcessAlive(this.#identity!)) this.events.gone(identity);
    });
    this.events.adopted(identity, previous);
  }

  /** Stops waiting and watching; safe to call twice. */
  close(): void {
    this.#closed = true;
    this.#abort.abort();
    this.#watch?.stop();
  }
}
