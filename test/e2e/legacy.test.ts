/**
 * Legacy apps under a real systemd, in a systemd-nspawn container booted once for this file:
 * a daemon that forks and writes a pid file (--pid-file), an app that speaks sd_notify itself
 * (--notify-passthrough), and a socket-activated app behind sdwrap. Units are derived from the shipped
 * example (makeUnit() in units.ts), so they run in its sandbox.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Container, containerProblem, failIfProblem, IN_CONTAINER_NODE, IN_CONTAINER_REPO, skipUnlessCI, waitFor } from './harness.js';
import { assertDynamicUserRunsSdwrap, dump, FAST_PROBE, fixture, httpProbe, logged, portsFrom, unitHelpers } from './units.js';

const port = portsFrom(18400);
const problem = containerProblem();
const DAEMONIZE = `${IN_CONTAINER_REPO}/test/fixtures/daemonize.mjs`;
const NOTIFY_APP = `${IN_CONTAINER_REPO}/test/fixtures/notify-app.mjs`;
const FD3_SERVER = `${IN_CONTAINER_REPO}/test/fixtures/fd3-server.mjs`;

describe('legacy apps under systemd (nspawn container)', { skip: skipUnlessCI(problem), timeout: 15 * 60_000 }, () => {
  let c: Container;
  const { scenario, start, stop, waitActive, waitRestarted, assertNothingLeft, sdwrapLogs } = unitHelpers(() => c);

  before(
    async () => {
      failIfProblem(problem);
      c = await Container.boot({ log: (m) => process.stderr.write(`# e2e: ${m}\n`) });
      await assertDynamicUserRunsSdwrap(c);
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    if (c) await c.shutdown();
  });

  /** The pid sdwrap adopted last, from its journal. */
  async function adoptedPid(unit: string, not?: number): Promise<number> {
    return waitFor(
      `${unit}: sdwrap to adopt a daemon${not ? ` other than ${not}` : ''}`,
      async () => {
        const pid = logged(await sdwrapLogs(unit), 'adopted the daemon named by the pid file').at(-1)?.adoptedPid;
        return typeof pid === 'number' && pid !== not ? pid : undefined;
      },
      15_000,
      200,
    );
  }

  it('a daemon that forks (--pid-file): ready gate, a hang restarts it, a stop leaves nothing', async (t) => {
    const p = port();
    const name = 'e2e-forking';
    const pidFile = `/run/${name}/daemon.pid`;
    await scenario(
      t,
      name,
      {
        sdwrap: ['--pid-file', pidFile, ...httpProbe(p), ...FAST_PROBE, '--start-period', '15s', '--stop-timeout', '1s'],
        app: [IN_CONTAINER_NODE, DAEMONIZE, '--', ...fixture(p, '--pid-file', pidFile, '--ready-after', '2000')],
        service: { RuntimeDirectory: name, RuntimeDirectoryPreserve: 'restart' },
      },
      async (unit) => {
        const took = await start(unit);
        assert.ok(took >= 1900, `systemctl start returned after ${Math.round(took)} ms, before the daemon answered (2000 ms)`);
        const before = await waitActive(unit);
        const daemon = await adoptedPid(unit);
        assert.notEqual(String(daemon), before.MainPID, 'the daemon is not sdwrap');
        t.diagnostic(`MainPID ${before.MainPID}, adopted daemon ${daemon}`);
        await c.kill(daemon, 'STOP');
        const after = await waitRestarted(unit, before);
        const next = await adoptedPid(unit, daemon);
        t.diagnostic(`restarted: MainPID ${after.MainPID}, adopted daemon ${next}`);
        const logs = await sdwrapLogs(unit);
        assert.ok(logged(logs, 'unhealthy: killing the child').length >= 1, dump(logs));
        await stop(unit);
        const s = await c.show(unit, ['ActiveState', 'Result']);
        assert.equal(s.ActiveState, 'inactive');
        assert.equal(s.Result, 'success');
        await assertNothingLeft(`--port ${p}`);
      },
    );
  });

  it('a daemon that forks, wrapped without --pid-file: the journal says so and names --pid-file', async (t) => {
    const p = port();
    await scenario(t, 'e2e-forking-nopid', { sdwrap: [], app: [IN_CONTAINER_NODE, DAEMONIZE, '--', ...fixture(p)] }, async (unit) => {
      await start(unit);
      const hint = await waitFor(
        `${unit}: the --pid-file hint`,
        async () => (await sdwrapLogs(unit)).find((l) => /give --pid-file/.test(String(l.msg))),
        15_000,
        200,
      );
      t.diagnostic(JSON.stringify(hint));
      assert.match(JSON.stringify(hint.outsideTheTree), /server\.mjs --port/, "the daemon found in the unit's cgroup is named");
      await assertNothingLeft(`--port ${p}`);
    });
  });

  for (const [what, signal, reason] of [
    ['its tick stops while HTTP answers', 'USR1', /the app's own watchdog: no WATCHDOG=1 from it/],
    ['its tick goes on while HTTP hangs', 'USR2', /timed out/],
  ] as const) {
    it(`an app that speaks sd_notify (--notify-passthrough): ${what}, so the unit restarts`, async (t) => {
      const p = port();
      await scenario(
        t,
        `e2e-passthrough-${signal.toLowerCase()}`,
        {
          sdwrap: ['--notify-passthrough', ...httpProbe(p), ...FAST_PROBE, '--stop-timeout', '1s'],
          app: [IN_CONTAINER_NODE, NOTIFY_APP, '--port', String(p)],
        },
        async (unit) => {
          await start(unit);
          const before = await waitActive(unit);
          const app = await waitFor(
            'the notify app',
            async () => (await c.processesMatching(`notify-app.mjs --port ${p}`)).find((x) => x.cmdline.startsWith(IN_CONTAINER_NODE))?.pid,
            10_000,
            200,
          );
          const status = (await c.show(unit, ['StatusText'])).StatusText ?? '';
          assert.match(status, /; app: /, "the app's STATUS= beside sdwrap's");
          await c.kill(app, signal);
          await waitRestarted(unit, before);
          const logs = await sdwrapLogs(unit);
          const verdict = logged(logs, 'unhealthy: killing the child')[0];
          assert.match(String(verdict?.reason), reason, dump(logs));
          await stop(unit);
          await assertNothingLeft(`notify-app.mjs --port ${p}`);
        },
      );
    });
  }

  it('a .socket unit: the app accepts on fd 3; connections during a kill and restart are served after it, not refused', async (t) => {
    const p = port();
    const name = 'e2e-socket';
    await c.writeFile(`/etc/systemd/system/${name}.socket`, `[Socket]\nListenStream=127.0.0.1:${p}\nFileDescriptorName=web\n`);
    try {
      await scenario(
        t,
        name,
        { sdwrap: ['--stop-timeout', '1s'], app: [IN_CONTAINER_NODE, FD3_SERVER], unit: { Requires: `${name}.socket` } },
        async (unit) => {
          await c.systemctl(['start', `${name}.socket`], { check: true, timeoutMs: 20_000 });
          await start(unit);
          const before = await waitActive(unit);
          const ask = `new Promise((r)=>{const s=require('net').connect(${p},'127.0.0.1');let t='';s.setEncoding('utf8').on('data',(d)=>t+=d).on('end',()=>r(t.trim())).on('error',(e)=>r(e.code));setTimeout(()=>{s.destroy();r('timeout')},15000)})`;
          const first = (await c.node(`${ask}.then(console.log)`, { timeoutMs: 30_000 })).stdout.trim();
          assert.match(first, /^hello from \d+$/);
          // Clients keep connecting, every 50 ms for 3 s, while the app is SIGKILLed and the unit restarts.
          const clients = c.node(
            `(async()=>{const out=[];for(let i=0;i<60;i++){out.push(${ask});await new Promise(r=>setTimeout(r,50));}console.log(JSON.stringify(await Promise.all(out)))})()`,
            { timeoutMs: 60_000 },
          );
          const app = Number(/^hello from (\d+)$/.exec(first)![1]);
          await new Promise((resolve) => setTimeout(resolve, 300));
          await c.kill(app, 'KILL');
          await waitRestarted(unit, before);
          const answers = JSON.parse((await clients).stdout.trim()) as string[];
          t.diagnostic(JSON.stringify(answers.reduce<Record<string, number>>((n, a) => ({ ...n, [a]: (n[a] ?? 0) + 1 }), {})));
          assert.deepEqual(
            answers.filter((a) => !/^hello from \d+$/.test(a)),
            [],
            'every connection is answered: none refused',
          );
          assert.ok(
            answers.some((a) => a !== first),
            'connections made during the restart are served by the next app',
          );
          await stop(unit);
        },
      );
    } finally {
      await c.systemctl(['stop', `${name}.socket`], { timeoutMs: 20_000 });
    }
  });
});
