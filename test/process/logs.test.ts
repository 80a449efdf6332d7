// Behaviour 9: pino lines on stderr, one per state change, with journald priority prefixes under systemd.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { runSdwrap, stopAll, parseLogLine, REPO_ROOT, SDWRAP_BIN } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';

const SIGNALS = join(REPO_ROOT, 'test/fixtures/signals.mjs');
after(stopAll);

test('every state change is one JSON line with its fields', async () => {
  const run = runSdwrap([
    '--exec',
    'exit 1',
    '--interval',
    '100ms',
    '--failure-threshold',
    '2',
    // Long enough for node to start and the SIGUSR2 to be relayed on a loaded machine, before it ends.
    '--start-period',
    '2s',
    '--stop-timeout',
    '2s',
    '--',
    process.execPath,
    SIGNALS,
  ]);
  await run.waitForStdout(/^ready pid=(\d+)/m);
  run.kill('SIGUSR2');
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  const byMsg = (msg: string) => run.logs.find((l) => l.msg === msg);
  assert.equal(run.logs.length, run.stderr.length, `every stderr line is JSON:\n${run.dump()}`);
  assert.ok(typeof byMsg('spawned')?.childPid === 'number');
  assert.deepEqual(byMsg('signal relayed')?.signal, 'SIGUSR2');
  assert.match(
    String(byMsg('unhealthy: killing the child')?.reason),
    /^not ready by the end of the start period \(2s\): exec "exit 1" \(last: exit 1\); if the app needs longer to start, raise --start-period$/,
  );
  assert.equal(byMsg('child exited')?.code, 0);
  for (const l of run.logs) {
    assert.ok(typeof l.time === 'number' && typeof l.level === 'string' && typeof l.msg === 'string', JSON.stringify(l));
  }
});

test('under the journal (JOURNAL_STREAM names stderr) each line carries its syslog priority', async () => {
  // The shell learns the device and inode of the pipe it hands to sdwrap as stderr, as systemd would.
  const child = spawn(
    'sh',
    ['-c', `JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "${process.execPath}" "${SDWRAP_BIN}" -- sh -c 'exit 3'`],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: undefined },
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const [code] = await once(child, 'close');
  assert.equal(code, 3);
  const lines = stderr.trim().split('\n');
  assert.ok(lines.length >= 3, stderr);
  for (const line of lines) {
    const log = parseLogLine(line)!;
    const expected = { info: '<6>', warn: '<4>', error: '<3>' }[log.level as string];
    assert.equal(log._prefix, expected, line);
  }
  assert.ok(
    lines.some((l) => l.startsWith('<4>{"level":"warn"') && l.includes('"msg":"child exited"')),
    stderr,
  );
});

test('without the journal, lines have no prefix; pretty format is one readable line per event', async () => {
  const run = runSdwrap(['--', 'sh', '-c', 'exit 0'], { env: { JOURNAL_STREAM: '1:1' } });
  await run.waitForExit(10_000);
  assert.ok(
    run.stderr.every((l) => l.startsWith('{')),
    run.dump(),
  );
  const pretty = runSdwrap(['--log-format', 'pretty', '--', 'sh', '-c', 'exit 0']);
  await pretty.waitForExit(10_000);
  assert.ok(
    pretty.stderr.some((l) => /INFO.*spawned/.test(l)),
    pretty.dump(),
  );
  assert.ok(
    pretty.stderr.some((l) => /WARN.*child exited.*"code":0/.test(l)),
    pretty.dump(),
  );
});

test('--log-level filters: warn keeps warnings only, info (the default) no debug lines, debug the probe results', async () => {
  const probeArgs = ['--exec', 'true', '--interval', '100ms', '--', 'sh', '-c', 'sleep 0.5; exit 0'];
  const levels = (run: { logs: Array<Record<string, unknown>> }) => new Set(run.logs.map((l) => l.level));
  const warn = runSdwrap(['--log-level', 'warn', ...probeArgs]);
  assert.deepEqual(await warn.waitForExit(10_000), { code: 0, signal: null }, warn.dump());
  assert.deepEqual([...levels(warn)], ['warn'], warn.dump());
  assert.ok(
    warn.logs.some((l) => l.msg === 'child exited'),
    warn.dump(),
  );
  const info = runSdwrap(probeArgs);
  assert.deepEqual(await info.waitForExit(10_000), { code: 0, signal: null }, info.dump());
  assert.ok(
    info.logs.some((l) => l.msg === 'spawned' && l.level === 'info'),
    info.dump(),
  );
  assert.ok(!levels(info).has('debug'), info.dump());
  const debug = runSdwrap(['--log-level', 'debug', ...probeArgs]);
  assert.deepEqual(await debug.waitForExit(10_000), { code: 0, signal: null }, debug.dump());
  assert.ok(
    debug.logs.some((l) => l.msg === 'probe passed' && l.level === 'debug'),
    debug.dump(),
  );
});

test("without --watch-log the app writes to sdwrap's own stdout and stderr; with it, into pipes sdwrap reads", async () => {
  const marker = testMarker();
  const fd = (pid: number, n: number) => readlinkSync(`/proc/${pid}/fd/${n}`);
  for (const watch of [false, true]) {
    const run = runSdwrap([...(watch ? ['--watch-log', 'never-matches'] : []), '--', process.execPath, SIGNALS], { marker });
    const [, pid] = await run.waitForStdout(/^ready pid=(\d+)/m);
    for (const n of [1, 2]) {
      const [app, own] = [fd(Number(pid), n), fd(run.pid, n)];
      if (watch) assert.notEqual(app, own, `fd ${n} is piped through sdwrap with --watch-log`);
      else assert.equal(app, own, `fd ${n}: the app writes where sdwrap writes`);
    }
    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  }
  await assertNoLeftovers(marker);
});

test("log lines are written before the call returns: a logger's process killed right after logging loses none", async () => {
  // SIGKILL leaves no chance to flush: every line must be on the pipe already. Both formats.
  const logger = pathToFileURL(join(REPO_ROOT, 'src/logger.ts')).href;
  for (const format of ['json', 'pretty']) {
    const script = `import { createLogger } from ${JSON.stringify(logger)};
const log = await createLogger({ level: 'info', format: ${JSON.stringify(format)}, env: {} });
for (let i = 0; i < 2000; i++) log.info({ i }, 'line ' + i);
process.kill(process.pid, 'SIGKILL');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const [code, signal] = await once(child, 'close');
    assert.deepEqual([code, signal], [null, 'SIGKILL'], stderr.slice(-2000));
    const lines = stderr.split('\n').filter((l) => /line \d+/.test(l));
    assert.equal(lines.length, 2000, `${format}: ${lines.length} of 2000 lines written; the last: ${lines.at(-1)}`);
  }
  // sdwrap itself: dying by the app's signal (re-raised) right after its last line.
  const run = runSdwrap(['--', 'sh', '-c', 'kill -TERM $$']);
  assert.deepEqual(await run.waitForExit(10_000), { code: null, signal: 'SIGTERM' }, run.dump());
  assert.deepEqual(run.logs.at(-1), { ...run.logs.at(-1), msg: 'child exited', signal: 'SIGTERM' }, run.dump());
});
