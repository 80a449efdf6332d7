// HTTP probe: GET the URL like a client would and judge the answer with http-assertions (status list,
// headers, body pattern, JSON paths). Redirects are answers unless asked to follow them.
import { Client, request, type Dispatcher } from 'undici';
import type { HttpMethod } from '../config.js';
import {
  checkHead,
  checkResponse,
  isSecretHeader,
  needsBody,
  type RequestHeader,
  type ResponseAssertions,
  type Verdict,
} from '../http-assertions.js';
import { errorText, type Probe, type ProbeOutcome } from './probe.js';

export interface HttpProbeSpec extends ResponseAssertions {
  url: string;
  method: HttpMethod;
  requestHeaders: RequestHeader[];
  followRedirects: boolean;
}

/** Bodies are read only for --http-body/--http-json, and never past this. */
export const BODY_CAP_BYTES = 1024 * 1024;
/** How many redirects --http-follow-redirects follows before giving up. */
export const MAX_REDIRECTS = 5;
/** A body nobody reads is drained up to this much to keep the connection; past it the socket is closed instead. */
const DRAIN_LIMIT_BYTES = 64 * 1024;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** The final response to judge (with a note when a redirect was left unfollowed), or a verdict already. */
type Answer = { response: Dispatcher.ResponseData; note?: string } | { verdict: Verdict };

// Keep-alive, but only where reusing a socket cannot race the server closing it. undici 7 times an idle
// socket itself and closes it after keepAliveTimeout (4 s), or, when the server announces
// `Keep-Alive: timeout=N`, after N s minus keepAliveTimeoutThreshold (2 s), capped at keepAliveMaxTimeout:
// so the probe never writes to a socket the server is about to drop as idle, and a hint of 2 s or less
// means no reuse at all (lib/dispatcher/client-h1.js, Parser#onHeadersComplete). pipelining must be 1:
// with 0, undici closes every socket after one request.
const CONNECTION_OPTIONS = {
  pipelining: 1,
  keepAliveTimeout: 4_000,
  keepAliveTimeoutThreshold: 2_000,
  keepAliveMaxTimeout: 60_000,
  // A server whose accept loop is dead (out of file descriptors, say) still answers on a connection it
  // accepted earlier: a fresh connection every few probes makes sure the probe sees what a new client sees.
  maxRequestsPerClient: 10,
} as const;

