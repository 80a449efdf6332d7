// --pid-file and --notify-passthrough in the config: defaults, the wait for the pid file, a bad
// path named, and both keys from a config file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '../../src/config.js';
import { loadConfigFile } from '../../src/config-file.js';
import { UsageError } from '../../src/errors.js';

const cmd = ['./legacyd', '--daemon'];
const dir = mkdtempSync(join(tmpdir(), 'sdwrap-config-legacy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('off by default', () => {
  const c = buildConfig({}, cmd, false);
  assert.equal(c.pidFile, undefined);
  assert.equal(c.notifyPassthrough, false);
});

test('--pid-file: awaited for the start period, or --timeout without one (2s by default)', () => {
  assert.equal(buildConfig({ pidFile: '/run/x.pid' }, cmd, false).pidFileWaitMs, 2000);
  assert.equal(buildConfig({ pidFile: '/run/x.pid', timeout: '700ms' }, cmd, false).pidFileWaitMs, 700);
  assert.equal(buildConfig({ pidFile: '/run/x.pid', startPeriod: '30s', timeout: '700ms' }, cmd, false).pidFileWaitMs, 30_000);
  assert.equal(buildConfig({ pidFile: 'run/x.pid' }, cmd, false).pidFile, 'run/x.pid', 'relative: from the working directory');
});

test('--pid-file: an empty path or a directory is refused, naming the flag', () => {
  for (const bad of ['', '  ', '/run/']) {
    assert.throws(
      () => buildConfig({ pidFile: bad }, cmd, false),
      (error: UsageError) =>
        error.code === 'SDWRAP_USAGE' && error.message.startsWith('--pid-file expects the path of the file the daemon writes'),
    );
  }
});

test('a config file: pidFile and notifyPassthrough', async () => {
  const file = join(dir, 'legacy.json');
  writeFileSync(file, JSON.stringify({ pidFile: '/run/legacyd.pid', notifyPassthrough: true, command: cmd }));
  const { options } = await loadConfigFile(file);
  const c = buildConfig(options, cmd, false);
  assert.equal(c.pidFile, '/run/legacyd.pid');
  assert.equal(c.notifyPassthrough, true);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ notifyPassthrough: 'yes' }));
  await assert.rejects(loadConfigFile(bad), /notifyPassthrough/);
});
