/**
 * Scenario 10: every unit shipped in units/ passes `systemd-analyze verify`,
 * and the example unit's sandbox rates 2.0 or lower with
 * `systemd-analyze security --offline=true`. Also checks the example says what
 * a unit running sdwrap must say. Runs on the host (no container needed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyzeProblem, describeFailure, failIfProblem, parseUnit, REPO_ROOT, run, skipUnlessCI, unitValues } from './harness.js';

const UNITS_DIR = path.join(REPO_ROOT, 'units');
const EXAMPLE = path.join(UNITS_DIR, 'sdwrap-example.service');
const MAX_EXPOSURE = 2.0;
const UNIT_SUFFIXES = ['.service', '.socket', '.timer', '.target', '.path', '.mount', '.slice'];

/** systemd time span -> ms (enough for unit files: "30s", "1min 30s", "500ms", bare seconds). */
function spanMs(text: string): number {
  const units: Record<string, number> = { ms: 1, msec: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, hr: 3_600_000 };
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  let total = 0;
  for (const part of t.split(/\s+/)) {
    const m = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(part);
    const u = m ? units[m[2]!] : undefined;
    if (!m || u === undefined) throw new Error(`cannot parse time span ${JSON.stringify(text)}`);
    total += Number(m[1]) * u;
  }
  return total;
}

/**
 * systemd-analyze verify checks that ExecStart='s binary exists: point the
 * shipped unit's /usr/bin/node /usr/local/bin/sdwrap at this checkout (node + bin/sdwrap.js).
 */
function withRealPaths(text: string): string {
  return text.replace(
    /^(Exec[A-Za-z]*=[-@:+!]*)\/usr\/bin\/node \/usr\/local\/bin\/sdwrap(?=\s)/gm,
    `$1${process.execPath} ${path.join(REPO_ROOT, 'bin/sdwrap.js')}`,
  );
}

const problem = analyzeProblem();

describe('units/ (systemd-analyze)', { skip: skipUnlessCI(problem) }, () => {
  let dir: string;
  before(() => {
    failIfProblem(problem);
    dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-units-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const unitFiles = readdirSync(UNITS_DIR).filter((f) => UNIT_SUFFIXES.some((s) => f.endsWith(s)));

  it('ships the example unit', () => {
    assert.ok(unitFiles.includes('sdwrap-example.service'), `units/ holds: ${unitFiles.join(', ')}`);
  });

  for (const file of unitFiles) {
    it(`${file} passes systemd-analyze verify`, async () => {
      const copy = path.join(dir, file);
      writeFileSync(copy, withRealPaths(readFileSync(path.join(UNITS_DIR, file), 'utf8')));
      const r = await run(['systemd-analyze', 'verify', copy], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, describeFailure(r));
      // verify exits 0 on mere warnings (unknown keys, bad values): treat any output as a failure.
      assert.equal(r.stderr.trim() + r.stdout.trim(), '', describeFailure(r));
    });
  }

  it(`sdwrap-example.service: systemd-analyze security --offline=true rates it ${MAX_EXPOSURE.toFixed(1)} or lower`, async (t) => {
    const r = await run(['systemd-analyze', 'security', '--offline=true', '--no-pager', EXAMPLE], { timeoutMs: 60_000 });
    const out = r.stdout + r.stderr;
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(out);
    assert.ok(m, `no "Overall exposure level" in the output:\n${describeFailure(r)}`);
    const level = Number(m[1]);
    t.diagnostic(`overall exposure level: ${level}`);
    assert.ok(level <= MAX_EXPOSURE, `exposure ${level} > ${MAX_EXPOSURE}:\n${out}`);
  });

  it('sdwrap-example.service says what a unit running sdwrap needs', () => {
    const u = parseUnit(readFileSync(EXAMPLE, 'utf8'));
    const one = (sec: string, key: string) => {
      const v = unitValues(u, sec, key);
      assert.ok(v.length > 0, `[${sec}] ${key}= missing`);
      return v[v.length - 1]!;
    };
    assert.equal(one('Service', 'Type'), 'notify');
    assert.equal(one('Service', 'NotifyAccess'), 'all');
    assert.ok(spanMs(one('Service', 'WatchdogSec')) > 0, 'WatchdogSec= must be on');
    assert.equal(one('Service', 'Restart'), 'on-failure');
    one('Service', 'RestartSec');
    one('Unit', 'StartLimitIntervalSec');
    assert.ok(Number(one('Unit', 'StartLimitBurst')) > 0);
    assert.equal(one('Service', 'KillMode'), 'mixed');
    const exec = one('Service', 'ExecStart');
    assert.match(
      exec,
      /^\/usr\/bin\/node \/usr\/local\/bin\/sdwrap\s.*\s--\s+\S/,
      'ExecStart= runs /usr/bin/node /usr/local/bin/sdwrap [options] -- <app>, absolute paths both',
    );
    const stopTimeout = /--stop-timeout[= ](\S+)/.exec(exec.split(' -- ')[0]!)?.[1] ?? '10s';
    assert.ok(
      spanMs(one('Service', 'TimeoutStopSec')) > spanMs(stopTimeout),
      `TimeoutStopSec= must be longer than sdwrap's --stop-timeout (${stopTimeout})`,
    );
    const mdwe = unitValues(u, 'Service', 'MemoryDenyWriteExecute');
    assert.ok(!mdwe.some((v) => /^(yes|true|1|on)$/i.test(v)), 'MemoryDenyWriteExecute=yes breaks V8: must not be set');
  });
});
