/**
 * Linux /proc process inspection (no `ps`). Used to prove that sdwrap leaves
 * no process behind: spawn sdwrap with a unique env marker (every descendant
 * inherits it), then assert that no live process carries it any more.
 */
import { AssertionError } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './wait.js';

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Single-letter state from /proc/PID/stat (R, S, D, Z, T, X, I, ...). */
  state: string;
  comm: string;
  /** argv (empty for kernel threads and zombies). */
  cmdline: string[];
}

const MARKER_KEY = 'SDWRAP_TEST_MARKER';

function isIgnorableFsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'EPERM';
}

/**
 * Parses the content of /proc/PID/stat. comm may contain spaces and parens,
 * so the comm field ends at the LAST ')'.
 */
export function parseStat(content: string): Omit<ProcInfo, 'cmdline'> {
  const open = content.indexOf('(');
  const close = content.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`unparseable stat: ${JSON.stringify(content)}`);
  const pid = Number(content.slice(0, open).trim());
  const comm = content.slice(open + 1, close);
  // After ") ": state ppid pgrp session tty_nr ...
  const rest = content.slice(close + 2).split(' ');
  return {
    pid,
    comm,
    state: rest[0] ?? '?',
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
  };
}

function readCmdline(pid: number): string[] {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return [];
    const parts = raw.split('\0');
    if (parts[parts.length - 1] === '') parts.pop();
    return parts;
  } catch (err) {
    if (isIgnorableFsError(err)) return [];
    throw err;
  }
}

/** Info for one pid, or undefined if it does not exist (any more). */
export function readProc(pid: number): ProcInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (isIgnorableFsError(err)) return undefined;
    throw err;
  }
  return { ...parseStat(stat), cmdline: readCmdline(pid) };
}

/** All processes visible in /proc (threads are not listed). */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readProc(Number(name));
    if (info) out.push(info);
  }
  return out;
}

function isZombieState(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

/** True if the pid exists and is not a zombie/dead (state Z or X). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !isZombieState(parseStat(stat).state);
  } catch (err) {
    if (isIgnorableFsError(err)) return false;
    throw err;
  }
}

/** Live (non-zombie) descendants of `pid` (by ppid chain), not including pid itself. */
export function descendantsOf(pid: number): ProcInfo[] {
  const procs = listProcesses();
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = byParent.get(p.ppid) ?? [];
    list.push(p);
    byParent.set(p.ppid, list);
  }
  const out: ProcInfo[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const cur = queue.shift()!;
    for (const child of byParent.get(cur) ?? []) {
      if (!isZombieState(child.state)) out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

function environHas(pid: number, needle: string): boolean {
  let buf: Buffer;
  try {
    buf = readFileSync(`/proc/${pid}/environ`);
  } catch (err) {
    if (isIgnorableFsError(err)) return false;
    throw err;
  }
  for (const entry of buf.toString('utf8').split('\0')) {
    if (entry === needle) return true;
  }
  return false;
}

/** Live (non-zombie) processes whose initial environment contains KEY=VALUE. */
export function processesWithEnv(key: string, value: string): ProcInfo[] {
  const needle = `${key}=${value}`;
  return listProcesses().filter((p) => p.pid !== process.pid && !isZombieState(p.state) && environHas(p.pid, needle));
}

export interface TestMarker {
  key: string;
  value: string;
  /** `{ [key]: value }`, ready to merge into a spawn env. */
  env: Record<string, string>;
}

/** A unique SDWRAP_TEST_MARKER=<random> to put into a spawned process's env. */
export function testMarker(): TestMarker {
  const value = `${process.pid}-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  return { key: MARKER_KEY, value, env: { [MARKER_KEY]: value } };
}

function describeProcs(procs: ProcInfo[]): string {
  return procs
    .map(
      (p) =>
        `  pid=${p.pid} ppid=${p.ppid} pgid=${p.pgid} sid=${p.sid} state=${p.state} ` +
        `cmd=${JSON.stringify(p.cmdline.length ? p.cmdline.join(' ') : `[${p.comm}]`)}`,
    )
    .join('\n');
}

/**
 * Waits until no live process carries the marker. On timeout, SIGKILLs every
 * such process (so one failing test does not leak into the next) and throws an
 * AssertionError listing them.
 */
export async function assertNoLeftovers(marker: { key: string; value: string }, timeoutMs = 5000): Promise<void> {
  try {
    await waitFor(() => processesWithEnv(marker.key, marker.value).length === 0, {
      timeout: timeoutMs,
      interval: 50,
    });
    return;
  } catch {
    // fall through: report and clean up
  }
  const leftovers = processesWithEnv(marker.key, marker.value);
  if (leftovers.length === 0) return; // vanished in the meantime
  for (const p of leftovers) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Give the kernel a moment to reap/kill them; ignore the outcome.
  await waitFor(() => processesWithEnv(marker.key, marker.value).length === 0, {
    timeout: 2000,
    interval: 25,
  }).catch(() => undefined);
  throw new AssertionError({
    message:
      `${leftovers.length} process(es) with ${marker.key}=${marker.value} still alive after ` +
      `${timeoutMs} ms (now SIGKILLed):\n${describeProcs(leftovers)}`,
  });
}
