// Property tests of the parsers that read what people type: spans, status lists, header lines, JSON-path
// assertions, URLs and --probe specs. Each gives a value or a one-line UsageError (exit 2), never a stack trace.
// `npm run fuzz` runs the same properties with many more cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { parseProbeFlag, validateCount, validateHostPort, validateHttpUrl, validateSpan, validateWsUrl } from '../../src/config.js';
import { formatSpan, parseSpan } from '../../src/duration.js';
import {
  formatStatusList,
  parseBodyPattern,
  parseHeaderAssertion,
  parseJsonAssertion,
  parseRequestHeader,
  parseStatusList,
} from '../../src/http-assertions.js';
import { fuzzOptions, textNear, valueOrUsageError } from '../helpers/fuzz.js';

const SPANS = ['500ms', '5s', '2min', '1min 30s', '1.5h', '10', '0', '.5s', '1w 2d', '250us', '3 hours', '1min30', '+2s', '1M', '1y'];

test('spans: any text gives a whole number of ms or undefined, and the flag check a value or a UsageError', () => {
  fc.assert(
    fc.property(textNear(SPANS), (text) => {
      const ms = parseSpan(text);
      if (ms !== undefined) assert.ok(Number.isInteger(ms) || ms === Infinity, `${JSON.stringify(text)} -> ${ms}`);
      if (ms !== undefined) assert.ok(ms >= 0);
      const checked = valueOrUsageError(() => validateSpan('--interval', text, { min: 1 }));
      if ('value' in checked) assert.ok(checked.value >= 1 && checked.value <= 2 ** 31 - 1);
    }),
    fuzzOptions(2000),
  );
});

test('spans: a formatted span parses back to the same milliseconds, and passes the flag check', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (ms) => {
      assert.equal(parseSpan(formatSpan(ms)), ms);
      assert.equal(validateSpan('--timeout', formatSpan(ms), { min: 0 }), ms);
    }),
    fuzzOptions(2000),
  );
});

const UNITS = ['', 'us', 'usec', 'µs', 'μs', 'ms', 'msec', 's', 'sec', 'second', 'seconds', 'm', 'min', 'minute', 'minutes'];
const LONG_UNITS = ['h', 'hr', 'hour', 'hours', 'd', 'day', 'days', 'w', 'week', 'weeks', 'M', 'month', 'months', 'y', 'year', 'years'];

/** Spans in systemd's grammar, with the spacing and signs it allows: "1min 30", "+2s", ".5 ms", "1h\t5m". */
const systemdSpan = fc
  .array(
    fc.record({
      plus: fc.boolean(),
      whole: fc.oneof(fc.nat({ max: 90 }), fc.constant(0)).map(String),
      fraction: fc.option(fc.stringMatching(/^\d{1,4}$/), { nil: undefined }),
      gap: fc.constantFrom('', ' ', '  ', '\t'),
      unit: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...UNITS) }, { weight: 1, arbitrary: fc.constantFrom(...LONG_UNITS) }),
    }),
    { minLength: 1, maxLength: 3 },
  )
  .map((parts) =>
    parts
      .map(
        ({ plus, whole, fraction, gap, unit }) => `${plus ? '+' : ''}${whole}${fraction === undefined ? '' : `.${fraction}`}${gap}${unit}`,
      )
      .join(' '),
  );

function systemdAnalyze(text: string): { us: number } | 'rejected' | 'missing' {
  const out = spawnSync('systemd-analyze', ['timespan', text], { encoding: 'utf8' });
  if (out.error) return 'missing';
  const m = /μs: (\d+)/.exec(out.stdout);
  return out.status === 0 && m ? { us: Number(m[1]) } : 'rejected';
}

const hasSystemdAnalyze = systemdAnalyze('1s') !== 'missing';

test(
  'spans that systemd accepts mean the same to sdwrap (systemd-analyze timespan, on a sample)',
  { skip: !hasSystemdAnalyze && 'systemd-analyze is not installed' },
  () => {
    let agreed = 0;
    fc.assert(
      fc.property(fc.oneof({ weight: 3, arbitrary: systemdSpan }, { weight: 1, arbitrary: textNear(SPANS) }), (text) => {
        if (text.includes('\0')) return; // an argument cannot carry a NUL to systemd-analyze
        const systemd = systemdAnalyze(text);
        if (systemd === 'rejected' || systemd === 'missing') return;
        const ms = parseSpan(text);
        assert.notEqual(ms, undefined, `systemd accepts ${JSON.stringify(text)} (${systemd.us} μs), sdwrap does not`);
        // systemd counts in μs and drops what is finer; sdwrap rounds to the ms.
        assert.ok(
          Math.abs(ms! - systemd.us / 1000) <= 0.5 + 1e-9 * ms!,
          `${JSON.stringify(text)}: systemd ${systemd.us} μs, sdwrap ${ms} ms`,
        );
        agreed++;
      }),
      fuzzOptions(300, { max: 3000 }),
    );
    assert.ok(agreed > 100, `only ${agreed} of the sample were spans systemd accepts`);
  },
);

