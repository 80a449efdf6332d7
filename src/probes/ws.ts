// WebSocket probe: healthy when the upgrade succeeds and, if asked, the server answers with a matching
// message. A server can keep a health endpoint answering 200 while its WebSocket loop is dead; this probe
// talks to it the way a client does.
import type { Duplex } from 'node:stream';
// First: it sets a V8 flag that must be in place before undici compiles its parser.
import './wasm-baseline.js';
import { Agent, WebSocket, type Dispatcher } from 'undici';
import { errorText, InternalError } from '../errors.js';
import { withoutCredentials } from '../redact.js';
import type { Probe, ProbeOutcome } from './probe.js';

export interface WsProbeOptions {
  url: string;
  /** Sent once the connection opens. */
  send?: string;
  /** Healthy on the first message (text, or binary decoded as UTF-8) that matches; without it, on open. */
  expect?: RegExp;
}

/** How long a closing handshake may take before the socket is destroyed; shorter once the time is up. */
const CLOSE_GRACE_MS = 1000;
const CLOSE_GRACE_AFTER_ABORT_MS = 100;
const LAST_MESSAGE_CHARS = 100;
/** undici buffers each message whole (128 MiB by default); a probe has no use for big ones. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
const utf8 = new TextDecoder();

/** What the HTTP side of the handshake showed: undici's WebSocket reports every failure as a bare 1006. */
interface Handshake {
  dispatched: boolean;
  connected: boolean;
  status: number | undefined;
  error: Error | undefined;
  socket: Duplex | undefined;
}

/** Throws InternalError on a URL that is not ws:, wss: (or http:, https:, which undici maps to them): config.ts refuses those. */
export function wsProbe(options: WsProbeOptions): Probe {
  const url = new URL(options.url);
  // Never sent, and undici's WebSocket throws on it.
  url.hash = '';
  const shown = withoutCredentials(url);
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) {
    throw new InternalError(`a WebSocket probe needs a ws:// or wss:// URL, not ${shown}`);
  }
  return {
    description: `WS ${shown}`,
    run: (signal) => probeOnce(url, options, signal),
    // Nothing outlives a run: each has its own connection pool, destroyed before it settles.
    close: async () => {},
  };
}

function probeOnce(url: URL, { send, expect }: WsProbeOptions, signal: AbortSignal): Promise<ProbeOutcome> {
  if (signal.aborted) return Promise.resolve({ ok: false, detail: 'timed out connecting' });
  return new Promise((resolve) => {
    const handshake: Handshake = { dispatched: false, connected: false, status: undefined, error: undefined, socket: undefined };
    // A pool of its own, so that every run sees what a new client sees and its requests can be observed,
    // destroyed at the end whatever state the handshake was left in.
    const agent = new Agent({ connections: 1, webSocket: { maxPayloadSize: MAX_MESSAGE_BYTES } });
    const ws = new WebSocket(url.href, { dispatcher: agent.compose(observe(handshake)), headers: { 'user-agent': 'sdwrap-probe' } });
    ws.binaryType = 'arraybuffer';

    let opened = false;
    let last: string | undefined;
    let outcome: ProbeOutcome | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let finished = false;

    // Resolves only once the connection is gone: closed cleanly, or destroyed when the peer would not close.
    // undici itself never gives up on a closing handshake, nor closes the socket of a 101 answer it rejects.
    const finish = () => {
      if (finished) return;
      finished = true;
      signal.removeEventListener('abort', onAbort);
      clearTimeout(graceTimer);
      handshake.socket?.destroy();
      const done = () => resolve(outcome ?? { ok: false, detail: 'closed' });
      agent.destroy().then(done, done);
    };
    const decide = (result: ProbeOutcome, graceMs: number) => {
      if (outcome) return;
      outcome = result;
      graceTimer = setTimeout(finish, graceMs);
      // While connecting, this fails the connection and fires "close" at once; once open, it starts the
      // closing handshake and "close" follows the server's answer.
      ws.close(1000);
    };
    const onAbort = () => {
      const detail =
        opened && expect
          ? `no message matching ${expect} (${lastText(last)})`
          : handshake.connected
            ? 'no handshake answer in time'
            : 'timed out connecting';
      decide({ ok: false, detail }, CLOSE_GRACE_AFTER_ABORT_MS);
    };
    signal.addEventListener('abort', onAbort, { once: true });

    ws.addEventListener('open', () => {
      opened = true;
      if (send !== undefined) ws.send(send);
      if (!expect) decide({ ok: true, detail: 'connected' }, CLOSE_GRACE_MS);
    });
    ws.addEventListener('message', (event) => {
      if (!expect || outcome) return;
      const data: unknown = event.data;
      const text = typeof data === 'string' ? data : data instanceof ArrayBuffer ? utf8.decode(data) : String(data);
      // A /g or /y expression keeps state in lastIndex between test() calls.
      expect.lastIndex = 0;
      if (expect.test(text)) return decide({ ok: true, detail: `message matched ${expect}` }, CLOSE_GRACE_MS);
      last = text.length > LAST_MESSAGE_CHARS ? `${text.slice(0, LAST_MESSAGE_CHARS - 1)}…` : text;
    });
    // Failures also fire "close", which carries all that undici tells (its "error" event has an empty message).
    ws.addEventListener('error', () => {});
    ws.addEventListener('close', (event) => {
      // Without `expect` the outcome was decided on open, so an undecided close after open awaited `expect`.
      outcome ??= {
        ok: false,
        detail: opened && expect ? closedEarly(event.code, event.reason, expect, last) : handshakeFailure(handshake, event.code, url),
      };
      finish();
    });
  });
}

