// What an HTTP answer must look like to count as healthy: the --http-status/--http-header/--http-body/
// --http-json values parsed once at start-up, and the pure check of a response against them. The probe
// does the I/O; this module only judges, so every verdict and its wording can be tested without a server.
import { isDeepStrictEqual } from 'node:util';
import { UsageError } from './errors.js';

/** Inclusive range of status codes; a single code is a range of one. */
export interface StatusRange {
  min: number;
  max: number;
}

/** A response header that must be present with exactly this value. */
export interface HeaderAssertion {
  /** Lower case: header names are case-insensitive. */
  name: string;
  value: string;
}

export type JsonOp = '==' | '!=' | '>=' | '<=' | '>' | '<';

/** `<path><op><value>` checked against the JSON body, e.g. `players.online>=100`. */
export interface JsonAssertion {
  /** The path as written, for messages: "players.online", or "$" for the whole document. */
  path: string;
  /** Keys and array indices to walk from the document root; empty for "$". */
  segments: string[];
  op: JsonOp;
  /** A JSON value; always a number for the ordering ops. */
  value: unknown;
}

export interface ResponseAssertions {
  statuses: StatusRange[];
  headers: HeaderAssertion[];
  body?: RegExp;
  json: JsonAssertion[];
}

export interface ResponseSeen {
  statusCode: number;
  /** Lower-case names; a repeated header as the array of its values. */
  headers: Record<string, string | string[] | undefined>;
  /** The body as UTF-8 text; needed only when `needsBody` says so. */
  body?: string;
}

/** What the assertions say of one response: met ("HTTP 200"), or the first one that was not. */
export interface AssertionOutcome {
  ok: boolean;
  /** "HTTP 200" when healthy, else the first thing that was wrong, worded for a human. */
  detail: string;
}

/** A header sdwrap sends with each request (`Host:`, `Authorization:`), as Kubernetes' httpHeaders. */
export interface RequestHeader {
  name: string;
  value: string;
}

/** Request headers whose value is a credential: never shown in logs, STATUS= or errors. */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie)$|token|secret|password|api-?key/i;

/** Whether a request header's value must be kept out of every message. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

/** Expects `Name: value`. The text is never echoed (it may be `Authorization: Bearer ...`): only its name. */
export function parseRequestHeader(text: string, flag = '--http-request-header'): RequestHeader {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  const value = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name)) {
    throw new UsageError(`${flag} expects 'Name: value' such as 'Host: app.example.com' (the value is not shown here, it may be a secret)`);
  }
  // CR/LF would smuggle a second header (or a request) into the probe's own.
  if (/[\r\n\0]/.test(value)) throw new UsageError(`${flag} '${name}': the value must be one line`);
  return { name, value };
}

/** Expects codes and ranges such as `200-399`, `200,204` or `200-299,301,302`, each within 100-599. */
export function parseStatusList(text: string, flag = '--http-status'): StatusRange[] {
  const ranges: StatusRange[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(part);
    if (!m) throw new UsageError(`${flag} expects status codes and ranges such as 200-399 or 200,204, got '${text}'`);
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : Number(m[2]);
    for (const code of [min, max]) {
      if (code < 100 || code > 599) throw new UsageError(`${flag} expects status codes from 100 to 599, got ${code} in '${text}'`);
    }
    if (min > max) throw new UsageError(`${flag} expects ranges as low-high, got ${min}-${max} in '${text}'`);
    ranges.push({ min, max });
  }
  return ranges;
}

/** "200-399", "200,204": the list as the user would write it. */
export function formatStatusList(ranges: readonly StatusRange[]): string {
  return ranges.map(({ min, max }) => (min === max ? String(min) : `${min}-${max}`)).join(',');
}

/** RFC 9110 token characters: what a header name may consist of. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Expects `Name: value`. The name is matched case-insensitively; the value is trimmed (here and in the
 * response) and must then be equal exactly, case included: `X-Ready: yes` does not accept "Yes".
 */
export function parseHeaderAssertion(text: string, flag = '--http-header'): HeaderAssertion {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  const value = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name) || value === '') {
    throw new UsageError(`${flag} expects 'Name: value' such as 'X-Ready: yes', got '${text}'`);
  }
  return { name: name.toLowerCase(), value };
}

/**
 * Expects a regular expression searched for anywhere in the body: `"status": *"ok"`, or `/ok/i` to give
 * flags (i, m, s, u). A pattern that itself starts and ends with "/" must escape them: `\/ok\/`.
 */
