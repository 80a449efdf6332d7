// Heartbeat pushes for healthchecks.io / Better Stack-style monitors (--heartbeat-url): `<url>/start` when
// the app is spawned, `<url>` while it is healthy, `<url>/fail` when it turns unhealthy, so a dead host or a
// dead sdwrap is noticed by someone else.
//
// The URL is a secret (whoever has it can report the service healthy): logs show only its origin, and
// error texts are scrubbed of it. Pings are fire-and-forget: a slow or dead monitor never delays or fails
// supervision, it only costs a warning now and then.
import { monotonicMs } from './clock.js';
import { formatSpan } from './duration.js';
import { errorText, UsageError } from './errors.js';
import { exchange } from './http-client.js';
import { originOnly } from './redact.js';
import { withTimeout } from './timeout.js';

export interface Heartbeat {
  /** The app was spawned: pings `<url>/start`; the next ok() goes out at once. */
  start(): void;
  /** The app is healthy: pings `<url>`, at most once per minIntervalMs. */
  ok(): void;
  /** The app turned unhealthy: POSTs the reason to `<url>/fail`. */
  fail(reason?: string): void;
  /** Lets the ping in flight and a queued start/fail finish (bounded by closeTimeoutMs); cancels the rest. */
  close(): Promise<void>;
}

