/**
 * End-to-end: units written by `sdwrap unit`, and `systemctl reload` through `sdwrap reload`.
 *
 * On the host (systemd-analyze, no container): a generated unit passes `systemd-analyze verify` (system
 * and --user flavours, and with the options that relax the sandbox) and rates 1.5 or lower in
 * `systemd-analyze security --offline=true`.
 *
 * In a booted container running Debian bookworm's systemd 252, which has no Type=notify-reload, so
 * `sdwrap unit` picks Type=notify with ExecReload=sdwrap reload: a generated unit for the fixture app
 * starts, becomes active only once the app answers, is restarted after a hang, and stops cleanly;
 * `systemctl reload` returns only once the new config is served, 20 reloads in 20 (the fixture serves a
 * new /version only some time after SIGHUP; a negative control shows that ExecReload=kill -HUP misses
 * it); and a reload fails, with its reason in the journal, when the app does not come back healthy.
 *
 * Units are generated inside the container, by the sdwrap bound at /opt/sdwrap, so ExecStart= names
 * what the container has (/usr/bin/node, /opt/sdwrap/bin/sdwrap.js).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  analyzeProblem,
  Container,
  containerProblem,
  describeFailure,
  failIfProblem,
  IN_CONTAINER_NODE,
  IN_CONTAINER_SDWRAP,
  REPO_ROOT,
  run,
  skipUnlessCI,
  waitFor,
} from './harness.js';
import { assertDynamicUserRunsSdwrap, dump, FAST_PROBE, fixture, healthz, logged, portsFrom, unitHelpers } from './units.js';

const port = portsFrom(18500);
const SDWRAP_HOST = path.join(REPO_ROOT, 'bin/sdwrap.js');
const FIXTURE_HOST = path.join(REPO_ROOT, 'test/fixtures/server.mjs');
const MAX_EXPOSURE = 1.5;
/** Reloads in a row that must each return only once the new config is served. */
const RELOADS = 20;
/** How long the fixture takes to load its new config after SIGHUP (/healthz answers 503 meanwhile). */
const RELOAD_MS = 1000;

// ---------------------------------------------------------------------------
// On the host: systemd-analyze
// ---------------------------------------------------------------------------

const hostProblem = analyzeProblem();

