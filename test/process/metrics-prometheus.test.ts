// The real thing: Debian's Prometheus scrapes a running sdwrap every second, its HTTP API returns the
// probe-duration series and a restart count that goes up after the app hangs, `promtool check metrics` passes
// on sdwrap's output, and `promtool check rules` / `check config` pass on the README's blocks, read from the
// README itself so that it stays true.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCI } from '../helpers/ci.js';
import { sample, scrape } from '../helpers/metrics.js';
import { freePort } from '../helpers/ports.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { REPO_ROOT, runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { waitFor } from '../helpers/wait.js';

const SERVER = join(REPO_ROOT, 'test/fixtures/server.mjs');
const DIR = mkdtempSync(join(tmpdir(), 'sdwrap-prometheus-'));
const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const MISSING = ['prometheus', 'promtool'].filter((c) => !has(c));
// In CI a missing Prometheus is a failure (.ci/run installs it); elsewhere a skip that says why.
const skip = MISSING.length > 0 && !isCI() ? `${MISSING.join(' and ')} not installed (apt-get install prometheus)` : false;

let prometheus: ChildProcess | undefined;
after(async () => {
  await stopAll();
  if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
    prometheus.kill('SIGKILL');
    await new Promise((resolve) => prometheus!.once('exit', resolve));
  }
  rmSync(DIR, { recursive: true, force: true });
});

/** The fenced ```yaml block of the README that contains `marker`. */
function readmeYaml(marker: string): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(marker));
  assert.ok(block, `README has a yaml block with ${marker}`);
  return block;
}

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query through Prometheus' HTTP API. */
async function query(port: number, promql: string): Promise<PromSample[]> {
  const response = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const json = (await response.json()) as { status: string; data: { resultType: string; result: PromSample[] } };
  assert.equal(json.status, 'success', JSON.stringify(json));
  return json.data.result;
}

test('the README alert rules pass `promtool check rules`, its scrape config `promtool check config`', { skip }, () => {
  const rules = join(DIR, 'rules.yml');
  writeFileSync(rules, readmeYaml('groups:'));
  const checked = spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
  assert.equal(checked.status, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, /SUCCESS: 2 rules found/);
  const config = join(DIR, 'scrape.yml');
  writeFileSync(config, readmeYaml('scrape_configs:'));
  const scrapeChecked = spawnSync('promtool', ['check', 'config', config], { encoding: 'utf8' });
  assert.equal(scrapeChecked.status, 0, scrapeChecked.stdout + scrapeChecked.stderr);
});

test(
  'a real Prometheus scrapes sdwrap: the probe-duration series, a restart count that goes up after a hang; promtool check metrics passes',
  { skip, timeout: 120_000 },
  async () => {
    const [metricsPort, appPort, promPort] = [await freePort(), await freePort(), await freePort()];
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
        '--timeout',
        '300ms',
        '--failure-threshold',
        '2',
        '--start-period',
        '10s',
        '--stop-timeout',
        '1s',
        '--restart-delay',
        '200ms',
        '--',
        process.execPath,
        SERVER,
        '--port',
        String(appPort),
      ],
      { marker },
    );
    await run.waitForLog((l) => l.msg === 'ready', 15_000);

    // sdwrap's exposition, as Prometheus' own linter reads it.
    const { body } = await scrape(metricsPort);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
    assert.equal(lint.stdout + lint.stderr, '', 'no lint finding');

    const config = join(DIR, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: sdwrap',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${metricsPort}']`,
        '',
      ].join('\n'),
    );
    const logs: string[] = [];
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(DIR, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (c: Buffer) => logs.push(c.toString()));
    prometheus.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    const promDump = () => `prometheus:\n${logs.join('').slice(-3000)}\n${run.dump()}`;

    const probe = `GET http://127.0.0.1:${appPort}/healthz`;
    const durations = await waitFor(
      async () => {
        const result = await query(promPort, 'sdwrap_probe_duration_seconds_count');
        return result.some((s) => Number(s.value[1]) > 0) && result;
      },
      { timeout: 30_000, interval: 250, message: promDump },
    );
    assert.deepEqual(
      durations.map((s) => [s.metric.job, s.metric.probe]),
      [['sdwrap', probe]],
    );
    const up = await query(promPort, 'up{job="sdwrap"}');
    assert.equal(up[0]?.value[1], '1');
    const restarts = async () => Number((await query(promPort, 'sdwrap_restarts_total'))[0]?.value[1] ?? NaN);
    assert.equal(await restarts(), 0, 'no restart yet');

    // The app hangs (its event loop blocked for good): sdwrap finds it unhealthy, kills it and starts another.
    const hung = await fetch(`http://127.0.0.1:${appPort}/control/hang`);
    assert.equal(hung.status, 200);
    await run.waitForLog((l) => l.msg === 'unhealthy: killing the child', 15_000);
    await waitFor(async () => (await restarts()) >= 1, { timeout: 30_000, interval: 250, message: promDump });
    // The new app is ready and scraped: it passes probes again, as Prometheus sees it.
    await waitFor(async () => (await query(promPort, 'sdwrap_ready == 1')).length === 1 && (await restarts()) >= 1, {
      timeout: 30_000,
      interval: 250,
      message: promDump,
    });
    const unhealthyAt = await query(promPort, 'sdwrap_last_unhealthy_time_seconds');
    assert.ok(Number(unhealthyAt[0]?.value[1]) > 0, promDump());

    // The README's restart alert, evaluated by Prometheus: one restart, under its threshold of 3.
    const rule = /expr: (increase\(sdwrap_restarts_total.*)/.exec(readmeYaml('groups:'))![1]!.replace(/ > 3/g, ' > 0');
    assert.equal((await query(promPort, rule)).length, 1, `${rule} fires after one restart`);

    prometheus.kill('SIGTERM');
    await new Promise((resolve) => prometheus!.once('exit', resolve));
    run.kill('SIGTERM');
    await run.waitForExit(15_000);
    assert.equal(sample((await scrape(metricsPort).catch(() => ({ body: '' }))).body, 'sdwrap_ready'), undefined, 'gone with sdwrap');
    await assertNoLeftovers(marker);
  },
);
