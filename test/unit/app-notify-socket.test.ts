// The app's notify socket, for real: node-unix-socket bound in a private 0700 directory, datagrams sent by
// python3 and by systemd-notify (whose BARRIER=1 handshake must not block), and everything gone after close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { openAppNotifySocket, runtimeBase } from '../../src/app-notify-socket.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

/** Sends each payload (latin1 text) as one datagram from python3. */
async function send(address: string, payloads: string[]): Promise<void> {
  const script =
    'import socket,sys,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\nfor p in json.loads(sys.argv[2]): s.sendto(p.encode("latin1"), sys.argv[1])';
  await run('python3', ['-c', script, address, JSON.stringify(payloads)]);
}

test('the socket lives in a private directory under $RUNTIME_DIRECTORY, hears every datagram whole, and is removed at close', async () => {
  const runtime = mkdtempSync(join(tmpdir(), 'sdwrap-rt-'));
  const received: Buffer[] = [];
  const socket = openAppNotifySocket(
    { RUNTIME_DIRECTORY: runtime },
    (d) => received.push(d),
    (e) => assert.fail(e),
  );
  try {
    assert.equal(dirname(dirname(socket.address)), runtime);
    assert.equal(statSync(dirname(socket.address)).mode & 0o777, 0o700, 'only sdwrap and its app (same user) reach it');
    assert.ok(statSync(socket.address).isSocket());
    await send(socket.address, ['READY=1\nSTATUS=up', 'x'.repeat(10_000), 'garbage\u0000']);
    await waitFor(() => received.length === 3, { timeout: 5000 });
    assert.equal(received[0]!.toString(), 'READY=1\nSTATUS=up');
    assert.equal(received[1]!.length, 10_000, 'an oversized datagram arrives whole, for parseDatagram to refuse');
    const t0 = Date.now();
    await run('systemd-notify', ['--ready', 'STATUS=from systemd-notify'], { env: { ...process.env, NOTIFY_SOCKET: socket.address } });
    assert.ok(Date.now() - t0 < 3000, "systemd-notify's BARRIER=1 does not block it");
    await waitFor(() => received.some((d) => d.toString().includes('STATUS=from systemd-notify')), { timeout: 5000 });
  } finally {
    socket.close();
    socket.close();
  }
  assert.equal(existsSync(dirname(socket.address)), false, 'the directory is gone');
  rmSync(runtime, { recursive: true, force: true });
});

test('the base directory: $RUNTIME_DIRECTORY, then $XDG_RUNTIME_DIR, then /run, then the temp dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdwrap-base-'));
  try {
    assert.equal(runtimeBase({ RUNTIME_DIRECTORY: `${dir}:/elsewhere`, XDG_RUNTIME_DIR: '/nonexistent' }), dir);
    assert.equal(runtimeBase({ RUNTIME_DIRECTORY: '/nonexistent', XDG_RUNTIME_DIR: dir }), dir);
    assert.equal(runtimeBase({}), existsSync('/run') ? '/run' : tmpdir());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
