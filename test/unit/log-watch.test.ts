import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock } from '../../src/clock.js';
import { MAX_CARRY, plainText, SymptomCounter, type LogStream, type LogWatchOptions } from '../../src/log-watch.js';

class ManualClock implements Clock {
  time = 0;
  now = () => this.time;
  setTimeout = () => undefined;
  clearTimeout = () => {};
  setInterval = () => undefined;
  clearInterval = () => {};
}

type Feed = [LogStream, string | Buffer];

function counter(options: LogWatchOptions, clock = new ManualClock()) {
  const trips: string[] = [];
  const c = new SymptomCounter(options, clock, (reason) => trips.push(reason));
  const feed = (stream: LogStream, chunk: string | Buffer) => c.feed(stream, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return { c, trips, clock, feed };
}

/**
 * How many lines the counter finds in `feeds`, through the public interface only: a counter trips exactly
 * when it has seen more than max, so the count is the number of max values in 0..limit that trip.
 */
function matchingLines(pattern: RegExp, feeds: Feed[], limit = 30, ownMemory = false): number {
  let n = 0;
  for (let max = 0; max <= limit; max++) {
    const { c, trips, feed } = counter({ pattern, max, windowMs: 60_000 });
    // As relay() does: each stream read into memory from the counter (the search's own, for plain text).
    const memory = ownMemory ? { stdout: c.readBuffer(), stderr: c.readBuffer() } : undefined;
    for (const [stream, chunk] of feeds) {
      if (!memory) feed(stream, chunk);
      else feed(stream, memory[stream].subarray(0, Buffer.from(chunk).copy(memory[stream])));
    }
    if (trips.length > 0) n++;
  }
  return n;
}

const out = (...chunks: Array<string | Buffer>): Feed[] => chunks.map((c) => ['stdout', c]);

/** Every split of `text` into chunks of `size` bytes. */
const bytewise = (text: string, size = 1): Feed[] => {
  const bytes = Buffer.from(text);
  const feeds: Feed[] = [];
  for (let i = 0; i < bytes.length; i += size) feeds.push(['stdout', bytes.subarray(i, i + size)]);
  return feeds;
};

// A plain phrase, as most --watch-log patterns are, and one with a group: the same counts either way.
const LITERAL = /deadline has elapsed/;
const REGEX = /deadline (has )?elapsed/;

for (const pattern of [LITERAL, REGEX]) {
  test(`${pattern}: a chunk with several matching lines counts each; a line matching twice counts once`, () => {
    const text = 'ok\ncontext deadline has elapsed\nok\nrpc: deadline has elapsed\ndeadline has elapsed, deadline has elapsed\n';
    assert.equal(matchingLines(pattern, out(text)), 3);
    assert.equal(matchingLines(pattern, out('nothing here\n'.repeat(50))), 0);
  });

  test(`${pattern}: a match split across chunks counts once, wherever it is split`, () => {
    const text = 'a\nx deadline has elapsed y\nb\ndeadline has elapsed\n';
    for (const size of [1, 2, 3, 5, 7, 13, 26]) assert.equal(matchingLines(pattern, bytewise(text, size)), 2, `chunks of ${size}`);
    assert.equal(matchingLines(pattern, out('deadline has ', 'elapsed\n')), 1);
    assert.equal(
      matchingLines(pattern, out('deadline has elapsed', '\nok\n')),
      1,
      'a match in the carried part counts once, when its line ends',
    );
    assert.equal(matchingLines(pattern, out('deadline has elapsed')), 0, 'a line is only judged once it ends');
  });

  test(`${pattern}: stdout and stderr carries are kept apart, their counts added`, () => {
    assert.equal(
      matchingLines(pattern, [
        ['stdout', 'deadline has '],
        ['stderr', 'elapsed\n'],
        ['stdout', '\n'],
      ]),
      0,
    );
    assert.equal(
      matchingLines(pattern, [
        ['stdout', 'deadline has elapsed'],
        ['stderr', '\n'],
        ['stderr', 'x\n'],
      ]),
      0,
      'stderr does not end a stdout line',
    );
    assert.equal(
      matchingLines(pattern, [
        ['stdout', 'deadline has elapsed'],
        ['stderr', 'deadline has'],
        ['stdout', '\n'],
        ['stderr', ' elapsed\n'],
      ]),
      2,
    );
  });

  test(`${pattern}: the carry is capped; the rest of an overlong line is not matched`, () => {
    const filler = 'x'.repeat(MAX_CARRY + 10);
    assert.equal(matchingLines(pattern, out(filler, 'deadline has elapsed', '\n')), 0, 'beyond the cap');
    assert.equal(
      matchingLines(pattern, out('deadline has elapsed', filler, filler, '\n')),
      1,
      'the head of an overlong line still counts, once',
    );
    assert.equal(
      matchingLines(pattern, out(filler, filler, 'deadline has elapsed\ndeadline has elapsed\n')),
      1,
      'the next line is whole again',
    );
  });

  test(`${pattern}: a multibyte character split across chunks breaks nothing`, () => {
    const text = 'été: deadline has elapsed — 日本\n';
    for (const size of [1, 2, 3]) assert.equal(matchingLines(pattern, bytewise(text, size)), 1, `chunks of ${size}`);
  });
}

test('a flood without newlines does not grow memory', () => {
  for (const pattern of [LITERAL, REGEX]) {
    const { feed } = counter({ pattern, max: 10, windowMs: 1000 });
    const chunk = Buffer.alloc(64 * 1024, 'deadline has elapsed ');
    feed('stdout', chunk);
    const before = process.memoryUsage();
    for (let i = 0; i < 4096; i++) feed('stdout', chunk); // 256 MiB, one line
    const after = process.memoryUsage();
    const grown = after.heapUsed + after.external + after.arrayBuffers - (before.heapUsed + before.external + before.arrayBuffers);
    assert.ok(grown < 64 * 1024 * 1024, `${pattern}: grew ${Math.round(grown / 1024 / 1024)} MiB`);
  }
});

test('non-ASCII patterns match', () => {
  const text = 'délai dépassé\n';
  assert.equal(matchingLines(/délai dépassé/, bytewise(text)), 1);
  assert.equal(matchingLines(/d.lai d[ée]pass.$/, bytewise(text)), 1);
  assert.equal(matchingLines(/délai dépassé/, out('delai depasse\n')), 0);
});

test('^ and $ are per line; \\r before the newline is a line end for $', () => {
  assert.equal(matchingLines(/^ERROR/, out('ERROR a\nx ERROR b\nERROR c\n')), 2);
  assert.equal(matchingLines(/timeout$/, out('a timeout\r\nb timeout\nc timeout x\nd timeout')), 2, 'the last line has not ended yet');
  assert.equal(matchingLines(/^$/, out('a\n\nb\n\n')), 2, 'no empty line is made up after the final newline');
  assert.equal(matchingLines(/^$/, out('a\n', '\n', 'b\n')), 1);
});

test('a match running over a newline is judged on its own line', () => {
  assert.equal(matchingLines(/a\s+b/, out('a\nb\n')), 0);
  assert.equal(matchingLines(/a\s+b/, out('a\nb a  b\n')), 1);
  assert.equal(matchingLines(/x[^y]*z/, out('x\nz\nx z\n')), 1);
  assert.equal(matchingLines(/x.*z/s, out('x\nz\n')), 0, 'dotAll does not join lines');
});

test('patterns that can match empty count every line and terminate', () => {
  assert.equal(matchingLines(/q*/, out('a\nb\n\nc\n')), 4);
  assert.equal(matchingLines(/(?:)/, bytewise('a\nb\n')), 2);
});

test("flags: the user's are kept, g, y and m are harmless; escaped punctuation matches literally", () => {
  assert.equal(matchingLines(/DEADLINE/i, out('deadline\nDeadLine\nnope\n')), 2);
  assert.equal(matchingLines(/deadline/gy, out('x deadline\ndeadline\n')), 2);
  assert.equal(matchingLines(/^deadline/m, out('x deadline\ndeadline\n')), 1);
  assert.equal(matchingLines(/deadline\.exceeded \(grpc\)/, out('deadline.exceeded (grpc)\ndeadlineXexceeded (grpc)\n')), 1);
  assert.equal(matchingLines(/a\/b/, out('a/b\n')), 1);
});

test('trips exactly once, when more than max lines fall within the window, with a readable reason', () => {
  const { trips, feed, clock } = counter({ pattern: /deadline has elapsed/, max: 10, windowMs: 30_000 });
  for (let i = 0; i < 10; i++) {
    clock.time += 1000;
    feed('stderr', 'context deadline has elapsed\n');
  }
  assert.deepEqual(trips, []);
  feed('stdout', 'deadline has elapsed\n');
  assert.deepEqual(trips, ['log watch: 11 lines matching /deadline has elapsed/ within 30s (max 10)']);
  feed('stdout', 'deadline has elapsed\n'.repeat(100));
  assert.equal(trips.length, 1);
});

test('the window slides: old matches fall out', () => {
  const { trips, feed, clock } = counter({ pattern: /x/, max: 2, windowMs: 1000 });
  feed('stdout', 'x\nx\n'); // two at 0
  clock.time = 1000;
  feed('stdout', 'x\n'); // the two at 0 are exactly one window old: out
  clock.time = 1500;
  feed('stdout', 'x\n'); // 1000, 1500 within the window
  assert.deepEqual(trips, []);
  clock.time = 1999;
  feed('stdout', 'x\n'); // 1000, 1500, 1999: three within 1s
  assert.deepEqual(trips, ['log watch: 3 lines matching /x/ within 1s (max 2)']);
});

test('a single chunk can trip; max 0 trips on the first match; spans read like systemd', () => {
  const many = counter({ pattern: /x/i, max: 3, windowMs: 90_000 });
  many.feed('stdout', 'x\nX\nx\nx\n');
  assert.deepEqual(many.trips, ['log watch: 4 lines matching /x/i within 1min 30s (max 3)']);
  const zero = counter({ pattern: /x/, max: 0, windowMs: 500 });
  zero.feed('stdout', 'a\n');
  assert.deepEqual(zero.trips, []);
  zero.feed('stdout', 'x\n');
  assert.deepEqual(zero.trips, ['log watch: 1 lines matching /x/ within 500ms (max 0)']);
});

test('options are checked', () => {
  const clock = new ManualClock();
  assert.throws(() => new SymptomCounter({ pattern: /x/, max: -1, windowMs: 1 }, clock, () => {}), { code: 'SDWRAP_INTERNAL' });
  assert.throws(() => new SymptomCounter({ pattern: /x/, max: 1.5, windowMs: 1 }, clock, () => {}), { code: 'SDWRAP_INTERNAL' });
  assert.throws(() => new SymptomCounter({ pattern: /x/, max: 1, windowMs: 0 }, clock, () => {}), { code: 'SDWRAP_INTERNAL' });
});

test('plain-text patterns are recognised; anything a regular expression decides is not', () => {
  assert.equal(plainText(/context deadline has elapsed/), 'context deadline has elapsed');
  assert.equal(plainText(/deadline\.exceeded \(grpc\)/), 'deadline.exceeded (grpc)');
  assert.equal(plainText(new RegExp('a/b')), 'a/b');
  assert.equal(plainText(/délai dépassé/u), 'délai dépassé');
  for (const pattern of [
    /DEADLINE/i,
    /^x/,
    /x$/,
    /a.b/,
    /a|b/,
    /ab?/,
    /a*/,
    /[ab]/,
    /(ab)/,
    /a{2}/,
    /\d/,
    /\bx/,
    /\x41/,
    /(?:)/,
    /\uFFFD/,
  ]) {
    assert.equal(plainText(pattern), undefined, String(pattern));
  }
});

test('a plain-text pattern, searched as bytes, counts the lines a regular expression counts, however the output is split', () => {
  // The same text two ways: plain (the byte search) and as a regular expression (decoded, scanned line by line).
  const plain = /deadline has elapsed/;
  const regex = /deadline has elaps(?:ed)/;
  assert.equal(plainText(plain), 'deadline has elapsed');
  assert.equal(plainText(regex), undefined);
  let s = 99;
  const r = (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
  const pieces = [
    'deadline has elapsed',
    'deadline has',
    ' elapsed',
    'deadline',
    'é',
    '日本',
    '\r',
    '\n',
    '\n',
    'ok ',
    'x'.repeat(MAX_CARRY / 4),
  ];
  for (let round = 0; round < 60; round++) {
    let text = '';
    for (let i = r(60); i > 0; i--) text += pieces[r(pieces.length)];
    const bytes = Buffer.from(text);
    const feeds: Feed[] = [];
    for (let at = 0; at < bytes.length;) {
      const size = 1 + r(r(2) === 0 ? 40 : 70_000);
      feeds.push([r(4) === 0 ? 'stderr' : 'stdout', bytes.subarray(at, at + size)]);
      at += size;
    }
    const expected = matchingLines(regex, feeds, 40);
    assert.equal(matchingLines(plain, feeds, 40), expected, `round ${round}`);
    assert.equal(matchingLines(plain, feeds, 40, true), expected, `round ${round}, read into the counter's memory`);
  }
});
