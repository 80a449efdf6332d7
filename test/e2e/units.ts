/**
 * What the container scenario files (scenarios.test.ts, conversation.test.ts)
 * share on top of harness.ts: test units derived from the shipped
 * units/sdwrap-example.service, the fixture app's command line and ports, and
 * the helpers that install, start, stop and watch such a unit in a booted
 * Container.
 *
 * Every test unit keeps the example's sandbox (DynamicUser=, ProtectSystem=strict,
 * PrivateUsers=, SystemCallFilter=...); only ExecStart= and the timings change:
 * sdwrap and the fixture app come from the repository bound read-only at
 * /opt/sdwrap, run by the host's node bound at /usr/bin/node. Timings are short
 * (WatchdogSec=3s, probes every 500 ms) to keep the suites fast.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import {
  type Container,
  type ContainerProcess,
  deriveUnit,
  describeFailure,
  execArg,
  IN_CONTAINER_FIXTURE,
  IN_CONTAINER_NODE,
  IN_CONTAINER_SDWRAP,
  REPO_ROOT,
  type ShowMap,
  type UnitOverrides,
  waitFor,
} from './harness.js';

const TEMPLATE = readFileSync(path.join(REPO_ROOT, 'units/sdwrap-example.service'), 'utf8');
export const WATCHDOG_SEC = 3;
export const TIMEOUT_STOP_SEC = 30;
/** Probe settings used by every probing scenario: unhealthy ~1.5-2 s after the app stops answering. */
export const FAST_PROBE = ['--interval', '500ms', '--timeout', '300ms', '--failure-threshold', '3'];

/** Hands out consecutive ports from first on (one range per test file). */
export function portsFrom(first: number): () => number {
  let next = first;
  return () => next++;
}

/** The fixture app's command line, serving port p. */
export const fixture = (p: number, ...args: string[]) => [IN_CONTAINER_NODE, IN_CONTAINER_FIXTURE, '--port', String(p), ...args];
/** The fixture app's health endpoint (as seen inside the container). */
export const healthz = (p: number) => `http://127.0.0.1:${p}/healthz`;
/** sdwrap's arguments for an HTTP probe of the fixture app's /healthz. */
export const httpProbe = (p: number) => ['--http', healthz(p)];

export interface TestUnit {
  sdwrap: string[];
  app: string[];
  service?: UnitOverrides[string];
  unit?: UnitOverrides[string];
}

/** A unit derived from the shipped example: same sandbox, test ExecStart= and short timings. */
export function makeUnit(name: string, u: TestUnit): string {
  const exec = [IN_CONTAINER_NODE, IN_CONTAINER_SDWRAP, '--log-format', 'json', ...u.sdwrap, '--', ...u.app].map(execArg).join(' ');
  return deriveUnit(TEMPLATE, {
    Unit: {
      Description: `sdwrap e2e ${name}`,
      Documentation: null,
      StartLimitIntervalSec: '60s',
      StartLimitBurst: '20',
      ...u.unit,
    },
    Service: {
      ExecStart: exec,
      WatchdogSec: `${WATCHDOG_SEC}s`,
      RestartSec: '200ms',
      TimeoutStartSec: '20s',
      TimeoutStopSec: `${TIMEOUT_STOP_SEC}s`,
      // Aborts (sdwrap's own in the watchdog scenario, a relayed WatchdogSignal=SIGABRT): no core files.
      LimitCORE: '0',
      ...u.service,
    },
    Install: { WantedBy: null },
  });
}

/**
 * Preflight: the test units run as a DynamicUser=, which must be able to read the bound checkout (a clone made
 * under umask 077 cannot) and its build.
 */
export async function assertDynamicUserRunsSdwrap(c: Container): Promise<void> {
  const pre = await c.exec(
    [
      'systemd-run',
      '--quiet',
      '--wait',
      '--pipe',
      '--collect',
      '-p',
      'DynamicUser=yes',
      IN_CONTAINER_NODE,
      IN_CONTAINER_SDWRAP,
      '--version',
    ],
    { timeoutMs: 30_000 },
  );
  assert.equal(
    pre.code,
    0,
    `a DynamicUser= service cannot run ${IN_CONTAINER_SDWRAP} (is the checkout world-readable, and built with npm run build?)\n${describeFailure(pre)}`,
  );
}

/** One of sdwrap's JSON log lines. */
export type LogLine = Record<string, unknown>;
/** The log lines whose msg is exactly msg. */
export const logged = (logs: LogLine[], msg: string) => logs.filter((l) => l.msg === msg);
/** Log lines for an assertion message, one JSON object a line. */
export const dump = (logs: LogLine[]) => logs.map((l) => JSON.stringify(l)).join('\n');

export interface UnitHelperOptions {
  /** What a failing scenario appends to its error (default: Container.diagnostics()). */
  diagnostics?: (unit: string) => Promise<string>;
}

/**
 * The unit helpers of a test file, bound to its container. container() is called on each use, so the
 * helpers can be made when the describe() body runs and the container booted later, in before().
 */
