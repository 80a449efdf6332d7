// What a sysadmin gets: `npm pack` from this tree, the tarball installed into a fresh prefix as
// `npm install -g` would, with the native notifier's build made to fail (no compiler, no libsystemd-dev),
// then the installed binary used for real: --version, --help, `man -w sdwrap`, and one app wrapped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sample, scrape } from '../helpers/metrics.js';
import { freePort } from '../helpers/ports.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { REPO_ROOT, runSdwrap, stopAll } from '../helpers/run-sdwrap.js';

const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
const SERVER = path.join(REPO_ROOT, 'test/fixtures/server.mjs');

let dir: string;
let prefix: string;
let installed: string;

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-package-'));
  prefix = path.join(dir, 'prefix');
  // prepack builds dist/ (bundle and man page) first: a clean clone packs a working package.
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO_ROOT, encoding: 'utf8' }),
  ) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  const files = packed[0]!.files.map((f) => f.path);
  for (const needed of ['bin/sdwrap.js', 'dist/sdwrap.cjs', 'dist/sdwrap.1', 'LICENSE', 'README.md', 'units/sdwrap-example.service']) {
    assert.ok(files.includes(needed), `the tarball lacks ${needed}: ${files.join(', ')}`);
  }
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), `the tarball ships sources or tests: ${files.join(', ')}`);
  // No compiler: the optional sd-notify addon cannot build, and the install must go on without it.
  const env = { ...process.env, CC: '/bin/false', CXX: '/bin/false', npm_config_loglevel: 'error' };
  execFileSync('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', path.join(dir, packed[0]!.filename)], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  installed = path.join(prefix, 'bin', 'sdwrap');
});

after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('the installed package is a copy, with only run-time dependencies', () => {
  const root = path.join(prefix, 'lib', 'node_modules', 'sdwrap');
  assert.ok(!realpathSync(root).startsWith(realpathSync(REPO_ROOT)), 'npm install -g of the tarball copies; it does not link to the clone');
  // Bundled into dist/sdwrap.cjs, so not installed: commander, pino, tree-kill.
  for (const bundled of ['commander', 'pino', 'tree-kill']) {
    assert.ok(!existsSync(path.join(root, 'node_modules', bundled)), `${bundled} is bundled, yet installed`);
  }
  assert.ok(
    !existsSync(path.join(root, 'node_modules', 'sd-notify', 'build', 'Release', 'notify.node')),
    'the addon built: the no-compiler setup did not hold',
  );
  for (const runtime of ['undici', 'execa', 'zod', 'jsonc-parser', 'pino-pretty', 'prom-client']) {
    assert.ok(existsSync(path.join(root, 'node_modules', runtime)), `${runtime} is loaded at run time, yet not installed`);
  }
});

test('sdwrap --version and --help: stdout, exit 0', () => {
  const v = spawnSync(installed, ['--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), version);
  const h = spawnSync(installed, ['--help'], { encoding: 'utf8' });
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /^Usage: sdwrap /);
  assert.equal(h.stderr, '');
});

test('man -w sdwrap finds the page the package installed', (t) => {
  const which = spawnSync('man', ['-w', 'sdwrap'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`, MANPATH: '' },
  });
  if (which.error && (which.error as NodeJS.ErrnoException).code === 'ENOENT') {
    if (process.env.CI) assert.fail('man is not installed (apt-get install man-db)');
    t.skip('man is not installed (apt-get install man-db)');
    return;
  }
  assert.equal(which.status, 0, which.stderr);
  assert.equal(realpathSync(which.stdout.trim()), realpathSync(path.join(prefix, 'share', 'man', 'man1', 'sdwrap.1')));
});

test('the installed binary wraps a real app: ready once the probe passes, metrics served, a clean stop, nothing left', async () => {
  const port = await freePort();
  const metricsPort = await freePort();
  const marker = testMarker();
  const run = runSdwrap(
    [
      '--no-systemd',
      '--metrics',
      String(metricsPort),
      '--log-format',
      'json',
      '--http',
      `http://127.0.0.1:${port}/healthz`,
      '--interval',
      '200ms',
      '--start-period',
      '10s',
      '--',
      process.execPath,
      SERVER,
      '--port',
      String(port),
    ],
    { bin: installed, marker },
  );
  const ready = await run.waitForLog((l) => l.msg === 'ready', 15_000, 'ready');
  assert.equal(typeof ready.childPid, 'number');
  // prom-client's files, as the installed package lays them out.
  const { status, body } = await scrape(metricsPort);
  assert.equal(status, 200);
  assert.equal(sample(body, 'sdwrap_ready'), 1);
  run.kill('SIGTERM');
  assert.deepEqual(await run.waitForExit(15_000), { code: 0, signal: null }, run.dump());
  await assertNoLeftovers(marker);
});
