// Fault injection: the probe's target misbehaves after the app got ready. It accepts and never reads, sends a
// body without end, sends headers without end, or resets the connection mid-response. Each probe gives up
// within its --timeout (or at once), holds no connection open past its attempt, and sdwrap reaches its verdict.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

after(stopAll);

type Mode = 'healthy' | 'never-read' | 'endless-body' | 'endless-headers' | 'reset';

/** A raw TCP server speaking just enough HTTP/1.1 to be healthy, then to misbehave as `mode` says. */
async function target() {
  const state = { mode: 'healthy' as Mode, open: 0, mostOpen: 0, accepted: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    state.accepted++;
    state.open++;
    state.mostOpen = Math.max(state.mostOpen, state.open);
    socket.on('error', () => {});
    socket.once('close', () => {
      state.open--;
      sockets.delete(socket);
    });
    const mode = state.mode;
    if (mode === 'never-read') {
      // Accepted, and never answered. (The request is drained, not left unread, so that this side sees the
      // probe close the connection: a paused socket would not tell.)
      socket.resume();
      return;
    }
    socket.once('data', () => {
      if (mode === 'healthy') {
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      } else if (mode === 'reset') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
        setImmediate(() => socket.resetAndDestroy());
      } else {
        socket.write(mode === 'endless-body' ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' : 'HTTP/1.1 200 OK\r\n');
        const chunk = mode === 'endless-body' ? `4000\r\n${'x'.repeat(0x4000)}\r\n` : 'X-Endless: yes\r\n';
        // As fast as the socket takes it, for as long as the probe keeps it open.
        const pump = () => {
          while (!socket.destroyed && socket.write(chunk));
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    state,
    url: `http://127.0.0.1:${port}/healthz`,
    close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const CASES: Array<{ mode: Exclude<Mode, 'healthy'>; extra: string[]; verdict: RegExp | undefined }> = [
  { mode: 'never-read', extra: [], verdict: /timed out after 500ms/ },
  { mode: 'endless-body', extra: ['--http-body', 'ok'], verdict: /./ },
  // Status 200 and nothing asks for the body: healthy, and the body is dropped unread, connection and all.
  { mode: 'endless-body', extra: [], verdict: undefined },
  { mode: 'endless-headers', extra: [], verdict: /./ },
  { mode: 'reset', extra: [], verdict: /./ },
];

for (const { mode, extra, verdict } of CASES) {
  test(`probe target: ${mode}${extra.length ? ` (${extra.join(' ')})` : ''}: each attempt ends, no connection kept, ${verdict ? 'the verdict comes' : 'still healthy'}`, async () => {
    const server = await target();
    const marker = testMarker();
    try {
      const run = runSdwrap(
        [
          '--http',
          server.url,
          ...extra,
          '--interval',
          '200ms',
          '--timeout',
          '500ms',
          '--failure-threshold',
          '3',
          '--stop-timeout',
          '500ms',
          '--',
          'sleep',
          '60',
        ],
        { marker },
      );
      await run.waitForLog((l) => l.msg === 'ready', 10_000);
      server.state.mode = mode;
      server.state.mostOpen = server.state.open;
      if (verdict) {
        const unhealthy = await run.waitForLog((l) => l.msg === 'unhealthy: killing the child', 10_000);
        assert.match(String(unhealthy.reason), verdict, run.dump());
        assert.deepEqual(await run.waitForExit(10_000), { code: 69, signal: null }, run.dump());
        const failures = run.logs.filter((l) => l.msg === 'probe failed');
        assert.ok(failures.length >= 1 && failures.length <= 3, run.dump());
      } else {
        const from = server.state.accepted;
        await waitFor(() => server.state.accepted >= from + 10, {
          timeout: 10_000,
          message: () => `only ${server.state.accepted - from} probes\n${run.dump()}`,
        });
        assert.equal(run.exitStatus, undefined, run.dump());
        assert.ok(!run.logs.some((l) => l.msg === 'probe failed'), run.dump());
        run.kill('SIGTERM');
        await run.waitForExit(10_000);
      }
      // One attempt at a time, and none left open once sdwrap is gone.
      assert.ok(server.state.mostOpen <= 2, `${server.state.mostOpen} connections open at once`);
      await waitFor(() => server.state.open === 0, { timeout: 3_000, message: () => `${server.state.open} connections still open` });
      await assertNoLeftovers(marker);
    } finally {
      server.close();
    }
  });
}
