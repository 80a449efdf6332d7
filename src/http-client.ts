// One HTTP exchange on the platform's client (node:http, node:https: the native llhttp parser, little
// memory), for the HTTP probe and the heartbeat pushes. Every exchange has a connection of its own, closed
// when it ends, as Kubernetes' prober and curl do: a probe never meets a pooled socket the server has just
// closed, and each sees what a new client sees (a dead accept loop too).
import {
  request as plainRequest,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type RequestOptions,
} from 'node:http';
import { connect } from 'node:net';
import { InternalError } from './errors.js';
import { requireOptional } from './optional.js';

/** What is known once the status line and headers are in. */
export interface HttpHead {
  statusCode: number;
  /** Lower-case names; every header as the list of its values (a repeated header keeps each one). */
  headers: Record<string, string[]>;
  /** The Location header, when there is one. */
  location: string | undefined;
}

/** A complete answer. */
export interface HttpResult extends HttpHead {
  /** The body, as UTF-8 text, when readBody asked for it and it fit within bodyLimit. */
  body: string | undefined;
  /** The body was asked for and was larger than bodyLimit: the connection was dropped. */
  tooLarge: boolean;
}

/** One request: what to send, and how much of the answer to read. */
export interface HttpExchange {
  method: string;
  headers: OutgoingHttpHeaders;
  /** Sent with a Content-Length. */
  body?: string;
  /** Aborting destroys the request and its socket at once, in whatever state the exchange is. */
  signal: AbortSignal;
  /** Whether to read the body of this answer (up to bodyLimit); otherwise it is read and thrown away up to DRAIN_LIMIT_BYTES. */
  readBody?: (head: HttpHead) => boolean;
  bodyLimit?: number;
}

/** A body nobody reads is read up to this much, so a small one ends in a clean close; past it the socket is dropped. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

type Send = (options: RequestOptions) => ClientRequest;
let httpsRequest: Send | undefined;

/** node:https pulls in tls (several MiB): loaded only for the first https URL. */
function senderFor(url: URL): Send {
  if (url.protocol === 'http:') return plainRequest;
  if (url.protocol !== 'https:') throw new InternalError(`not an http:// or https:// URL: ${url.protocol}`);
  httpsRequest ??= (requireOptional('node:https') as typeof import('node:https')).request;
  return httpsRequest;
}

/**
 * Sends one request on a fresh connection and resolves once the answer is complete (or its body was cut off),
 * with the connection already released. Rejects on a connection or protocol error, or with the signal's reason
 * when it aborts. The URL's userinfo is never sent: credentials are the caller's to put in `headers`.
 */
export async function exchange(url: URL, x: HttpExchange): Promise<HttpResult> {
  x.signal.throwIfAborted();
  const send = senderFor(url);
  return new Promise<HttpResult>((resolve, reject) => {
    const req = send({
      protocol: url.protocol,
      // node wants an IPv6 host without its brackets.
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: x.method,
      headers: x.headers,
      // No agent, no pool: a connection of this request's own, with `Connection: close`.
      ...(url.protocol === 'http:' ? { createConnection: (options: RequestOptions) => connect(options as never) } : { agent: false }),
    });
    let settled = false;
    const settle = (error: unknown, result?: HttpResult) => {
      if (settled) return;
      settled = true;
      x.signal.removeEventListener('abort', onAbort);
      // Whatever happened, the connection goes now: after a complete answer it is a clean close.
      req.destroy();
      if (result) resolve(result);
      else reject(error);
    };
    const onAbort = () => settle(x.signal.reason ?? new Error('aborted'));
    x.signal.addEventListener('abort', onAbort, { once: true });
    // `on`, not `once`: a destroyed request may report a second error, and an unheard one would end sdwrap.
    req.on('error', (error) => settle(error));
    req.once('response', (res: IncomingMessage) => {
      const answer = (body: string | undefined, tooLarge: boolean): HttpResult => ({
        statusCode: res.statusCode ?? 0,
        // Made only when a header is asked for.
        get headers() {
          return res.headersDistinct as Record<string, string[]>;
        },
        location: res.headers.location,
        body,
        tooLarge,
      });
      let keep: boolean;
      try {
        keep = x.readBody?.(answer(undefined, false)) ?? false;
      } catch (error) {
        return settle(error);
      }
      const limit = keep ? (x.bodyLimit ?? Infinity) : DRAIN_LIMIT_BYTES;
      const cut = () => settle(undefined, answer(undefined, keep));
      if (Number(res.headers['content-length']) > limit) return cut();
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) return cut();
        if (keep) chunks.push(chunk);
      });
      res.on('end', () => settle(undefined, answer(keep ? Buffer.concat(chunks).toString('utf8') : undefined, false)));
      res.on('error', (error) => settle(error));
      res.on('close', () => settle(new Error('connection closed before the body ended')));
    });
    req.end(x.body);
  });
}
