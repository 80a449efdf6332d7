/**
 * End-to-end scenarios: sdwrap under a real systemd (PID 1 of a
 * systemd-nspawn container, booted once for this file; see harness.ts).
 *
 * Every test unit is derived from the shipped units/sdwrap-example.service
 * (makeUnit() in units.ts, with the helpers shared with conversation.test.ts), so
 * it runs with the same sandbox (DynamicUser=, ProtectSystem=strict,
 * PrivateUsers=, SystemCallFilter=...). Only ExecStart= and the timings change:
 * sdwrap and the fixture app come from the repository bound read-only at
 * /opt/sdwrap (world-readable, so the dynamic user can read it), run by the
 * host's node bound at /usr/bin/node. Timings are short (WatchdogSec=3s,
 * probes every 500 ms) to keep the suite fast.
 *
 * A failing scenario appends `systemctl status`, `systemctl show` and
 * `journalctl -u` of its unit to the assertion message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Container, containerProblem, failIfProblem, skipUnlessCI, waitFor } from './harness.js';
import {
  assertDynamicUserRunsSdwrap,
  dump,
  FAST_PROBE,
  fixture,
  httpProbe,
  portsFrom,
  TIMEOUT_STOP_SEC,
  unitHelpers,
  WATCHDOG_SEC,
} from './units.js';

const NOTIFIERS = ['native', 'systemd-notify'] as const;

const port = portsFrom(18100);

const problem = containerProblem();

describe('sdwrap under systemd (nspawn container)', { skip: skipUnlessCI(problem), timeout: 15 * 60_000 }, () => {
  let c: Container;
  const { scenario, start, stop, waitShow, waitActive, waitRestarted, appPid, assertNothingLeft, sdwrapLogs } = unitHelpers(() => c);

  before(
    async () => {
      failIfProblem(problem);
      c = await Container.boot({ log: (m) => process.stderr.write(`# e2e: ${m}\n`) });
      // Preflight: the test units run as a DynamicUser=, which must be able to read
      // the bound checkout (a clone made under umask 077 cannot) and its build.
      await assertDynamicUserRunsSdwrap(c);
    },
    { timeout: 15 * 60_000 }, // a fresh machine debootstraps first (~1 min)
  );

  after(async () => {
    if (c) await c.shutdown();
  });

  /** 7a, 7b: the unit ends failed with the app's exit status 7. */
  async function assertExited7(t: TestContext, unit: string): Promise<void> {
    const s = await waitShow(
      `${unit} to fail`,
      unit,
      ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus'],
      (s) => s.ActiveState === 'failed',
      15_000,
      100,
    );
    t.diagnostic(JSON.stringify(s));
    assert.equal(s.ExecMainCode, '1', 'CLD_EXITED');
    assert.equal(s.ExecMainStatus, '7');
    assert.equal(s.Result, 'exit-code');
  }

  // -------------------------------------------------------------------------
  // 1-3, for both notifier paths (9)
  // -------------------------------------------------------------------------
  for (const notifier of NOTIFIERS) {
    const tag = notifier === 'native' ? 'native' : 'sdnotify';

    it(`1 readiness gate: systemctl start returns once the app is healthy (--notifier ${notifier})`, async (t) => {
      const p = port();
      await scenario(
        t,
        `e2e-ready-${tag}`,
        {
          sdwrap: [...httpProbe(p), ...FAST_PROBE, '--start-period', '15s', '--notifier', notifier],
          app: fixture(p, '--ready-after', '3000'),
        },
        async (unit) => {
          const starting = start(unit);
          // Half-way through, systemd must still be waiting for READY=1.
          await delay(1500);
          const mid = await c.show(unit, ['ActiveState', 'SubState', 'StatusText']);
          const took = await starting;
          t.diagnostic(`systemctl start took ${Math.round(took)} ms (app ready after 3000 ms); at 1.5 s: ${JSON.stringify(mid)}`);
          assert.equal(mid.ActiveState, 'activating', 'the unit must stay activating until the probe passes');
          assert.ok(took >= 2900, `systemctl start returned after ${Math.round(took)} ms, before the app was healthy (3000 ms)`);
          assert.ok(took < 10_000, `systemctl start took ${Math.round(took)} ms`);
          const s = await c.show(unit, ['ActiveState', 'SubState', 'StatusText', 'Type', 'NotifyAccess']);
          t.diagnostic(`StatusText=${s.StatusText}`);
          assert.equal(s.ActiveState, 'active');
          assert.equal(s.SubState, 'running');
          assert.equal(s.Type, 'notify');
          assert.notEqual(s.StatusText ?? '', '', 'sdwrap should have sent a STATUS= line');
          assert.equal(await c.httpGet(`http://127.0.0.1:${p}/healthz`), 200);
        },
      );
    });

    it(`2 hung app (SIGSTOP): sdwrap kills it, exits 69, the unit restarts (--notifier ${notifier})`, async (t) => {
      const p = port();
      await scenario(
        t,
        `e2e-hung-${tag}`,
        { sdwrap: [...httpProbe(p), ...FAST_PROBE, '--stop-timeout', '1s', '--notifier', notifier], app: fixture(p) },
        async (unit) => {
          await start(unit);
          const before = await waitActive(unit);
          const app = await appPid(unit);
          await c.kill(app, 'STOP');
          const t0 = Date.now();
          const after = await waitRestarted(unit, before);
          t.diagnostic(`back after ${Date.now() - t0} ms; NRestarts ${before.NRestarts} -> ${after.NRestarts}`);
          const logs = await sdwrapLogs(unit);
          const reason = logs.find((l) => /unhealthy/i.test(String(l.msg ?? '')));
          assert.ok(reason, `no sdwrap log line with "unhealthy" in its msg; sdwrap logged:\n${dump(logs)}`);
          t.diagnostic(`sdwrap: ${JSON.stringify(reason)}`);
          const journal = await c.journalMessages(unit);
          assert.ok(
            journal.some((l) => /Main process exited, code=exited, status=69/.test(l)),
            'systemd should record sdwrap exiting 69 (liveness failure), not a watchdog kill',
          );
          assert.ok(!journal.some((l) => /Watchdog timeout/.test(l)), 'the watchdog should not have been needed');
          assert.notEqual(after.MainPID, before.MainPID);
          const stopped = (await c.processes()).find((x) => x.pid === app);
          assert.equal(stopped, undefined, `the stopped app (pid ${app}) is still there: ${JSON.stringify(stopped)}`);
          assert.equal(
            await waitFor(
              'healthz 200',
              async () => ((await c.httpGet(`http://127.0.0.1:${p}/healthz`)) === 200 ? 200 : undefined),
              10_000,
              200,
            ),
            200,
          );
        },
      );
    });

    it(`3 backstop: SIGSTOP sdwrap itself, systemd's watchdog fires and the unit comes back (--notifier ${notifier})`, async (t) => {
      const p = port();
      await scenario(
        t,
        `e2e-watchdog-${tag}`,
        { sdwrap: [...httpProbe(p), ...FAST_PROBE, '--stop-timeout', '1s', '--notifier', notifier], app: fixture(p) },
        async (unit) => {
          await start(unit);
          const before = await waitActive(unit);
          // Let a few WATCHDOG=1 pings through first: the watchdog must be armed and fed.
          await delay(WATCHDOG_SEC * 1000 + 500);
          assert.equal(
            (await c.show(unit, ['NRestarts'])).NRestarts,
            before.NRestarts,
            'the unit restarted although healthy: pings are not reaching systemd?',
          );
          await c.kill(Number(before.MainPID), 'STOP');
          const t0 = Date.now();
          await c.waitJournal(unit, /Watchdog timeout/, (WATCHDOG_SEC + 10) * 1000);
          t.diagnostic(`watchdog fired ${Date.now() - t0} ms after SIGSTOP (WatchdogSec=${WATCHDOG_SEC}s)`);
          await c.waitJournal(unit, /Failed with result 'watchdog'/, 15_000);
          const after = await waitRestarted(unit, before, { what: `${unit} to come back` });
          assert.notEqual(after.MainPID, before.MainPID);
          assert.equal(
            await waitFor(
              'healthz 200',
              async () => ((await c.httpGet(`http://127.0.0.1:${p}/healthz`)) === 200 ? 200 : undefined),
              10_000,
              200,
            ),
            200,
          );
        },
      );
    });
  }

  it('2b hung app (event loop busy, ignores SIGTERM): killed after --stop-timeout and restarted', async (t) => {
    const p = port();
    await scenario(t, 'e2e-busy', { sdwrap: [...httpProbe(p), ...FAST_PROBE, '--stop-timeout', '1s'], app: fixture(p) }, async (unit) => {
      await start(unit);
      const before = await waitActive(unit);
      assert.equal(await c.httpGet(`http://127.0.0.1:${p}/control/hang`), 200);
      const after = await waitRestarted(unit, before, { what: `${unit} to restart` });
      t.diagnostic(`NRestarts ${before.NRestarts} -> ${after.NRestarts}`);
      const journal = await c.journalMessages(unit);
      assert.ok(
        journal.some((l) => /Main process exited, code=exited, status=69/.test(l)),
        'sdwrap should exit 69',
      );
      assert.ok(!journal.some((l) => /Watchdog timeout/.test(l)), 'the watchdog should not have been needed');
      assert.equal(
        await waitFor(
          'healthz 200',
          async () => ((await c.httpGet(`http://127.0.0.1:${p}/healthz`)) === 200 ? 200 : undefined),
          10_000,
          200,
        ),
        200,
      );
    });
  });

  // -------------------------------------------------------------------------
  // 4, 5: stopping
  // -------------------------------------------------------------------------
  it('4 graceful stop: the app gets SIGTERM and its drain time; inactive, Result=success, nothing left', async (t) => {
    const p = port();
    await scenario(
      t,
      'e2e-drain',
      { sdwrap: [...httpProbe(p), ...FAST_PROBE, '--stop-timeout', '8s'], app: fixture(p, '--drain-ms', '1500') },
      async (unit) => {
        await start(unit);
        await waitActive(unit);
        const took = await stop(unit);
        t.diagnostic(`systemctl stop took ${Math.round(took)} ms (drain 1500 ms)`);
        const s = await c.show(unit, ['ActiveState', 'SubState', 'Result', 'ExecMainCode', 'ExecMainStatus']);
        assert.equal(s.ActiveState, 'inactive');
        assert.equal(s.Result, 'success');
        const j = await c.journalMessages(unit);
        const term = j.findIndex((l) => l.includes('fixture-server got SIGTERM'));
        const drained = j.findIndex((l) => l.includes('fixture-server drained'));
        assert.ok(term >= 0, 'the app never got SIGTERM');
        assert.ok(drained > term, 'the app did not finish draining');
        assert.ok(took >= 1400, `stop took ${Math.round(took)} ms: the drain (1500 ms) was cut short`);
        assert.ok(took < 8000, `stop took ${Math.round(took)} ms: the app was not released after draining`);
        await assertNothingLeft(`--port ${p}`);
      },
    );
  });

  it(`5 an app that ignores SIGTERM is SIGKILLed after --stop-timeout, well inside TimeoutStopSec=${TIMEOUT_STOP_SEC}s`, async (t) => {
    const p = port();
    await scenario(
      t,
      'e2e-ignore-term',
      { sdwrap: [...httpProbe(p), ...FAST_PROBE, '--stop-timeout', '1s'], app: fixture(p, '--ignore-term') },
      async (unit) => {
        await start(unit);
        await waitActive(unit);
        const took = await stop(unit);
        const s = await c.show(unit, ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus']);
        t.diagnostic(`systemctl stop took ${Math.round(took)} ms; ${JSON.stringify(s)}`);
        const j = await c.journalMessages(unit);
        assert.ok(
          j.some((l) => l.includes('fixture-server got SIGTERM')),
          'the app never got SIGTERM',
        );
        assert.ok(took >= 900, `stop took ${Math.round(took)} ms, less than --stop-timeout 1s`);
        assert.ok(took < 6000, `stop took ${Math.round(took)} ms: sdwrap did not SIGKILL the app after --stop-timeout 1s`);
        assert.ok(
          !j.some((l) => /State 'stop-sigterm' timed out|stop-final-sigterm' timed out/.test(l)),
          'systemd had to time out the stop',
        );
        // sdwrap's own escalation ends the requested stop: it exits by SIGTERM, so the stop is clean.
        assert.equal(s.ActiveState, 'inactive', JSON.stringify(s));
        assert.equal(s.Result, 'success', JSON.stringify(s));
        assert.ok(
          j.some((l) => l.includes('stop timeout reached: killing the tree')),
          'the escalation is in the journal',
        );
        await assertNothingLeft(`--port ${p}`);
      },
    );
  });

  // -------------------------------------------------------------------------
  // 6, 7: exits
  // -------------------------------------------------------------------------
  it('6 an app that crashes at start: restarts are counted and StartLimitBurst= ends in failed (start limit hit)', async (t) => {
    const p = port();
    const burst = 3;
    await scenario(
      t,
      'e2e-crashloop',
      {
        sdwrap: [...httpProbe(p), ...FAST_PROBE, '--start-period', '10s'],
        app: fixture(p, '--ready-after', '60000', '--crash-after', '300', '--exit-code', '3'),
        unit: { StartLimitIntervalSec: '60s', StartLimitBurst: String(burst) },
      },
      async (unit) => {
        const r = await c.systemctl(['start', unit], { timeoutMs: 30_000 });
        assert.notEqual(r.code, 0, 'the first start should fail: the app exits before it is healthy');
        // systemd 252 (Debian bookworm) keeps the Result of the last run (exit-code)
        // when an automatic restart hits the limit; the journal line says it.
        await c.waitJournal(unit, /Start request repeated too quickly/, 30_000);
        const s = await waitShow(
          `${unit} to end failed`,
          unit,
          ['ActiveState', 'Result', 'NRestarts', 'ExecMainStatus'],
          (s) => s.ActiveState === 'failed',
          10_000,
          200,
        );
        assert.ok(['start-limit-hit', 'exit-code'].includes(s.Result ?? ''), `Result=${s.Result}`);
        const j = await c.journalMessages(unit);
        const launches = j.filter((l) => l.includes('fixture-server listening')).length;
        const exits = j.filter((l) => /Main process exited, code=exited, status=3/.test(l)).length;
        t.diagnostic(`${JSON.stringify(s)}; app launched ${launches} times; sdwrap exited 3 ${exits} times`);
        assert.equal(exits, burst, `sdwrap should exit 3 (the app's code) on each of the ${burst} allowed starts`);
        assert.ok(launches <= burst, `the app ran ${launches} times, more than StartLimitBurst=${burst}`);
        assert.ok(Number(s.NRestarts) >= burst - 1 && Number(s.NRestarts) <= burst, `NRestarts=${s.NRestarts}`);
        await delay(1000);
        assert.equal((await c.show(unit, ['ActiveState'])).ActiveState, 'failed', 'the unit must stay failed');
        // A manual start inside the window is refused without running anything.
        const again = await c.systemctl(['start', unit], { timeoutMs: 30_000 });
        const s2 = await c.show(unit, ['ActiveState', 'Result']);
        t.diagnostic(`manual start: exit ${again.code} after ${Math.round(again.durationMs)} ms; ${JSON.stringify(s2)}`);
        assert.notEqual(again.code, 0, 'a start past StartLimitBurst= must be refused');
        assert.equal(s2.ActiveState, 'failed');
        assert.ok(['start-limit-hit', 'exit-code'].includes(s2.Result ?? ''), `Result=${s2.Result}`);
        const launchesAfter = (await c.journalMessages(unit)).filter((l) => l.includes('fixture-server listening')).length;
        assert.equal(launchesAfter, launches, 'the refused start must not run the app');
      },
    );
  });

  it('7a the app exits 7 on its own (no probe): ExecMainStatus=7', async (t) => {
    const p = port();
    await scenario(
      t,
      'e2e-exit7',
      { sdwrap: [], app: fixture(p, '--crash-after', '1500', '--exit-code', '7'), service: { Restart: 'no' } },
      async (unit) => {
        await start(unit);
        await assertExited7(t, unit);
      },
    );
  });

  it('7b the app exits 7 on its own after it was ready (with a probe): ExecMainStatus=7', async (t) => {
    const p = port();
    await scenario(
      t,
      'e2e-exit7-probe',
      { sdwrap: [...httpProbe(p), ...FAST_PROBE], app: fixture(p), service: { Restart: 'no' } },
      async (unit) => {
        await start(unit);
        await waitActive(unit);
        assert.equal(await c.httpGet(`http://127.0.0.1:${p}/control/exit?code=7`), 200);
        await assertExited7(t, unit);
      },
    );
  });

  // -------------------------------------------------------------------------
  // 8: no probe
  // -------------------------------------------------------------------------
  it('8 no probe, notify-unaware app (sleep): Type=notify unit is active right after start; stop is clean', async (t) => {
    await scenario(t, 'e2e-noprobe', { sdwrap: [], app: ['/bin/sleep', '1000'] }, async (unit) => {
      const took = await start(unit);
      const s = await c.show(unit, ['ActiveState', 'SubState', 'Type', 'StatusText']);
      t.diagnostic(`systemctl start took ${Math.round(took)} ms; ${JSON.stringify(s)}`);
      assert.equal(s.Type, 'notify');
      assert.equal(s.ActiveState, 'active');
      assert.equal(s.SubState, 'running');
      assert.ok(took < 5000, `start took ${Math.round(took)} ms`);
      await stop(unit);
      const e = await c.show(unit, ['ActiveState', 'Result']);
      assert.equal(e.ActiveState, 'inactive');
      assert.equal(e.Result, 'success', 'sleep dies of SIGTERM; sdwrap re-raises it, which systemd counts as a clean stop');
      await assertNothingLeft('/bin/sleep 1000');
    });
  });
});
