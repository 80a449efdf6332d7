// --pid-file's pieces against real files and real processes: reading and checking the pid, waiting for the
// file with a deadline, and noticing the end of a process sdwrap did not spawn.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processStartTime, readPidFile, snapshotPidFile, waitForPidFile, watchProcess, type PidFileError } from '../../src/pid-file.js';

const dir = mkdtempSync(join(tmpdir(), 'sdwrap-pidfile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `app-${++n}.pid`);
const OWN = process.pid;

function sleeper(): { pid: number; exited: Promise<void> } {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  after(() => child.kill('SIGKILL'));
  return { pid: child.pid!, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
}

/** A pid that was just in use and is not any more. */
async function deadPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

test('a pid file naming a live process: its pid and start time', () => {
  const s = sleeper();
  const path = fresh();
  writeFileSync(path, `${s.pid}\n`);
  const reading = readPidFile(path, { ownPid: OWN });
  assert.deepEqual(reading, { ok: true, identity: { pid: s.pid, startTime: processStartTime(s.pid) } });
});

test('bad contents: each a stable code, and only sdwrap itself or PID 1 is final at once', async () => {
  const cases: Array<[string, string, boolean]> = [
    ['', 'SDWRAP_PIDFILE_EMPTY', false],
    ['  \n', 'SDWRAP_PIDFILE_EMPTY', false],
    ['abc\n', 'SDWRAP_PIDFILE_GARBAGE', false],
    ['12ab', 'SDWRAP_PIDFILE_GARBAGE', false],
    ['-5', 'SDWRAP_PIDFILE_GARBAGE', false],
    ['0', 'SDWRAP_PIDFILE_GARBAGE', false],
    ['99999999999', 'SDWRAP_PIDFILE_GARBAGE', false],
    [String(await deadPid()), 'SDWRAP_PIDFILE_DEAD', false],
    ['1', 'SDWRAP_PIDFILE_FORBIDDEN', true],
    [String(OWN), 'SDWRAP_PIDFILE_FORBIDDEN', true],
  ];
  for (const [content, code, permanent] of cases) {
    const path = fresh();
    writeFileSync(path, content);
    const reading = readPidFile(path, { ownPid: OWN });
    assert.equal(reading.ok, false, content);
    if (!reading.ok) assert.deepEqual([reading.code, reading.permanent], [code, permanent], content);
  }
  const missing = readPidFile(fresh(), { ownPid: OWN });
  assert.ok(!missing.ok && missing.code === 'SDWRAP_PIDFILE_TIMEOUT' && /never written/.test(missing.problem));
});

test('a leftover pid file from an earlier run is not taken for the new daemon until rewritten', () => {
  const s = sleeper();
  const path = fresh();
  writeFileSync(path, `${s.pid}\n`);
  const snapshot = snapshotPidFile(path);
  const before = readPidFile(path, { ownPid: OWN, snapshot });
  assert.ok(!before.ok && /not rewritten/.test(before.problem));
  writeFileSync(path, `${s.pid}\n\n`);
  assert.equal(readPidFile(path, { ownPid: OWN, snapshot }).ok, true);
});

test('waiting: resolves once the file appears; times out naming the last problem; PID 1 fails at once', async () => {
  const s = sleeper();
  const path = fresh();
  setTimeout(() => writeFileSync(path, ''), 50);
  setTimeout(() => writeFileSync(path, String(s.pid)), 150);
  const identity = await waitForPidFile(path, { ownPid: OWN, timeoutMs: 5000, pollMs: 10 });
  assert.equal(identity?.pid, s.pid);

  const never = fresh();
  const started = Date.now();
  await assert.rejects(waitForPidFile(never, { ownPid: OWN, timeoutMs: 200, pollMs: 20 }), (error: PidFileError) => {
    assert.equal(error.code, 'SDWRAP_PIDFILE_TIMEOUT');
    assert.equal(error.exitCode, 69, 'an unhealthy start');
    assert.equal(error.message, `--pid-file ${never} was never written after 200ms`);
    return true;
  });
  assert.ok(Date.now() - started >= 190, 'waited the whole time');

  const garbage = fresh();
  writeFileSync(garbage, 'not a pid');
  await assert.rejects(waitForPidFile(garbage, { ownPid: OWN, timeoutMs: 100, pollMs: 20 }), { code: 'SDWRAP_PIDFILE_GARBAGE' });

  const init = fresh();
  writeFileSync(init, '1');
  const t0 = Date.now();
  await assert.rejects(waitForPidFile(init, { ownPid: OWN, timeoutMs: 10_000, pollMs: 20 }), {
    code: 'SDWRAP_PIDFILE_FORBIDDEN',
    message: `--pid-file ${init} names PID 1 (1)`,
  });
  assert.ok(Date.now() - t0 < 1000, 'no waiting for a pid that can never be right');
});

test('waiting ends early, with nothing, when aborted', async () => {
  const controller = new AbortController();
  const wait = waitForPidFile(fresh(), { ownPid: OWN, timeoutMs: 60_000, pollMs: 20, signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  assert.equal(await wait, undefined);
});

test('watching a non-child: its end is noticed within a poll; a reused pid counts as the end', async () => {
  const s = sleeper();
  const identity = { pid: s.pid, startTime: processStartTime(s.pid)! };
  const watch = watchProcess(identity, { pollMs: 20 });
  let gone = false;
  void watch.gone.then(() => (gone = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(gone, false, 'alive: not gone');
  process.kill(s.pid, 'SIGKILL');
  await s.exited;
  const t0 = Date.now();
  await watch.gone;
  assert.ok(Date.now() - t0 < 1000);

  const other = sleeper();
  const reused = watchProcess({ pid: other.pid, startTime: '1' }, { pollMs: 20 });
  await reused.gone; // same pid, another start time: not the process adopted
  watch.stop();
});
