// EXPERIMENT, not used by sdwrap: src/probes/http.ts (as of 19d4dcb) on node:http instead of undici, with
// the same interface and the same judging (http-assertions' checkHead/checkResponse), same-host redirects,
// the body cap, Basic auth from the URL, and keep-alive with a fresh connection every 10 requests.
// bench/profile-startup.ts copies it over src/probes/http.ts in a throw-away copy under /tmp, to measure
// what dropping undici would save in memory, start-up and per-probe CPU. Not reviewed for production use.
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { checkHead, checkResponse, needsBody, type ResponseAssertions, type Verdict } from '../http-assertions.js';
import { errorText, type Probe, type ProbeOutcome } from './probe.js';

export interface HttpProbeSpec extends ResponseAssertions {
  url: string;
  followRedirects: boolean;
}

export const BODY_CAP_BYTES = 1024 * 1024;
export const MAX_REDIRECTS = 5;
const DRAIN_LIMIT_BYTES = 64 * 1024;
const REQUESTS_PER_CONNECTION = 10;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

export function httpProbe(spec: HttpProbeSpec): Probe {
  const target = new URL(spec.url);
  const authorization = basicAuth(target);
  let agent = new Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 1000, timeout: 4000 });
  let sent = 0;
  let closed = false;

  const dropConnections = () => {
    agent.destroy();
    agent = new Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 1000, timeout: 4000 });
  };

  async function send(url: URL, signal: AbortSignal): Promise<IncomingMessage> {
    signal.throwIfAborted();
    const headers: Record<string, string> = { 'user-agent': 'sdwrap-probe', accept: '*/*' };
    if (authorization && url.origin === target.origin) headers.authorization = authorization;
    sent += 1;
    if (sent % REQUESTS_PER_CONNECTION === 0) headers.connection = 'close';
    // node:https pulls in tls: load it only for https URLs.
    const request = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { method: 'GET', agent: url.protocol === 'https:' ? undefined : agent, signal, headers }, resolve);
      req.once('error', reject);
      req.end();
    });
  }

  /** Reads the body up to `limit` bytes; undefined (and the socket destroyed) past it. */
  async function read(res: IncomingMessage, limit: number): Promise<string | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        res.destroy();
        return undefined;
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  return {
    description: `GET ${withoutUserinfo(target)}`,
    async run(signal): Promise<ProbeOutcome> {
      if (closed) return { ok: false, detail: 'probe closed' };
      try {
        let url = target;
        let note: string | undefined;
        let res = await send(url, signal);
        for (let hops = 0; spec.followRedirects; hops++) {
          const next = redirectTarget(res, url);
          if (!next) break;
          if (next.hostname !== target.hostname) {
            note = `redirect to ${withoutUserinfo(next)} not followed (another host)`;
            break;
          }
          await read(res, DRAIN_LIMIT_BYTES);
          if (hops + 1 > MAX_REDIRECTS) return { ok: false, detail: `HTTP ${res.statusCode}: stopped after ${MAX_REDIRECTS} redirects` };
          url = next;
          res = await send(url, signal);
        }
        const seen = { statusCode: res.statusCode ?? 0, headers: res.headers };
        let verdict: Verdict = checkHead(spec, seen);
        if (!verdict.ok || !needsBody(spec)) {
          await read(res, DRAIN_LIMIT_BYTES);
        } else {
          const body = await read(res, BODY_CAP_BYTES);
          verdict = body === undefined ? { ok: false, detail: `body larger than ${BODY_CAP_BYTES / 1024 / 1024} MiB` } : checkResponse(spec, { ...seen, body });
        }
        return note ? { ok: verdict.ok, detail: `${verdict.detail}; ${note}` } : verdict;
      } catch (error) {
        dropConnections();
        if (signal.aborted) return { ok: false, detail: 'no answer in time' };
        return { ok: false, detail: errorText(error) };
      }
    },
    async close() {
      closed = true;
      agent.destroy();
    },
  };
}

function redirectTarget(res: IncomingMessage, base: URL): URL | undefined {
  const location = res.headers.location;
  if (!REDIRECT_STATUSES.has(res.statusCode ?? 0) || typeof location !== 'string') return undefined;
  try {
    return new URL(location, base);
  } catch {
    return undefined;
  }
}

function basicAuth(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
}

function withoutUserinfo(url: URL): string {
  const shown = new URL(url);
  shown.username = '';
  shown.password = '';
  return shown.href;
}
