/**
 * Chaos soak: `npm run soak -- --minutes N [--seed S]`. Boots the e2e suite's systemd (harness.ts), runs one
 * unit derived from the shipped example (units.ts: sdwrap probing the fixture app), and for N minutes injects
 * faults at random (seeded; the seed is printed, `--seed` replays a run):
 *
 *   hang        SIGSTOP of the app: sdwrap's liveness probe fails, it kills the tree and exits 69
 *   sigkill     SIGKILL of the app          sigsegv   SIGSEGV of the app
 *   slow-start  a restart into an app that gets ready only after the start period: sdwrap gives up on it
 *   deaf-stop   a restart of an app that ignores SIGTERM: sdwrap SIGKILLs it after --stop-timeout
 *   stall       SIGSTOP of sdwrap itself: systemd's watchdog (WatchdogSec=) must act
 *   reload      systemctl reload (SIGHUP relayed, same app)   restart   systemctl restart
 *
 * After each fault, within the fault's bound: the unit is active and healthy again with exactly one app
 * process, nothing of the old tree is left, and the journal explains the fault in sdwrap's words (systemd's
 * for the stall). It prints a table (faults by kind, recovery median and worst against the bound, leftovers)
 * and exits 1 when a bound or a leftover check failed, 2 when the container cannot run here.
 */
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { Container, containerProblem, describeFailure, type ContainerProcess } from './harness.js';
import { assertDynamicUserRunsSdwrap, FAST_PROBE, fixture, httpProbe, makeUnit, WATCHDOG_SEC } from './units.js';

const KINDS = ['hang', 'sigkill', 'sigsegv', 'slow-start', 'deaf-stop', 'stall', 'reload', 'restart'] as const;
type Kind = (typeof KINDS)[number];

const START_PERIOD_MS = 3000;
const STOP_TIMEOUT_MS = 1000;

/**
 * How long each fault may take, from injection to a healthy unit with one app: detection (3 failed probes at
 * 500 ms, or the start period, or WatchdogSec=), the stop (--stop-timeout), RestartSec=200ms and a new start
 * (about 1 s for node and the fixture inside the container), with margin for a loaded 2-core machine.
 */
const BOUND_MS: Record<Kind, number> = {
  hang: 12_000,
  sigkill: 8_000,
  sigsegv: 8_000,
  'slow-start': START_PERIOD_MS + 14_000,
  'deaf-stop': STOP_TIMEOUT_MS + 8_000,
  stall: WATCHDOG_SEC * 1000 + 12_000,
  reload: 8_000,
  restart: 8_000,
};

/** What the journal must say after each fault: sdwrap's JSON lines, or systemd's own for the stall. */
const EXPLAINED: Record<Kind, { sdwrap?: RegExp; systemd?: RegExp }> = {
  hang: { sdwrap: /^unhealthy: / },
  sigkill: { sdwrap: /^child exited$/ },
  sigsegv: { sdwrap: /^child exited$/ },
  'slow-start': { sdwrap: /^unhealthy: / },
  'deaf-stop': { sdwrap: /^stop timeout reached: killing the tree$/ },
  stall: { systemd: /Watchdog timeout/ },
  reload: { sdwrap: /^reloading: SIGHUP relayed$/ },
  restart: { sdwrap: /^child exited$/ },
};
/** Extra fields an explaining line must carry (the signal the app died of). */
const EXPLAINED_FIELDS: Partial<Record<Kind, Record<string, unknown>>> = {
  sigkill: { signal: 'SIGKILL' },
  sigsegv: { signal: 'SIGSEGV' },
  'slow-start': {},
};

const PORT = 18950;
const UNIT = 'sdwrap-soak.service';
const ARGS_FILE = '/run/sdwrap-soak/args';

interface Result {
  kind: Kind;
  recoveredMs: number | undefined;
  leftovers: number;
  explained: boolean;
  note: string;
}

