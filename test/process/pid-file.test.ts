// --pid-file: a daemon that forks and whose command exits 0 is adopted through its pid file; the
// bad pid files a user meets; and, without the flag, the leftovers sdwrap ends are named with a hint.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, isAlive, readProc, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
const DAEMONIZE = join(REPO_ROOT, 'test/fixtures/daemonize.mjs');
const REEXEC = join(REPO_ROOT, 'test/fixtures/reexec-daemon.mjs');
const dir = mkdtempSync(join(tmpdir(), 'sdwrap-pidfile-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
const pidPath = () => join(dir, `d${++n}.pid`);

/** The command line of a daemon: the launcher forks server.mjs into a session of its own and exits 0. */
const daemon = (port: number, pidFile: string, ...extra: string[]) => [
  process.execPath,
  DAEMONIZE,
  ...(extra[0] === '--same-session' ? [extra.shift()!] : []),
  '--',
  process.execPath,
  SERVER,
  '--port',
  String(port),
  '--pid-file',
  pidFile,
  ...extra,
];

test('a daemon that forks: adopted once its pid file names it; READY after the probe; vanishing exits 75', async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  const pidFile = pidPath();
  try {
    const run = runSdwrap(
      [
        '--pid-file',
        pidFile,
        '--http',
        `http://127.0.0.1:${port}/healthz`,
        '--interval',
        '200ms',
        '--start-period',
        '10s',
        '--',
        ...daemon(port, pidFile, '--ready-after', '500'),
      ],
      { notifySocket: listener.address, marker },
    );
    const adopted = await run.waitForLog((l) => l.msg === 'adopted the daemon named by the pid file', 15_000);
    const pid = Number(adopted.adoptedPid);
    assert.notEqual(pid, run.pid);
    assert.equal(readProc(pid)?.sid, pid, 'the daemon leads a session of its own: not in the launcher tree');
    await listener.waitFor((m) => m.fields.READY === '1', 15_000, 'READY=1');
    assert.ok(
      !run.logs.some((l) => String(l.msg).startsWith('ending') && String(l.msg).includes('leftover')),
      'the daemon is not a leftover',
    );
    // The daemon dies by itself: sdwrap notices within its poll and exits 75, which Restart=on-failure restarts.
    process.kill(pid, 'SIGKILL');
    assert.deepEqual(await run.waitForExit(10_000), { code: 75, signal: null }, run.dump());
    const gone = run.logs.find((l) => l.msg === 'the adopted daemon vanished')!;
    assert.ok(gone, run.dump());
    assert.match(
      listener.messages.map((m) => m.fields.STATUS ?? '').join('\n'),
      /the adopted daemon \(pid \d+\) vanished/,
      listener.dump(),
    );
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});

test('a stop is relayed to the daemon and ends clean, leaving nothing', async () => {
  const marker = testMarker();
  const port = await freePort();
  const pidFile = pidPath();
  const run = runSdwrap(
    ['--pid-file', pidFile, '--http', `http://127.0.0.1:${port}/healthz`, '--start-period', '10s', '--', ...daemon(port, pidFile)],
    { marker },
  );
  const adopted = await run.waitForLog((l) => l.msg === 'adopted the daemon named by the pid file', 15_000);
  await run.waitForLog((l) => l.msg === 'ready', 15_000);
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.dump());
  assert.equal(isAlive(Number(adopted.adoptedPid)), false);
  await assertNoLeftovers(marker);
});

test('a hung daemon is killed as unhealthy (69), its whole tree', async () => {
  const marker = testMarker();
  const port = await freePort();
  const pidFile = pidPath();
  const run = runSdwrap(
    [
      '--pid-file',
      pidFile,
      '--http',
      `http://127.0.0.1:${port}/healthz`,
      '--interval',
      '200ms',
      '--timeout',
      '300ms',
      '--failure-threshold',
      '2',
      '--start-period',
      '10s',
      '--stop-timeout',
      '1s',
      '--',
      ...daemon(port, pidFile, '--hang-after', '1500'),
    ],
    { marker },
  );
  await run.waitForLog((l) => l.msg === 'ready', 15_000);
  assert.deepEqual(await run.waitForExit(20_000), { code: 69, signal: null }, run.dump());
  assert.ok(run.logs.some((l) => l.msg === 'unhealthy: killing the child'));
  await assertNoLeftovers(marker);
});

test('the command fails before writing the pid file: its status is the failure', async () => {
  const run = runSdwrap(['--pid-file', pidPath(), '--start-period', '5s', '--', 'sh', '-c', 'echo cannot bind >&2; exit 3']);
  assert.deepEqual(await run.waitForExit(10_000), { code: 3, signal: null }, run.dump());
});

/** A pid that was in use a moment ago and is not now. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

test('bad pid files: never written, empty, garbage, a dead pid, PID 1: the reason, non-zero, nothing left', async () => {
  const dead = await deadPid();
  const cases: Array<[string, string, RegExp]> = [
    ['never written', 'true', /was never written after 700ms/],
    ['empty', ': > "$0"', /is empty after 700ms/],
    ['garbage', 'echo "not a pid" > "$0"', /does not hold a pid \(got 'not a pid'\) after 700ms/],
    ['a dead pid', `echo ${dead} > "$0"`, new RegExp(`names pid ${dead}, which is not running after 700ms`)],
    ['PID 1', 'echo 1 > "$0"', /names PID 1 \(1\)/],
  ];
  for (const [what, script, reason] of cases) {
    const marker = testMarker();
    const file = pidPath();
    const run = runSdwrap(['--pid-file', file, '--timeout', '700ms', '--', 'sh', '-c', script, file], { marker });
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, `${what}\n${run.dump()}`);
    const line = run.logs.find((l) => l.msg === 'unhealthy: killing the child');
    assert.ok(line, `${what}\n${run.dump()}`);
    assert.match(String(line.reason), reason, what);
    await assertNoLeftovers(marker);
  }
});

test('without --pid-file: leftovers are named when ended, and a quick exit 0 that leaves processes names --pid-file', async () => {
  const marker = testMarker();
  const port = await freePort();
  // Backgrounded as a start script's `nohup server &` does: still in the command's session, so sdwrap finds it.
  const run = runSdwrap(['--', ...daemon(port, pidPath(), '--same-session')], { marker });
  assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.dump());
  const ending = run.logs.find((l) => l.msg === 'ending 1 leftover process of the app');
  assert.ok(ending, run.dump());
  assert.match((ending.processes as string[])[0]!, /^\d+ .*server\.mjs --port/);
  assert.ok(
    run.logs.some((l) => l.level === 'warn' && /give --pid-file/.test(String(l.msg))),
    run.dump(),
  );
  await assertNoLeftovers(marker);
});

test('--no-systemd: a vanished daemon is restarted and adopted anew', async () => {
  const marker = testMarker();
  const port = await freePort();
  const pidFile = pidPath();
  const run = runSdwrap(
    [
      '--no-systemd',
      '--restart-delay',
      '100ms',
      '--pid-file',
      pidFile,
      '--tcp',
      `127.0.0.1:${port}`,
      '--start-period',
      '10s',
      '--',
      ...daemon(port, pidFile),
    ],
    { marker },
  );
  const first = await run.waitForLog((l) => l.msg === 'adopted the daemon named by the pid file', 15_000);
  await run.waitForLog((l) => l.msg === 'ready', 15_000);
  process.kill(Number(first.adoptedPid), 'SIGKILL');
  const second = await run.waitForLog(
    (l) => l.msg === 'adopted the daemon named by the pid file' && l.adoptedPid !== first.adoptedPid,
    15_000,
  );
  await waitFor(() => run.logs.filter((l) => l.msg === 'ready').length >= 2, { timeout: 15_000, message: () => run.dump() });
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.dump());
  assert.equal(isAlive(Number(second.adoptedPid)), false);
  await assertNoLeftovers(marker);
});

test('a reload of a daemon that re-execs: the pid file is read again and the new process followed; the stop reaches it', async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const port = await freePort();
  const pidFile = pidPath();
  try {
    const run = runSdwrap(
      [
        '--pid-file',
        pidFile,
        '--http',
        `http://127.0.0.1:${port}/`,
        '--interval',
        '200ms',
        // The copy takes a moment to listen: a reload may see a refused connection or two.
        '--failure-threshold',
        '10',
        '--start-period',
        '10s',
        '--',
        process.execPath,
        DAEMONIZE,
        '--',
        process.execPath,
        REEXEC,
        '--port',
        String(port),
        '--pid-file',
        pidFile,
      ],
      { notifySocket: listener.address, marker },
    );
    const first = await run.waitForLog((l) => l.msg === 'adopted the daemon named by the pid file', 15_000);
    await listener.waitFor((m) => m.fields.READY === '1', 15_000, 'READY=1');
    run.kill('SIGHUP');
    const next = await run.waitForLog((l) => l.msg === 'the pid file names another process: following it', 15_000);
    assert.equal(next.previousPid, first.adoptedPid);
    assert.notEqual(next.adoptedPid, first.adoptedPid);
    assert.ok(!run.logs.some((l) => l.msg === 'the adopted daemon vanished'), run.dump());
    await waitFor(() => listener.all('READY').length >= 2, { timeout: 15_000, message: () => listener.dump() });
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.dump());
    assert.equal(isAlive(Number(next.adoptedPid)), false, 'the stop reached the new process');
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
  }
});
