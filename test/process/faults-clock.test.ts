// Fault injection: the wall clock jumps forward and back (CLOCK_REALTIME stepped by NTP or by hand) while sdwrap
// runs. No timeout, backoff or restart-budget figure may move: sdwrap reads only monotonic time. A preload makes
// Date jump inside sdwrap; a source check keeps the wall clock out of src/ (outside what is printed for people).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseLogLine, REPO_ROOT, runSdwrap, stopAll, type LogLine, type SdwrapRun } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';

after(stopAll);

const PRELOAD = fileURLToPath(new URL('../fixtures/preload-clock-jump.cjs', import.meta.url));
const JUMPING = { NODE_OPTIONS: `--require ${PRELOAD}` };

/** Each of sdwrap's log lines with the test's own monotonic time of arrival. */
function timed(run: SdwrapRun): Array<{ at: number; log: LogLine }> {
  const lines: Array<{ at: number; log: LogLine }> = [];
  createInterface({ input: run.proc.stderr! }).on('line', (line) => {
    const log = parseLogLine(line);
    if (log) lines.push({ at: performance.now(), log });
  });
  return lines;
}

test('restart backoff and the restart budget hold while the wall clock jumps by hours and days', async () => {
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--no-systemd',
      '--restart-delay',
      '400ms',
      '--restart-max-delay',
      '2s',
      '--max-restarts',
      '3',
      '--restart-window',
      '10min',
      '--',
      'sh',
      '-c',
      'exit 3',
    ],
    { marker, env: JUMPING },
  );
  const lines = timed(run);
  await run.waitForExit(20_000);
  // The preload worked: sdwrap's own log timestamps jumped by an hour or more.
  const stamps = run.logs.map((l) => Number(l.time));
  assert.ok(Math.max(...stamps) - Math.min(...stamps) >= 3_600_000 - 5_000, `the wall clock did not jump: ${stamps.join(' ')}`);
  // The budget: exactly 3 restarts within the 10 min window, then it gives up (a day's jump did not empty it).
  assert.equal(run.logs.filter((l) => l.msg === 'spawned').length, 4, run.dump());
  assert.ok(
    run.logs.some((l) => /^gave up: 3 restarts within 10min/.test(String(l.msg))),
    run.dump(),
  );
  // Each wait lasted what sdwrap said it would, measured here on a clock nobody stepped.
  const waits = lines.filter((l) => /^restarting in /.test(String(l.log.msg)));
  assert.equal(waits.length, 3, run.dump());
  for (const wait of waits) {
    const next = lines.find((l) => l.at > wait.at && l.log.msg === 'spawned');
    assert.ok(next, run.dump());
    const took = next.at - wait.at;
    const said = Number(wait.log.delayMs);
    assert.ok(said >= 300 && said <= 2000, `delay ${said}`);
    assert.ok(took >= said - 50 && took <= said + 700, `said ${said} ms, waited ${Math.round(took)} ms`);
  }
  await assertNoLeftovers(marker);
});

test('probe timeouts and the liveness verdict keep their figures while the wall clock jumps', async () => {
  const marker = testMarker();
  let answering = true;
  const server = createServer((socket) => {
    socket.on('error', () => {});
    if (answering) socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    else socket.resume(); // never answers
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  try {
    const run = runSdwrap(
      [
        '--http',
        `http://127.0.0.1:${port}/`,
        '--interval',
        '200ms',
        '--timeout',
        '400ms',
        '--failure-threshold',
        '3',
        '--stop-timeout',
        '500ms',
        '--',
        'sleep',
        '60',
      ],
      { marker, env: JUMPING },
    );
    const lines = timed(run);
    await run.waitForLog((l) => l.msg === 'ready', 10_000);
    answering = false;
    const since = performance.now();
    await run.waitForLog((l) => l.msg === 'unhealthy: killing the child', 10_000);
    const verdictAfter = lines.find((l) => l.log.msg === 'unhealthy: killing the child')!.at - since;
    // Two 'probe failed' lines, and the third failure is the verdict's.
    const failures = run.logs.filter((l) => l.msg === 'probe failed');
    assert.equal(failures.length, 2, run.dump());
    assert.match(String(run.logs.find((l) => l.msg === 'unhealthy: killing the child')!.reason), /3 consecutive probe failures/);
    for (const f of failures) {
      assert.match(String(f.detail), /timed out after 400ms/);
      assert.ok(Number(f.latencyMs) >= 390 && Number(f.latencyMs) <= 900, `latency ${f.latencyMs}`);
    }
    // 3 x (up to 200 ms of interval + 400 ms of timeout), plus scheduling: well under 3 s; a jump would be hours.
    assert.ok(verdictAfter <= 3_000, `verdict after ${Math.round(verdictAfter)} ms`);
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    await assertNoLeftovers(marker);
  } finally {
    server.close();
  }
});

test('src/ reads the wall clock only to print it: timing goes through monotonic clocks', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );
  const uses: string[] = [];
  for (const file of files(join(REPO_ROOT, 'src'))) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/\bDate\.now\(|\bnew Date\(\s*\)|\bDate\(\)/.test(line)) uses.push(`${file.slice(REPO_ROOT.length)}:${i + 1}: ${line.trim()}`);
      });
  }
  // sdwrap probe's table prints the time of each attempt, and --metrics exports the child's start and the last
  // verdict as Unix times (Prometheus wants them so): for people, never for a decision.
  const printed = uses.filter((u) => !u.startsWith('src/commands/probe.ts:') && !u.startsWith('src/metrics.ts:'));
  assert.deepEqual(printed, [], `wall-clock reads in src/:\n${printed.join('\n')}`);
});