/** mulberry32: a small seeded generator, so a run can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '3' }, seed: { type: 'string' } } });
const minutes = Number(values.minutes);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!(minutes > 0) || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run soak -- --minutes N [--seed S]');
  process.exit(2);
}

const problem = containerProblem();
if (problem) {
  console.error(`soak: cannot run here: ${problem}`);
  process.exit(2);
}

const say = (line: string) => process.stdout.write(`${line}\n`);
say(`soak: seed ${seed}, ${minutes} min (replay with: npm run soak -- --minutes ${minutes} --seed ${seed})`);
const next = random(seed);
const c = await Container.boot({ log: (m) => say(`soak: ${m}`) });
const results: Result[] = [];
try {
  await assertDynamicUserRunsSdwrap(c);
  await c.sh(`mkdir -p /run/sdwrap-soak && chmod 755 /run/sdwrap-soak && rm -f ${ARGS_FILE}`, { check: true });
  const sdwrap = [...httpProbe(PORT), ...FAST_PROBE, '--start-period', `${START_PERIOD_MS}ms`, '--stop-timeout', `${STOP_TIMEOUT_MS}ms`];
  await c.installUnit(
    UNIT,
    makeUnit('sdwrap-soak', {
      sdwrap,
      app: fixture(PORT, '--args-from', ARGS_FILE),
      // No start limit: the soak restarts the unit hundreds of times on purpose.
      unit: { StartLimitIntervalSec: '0' },
      service: { ExecReload: '/bin/sh -c "kill -HUP ${MAINPID}"', TimeoutStartSec: '30s' },
    }),
  );
  const started = await c.systemctl(['start', UNIT], { timeoutMs: 40_000 });
  if (started.code !== 0) throw new Error(`systemctl start failed:\n${describeFailure(started)}`);
  await waitHealthy(undefined, 15_000);

  const end = Date.now() + minutes * 60_000;
  while (Date.now() < end) {
    const kind = KINDS[Math.floor(next() * KINDS.length)]!;
    const result = await inject(kind);
    results.push(result);
    say(
      `soak: ${String(results.length).padStart(3)} ${kind.padEnd(10)} ${result.recoveredMs === undefined ? 'NOT RECOVERED' : `${result.recoveredMs} ms`}` +
        `${result.leftovers ? `, ${result.leftovers} left over` : ''}${result.explained ? '' : ', NOT EXPLAINED in the journal'}${result.note ? ` (${result.note})` : ''}`,
    );
    if (result.recoveredMs === undefined) {
      // The unit did not come back: say why, and put it back for the next fault.
      say((await c.diagnostics(UNIT)).split('\n').slice(-60).join('\n'));
      await c.systemctl(['reset-failed', UNIT], { timeoutMs: 10_000 });
      await c.systemctl(['restart', UNIT], { timeoutMs: 40_000 });
      await waitHealthy(undefined, 20_000).catch(() => undefined);
    }
    // A healthy stretch between faults, random in 0.5-2 s.
    await delay(500 + Math.floor(next() * 1500));
  }
} finally {
  await c.cleanupUnit(UNIT).catch(() => {});
  await c.shutdown();
}

const failed = printTable(results);
process.exit(failed ? 1 : 0);

interface UnitState {
  mainPid: number;
  app: ContainerProcess;
}

/** The unit's state once it is active, healthy (StatusText) and has exactly one app process under its MainPID. */
async function healthyState(): Promise<UnitState | undefined> {
  const s = await c.show(UNIT, ['ActiveState', 'SubState', 'MainPID', 'StatusText']);
  if (s.ActiveState !== 'active' || s.SubState !== 'running' || !s.StatusText?.startsWith('healthy')) return undefined;
  const mainPid = Number(s.MainPID);
  const apps = await appProcesses();
  if (apps.length !== 1 || apps[0]!.ppid !== mainPid) return undefined;
  return { mainPid, app: apps[0]! };
}

/** Processes running the fixture app on the soak's port (sdwrap's own command line names it too: not counted). */
async function appProcesses(): Promise<ContainerProcess[]> {
  const argv = fixture(PORT).join(' ');
  return (await c.processes()).filter((p) => p.cmdline.startsWith(`${argv} `) || p.cmdline === argv);
}

async function waitHealthy(changedFrom: UnitState | undefined, timeoutMs: number): Promise<UnitState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await healthyState().catch(() => undefined);
    if (state && (!changedFrom || (state.mainPid !== changedFrom.mainPid && state.app.pid !== changedFrom.app.pid))) return state;
    if (Date.now() > deadline) throw new Error(`${UNIT} not healthy with one app within ${timeoutMs} ms`);
    await delay(100);
  }
}

async function journalLength(): Promise<number> {
  return (await c.journalMessages(UNIT)).length;
}