describe('sdwrap unit: systemd-analyze verify and security (host)', { skip: skipUnlessCI(hostProblem) }, () => {
  let dir: string;
  before(() => {
    failIfProblem(hostProblem);
    dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-gen-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Writes <dir>/<name>.service with `sdwrap unit`, run on the host: its paths exist here, as verify wants. */
  async function generate(name: string, args: string[]): Promise<string> {
    const r = await run(
      [
        process.execPath,
        SDWRAP_HOST,
        'unit',
        name,
        '--type',
        'notify',
        '--output',
        dir,
        ...args,
        '--',
        process.execPath,
        FIXTURE_HOST,
        '--port',
        '8080',
      ],
      {
        timeoutMs: 30_000,
      },
    );
    assert.equal(r.code, 0, describeFailure(r));
    return path.join(dir, `${name}.service`);
  }

  async function verify(file: string, user = false): Promise<void> {
    const xdg = user ? mkdtempSync(path.join(tmpdir(), 'sdwrap-xdg-')) : undefined;
    try {
      const r = await run(['systemd-analyze', ...(user ? ['--user'] : []), 'verify', file], {
        timeoutMs: 60_000,
        env: xdg ? { ...process.env, XDG_RUNTIME_DIR: xdg } : process.env,
      });
      assert.equal(r.code, 0, describeFailure(r));
      // verify exits 0 on mere warnings: any output is a failure.
      assert.equal(r.stdout.trim() + r.stderr.trim(), '', `${describeFailure(r)}\n${readFileSync(file, 'utf8')}`);
    } finally {
      if (xdg) rmSync(xdg, { recursive: true, force: true });
    }
  }

  it(`a generated unit passes systemd-analyze verify and rates ${MAX_EXPOSURE} or lower in systemd-analyze security --offline=true`, async (t) => {
    const file = await generate('gen-default', ['--http', 'http://127.0.0.1:8080/healthz', '--start-period', '30s']);
    await verify(file);
    const r = await run(['systemd-analyze', 'security', '--offline=true', '--no-pager', file], { timeoutMs: 60_000 });
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr);
    assert.ok(m, describeFailure(r));
    t.diagnostic(`overall exposure level of a generated unit: ${m[1]}`);
    assert.ok(Number(m[1]) <= MAX_EXPOSURE, `exposure ${m[1]} > ${MAX_EXPOSURE}:\n${r.stdout}`);
  });

  it('generated units with the sandbox relaxed, and a --user-unit, pass systemd-analyze verify', async (t) => {
    const relaxed = await generate('gen-relaxed', [
      '--writable',
      dir,
      '--port-below-1024',
      '--environment',
      'GREETING=hello world',
      '--working-directory',
      dir,
      '--probe',
      'liveness:tcp:127.0.0.1:8080',
      '--probe',
      'readiness:http:http://127.0.0.1:8080/healthz',
    ]);
    await verify(relaxed);
    const r = await run(['systemd-analyze', 'security', '--offline=true', '--no-pager', relaxed], { timeoutMs: 60_000 });
    t.diagnostic(`relaxed unit: ${/Overall exposure level for \S+: (\S+)/.exec(r.stdout)?.[1]}`);
    await verify(await generate('gen-user', ['--user-unit', '--tcp', '127.0.0.1:8080']), true);
  });
});

// ---------------------------------------------------------------------------
// In a booted systemd 252
// ---------------------------------------------------------------------------

const problem = containerProblem();

describe(
  'generated units and sdwrap reload under systemd 252 (nspawn container)',
  { skip: skipUnlessCI(problem), timeout: 20 * 60_000 },
  () => {
    let c: Container;
    let systemdVersion = 0;
    const { scenario, start, stop, waitActive, waitRestarted, appPid, fixtureApps, assertNothingLeft, sdwrapLogs } = unitHelpers(() => c);

    before(
      async () => {
        failIfProblem(problem);
        c = await Container.boot({ log: (m) => process.stderr.write(`# e2e: ${m}\n`) });
        const v = await c.exec(['systemctl', '--version'], { check: true, timeoutMs: 10_000 });
        systemdVersion = Number(/^systemd (\d+)/.exec(v.stdout)?.[1] ?? 0);
        assert.ok(
          systemdVersion > 0 && systemdVersion < 253,
          `the plain bookworm root should run systemd 252, runs ${v.stdout.split('\n')[0]}`,
        );
        await assertDynamicUserRunsSdwrap(c);
      },
      { timeout: 15 * 60_000 },
    );

    after(async () => {
      if (c) await c.shutdown();
    });

    /**
     * Generates <name>.service with `sdwrap unit` inside the container, installs it, checks it with
     * `systemd-analyze verify`, runs body, and explains a failure with the unit's state and journal.
     */
    async function generated(
      t: TestContext,
      name: string,
      sdwrapArgs: string[],
      app: string[],
      body: (unit: string, text: string) => Promise<void>,
    ): Promise<void> {
      const unit = `${name}.service`;
      try {
        const g = await c.exec([IN_CONTAINER_NODE, IN_CONTAINER_SDWRAP, 'unit', name, ...sdwrapArgs, '--', ...app], { timeoutMs: 30_000 });
        assert.equal(g.code, 0, describeFailure(g));
        assert.equal(g.stderr, '', `sdwrap unit warned:\n${g.stderr}`);
        const text = g.stdout;
        await c.installUnit(unit, text);
        const v = await c.exec(['systemd-analyze', 'verify', `/etc/systemd/system/${unit}`], { timeoutMs: 30_000 });
        assert.ok(
          v.code === 0 && (v.stdout + v.stderr).trim() === '',
          `the generated unit does not verify:\n${describeFailure(v)}\n${text}`,
        );
        await body(unit, text);
      } catch (err) {
        const diag = await c.diagnostics(unit);
        t.diagnostic(`unit ${unit} failed; its state follows in the error`);
        if (err instanceof Error) err.message = `${err.message}\n\n${diag}`;
        throw err;
      } finally {
        await c.cleanupUnit(unit).catch(() => {});
      }
    }

    /** The body of GET url, from inside the container. */
    async function httpText(url: string): Promise<string> {
      const r = await c.node(
        `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(5000)}).then(r=>r.text()).then(t=>console.log(t),e=>console.log('error: '+(e.cause?.code||e.message)))`,
        {
          timeoutMs: 20_000,
        },
      );
      return r.stdout.trim();
    }

    const version = (p: number) => httpText(`http://127.0.0.1:${p}/version`);

    it('a generated unit starts, is active only once the app answers, is restarted after a hang, and stops cleanly', async (t) => {
      const p = port();
      await generated(
        t,
        'gen-life',
        ['--http', healthz(p), ...FAST_PROBE, '--start-period', '15s', '--stop-timeout', '2s'],
        fixture(p, '--ready-after', '3000'),
        async (unit, text) => {
          assert.match(text, /^Type=notify$/m, 'systemd 252: Type=notify');
          assert.match(text, /^ExecReload=\/usr\/bin\/node \/opt\/sdwrap\/bin\/sdwrap\.js reload --timeout \S+$/m);
          const s0 = await c.show(unit, [
            'Type',
            'WatchdogUSec',
            'TimeoutStartUSec',
            'TimeoutStopUSec',
            'KillMode',
            'Restart',
            'DynamicUser',
            'RuntimeDirectory',
          ]);
          t.diagnostic(`as systemd reads it: ${JSON.stringify(s0)}`);
          assert.equal(s0.KillMode, 'mixed');
          assert.equal(s0.Restart, 'on-failure');

          const starting = start(unit);
          await delay(1500);
          const mid = await c.show(unit, ['ActiveState', 'StatusText']);
          const took = await starting;
          t.diagnostic(`systemctl start took ${Math.round(took)} ms (the app answers after 3000 ms); at 1.5 s: ${JSON.stringify(mid)}`);
          assert.equal(mid.ActiveState, 'activating', 'active before the app answered');
          assert.ok(took >= 2900, `systemctl start returned after ${Math.round(took)} ms`);
          const before = await waitActive(unit);
          assert.equal(await c.httpGet(healthz(p)), 200);
          // The watchdog is on, at the generated WatchdogSec=, and sdwrap kept its timing (no adjustment note).
          const watchdog = /^WatchdogSec=(\S+)$/m.exec(text)![1];
          const startLogs = await sdwrapLogs(unit);
          assert.ok(
            logged(startLogs, 'systemd watchdog on').some((l) => l.watchdog === watchdog),
            `sdwrap logged:\n${dump(startLogs)}`,
          );
          assert.ok(!startLogs.some((l) => /WatchdogSec/.test(String(l.msg))), `sdwrap adjusted its timing:\n${dump(startLogs)}`);

          // A hang: the event loop blocks; sdwrap's probes see it, it kills the app and exits 69; systemd restarts.
          const hung = await appPid(unit);
          assert.equal(await c.httpGet(`http://127.0.0.1:${p}/control/hang`), 200);
          const t0 = Date.now();
          const back = await waitRestarted(unit, before, { props: ['ActiveState', 'SubState', 'NRestarts', 'MainPID'] });
          t.diagnostic(`restarted ${Date.now() - t0} ms after the hang: ${JSON.stringify(back)}`);
          const journal = await c.journalMessages(unit);
          assert.ok(
            journal.some((l) => /Main process exited, code=exited, status=69/.test(l)),
            'sdwrap should exit 69 (unhealthy)',
          );
          assert.ok(!journal.some((l) => /Watchdog timeout/.test(l)), "sdwrap's verdict should come before systemd's watchdog");
          assert.ok(!(await fixtureApps(p)).some((x) => x.pid === hung), 'the hung app is still there');

          const took2 = await stop(unit);
          const s = await c.show(unit, ['ActiveState', 'Result']);
          t.diagnostic(`systemctl stop took ${Math.round(took2)} ms: ${JSON.stringify(s)}`);
          assert.equal(s.ActiveState, 'inactive');
          assert.equal(s.Result, 'success');
          assert.deepEqual(await fixtureApps(p), [], 'nothing left of the app');
          await assertNothingLeft(`--port ${p}`);
        },
      );
    });

    it(`systemctl reload with ExecReload=sdwrap reload returns only once the new config is served: ${RELOADS} of ${RELOADS}`, async (t) => {
      const p = port();
      await generated(
        t,
        'gen-reload',
        // Liveness on TCP, readiness on /healthz: the fixture's 503 while it reloads holds the reload, never kills.
        ['--probe', `liveness:tcp:127.0.0.1:${p}`, '--probe', `readiness:http:${healthz(p)}`, ...FAST_PROBE, '--stop-timeout', '2s'],
        fixture(p, '--reload-ms', String(RELOAD_MS)),
        async (unit) => {
          await start(unit);
          const before = await waitActive(unit);
          const durations: number[] = [];
          const stale: string[] = [];
          for (let i = 1; i <= RELOADS; i++) {
            const r = await c.systemctl(['reload', unit], { timeoutMs: 60_000 });
            assert.equal(r.code, 0, `reload ${i} failed:\n${describeFailure(r)}`);
            durations.push(Math.round(r.durationMs));
            const served = await version(p);
            if (served !== String(i))
              stale.push(`reload ${i}: /version said ${served} after systemctl reload returned (${Math.round(r.durationMs)} ms)`);
          }
          t.diagnostic(
            `${RELOADS - stale.length} of ${RELOADS} reloads served the new config when systemctl reload returned; systemctl reload took ${Math.min(...durations)}-${Math.max(...durations)} ms`,
          );
          assert.deepEqual(stale, [], 'systemctl reload returned before the new config was served');
          assert.ok(
            Math.min(...durations) >= RELOAD_MS - 50,
            `a reload returned in ${Math.min(...durations)} ms, before the app could have reloaded`,
          );
          const s = await c.show(unit, ['ActiveState', 'NRestarts', 'MainPID']);
          assert.equal(s.ActiveState, 'active');
          assert.equal(s.NRestarts, before.NRestarts, 'no restart');
          assert.equal(s.MainPID, before.MainPID, 'the same sdwrap');
          const logs = await sdwrapLogs(unit);
          assert.equal(logged(logs, 'reloaded').length, RELOADS, `sdwrap logged:\n${dump(logs)}`);
          assert.equal(logged(logs, 'reload requested over the control socket').length, RELOADS);
          const journal = await c.journalMessages(unit);
          assert.equal(journal.filter((l) => /^sdwrap reload: reloaded: /.test(l)).length, RELOADS, 'sdwrap reload says so in the journal');
        },
      );
    });

    /**
     * The check has teeth: an ExecReload= that only sends the signal (to the app itself, so that nothing holds
     * systemd's reload) returns before the fixture serves its new config, and the check sees the old version.
     * (ExecReload=kill -HUP $MAINPID through sdwrap is racy, not reliably early: when sdwrap's RELOADING=1
     * reaches systemd 252 before kill's exit does, systemd holds the reload until READY=1.)
     */
    it('negative control: an ExecReload= that only signals returns before the new config is served, and the check sees it', async (t) => {
      const p = port();
      const pidFile = '/run/gen-reload-kill/app.pid';
      await scenario(
        t,
        'gen-reload-kill',
        {
          sdwrap: ['--probe', `liveness:tcp:127.0.0.1:${p}`, '--probe', `readiness:http:${healthz(p)}`, ...FAST_PROBE],
          app: fixture(p, '--reload-ms', String(RELOAD_MS), '--pid-file', pidFile),
          // minbase has no /bin/kill; $$ is a $ to systemd.
          service: { Type: 'notify', RuntimeDirectory: 'gen-reload-kill', ExecReload: `/bin/sh -c 'kill -HUP "$$(cat ${pidFile})"'` },
        },
        async (unit) => {
          await start(unit);
          await waitActive(unit);
          const r = await c.systemctl(['reload', unit], { timeoutMs: 60_000 });
          assert.equal(r.code, 0, describeFailure(r));
          const served = await version(p);
          t.diagnostic(`systemctl reload returned after ${Math.round(r.durationMs)} ms; /version then said ${served}`);
          assert.equal(served, '0', 'the check should see the old config after a reload that returned early');
          await waitFor('/version 1', async () => ((await version(p)) === '1' ? true : undefined), 20_000, 200);
        },
      );
    });

    it('a reload whose app does not come back healthy fails, with the reason in the journal', async (t) => {
      // Readiness fails after the reload: sdwrap reload gives up at its --timeout, the unit stays up.
      const p = port();
      await generated(
        t,
        'gen-reload-stuck',
        ['--probe', `liveness:tcp:127.0.0.1:${p}`, '--probe', `readiness:http:${healthz(p)}`, ...FAST_PROBE, '--stop-timeout', '2s'],
        fixture(p, '--reload-ms', '200', '--reload-breaks'),
        async (unit, text) => {
          const timeout = /^ExecReload=.* reload --timeout (\S+)$/m.exec(text)?.[1];
          await start(unit);
          const before = await waitActive(unit);
          const r = await c.systemctl(['reload', unit], { timeoutMs: 90_000 });
          t.diagnostic(`systemctl reload exited ${r.code} after ${Math.round(r.durationMs)} ms (sdwrap reload --timeout ${timeout})`);
          assert.notEqual(r.code, 0, 'systemctl reload should fail');
          const journal = await c.journalMessages(unit);
          const reason = journal.find((l) => l.startsWith('sdwrap reload: '));
          t.diagnostic(`journal: ${reason}`);
          assert.match(
            reason ?? '',
            new RegExp(
              `^sdwrap reload: the probes did not all pass again within ${timeout} \\(--timeout\\); last failure: GET http://127\\.0\\.0\\.1:${p}/healthz: HTTP 500 \\(expected 200-399\\)`,
            ),
          );
          const s = await c.show(unit, ['ActiveState', 'MainPID', 'NRestarts']);
          assert.equal(s.ActiveState, 'active', 'a failed reload leaves the unit running');
          assert.equal(s.MainPID, before.MainPID);
        },
      );

      // Liveness fails after the reload: sdwrap kills the app; sdwrap reload says why; systemd restarts the unit.
      const q = port();
      await generated(
        t,
        'gen-reload-broken',
        ['--http', healthz(q), ...FAST_PROBE, '--stop-timeout', '2s'],
        fixture(q, '--reload-ms', '200', '--reload-breaks'),
        async (unit) => {
          await start(unit);
          const before = await waitActive(unit);
          const r = await c.systemctl(['reload', unit], { timeoutMs: 90_000 });
          assert.notEqual(r.code, 0, 'systemctl reload should fail');
          const reason = (await c.journalMessages(unit)).find((l) => l.startsWith('sdwrap reload: '));
          t.diagnostic(`systemctl reload exited ${r.code} after ${Math.round(r.durationMs)} ms; journal: ${reason}`);
          assert.match(
            reason ?? '',
            new RegExp(
              `^sdwrap reload: the reload failed after [^:]+: the app became unhealthy: GET http://127\\.0\\.0\\.1:${q}/healthz: .*HTTP 500`,
            ),
          );
          await waitRestarted(unit, before);
        },
      );
    });
  },
);
