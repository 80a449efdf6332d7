// Fault injection: sdwrap's own stdout and stderr closed (journald restarted, a pipe's reader gone), and an app
// that closes its stdout at once or floods it. sdwrap keeps supervising, says so once, and loses no state.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { failsOnceFlagExists } from '../helpers/flag-probe.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

after(stopAll);
const dir = mkdtempSync(join(tmpdir(), 'sdwrap-faults-output-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An app that writes a line to stdout and to stderr every 20 ms, forever. */
const CHATTY = ['sh', '-c', 'while :; do echo out; echo err >&2; sleep 0.02; done'];

/** sdwrap's options up to the command: the flag probe (helpers/flag-probe.ts), then '--'. */
const SUPERVISED = (flag: string) => [...failsOnceFlagExists(flag), '--'];

test("sdwrap's stdout closed (EPIPE on every line it relays with --watch-log): warned once, the app supervised and killed when unhealthy", async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const flag = join(dir, 'fail-1');
  try {
    const run = runSdwrap(['--watch-log', 'FATAL', ...SUPERVISED(flag), ...CHATTY], {
      notifySocket: listener.address,
      marker,
      env: { WATCHDOG_USEC: '2000000' },
    });
    await run.waitForLog((l) => l.msg === 'ready', 10_000);
    run.proc.stdout!.destroy();
    await run.waitForLog((l) => l.msg === "cannot write the app's output", 5_000);
    const pings = () => listener.messages.filter((m) => m.fields.WATCHDOG === '1').length;
    const before = pings();
    // Hundreds of lines later: still pinging, and the warning was given once.
    await waitFor(() => pings() >= before + 3, { timeout: 8_000, message: () => `no more WATCHDOG=1 after stdout closed\n${run.dump()}` });
    assert.equal(run.logs.filter((l) => l.msg === "cannot write the app's output").length, 1, run.dump());
    writeFileSync(flag, '');
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test("sdwrap's stderr closed (its log lines and the app's fail with EPIPE): it keeps pinging, then kills the unhealthy app", async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const flag = join(dir, 'fail-2');
  try {
    const run = runSdwrap([...SUPERVISED(flag), 'sleep', '30'], {
      notifySocket: listener.address,
      marker,
      env: { WATCHDOG_USEC: '2000000' },
    });
    await run.waitForLog((l) => l.msg === 'ready', 10_000);
    run.proc.stderr!.destroy();
    const pings = () => listener.messages.filter((m) => m.fields.WATCHDOG === '1').length;
    const before = pings();
    await waitFor(() => pings() >= before + 3, { timeout: 8_000, message: () => `no more WATCHDOG=1 after stderr closed\n${run.dump()}` });
    writeFileSync(flag, '');
    // The verdict still reaches systemd, through STATUS=, with no stderr to log it to.
    await waitFor(() => listener.messages.some((m) => /^unhealthy/.test(m.fields.STATUS ?? '')), {
      timeout: 5_000,
      message: () => `no STATUS=unhealthy...\n${listener.messages.map((m) => m.raw).join('\n')}`,
    });
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null });
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('an app that closes its stdout and stderr at once is supervised as any other', async () => {
  const marker = testMarker();
  const flag = join(dir, 'fail-3');
  const run = runSdwrap(['--watch-log', 'FATAL', ...SUPERVISED(flag), 'sh', '-c', 'exec >&- 2>&-; sleep 30'], { marker });
  await run.waitForLog((l) => l.msg === 'ready', 10_000);
  writeFileSync(flag, '');
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  assert.ok(!run.logs.some((l) => l.level === 'fatal' || (l.level === 'error' && l.msg !== 'unhealthy: killing the child')), run.dump());
  await assertNoLeftovers(marker);
});