/** Injects one fault and measures the recovery. */
async function inject(kind: Kind): Promise<Result> {
  let before = await waitHealthy(undefined, 20_000);
  let note = '';
  if (kind === 'deaf-stop') {
    // Set-up, not timed: a restart into an app that ignores SIGTERM.
    await c.sh(`echo --ignore-term > ${ARGS_FILE}`, { check: true });
    await c.systemctl(['restart', UNIT], { timeoutMs: 40_000 });
    before = await waitHealthy(before, 20_000);
    await c.sh(`rm -f ${ARGS_FILE}`, { check: true });
  }
  const journalFrom = await journalLength();
  const t0 = Date.now();
  switch (kind) {
    case 'hang':
      await c.kill(before.app.pid, 'STOP');
      break;
    case 'sigkill':
      await c.kill(before.app.pid, 'KILL');
      break;
    case 'sigsegv':
      await c.kill(before.app.pid, 'SEGV');
      break;
    case 'stall':
      await c.kill(before.mainPid, 'STOP');
      break;
    case 'slow-start': {
      // The next app gets ready only long after the start period; the one after it is normal again.
      await c.sh(`echo --ready-after ${START_PERIOD_MS + 60_000} > ${ARGS_FILE}`, { check: true });
      await c.systemctl(['restart', '--no-block', UNIT], { timeoutMs: 10_000 });
      // Only once the new app has read the file (it says so when it listens) is the file taken away.
      const listening = new RegExp(`^fixture-server listening port=${PORT} pid=(\\d+)`);
      const deadline = Date.now() + 10_000;
      const readIt = async () =>
        (await c.journalMessages(UNIT)).slice(journalFrom).some((l) => Number(listening.exec(l)?.[1] ?? before.app.pid) !== before.app.pid);
      while (Date.now() < deadline && !(await readIt())) await delay(50);
      await c.sh(`rm -f ${ARGS_FILE}`, { check: true });
      break;
    }
    case 'deaf-stop':
    case 'restart':
      await c.systemctl(['restart', '--no-block', UNIT], { timeoutMs: 10_000 });
      break;
    case 'reload': {
      const r = await c.systemctl(['reload', UNIT], { timeoutMs: 30_000 });
      if (r.code !== 0) note = `systemctl reload exited ${r.code}`;
      break;
    }
  }
  const bound = BOUND_MS[kind];
  let recoveredMs: number | undefined;
  let after: UnitState | undefined;
  try {
    if (kind === 'reload') {
      // The same app and sdwrap, healthy again.
      after = await waitHealthy(undefined, bound * 2);
      if (after.mainPid !== before.mainPid || after.app.pid !== before.app.pid) note ||= 'the reload restarted the app';
    } else {
      after = await waitHealthy(before, bound * 2);
    }
    recoveredMs = Date.now() - t0;
  } catch {
    recoveredMs = undefined;
  }
  // Leftovers: any process of the old tree still there, and app processes beyond the one.
  let leftovers = 0;
  if (kind !== 'reload') {
    const alive = new Set((await c.processes()).map((p) => p.pid));
    leftovers += [before.mainPid, before.app.pid].filter((pid) => alive.has(pid)).length;
  }
  leftovers += Math.max(0, (await appProcesses()).length - 1);
  const explained = await explainedInJournal(kind, journalFrom);
  if (recoveredMs !== undefined && recoveredMs > bound) note ||= `over the ${bound} ms bound`;
  return { kind, recoveredMs, leftovers, explained, note };
}

/** Whether the journal lines since the fault explain it (in sdwrap's JSON lines, or systemd's for the stall). */
async function explainedInJournal(kind: Kind, from: number): Promise<boolean> {
  const want = EXPLAINED[kind];
  const fields = EXPLAINED_FIELDS[kind] ?? {};
  // journald may take a moment to have written the last lines.
  for (let attempt = 0; attempt < 20; attempt++) {
    const lines = (await c.journalMessages(UNIT)).slice(from);
    if (want.systemd && lines.some((l) => want.systemd!.test(l))) return true;
    if (want.sdwrap) {
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        try {
          const log = JSON.parse(line) as Record<string, unknown>;
          if (want.sdwrap.test(String(log.msg)) && Object.entries(fields).every(([k, v]) => log[k] === v)) return true;
        } catch {
          // not sdwrap's
        }
      }
    }
    await delay(250);
  }
  return false;
}

/** Prints the table; true when a bound, a leftover or an explanation check failed. */
function printTable(all: Result[]): boolean {
  const rows = [['fault', 'count', 'median ms', 'worst ms', 'bound ms', 'leftovers', 'unexplained', 'verdict']];
  let failed = all.length === 0;
  for (const kind of KINDS) {
    const of = all.filter((r) => r.kind === kind);
    if (of.length === 0) continue;
    const times = of.map((r) => r.recoveredMs ?? Infinity).sort((a, b) => a - b);
    const median = times[Math.floor((times.length - 1) / 2)]!;
    const worst = times[times.length - 1]!;
    const leftovers = of.reduce((n, r) => n + r.leftovers, 0);
    const unexplained = of.filter((r) => !r.explained).length;
    const ok = worst <= BOUND_MS[kind] && leftovers === 0 && unexplained === 0;
    failed ||= !ok;
    const show = (ms: number) => (Number.isFinite(ms) ? String(ms) : 'never');
    rows.push([
      kind,
      String(of.length),
      show(median),
      show(worst),
      String(BOUND_MS[kind]),
      String(leftovers),
      String(unexplained),
      ok ? 'ok' : 'FAIL',
    ]);
  }
  rows.push(['all', String(all.length), '', '', '', String(all.reduce((n, r) => n + r.leftovers, 0)), '', failed ? 'FAIL' : 'ok']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  say('');
  say(`soak: seed ${seed}, ${minutes} min, ${all.length} faults`);
  for (const [i, row] of rows.entries()) {
    say(`| ${row.map((cell, j) => cell.padEnd(widths[j]!)).join(' | ')} |`);
    if (i === 0) say(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
  }
  return failed;
}