export function httpProbe(spec: HttpProbeSpec): Probe {
  const target = new URL(spec.url);
  const authorization = basicAuth(target);
  // One Client (one connection) per origin, not an Agent: probes run one at a time, and undici 7's Agent
  // closes the next connection whenever one ends by the server's or maxRequestsPerClient's choice, so
  // reuse would stop for good after the first such close (nodejs/undici#5022).
  const clients = new Map<string, Client>();
  let closed = false;

  function clientFor(url: URL): Client {
    let client = clients.get(url.origin);
    if (!client) {
      client = new Client(url.origin, CONNECTION_OPTIONS);
      clients.set(url.origin, client);
    }
    return client;
  }

  /**
   * Closes every connection now; the next run connects afresh. Also after a run that failed or cut a body
   * short: undici 7 then reconnects for the request it just aborted (nodejs/undici#5845), and that idle
   * connection would linger for the keep-alive time.
   */
  async function dropConnections(): Promise<void> {
    const all = [...clients.values()];
    clients.clear();
    await Promise.all(all.map((client) => client.destroy()));
  }

  /** Consumes a body nobody needs, so the connection can be reused (or, when it is large, closed). */
  async function discard(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<void> {
    await response.body.dump({ signal, limit: DRAIN_LIMIT_BYTES });
    if (!response.body.readableEnded) await dropConnections();
  }

  async function send(url: URL, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'user-agent': 'sdwrap-probe', accept: '*/*' };
    const sameOrigin = url.origin === target.origin;
    // Credentials (from the URL, or a secret header) go only to the origin they were given for.
    if (authorization && sameOrigin) headers.authorization = authorization;
    for (const { name, value } of spec.requestHeaders) {
      if (sameOrigin || !isSecretHeader(name)) headers[name.toLowerCase()] = value;
    }
    // undici would still open a connection for a request aborted before it starts (nodejs/undici#386).
    signal.throwIfAborted();
    return request(url, { method: spec.method, signal, dispatcher: clientFor(url), headers });
  }

  /** The request, following redirects within the same host when asked (the kubelet's rule for httpGet probes). */
  async function fetchAnswer(signal: AbortSignal): Promise<Answer> {
    let url = target;
    for (let hops = 0; ; hops++) {
      const response = await send(url, signal);
      const next = spec.followRedirects ? redirectTarget(response, url) : undefined;
      if (!next) return { response };
      // Another host is someone else's health (a login page, a CDN): this 3xx is the answer to judge.
      if (next.hostname !== target.hostname) {
        return { response, note: `redirect to ${withoutUserinfo(next)} not followed (another host)` };
      }
      await discard(response, signal);
      if (hops + 1 > MAX_REDIRECTS) {
        return { verdict: { ok: false, detail: `HTTP ${response.statusCode}: stopped after ${MAX_REDIRECTS} redirects` } };
      }
      url = next;
    }
  }

  async function judge({ response, note }: { response: Dispatcher.ResponseData; note?: string }, signal: AbortSignal): Promise<Verdict> {
    let verdict = checkHead(spec, response);
    if (!verdict.ok || !needsBody(spec)) {
      await discard(response, signal);
    } else {
      const body = await readCapped(response, signal);
      verdict = body === undefined
        ? { ok: false, detail: `body larger than ${BODY_CAP_BYTES / 1024 / 1024} MiB` }
        : checkResponse(spec, { statusCode: response.statusCode, headers: response.headers, body });
    }
    return note ? { ok: verdict.ok, detail: `${verdict.detail}; ${note}` } : verdict;
  }

  return {
    description: `${spec.method} ${withoutUserinfo(target)}`,
    async run(signal): Promise<ProbeOutcome> {
      if (closed) return { ok: false, detail: 'probe closed' };
      let response: Dispatcher.ResponseData | undefined;
      try {
        const answer = await fetchAnswer(signal);
        if ('verdict' in answer) return answer.verdict;
        response = answer.response;
        const verdict = await judge(answer, signal);
        // A body cut short (over the cap) took its socket with it: see dropConnections.
        if (!response.body.readableEnded) await dropConnections();
        return verdict;
      } catch (error) {
        // Whatever went wrong, nothing may hold a socket: the next run starts afresh.
        response?.body.destroy();
        await dropConnections();
        if (signal.aborted) return { ok: false, detail: 'no answer in time' };
        return { ok: false, detail: errorText(error) };
      }
    },
    async close() {
      closed = true;
      await dropConnections();
    },
  };
}

/** Where a 3xx points, or undefined when it is not a redirect with a usable Location. */
function redirectTarget(response: Dispatcher.ResponseData, base: URL): URL | undefined {
  const location = response.headers.location;
  if (!REDIRECT_STATUSES.has(response.statusCode) || typeof location !== 'string') return undefined;
  try {
    return new URL(location, base);
  } catch {
    return undefined;
  }
}

/** The body as text, or undefined (and the socket closed) when it is larger than the cap. */
async function readCapped(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<string | undefined> {
  const declared = Number(response.headers['content-length']);
  if (declared > BODY_CAP_BYTES) {
    response.body.destroy();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // The request's signal also aborts the body: an abort mid-body ends this loop with an AbortError.
  signal.throwIfAborted();
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_CAP_BYTES) {
      response.body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `Authorization: Basic` from the URL's userinfo, as curl and browsers send it; undici ignores userinfo. */
function basicAuth(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}

/** The URL for logs and STATUS: a password in it must not end up in the journal. */
function withoutUserinfo(url: URL): string {
  const shown = new URL(url);
  shown.username = '';
  shown.password = '';
  return shown.href;
}
