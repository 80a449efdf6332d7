// What sdwrap says when it ends processes the app left behind: how many and which, and, when the app looks
// like a daemon that forked and exited 0, that --pid-file is the way to wrap it.
import { readFileSync } from 'node:fs';
import type { TreeMember } from './kill-tree.js';
import type { ChildStatus } from './lifecycle.js';

/** An exit 0 sooner than this after spawn, with processes left behind, looks like a daemon that forked. */
export const QUICK_EXIT_MS = 10_000;
/** The most processes named in one line; the count is always whole. */
const MAX_NAMED = 10;

interface LeftoverLine {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

const named = (members: readonly TreeMember[]) => ({
  count: members.length,
  processes: members.slice(0, MAX_NAMED).map((m) => `${m.pid} ${m.command}`),
  ...(members.length > MAX_NAMED ? { more: members.length - MAX_NAMED } : {}),
});

/**
 * The lines for ending `members` after the app's exit (none when there were none). `strays` are processes of
 * the unit's cgroup outside the app's tree (a daemon that left its session and lost its parent): not sdwrap's
 * to end (systemd's KillMode= does), but they make the --pid-file hint.
 */
export function leftoverLines(
  members: readonly TreeMember[],
  {
    status,
    uptimeMs,
    pidFile,
    strays = [],
  }: { status: ChildStatus | undefined; uptimeMs: number; pidFile: boolean; strays?: readonly TreeMember[] },
): LeftoverLine[] {
  const lines: LeftoverLine[] = [];
  if (members.length > 0) {
    lines.push({
      level: 'warn',
      msg: `ending ${members.length} leftover process${members.length === 1 ? '' : 'es'} of the app`,
      fields: named(members),
    });
  }
  const daemonized = status?.code === 0 && status.signal === null && uptimeMs < QUICK_EXIT_MS;
  if (daemonized && !pidFile && (members.length > 0 || strays.length > 0)) {
    lines.push({
      level: 'warn',
      msg: 'the app exited 0 and left processes running: if it daemonizes (forks into the background), run it in the foreground, or give --pid-file so sdwrap follows the daemon',
      fields: { uptimeMs: Math.round(uptimeMs), ...(strays.length > 0 ? { outsideTheTree: named(strays) } : {}) },
    });
  }
  return lines;
}

/**
 * Processes of sdwrap's own systemd service cgroup besides sdwrap: where a daemon that left the app's tree
 * still is. Empty unless sdwrap runs in a service's cgroup (cgroup v2, or v1's name=systemd hierarchy): a
 * shell's or container's cgroup holds unrelated processes.
 */
export function serviceCgroupStrays(ownPid: number, describe: (pid: number) => string): TreeMember[] {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return [];
  }
  // The unified hierarchy (pure v2, or hybrid's /sys/fs/cgroup/unified), or v1's name=systemd one.
  const v2 = lines.find((l) => l.startsWith('0::'))?.slice(3);
  const v1 = lines.find((l) => l.includes(':name=systemd:'))?.split(':')[2];
  const candidates = [
    ...(v2?.endsWith('.service') ? [`/sys/fs/cgroup${v2}`, `/sys/fs/cgroup/unified${v2}`] : []),
    ...(v1?.endsWith('.service') ? [`/sys/fs/cgroup/systemd${v1}`] : []),
  ];
  let procs: string | undefined;
  for (const dir of candidates) {
    try {
      procs = readFileSync(`${dir}/cgroup.procs`, 'utf8');
      break;
    } catch {
      // not mounted there
    }
  }
  if (procs === undefined) return [];
  return procs
    .split('\n')
    .map(Number)
    .filter((pid) => pid > 0 && pid !== ownPid)
    .map((pid) => ({ pid, command: describe(pid) }));
}
