// supervise() on a fake clock, with fake probes, a fake child and a recording notifier (the SupervisorDeps
// seams): when WATCHDOG=1 goes out, to the millisecond of fake time. No process is started: the child's pid is
// one no process can have, so the relays and tree kills it draws find nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import type { ChildHandle } from '../../src/child.js';
import { buildConfig, type ProbeConfig, type RawOptions } from '../../src/config.js';
import type { ExitPlan } from '../../src/exit-plan.js';
import type { ChildStatus } from '../../src/lifecycle.js';
import type { ProcessControl } from '../../src/kill-tree.js';
import type { Notifier } from '../../src/notify.js';
import type { Probe, ProbeOutcome } from '../../src/probes/probe.js';
import { supervise } from '../../src/supervisor.js';
import { FakeClock, settle } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/wait.js';

/** Where signals arrive: an EventEmitter stands in for `process`. */
const asSignals = (emitter: EventEmitter) => emitter as unknown as Pick<NodeJS.Process, 'on' | 'off'>;

/** Above any pid_max Linux allows (2^22): kill(2) and /proc know no such process. */
const NO_SUCH_PID = 2 ** 30;
/** WatchdogSec=3s: pings every 1.5 s. */
const WATCHDOG_USEC = '3000000';

type Mode = 'ok' | 'fail' | 'stall';

/** A probe the test steers: it passes, fails, or stalls (ignores its abort signal until released). */
class FakeProbe implements Probe {
  mode: Mode = 'ok';
  runs = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Fake time of the last passing run. */
  lastOkAt: number | undefined;
  #release: ((outcome: ProbeOutcome) => void) | undefined;

  constructor(
    readonly description: string,
    private readonly clock: FakeClock,
  ) {}

  async run(): Promise<ProbeOutcome> {
    this.runs++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.mode === 'stall') return await new Promise<ProbeOutcome>((resolve) => (this.#release = resolve));
      if (this.mode === 'fail') return { ok: false, detail: 'fake failure' };
      this.lastOkAt = this.clock.now();
      return { ok: true, detail: 'fake ok' };
    } finally {
      this.inFlight--;
    }
  }

  /** Ends a stalled run (as a failure: its timeout has long passed). */
  release(): void {
    this.#release?.({ ok: false, detail: 'released' });
    this.#release = undefined;
  }

  async close(): Promise<void> {}
}

interface Sent {
  at: number;
  lines: readonly string[];
}

interface Harness {
  clock: FakeClock;
  /** What was done to the app's processes, with the fake time: "1000 terminate", "6000 kill", "0 signal SIGHUP". */
  done_to_app: string[];
  /** Keeps the fake tree alive (terminateTree finds it, waitTreeGone waits) until treeGone(). */
  treeAlive(): void;
  treeGone(): void;
  sent: Sent[];
  logs: Array<Record<string, unknown>>;
  probes: Map<string, FakeProbe>;
  signals: EventEmitter;
  done: Promise<ExitPlan>;
  /** Fake times of every WATCHDOG=1. */
  pings(): number[];
  /** Fake time of the first datagram carrying `line`, or undefined. */
  firstAt(line: string): number | undefined;
  /** SIGTERM to sdwrap, the child exits 0, the run ends. */
  stop(): Promise<ExitPlan>;
  /** The child ends with `status` (no signal to sdwrap), the run ends. */
  end(status: ChildStatus): Promise<ExitPlan>;
}

/**
 * Starts supervise() with probes named by their --probe text (the TCP port names the fake) and the
 * watchdog on. Resolves once the child is "spawned" and the first probes have run at fake time 0.
 */