// Regressions the span properties found (see the commit that fixed parseSpan).
test('spans as systemd reads them: a unitless last part is seconds, "M" a month, "+", tabs and the Greek mu', () => {
  assert.equal(parseSpan('1min 30'), 90_000);
  assert.equal(parseSpan('1s1'), 2000);
  assert.equal(parseSpan('1M'), 2_629_800_000);
  assert.equal(parseSpan('1m'), 60_000);
  assert.equal(parseSpan('1y'), 31_557_600_000);
  assert.equal(parseSpan('+5s'), 5000);
  assert.equal(parseSpan('1min\t30s'), 90_000);
  assert.equal(parseSpan('1500μs'), 2);
  assert.equal(parseSpan('5s 1.s'), undefined);
});

const STATUSES = ['200', '200-399', '200,204', '200-299,301,302', ' 204 ', '100-599'];

test('status lists: a value or a UsageError; what parses formats back to the same ranges', () => {
  fc.assert(
    fc.property(textNear(STATUSES), (text) => {
      const parsed = valueOrUsageError(() => parseStatusList(text));
      if ('value' in parsed) {
        for (const { min, max } of parsed.value) assert.ok(min >= 100 && min <= max && max <= 599);
        assert.deepEqual(parseStatusList(formatStatusList(parsed.value)), parsed.value);
      }
    }),
    fuzzOptions(2000),
  );
  const range = fc.tuple(fc.integer({ min: 100, max: 599 }), fc.integer({ min: 100, max: 599 })).map(([a, b]) => ({
    min: Math.min(a, b),
    max: Math.max(a, b),
  }));
  fc.assert(
    fc.property(fc.array(range, { minLength: 1, maxLength: 5 }), (ranges) => {
      assert.deepEqual(parseStatusList(formatStatusList(ranges)), ranges);
    }),
    fuzzOptions(500),
  );
});

const HEADERS = ['X-Ready: yes', 'Host: svc.internal', 'Authorization: Bearer abc.def', 'Content-Type:application/json', 'a:b'];

const FIXED_REQUEST_HEADER_MESSAGE = (() => {
  const result = valueOrUsageError(() => parseRequestHeader(''));
  return 'error' in result ? result.error.message : '';
})();

test('header lines: a value or a UsageError; a request header value never appears in the message', () => {
  fc.assert(
    fc.property(textNear(HEADERS), (text) => {
      const assertion = valueOrUsageError(() => parseHeaderAssertion(text));
      if ('value' in assertion) assert.equal(assertion.value.name, assertion.value.name.toLowerCase());
      const request = valueOrUsageError(() => parseRequestHeader(text));
      if ('error' in request) {
        const value = text.slice(text.indexOf(':') + 1).trim();
        // Words of the message's own fixed text ("Name: value", its example) are no leak.
        const leak = value.length >= 4 && !FIXED_REQUEST_HEADER_MESSAGE.includes(value) && request.error.message.includes(value);
        assert.ok(!leak, `the value leaked: ${request.error.message}`);
      } else {
        assert.ok(!/[\r\n\0]/.test(request.value.value));
      }
    }),
    fuzzOptions(2000),
  );
  const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/);
  const value = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/);
  fc.assert(
    fc.property(token, value, (name, v) => {
      assert.deepEqual(parseRequestHeader(`${name}: ${v}`), { name, value: v });
      assert.deepEqual(parseHeaderAssertion(`${name}:${v}`), { name: name.toLowerCase(), value: v });
    }),
    fuzzOptions(500),
  );
});

const JSON_ASSERTIONS = ['players.online>=100', 'checks.0.status==ok', '$==true', 'a[2].b!="x"', '$.status==ok', 'n<1.5', 'x==null'];

