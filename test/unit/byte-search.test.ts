// The SIMD substring search the log watch uses for plain-text patterns, against Buffer#indexOf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteSearch, SEARCH_BUFFER_BYTES } from '../../src/byte-search.js';

/** xorshift32: the same cases on every run. */
function random(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

const reference = (chunk: Buffer, needle: Buffer, from: number, to: number) => {
  const at = chunk.subarray(from, to).indexOf(needle);
  return at === -1 ? -1 : from + at;
};

test('finds what Buffer#indexOf finds, in its own memory and in any buffer, over small alphabets that make many near misses', () => {
  const r = random(11);
  let cases = 0;
  for (let round = 0; round < 2000; round++) {
    const alphabet = 'ab\nc\u00e9'.slice(0, 1 + r(5));
    const needle = Buffer.from(Array.from({ length: 1 + r(20) }, () => alphabet[r(alphabet.length)]).join(''));
    const search = new ByteSearch(needle);
    const own = search.readBuffer();
    const length = r(700);
    const text = Buffer.from(Array.from({ length }, () => alphabet[r(alphabet.length)]).join('')).subarray(0, length);
    text.copy(own);
    for (const chunk of [own.subarray(0, text.length), Buffer.from(text)]) {
      for (let q = 0; q < 4; q++) {
        const from = r(chunk.length + 1);
        const to = from + r(chunk.length - from + 1);
        assert.equal(
          search.find(chunk, from, to),
          reference(chunk, needle, from, to),
          JSON.stringify({ needle: needle.toString(), chunk: chunk.toString(), from, to }),
        );
        cases++;
      }
    }
  }
  assert.ok(cases > 10_000);
});

test('a match at the very end of its own buffer, and in the second of its two buffers', () => {
  const needle = Buffer.from('deadline has elapsed');
  const search = new ByteSearch(needle);
  const first = search.readBuffer();
  const second = search.readBuffer();
  assert.equal(first.buffer, second.buffer, 'both buffers are the search memory');
  assert.equal(first.length, SEARCH_BUFFER_BYTES);
  for (const own of [first, second]) {
    own.fill('x');
    needle.copy(own, own.length - needle.length);
    assert.equal(search.find(own, 0, own.length), own.length - needle.length);
    assert.equal(search.find(own, 0, own.length - 1), -1);
  }
  const third = search.readBuffer();
  assert.notEqual(third.buffer, first.buffer, 'a third reader gets a buffer of its own');
  third.fill('y');
  needle.copy(third, 100);
  assert.equal(search.find(third, 0, third.length), 100);
});
