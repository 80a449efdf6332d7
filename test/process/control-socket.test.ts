// The control socket and `sdwrap reload`, with real processes: a reload that returns only once the new config
// is served, its mode (0600) and its end at exit, a second connection, garbage, a peer that goes away, a reload
// refused while starting or failing with its reason, stale and live sockets, and nobody answering.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { assertNoLeftovers, testMarker, type TestMarker } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, runSdwrap, SDWRAP_BIN, stopAll, type SdwrapRun } from '../helpers/run-sdwrap.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = path.join(REPO_ROOT, 'test/fixtures/server.mjs');
let dir: string;
let sockets = 0;
const listeners: NotifyListener[] = [];

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-ctl-'));
});
after(async () => {
  await stopAll();
  await Promise.all(listeners.map((l) => l.close()));
  rmSync(dir, { recursive: true, force: true });
});

interface Supervised {
  run: SdwrapRun;
  listener: NotifyListener;
  socket: string;
  port: number;
  marker: TestMarker;
}

/**
 * sdwrap with a control socket, supervising the fixture app: liveness on TCP, readiness on /healthz (so a
 * reload whose /healthz fails is held, not killed; with liveness 'http' it is killed).
 */
async function supervise(
  opts: {
    app?: string[];
    sdwrap?: string[];
    socket?: string;
    env?: Record<string, string>;
    waitReady?: boolean;
    liveness?: 'tcp' | 'http';
  } = {},
): Promise<Supervised> {
  const port = await freePort();
  const listener = await NotifyListener.start();
  listeners.push(listener);
  const socket = opts.socket ?? path.join(dir, `ctl-${++sockets}.sock`);
  const marker = testMarker();
  const healthz = `http://127.0.0.1:${port}/healthz`;
  const liveness = opts.liveness === 'http' ? `liveness:http:${healthz}` : `liveness:tcp:127.0.0.1:${port}`;
  const run = runSdwrap(
    [
      ...(opts.env?.RUNTIME_DIRECTORY ? [] : ['--control-socket', socket]),
      '--probe',
      liveness,
      '--probe',
      `readiness:http:${healthz}`,
      // A start period: a loaded machine may take a while to start the fixture's node.
      '--interval',
      '150ms',
      '--timeout',
      '500ms',
      '--failure-threshold',
      '3',
      '--stop-timeout',
      '2s',
      '--start-period',
      '20s',
      ...(opts.sdwrap ?? []),
      '--',
      process.execPath,
      SERVER,
      '--port',
      String(port),
      ...(opts.app ?? []),
    ],
    { notifySocket: listener.address, marker, env: opts.env },
  );
  if (opts.waitReady !== false) await listener.waitForField('READY', '1', 15_000);
  return { run, listener, socket, port, marker };
}

async function stop(s: Supervised): Promise<void> {
  s.run.kill('SIGTERM');
  await s.run.waitForExit(15_000);
  await assertNoLeftovers(s.marker);
}

/** `sdwrap reload` as ExecReload= would run it. */
async function reload(socket: string, ...extra: string[]): Promise<{ run: SdwrapRun; code: number | null; ms: number }> {
  const t0 = Date.now();
  const run = runSdwrap(['reload', '--control-socket', socket, ...extra]);
  const exit = await run.waitForExit(30_000);
  assert.equal(exit.signal, null, run.dump());
  return { run, code: exit.code, ms: Date.now() - t0 };
}

