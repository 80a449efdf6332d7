/**
 * Runs the real sdwrap CLI (`node <repo>/bin/sdwrap.js ...args`) as a child
 * process and collects its output line by line, parsing JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processesWithEnv, testMarker } from './processes.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SDWRAP_BIN = fileURLToPath(new URL('../../bin/sdwrap.js', import.meta.url));
const BUNDLE = join(REPO_ROOT, 'dist/sdwrap.cjs');

let buildChecked = false;

/** The newest modification time of the files under `dir`, recursively. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The process tests run the bundle (dist/sdwrap.cjs), not src/: fail loudly, once, when it is missing or older
 * than anything it is built from, rather than test an old build. `npm run test:process` builds first.
 */
export function assertFreshBuild(): void {
  if (buildChecked) return;
  let built: number;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    throw new Error(`${BUNDLE} is missing: run \`npm run build\` (npm run test:process does) before the process tests`);
  }
  const sources = Math.max(newestMtime(join(REPO_ROOT, 'src')), statSync(join(REPO_ROOT, 'build/bundle.mjs')).mtimeMs);
  if (sources > built) {
    throw new Error(`${BUNDLE} is older than src/: run \`npm run build\` (npm run test:process does), or the tests check an old build`);
  }
  buildChecked = true;
}

/** Env vars that must not leak from the test runner into sdwrap. */
const STRIPPED_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'JOURNAL_STREAM', 'SDWRAP_LOG_FORMAT'];

/** How long to wait, after the process exits, for its pipes to drain/close. */
const DRAIN_GRACE_MS = 1000;
const DUMP_MAX_LINES = 300;

export type LogLine = Record<string, unknown>;

