/**
 * Self-test of the test helpers and fixtures (real processes, real sockets).
 * Run: node --import tsx --test test/process/helpers.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotifyListener, parseNotifyFields } from '../helpers/notify-listener.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';
import { assertNoLeftovers, isAlive, listProcesses, parseStat, processesWithEnv, readProc, testMarker } from '../helpers/processes.js';
import { parseLogLine } from '../helpers/run-sdwrap.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const SYSTEMD_NOTIFY = '/usr/bin/systemd-notify';

interface Spawned {
  child: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns a process, collects stdout lines, and registers cleanup on t. */
function spawnCollect(t: { after: (fn: () => unknown) => void }, cmd: string, args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, lines, exited };
}

function runNotify(args: string[], notifySocket: string): Promise<{ ms: number; pid: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = execFile(SYSTEMD_NOTIFY, args, { env: { ...process.env, NOTIFY_SOCKET: notifySocket }, timeout: 8000 }, (err) =>
      err ? reject(err) : resolve({ ms: Date.now() - started, pid: child.pid! }),
    );
  });
}

/** Sends one datagram from a python process (kernel-filled credentials = its real pid). */
function sendDatagram(address: string, payload: string): Promise<number> {
  const script =
    'import os,socket,sys\n' +
    'a=sys.argv[1]\n' +
    'a="\\0"+a[1:] if a.startswith("@") else a\n' +
    's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n' +
    's.sendto(sys.argv[2].encode(),a)\n' +
    'print(os.getpid())\n';
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script, address, payload], { timeout: 5000 }, (err, stdout) =>
      err ? reject(err) : resolve(Number(stdout.trim())),
    );
  });
}

for (const abstract of [false, true]) {
  const kind = abstract ? 'abstract' : 'path';
  test(`NotifyListener (${kind}) receives systemd-notify --no-block READY=1 with sender pid`, async (t) => {
    const listener = await NotifyListener.start({ abstract });
    t.after(() => listener.close());
    if (abstract) assert.match(listener.address, /^@/);
    else {
      assert.ok(path.isAbsolute(listener.address));
      assert.ok(existsSync(listener.address), 'socket file exists');
    }

    const { pid: notifyPid } = await runNotify(['--no-block', 'READY=1'], listener.address);
    const m = await listener.waitFor((x) => x.fields.READY === '1', 5000, 'READY=1');
    assert.equal(m.raw, 'READY=1');
    assert.deepEqual(m.fields, { READY: '1' });
    // systemd-notify (v252) claims its *parent's* pid in SCM_CREDENTIALS when it
    // is allowed to (root/CAP_SYS_ADMIN), and falls back to its own pid otherwise.
    assert.ok(
      m.pid === process.pid || m.pid === notifyPid,
      `sender pid ${m.pid} is neither the test (${process.pid}) nor systemd-notify (${notifyPid})`,
    );
    assert.equal(m.uid, process.getuid!());
    assert.ok(m.at <= Date.now() && m.at > Date.now() - 10_000);
    assert.ok(listener.has('READY'));
    assert.ok(listener.has('READY', '1'));
    assert.ok(!listener.has('READY', '0'));

    // Exact kernel credentials + multi-field datagram parsing.
    const [sentBy, seen] = await Promise.all([
      sendDatagram(listener.address, 'STATUS=hello = world\nWATCHDOG=1\n'),
      listener.waitFor((x) => x.fields.WATCHDOG === '1', 5000, 'WATCHDOG=1'),
    ]);
    assert.equal(seen.pid, sentBy);
    assert.deepEqual(seen.fields, { STATUS: 'hello = world', WATCHDOG: '1' });
    assert.equal(listener.all('STATUS').length, 1);
    assert.equal(listener.all('READY').length, 1);

    // waitFor also resolves with an already-received message.
    assert.equal(await listener.waitFor((x) => x.fields.READY === '1', 10), m);

    const addr = listener.address;
    await listener.close();
    await listener.close(); // safe twice
    if (!abstract) assert.ok(!existsSync(path.dirname(addr)), 'temp dir removed');
  });
}

test('NotifyListener closes SCM_RIGHTS fds: blocking systemd-notify (BARRIER=1) returns fast', async (t) => {
  const listener = await NotifyListener.start();
  t.after(() => listener.close());
  const { ms } = await runNotify(['STATUS=x'], listener.address);
  // An fd left open blocks systemd-notify for its 5 s barrier timeout.
  assert.ok(ms < 4000, `systemd-notify STATUS=x took ${ms} ms (barrier fd not closed?)`);
  await listener.waitFor((m) => m.fields.STATUS === 'x', 2000, 'STATUS=x');
  await listener.waitFor((m) => m.fields.BARRIER === '1', 2000, 'BARRIER=1');
});

