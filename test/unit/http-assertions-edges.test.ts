// The HTTP assertions at their edges: header text without a colon, body patterns that only look like /re/,
// array paths, the ordering operators, and what is judged when the status already failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkHead,
  checkResponse,
  parseBodyPattern,
  parseHeaderAssertion,
  parseJsonAssertion,
  type ResponseAssertions,
} from '../../src/http-assertions.js';

const spec = (more: Partial<ResponseAssertions> = {}): ResponseAssertions => ({
  statuses: [{ min: 200, max: 399 }],
  headers: [],
  body: undefined,
  json: [],
  ...more,
});
const judge = (assertion: string, document: unknown) =>
  checkResponse(spec({ json: [parseJsonAssertion(assertion)] }), { statusCode: 200, headers: {}, body: JSON.stringify(document) });

test('a header assertion needs its colon', () => {
  assert.throws(() => parseHeaderAssertion('X-Ready'), /--http-header expects 'Name: value'/);
  assert.deepEqual(parseHeaderAssertion('X-Ready:yes'), { name: 'x-ready', value: 'yes' });
});

test('a body pattern is /re/flags only as a whole', () => {
  const looksLike = parseBodyPattern('/a/ b');
  assert.equal(looksLike.flags, '');
  assert.ok(looksLike.test('x /a/ b'));
  assert.ok(!looksLike.test('a'));
  assert.equal(parseBodyPattern('/a/i').flags, 'i');
});

test('array paths: [n] and .n alike, any number of digits, within the array only', () => {
  const list = { a: Array.from({ length: 13 }, (_, i) => i * 10) };
  assert.equal(judge('a[12]==120', list).ok, true);
  assert.equal(judge('a.12==120', list).ok, true);
  assert.deepEqual(judge('a.13==0', list), { ok: false, detail: 'a.13 is missing' });
  assert.deepEqual(judge('a.x1==0', list), { ok: false, detail: 'a.x1 is missing' });
  assert.deepEqual(judge('a.1x==0', list), { ok: false, detail: 'a.1x is missing' });
  assert.deepEqual(judge('a.length==13', list), { ok: false, detail: 'a.length is missing' });
  assert.deepEqual(parseJsonAssertion('a. b==1').segments, ['a', 'b']);
  // A string is a leaf: it has no keys to look into.
  assert.deepEqual(judge('name.length==3', { name: 'abc' }), { ok: false, detail: 'name.length is missing' });
});

test('the ordering operators need numbers, and > is strict', () => {
  assert.throws(() => parseJsonAssertion('a>x'), /--http-json expects a number after '>', got 'x' in 'a>x'/);
  assert.deepEqual(judge('a>10', { a: 5 }), { ok: false, detail: 'a is 5 (expected > 10)' });
  assert.deepEqual(judge('a>10', { a: 10 }), { ok: false, detail: 'a is 10 (expected > 10)' });
  assert.equal(judge('a>10', { a: 11 }).ok, true);
});

test('a long value is shown whole up to 60 characters, cut after', () => {
  const sixty = 'x'.repeat(58); // with its quotes, 60 characters of JSON
  assert.deepEqual(judge('a==1', { a: sixty }), { ok: false, detail: `a is ${JSON.stringify(sixty)} (expected == 1)` });
  const longer = 'x'.repeat(59);
  assert.deepEqual(judge('a==1', { a: longer }), { ok: false, detail: `a is ${JSON.stringify(longer).slice(0, 59)}… (expected == 1)` });
});

test('statuses below a range fail; a failed status is the verdict, the body unread', () => {
  assert.deepEqual(checkHead(spec({ statuses: [{ min: 200, max: 299 }] }), { statusCode: 199, headers: {} }), {
    ok: false,
    detail: 'HTTP 199 (expected 200-299)',
  });
  const bodySpec = spec({ body: /ok/ });
  assert.deepEqual(checkResponse(bodySpec, { statusCode: 500, headers: {}, body: 'nope' }), {
    ok: false,
    detail: 'HTTP 500 (expected 200-399)',
  });
  // No body read at all counts as an empty one.
  assert.equal(checkResponse(spec({ body: /^$/ }), { statusCode: 200, headers: {} }).ok, true);
});
