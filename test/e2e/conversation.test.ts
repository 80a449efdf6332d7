/**
 * End-to-end scenarios for sdwrap's conversation with systemd beyond READY=1
 * and WATCHDOG=1: WATCHDOG=trigger (--on-unhealthy watchdog),
 * EXTEND_TIMEOUT_USEC= (a --start-period longer than TimeoutStartSec=) and
 * reloads (RELOADING=1 + MONOTONIC_USEC=, then READY=1).
 *
 * Runs in a container of its own, booted from the second cached root of the
 * harness: bookworm with systemd 254 from bookworm-backports
 * (ensureBackportsRootfs), because Type=notify-reload needs systemd 253+.
 * With SDWRAP_E2E_SYSTEMD=252 it boots the plain bookworm root instead, and
 * the reload scenario tests the 252 way (Type=notify + ExecReload=kill -HUP
 * $MAINPID).
 *
 * The manager runs at log level debug, so the unit's journal records every
 * sd_notify datagram as systemd parsed it ("Got notification message from PID
 * N (A=1, B=2)"): the tests check what sdwrap sent, not only its effects.
 *
 * Units are derived from units/sdwrap-example.service (same sandbox) by the
 * helpers in units.ts, shared with scenarios.test.ts. A failing scenario
 * appends `systemctl status`, `systemctl show` and the unit's journal to the
 * assertion message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Container, containerProblem, describeFailure, ensureBackportsRootfs, failIfProblem, skipUnlessCI, waitFor } from './harness.js';
import { assertDynamicUserRunsSdwrap, dump, FAST_PROBE, fixture, healthz, logged, portsFrom, unitHelpers } from './units.js';

/** The plain bookworm root (systemd 252) instead of the backports one. */
const PLAIN_ROOT = process.env.SDWRAP_E2E_SYSTEMD === '252';

const port = portsFrom(18300);

/** One sd_notify datagram as systemd logged it at debug level. */
interface Datagram {
  pid: number;
  text: string;
  has(assignment: string): boolean;
  get(key: string): string | undefined;
}

function parseDatagram(line: string): Datagram | undefined {
  // systemd prefixes its unit messages with "<unit>: " (journalctl -o cat shows the prefix).
  const m = /^(?:\S+: )?Got notification message from PID (\d+) \((.*)\)$/.exec(line);
  if (!m) return undefined;
  const text = m[2]!;
  // systemd joins the assignments with ", "; STATUS= texts may hold ", " too, so keys are found by
  // position: a key starts the text or follows ", " and is an upper-case name followed by "=".
  const starts = [...text.matchAll(/(?:^|, )([A-Z_]+)=/g)].map((x) => ({ key: x[1]!, at: x.index! + (x[0].startsWith(', ') ? 2 : 0) }));
  const fields = new Map<string, string>();
  starts.forEach((s, i) => {
    const end = i + 1 < starts.length ? starts[i + 1]!.at - 2 : text.length;
    fields.set(s.key, text.slice(s.at + s.key.length + 1, end));
  });
  return {
    pid: Number(m[1]),
    text,
    has: (a) => {
      const i = a.indexOf('=');
      return fields.get(a.slice(0, i)) === a.slice(i + 1);
    },
    get: (k) => fields.get(k),
  };
}

const problem = containerProblem();

