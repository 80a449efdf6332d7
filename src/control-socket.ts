// The control socket: a unix stream socket (mode 0600, so only the service's user, and root, can connect)
// over which `sdwrap reload` asks the running sdwrap to reload the app, and waits until every probe has
// passed again. A request is the lifecycle's 'reload-request': the reload a SIGHUP starts (SIGHUP relayed,
// READY=1 once every probe started since has passed), less RELOADING=1, as systemd is reloading already
// while ExecReload= runs.
//
// Served when --control-socket is given or RUNTIME_DIRECTORY is set ($RUNTIME_DIRECTORY/sdwrap.sock);
// removed when sdwrap exits. A stale socket (nobody listening) is replaced; a live one means another
// sdwrap serves it, and this one refuses to start.
import { EventEmitter } from 'node:events';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { systemClock, type Clock } from './clock.js';
import { RELOAD_REQUEST, type ControlErrorCode, type ControlReply } from './control-protocol.js';
import { formatSpan } from './duration.js';
import { UsageError } from './errors.js';
import { statusText } from './lifecycle.js';
import type { Logger } from './logger.js';
import type { RunView, SupervisorObserver } from './supervisor.js';

/** What the socket keeps of the run under way. */
type RunState = Omit<RunView, 'pid'>;

/** A request line longer than this is garbage. */
const MAX_REQUEST_BYTES = 256;
/** A peer that sends no request line within this is dropped. */
const REQUEST_TIMEOUT_MS = 5000;
/** Connections served at once; `sdwrap reload` needs one. */
const MAX_CONNECTIONS = 8;
/** How long the check for a live socket waits for a connection. */
const LIVE_CHECK_MS = 1000;

export interface ControlSocketOptions {
  path: string;
  /** How messages name the path's origin: "--control-socket" or "$RUNTIME_DIRECTORY". */
  origin: string;
  log: Logger;
  /** Resolves once every sd_notify message sent so far is out: READY=1 reaches systemd before the answer. */
  drain: () => Promise<void>;
  clock?: Clock;
}

export interface ControlSocket {
  readonly path: string;
  /** For SupervisorDeps.control: a 'reload' event for each reload asked for. */
  readonly requests: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
  /** For SupervisorDeps.observer: how the socket learns a reload's outcome. */
  readonly observer: SupervisorObserver;
  /** Stops serving and removes the socket; safe to call twice. */
  close(): Promise<void>;
}

/** A reload asked for over the socket, until its outcome is known. */
interface PendingReload {
  /** Undefined once the peer has gone: the reload goes on, its outcome is only logged. */
  peer: Socket | undefined;
  startedAt: number;
}

