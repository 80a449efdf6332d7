// Socket activation passed through: the fds systemd gave sdwrap reach the app at the same numbers
// with LISTEN_PID set to the app's own pid, and stay open in sdwrap across an in-place restart. Run with
// systemd-socket-activate, which sets LISTEN_* and execs sdwrap as systemd would.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { runSdwrap, stopAll, REPO_ROOT } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';

const FD3_SERVER = join(REPO_ROOT, 'test/fixtures/fd3-server.mjs');
after(stopAll);

const HAVE_ACTIVATOR = (() => {
  try {
    execFileSync('systemd-socket-activate', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = HAVE_ACTIVATOR ? false : 'systemd-socket-activate is not installed (Debian: systemd)';

/** One request: the answer's text, or the error's code (ECONNREFUSED when nothing listens). */
function ask(port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(text.trim());
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code ?? error.message);
    });
  });
}

test('the listening socket reaches the app as fd 3 with LISTEN_PID = its pid; a restart keeps it, so clients queue', { skip }, async () => {
  const port = await freePort();
  const marker = testMarker();
  const run = runSdwrap(['--no-systemd', '--restart-delay', '1s', '--', process.execPath, FD3_SERVER], {
    marker,
    launcher: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`, '--fdname=web'],
  });
  // systemd-socket-activate execs sdwrap on the first connection: this one.
  await run.waitForStderr(/^Listening on /m);
  const answer = ask(port);
  const [, first] = await run.waitForStdout(/^ready pid=(\d+)/m);
  assert.ok(run.stdout.includes(`listen LISTEN_PID=${first} LISTEN_FDS=1 LISTEN_FDNAMES=web own=true`), run.dump());
  assert.equal(await answer, `hello from ${first}`);

  // Kill the app: during the restart delay nothing accepts, yet the socket stays open in sdwrap, so a
  // connection made now waits in the backlog and the next app answers it.
  process.kill(Number(first), 'SIGKILL');
  await run.waitForLog((l) => String(l.msg).startsWith('restarting in'));
  const during = ask(port);
  const [, second] = await run.waitForStdout(new RegExp(`^ready pid=(?!${first}$)(\\d+)$`, 'm'));
  assert.notEqual(second, first);
  assert.equal(await during, `hello from ${second}`, 'a connection made while the app was down is served after the restart, not refused');
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(10_000), { code: 0, signal: null }, run.dump());
  await assertNoLeftovers(marker);
});

test('LISTEN_PID naming another process: the variables are scrubbed from the app', async () => {
  const run = runSdwrap(['--', process.execPath, FD3_SERVER], {
    env: { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'web' },
  });
  assert.deepEqual(await run.waitForExit(10_000), { code: 3, signal: null }, run.dump());
  assert.ok(run.stdout.includes('listen LISTEN_PID=unset LISTEN_FDS=unset LISTEN_FDNAMES=unset own=false'), run.dump());
});

test('LISTEN_FDS set for sdwrap but the fds are not open: one line naming them, exit 2, nothing spawned', { skip }, async () => {
  // sh closes fds 3 and 4 (3<&- 4<&-) before it execs sdwrap with its own pid as LISTEN_PID.
  const script = `export LISTEN_PID=$$ LISTEN_FDS=2; exec 3<&- 4<&-; exec "$0" "$@"`;
  const run = runSdwrap(['--no-systemd', '--', process.execPath, FD3_SERVER], { launcher: ['sh', '-c', script] });
  assert.deepEqual(await run.waitForExit(10_000), { code: 2, signal: null }, run.dump());
  const lines = run.stderr.filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, run.dump());
  assert.match(lines[0]!, /^sdwrap: LISTEN_FDS=2 but fd 3, 4 are not open in sdwrap/);
  assert.ok(!run.stdout.some((l) => l.startsWith('listen ')), 'the app was not started');
});

test('a garbage LISTEN_FDS for sdwrap: one line, exit 2', async () => {
  const run = runSdwrap(['--no-systemd', '--', process.execPath, FD3_SERVER], {
    launcher: ['sh', '-c', 'export LISTEN_PID=$$ LISTEN_FDS=two; exec "$0" "$@"'],
  });
  assert.deepEqual(await run.waitForExit(10_000), { code: 2, signal: null }, run.dump());
  assert.match(run.stderr.join('\n'), /LISTEN_FDS is not a count of fds \('two'\)/);
});
