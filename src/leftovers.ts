// What sdwrap says when it ends processes the app left behind: how many and which, and, when the app looks
// like a daemon that forked and exited 0, that --pid-file is the way to wrap it.
import type { TreeMember } from './kill-tree.js';
import type { ChildStatus } from './lifecycle.js';

/** An exit 0 sooner than this after spawn, with processes left behind, looks like a daemon that forked. */
export const QUICK_EXIT_MS = 10_000;
/** The most processes named in one line; the count is always whole. */
const MAX_NAMED = 10;

export interface LeftoverLine {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

/** The lines for ending `members` after the app's exit (none when there were none). */
export function leftoverLines(
  members: readonly TreeMember[],
  { status, uptimeMs, pidFile }: { status: ChildStatus | undefined; uptimeMs: number; pidFile: boolean },
): LeftoverLine[] {
  if (members.length === 0) return [];
  const processes = members.slice(0, MAX_NAMED).map((m) => `${m.pid} ${m.command}`);
  const lines: LeftoverLine[] = [
    {
      level: 'warn',
      msg: `ending ${members.length} leftover process${members.length === 1 ? '' : 'es'} of the app`,
      fields: { count: members.length, processes, ...(members.length > MAX_NAMED ? { more: members.length - MAX_NAMED } : {}) },
    },
  ];
  const daemonized = status?.code === 0 && status.signal === null && uptimeMs < QUICK_EXIT_MS;
  if (daemonized && !pidFile) {
    lines.push({
      level: 'warn',
      msg: 'the app exited 0 and left processes running: if it daemonizes (forks into the background), run it in the foreground, or give --pid-file so sdwrap follows the daemon',
      fields: { uptimeMs: Math.round(uptimeMs) },
    });
  }
  return lines;
}