describe(
  'sdwrap talking to systemd: WATCHDOG=trigger, EXTEND_TIMEOUT_USEC=, reloads (nspawn container)',
  { skip: skipUnlessCI(problem), timeout: 15 * 60_000 },
  () => {
    let c: Container;
    let systemdVersion = 0;
    const { scenario, start, waitShow, waitActive, waitRestarted, appPid, fixtureApps, waitHealthz, sdwrapLogs } = unitHelpers(() => c, {
      diagnostics,
    });

    before(
      async () => {
        failIfProblem(problem);
        const log = (m: string) => process.stderr.write(`# e2e: ${m}\n`);
        const root = PLAIN_ROOT ? undefined : await ensureBackportsRootfs(log);
        c = await Container.boot({ root, log });
        const v = await c.exec(['systemctl', '--version'], { check: true, timeoutMs: 10_000 });
        systemdVersion = Number(/^systemd (\d+)/.exec(v.stdout)?.[1] ?? 0);
        log(`container runs systemd ${systemdVersion}${PLAIN_ROOT ? ' (SDWRAP_E2E_SYSTEMD=252)' : ' (bookworm-backports)'}`);
        if (!PLAIN_ROOT) assert.ok(systemdVersion >= 253, `the backports root should run systemd >= 253, runs ${v.stdout.split('\n')[0]}`);
        await assertDynamicUserRunsSdwrap(c);
        // Every notification datagram goes to the journal (with its unit), as parsed by systemd.
        await c.exec(['systemd-analyze', 'log-level', 'debug'], { check: true, timeoutMs: 10_000 });
      },
      { timeout: 15 * 60_000 },
    );

    after(async () => {
      if (c) await c.shutdown();
    });

    /**
     * c.diagnostics(), with the journal's last 300 lines counted after dropping the sandbox set-up that a
     * debug-level manager logs for every process it forks ("(node)[123]: Bind-mounting ...").
     */
    async function diagnostics(unit: string): Promise<string> {
      const head = (await c.diagnostics(unit)).split(`--- journalctl -u ${unit}`)[0]!;
      const j = (await c.journal(unit, ['-n', '5000'])).split('\n').filter((l) => !/^\[\s*[\d.]+\] \S+ \([^)\s]+\)\[\d+\]: /.test(l));
      return `${head}--- journalctl -u ${unit} (last 300 lines, fork-time sandbox set-up left out)\n${j.slice(-300).join('\n')}`;
    }

    /** The unit's journal, with each notification datagram parsed where a line is one. */
    async function journalWithDatagrams(unit: string): Promise<Array<{ line: string; datagram: Datagram | undefined }>> {
      return (await c.journalMessages(unit)).map((line) => ({ line, datagram: parseDatagram(line) }));
    }

    async function datagrams(unit: string): Promise<Datagram[]> {
      return (await journalWithDatagrams(unit)).flatMap((x) => (x.datagram ? [x.datagram] : []));
    }

    // -------------------------------------------------------------------------
    // 6: --on-unhealthy watchdog
    // -------------------------------------------------------------------------
    it('6 --on-unhealthy watchdog: WATCHDOG=trigger, Result=watchdog, SIGABRT relayed, the unit comes back with nothing left', async (t) => {
      const p = port();
      await scenario(
        t,
        'conv-watchdog-trigger',
        {
          // --stop-timeout longer than systemd needs to act: the kill must come from systemd's watchdog action.
          sdwrap: ['--http', healthz(p), ...FAST_PROBE, '--on-unhealthy', 'watchdog', '--stop-timeout', '3s'],
          app: fixture(p),
          // Long enough to read Result=watchdog before the restart resets it.
          service: { RestartSec: '1s' },
        },
        async (unit) => {
          await start(unit);
          const before = await waitActive(unit);
          const oldApp = await appPid(unit);
          assert.equal(await c.httpGet(`http://127.0.0.1:${p}/control/fail`), 200);
          const t0 = Date.now();
          const failed = await waitShow(
            `${unit} to show Result=watchdog`,
            unit,
            ['Result', 'ActiveState', 'SubState', 'NRestarts'],
            (s) => s.Result === 'watchdog',
            15_000,
            50,
          );
          t.diagnostic(`Result=watchdog ${Date.now() - t0} ms after /control/fail: ${JSON.stringify(failed)}`);

          const back = await waitRestarted(unit, before, { props: ['ActiveState', 'SubState', 'NRestarts', 'MainPID', 'Result'] });
          t.diagnostic(`back ${Date.now() - t0} ms after /control/fail: ${JSON.stringify(back)}`);
          assert.notEqual(back.MainPID, before.MainPID);
          await waitHealthz(p);

          // sdwrap: the reason, the trigger, the relayed watchdog signal, the app's death by it.
          const logs = await sdwrapLogs(unit);
          const trigger = logged(logs, "unhealthy: triggering systemd's watchdog");
          assert.equal(trigger.length, 1, `sdwrap should log "unhealthy: triggering systemd's watchdog" once; it logged:\n${dump(logs)}`);
          const reason = String(trigger[0]!.reason ?? '');
          assert.ok(reason.includes(`GET ${healthz(p)}`) && reason.includes('HTTP 500'), `reason: ${reason}`);
          assert.ok(
            logged(logs, 'signal relayed').some((l) => l.signal === 'SIGABRT'),
            `sdwrap should relay systemd's WatchdogSignal= (SIGABRT) to the app; it logged:\n${dump(logs)}`,
          );
          assert.ok(
            logged(logs, 'child exited').some((l) => l.signal === 'SIGABRT'),
            `the app should die of the relayed SIGABRT; sdwrap logged:\n${dump(logs)}`,
          );
          assert.equal(
            logged(logs, 'stop timeout reached: killing the tree').length,
            0,
            "systemd's watchdog action should come before sdwrap's own deadline",
          );
          assert.equal(
            logged(logs, 'unhealthy: killing the child').length,
            0,
            'with --on-unhealthy watchdog sdwrap must not kill by itself',
          );

          // systemd: the datagram, the watchdog request with sdwrap's status, the result.
          const j = await c.journalMessages(unit);
          const sent = (await datagrams(unit)).filter((d) => d.has('WATCHDOG=trigger'));
          assert.equal(sent.length, 1, 'one WATCHDOG=trigger datagram');
          assert.match(sent[0]!.get('STATUS') ?? '', /^unhealthy, watchdog triggered: GET .*HTTP 500/);
          assert.ok(
            j.some((l) => /^(?:\S+: )?Watchdog request \(last status: unhealthy, watchdog triggered: GET .*HTTP 500.*\)!$/.test(l)),
            'systemd should log "Watchdog request (last status: unhealthy, watchdog triggered: ...)!"',
          );
          assert.ok(!j.some((l) => /Watchdog timeout/.test(l)), 'a request, not a missed ping');
          assert.ok(
            j.some((l) => /Failed with result 'watchdog'/.test(l)),
            'no "Failed with result \'watchdog\'"',
          );
          // The stop's first cause was the app's ill health: sdwrap exits 69, as when it kills by itself.
          assert.ok(
            j.some((l) => /Main process exited, code=exited, status=69/.test(l)),
            'sdwrap should exit 69 (unhealthy)',
          );

          // Nothing of the old tree: the old app is gone and the only app on the port is the new one.
          const apps = await fixtureApps(p);
          assert.ok(!apps.some((x) => x.pid === oldApp), `the old app (pid ${oldApp}) is still there: ${JSON.stringify(apps)}`);
          assert.equal(apps.length, 1, `exactly one app should run on port ${p}: ${JSON.stringify(apps)}`);
          const tree = await c.descendants(Number(back.MainPID));
          assert.ok(
            tree.some((x) => x.pid === apps[0]!.pid),
            `the running app should be the new sdwrap's child: ${JSON.stringify(tree)}`,
          );
        },
      );
    });

    // -------------------------------------------------------------------------
    // 7: a start period longer than TimeoutStartSec=
    // -------------------------------------------------------------------------
    /**
     * Shared by the slow start and its negative control: a failure threshold high enough
     * (100 x an interval of at least 100 ms) that sdwrap itself never gives up on the app
     * before TimeoutStartSec=3s, so only systemd's start timeout can end a start.
     */
    const slowProbe = (p: number) => ['--http', healthz(p), '--interval', '500ms', '--timeout', '300ms', '--failure-threshold', '100'];

    it('7 --start-period 20s > TimeoutStartSec=3s: EXTEND_TIMEOUT_USEC= keeps the start alive until the app is ready (~6 s)', async (t) => {
      const p = port();
      await scenario(
        t,
        'conv-slow-start',
        {
          sdwrap: [...slowProbe(p), '--start-period', '20s'],
          app: fixture(p, '--ready-after', '6000'),
          service: { TimeoutStartSec: '3s' },
        },
        async (unit) => {
          let finished = false;
          const starting = start(unit).finally(() => (finished = true));
          // What `systemctl show` says while the start runs.
          const samples: Array<{ at: number; state: string; status: string }> = [];
          const t0 = Date.now();
          while (!finished) {
            const s = await c.show(unit, ['ActiveState', 'StatusText']).catch(() => undefined);
            if (s) samples.push({ at: Date.now() - t0, state: s.ActiveState ?? '', status: s.StatusText ?? '' });
            await delay(100);
          }
          const took = await starting;
          const distinct = [...new Set(samples.map((s) => `${s.state}: ${s.status}`))];
          t.diagnostic(`systemctl start took ${Math.round(took)} ms; StatusText during the start: ${JSON.stringify(distinct)}`);
          assert.ok(took >= 5500, `systemctl start returned after ${Math.round(took)} ms, before the app was ready (6000 ms)`);
          assert.ok(took < 12_000, `systemctl start took ${Math.round(took)} ms`);
          assert.ok(
            samples.some((s) => s.at > 3500 && s.state === 'activating'),
            'the unit should still be activating past TimeoutStartSec=3s',
          );
          const s = await c.show(unit, ['ActiveState', 'SubState', 'Result', 'StatusText', 'NRestarts']);
          assert.equal(s.ActiveState, 'active');
          assert.equal(s.SubState, 'running');
          assert.equal(s.NRestarts, '0');
          assert.match(s.StatusText ?? '', /^healthy: /);

          const j = await journalWithDatagrams(unit);
          assert.ok(!j.some((x) => /start operation timed out/.test(x.line)), 'systemd timed the start out');
          const sent = j.flatMap((x) => (x.datagram ? [x.datagram] : []));
          const extends_ = sent.filter((d) => d.get('EXTEND_TIMEOUT_USEC') !== undefined);
          const readyAt = sent.findIndex((d) => d.has('READY=1'));
          t.diagnostic(
            `EXTEND_TIMEOUT_USEC= sent ${extends_.length} times: ${extends_.map((d) => d.get('EXTEND_TIMEOUT_USEC')).join(', ')}`,
          );
          assert.ok(extends_.length >= 1, 'sdwrap should send EXTEND_TIMEOUT_USEC=');
          assert.ok(sent.indexOf(extends_[0]!) < readyAt, 'EXTEND_TIMEOUT_USEC= must come before READY=1');
          // Each extension reaches past what is left of the start: the first one past the app's 6 s.
          assert.ok(
            Number(extends_[0]!.get('EXTEND_TIMEOUT_USEC')) > 6_000_000,
            `first extension: ${extends_[0]!.get('EXTEND_TIMEOUT_USEC')} us`,
          );
          // The start's STATUS= says the start timeout is extended.
          const statuses = sent.map((d) => d.get('STATUS')).filter((x): x is string => x !== undefined);
          assert.ok(
            statuses.some((x) => /^starting: waiting for GET .*\(start period 20s, start timeout extended\)$/.test(x)),
            `no STATUS=starting: ... (start period 20s, start timeout extended); sent: ${JSON.stringify(statuses)}`,
          );
          // What `systemctl status` shows for the rest of the start: every later STATUS= keeps the note.
          await t.test('StatusText keeps saying "start timeout extended)" while the start runs', () => {
            const late = samples.filter((x) => x.state === 'activating' && x.at > 1000);
            assert.ok(late.length > 0, 'no sample of StatusText past 1 s into the start');
            const without = late.filter((x) => !/start timeout extended\)/.test(x.status));
            assert.deepEqual(without, [], 'StatusText without "start timeout extended)" during the start');
          });
        },
      );
    });

    it('7 negative control: the same unit without --start-period fails with Result=timeout', async (t) => {
      const p = port();
      await scenario(
        t,
        'conv-slow-start-no-period',
        { sdwrap: slowProbe(p), app: fixture(p, '--ready-after', '6000'), service: { TimeoutStartSec: '3s', Restart: 'no' } },
        async (unit) => {
          const r = await c.systemctl(['start', unit], { timeoutMs: 40_000 });
          t.diagnostic(`systemctl start exited ${r.code} after ${Math.round(r.durationMs)} ms`);
          assert.notEqual(r.code, 0, 'the start should fail: the app is not ready within TimeoutStartSec=3s');
          assert.ok(r.durationMs >= 2800 && r.durationMs < 8000, `systemctl start took ${Math.round(r.durationMs)} ms`);
          const s = await waitShow(
            `${unit} to end failed`,
            unit,
            ['ActiveState', 'Result'],
            (s) => s.ActiveState === 'failed',
            10_000,
            100,
          );
          assert.equal(s.Result, 'timeout');
          const j = await journalWithDatagrams(unit);
          assert.ok(
            j.some((x) => /start operation timed out/.test(x.line)),
            'no "start operation timed out" in the journal',
          );
          assert.ok(!j.some((x) => x.datagram?.get('EXTEND_TIMEOUT_USEC') !== undefined), 'no EXTEND_TIMEOUT_USEC= without a start period');
          assert.ok(!j.some((x) => x.datagram?.has('READY=1')), 'never ready');
          assert.deepEqual(await fixtureApps(p), [], 'nothing left of the app');
        },
      );
    });

    // -------------------------------------------------------------------------
    // 8: reload
    // -------------------------------------------------------------------------
    it('8 reload: SIGHUP -> RELOADING=1 + MONOTONIC_USEC=, SIGHUP relayed, READY=1 once the probes pass again; same MainPID', async (t) => {
      const p = port();
      const notifyReload = systemdVersion >= 253;
      t.diagnostic(
        notifyReload
          ? `systemd ${systemdVersion}: Type=notify-reload (systemd sends SIGHUP and waits for READY=1)`
          : `systemd ${systemdVersion}: no Type=notify-reload; Type=notify + ExecReload=kill -HUP $MAINPID`,
      );
      await scenario(
        t,
        'conv-reload',
        {
          // Liveness on TCP, readiness on /healthz: a failing /healthz holds a reload without a restart.
          sdwrap: ['--probe', `liveness:tcp:127.0.0.1:${p}`, '--probe', `readiness:http:${healthz(p)}`, ...FAST_PROBE],
          app: fixture(p),
          service: notifyReload ? { Type: 'notify-reload' } : { Type: 'notify', ExecReload: '/bin/sh -c "kill -HUP ${MAINPID}"' }, // minbase has no /bin/kill
        },
        async (unit) => {
          await start(unit);
          const before = await waitActive(unit);
          const app = await appPid(unit);

          // A plain reload.
          const r = await c.systemctl(['reload', unit], { timeoutMs: 30_000 });
          assert.equal(r.code, 0, `systemctl reload failed:\n${describeFailure(r)}`);
          t.diagnostic(`systemctl reload took ${Math.round(r.durationMs)} ms`);
          await c.waitJournal(unit, /^fixture-server got SIGHUP$/, 5_000);
          const status = await waitFor(
            'StatusText to say healthy: reloaded',
            async () => {
              const s = await c.show(unit, ['StatusText']);
              return s.StatusText?.startsWith('healthy: reloaded, ') ? s.StatusText : undefined;
            },
            notifyReload ? 100 : 5_000, // notify-reload: already so when systemctl reload returns
            50,
          );
          t.diagnostic(`StatusText=${status}`);
          let logs = await sdwrapLogs(unit);
          assert.equal(logged(logs, 'reloading: SIGHUP relayed').length, 1, `sdwrap logged:\n${dump(logs)}`);
          assert.equal(logged(logs, 'reloaded').length, 1, `sdwrap logged:\n${dump(logs)}`);
          const j = await journalWithDatagrams(unit);
          const reloading = j.findIndex((x) => x.datagram?.has('RELOADING=1'));
          assert.ok(reloading >= 0, 'no RELOADING=1 datagram');
          const mono = j[reloading]!.datagram!.get('MONOTONIC_USEC');
          assert.ok(
            mono !== undefined && /^\d+$/.test(mono),
            `RELOADING=1 must carry MONOTONIC_USEC= in the same datagram: ${j[reloading]!.line}`,
          );
          const ready = j.findIndex((x, i) => i > reloading && x.datagram?.has('READY=1'));
          assert.ok(ready > reloading, 'no READY=1 after RELOADING=1');
          assert.match(j[ready]!.datagram!.get('STATUS') ?? '', /^healthy: reloaded, /);
          if (notifyReload) {
            // systemd ends the reload job on READY=1: its "Reloaded" line comes after the datagram.
            const done = j.findIndex((x) => /^Reloaded /.test(x.line) || /Job \d+ \S+\/reload finished/.test(x.line));
            assert.ok(done > ready, `systemd's "Reloaded ..." (line ${done}) should follow READY=1 (line ${ready})`);
          }

          let s = await c.show(unit, ['ActiveState', 'SubState', 'NRestarts', 'MainPID']);
          assert.equal(s.ActiveState, 'active');
          assert.equal(s.MainPID, before.MainPID, 'a reload must not replace sdwrap');
          assert.equal(s.NRestarts, before.NRestarts);
          assert.equal(await appPid(unit), app, 'a reload must not replace the app');

          if (!notifyReload) return; // with ExecReload=kill, systemctl reload does not wait for READY=1

          // A reload whose probes fail holds: `systemctl reload` returns only once /healthz passes again.
          assert.equal(await c.httpGet(`http://127.0.0.1:${p}/control/fail`), 200);
          await waitFor(
            'StatusText to say not ready',
            async () => ((await c.show(unit, ['StatusText'])).StatusText?.startsWith('not ready: ') ? true : undefined),
            10_000,
            100,
          );
          let settled = false;
          const t0 = Date.now();
          const held = c.systemctl(['reload', unit], { timeoutMs: 30_000 }).finally(() => (settled = true));
          await delay(2000);
          const mid = await c.show(unit, ['ActiveState', 'SubState', 'StatusText']);
          t.diagnostic(`2 s into a reload with /healthz failing: ${JSON.stringify(mid)}`);
          assert.equal(settled, false, 'systemctl reload returned while the readiness probe was failing');
          assert.equal(mid.ActiveState, 'reloading');
          assert.equal(await c.httpGet(`http://127.0.0.1:${p}/control/recover`), 200);
          const r2 = await held;
          const tookHeld = Date.now() - t0;
          t.diagnostic(`held reload returned ${tookHeld} ms after it began (recovered at ~2000 ms)`);
          assert.equal(r2.code, 0, `systemctl reload failed:\n${describeFailure(r2)}`);
          assert.ok(tookHeld >= 2000, `systemctl reload returned after ${tookHeld} ms`);
          s = await c.show(unit, ['ActiveState', 'NRestarts', 'MainPID', 'StatusText']);
          assert.equal(s.ActiveState, 'active');
          assert.match(s.StatusText ?? '', /^healthy: reloaded, /);
          assert.equal(s.MainPID, before.MainPID);
          assert.equal(s.NRestarts, before.NRestarts);
          logs = await sdwrapLogs(unit);
          assert.equal(logged(logs, 'reloaded').length, 2, `sdwrap logged:\n${dump(logs)}`);
          assert.equal(await appPid(unit), app);
        },
      );
    });
  },
);
