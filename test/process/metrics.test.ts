// --metrics through the real CLI: served from before the app spawns until sdwrap exits, a bad address refused
// at start (one line, exit 2, no app), restarts, readiness, log symptoms and heartbeat failures counted in local
// mode, and scrapers that hold connections, send slowly or never read cannot make sdwrap miss a watchdog ping.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyListener } from '../helpers/notify-listener.js';
import { sample, scrape } from '../helpers/metrics.js';
import { freePort } from '../helpers/ports.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { REPO_ROOT, runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
const DIR = mkdtempSync(join(tmpdir(), 'sdwrap-metrics-'));
after(async () => {
  await stopAll();
  rmSync(DIR, { recursive: true, force: true });
});

/** Whether something accepts connections on the port now. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

test(
  'GET /metrics is served from before the app spawns until sdwrap exits; other paths and methods are refused',
  { timeout: 60_000 },
  async () => {
    const [metricsPort, appPort] = [await freePort(), await freePort()];
    const marker = testMarker();
    const run = runSdwrap(
      [
        '--no-systemd',
        '--metrics',
        String(metricsPort),
        '--http',
        `http://127.0.0.1:${appPort}/healthz`,
        '--interval',
        '200ms',
        '--start-period',
        '10s',
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(appPort),
      ],
      { marker },
    );
    const serving = await run.waitForLog((l) => l.msg === 'serving metrics', 15_000);
    assert.equal(serving.metrics, `http://127.0.0.1:${metricsPort}/metrics`);
    const spawned = await run.waitForLog((l) => l.msg === 'spawned', 15_000);
    assert.ok(run.logs.indexOf(serving) < run.logs.indexOf(spawned), 'bound before the app was spawned');
    await run.waitForLog((l) => l.msg === 'ready', 15_000);
    const probe = `probe="GET http://127.0.0.1:${appPort}/healthz"`;
    const body = await waitFor(
      async () => {
        const r = await scrape(metricsPort);
        return (sample(r.body, `sdwrap_probe_results_total{${probe},outcome="success"}`) ?? 0) >= 2 && r;
      },
      { timeout: 15_000, message: () => run.dump() },
    );
    assert.equal(body.status, 200);
    assert.match(body.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(body.body, 'sdwrap_ready'), 1);
    assert.equal(sample(body.body, `sdwrap_probe_state{${probe},state="healthy"}`), 1);
    assert.ok((sample(body.body, `sdwrap_probe_duration_seconds_count{${probe}}`) ?? 0) >= 2);
    assert.equal(sample(body.body, 'sdwrap_build_info{version="0.1.0",notifier="none"}'), 1);
    assert.equal((await scrape(metricsPort, '/')).status, 404);
    const post = await new Promise<number>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: metricsPort }, () =>
        socket.write('POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (c) => (text += c.toString()));
      socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1])));
      socket.on('error', reject);
    });
    assert.equal(post, 405);

    run.kill('SIGTERM');
    assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.dump());
    assert.equal(await listening(metricsPort), false, 'the endpoint is gone with sdwrap');
    await assertNoLeftovers(marker);
  },
);

test(
  'a port in use, an address not of this host or a malformed one: one line naming it, exit 2, the app never spawned',
  { timeout: 60_000 },
  async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const cases: Array<[string, RegExp]> = [
        [String(port), new RegExp(`^sdwrap: --metrics 127\\.0\\.0\\.1:${port}: the address is in use \\(another process listens there\\)`)],
        // TEST-NET-1 (RFC 5737): never an address of this host.
        ['192.0.2.1:9464', /^sdwrap: --metrics 192\.0\.2\.1:9464: not an address of this host/],
        ['localhost', /^sdwrap: --metrics expects a port \(served on 127\.0\.0\.1\) or host:port .*got 'localhost'/],
      ];
      for (const [value, expected] of cases) {
        const spawnedFile = join(DIR, `spawned-${value.replace(/\W/g, '_')}`);
        const run = runSdwrap(['--no-systemd', '--metrics', value, '--', 'sh', '-c', `touch ${spawnedFile}`]);
        const exit = await run.waitForExit(15_000);
        assert.deepEqual(exit, { code: 2, signal: null }, run.dump());
        assert.equal(run.stderr.length, 1, `one line: ${run.dump()}`);
        assert.match(run.stderr[0]!, expected);
        assert.match(run.stderr[0]!, /\(see 'sdwrap --help'\)$/);
        assert.equal(existsSync(spawnedFile), false, 'the app was not spawned');
      }
    } finally {
      taken.close();
    }
  },
);

test('local mode: restarts, readiness, --watch-log matches and heartbeat failures are counted', { timeout: 60_000 }, async () => {
  const [metricsPort, deadPort] = [await freePort(), await freePort()];
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--no-systemd',
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      '--watch-log',
      'symptom',
      '--watch-log-max',
      '100',
      '--heartbeat-url',
      `http://127.0.0.1:${deadPort}/ping`,
      '--restart-delay',
      '200ms',
      '--max-restarts',
      '50',
      '--',
      'sh',
      '-c',
      'echo symptom one; echo symptom two; sleep 0.5; exit 3',
    ],
    { marker },
  );
  const body = await waitFor(
    async () => {
      const { body } = await scrape(metricsPort);
      return (sample(body, 'sdwrap_restarts_total') ?? 0) >= 2 && (sample(body, 'sdwrap_heartbeat_failures_total') ?? 0) >= 1 && body;
    },
    { timeout: 20_000, message: () => run.dump() },
  );
  const restarts = sample(body, 'sdwrap_restarts_total')!;
  // Two matching lines a run: every run so far, and maybe the one just spawned.
  const symptoms = sample(body, 'sdwrap_log_symptoms_total')!;
  assert.ok(symptoms >= 2 * restarts && symptoms <= 2 * (restarts + 1), `${symptoms} symptoms after ${restarts} restarts`);
  const logged = run.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('restarting in')).length;
  assert.ok(restarts === logged || restarts === logged - 1, `${restarts} counted, ${logged} logged`);
  const started = sample(body, 'sdwrap_child_start_time_seconds')!;
  assert.ok(Math.abs(started - Date.now() / 1000) < 10, `the latest app started ${started}`);
  run.kill('SIGTERM');
  await run.waitForExit(15_000);
  await assertNoLeftovers(marker);
});

test(
  'scrapers that hold connections, send slowly or never read: no WATCHDOG=1 missed, no probe delayed; the extra connections are closed at once and idle ones dropped',
  { timeout: 90_000 },
  async () => {
    // WatchdogSec=2s: a ping every 1 s. A missed ping shows as a gap of 2 s; a ping on time comes within 1 s,
    // plus the timer's and a loaded machine's slack.
    const halfPeriodMs = 1000;
    const maxGapMs = 1600;
    const [metricsPort, appPort] = [await freePort(), await freePort()];
    const listener = await NotifyListener.start();
    const marker = testMarker();
    const sockets: net.Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    try {
      const run = runSdwrap(
        [
          '--metrics',
          String(metricsPort),
          '--http',
          `http://127.0.0.1:${appPort}/healthz`,
          '--interval',
          '100ms',
          '--timeout',
          '300ms',
          '--start-period',
          '10s',
          '--stop-timeout',
          '1s',
          '--log-level',
          'debug',
          '--',
          process.execPath,
          SERVER,
          '--port',
          String(appPort),
        ],
        { notifySocket: listener.address, marker, env: { WATCHDOG_USEC: String(2 * halfPeriodMs * 1000) } },
      );
      await listener.waitForField('READY', '1', 20_000);
      await waitFor(() => listener.messages.some((m) => m.fields.WATCHDOG === '1'), { timeout: 10_000, message: () => listener.dump() });
      const hostileFrom = Date.now();
      const connect = (onConnect: (s: net.Socket) => void) =>
        new Promise<net.Socket>((resolve) => {
          const socket = net.connect({ host: '127.0.0.1', port: metricsPort }, () => {
            onConnect(socket);
            resolve(socket);
          });
          socket.on('error', () => {});
          sockets.push(socket);
        });
      const request = 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
      // Pipelined GETs, more answers than the socket buffers hold, never read: sdwrap ends the connection at
      // the second instead of rendering each.
      const pipelined = await connect((s) => {
        s.pause();
        s.write(request.repeat(1000));
      });
      // GETs read a byte every 300 ms: the answer waits in the kernel's buffers, not in sdwrap, which is done.
      for (let i = 0; i < 3; i++) {
        await connect((s) => {
          s.pause();
          s.write(request);
          const timer = setInterval(() => (s.destroyed ? clearInterval(timer) : s.read(1)), 300);
          timers.push(timer);
        });
      }
      // Then the 8 connections sdwrap serves at once, each held: headers a byte every 300 ms that never end, and
      // connections that say nothing.
      for (let i = 0; i < 4; i++) {
        await connect((s) => {
          s.write('GET /metrics HTTP/1.1\r\nX-Slow: ');
          const timer = setInterval(() => (s.destroyed ? clearInterval(timer) : s.write('a')), 300);
          timers.push(timer);
        });
        await connect(() => {});
      }
      // Then, while those hold every slot, 5 more every 100 ms for 4 s, saying nothing: closed as they arrive.
      const extras: Array<{ openedAt: number; closedAt?: number }> = [];
      for (let wave = 0; wave < 40; wave++) {
        for (let i = 0; i < 5; i++) {
          const entry: { openedAt: number; closedAt?: number } = { openedAt: Date.now() };
          extras.push(entry);
          void connect(() => {}).then((s) => s.resume().on('close', () => (entry.closedAt = Date.now())));
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Asserted after the pings, the point of this test: a blocked sdwrap would fail this too.
      await waitFor(() => extras.every((e) => e.closedAt !== undefined), { timeout: 5000 }).catch(() => undefined);
      // The 8 are dropped once idle (5 s) or past the request deadline (5 s, checked each second): a scraper
      // that behaves is served again.
      const served = await waitFor(
        async () => {
          const r = await scrape(metricsPort).catch(() => undefined);
          return r?.status === 200 && r;
        },
        { timeout: 15_000, interval: 250 },
      ).catch(() => undefined);
      const hostileMs = Date.now() - hostileFrom;

      const pingTimes = listener.messages
        .filter((m) => m.fields.WATCHDOG === '1' && m.receivedAt >= hostileFrom - halfPeriodMs)
        .map((m) => m.receivedAt);
      const gaps = pingTimes.slice(1).map((t, i) => t - pingTimes[i]!);
      assert.ok(pingTimes.length >= Math.floor(hostileMs / halfPeriodMs), `pings during ${hostileMs} ms: ${gaps.join(', ')}`);
      assert.deepEqual(
        gaps.filter((g) => g > maxGapMs),
        [],
        `gaps between pings (ms) while ${sockets.length} scrapers misbehaved: ${gaps.join(', ')}`,
      );
      // What the pipelining client got, read only now: at most one answer, then the end of the connection.
      let answers = '';
      pipelined.on('data', (chunk: Buffer) => (answers += chunk.toString('latin1'))).resume();
      await waitFor(() => pipelined.destroyed, { timeout: 5000, message: 'the pipelining connection was ended' });
      assert.ok((answers.match(/^HTTP\/1\.1 /gm)?.length ?? 0) <= 1, 'at most one answer to 1000 pipelined GETs');
      const open = extras.filter((e) => e.closedAt === undefined).length;
      assert.equal(open, 0, `${open} of ${extras.length} extra connections still open after 5 s`);
      const slowest = Math.max(...extras.map((e) => e.closedAt! - e.openedAt));
      const late = extras.filter((e) => e.closedAt! - e.openedAt >= 2000).length;
      assert.ok(
        slowest < 2000,
        `extra connections closed at once: ${late} of ${extras.length} took 2 s or more, the slowest ${slowest} ms`,
      );
      assert.ok(served, 'a scrape once the misbehaving connections were dropped');
      const { body } = served;
      assert.equal(sample(body, 'sdwrap_watchdog_pings_total{outcome="withheld"}'), 0);
      // Probes every 100 ms went on, none held up.
      const passed = run.logs.filter((l) => l.msg === 'probe passed' && (l.time as number) >= hostileFrom).map((l) => l.time as number);
      const probeGaps = passed.slice(1).map((t, i) => t - passed[i]!);
      assert.ok(passed.length >= hostileMs / 1000, `${passed.length} probes in ${hostileMs} ms`);
      assert.deepEqual(
        probeGaps.filter((g) => g > maxGapMs),
        [],
        `gaps between probe successes: max ${Math.max(...probeGaps)} ms`,
      );
      run.kill('SIGTERM');
      await run.waitForExit(15_000);
      await assertNoLeftovers(marker);
    } finally {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await listener.close();
    }
  },
);