async function version(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/version`)).text();
}

/** A raw connection to the control socket, collecting the JSON lines it answers. */
function raw(socket: string) {
  const conn: Socket = connect(socket);
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  conn.setEncoding('utf8');
  conn.on('error', () => {});
  conn.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
  });
  const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
  const connected = new Promise<void>((resolve) => conn.once('connect', () => resolve()));
  return {
    conn,
    lines,
    closed,
    connected,
    line: (pred: (l: Record<string, unknown>) => boolean, timeout = 10_000) =>
      waitFor(() => lines.find(pred), { timeout, message: () => `no matching line; got ${JSON.stringify(lines)}` }),
  };
}

/** A socket file nobody listens on, as an sdwrap killed with SIGKILL leaves it. */
function staleSocket(file: string): void {
  const r = spawnSync('python3', ['-c', 'import socket,sys,os; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os._exit(0)', file]);
  assert.equal(r.status, 0, String(r.stderr));
  assert.ok(lstatSync(file).isSocket());
}

test('sdwrap reload: SIGHUP relayed, and it returns only once the new config is served (5 of 5), READY=1 sent; the socket is 0600 and gone at exit', async () => {
  const s = await supervise({ app: ['--reload-ms', '600'] });
  const st = lstatSync(s.socket);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600, `mode ${(st.mode & 0o777).toString(8)}`);
  assert.equal(st.uid, process.getuid!());
  for (let i = 1; i <= 5; i++) {
    const r = await reload(s.socket);
    assert.equal(r.code, 0, r.run.dump());
    // The fixture serves the new version 600 ms after SIGHUP: a reload that returned earlier would see the old one.
    assert.equal(await version(s.port), String(i), `reload ${i} returned before the new config was served (${r.ms} ms)`);
    assert.ok(r.ms >= 550, `reload ${i} took ${r.ms} ms`);
    assert.match(r.run.stderr.join('\n'), /^sdwrap reload: reloaded: SIGHUP relayed and every probe passed again after \d/m);
  }
  // No RELOADING=1: under ExecReload= systemd is reloading already, and would stay so past a failed reload.
  assert.equal(s.listener.all('RELOADING').length, 0, s.listener.dump());
  // The listener relays datagrams through python: wait for the last ones to come through.
  await waitFor(() => s.listener.all('READY').length === 6, { message: () => s.listener.dump() });
  assert.equal(
    s.listener.messages.filter((m) => m.fields.STATUS === 'reloading: SIGHUP relayed (sdwrap reload), waiting for the probes').length,
    5,
    s.listener.dump(),
  );
  assert.equal(s.run.logs.filter((l) => l.msg === 'reload requested over the control socket').length, 5);
  assert.equal(s.run.stdout.filter((l) => l === 'fixture-server got SIGHUP').length, 5, s.run.dump());
  await stop(s);
  assert.equal(existsSync(s.socket), false, 'the socket outlived sdwrap');
});

test('a second connection during a reload is told busy; sdwrap reload waits for that reload, then asks for its own', async () => {
  const s = await supervise({ app: ['--reload-ms', '1500'] });
  const first = raw(s.socket);
  first.conn.write('reload\n');
  await first.line((l) => l.event === 'reloading');
  const second = raw(s.socket);
  second.conn.write('reload\n');
  assert.deepEqual(await second.line((l) => l.event === 'error'), {
    event: 'error',
    code: 'busy',
    message: 'a reload is under way: ask again once it has ended',
  });
  await second.closed;
  const waiting = reload(s.socket);
  assert.equal((await first.line((l) => l.event === 'reloaded', 15_000)).event, 'reloaded');
  await first.closed;
  const r = await waiting;
  assert.equal(r.code, 0, r.run.dump());
  assert.match(r.run.stderr.join('\n'), /a reload is under way: waiting for it to end, then asking for another/);
  assert.equal(await version(s.port), '2', 'the waiting reload got a reload of its own');
  await stop(s);
});

test('garbage, an over-long request and a silent peer get an error and a closed connection; sdwrap carries on', async () => {
  const s = await supervise();
  const cases: Array<[string | Buffer, RegExp]> = [
    ['hello\n', /^unknown request 'hello': the only request is 'reload'$/],
    [Buffer.from([0, 0xff, 0x1b, 0x0a]), /^unknown request '.*': the only request is 'reload'$/],
    ['x'.repeat(300), /^request longer than 256 bytes$/],
    ['RELOAD please\n', /^unknown request 'RELOAD please'/],
  ];
  for (const [request, message] of cases) {
    const c = raw(s.socket);
    c.conn.write(request);
    const reply = await c.line((l) => l.event === 'error');
    assert.equal(reply.code, 'bad-request');
    assert.match(String(reply.message), message);
    await c.closed;
  }
  const silent = raw(s.socket);
  await silent.connected;
  const reply = await silent.line((l) => l.event === 'error', 10_000);
  assert.deepEqual(reply, { event: 'error', code: 'bad-request', message: 'no request within 5s' });
  await silent.closed;
  assert.equal(s.run.exitStatus, undefined, 'sdwrap exited');
  const r = await reload(s.socket);
  assert.equal(r.code, 0, r.run.dump());
  await stop(s);
});

test('a peer that goes away mid-reload, or before asking, changes nothing: the reload completes, sdwrap carries on', async () => {
  const s = await supervise({ app: ['--reload-ms', '500'] });
  const gone = raw(s.socket);
  gone.conn.write('reload\n');
  await gone.line((l) => l.event === 'reloading');
  gone.conn.destroy();
  await s.run.waitForLog((l) => l.msg === 'reloaded', 10_000);
  const early = raw(s.socket);
  await early.connected;
  early.conn.destroy();
  // A client process killed right after asking: the kernel closes its end.
  const killed = spawnSync('python3', [
    '-c',
    'import socket,sys,os; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"reload\\n"); os.kill(os.getpid(), 9)',
    s.socket,
  ]);
  assert.equal(killed.signal, 'SIGKILL', String(killed.stderr));
  await waitFor(() => s.run.logs.filter((l) => l.msg === 'reloaded').length === 2, { timeout: 10_000, message: () => s.run.dump() });
  const half = raw(s.socket);
  half.conn.end('reload'); // asks without a newline, then closes its side at once: the answer still comes
  assert.equal((await half.line((l) => l.event === 'reloaded', 10_000)).event, 'reloaded');
  assert.equal(s.run.exitStatus, undefined, 'sdwrap exited');
  const r = await reload(s.socket);
  assert.equal(r.code, 0, r.run.dump());
  assert.equal(await version(s.port), '4');
  await stop(s);
});

test('refused while the app is starting: exit 1 and the reason', async () => {
  const s = await supervise({ app: ['--ready-after', '60000'], sdwrap: ['--start-period', '60s'], waitReady: false });
  await waitFor(() => existsSync(s.socket), { message: 'the control socket' });
  const r = await reload(s.socket);
  assert.equal(r.code, 1, r.run.dump());
  assert.match(
    r.run.stderr.join('\n'),
    /^sdwrap reload: the app is still starting \(READY=1 not sent yet\): a reload needs it ready first$/m,
  );
  assert.equal(s.listener.all('RELOADING').length, 0);
  await stop(s);
});

test('probes that do not pass again: exit 1 at --timeout with the last failure; a later sdwrap reload starts over, not busy', async () => {
  const s = await supervise();
  assert.equal((await fetch(`http://127.0.0.1:${s.port}/control/fail`)).status, 200);
  const reason =
    /^sdwrap reload: the probes did not all pass again within 1s 500ms \(--timeout\); last failure: GET http:\/\/127\.0\.0\.1:\d+\/healthz: HTTP 500 \(expected 200-399\); sdwrap goes on waiting for them$/m;
  const r = await reload(s.socket, '--timeout', '1500ms');
  assert.equal(r.code, 1, r.run.dump());
  assert.match(r.run.stderr.join('\n'), reason);
  assert.equal(s.run.exitStatus, undefined);
  // Its asker gone, the reload under way is nobody's: the next one (the fixed config, say) starts over.
  const again = await reload(s.socket, '--timeout', '1500ms');
  assert.equal(again.code, 1, again.run.dump());
  assert.match(again.run.stderr.join('\n'), reason);
  assert.equal(s.run.stdout.filter((l) => l === 'fixture-server got SIGHUP').length, 2, s.run.dump());
  await fetch(`http://127.0.0.1:${s.port}/control/recover`);
  const third = await reload(s.socket);
  assert.equal(third.code, 0, third.run.dump());
  assert.equal(s.run.stdout.filter((l) => l === 'fixture-server got SIGHUP').length, 3, s.run.dump());
  await stop(s);
});