/** Records, for failure details, what undici's WebSocket does not report: connect errors and the HTTP status. */
function observe(handshake: Handshake): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    handshake.dispatched = true;
    return dispatch(opts, {
      onRequestStart(controller, context) {
        handshake.connected = true;
        handler.onRequestStart?.(controller, context);
      },
      onRequestUpgrade(controller, statusCode, headers, socket) {
        handshake.status = statusCode;
        handshake.socket = socket;
        handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
      },
      onResponseStart(controller, statusCode, headers, statusMessage) {
        handshake.status = statusCode;
        handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
      },
      onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
      onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
      onResponseError(controller, error) {
        handshake.error ??= error;
        handler.onResponseError?.(controller, error);
      },
    });
  };
}

function handshakeFailure({ dispatched, connected, status, error }: Handshake, code: number, url: URL): string {
  // undici's fetch refuses the fetch standard's "bad ports" (6000, 6665-6669, ...) without a word or a request.
  if (!dispatched) return `not attempted: undici blocks port ${url.port} (a "bad port" in the fetch standard)`;
  if (status !== undefined && status !== 101) return `handshake failed: HTTP ${status}`;
  // undici checks a 101 answer's Upgrade, Connection, Sec-WebSocket-Accept and extension headers, but does
  // not say which one failed.
  if (status === 101) return 'handshake failed: HTTP 101 with invalid upgrade headers';
  if (error) return connected ? `handshake failed: ${errorText(error)}` : errorText(error);
  return `handshake failed: connection closed (code ${code})`;
}

function closedEarly(code: number, reason: string, expect: RegExp, last: string | undefined): string {
  // 1006: no close frame came, because the connection dropped or undici failed it (a protocol error, a
  // message over MAX_MESSAGE_BYTES), and undici does not say which.
  const how =
    code === 1006
      ? 'connection ended without a close frame (code 1006)'
      : `closed by server (code ${code}${reason ? `: ${JSON.stringify(reason)}` : ''})`;
  return `${how} before a message matching ${expect}${last === undefined ? '' : ` (${lastText(last)})`}`;
}

function lastText(last: string | undefined): string {
  return last === undefined ? 'no message received' : `last: ${JSON.stringify(last)}`;
}
