/**
 * Shared pieces of the property tests (test/unit/*.property.test.ts): how many cases to run, inputs mutated
 * from valid ones, and the one outcome every parser may have besides a value: a one-line UsageError.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EXIT, UsageError } from '../../src/errors.js';

/**
 * Cases per property: `base` in `npm test` (quick), SDWRAP_FUZZ_RUNS in `npm run fuzz` (at most `max`, for
 * properties that spawn a process per case). A seed in SDWRAP_FUZZ_SEED replays a run fast-check reported.
 */
export function fuzzOptions(base: number, { max = Infinity }: { max?: number } = {}): fc.Parameters<unknown> {
  const runs = Number(process.env.SDWRAP_FUZZ_RUNS);
  const seed = Number(process.env.SDWRAP_FUZZ_SEED);
  return {
    numRuns: Math.min(max, Number.isSafeInteger(runs) && runs > 0 ? runs : base),
    ...(Number.isSafeInteger(seed) ? { seed } : {}),
  };
}

/** What a user sees from a parser: its value, or a UsageError with exit code 2 and one line, never a stack trace. */
export function valueOrUsageError<T>(parse: () => T): { value: T } | { error: UsageError } {
  try {
    return { value: parse() };
  } catch (error) {
    assertUsageError(error);
    return { error };
  }
}

/** Async form of valueOrUsageError. */
export async function valueOrUsageErrorAsync<T>(parse: () => Promise<T>): Promise<{ value: T } | { error: UsageError }> {
  try {
    return { value: await parse() };
  } catch (error) {
    assertUsageError(error);
    return { error };
  }
}

export function assertUsageError(error: unknown): asserts error is UsageError {
  if (!(error instanceof UsageError)) {
    assert.fail(`expected a UsageError, got ${error instanceof Error ? error.stack : String(error)}`);
  }
  assert.equal(error.exitCode, EXIT.USAGE);
  assert.equal(error.code, 'SDWRAP_USAGE');
  assert.ok(!/[\r\n]/.test(error.message), `the message is one line: ${JSON.stringify(error.message)}`);
  assert.ok(error.message.length > 0);
}

/** Characters that matter to sdwrap's parsers, plus a few that should never matter. */
const NOISE = [...'0123456789.,:;-+=<>!$[]{}()/?#@%&*"\'\\ \t\r\n\0smhdwuµμMy', 'é', '\u2028', '\u{1F600}', 'ﬀ', '\u00a0'];

type Edit = { at: number; kind: 'insert' | 'delete' | 'duplicate' | 'replace'; text: string; length: number };

/** One of `valid`, changed by a few random edits: near-misses find more bugs than random text. */
export function mutatedFrom(valid: readonly string[]): fc.Arbitrary<string> {
  const edit: fc.Arbitrary<Edit> = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom('insert', 'delete', 'duplicate', 'replace'),
    text: fc.oneof(fc.constantFrom(...NOISE), fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 3 })),
    length: fc.integer({ min: 1, max: 4 }),
  });
  return fc.tuple(fc.constantFrom(...valid), fc.array(edit, { minLength: 1, maxLength: 4 })).map(([text, edits]) => {
    let out = text;
    for (const { at, kind, text: piece, length } of edits) {
      const i = out.length === 0 ? 0 : at % (out.length + 1);
      if (kind === 'insert') out = out.slice(0, i) + piece + out.slice(i);
      else if (kind === 'delete') out = out.slice(0, i) + out.slice(i + length);
      else if (kind === 'duplicate') out = out.slice(0, i) + out.slice(i, i + length) + out.slice(i);
      else out = out.slice(0, i) + piece + out.slice(i + length);
    }
    return out;
  });
}

/** Random text of every kind, mutated valid text, and the valid text itself. */
export function textNear(valid: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 4, arbitrary: mutatedFrom(valid) },
    { weight: 1, arbitrary: fc.constantFrom(...valid) },
  );
}