export function unitHelpers(container: () => Container, opts: UnitHelperOptions = {}) {
  /** Installs the unit (after `systemd-analyze verify` inside the container), runs body, explains failures, cleans up. */
  async function scenario(t: TestContext, name: string, u: TestUnit, body: (unit: string) => Promise<void>): Promise<void> {
    const c = container();
    const unit = `${name}.service`;
    try {
      const text = makeUnit(name, u);
      await c.writeFile(`/etc/systemd/system/${unit}`, text);
      await c.systemctl(['daemon-reload'], { check: true, timeoutMs: 30_000 });
      const v = await c.exec(['systemd-analyze', 'verify', `/etc/systemd/system/${unit}`], { timeoutMs: 30_000 });
      assert.ok(v.code === 0 && (v.stdout + v.stderr).trim() === '', `test unit does not verify:\n${describeFailure(v)}\n${text}`);
      await body(unit);
    } catch (err) {
      const diag = await (opts.diagnostics ? opts.diagnostics(unit) : c.diagnostics(unit));
      t.diagnostic(`unit ${unit} failed; its state follows in the error`);
      if (err instanceof Error) {
        try {
          err.message = `${err.message}\n\n${diag}`;
        } catch {
          throw new Error(`${String(err)}\n\n${diag}`, { cause: err });
        }
      }
      throw err;
    } finally {
      await c.cleanupUnit(unit).catch(() => {});
    }
  }

  /** `systemctl start`, which must succeed; resolves with how long it took (ms). */
  async function start(unit: string): Promise<number> {
    const r = await container().systemctl(['start', unit], { timeoutMs: 40_000 });
    assert.equal(r.code, 0, `systemctl start ${unit} failed:\n${describeFailure(r)}`);
    return r.durationMs;
  }

  /** `systemctl stop`, which must succeed; resolves with how long it took (ms). */
  async function stop(unit: string): Promise<number> {
    const r = await container().systemctl(['stop', unit], { timeoutMs: (TIMEOUT_STOP_SEC + 15) * 1000 });
    assert.equal(r.code, 0, `systemctl stop ${unit} failed:\n${describeFailure(r)}`);
    return r.durationMs;
  }

  /** Polls `systemctl show -p props unit` until `until` accepts the answer, and resolves with it (waitFor's what, timeout and interval). */
  async function waitShow(
    what: string,
    unit: string,
    props: string[],
    until: (s: ShowMap) => boolean,
    timeoutMs: number,
    intervalMs: number,
  ): Promise<ShowMap> {
    return waitFor(
      what,
      async () => {
        const s = await container().show(unit, props);
        return until(s) ? s : undefined;
      },
      timeoutMs,
      intervalMs,
    );
  }

  async function waitActive(unit: string, timeoutMs = 15_000): Promise<ShowMap> {
    return waitShow(
      `${unit} to be active/running`,
      unit,
      ['ActiveState', 'SubState', 'NRestarts', 'MainPID', 'StatusText'],
      (s) => s.ActiveState === 'active' && s.SubState === 'running',
      timeoutMs,
      100,
    );
  }

  /** Waits (20 s) for the unit to have restarted since `before` (a waitActive() answer) and to be active/running again. */
  async function waitRestarted(
    unit: string,
    before: ShowMap,
    {
      what = `${unit} to restart (NRestarts > ${before.NRestarts}) and be active again`,
      props = ['ActiveState', 'SubState', 'NRestarts', 'MainPID'],
    } = {},
  ): Promise<ShowMap> {
    return waitShow(
      what,
      unit,
      props,
      (s) => Number(s.NRestarts) > Number(before.NRestarts) && s.ActiveState === 'active' && s.SubState === 'running',
      20_000,
      100,
    );
  }

  /** The fixture app's pid: the descendant of MainPID running server.mjs. */
  async function appPid(unit: string): Promise<number> {
    const c = container();
    return waitFor(
      `the fixture app under ${unit}`,
      async () => {
        const { MainPID } = await c.show(unit, ['MainPID']);
        if (!MainPID || MainPID === '0') return undefined;
        return (await c.descendants(Number(MainPID))).find((p) => p.cmdline.includes('server.mjs'))?.pid;
      },
      10_000,
      200,
    );
  }

  /** The fixture apps serving port p (not sdwrap, whose command line names the fixture too). */
  async function fixtureApps(p: number): Promise<ContainerProcess[]> {
    const argv = fixture(p).join(' ');
    return (await container().processes()).filter((x) => x.cmdline === argv || x.cmdline.startsWith(`${argv} `));
  }

  async function waitHealthz(p: number): Promise<void> {
    const c = container();
    await waitFor(`GET ${healthz(p)} to answer 200`, async () => ((await c.httpGet(healthz(p))) === 200 ? true : undefined), 10_000, 200);
  }

  /** Fails unless, within 5 s, no process in the container has marker in its command line. */
  async function assertNothingLeft(marker: string): Promise<void> {
    const c = container();
    const left = await waitFor(
      `no process matching ${marker} to be left`,
      async () => ((await c.processesMatching(marker)).length === 0 ? true : undefined),
      5_000,
      200,
    ).catch(async () => c.processesMatching(marker));
    if (left !== true) assert.fail(`processes left behind: ${JSON.stringify(left)}`);
  }

  /** sdwrap's JSON log lines in the unit's journal. */
  async function sdwrapLogs(unit: string): Promise<LogLine[]> {
    const out: LogLine[] = [];
    for (const line of await container().journalMessages(unit)) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        /* not JSON */
      }
    }
    return out;
  }

  return { scenario, start, stop, waitShow, waitActive, waitRestarted, appPid, fixtureApps, waitHealthz, assertNothingLeft, sdwrapLogs };
}