test('JSON-path assertions: a value or a UsageError; ordering ops always hold a number', () => {
  fc.assert(
    fc.property(textNear(JSON_ASSERTIONS), (text) => {
      const parsed = valueOrUsageError(() => parseJsonAssertion(text));
      if ('value' in parsed) {
        const { op, value, segments } = parsed.value;
        if (['>=', '<=', '>', '<'].includes(op)) assert.equal(typeof value, 'number');
        for (const segment of segments) assert.notEqual(segment, '');
      }
    }),
    fuzzOptions(2000),
  );
  const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,8}$/);
  const literal = fc.oneof(
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.stringMatching(/^[a-z ]{0,8}$/),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  fc.assert(
    fc.property(
      fc.array(fc.oneof(key, fc.nat({ max: 9 }).map(String)), { minLength: 1, maxLength: 4 }),
      fc.constantFrom('==', '!='),
      literal,
      (path, op, value) => {
        const parsed = parseJsonAssertion(`${path.join('.')}${op}${JSON.stringify(value)}`);
        assert.deepEqual(parsed.segments, path);
        assert.equal(parsed.op, op);
        assert.deepEqual(parsed.value, JSON.parse(JSON.stringify(value)));
      },
    ),
    fuzzOptions(500),
  );
});

test('body patterns: a RegExp or a UsageError', () => {
  fc.assert(
    fc.property(textNear(['"status": *"ok"', '/ok/i', '^up$', '\\/ok\\/', '/a(b/']), (text) => {
      valueOrUsageError(() => parseBodyPattern(text));
    }),
    fuzzOptions(1000),
  );
});

const URLS = [
  'http://127.0.0.1:8080/healthz',
  'https://user:pa%20ss@example.com/x?y=1#z',
  'http://[::1]:80/',
  'ws://127.0.0.1:9/ws',
  'wss://h/',
];

/** The words of the message about a bad URL ("expects an http:// or https:// URL"), which are no leak. */
const FIXED_URL_MESSAGE = (() => {
  const result = valueOrUsageError(() => validateHttpUrl('--heartbeat-url', '', { secret: true }));
  return 'error' in result ? result.error.message : '';
})();

test('URLs: a URL that validates again to itself, or a UsageError; a secret URL never appears in the message', () => {
  fc.assert(
    fc.property(fc.oneof(textNear(URLS), fc.webUrl({ withQueryParameters: true, withFragments: true })), (text) => {
      const http = valueOrUsageError(() => validateHttpUrl('--http', text));
      if ('value' in http) assert.equal(validateHttpUrl('--http', http.value), http.value);
      const secret = valueOrUsageError(() => validateHttpUrl('--heartbeat-url', text, { secret: true }));
      if ('error' in secret && text.trim().length >= 6 && !FIXED_URL_MESSAGE.includes(text)) {
        assert.ok(!secret.error.message.includes(text), secret.error.message);
      }
      const ws = valueOrUsageError(() => validateWsUrl('--ws', text));
      if ('value' in ws) assert.equal(validateWsUrl('--ws', ws.value), ws.value);
    }),
    fuzzOptions(2000),
  );
});

test('host:port and counts: a value in range or a UsageError', () => {
  fc.assert(
    fc.property(textNear(['127.0.0.1:8080', '[::1]:1', 'localhost:65535', 'h:0']), (text) => {
      const hp = valueOrUsageError(() => validateHostPort('--tcp', text));
      if ('value' in hp) assert.ok(hp.value.port >= 1 && hp.value.port <= 65535 && hp.value.host !== '');
    }),
    fuzzOptions(1000),
  );
  fc.assert(
    fc.property(textNear(['1', '3', '10', '007', '9007199254740991']), (text) => {
      const n = valueOrUsageError(() => validateCount('--failure-threshold', text));
      if ('value' in n) assert.ok(Number.isSafeInteger(n.value) && n.value >= 1);
    }),
    fuzzOptions(1000),
  );
});

const PROBES = [
  'liveness:http:http://127.0.0.1:8080/healthz',
  'readiness:exec:pg_isready -q',
  'both:tcp:127.0.0.1:5432',
  'liveness:ws:ws://h:1/',
];

test('--probe specs: a probe or a UsageError', () => {
  fc.assert(
    fc.property(textNear(PROBES), (text) => {
      const parsed = valueOrUsageError(() => parseProbeFlag(text));
      if ('value' in parsed) assert.ok(['http', 'tcp', 'exec', 'ws'].includes(parsed.value.kind));
    }),
    fuzzOptions(2000),
  );
});

// Regressions the properties found: a value with a newline or a NUL, quoted in a message, broke it over lines.
test('a usage message quoting a value with control characters stays one line', () => {
  for (const [parse, text] of [
    [() => parseHeaderAssertion('X\r-Ready: yes'), 'X\r-Ready: yes'],
    [() => parseStatusList('\n'), '\n'],
    [() => validateSpan('--interval', '5x\n5s\u2028', { min: 1 }), '5x\n5s\u2028'],
  ] as const) {
    const result = valueOrUsageError<unknown>(parse);
    assert.ok('error' in result, JSON.stringify(text));
    assert.ok(!/[\r\n\u2028]/.test(result.error.message), result.error.message);
  }
});
