// Signalling and waiting for the child's whole tree. The process group goes first (one kill reaches every
// process that stayed in it), then every other member found in /proc: processes of the child's session
// that changed group, and descendants that left the session with setsid() while their parent lives.
// Where /proc is missing (not Linux), tree-kill walks `ps` for the descendants instead.
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import treeKill from 'tree-kill';

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  zombie: boolean;
}

const HAS_PROC = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

/** One buffer for every read: a scan reads a few hundred small files, and allocating for each shows. */
const STAT_BUFFER = Buffer.alloc(4096);

function readProc(pid: number): Proc | undefined {
  let stat: string;
  let fd: number | undefined;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
    const n = readSync(fd, STAT_BUFFER, 0, STAT_BUFFER.length, 0);
    stat = STAT_BUFFER.toString('latin1', 0, n);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  // comm may hold spaces and parentheses: the fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  return { pid, ppid: Number(fields[1]), pgid: Number(fields[2]), sid: Number(fields[3]), zombie: state === 'Z' || state === 'X' };
}

/** Live (non-zombie) processes that belong to the tree rooted at `root`, which leads its own session. */
export function treeMembers(root: number): number[] {
  if (!HAS_PROC) return groupAlive(root) ? [root] : [];
  const all: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const p = readProc(pid);
    if (p) all.push(p);
  }
  const members = new Set<number>();
  for (const p of all) if (p.pid === root || p.sid === root || p.pgid === root) members.add(p.pid);
  // Close over parent links: a descendant that called setsid() is still someone's child.
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!members.has(p.pid) && members.has(p.ppid)) {
        members.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => members.has(p.pid) && !p.zombie && p.pid !== process.pid).map((p) => p.pid);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone: the goal
  }
}

/** Sends each of `signals`, in order, to every process of the tree (one /proc scan for all); returns how
 * many processes it found besides those the group signal reached. */
export function signalTree(root: number, ...signals: NodeJS.Signals[]): number {
  return signalTreeMembers(root, ...signals).length;
}

/** A process sdwrap signalled, for the line that says what it ended. */
export interface TreeMember {
  readonly pid: number;
  /** Its command line, arguments joined by spaces (its name in brackets when it has none, as ps shows). */
  readonly command: string;
}

/** signalTree, returning the processes it found (read before they are signalled), pid and command each. */
function signalTreeMembers(root: number, ...signals: NodeJS.Signals[]): TreeMember[] {
  if (!HAS_PROC) {
    for (const signal of signals) {
      signalQuietly(-root, signal);
      treeKill(root, signal, () => {});
    }
    return [];
  }
  const members = treeMembers(root);
  const described = members.map((pid) => ({ pid, command: commandOf(pid) }));
  for (const signal of signals) {
    signalQuietly(-root, signal);
    for (const pid of members) signalQuietly(pid, signal);
  }
  return described;
}

/** The longest command shown per process: a log line names it, it does not archive it. */
const MAX_COMMAND = 200;

/** /proc/<pid>/cmdline with its NULs as spaces; `[comm]` for a process without one (a kernel thread, a zombie). */
export function commandOf(pid: number): string {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
    if (cmdline !== '') return cmdline.length > MAX_COMMAND ? `${cmdline.slice(0, MAX_COMMAND)}…` : cmdline;
    return `[${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}]`;
  } catch {
    return '?';
  }
}

/** SIGTERM, then SIGCONT as systemd does, so a stopped (SIGSTOPped, hung) process can act on the TERM at once;
 * returns how many processes were found (0: the tree is already gone). */
export function terminateTree(root: number): number {
  return signalTree(root, 'SIGTERM', 'SIGCONT');
}

/** terminateTree, returning the processes it found: what was left of a tree whose head already exited. */
export function terminateLeftovers(root: number): TreeMember[] {
  return signalTreeMembers(root, 'SIGTERM', 'SIGCONT');
}

/** Resolves once no live process of the tree remains; polls because Linux has no event for it. */
export function waitTreeGone(root: number, { pollMs = 20, signal }: { pollMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (signal?.aborted || treeMembers(root).length === 0) return resolve();
      setTimeout(check, pollMs);
    };
    check();
  });
}

/** What the supervisor does to the app's processes, passed in so a test can stand in for it. */
export interface ProcessControl {
  /** kill(2) of one process; quiet if it is gone (its exit event is on its way). */
  signal(pid: number, signal: NodeJS.Signals): void;
  /** SIGTERM and SIGCONT to the tree; how many processes it found (0: the tree is gone). */
  terminateTree(root: number): number;
  /** SIGKILL to the tree. */
  killTree(root: number): void;
  /** Resolves once no live process of the tree remains. */
  waitTreeGone(root: number): Promise<void>;
}

export const processControl: ProcessControl = {
  signal: signalQuietly,
  terminateTree,
  killTree: (root) => void signalTree(root, 'SIGKILL'),
  waitTreeGone: (root) => waitTreeGone(root),
};
