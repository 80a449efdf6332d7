// Behaviour 9: pino lines on stderr, one per state change, with journald priority prefixes under systemd.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import { runSdwrap, stopAll, parseLogLine, REPO_ROOT, SDWRAP_BIN } from '../helpers/run-sdwrap.js';

const SIGNALS = join(REPO_ROOT, 'test/fixtures/signals.mjs');
after(stopAll);

test('9. every state change is one JSON line with its fields', async () => {
  const run = runSdwrap(['--exec', 'exit 1', '--interval', '100ms', '--failure-threshold', '2', '--start-period', '300ms', '--stop-timeout', '2s', '--', process.execPath, SIGNALS]);
  await run.waitForStdout(/^ready pid=(\d+)/m);
  run.kill('SIGUSR2');
  assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
  const byMsg = (msg: string) => run.logs.find((l) => l.msg === msg);
  assert.equal(run.logs.length, run.stderr.length, `every stderr line is JSON:\n${run.dump()}`);
  assert.ok(typeof byMsg('spawned')?.childPid === 'number');
  assert.deepEqual(byMsg('signal relayed')?.signal, 'SIGUSR2');
  assert.match(String(byMsg('unhealthy: killing the child')?.reason), /^not ready by the end of the start period \(300ms\): exec "exit 1" \(last: exit 1\); if the app needs longer to start, raise --start-period$/);
  assert.equal(byMsg('child exited')?.code, 0);
  for (const l of run.logs) {
    assert.ok(typeof l.time === 'number' && typeof l.level === 'string' && typeof l.msg === 'string', JSON.stringify(l));
  }
});

test('9. under the journal (JOURNAL_STREAM names stderr) each line carries its syslog priority', async () => {
  // The shell learns the device and inode of the pipe it hands to sdwrap as stderr, as systemd would.
  const child = spawn('sh', ['-c', `JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "${process.execPath}" "${SDWRAP_BIN}" -- sh -c 'exit 3'`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: undefined },
  });
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
  assert.ok(lines.some((l) => l.startsWith('<4>{"level":"warn"') && l.includes('"msg":"child exited"')), stderr);
});

test('9. without the journal, lines have no prefix; pretty format is one readable line per event', async () => {
  const run = runSdwrap(['--', 'sh', '-c', 'exit 0'], { env: { JOURNAL_STREAM: '1:1' } });
  await run.waitForExit(10_000);
  assert.ok(run.stderr.every((l) => l.startsWith('{')), run.dump());
  const pretty = runSdwrap(['--log-format', 'pretty', '--', 'sh', '-c', 'exit 0']);
  await pretty.waitForExit(10_000);
  assert.ok(pretty.stderr.some((l) => /INFO.*spawned/.test(l)), pretty.dump());
  assert.ok(pretty.stderr.some((l) => /WARN.*child exited.*"code":0/.test(l)), pretty.dump());
});
