// Behaviours 1, 6 and 7: how the child is started, how its end becomes sdwrap's end, and commands that can't run.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, readProc, testMarker } from '../helpers/processes.js';

const SIGNALS_FIXTURE = join(REPO_ROOT, 'test/fixtures/signals.mjs');
const PRELOAD_FAULT = join(REPO_ROOT, 'test/fixtures/preload-fault.cjs');
after(stopAll);

test('the child inherits stdio, cwd and env less NOTIFY_SOCKET/WATCHDOG_*, in a session and process group of its own', async () => {
  const listener = await NotifyListener.start();
  const marker = testMarker();
  const cwd = mkdtempSync(join(tmpdir(), 'sdwrap-cwd-'));
  try {
    const run = runSdwrap(['--', process.execPath, SIGNALS_FIXTURE], {
      notifySocket: listener.address,
      marker,
      cwd,
      // All three set for sdwrap (the harness strips them from the test runner's own environment).
      env: { WATCHDOG_USEC: '60000000', WATCHDOG_PID: '1', SDWRAP_TEST_KEEP: 'kept' },
    });
    const [, pid] = await run.waitForStdout(/^ready pid=(\d+)/m);
    assert.ok(run.stdout.includes('env NOTIFY_SOCKET=unset'), run.dump());
    assert.ok(run.stdout.includes('env WATCHDOG_USEC=unset'), run.dump());
    assert.ok(run.stdout.includes('env WATCHDOG_PID=unset'), run.dump());
    assert.ok(run.stdout.includes(`cwd ${cwd}`), run.dump());
    assert.ok(run.stdout.includes('pgid-check own-group'), run.dump());
    const proc = readProc(Number(pid))!;
    assert.equal(proc.ppid, run.pid, "the child is sdwrap's own child");
    assert.equal(proc.pgid, Number(pid));
    assert.notEqual(readProc(run.pid)!.pgid, proc.pgid, "not in sdwrap's group");
    assert.equal(proc.sid, Number(pid), 'the child leads a session of its own');
    assert.notEqual(readProc(run.pid)!.sid, proc.sid, "not in sdwrap's session");
    assert.ok(processEnvHas(Number(pid), 'SDWRAP_TEST_KEEP=kept'), 'other variables pass through');
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null });
    await assertNoLeftovers(marker);
  } finally {
    await listener.close();
    rmSync(cwd, { recursive: true, force: true });
  }
});

function processEnvHas(pid: number, entry: string): boolean {
  return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry);
}

test('exit codes pass through unchanged, 0 to 255', async () => {
  for (const code of [0, 1, 2, 3, 42, 69, 126, 127, 128, 200, 255]) {
    const run = runSdwrap(['--', 'sh', '-c', `exit ${code}`]);
    assert.deepEqual(await run.waitForExit(10_000), { code, signal: null }, run.dump());
  }
});

test('a child killed by a signal: sdwrap dies by the same signal; core-dumping signals become 128+N', async () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL', 'SIGUSR2'] as const) {
    const run = runSdwrap(['--', 'sh', '-c', `kill -${signal.slice(3)} $$`]);
    assert.deepEqual(await run.waitForExit(10_000), { code: null, signal }, `${signal}\n${run.dump()}`);
  }
  // SIGUSR1 and SIGPIPE: Node would not die by them (the inspector, an ignored signal), so 128+N too.
  for (const [signal, code] of [
    ['SEGV', 139],
    ['ABRT', 134],
    ['QUIT', 131],
    ['USR1', 138],
    ['PIPE', 141],
  ] as const) {
    const run = runSdwrap(['--', 'sh', '-c', `ulimit -c 0; kill -${signal} $$`]);
    assert.deepEqual(await run.waitForExit(10_000), { code, signal: null }, `${signal}\n${run.dump()}`);
  }
});