export function parseBodyPattern(text: string, flag = '--http-body'): RegExp {
  const literal = /^\/(.*)\/([a-z]*)$/s.exec(text);
  const [source, flags] = literal ? [literal[1]!, literal[2]!] : [text, ''];
  if (source === '') throw new UsageError(`${flag} expects a regular expression such as '"status": *"ok"', got an empty string`);
  if (!/^[imsu]*$/.test(flags)) {
    throw new UsageError(
      `${flag} accepts the flags i, m, s and u after /pattern/, got '${flags}' in '${text}' (write \\/ to match a leading slash)`,
    );
  }
  try {
    return new RegExp(source, flags);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${flag} expects a regular expression, got '${text}' (${why})`);
  }
}

// Two-character operators first, so that ">=" is never read as ">" followed by a value "=100".
const OPS: readonly JsonOp[] = ['==', '!=', '>=', '<=', '>', '<'];
const ORDERING: ReadonlySet<JsonOp> = new Set(['>=', '<=', '>', '<']);

/**
 * Expects `<path><op><value>`, e.g. `players.online>=100`, `checks.0.status==ok`, `$==true`.
 *
 * - path: dot-separated object keys and array indices (`checks.0.status`; `checks[0].status` is the same);
 *   `$` is the whole document, and a leading `$.` is allowed. Keys containing ".", "[", or an operator
 *   cannot be addressed.
 * - op: == != >= <= > < (the first operator in the text splits it; the value may contain "=" and the like).
 * - value: a JSON literal when it parses as one (`100`, `true`, `null`, `"ok"`, `[1,2]`), else the bare
 *   text as a string (`status==ok`). Equality is strict: `code==200` does not accept the string "200".
 *   The ordering ops need a number here, and a number in the body.
 */
export function parseJsonAssertion(text: string, flag = '--http-json'): JsonAssertion {
  const found = findOp(text);
  if (!found) {
    throw new UsageError(`${flag} expects <path><op><value> with op one of ${OPS.join(' ')}, such as players.online>=100, got '${text}'`);
  }
  const { op, at } = found;
  const path = text.slice(0, at).trim();
  const valueText = text.slice(at + op.length).trim();
  if (path === '') throw new UsageError(`${flag} expects a path before '${op}' ($ for the whole document), got '${text}'`);
  const segments = parsePath(path);
  if (!segments) {
    throw new UsageError(`${flag} expects a dotted path such as players.online or checks.0.status, got '${path}' in '${text}'`);
  }
  if (valueText === '') throw new UsageError(`${flag} expects a value after '${op}', got '${text}'`);
  const value = parseValue(valueText);
  if (ORDERING.has(op) && typeof value !== 'number') {
    throw new UsageError(`${flag} expects a number after '${op}', got '${valueText}' in '${text}'`);
  }
  return { path, segments, op, value };
}

function findOp(text: string): { op: JsonOp; at: number } | undefined {
  for (let at = 0; at < text.length; at++) {
    const op = OPS.find((candidate) => text.startsWith(candidate, at));
    if (op) return { op, at };
  }
  return undefined;
}

/** Segments for a path, or undefined when one is empty ("a..b", "a."). */
function parsePath(path: string): string[] | undefined {
  const dotted = path.replace(/\[(\d+)\]/g, '.$1');
  if (dotted === '$') return [];
  const rest = dotted.startsWith('$.') ? dotted.slice(2) : dotted;
  const segments = rest.split('.').map((segment) => segment.trim());
  return segments.every((segment) => segment !== '') ? segments : undefined;
}

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** True when judging needs the body read (up to the probe's cap); otherwise it is discarded unread. */
export function needsBody(spec: ResponseAssertions): boolean {
  return spec.body !== undefined || spec.json.length > 0;
}

/** Judges status and headers only: what can be decided before reading the body. */
export function checkHead(spec: ResponseAssertions, response: Omit<ResponseSeen, 'body'>): AssertionOutcome {
  const { statusCode, headers } = response;
  if (!spec.statuses.some(({ min, max }) => statusCode >= min && statusCode <= max)) {
    return { ok: false, detail: `HTTP ${statusCode} (expected ${formatStatusList(spec.statuses)})` };
  }
  for (const { name, value } of spec.headers) {
    const seen = headers[name];
    if (seen === undefined) return { ok: false, detail: `header ${name} is missing (expected ${JSON.stringify(value)})` };
    // A repeated header passes when any one of its values matches.
    const values = (Array.isArray(seen) ? seen : [seen]).map((v) => v.trim());
    if (!values.includes(value)) {
      return {
        ok: false,
        detail: `header ${name}: ${values.map((v) => JSON.stringify(v)).join(', ')} (expected ${JSON.stringify(value)})`,
      };
    }
  }
  return { ok: true, detail: `HTTP ${statusCode}` };
}

/** Judges a whole response against every assertion; the detail names the first one that failed. */
export function checkResponse(spec: ResponseAssertions, response: ResponseSeen): AssertionOutcome {
  const head = checkHead(spec, response);
  if (!head.ok || !needsBody(spec)) return head;
  const body = response.body ?? '';
  if (spec.body && !spec.body.test(body)) return { ok: false, detail: `body does not match ${spec.body}` };
  if (spec.json.length === 0) return head;
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    return { ok: false, detail: 'body is not JSON' };
  }
  for (const assertion of spec.json) {
    const failure = checkJson(assertion, document);
    if (failure) return { ok: false, detail: failure };
  }
  return head;
}

/** Undefined when the assertion holds, else what was wrong. */
function checkJson({ path, segments, op, value }: JsonAssertion, document: unknown): string | undefined {
  const found = lookup(document, segments);
  if (!found.present) return `${path} is missing`;
  const actual = found.value;
  const expected = `(expected ${op} ${JSON.stringify(value)})`;
  if (ORDERING.has(op)) {
    if (typeof actual !== 'number') return `${path} is ${show(actual)}, not a number ${expected}`;
    return compare(actual, op, value as number) ? undefined : `${path} is ${show(actual)} ${expected}`;
  }
  const equal = isDeepStrictEqual(actual, value);
  return equal === (op === '==') ? undefined : `${path} is ${show(actual)} ${expected}`;
}

function compare(actual: number, op: JsonOp, expected: number): boolean {
  switch (op) {
    case '>=':
      return actual >= expected;
    case '<=':
      return actual <= expected;
    case '>':
      return actual > expected;
    default:
      return actual < expected;
  }
}

function lookup(document: unknown, segments: readonly string[]): { present: boolean; value?: unknown } {
  let node = document;
  for (const segment of segments) {
    if (Array.isArray(node)) {
      if (!/^\d+$/.test(segment) || Number(segment) >= node.length) return { present: false };
      node = node[Number(segment)];
    } else if (node !== null && typeof node === 'object' && Object.hasOwn(node, segment)) {
      node = (node as Record<string, unknown>)[segment];
    } else {
      return { present: false };
    }
  }
  return { present: true, value: node };
}

/** A body value short enough for a STATUS line. */
function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}