test('an app that turns unhealthy after the reload: exit 1 with the reason; sdwrap kills it and exits 69', async () => {
  const s = await supervise({ app: ['--reload-ms', '200', '--reload-breaks'], liveness: 'http' });
  const r = await reload(s.socket);
  assert.equal(r.code, 1, r.run.dump());
  assert.match(
    r.run.stderr.join('\n'),
    /^sdwrap reload: the reload failed after \S+: the app became unhealthy: GET http:\/\/127\.0\.0\.1:\d+\/healthz: 3 consecutive probe failures \(threshold 3\), last: HTTP 500/m,
  );
  assert.deepEqual(await s.run.waitForExit(15_000), { code: 69, signal: null }, s.run.dump());
  await assertNoLeftovers(s.marker);
  assert.equal(existsSync(s.socket), false);
});

test('nobody answers: no socket, a stale socket (exit 3); no socket to ask at all (exit 2)', async () => {
  const none = await reload(path.join(dir, 'none.sock'));
  assert.equal(none.code, 3, none.run.dump());
  assert.match(none.run.stderr.join('\n'), /^sdwrap reload: no sdwrap answers on \S+none\.sock: no such socket/m);
  const stale = path.join(dir, 'stale-client.sock');
  staleSocket(stale);
  const refused = await reload(stale);
  assert.equal(refused.code, 3, refused.run.dump());
  assert.match(refused.run.stderr.join('\n'), /nothing listens there \(sdwrap is not running\)/);
  const run = runSdwrap(['reload'], { env: { RUNTIME_DIRECTORY: undefined } });
  assert.equal((await run.waitForExit(10_000)).code, 2, run.dump());
  assert.match(run.stderr[0]!, /^sdwrap reload: no control socket to ask: RUNTIME_DIRECTORY is not set/);
});

