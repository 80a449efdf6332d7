// The lines about leftover processes: always how many and which; the --pid-file hint only for an app that
// exited 0 soon after spawn (a daemon that forked), and never when --pid-file is given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leftoverLines, QUICK_EXIT_MS } from '../../src/leftovers.js';

const members = [
  { pid: 41, command: 'nginx: master process' },
  { pid: 42, command: 'nginx: worker process' },
];
const exited0 = { code: 0, signal: null };

test('nothing left: nothing said', () => {
  assert.deepEqual(leftoverLines([], { status: exited0, uptimeMs: 10, pidFile: false }), []);
});

test('leftovers are counted and named, pid and command', () => {
  const [line] = leftoverLines(members, { status: { code: 1, signal: null }, uptimeMs: 10, pidFile: false });
  assert.deepEqual(line, {
    level: 'warn',
    msg: 'ending 2 leftover processes of the app',
    fields: { count: 2, processes: ['41 nginx: master process', '42 nginx: worker process'] },
  });
});

test('many leftovers: the first ten named, the count whole', () => {
  const many = Array.from({ length: 13 }, (_, i) => ({ pid: 100 + i, command: 'worker' }));
  const [line] = leftoverLines(many, { status: undefined, uptimeMs: 0, pidFile: false });
  assert.equal(line!.fields.count, 13);
  assert.equal((line!.fields.processes as string[]).length, 10);
  assert.equal(line!.fields.more, 3);
});

test('the --pid-file hint: exit 0 soon after spawn, without --pid-file, only', () => {
  const hint = (status: { code: number | null; signal: NodeJS.Signals | null }, uptimeMs: number, pidFile: boolean) =>
    leftoverLines(members, { status, uptimeMs, pidFile }).some((l) => l.msg.includes('--pid-file'));
  assert.equal(hint(exited0, 200, false), true);
  assert.equal(hint(exited0, 200, true), false, 'given --pid-file already');
  assert.equal(hint({ code: 3, signal: null }, 200, false), false, 'a failure is not a daemon forking');
  assert.equal(hint({ code: null, signal: 'SIGTERM' }, 200, false), false);
  assert.equal(hint(exited0, QUICK_EXIT_MS + 1, false), false, 'a long run that ended with helpers left is not a daemon forking');
});

test("a daemon outside the tree (found in the unit's cgroup) makes the hint, and is not counted as ended", () => {
  const strays = [{ pid: 77, command: 'legacyd --daemon' }];
  const lines = leftoverLines([], { status: exited0, uptimeMs: 300, pidFile: false, strays });
  assert.equal(lines.length, 1);
  assert.match(lines[0]!.msg, /give --pid-file/);
  assert.deepEqual(lines[0]!.fields.outsideTheTree, { count: 1, processes: ['77 legacyd --daemon'] });
  assert.deepEqual(leftoverLines([], { status: exited0, uptimeMs: 300, pidFile: false }), []);
});