/** Binds the socket (after clearing a stale one) and serves it. Throws UsageError when it cannot. */
export async function serveControlSocket(options: ControlSocketOptions): Promise<ControlSocket> {
  const { path, origin, log } = options;
  const clock = options.clock ?? systemClock;
  const requests = new EventEmitter();
  let view: RunState = { state: 'starting', cause: undefined, child: undefined };
  let pending: PendingReload | undefined;
  // Read through a call: the observer updates `view` while requests.emit() runs.
  const current = () => view;

  const reply = (peer: Socket | undefined, message: ControlReply, final = false) => {
    if (!peer || peer.destroyed) return;
    peer.write(`${JSON.stringify(message)}\n`);
    // Closed for good once written, whether or not the peer ever closes its side.
    if (final) peer.end(() => peer.destroy());
  };
  const refuse = (peer: Socket, code: ControlErrorCode, message: string) => reply(peer, { event: 'error', code, message }, true);

  function onRequest(peer: Socket, line: string): void {
    if (line !== RELOAD_REQUEST) {
      log.warn({ request: printable(line) }, 'control socket: unknown request');
      return refuse(peer, 'bad-request', `unknown request '${printable(line)}': the only request is '${RELOAD_REQUEST}'`);
    }
    log.info('reload requested over the control socket');
    switch (view.state) {
      case 'starting':
        return refuse(peer, 'not-ready', 'the app is still starting (READY=1 not sent yet): a reload needs it ready first');
      case 'reloading':
        // Another asker waits on the reload under way: this one asks again once it has ended. A reload
        // nobody waits on any more (a SIGHUP's, or one whose asker gave up) starts over for this one.
        if (pending?.peer) return refuse(peer, 'busy', 'a reload is under way: ask again once it has ended');
        break;
      case 'running':
        break;
      default:
        return refuse(peer, 'stopping', endingText(view));
    }
    pending = { peer, startedAt: clock.now() };
    // The supervisor handles it at once: SIGHUP relayed, state 'reloading'.
    requests.emit('reload');
    if (current().state !== 'reloading' || requests.listenerCount('reload') === 0) {
      pending = undefined;
      return refuse(
        peer,
        'stopping',
        `the reload did not start (${current().state === 'running' ? 'no run is listening' : endingText(current())})`,
      );
    }
    reply(peer, { event: 'reloading' });
  }

  const observer: SupervisorObserver = {
    state(next) {
      view = next;
      const reload = pending;
      if (!reload || next.state === 'reloading') return;
      pending = undefined;
      const ms = Math.round(clock.now() - reload.startedAt);
      if (next.state === 'running') {
        const answer = () => reply(reload.peer, { event: 'reloaded', ms }, true);
        void options.drain().then(answer, answer);
        return;
      }
      const message = `the reload failed after ${formatSpan(ms)}: ${endingText(next)}`;
      log.warn({ reason: message }, 'control socket: reload failed');
      reply(reload.peer, { event: 'error', code: 'failed', message }, true);
    },
    probe(description, result) {
      if (pending && !result.ok) reply(pending.peer, { event: 'probe', probe: description, detail: result.detail });
    },
  };

  function onConnection(peer: Socket): void {
    let buffered = '';
    let answered = false;
    const timer = clock.setTimeout(() => {
      if (!answered) refuse(peer, 'bad-request', `no request within ${formatSpan(REQUEST_TIMEOUT_MS)}`);
      answered = true;
    }, REQUEST_TIMEOUT_MS);
    // A peer that dies or resets mid-answer is no business of the app's.
    peer.on('error', (error) => log.debug({ err: error.message }, 'control socket: peer error'));
    peer.on('close', () => {
      clock.clearTimeout(timer);
      if (pending?.peer === peer) pending.peer = undefined;
    });
    peer.setEncoding('utf8');
    peer.on('data', (chunk: string) => {
      if (answered) return;
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0 && buffered.length <= MAX_REQUEST_BYTES) return;
      answered = true;
      clock.clearTimeout(timer);
      if (newline < 0 || newline > MAX_REQUEST_BYTES) {
        log.warn('control socket: request too long');
        return refuse(peer, 'bad-request', `request longer than ${MAX_REQUEST_BYTES} bytes`);
      }
      onRequest(peer, buffered.slice(0, newline).replace(/\r$/, '').trim());
    });
    // A request without its newline, then the end of what the peer sends (`printf reload | socat ...`): still a request.
    peer.on('end', () => {
      if (answered) return;
      answered = true;
      clock.clearTimeout(timer);
      if (buffered.trim() === '') peer.destroy();
      else onRequest(peer, buffered.replace(/\r?\n$/, '').trim());
    });
  }

  await clearStale(path, origin, log);
  const server = createServer({ allowHalfOpen: true }, onConnection);
  server.maxConnections = MAX_CONNECTIONS;
  await listenPrivately(server, path, origin);
  const { ino } = lstatSync(path);
  // process.exit() (an internal error) skips close(): the socket must not outlive sdwrap all the same.
  const removeAtExit = () => removeIfOurs(path, ino);
  process.on('exit', removeAtExit);
  log.info({ controlSocket: path }, 'control socket ready');

  let closed: Promise<void> | undefined;
  return {
    path,
    requests,
    observer,
    close() {
      closed ??= new Promise<void>((resolve) => {
        process.off('exit', removeAtExit);
        server.close(() => resolve());
        // libuv unlinks the path when the listening handle closes; this covers a socket replaced meanwhile.
        removeIfOurs(path, ino);
      });
      return closed;
    },
  };
}

/** Why a run is ending or has ended, for a refused or failed reload. */
function endingText(view: RunState): string {
  if (view.cause?.kind === 'unhealthy') return `the app became unhealthy: ${view.cause.reason}`;
  if (view.cause?.kind === 'signal') return `sdwrap is stopping the app on ${view.cause.signal}`;
  if (view.child) return `the app ${statusText(view.child)}`;
  return `the app is ${view.state === 'stopping' ? 'stopping' : 'gone'}`;
}

/** A request as a log line or message may show it: short, printable. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.slice(0, 40).replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

/**
 * Binds with a umask that leaves the socket 0600 from the moment it exists (connecting takes write
 * permission): there is no window in which another user could connect. chmod after, should the file
 * system have ignored the umask.
 */
async function listenPrivately(server: Server, path: string, origin: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new UsageError(`${origin} ${path}: cannot listen: ${error.code ?? error.message}`)),
    );
    const umask = process.umask(0o177);
    try {
      // The bind happens inside listen(), synchronously; errors come later, through 'error'.
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  chmodSync(path, 0o600);
}

/** Removes a socket left by an sdwrap that did not exit cleanly; throws UsageError when a live one is there. */
async function clearStale(path: string, origin: string, log: Logger): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new UsageError(`${origin} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!isSocket) throw new UsageError(`${origin} ${path} exists and is not a socket: remove it or choose another path`);
  const answer = await probeSocket(path);
  if (answer === 'live') {
    throw new UsageError(
      `${origin} ${path}: another sdwrap is serving this control socket (a second sdwrap for the same unit?); stop it, or give this one --control-socket with a path of its own`,
    );
  }
  if (answer !== 'stale') throw new UsageError(`${origin} ${path}: cannot tell whether another sdwrap serves it (${answer})`);
  try {
    unlinkSync(path);
  } catch (error) {
    throw new UsageError(
      `${origin} ${path}: cannot remove the stale socket: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  log.info({ controlSocket: path }, 'removed a stale control socket');
}

/** 'live' when something accepts a connection, 'stale' when nothing listens, else the error code. */
function probeSocket(path: string): Promise<'live' | 'stale' | string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (answer: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    // A listener whose backlog is full does not answer at once: it is there all the same.
    const timer = setTimeout(() => done('live'), LIVE_CHECK_MS);
    socket.once('connect', () => done('live'));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'stale' : (error.code ?? error.message)),
    );
  });
}

/** Unlinks the path if it is still the socket this sdwrap bound (same inode). */
function removeIfOurs(path: string, ino: number): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path);
  } catch {
    // already gone
  }
}
