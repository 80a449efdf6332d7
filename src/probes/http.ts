// HTTP probe: sends the request like a client would and judges the answer with http-assertions (status list,
// headers, body pattern, JSON paths). Redirects are answers unless asked to follow them. Each request has a
// fresh connection of its own (http-client), so no probe ever fails on a socket the server closed while idle.
import type { HttpMethod } from '../config.js';
import { exchange, type HttpHead, type HttpResult } from '../http-client.js';
import {
  checkHead,
  checkResponse,
  isSecretHeader,
  needsBody,
  type RequestHeader,
  type ResponseAssertions,
  type AssertionOutcome,
} from '../http-assertions.js';
import { errorText } from '../errors.js';
import { withoutCredentials } from '../redact.js';
import type { Probe, ProbeOutcome } from './probe.js';

export interface HttpProbeSpec extends ResponseAssertions {
  url: string;
  method: HttpMethod;
  requestHeaders: RequestHeader[];
  followRedirects: boolean;
}

/** Bodies are read only for --http-body/--http-json, and never past this. */
const BODY_CAP_BYTES = 1024 * 1024;
/** How many redirects --http-follow-redirects follows before giving up. */
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** The final answer to judge (with a note when a redirect was left unfollowed), or an outcome already. */
type Answer = { response: HttpResult; note?: string } | { outcome: AssertionOutcome };

export function httpProbe(spec: HttpProbeSpec): Probe {
  const target = new URL(spec.url);
  const authorization = basicAuth(target);
  let closed = false;

  function headersFor(url: URL): Record<string, string> {
    const headers: Record<string, string> = { 'user-agent': 'sdwrap-probe', accept: '*/*' };
    const sameOrigin = url.origin === target.origin;
    // Credentials (from the URL, or a secret header) go only to the origin they were given for.
    if (authorization && sameOrigin) headers.authorization = authorization;
    for (const { name, value } of spec.requestHeaders) {
      if (sameOrigin || !isSecretHeader(name)) headers[name.toLowerCase()] = value;
    }
    return headers;
  }

  /** Where a redirect this probe follows points, or undefined when the answer is to be judged as it is. */
  function followed(head: HttpHead, url: URL): URL | undefined {
    const next = spec.followRedirects ? redirectTarget(head, url) : undefined;
    return next && next.hostname === target.hostname ? next : undefined;
  }

  /** The request, following redirects within the same host when asked (the kubelet's rule for httpGet probes). */
  async function fetchAnswer(signal: AbortSignal): Promise<Answer> {
    let url = target;
    for (let hops = 0; ; hops++) {
      const here = url;
      const response = await exchange(here, {
        method: spec.method,
        headers: headersFor(here),
        signal,
        // Only a body that will be judged is read (up to the cap); a failing status or header needs none.
        readBody: (head) => needsBody(spec) && !followed(head, here) && checkHead(spec, head).ok,
        bodyLimit: BODY_CAP_BYTES,
      });
      const next = spec.followRedirects ? redirectTarget(response, here) : undefined;
      if (!next) return { response };
      // Another host is someone else's health (a login page, a CDN): this 3xx is the answer to judge.
      if (next.hostname !== target.hostname) {
        return { response, note: `redirect to ${withoutCredentials(next)} not followed (another host)` };
      }
      if (hops + 1 > MAX_REDIRECTS) {
        return { outcome: { ok: false, detail: `HTTP ${response.statusCode}: stopped after ${MAX_REDIRECTS} redirects` } };
      }
      url = next;
    }
  }

  function judge({ response, note }: { response: HttpResult; note?: string }): AssertionOutcome {
    let outcome = checkHead(spec, response);
    if (outcome.ok && needsBody(spec)) {
      outcome = response.tooLarge
        ? { ok: false, detail: `body larger than ${BODY_CAP_BYTES / 1024 / 1024} MiB` }
        : checkResponse(spec, { statusCode: response.statusCode, headers: response.headers, body: response.body ?? '' });
    }
    return note ? { ok: outcome.ok, detail: `${outcome.detail}; ${note}` } : outcome;
  }

  return {
    description: `${spec.method} ${withoutCredentials(target)}`,
    async run(signal): Promise<ProbeOutcome> {
      if (closed) return { ok: false, detail: 'probe closed' };
      try {
        const answer = await fetchAnswer(signal);
        return 'outcome' in answer ? answer.outcome : judge(answer);
      } catch (error) {
        if (signal.aborted) return { ok: false, detail: 'no answer in time' };
        return { ok: false, detail: errorText(error) };
      }
    },
    // Nothing outlives a run: each request's connection is gone before it settles.
    async close() {
      closed = true;
    },
  };
}

/** Where a 3xx points, or undefined when it is not a redirect with a usable Location. */
function redirectTarget(head: HttpHead, base: URL): URL | undefined {
  if (!REDIRECT_STATUSES.has(head.statusCode) || head.location === undefined) return undefined;
  try {
    return new URL(head.location, base);
  } catch {
    return undefined;
  }
}

/** `Authorization: Basic` from the URL's userinfo, as curl and browsers send it. */
function basicAuth(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}
