// Fault injection: /proc mounted with hidepid=2 (other users' processes invisible, as on hardened hosts), sdwrap
// and its app running as an unprivileged user. A proc instance of its own in a mount namespace of its own: the
// host's /proc is untouched, and the processes stay in the host's pid namespace, so leftovers would show.
// sdwrap's tree scan sees what it must (its own user's), kills the whole tree, escaped grandchild included.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { assertFreshBuild, parseLogLine, SDWRAP_BIN, type LogLine } from '../helpers/run-sdwrap.js';
import { assertNoLeftovers, testMarker } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'sdwrap-faults-proc-'));
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

const missing = ['unshare', 'setpriv'].find((tool) => spawnSync(tool, ['--version']).error);
const why = process.getuid?.() !== 0 ? 'needs root (unshare, mount)' : missing ? `${missing} is not installed` : false;

test(
  '/proc with hidepid=2, sdwrap as nobody: the tree (a setsid grandchild too) is killed whole when unhealthy',
  { skip: why },
  async () => {
    assertFreshBuild();
    const marker = testMarker();
    const flag = join(dir, 'fail');
    const sdwrap = [
      process.execPath,
      SDWRAP_BIN,
      '--exec',
      `test ! -e ${flag}`,
      '--interval',
      '100ms',
      '--failure-threshold',
      '2',
      '--stop-timeout',
      '1s',
    ];
    // The app starts a grandchild in a session of its own (out of the group kill's reach: only the scan finds it).
    const app = ['sh', '-c', 'setsid sleep 60 & sleep 60'];
    const inner = `mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"`;
    const proc = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', inner, 'sh', ...sdwrap, '--', ...app], {
      env: { ...process.env, ...marker.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const logs: LogLine[] = [];
    const lines: string[] = [];
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      lines.push(line);
      const log = parseLogLine(line);
      if (log) logs.push(log);
    });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => logs.some((l) => l.msg === 'ready'), { timeout: 10_000, message: () => lines.join('\n') });
      writeFileSync(flag, '');
      const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000))]);
      assert.equal(code, 69, lines.join('\n'));
      assert.ok(
        logs.some((l) => l.msg === 'unhealthy: killing the child'),
        lines.join('\n'),
      );
      await assertNoLeftovers(marker);
    } finally {
      proc.kill('SIGKILL');
    }
  },
);