test('NotifyListener.waitFor timeout error lists received messages', async (t) => {
  const listener = await NotifyListener.start();
  t.after(() => listener.close());
  await sendDatagram(listener.address, 'STATUS=only one');
  await listener.waitFor((m) => 'STATUS' in m.fields, 5000);
  await assert.rejects(
    listener.waitFor((m) => m.fields.READY === '1', 100, 'READY=1'),
    (err: Error) => /READY=1/.test(err.message) && /STATUS=only one/.test(err.message),
  );
});

test('parseNotifyFields / parseLogLine', () => {
  assert.deepEqual(parseNotifyFields('A=1\nB=x=y\n\nnoequals\nA=2'), { A: '2', B: 'x=y' });
  assert.deepEqual(parseLogLine('<6>{"level":30,"msg":"hi"}'), { level: 30, msg: 'hi', _prefix: '<6>' });
  assert.deepEqual(parseLogLine('{"msg":"plain"}'), { msg: 'plain' });
  assert.equal(parseLogLine('not json'), undefined);
  assert.equal(parseLogLine('<3>[1,2]'), undefined);
});

test('waitFor polls until truthy and times out with message', async () => {
  let n = 0;
  assert.equal(await waitFor(() => (++n >= 3 ? n : undefined), { interval: 5 }), 3);
  await assert.rejects(
    waitFor(() => false, { timeout: 60, message: () => 'never true' }),
    /timed out after 60 ms: never true/,
  );
});

test('freePort returns a bindable port', async () => {
  const p = await freePort();
  assert.ok(Number.isInteger(p) && p > 0 && p < 65536);
});

test('listProcesses / parseStat / isAlive', () => {
  const me = listProcesses().find((p) => p.pid === process.pid);
  assert.ok(me, 'own process listed');
  assert.equal(me.ppid, process.ppid);
  assert.ok(isAlive(process.pid));
  assert.ok(me.cmdline.length > 0 && me.cmdline[0]!.includes('node'), JSON.stringify(me.cmdline));
  assert.deepEqual(readProc(process.pid)?.pid, process.pid);
  assert.equal(isAlive(2 ** 22 + 1), false); // above pid_max (4194304)

  const tricky = '1234 (a) (b c)) S 1 1234 1234 0 -1 4194560 0 0';
  assert.deepEqual(parseStat(tricky), { pid: 1234, comm: 'a) (b c)', state: 'S', ppid: 1, pgid: 1234, sid: 1234 });
});

test('processesWithEnv + assertNoLeftovers with a marked sleep', async (t) => {
  const marker = testMarker();
  assert.equal(marker.key, 'SDWRAP_TEST_MARKER');
  assert.deepEqual(marker.env, { [marker.key]: marker.value });

  // 1) Leftover that outlives the deadline: assertion fails and it gets SIGKILLed.
  const a = spawnCollect(t, 'sleep', ['1000'], marker.env);
  const found = await waitFor(() => processesWithEnv(marker.key, marker.value).find((p) => p.pid === a.child.pid));
  assert.equal(found.comm, 'sleep');
  await assert.rejects(assertNoLeftovers(marker, 150), (err: Error) => {
    assert.equal(err.name, 'AssertionError');
    assert.match(err.message, new RegExp(`pid=${a.child.pid}\\b`));
    assert.match(err.message, /sleep 1000/);
    return true;
  });
  assert.equal((await a.exited).signal, 'SIGKILL');
  assert.equal(isAlive(a.child.pid!), false);

  // 2) Leftover that goes away before the deadline: assertion passes.
  const b = spawnCollect(t, 'sleep', ['1000'], marker.env);
  await waitFor(() => processesWithEnv(marker.key, marker.value).length === 1);
  const pending = assertNoLeftovers(marker, 5000);
  setTimeout(() => b.child.kill('SIGTERM'), 100);
  await pending;
  assert.equal((await b.exited).signal, 'SIGTERM');
});

