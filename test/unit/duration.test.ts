import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSpan, parseSpan } from '../../src/duration.js';

test('parses systemd time spans into milliseconds', () => {
  const cases: Array<[string, number]> = [
    ['500ms', 500],
    ['5s', 5000],
    ['2min', 120_000],
    ['1min 30s', 90_000],
    ['1min30s', 90_000],
    ['10', 10_000],
    ['0', 0],
    ['1.5s', 1500],
    ['1h', 3_600_000],
    ['2 min', 120_000],
    ['250usec', 0],
    ['1500us', 2],
    ['1d', 86_400_000],
    ['1w 1d', 691_200_000],
    ['  3s ', 3000],
    ['0.5', 500],
  ];
  for (const [text, ms] of cases) assert.equal(parseSpan(text), ms, text);
});

test('rejects what is not a span', () => {
  for (const text of ['', 'abc', '5x', '-1s', 's', '5 s s', '1e3s', '1,5s']) {
    assert.equal(parseSpan(text), undefined, text);
  }
});

test('formats spans the way systemd prints them', () => {
  assert.equal(formatSpan(90_000), '1min 30s');
  assert.equal(formatSpan(500), '500ms');
  assert.equal(formatSpan(2500), '2s 500ms');
  assert.equal(formatSpan(0), '0');
  assert.equal(parseSpan(formatSpan(3_723_004)), 3_723_004);
});

test('edges: fractions of more than one digit, a bare number with spaces, a leading dot', () => {
  const cases: Array<[string, number]> = [
    ['1.25s', 1250],
    ['1.25', 1250],
    [' 5 ', 5000],
    ['.25s', 250],
    ['.5s', 500],
    ['1.5min 0.25s', 90_250],
  ];
  for (const [text, ms] of cases) assert.equal(parseSpan(text), ms, text);
  assert.equal(parseSpan('.s'), undefined);
});