export interface HeartbeatLog {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface HeartbeatOptions {
  /** Per ping (default 10 s). */
  timeoutMs?: number;
  /** Healthy pings at most this often (default 60 s): these services count pings per minute. */
  minIntervalMs?: number;
  /** How long close() lets pings still owed finish before cancelling them (default 3 s). */
  closeTimeoutMs?: number;
}

type PingKind = 'start' | 'ok' | 'fail';
interface Ping {
  kind: PingKind;
  reason?: string;
}

/** A failing monitor is reported at the first failure, then at most this often. */
const WARN_EVERY_MS = 5 * 60_000;
/** healthchecks.io keeps the start of a ping's body; a reason is a line or two anyway. */
const MAX_REASON_CHARS = 10_000;
/** Timers fire a little early now and then: a ping on every minIntervalMs tick must not be dropped for it. */
const THROTTLE_SLACK = 0.02;

/**
 * The three ping URLs. The suffix joins the path with exactly one "/" whether or not the URL ends with one;
 * the query string is kept on each (some services put the token there); a #fragment is never sent anyway.
 */
export function pingUrls(url: string): Record<PingKind, URL> {
  const ok = new URL(url);
  ok.hash = '';
  const suffixed = (suffix: string) => {
    const u = new URL(ok);
    u.pathname = `${ok.pathname.replace(/\/+$/, '')}/${suffix}`;
    return u;
  };
  return { start: suffixed('start'), ok, fail: suffixed('fail') };
}

/** Path segments and query values this long are taken for tokens; shorter ones ("api", "v1") are just words. */
const MIN_TOKEN_CHARS = 10;

/**
 * Replaces every form of the URL in a text (whole, path and query, and the token-like parts of those,
 * percent-encoded or not) with redacted ones. node's own messages carry host and port at most, but an
 * error is text from elsewhere, and this is the last line before the journal.
 */
export function urlScrubber(url: string): (text: string) => string {
  const shown = originOnly(url);
  const replacements = new Map<string, string>();
  const add = (secret: string, by: string, minChars: number) => {
    for (const variant of [secret, safeDecode(secret)]) {
      if (variant.length >= minChars && !replacements.has(variant)) replacements.set(variant, by);
    }
  };
  for (const u of [url, ...Object.values(pingUrls(url)).map((p) => p.href)]) {
    const parsed = new URL(u);
    add(u, shown, 1);
    add(parsed.href, shown, 1);
    add(`${parsed.pathname}${parsed.search}`, '/…', 2);
    add(parsed.pathname, '/…', 2);
    add(parsed.search, '?…', 2);
    for (const part of parsed.pathname.split('/')) add(part, '…', MIN_TOKEN_CHARS);
    for (const value of parsed.searchParams.values()) add(value, '…', MIN_TOKEN_CHARS);
  }
  // Longest first, so a whole URL becomes the redacted URL rather than a URL with its path blanked.
  const ordered = [...replacements].sort(([a], [b]) => b.length - a.length);
  return (text) => ordered.reduce((out, [secret, by]) => out.split(secret).join(by), text);
}

/** pingUrls, failing without the URL in the error: Node's "Invalid URL" TypeError carries it as `input`. */
function checkedPingUrls(url: string): Record<PingKind, URL> {
  let urls: Record<PingKind, URL> | undefined;
  try {
    urls = pingUrls(url);
  } catch {
    urls = undefined;
  }
  if (!urls || (urls.ok.protocol !== 'http:' && urls.ok.protocol !== 'https:')) {
    throw new UsageError('--heartbeat-url expects an http:// or https:// URL, got something else (not shown: the URL is a secret)');
  }
  return urls;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Pings for a GET-or-POST monitor. Methods: start and ok are GET, the method every such service accepts
 * (healthchecks.io, Better Stack, Cronitor, Uptime Kuma); fail is a POST whose text/plain body is the
 * reason, which healthchecks.io shows in the ping's log. A 2xx counts as delivered; redirects are not followed.
 *
 * One ping is in flight at a time. Pings asked for meanwhile wait in a queue of at most one of each kind:
 * a start or fail replaces queued oks (they describe a state that is over) and a queued ping of its own
 * kind; an ok joins only behind a start or fail, never displacing one.
 */
export function createHeartbeat(url: string, log: HeartbeatLog, opts: HeartbeatOptions = {}): Heartbeat {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const minIntervalMs = opts.minIntervalMs ?? 60_000;
  const closeTimeoutMs = opts.closeTimeoutMs ?? 3_000;
  const targets = checkedPingUrls(url);
  const shown = originOnly(url);
  const scrub = urlScrubber(url);

  const queue: Ping[] = [];
  let inFlight: Promise<void> | undefined;
  let current: AbortController | undefined;
  let accepting = true;
  let cancelled = false;
  let closing: Promise<void> | undefined;
  let lastOkAt = -Infinity;
  let okOwed = true;
  let failures = 0;
  let lastWarnAt = -Infinity;

  function enqueue(ping: Ping): void {
    if (!accepting) return;
    if (ping.kind === 'ok') {
      if (queue.at(-1)?.kind !== 'ok') queue.push(ping);
    } else {
      for (let i = queue.length - 1; i >= 0; i--) {
        if (queue[i]!.kind === 'ok' || queue[i]!.kind === ping.kind) queue.splice(i, 1);
      }
      queue.push(ping);
    }
    pump();
  }

  function pump(): void {
    if (inFlight || cancelled) return;
    const ping = queue.shift();
    if (!ping) return;
    // A throwing logger must not become an unhandled rejection that ends sdwrap.
    inFlight = send(ping)
      .catch(() => undefined)
      .finally(() => {
        inFlight = undefined;
        pump();
      });
  }

  /** Never rejects: every outcome ends in a log line. */
  async function send(ping: Ping): Promise<void> {
    const controller = new AbortController();
    current = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const fail = ping.kind === 'fail';
      // Pings are a minute or more apart: each has a connection of its own, closed when it is answered.
      const response = await exchange(targets[ping.kind], {
        method: fail ? 'POST' : 'GET',
        headers: { 'user-agent': 'sdwrap-heartbeat', ...(fail ? { 'content-type': 'text/plain; charset=utf-8' } : {}) },
        ...(fail ? { body: (ping.reason ?? '').slice(0, MAX_REASON_CHARS) } : {}),
        signal: controller.signal,
      });
      if (response.statusCode >= 200 && response.statusCode <= 299) delivered(ping, response.statusCode);
      else undelivered(ping, `HTTP ${response.statusCode}`);
    } catch (error) {
      const why = timedOut ? `no answer within ${formatSpan(timeoutMs)}` : cancelled ? 'cancelled at shutdown' : scrub(errorText(error));
      undelivered(ping, why);
    } finally {
      clearTimeout(timer);
      current = undefined;
    }
  }

  function delivered(ping: Ping, status: number): void {
    log.debug(
      { heartbeat: shown, ping: ping.kind, status, ...(failures > 0 ? { afterFailures: failures } : {}) },
      'heartbeat ping delivered',
    );
    failures = 0;
    // The next outage is news again: report its first failure at once.
    lastWarnAt = -Infinity;
  }

  function undelivered(ping: Ping, error: string): void {
    failures++;
    const fields = { heartbeat: shown, ping: ping.kind, error, failures };
    const now = monotonicMs();
    if (now - lastWarnAt >= WARN_EVERY_MS) {
      lastWarnAt = now;
      log.warn(fields, failures === 1 ? 'heartbeat ping failed' : 'heartbeat pings still failing');
    } else {
      log.debug(fields, 'heartbeat ping failed');
    }
  }

  return {
    start() {
      okOwed = true;
      enqueue({ kind: 'start' });
    },
    ok() {
      const now = monotonicMs();
      if (!okOwed && now - lastOkAt < minIntervalMs * (1 - THROTTLE_SLACK)) return;
      okOwed = false;
      lastOkAt = now;
      enqueue({ kind: 'ok' });
    },
    fail(reason) {
      okOwed = true;
      enqueue(reason === undefined ? { kind: 'fail' } : { kind: 'fail', reason });
    },
    close() {
      closing ??= (async () => {
        accepting = false;
        // A healthy ping at shutdown says nothing; a start or fail still owed does.
        for (let i = queue.length - 1; i >= 0; i--) if (queue[i]!.kind === 'ok') queue.splice(i, 1);
        const drained = (async () => {
          while (inFlight) await inFlight;
        })();
        await withTimeout(drained, closeTimeoutMs);
        cancelled = true;
        queue.length = 0;
        current?.abort();
        while (inFlight) await inFlight;
      })();
      return closing;
    },
  };
}