export interface SdwrapExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SdwrapRun {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** stdout lines, as they arrive. */
  readonly stdout: string[];
  /** stderr lines, as they arrive. */
  readonly stderr: string[];
  /** stderr lines that parsed as JSON objects; a leading `<N>` syslog prefix is stripped and kept in `_prefix` (e.g. "<6>"). */
  readonly logs: LogLine[];
  /** Resolves when the process has exited and its pipes were drained (or DRAIN_GRACE_MS passed). */
  readonly exited: Promise<SdwrapExit>;
  /** Exit status once known, else undefined. */
  readonly exitStatus: SdwrapExit | undefined;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  waitForStdout(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit status, or rejects (with dump()) after timeoutMs. Does not kill. */
  waitForExit(timeoutMs?: number): Promise<SdwrapExit>;
  /** Sends a signal (default SIGTERM) if the process is still running. */
  kill(sig?: NodeJS.Signals): void;
  /** stdout + stderr (last lines) for assertion messages. */
  dump(): string;
}

export interface RunSdwrapOptions {
  /** Extra env; a value of undefined deletes the key. */
  env?: Record<string, string | undefined>;
  /** Sets NOTIFY_SOCKET (e.g. NotifyListener.address). */
  notifySocket?: string;
  /** From testMarker(): merged into env so every descendant can be found later. */
  marker?: { env: Record<string, string> };
  cwd?: string;
  /** Script to run instead of bin/sdwrap.js (for testing the harness itself). */
  bin?: string;
  /** A command that execs node with sdwrap in its place (same pid), e.g. ['systemd-socket-activate', '-l', ADDR]. */
  launcher?: readonly string[];
}

const active = new Set<RunImpl>();
const activeMarkers = new Set<string>();

/** Parses one stderr line as a JSON log object (after an optional `<N>` prefix). */
export function parseLogLine(line: string): LogLine | undefined {
  const m = /^(<\d+>)?\s*(\{.*)$/.exec(line);
  if (!m) return undefined;
  try {
    const obj: unknown = JSON.parse(m[2]!);
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
    const log = obj as LogLine;
    if (m[1] !== undefined) log._prefix = m[1];
    return log;
  } catch {
    return undefined;
  }
}

function tail(lines: string[], n: number): string {
  if (lines.length <= n) return lines.join('\n');
  return `[... ${lines.length - n} earlier lines omitted ...]\n${lines.slice(-n).join('\n')}`;
}

class RunImpl implements SdwrapRun {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly logs: LogLine[] = [];
  readonly exited: Promise<SdwrapExit>;
  exitStatus: SdwrapExit | undefined;
  private readonly events = new EventEmitter();
  private readonly args: string[];

  constructor(args: string[], opts: RunSdwrapOptions) {
    if (opts.bin === undefined) assertFreshBuild();
    this.args = args;
    this.events.setMaxListeners(0);
    const env: Record<string, string | undefined> = { ...process.env };
    for (const k of STRIPPED_ENV) delete env[k];
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    if (opts.notifySocket !== undefined) env.NOTIFY_SOCKET = opts.notifySocket;
    // Every run carries a marker, so stopAll() can end what a failed test left behind (the app lives in a
    // session of its own and outlives a SIGKILLed sdwrap).
    const marker = opts.marker ?? testMarker();
    Object.assign(env, marker.env);
    for (const [k, v] of Object.entries(marker.env)) activeMarkers.add(`${k}=${v}`);

    const launcher = opts.launcher ?? [];
    const argv = [...launcher, process.execPath, opts.bin ?? SDWRAP_BIN, ...args];
    this.proc = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd ?? REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.proc.pid === undefined) {
      // spawn of node itself failing is essentially impossible, but keep types honest
      throw new Error(`failed to spawn ${process.execPath} ${opts.bin ?? SDWRAP_BIN}`);
    }
    this.pid = this.proc.pid;

    const outClosed = new Promise<void>((resolve) => {
      createInterface({ input: this.proc.stdout!, crlfDelay: Infinity })
        .on('line', (line) => {
          this.stdout.push(line);
          this.events.emit('stdout', line);
        })
        .once('close', resolve);
    });
    const errClosed = new Promise<void>((resolve) => {
      createInterface({ input: this.proc.stderr!, crlfDelay: Infinity })
        .on('line', (line) => {
          this.stderr.push(line);
          this.events.emit('stderr', line);
          const log = parseLogLine(line);
          if (log) {
            this.logs.push(log);
            this.events.emit('log', log);
          }
        })
        .once('close', resolve);
    });

    this.exited = new Promise<SdwrapExit>((resolve) => {
      this.proc.once('exit', (code, signal) => {
        // Let the pipes drain, but don't hang if an orphan still holds them.
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((r) => {
          timer = setTimeout(r, DRAIN_GRACE_MS);
        });
        void Promise.race([Promise.all([outClosed, errClosed]), grace]).then(() => {
          clearTimeout(timer);
          this.exitStatus = { code, signal };
          active.delete(this);
          this.events.emit('exited');
          resolve(this.exitStatus);
        });
      });
    });
    active.add(this);
  }

  private waitForEvent<T>(
    event: string,
    check: (item: unknown) => T | undefined,
    existing: unknown[],
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    for (const item of existing) {
      const hit = check(item);
      if (hit !== undefined) return Promise.resolve(hit);
    }
    return new Promise<T>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off(event, onItem);
        this.events.off('exited', onExit);
      };
      const onItem = (item: unknown) => {
        let hit: T | undefined;
        try {
          hit = check(item);
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (hit !== undefined) {
          cleanup();
          resolve(hit);
        }
      };
      const onExit = () => {
        cleanup();
        const s = this.exitStatus;
        reject(new Error(`sdwrap exited (code=${s?.code} signal=${s?.signal}) before ${what}\n${this.dump()}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.dump()}`));
      }, timeoutMs);
      this.events.on(event, onItem);
      if (this.exitStatus) {
        // Everything that will ever arrive has arrived.
        queueMicrotask(onExit);
      } else {
        this.events.once('exited', onExit);
      }
    });
  }

  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 10_000, what = 'matching log line'): Promise<LogLine> {
    return this.waitForEvent<LogLine>(
      'log',
      (l) => (pred(l as LogLine) ? (l as LogLine) : undefined),
      this.logs,
      timeoutMs,
      `log: ${what}`,
    );
  }

  waitForStdout(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return this.waitForLine('stdout', this.stdout, re, timeoutMs);
  }

  waitForStderr(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return this.waitForLine('stderr', this.stderr, re, timeoutMs);
  }

  private waitForLine(stream: 'stdout' | 'stderr', lines: string[], re: RegExp, timeoutMs: number) {
    // A /g or /y regex keeps lastIndex state between lines: use a clean copy.
    const rx = new RegExp(re.source, re.flags.replace(/[gy]/g, ''));
    return this.waitForEvent<RegExpMatchArray>(
      stream,
      (line) => (line as string).match(rx) ?? undefined,
      lines,
      timeoutMs,
      `${stream} line matching ${re}`,
    );
  }

  waitForExit(timeoutMs = 10_000): Promise<SdwrapExit> {
    if (this.exitStatus) return Promise.resolve(this.exitStatus);
    return new Promise<SdwrapExit>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sdwrap did not exit within ${timeoutMs} ms\n${this.dump()}`)), timeoutMs);
      void this.exited.then((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  kill(sig: NodeJS.Signals = 'SIGTERM'): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        this.proc.kill(sig);
      } catch {
        // already gone
      }
    }
  }

  dump(): string {
    const status = this.exitStatus ? `exited code=${this.exitStatus.code} signal=${this.exitStatus.signal}` : 'still running';
    return [
      `=== sdwrap pid=${this.pid} (${status}) args: ${JSON.stringify(this.args)}`,
      `--- stdout (${this.stdout.length} lines) ---`,
      tail(this.stdout, DUMP_MAX_LINES),
      `--- stderr (${this.stderr.length} lines) ---`,
      tail(this.stderr, DUMP_MAX_LINES),
      '=== end sdwrap output',
    ].join('\n');
  }
}

/** Spawns `node bin/sdwrap.js ...args`. Register `t.after(stopAll)` for cleanup. */
export function runSdwrap(args: string[], opts: RunSdwrapOptions = {}): SdwrapRun {
  return new RunImpl(args, opts);
}

/**
 * Cleanup for t.after: SIGKILLs every run still alive and waits for it to exit,
 * then SIGKILLs any process still carrying the marker of a run started via
 * `opts.marker` (hygiene only: call assertNoLeftovers in the test body to
 * actually assert there are none).
 */
export async function stopAll(): Promise<void> {
  const runs = [...active];
  for (const run of runs) run.kill('SIGKILL');
  await Promise.all(runs.map((r) => r.exited));
  for (const entry of activeMarkers) {
    const eq = entry.indexOf('=');
    for (const p of processesWithEnv(entry.slice(0, eq), entry.slice(eq + 1))) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  activeMarkers.clear();
}
