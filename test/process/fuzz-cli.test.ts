// The real CLI under fuzzed arguments: whatever the values, sdwrap either runs or exits 2 with one line on
// stderr, never a stack trace. (The parsers' own property tests run thousands of cases in-process; this checks
// the path from argv to exit on a sample.) Probes only ever aim at 127.0.0.1.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { fuzzOptions, textNear } from '../helpers/fuzz.js';

after(stopAll);

const FLAGS: Array<[string, readonly string[]]> = [
  ['--interval', ['5s', '500ms', '1min 30s']],
  ['--timeout', ['1s', '0.5']],
  ['--failure-threshold', ['3']],
  ['--start-period', ['0', '2s']],
  ['--stop-timeout', ['1s']],
  ['--http-status', ['200-399', '204']],
  ['--http-header', ['X-Ready: yes']],
  ['--http-json', ['a.b>=1']],
  ['--http-body', ['/ok/i']],
  ['--probe', ['liveness:exec:true', 'readiness:tcp:127.0.0.1:9']],
  ['--watch-log', ['FATAL']],
  ['--watch-log-max', ['3']],
  ['--on-unhealthy', ['kill', 'watchdog']],
  ['--log-level', ['info']],
];

const argv = fc
  .array(
    fc.constantFrom(...FLAGS).chain(([flag, valid]) => textNear(valid).map((value) => [flag, value])),
    { minLength: 1, maxLength: 3 },
  )
  .map((pairs) => pairs.flat());

test('fuzzed flag values: sdwrap runs, or exits 2 with one line and no stack trace', async () => {
  const marker = testMarker();
  let usage = 0;
  await fc.assert(
    fc.asyncProperty(argv, async (args) => {
      // `--` before the command, so that no fuzzed value is taken for it; a refused port for the HTTP probe.
      const run = runSdwrap(
        ['--http', 'http://127.0.0.1:9/', '--start-period', '0', ...args.filter((a) => !a.includes('\0')), '--', 'true'],
        { marker },
      );
      const exit = await run.waitForExit(10_000).catch(() => {
        run.kill('SIGKILL');
        return run.waitForExit(5_000);
      });
      const text = run.stderr.join('\n');
      assert.ok(!/^\s+at .+:\d+:\d+\)?$/m.test(text), `a stack trace:\n${run.dump()}`);
      assert.notEqual(exit.code, 70, run.dump());
      if (exit.code === 2) {
        usage++;
        const said = run.stderr.filter((l) => l.trim() !== '');
        // The error, then at most a pointer to --help.
        assert.ok(said.length >= 1 && said.length <= 2, run.dump());
      }
    }),
    fuzzOptions(40, { max: 400 }),
  );
  assert.ok(usage > 0, 'no case was a usage error: the fuzzing is too tame');
  await assertNoLeftovers(marker);
});