async function start(raw: RawOptions, modes: Record<string, Mode> = {}): Promise<Harness> {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const probes = new Map<string, FakeProbe>();
  const signals = new EventEmitter();
  let exit!: (status: ChildStatus) => void;
  const exited = new Promise<ChildStatus>((resolve) => (exit = resolve));
  const notifier: Notifier = { kind: 'native', send: (lines) => void sent.push({ at: clock.now(), lines }), drain: async () => {} };
  const log = pino({ level: 'debug', base: null }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const config = buildConfig({ timeout: '100ms', failureThreshold: '3', logFormat: 'json', ...raw }, ['app'], false);
  const doneToApp: string[] = [];
  // The app's tree: gone with its head unless a test keeps it alive (an app that ignores SIGTERM).
  let tree = 0;
  let gone = () => {};
  let treeGone = Promise.resolve();
  const processes: ProcessControl = {
    signal: (_pid, signal) => void doneToApp.push(`${clock.now()} signal ${signal}`),
    terminateTree: () => (doneToApp.push(`${clock.now()} terminate`), tree),
    killTree: () => void doneToApp.push(`${clock.now()} kill`),
    waitTreeGone: () => treeGone,
  };
  const done = supervise(config, {
    processes,
    log,
    notifier,
    env: { WATCHDOG_USEC },
    pid: 4242,
    clock,
    signals: asSignals(signals),
    spawn: async (): Promise<ChildHandle> => ({ pid: NO_SUCH_PID, stdout: undefined, stderr: undefined, exited }),
    createProbe: async (probe: ProbeConfig) => {
      const name = probe.target.kind === 'tcp' ? String(probe.target.port) : probe.target.kind;
      const fake = new FakeProbe(`fake ${name}`, clock);
      fake.mode = modes[name] ?? 'ok';
      probes.set(name, fake);
      return fake;
    },
  });
  await waitFor(() => logs.some((l) => l.msg === 'spawned'), { timeout: 5000 });
  await settle();
  const pings = () => sent.filter((s) => s.lines.includes('WATCHDOG=1')).map((s) => s.at);
  return {
    clock,
    done_to_app: doneToApp,
    treeAlive() {
      tree = 1;
      treeGone = new Promise<void>((resolve) => (gone = resolve));
    },
    treeGone() {
      tree = 0;
      gone();
    },
    sent,
    logs,
    probes,
    signals,
    done,
    pings,
    firstAt: (line) => sent.find((s) => s.lines.includes(line))?.at,
    async stop() {
      for (const probe of probes.values()) probe.release();
      signals.emit('SIGTERM', 'SIGTERM');
      await settle();
      exit({ code: 0, signal: null });
      return done;
    },
    async end(status) {
      for (const probe of probes.values()) probe.release();
      exit(status);
      return done;
    },
  };
}

const sent = (h: Harness) => h.sent.map((s) => `${s.at} ${s.lines.join('|')}`).join('\n');

test("WATCHDOG=1 every half period once READY is out, never before; its cadence is the fake clock's", async () => {
  // Readiness stalls at first: the app is not ready, though liveness passes.
  const h = await start({ probe: ['readiness:tcp:127.0.0.1:2', 'liveness:tcp:127.0.0.1:1'], interval: '1s' }, { 2: 'stall' });
  await h.clock.advanceTo(6000);
  assert.deepEqual(h.pings(), [], `no ping before READY=1:\n${sent(h)}`);
  assert.equal(h.firstAt('READY=1'), undefined);
  // Ready now: pings follow on the watchdog timer's own ticks, every 1.5 s.
  h.probes.get('2')!.mode = 'ok';
  h.probes.get('2')!.release();
  await h.clock.advanceTo(6200);
  const readyAt = h.firstAt('READY=1');
  assert.ok(readyAt !== undefined && readyAt <= 6200, sent(h));
  await h.clock.advanceTo(12_000);
  assert.deepEqual(h.pings(), [7500, 9000, 10_500, 12_000], sent(h));
  assert.deepEqual(await h.stop(), { kind: 'code', code: 0 });
  assert.equal(h.clock.pending, 0, 'no timer outlives the run');
});

test('a stalled liveness probe: pings stop once its last success is older than the freshness bound, and resume with a fresh one', async () => {
  // --interval 1s under WatchdogSec=3s is shortened to 300ms (3 x 300 + 100 <= 1000): freshness 1000 ms.
  const h = await start({ probe: ['liveness:tcp:127.0.0.1:1'], interval: '1s' });
  const probe = h.probes.get('1')!;
  assert.ok(
    h.logs.some((l) => /--interval 1s -> 300ms so a hang is detected within WatchdogSec\/3/.test(String(l.msg))),
    JSON.stringify(h.logs),
  );
  const freshnessMs = 3 * 300 + 100;
  assert.equal(h.firstAt('READY=1'), 0, sent(h));
  await h.clock.advanceTo(5500);
  assert.deepEqual(h.pings(), [1500, 3000, 4500]);
  probe.mode = 'stall';
  await h.clock.advanceTo(12_000);
  // Probes ran every 300 ms: the last success was at 5400, the next run (5700) never ends.
  assert.equal(probe.lastOkAt, 5400);
  // The probe is stuck, so no failure is ever counted: the app is still "healthy", only stale.
  assert.ok(!h.sent.some((s) => s.lines.some((l) => /unhealthy/.test(l))), sent(h));
  // 6000 is within 1000 ms of the last success: a ping. From 7500 on, none.
  assert.deepEqual(h.pings(), [1500, 3000, 4500, 6000], `stale after ${5400 + freshnessMs}:\n${sent(h)}`);
  assert.ok(
    h.logs.some((l) => l.msg === 'not vouching: no fresh success' && l.probe === 'fake 1'),
    'the debug log names the probe',
  );
  // The probe answers again: the next tick after a fresh success pings.
  probe.mode = 'ok';
  probe.release();
  await h.clock.advanceTo(13_500);
  assert.ok(probe.lastOkAt! > 12_000, `a fresh success: ${probe.lastOkAt}`);
  assert.deepEqual(
    h.pings().filter((at) => at > 12_000),
    [13_500],
    sent(h),
  );
  assert.equal(probe.maxInFlight, 1, 'probes never overlap, even when one stalls past its timeout');
  assert.deepEqual(await h.stop(), { kind: 'code', code: 0 });
});

test('only liveness decides: a readiness probe that fails after READY leaves the pings alone; liveness failing ends them', async () => {
  const h = await start({ probe: ['readiness:tcp:127.0.0.1:2', 'liveness:tcp:127.0.0.1:1'], interval: '1s', failureThreshold: '2' });
  await h.clock.advanceTo(3000);
  assert.deepEqual(h.pings(), [1500, 3000]);
  h.probes.get('2')!.mode = 'fail';
  await h.clock.advanceTo(9000);
  const notReady = h.sent.find((s) => s.lines.some((l) => l.startsWith('STATUS=not ready: fake 2')));
  // Readiness keeps its 1 s interval (only liveness is fitted to the watchdog): failures at 4 s and 5 s.
  assert.equal(notReady?.at, 5000, sent(h));
  assert.deepEqual(h.pings(), [1500, 3000, 4500, 6000, 7500, 9000], sent(h));
  // Liveness fails twice (the threshold): the app is unhealthy, killed, and never vouched for again.
  h.probes.get('1')!.mode = 'fail';
  await h.clock.advanceTo(15_000);
  const unhealthy = h.sent.find((s) =>
    s.lines.some((l) => l.startsWith('STATUS=unhealthy, killing the app: fake 1: 2 consecutive probe failures')),
  );
  assert.ok(unhealthy, sent(h));
  // Liveness runs every 450 ms here (2 x 450 + 100 fits in WatchdogSec/3): failures at 9450 and 9900.
  assert.equal(unhealthy.at, 9900);
  assert.deepEqual(
    h.pings().filter((at) => at > 9000),
    [],
    sent(h),
  );
  assert.deepEqual(await h.end({ code: null, signal: 'SIGTERM' }), { kind: 'code', code: 69 });
});

test('no WATCHDOG_USEC: no ping at all, however healthy', async () => {
  const clock = new FakeClock();
  const pings: number[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let exit!: (status: ChildStatus) => void;
  const signals = new EventEmitter();
  const done = supervise(buildConfig({ logFormat: 'json' }, ['app'], false), {
    log: pino({ level: 'debug', base: null }, { write: (line: string) => void logs.push(JSON.parse(line)) }),
    notifier: { kind: 'native', send: (lines) => void (lines.includes('WATCHDOG=1') && pings.push(clock.now())), drain: async () => {} },
    env: {},
    pid: 4242,
    clock,
    signals: asSignals(signals),
    spawn: async () => ({
      pid: NO_SUCH_PID,
      stdout: undefined,
      stderr: undefined,
      exited: new Promise<ChildStatus>((resolve) => (exit = resolve)),
    }),
  });
  await waitFor(() => logs.some((l) => l.msg === 'spawned'), { timeout: 5000 });
  await clock.advanceTo(60_000);
  assert.deepEqual(pings, []);
  signals.emit('SIGTERM', 'SIGTERM');
  await settle();
  exit({ code: 0, signal: null });
  assert.deepEqual(await done, { kind: 'code', code: 0 });
});

test('an unhealthy app on the fake clock: the tree gets SIGTERM at the verdict, SIGKILL at --stop-timeout, and sdwrap ends 69 once it is gone', async () => {
  const h = await start({ probe: ['liveness:tcp:127.0.0.1:1'], interval: '1s', failureThreshold: '2', stopTimeout: '5s' });
  h.treeAlive();
  await h.clock.advanceTo(1000);
  h.probes.get('1')!.mode = 'fail';
  await h.clock.advanceTo(3000);
  const verdictAt = h.sent.find((s) => s.lines.some((l) => l.startsWith('STATUS=unhealthy, killing the app')))?.at;
  assert.ok(verdictAt !== undefined, sent(h));
  assert.deepEqual(h.done_to_app, [`${verdictAt} terminate`]);
  // The app ignores the TERM: at the stop timeout, the tree is killed.
  await h.clock.advanceTo(verdictAt + 5000);
  assert.deepEqual(h.done_to_app, [`${verdictAt} terminate`, `${verdictAt + 5000} kill`]);
  h.treeGone();
  assert.deepEqual(await h.end({ code: null, signal: 'SIGKILL' }), { kind: 'code', code: 69 });
  assert.equal(h.clock.pending, 0, 'no timer outlives the run');
});

test('a relayed SIGHUP and a stop on the fake clock: SIGHUP reaches the app as is, SIGTERM with SIGCONT after it', async () => {
  const h = await start({ probe: ['liveness:tcp:127.0.0.1:1'] });
  await h.clock.advanceTo(100);
  h.signals.emit('SIGHUP', 'SIGHUP');
  await settle();
  assert.deepEqual(h.done_to_app, ['100 signal SIGHUP']);
  assert.ok(
    h.sent.some((s) => s.lines[0] === 'RELOADING=1' && s.lines[1]?.startsWith('MONOTONIC_USEC=')),
    sent(h),
  );
  await h.clock.advanceTo(2000);
  assert.ok(h.sent.filter((s) => s.lines.includes('READY=1')).length === 2, `READY=1 again after the reload:\n${sent(h)}`);
  assert.deepEqual(await h.stop(), { kind: 'code', code: 0 });
  assert.deepEqual(h.done_to_app.slice(1), ['2000 signal SIGTERM', '2000 signal SIGCONT']);
});
