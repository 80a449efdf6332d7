// Fault injection: the app forks 500 short-lived children a second (so /proc/<pid> entries vanish during
// sdwrap's scans), or floods its stdout at full speed under --watch-log. sdwrap keeps supervising: its watchdog
// pings keep their rhythm, a symptom is still seen, the whole tree is killed, and its own memory stays bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NotifyListener } from '../helpers/notify-listener.js';
import { assertFreshBuild, parseLogLine, runSdwrap, SDWRAP_BIN, stopAll, type LogLine } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, processesWithEnv, testMarker } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

after(stopAll);
const dir = mkdtempSync(join(tmpdir(), 'sdwrap-faults-app-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const STALE_PROC = fileURLToPath(new URL('../fixtures/preload-proc-stale.cjs', import.meta.url));

/** 500 children a second for at most 20 s (bounded: 10,000 in all), each gone at once. */
const FORKER = ['sh', '-c', 'i=0; while [ $i -lt 10000 ]; do /bin/true & i=$((i+1)); [ $((i % 50)) -eq 0 ] && sleep 0.1; done; wait'];

for (const stale of [false, true]) {
  test(`an app forking 500 children a second${stale ? ', and /proc entries that vanish mid-scan' : ''}: killed whole when unhealthy, nothing left`, async () => {
    const marker = testMarker();
    const flag = join(dir, `fail-fork-${stale}`);
    const run = runSdwrap(
      [
        '--exec',
        `test ! -e ${flag}`,
        '--interval',
        '100ms',
        '--timeout',
        '500ms',
        '--failure-threshold',
        '2',
        '--stop-timeout',
        '1s',
        '--',
        ...FORKER,
      ],
      { marker, env: stale ? { NODE_OPTIONS: `--require ${STALE_PROC}` } : {} },
    );
    await run.waitForLog((l) => l.msg === 'ready', 10_000);
    // Once the storm is on (children come and go), fail the probe: sdwrap must find and end the tree as it churns.
    const seen = new Set<number>();
    await waitFor(
      () => {
        for (const p of processesWithEnv(marker.key, marker.value)) seen.add(p.pid);
        return seen.size >= 50;
      },
      { timeout: 10_000, interval: 10, message: () => `only ${seen.size} processes of the app seen` },
    );
    writeFileSync(flag, '');
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    assert.ok(!run.logs.some((l) => l.level === 'fatal'), run.dump());
    await assertNoLeftovers(marker);
  });
}

test('--watch-log and an app flooding stdout at full speed: pings keep their rhythm, a symptom is still seen, memory bounded', async (t) => {
  assertFreshBuild();
  const listener = await NotifyListener.start();
  const marker = testMarker();
  // 3 s of `yes` (hundreds of MB a second), then the symptom three times (more than --watch-log-max 2), then quiet.
  const app = 'timeout 3 yes "a line of output that is not a symptom"; for i in 1 2 3; do echo FATAL: out of memory; done; sleep 30';
  // Not runSdwrap: it keeps every stdout line, and this is gigabytes. Here stdout is counted and dropped.
  const proc = spawn(
    process.execPath,
    [SDWRAP_BIN, '--watch-log', 'FATAL', '--watch-log-max', '2', '--stop-timeout', '500ms', '--', 'sh', '-c', app],
    {
      env: { ...process.env, ...marker.env, NOTIFY_SOCKET: listener.address, WATCHDOG_USEC: '1000000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let bytes = 0;
  proc.stdout!.on('data', (chunk: Buffer) => (bytes += chunk.length));
  const logs: LogLine[] = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    const log = parseLogLine(line);
    if (log) logs.push(log);
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let peakKiB = 0;
  const sampler = setInterval(() => {
    try {
      peakKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? peakKiB);
    } catch {
      // exited
    }
  }, 100);
  try {
    const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000))]);
    const dump = logs.map((l) => JSON.stringify(l)).join('\n');
    assert.equal(code, 69, dump);
    assert.ok(bytes > 50 * 1024 * 1024, `only ${bytes} bytes relayed`);
    const unhealthy = logs.find((l) => l.msg === 'unhealthy: killing the child');
    assert.match(String(unhealthy?.reason), /FATAL/, dump);
    // WatchdogSec=1s: a ping every 500 ms; through the flood no gap may come near the period.
    const pings = listener.messages.filter((m) => m.fields.WATCHDOG === '1').map((m) => m.receivedAt);
    assert.ok(pings.length >= 5, `${pings.length} pings`);
    const gaps = pings.slice(1).map((t, i) => t - pings[i]!);
    assert.ok(Math.max(...gaps) < 900, `a ${Math.round(Math.max(...gaps))} ms gap between pings during the flood`);
    assert.ok(peakKiB > 0 && peakKiB < 200 * 1024, `sdwrap peaked at ${peakKiB} KiB`);
    t.diagnostic(
      `relayed ${Math.round(bytes / 2 ** 20)} MiB; longest gap between pings ${Math.round(Math.max(...gaps))} ms; peak RSS ${Math.round(peakKiB / 1024)} MiB`,
    );
    await assertNoLeftovers(marker);
  } finally {
    clearInterval(sampler);
    proc.kill('SIGKILL');
    await listener.close();
  }
});
