import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkHead,
  checkResponse,
  formatStatusList,
  needsBody,
  parseBodyPattern,
  parseHeaderAssertion,
  parseJsonAssertion,
  parseStatusList,
  type ResponseAssertions,
} from '../../src/http-assertions.js';
import { UsageError } from '../../src/errors.js';

function throwsUsage(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.equal(e.message, message);
    assert.equal(e.exitCode, 2);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('parseStatusList: codes, ranges and lists of both', () => {
  assert.deepEqual(parseStatusList('200-399'), [{ min: 200, max: 399 }]);
  assert.deepEqual(parseStatusList('200,204'), [
    { min: 200, max: 200 },
    { min: 204, max: 204 },
  ]);
  assert.deepEqual(parseStatusList('200-299,301,302'), [
    { min: 200, max: 299 },
    { min: 301, max: 301 },
    { min: 302, max: 302 },
  ]);
  assert.deepEqual(parseStatusList(' 200 - 204 , 418 '), [
    { min: 200, max: 204 },
    { min: 418, max: 418 },
  ]);
  assert.deepEqual(parseStatusList('100-599'), [{ min: 100, max: 599 }]);
  assert.equal(formatStatusList(parseStatusList('200-299,301,302')), '200-299,301,302');
  assert.equal(formatStatusList([{ min: 200, max: 399 }]), '200-399');
});

test('parseStatusList: bad lists name the flag and the value', () => {
  throwsUsage(() => parseStatusList('ok'), "--http-status expects status codes and ranges such as 200-399 or 200,204, got 'ok'");
  throwsUsage(() => parseStatusList(''), "--http-status expects status codes and ranges such as 200-399 or 200,204, got ''");
  throwsUsage(() => parseStatusList('200,'), "--http-status expects status codes and ranges such as 200-399 or 200,204, got '200,'");
  throwsUsage(() => parseStatusList('2000'), "--http-status expects status codes and ranges such as 200-399 or 200,204, got '2000'");
  throwsUsage(() => parseStatusList('2xx'), "--http-status expects status codes and ranges such as 200-399 or 200,204, got '2xx'");
  throwsUsage(() => parseStatusList('200,600'), "--http-status expects status codes from 100 to 599, got 600 in '200,600'");
  throwsUsage(() => parseStatusList('099-200'), "--http-status expects status codes from 100 to 599, got 99 in '099-200'");
  throwsUsage(() => parseStatusList('399-200'), "--http-status expects ranges as low-high, got 399-200 in '399-200'");
  throwsUsage(
    () => parseStatusList('x', 'probes[0].http.status'),
    "probes[0].http.status expects status codes and ranges such as 200-399 or 200,204, got 'x'",
  );
});

test('parseHeaderAssertion: lower-cases the name, trims the value', () => {
  assert.deepEqual(parseHeaderAssertion('X-Ready: yes'), { name: 'x-ready', value: 'yes' });
  assert.deepEqual(parseHeaderAssertion('content-type:application/json; charset=utf-8'), {
    name: 'content-type',
    value: 'application/json; charset=utf-8',
  });
  assert.deepEqual(parseHeaderAssertion('  X-Version :  1.2:3  '), { name: 'x-version', value: '1.2:3' });
  for (const bad of ['X-Ready', 'X-Ready:', 'X-Ready:   ', ': yes', 'X Ready: yes', 'X-Réady: yes']) {
    throwsUsage(() => parseHeaderAssertion(bad), `--http-header expects 'Name: value' such as 'X-Ready: yes', got '${bad}'`);
  }
});

test('parseBodyPattern: a plain pattern, or /pattern/flags', () => {
  assert.deepEqual(parseBodyPattern('"status": *"ok"'), /"status": *"ok"/);
  assert.deepEqual(parseBodyPattern('/ok/i'), /ok/i);
  assert.deepEqual(parseBodyPattern('/^ready$/m'), /^ready$/m);
  assert.deepEqual(parseBodyPattern('\\/api\\/'), /\/api\//);
  assert.deepEqual(parseBodyPattern('a/b'), /a\/b/);
  throwsUsage(() => parseBodyPattern(''), `--http-body expects a regular expression such as '"status": *"ok"', got an empty string`);
  throwsUsage(() => parseBodyPattern('//'), `--http-body expects a regular expression such as '"status": *"ok"', got an empty string`);
  throwsUsage(
    () => parseBodyPattern('/ok/g'),
    "--http-body accepts the flags i, m, s and u after /pattern/, got 'g' in '/ok/g' (write \\/ to match a leading slash)",
  );
  throwsUsage(
    () => parseBodyPattern('/api/health'),
    "--http-body accepts the flags i, m, s and u after /pattern/, got 'health' in '/api/health' (write \\/ to match a leading slash)",
  );
  throwsUsage(
    () => parseBodyPattern('(ok'),
    "--http-body expects a regular expression, got '(ok' (Invalid regular expression: /(ok/: Unterminated group)",
  );
});

test('parseJsonAssertion: paths, every operator, values', () => {
  assert.deepEqual(parseJsonAssertion('players.online>=100'), {
    path: 'players.online',
    segments: ['players', 'online'],
    op: '>=',
    value: 100,
  });
  assert.deepEqual(parseJsonAssertion('checks.0.status==ok'), {
    path: 'checks.0.status',
    segments: ['checks', '0', 'status'],
    op: '==',
    value: 'ok',
  });
  assert.deepEqual(parseJsonAssertion('checks[0].status=="ok"').segments, ['checks', '0', 'status']);
  assert.deepEqual(parseJsonAssertion('$==true'), { path: '$', segments: [], op: '==', value: true });
  assert.deepEqual(parseJsonAssertion('$.db.up==true').segments, ['db', 'up']);
  assert.deepEqual(parseJsonAssertion('$[1]>0').segments, ['1']);
  assert.equal(parseJsonAssertion('a!=null').op, '!=');
  assert.equal(parseJsonAssertion('a!=null').value, null);
  assert.deepEqual(parseJsonAssertion('a<=1.5'), { path: 'a', segments: ['a'], op: '<=', value: 1.5 });
  assert.deepEqual(parseJsonAssertion('a>-3'), { path: 'a', segments: ['a'], op: '>', value: -3 });
  assert.deepEqual(parseJsonAssertion('a<1e3'), { path: 'a', segments: ['a'], op: '<', value: 1000 });
  assert.equal(parseJsonAssertion('version=="1.0"').value, '1.0');
  assert.equal(parseJsonAssertion('version==1.0').value, 1);
  assert.deepEqual(parseJsonAssertion('tags==["a","b"]').value, ['a', 'b']);
  // The first operator splits: the value keeps whatever follows.
  assert.deepEqual(parseJsonAssertion('query==a=b'), { path: 'query', segments: ['query'], op: '==', value: 'a=b' });
  assert.deepEqual(parseJsonAssertion('msg==<ok>').value, '<ok>');
  assert.deepEqual(parseJsonAssertion(' players.online >= 100 '), {
    path: 'players.online',
    segments: ['players', 'online'],
    op: '>=',
    value: 100,
  });
  assert.equal(parseJsonAssertion('status == all good').value, 'all good');
});

test('parseJsonAssertion: bad assertions say what was expected', () => {
  throwsUsage(
    () => parseJsonAssertion('players.online'),
    "--http-json expects <path><op><value> with op one of == != >= <= > <, such as players.online>=100, got 'players.online'",
  );
  throwsUsage(
    () => parseJsonAssertion('status=ok'),
    "--http-json expects <path><op><value> with op one of == != >= <= > <, such as players.online>=100, got 'status=ok'",
  );
  throwsUsage(() => parseJsonAssertion('>=100'), "--http-json expects a path before '>=' ($ for the whole document), got '>=100'");
  throwsUsage(
    () => parseJsonAssertion('a..b==1'),
    "--http-json expects a dotted path such as players.online or checks.0.status, got 'a..b' in 'a..b==1'",
  );
  throwsUsage(
    () => parseJsonAssertion('.a==1'),
    "--http-json expects a dotted path such as players.online or checks.0.status, got '.a' in '.a==1'",
  );
  throwsUsage(
    () => parseJsonAssertion('$.==1'),
    "--http-json expects a dotted path such as players.online or checks.0.status, got '$.' in '$.==1'",
  );
  throwsUsage(() => parseJsonAssertion('status=='), "--http-json expects a value after '==', got 'status=='");
  throwsUsage(
    () => parseJsonAssertion('players.online>=lots'),
    "--http-json expects a number after '>=', got 'lots' in 'players.online>=lots'",
  );
  throwsUsage(() => parseJsonAssertion('a<"5"'), `--http-json expects a number after '<', got '"5"' in 'a<"5"'`);
  throwsUsage(
    () => parseJsonAssertion('a', 'probes[1].http.json'),
    "probes[1].http.json expects <path><op><value> with op one of == != >= <= > <, such as players.online>=100, got 'a'",
  );
});

const base: ResponseAssertions = { statuses: [{ min: 200, max: 399 }], headers: [], json: [] };
const ok = { statusCode: 200, headers: {} };

test('checkResponse: status list', () => {
  assert.deepEqual(checkResponse(base, ok), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(checkResponse(base, { statusCode: 302, headers: {} }), { ok: true, detail: 'HTTP 302' });
  assert.deepEqual(checkResponse(base, { statusCode: 503, headers: {} }), { ok: false, detail: 'HTTP 503 (expected 200-399)' });
  const listed = { ...base, statuses: parseStatusList('200,204') };
  assert.deepEqual(checkResponse(listed, { statusCode: 204, headers: {} }), { ok: true, detail: 'HTTP 204' });
  assert.deepEqual(checkResponse(listed, { statusCode: 302, headers: {} }), { ok: false, detail: 'HTTP 302 (expected 200,204)' });
});

test('checkResponse: headers, case-insensitive names, exact trimmed values', () => {
  const spec = { ...base, headers: [parseHeaderAssertion('X-Ready: yes')] };
  assert.deepEqual(checkResponse(spec, { statusCode: 200, headers: { 'x-ready': ' yes ' } }), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(checkResponse(spec, { statusCode: 200, headers: { 'x-ready': 'no' } }), {
    ok: false,
    detail: 'header x-ready: "no" (expected "yes")',
  });
  assert.deepEqual(checkResponse(spec, { statusCode: 200, headers: { 'x-ready': 'Yes' } }), {
    ok: false,
    detail: 'header x-ready: "Yes" (expected "yes")',
  });
  assert.deepEqual(checkResponse(spec, { statusCode: 200, headers: {} }), {
    ok: false,
    detail: 'header x-ready is missing (expected "yes")',
  });
  assert.deepEqual(checkResponse(spec, { statusCode: 200, headers: { 'x-ready': ['no', 'yes'] } }), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(checkResponse(spec, { statusCode: 200, headers: { 'x-ready': ['no', 'maybe'] } }), {
    ok: false,
    detail: 'header x-ready: "no", "maybe" (expected "yes")',
  });
  // The status is judged first.
  assert.deepEqual(checkResponse(spec, { statusCode: 500, headers: {} }), { ok: false, detail: 'HTTP 500 (expected 200-399)' });
  assert.deepEqual(checkHead(spec, { statusCode: 200, headers: { 'x-ready': 'no' } }), {
    ok: false,
    detail: 'header x-ready: "no" (expected "yes")',
  });
});

test('checkResponse: body pattern', () => {
  const spec = { ...base, body: parseBodyPattern('ok') };
  assert.equal(needsBody(base), false);
  assert.equal(needsBody(spec), true);
  assert.deepEqual(checkResponse(spec, { ...ok, body: '{"status":"ok"}' }), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(checkResponse(spec, { ...ok, body: 'degraded' }), { ok: false, detail: 'body does not match /ok/' });
  assert.deepEqual(checkResponse(spec, ok), { ok: false, detail: 'body does not match /ok/' });
  assert.deepEqual(checkResponse({ ...base, body: parseBodyPattern('/OK/i') }, { ...ok, body: 'ok' }), { ok: true, detail: 'HTTP 200' });
});

test('checkResponse: JSON paths with each operator', () => {
  const body = JSON.stringify({
    players: { online: 12, max: 100 },
    status: 'ok',
    checks: [{ status: 'pass' }, { status: 'fail' }],
    db: null,
    tags: ['a'],
    count: '100',
  });
  const judge = (...assertions: string[]) =>
    checkResponse({ ...base, json: assertions.map((a) => parseJsonAssertion(a)) }, { ...ok, body });
  assert.deepEqual(judge('players.online>=100'), { ok: false, detail: 'players.online is 12 (expected >= 100)' });
  assert.deepEqual(judge('players.online>=12', 'players.online<=12', 'players.online>11', 'players.online<13'), {
    ok: true,
    detail: 'HTTP 200',
  });
  assert.deepEqual(judge('players.online>12'), { ok: false, detail: 'players.online is 12 (expected > 12)' });
  assert.deepEqual(judge('players.online<12'), { ok: false, detail: 'players.online is 12 (expected < 12)' });
  assert.deepEqual(judge('players.online<=11'), { ok: false, detail: 'players.online is 12 (expected <= 11)' });
  assert.deepEqual(judge('status==ok', 'status=="ok"', 'status!=degraded'), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(judge('status==degraded'), { ok: false, detail: 'status is "ok" (expected == "degraded")' });
  assert.deepEqual(judge('status!=ok'), { ok: false, detail: 'status is "ok" (expected != "ok")' });
  assert.deepEqual(judge('checks.0.status==pass', 'checks[1].status==fail', 'db==null', 'tags==["a"]'), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(judge('checks.1.status==pass'), { ok: false, detail: 'checks.1.status is "fail" (expected == "pass")' });
  // Strict equality: the string "100" is not the number 100.
  assert.deepEqual(judge('count==100'), { ok: false, detail: 'count is "100" (expected == 100)' });
  assert.deepEqual(judge('count=="100"'), { ok: true, detail: 'HTTP 200' });
  // Missing paths and non-numbers are failures, not exceptions.
  assert.deepEqual(judge('players.online.now>1'), { ok: false, detail: 'players.online.now is missing' });
  assert.deepEqual(judge('players.offline>=1'), { ok: false, detail: 'players.offline is missing' });
  assert.deepEqual(judge('checks.5.status==pass'), { ok: false, detail: 'checks.5.status is missing' });
  assert.deepEqual(judge('checks.first==pass'), { ok: false, detail: 'checks.first is missing' });
  assert.deepEqual(judge('db.up==true'), { ok: false, detail: 'db.up is missing' });
  assert.deepEqual(judge('status>=1'), { ok: false, detail: 'status is "ok", not a number (expected >= 1)' });
  assert.deepEqual(judge('count>=1'), { ok: false, detail: 'count is "100", not a number (expected >= 1)' });
  assert.deepEqual(judge('players>=1'), { ok: false, detail: 'players is {"online":12,"max":100}, not a number (expected >= 1)' });
  // The first failing assertion is the one reported.
  assert.deepEqual(judge('status==ok', 'players.online>=100', 'db==1'), { ok: false, detail: 'players.online is 12 (expected >= 100)' });
});

test('checkResponse: the whole document, bodies that are not JSON, long values', () => {
  const judge = (assertion: string, body: string) => checkResponse({ ...base, json: [parseJsonAssertion(assertion)] }, { ...ok, body });
  assert.deepEqual(judge('$==true', 'true'), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(judge('$>=3', '2'), { ok: false, detail: '$ is 2 (expected >= 3)' });
  assert.deepEqual(judge('$.0==1', '[1]'), { ok: true, detail: 'HTTP 200' });
  assert.deepEqual(judge('status==ok', 'status: ok'), { ok: false, detail: 'body is not JSON' });
  assert.deepEqual(judge('status==ok', ''), { ok: false, detail: 'body is not JSON' });
  assert.deepEqual(judge('status==ok', JSON.stringify({ status: 'x'.repeat(200) })), {
    ok: false,
    detail: `status is "${'x'.repeat(58)}… (expected == "ok")`,
  });
  // Keys are own properties only.
  assert.deepEqual(judge('constructor==1', '{}'), { ok: false, detail: 'constructor is missing' });
  // The body pattern is checked before the JSON.
  const both = { ...base, body: /ready/, json: [parseJsonAssertion('a==1')] };
  assert.deepEqual(checkResponse(both, { ...ok, body: '{"a":1}' }), { ok: false, detail: 'body does not match /ready/' });
  assert.deepEqual(checkResponse(both, { ...ok, body: '{"a":1,"ready":true}' }), { ok: true, detail: 'HTTP 200' });
});
