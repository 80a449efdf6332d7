// Fault injection: the notify socket disappears and comes back, is a socket of the wrong type, or is full.
// sdwrap keeps supervising, says so once, and its pings reach the socket again once it is back. (A full socket
// with the native notifier is not here: libsystemd's sd_notify sends blocking, so sdwrap waits in sendmsg(2)
// until systemd reads; with --notifier systemd-notify the wait is the command's, not sdwrap's.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { failsOnceFlagExists } from '../helpers/flag-probe.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';

after(stopAll);
const dir = mkdtempSync(join(tmpdir(), 'sdwrap-faults-notify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SUPERVISED = failsOnceFlagExists;

for (const notifier of ['native', 'systemd-notify'] as const) {
  test(`the notify socket deleted, then back at the same path: warned once, pings reach the new one (--notifier ${notifier})`, async () => {
    const marker = testMarker();
    const path = join(dir, `notify-${notifier}.sock`);
    const flag = join(dir, `fail-gone-${notifier}`);
    let listener = await NotifyListener.start({ path });
    try {
      const run = runSdwrap([...SUPERVISED(flag), '--notifier', notifier, '--', 'sleep', '60'], {
        notifySocket: path,
        marker,
        env: { WATCHDOG_USEC: '2000000' },
      });
      await listener.waitForField('READY', '1', 10_000);
      await listener.close(); // removes the socket file
      const warning = 'notify socket is unreachable: systemd will not hear from sdwrap';
      await run.waitForLog((l) => l.msg === warning, 5_000);
      listener = await NotifyListener.start({ path });
      await listener.waitForField('WATCHDOG', '1', 5_000);
      // Gone a second time: no second warning.
      await listener.close();
      listener = await NotifyListener.start({ path });
      await listener.waitForField('WATCHDOG', '1', 5_000);
      assert.equal(run.logs.filter((l) => l.msg === warning).length, 1, run.dump());
      // State kept: the verdict still works and reaches the socket.
      writeFileSync(flag, '');
      await listener.waitFor((m) => /^unhealthy/.test(m.fields.STATUS ?? ''), 5_000, 'STATUS=unhealthy...');
      assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
      await assertNoLeftovers(marker);
    } finally {
      await listener.close();
    }
  });
}

test('the notify socket is a stream socket: warned once, and sdwrap supervises on', async () => {
  const marker = testMarker();
  const path = join(dir, 'stream.sock');
  const flag = join(dir, 'fail-stream');
  const server = createServer((socket) => socket.destroy()).listen(path);
  await once(server, 'listening');
  try {
    const run = runSdwrap([...SUPERVISED(flag), '--notifier', 'native', '--', 'sleep', '60'], {
      notifySocket: path,
      marker,
      env: { WATCHDOG_USEC: '2000000' },
    });
    const warning = 'notify socket is a stream socket, not a datagram socket: systemd will not hear from sdwrap';
    await run.waitForLog((l) => l.msg === warning, 5_000);
    await run.waitForLog((l) => l.msg === 'ready', 5_000);
    writeFileSync(flag, '');
    assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
    assert.equal(run.logs.filter((l) => l.msg === warning).length, 1, run.dump());
    await assertNoLeftovers(marker);
  } finally {
    server.close();
  }
});

test('a full notify socket (nobody reads it; EAGAIN): with --notifier systemd-notify, sdwrap supervises on', async () => {
  const marker = testMarker();
  const path = join(dir, 'deaf.sock');
  const flag = join(dir, 'fail-deaf');
  // Binds a datagram socket and never reads it: after net.unix.max_dgram_qlen datagrams, sends would block.
  const deaf = spawn(
    'python3',
    [
      '-c',
      'import socket,sys,time\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound",flush=True)\ntime.sleep(60)',
      path,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    await once(deaf.stdout!, 'data');
    const run = runSdwrap([...SUPERVISED(flag), '--notifier', 'systemd-notify', '--', 'sleep', '60'], {
      notifySocket: path,
      marker,
      env: { WATCHDOG_USEC: '40000' }, // a ping every 20 ms: the queue is full within a second
    });
    await run.waitForLog((l) => l.msg === 'ready', 10_000);
    // Long past a full queue, probes still run and the verdict still comes.
    const probed = () => run.logs.length;
    const before = probed();
    writeFileSync(flag, '');
    assert.deepEqual(await run.waitForExit(15_000), { code: 69, signal: null }, run.dump());
    assert.ok(probed() > before, run.dump());
    await assertNoLeftovers(marker);
  } finally {
    deaf.kill();
  }
});