test(
  'another user cannot connect (mode 0600), even where it can reach the directory',
  { skip: process.getuid?.() !== 0 && 'needs root, to run a client as another user' },
  async () => {
    const open = path.join(dir, 'open');
    mkdirSync(open, { recursive: true });
    chmodSync(dir, 0o711);
    chmodSync(open, 0o711);
    const s = await supervise({ socket: path.join(open, 'ctl.sock') });
    try {
      const client = spawn(process.execPath, [SDWRAP_BIN, 'reload', '--control-socket', s.socket], {
        uid: 65534,
        gid: 65534,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      client.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => client.once('close', (c) => resolve(c)));
      assert.equal(code, 3, stderr);
      assert.match(stderr, /^sdwrap reload: no sdwrap answers on \S+: permission denied/m);
      assert.equal(s.listener.all('RELOADING').length, 0);
    } finally {
      chmodSync(dir, 0o700);
      await stop(s);
    }
  },
);

test('at start: a stale socket is replaced, a live one (another sdwrap) or a file that is no socket refused with exit 2', async () => {
  const path1 = path.join(dir, 'shared.sock');
  staleSocket(path1);
  const s = await supervise({ socket: path1 });
  await s.run.waitForLog((l) => l.msg === 'removed a stale control socket');
  const second = runSdwrap(['--control-socket', path1, '--', 'sleep', '30']);
  assert.deepEqual(await second.waitForExit(10_000), { code: 2, signal: null }, second.dump());
  assert.match(second.stderr.join('\n'), /^sdwrap: --control-socket \S+shared\.sock: another sdwrap is serving this control socket/m);
  assert.equal(second.logs.filter((l) => l.msg === 'spawned').length, 0, 'the second sdwrap spawned its app');
  // The first is untouched by the second's attempt.
  const r = await reload(path1);
  assert.equal(r.code, 0, r.run.dump());
  await stop(s);
  const file = path.join(dir, 'plain-file');
  writeFileSync(file, '');
  const third = runSdwrap(['--control-socket', file, '--', 'sleep', '30']);
  assert.deepEqual(await third.waitForExit(10_000), { code: 2, signal: null }, third.dump());
  assert.match(third.stderr.join('\n'), /plain-file exists and is not a socket: remove it or choose another path/);
});

test('by default the socket is $RUNTIME_DIRECTORY/sdwrap.sock, where sdwrap reload finds it too', async () => {
  const runtime = path.join(dir, 'runtime');
  mkdirSync(runtime, { recursive: true });
  const s = await supervise({ env: { RUNTIME_DIRECTORY: runtime } });
  const socket = path.join(runtime, 'sdwrap.sock');
  assert.ok(lstatSync(socket).isSocket());
  const run = runSdwrap(['reload'], { env: { RUNTIME_DIRECTORY: runtime } });
  assert.deepEqual(await run.waitForExit(20_000), { code: 0, signal: null }, run.dump());
  await stop(s);
  assert.equal(existsSync(socket), false);
});