test('a command that cannot run: 127 or 126, one line, nothing sent to systemd', async () => {
  const listener = await NotifyListener.start();
  const dir = mkdtempSync(join(tmpdir(), 'sdwrap-noexec-'));
  try {
    const notExecutable = join(dir, 'script.sh');
    writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n');
    chmodSync(notExecutable, 0o644);
    const cases: Array<[string[], number, RegExp]> = [
      [['/nonexistent/server'], 127, /^sdwrap: \/nonexistent\/server: command not found$/],
      [['no-such-command-sdwrap'], 127, /command not found/],
      [[notExecutable], 126, /cannot execute/],
      [[dir], 126, /cannot execute/],
    ];
    for (const [argv, code, message] of cases) {
      const run = runSdwrap(['--http', 'http://127.0.0.1:9/', '--', ...argv], { notifySocket: listener.address });
      assert.deepEqual(await run.waitForExit(10_000), { code, signal: null }, run.dump());
      assert.equal(run.stderr.length, 1, run.dump());
      assert.match(run.stderr[0]!, message);
    }
    assert.deepEqual(listener.messages, [], 'nothing was sent to systemd');
  } finally {
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad flag or value: exit 2 with one line naming it, no stack trace', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus', '--', 'true'], /^sdwrap: unknown option '--bogus' \(see 'sdwrap --help'\)$/],
    [['--interval', 'soon', '--', 'true'], /^sdwrap: --interval expects a time span .* got 'soon' \(see 'sdwrap --help'\)$/],
    [['--failure-threshold', '0', '--', 'true'], /^sdwrap: --failure-threshold expects a whole number/],
    [['--tcp', 'nohost', '--', 'true'], /^sdwrap: --tcp expects host:port/],
    [['--http', 'x', '--', 'true'], /^sdwrap: --http expects an http:\/\/ or https:\/\/ URL, got 'x' \(see 'sdwrap --help'\)$/],
    [
      ['--config', '/nonexistent/sdwrap.json', '--', 'true'],
      /^sdwrap: --config \/nonexistent\/sdwrap.json: cannot read it \(ENOENT\) \(see 'sdwrap --help'\)$/,
    ],
    [['--probe', 'liveness:http', '--', 'true'], /^sdwrap: --probe expects ROLE:KIND:TARGET/],
    [['--log-level', 'loud', '--', 'true'], /--log-level/],
    [['--timeout'], /argument missing|--timeout/],
    [[], /missing the command/],
  ];
  for (const [argv, message] of cases) {
    const run = runSdwrap(argv);
    assert.deepEqual(await run.waitForExit(10_000), { code: 2, signal: null }, run.dump());
    assert.equal(run.stderr.length, 1, run.dump());
    assert.match(run.stderr[0]!, message);
  }
});

test('--help and --version exit 0', async () => {
  const help = runSdwrap(['--help']);
  assert.deepEqual(await help.waitForExit(10_000), { code: 0, signal: null });
  assert.ok(
    help.stdout.some((l) => l.includes('--failure-threshold')),
    help.dump(),
  );
  const version = runSdwrap(['--version']);
  assert.deepEqual(await version.waitForExit(10_000), { code: 0, signal: null });
  assert.match(version.stdout[0]!, /^\d+\.\d+\.\d+$/);
});

test('options after the command belong to the command', async () => {
  const run = runSdwrap(['sh', '-c', 'echo "$0 $1"', 'first', '--http']);
  assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  assert.ok(run.stdout.includes('first --http'), run.dump());
});

test("an internal error (a bug) exits 70, and the app's tree does not outlive sdwrap", async () => {
  // Failing before the app runs: one line saying so.
  const early = runSdwrap(['--', 'sdwrap-test-fault'], {
    env: { NODE_OPTIONS: `--require "${PRELOAD_FAULT}"`, SDWRAP_TEST_FAULT: 'spawn' },
  });
  assert.deepEqual(await early.waitForExit(10_000), { code: 70, signal: null }, early.dump());
  assert.match(early.stderr.find((l) => l.startsWith('sdwrap:')) ?? '', /^sdwrap: internal error: .*injected fault/, early.dump());
  // Failing while the app runs (in a session of its own, so nothing else would end it): killed with sdwrap.
  const marker = testMarker();
  const late = runSdwrap(['--', 'sh', '-c', 'sleep 100 & exec sleep 101'], {
    marker,
    env: { NODE_OPTIONS: `--require "${PRELOAD_FAULT}"`, SDWRAP_TEST_FAULT: 'uncaught' },
  });
  assert.deepEqual(await late.waitForExit(10_000), { code: 70, signal: null }, late.dump());
  const fatal = late.logs.find((l) => l.level === 'fatal');
  assert.equal(fatal?.msg, 'internal error: killing the app and exiting', late.dump());
  await assertNoLeftovers(marker);
});
