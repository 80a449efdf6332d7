// --config through the real CLI: options, probes and the command come from the file; a flag given on the
// command line wins over the file's value, and the command line's command over the file's `command`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';

after(stopAll);

const dir = mkdtempSync(join(tmpdir(), 'sdwrap-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An app never ready (its probe always fails), so sdwrap ends at the start period, and says which. */
const CONFIG = {
  startPeriod: '300ms',
  stopTimeout: '1s',
  logLevel: 'warn',
  probes: [{ role: 'readiness', exec: 'exit 1', interval: '100ms' }],
  command: ['sh', '-c', 'echo from-config; exec sleep 30'],
};

const unhealthyReason = (logs: Array<Record<string, unknown>>) =>
  String(logs.find((l) => l.msg === 'unhealthy: killing the child')?.reason);

test('--config alone: its options, probes and command are used', async () => {
  const file = join(dir, 'app.json');
  writeFileSync(file, JSON.stringify(CONFIG));
  const marker = testMarker();
  const run = runSdwrap(['--config', file], { marker });
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  assert.deepEqual(run.stdout, ['from-config'], run.dump());
  assert.match(
    unhealthyReason(run.logs),
    /^not ready by the end of the start period \(300ms\): exec "exit 1" \(last: exit 1\); if the app needs longer to start, raise --start-period$/,
    run.dump(),
  );
  // logLevel "warn" from the file: no info line.
  assert.ok(run.logs.length > 0 && run.logs.every((l) => l.level === 'warn' || l.level === 'error'), run.dump());
  await assertNoLeftovers(marker);
});

test('--config with flags and a command: the command line wins, the file fills in the rest', async () => {
  const file = join(dir, 'app.json');
  writeFileSync(file, JSON.stringify(CONFIG));
  const marker = testMarker();
  const run = runSdwrap(
    ['--config', file, '--start-period', '700ms', '--log-level', 'info', '--', 'sh', '-c', 'echo from-cli; exec sleep 30'],
    { marker },
  );
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  assert.deepEqual(run.stdout, ['from-cli'], run.dump());
  // The flag's start period, the file's probe.
  assert.match(unhealthyReason(run.logs), /^not ready by the end of the start period \(700ms\): exec "exit 1"/, run.dump());
  assert.ok(
    run.logs.some((l) => l.msg === 'spawned' && l.level === 'info'),
    run.dump(),
  );
  await assertNoLeftovers(marker);
});