test('tree.mjs: orphaned descendants are found by marker and cleaned up', async (t) => {
  const marker = testMarker();
  const tree = spawnCollect(t, process.execPath, [path.join(FIXTURES, 'tree.mjs'), '--detached-grandchild'], marker.env);
  t.after(() => assertNoLeftovers(marker, 0).catch(() => undefined)); // hygiene
  await waitFor(() => tree.lines.includes('tree-ready'), { message: () => tree.lines.join('\n') });
  const pids = tree.lines.filter((l) => l.startsWith('tree-pid ')).map((l) => Number(l.split(' ')[1]));
  assert.equal(pids.length, 5, tree.lines.join('\n')); // 2 sh + 2 sleep + 1 detached sleep
  for (const pid of pids) assert.ok(isAlive(pid), `tree pid ${pid} alive`);
  const detached = readProc(pids[2]!)!;
  assert.equal(detached.sid, detached.pid, 'detached child leads its own session');
  assert.equal(processesWithEnv(marker.key, marker.value).length, 6);

  tree.child.kill('SIGKILL'); // orphans its whole tree
  await tree.exited;
  await assert.rejects(assertNoLeftovers(marker, 100), /5 process\(es\)/);
  for (const pid of pids) await waitFor(() => !isAlive(pid), { timeout: 2000 });
});

test('signals.mjs: prints env, group check, signals; exits 0 on SIGTERM', async (t) => {
  const s = spawnCollect(t, process.execPath, [path.join(FIXTURES, 'signals.mjs')], {
    NOTIFY_SOCKET: '/run/x',
  });
  await waitFor(() => s.lines.find((l) => l.startsWith('ready pid=')));
  assert.ok(s.lines.includes(`ready pid=${s.child.pid}`));
  assert.ok(s.lines.includes('env NOTIFY_SOCKET=/run/x'));
  assert.ok(s.lines.includes('pgid-check shared-group'), s.lines.join('\n'));
  s.child.kill('SIGUSR1');
  await waitFor(() => s.lines.includes('signal SIGUSR1'));
  s.child.kill('SIGTERM');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  assert.ok(s.lines.includes('signal SIGTERM'));
});

test('server.mjs: /healthz 503 then 200 with --ready-after; fail/recover; SIGTERM drains and exits 0', async (t) => {
  const port = await freePort();
  const srv = spawnCollect(t, process.execPath, [
    path.join(FIXTURES, 'server.mjs'),
    '--port',
    String(port),
    '--ready-after',
    '400',
    '--drain-ms',
    '50',
  ]);
  await waitFor(() => srv.lines.find((l) => l.startsWith('fixture-server listening')), {
    message: () => srv.lines.join('\n'),
  });
  assert.ok(srv.lines.includes(`fixture-server listening port=${port} pid=${srv.child.pid}`));
  const url = `http://127.0.0.1:${port}`;
  const get = async (p: string) => {
    const r = await fetch(url + p);
    return { status: r.status, body: await r.text() };
  };
  assert.deepEqual(await get('/healthz'), { status: 503, body: 'starting' });
  await waitFor(async () => (await get('/healthz')).status === 200, { timeout: 5000 });
  assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok' });
  assert.equal((await get('/control/fail')).status, 200);
  assert.deepEqual(await get('/healthz'), { status: 500, body: 'failing' });
  assert.equal((await get('/control/recover')).status, 200);
  assert.equal((await get('/healthz')).status, 200);

  srv.child.kill('SIGTERM');
  assert.deepEqual(await srv.exited, { code: 0, signal: null });
  assert.ok(srv.lines.includes('fixture-server got SIGTERM'), srv.lines.join('\n'));
  assert.ok(srv.lines.includes('fixture-server drained'), srv.lines.join('\n'));
});

test('server.mjs: /control/hang keeps the process alive but unresponsive', async (t) => {
  const port = await freePort();
  const srv = spawnCollect(t, process.execPath, [path.join(FIXTURES, 'server.mjs'), '--port', String(port)]);
  await waitFor(() => srv.lines.find((l) => l.startsWith('fixture-server listening')));
  const r = await fetch(`http://127.0.0.1:${port}/control/hang`);
  assert.equal(r.status, 200);
  await r.text();
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(300) }));
  assert.ok(isAlive(srv.child.pid!));
  srv.child.kill('SIGTERM'); // handler can't run: the event loop is blocked
  await new Promise((r) => setTimeout(r, 100)); // not a wait-for-condition: prove it did NOT exit
  assert.ok(isAlive(srv.child.pid!), 'hung server ignores SIGTERM');
  srv.child.kill('SIGKILL');
  assert.equal((await srv.exited).signal, 'SIGKILL');
});
