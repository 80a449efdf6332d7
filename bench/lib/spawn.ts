// A bounded process runner: every process the benchmark starts goes through here (or carries the same
// marker), so cleanup() can find and SIGKILL whatever is left, by the marker in /proc/PID/environ.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processesWithEnv, testMarker } from '../../test/helpers/processes.js';
import { waitFor } from '../../test/helpers/wait.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The sdwrap under test; BENCH_SDWRAP_BIN points the suite at another build (e.g. an experimental bundle). */
export const SDWRAP_BIN = process.env.BENCH_SDWRAP_BIN || fileURLToPath(new URL('../../bin/sdwrap.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const TEST_FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** One marker for the whole run: every process the benchmark starts inherits it. */
export const MARKER = testMarker();

/** Variables of the benchmark's own environment that must not reach what it runs. */
const STRIPPED_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'JOURNAL_STREAM', 'SDWRAP_LOG_FORMAT'];

/** The environment for a spawned process: ours, minus systemd's variables, plus the marker and `extra`. */
export function benchEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of STRIPPED_ENV) delete env[k];
  Object.assign(env, MARKER.env);
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface Line {
  text: string;
  /** Date.now() when the line was read. */
  at: number;
  /** Parsed JSON object (stderr lines of sdwrap), if the line is one. */
  json?: Record<string, unknown>;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() and process.hrtime.bigint() when 'exit' fired. */
  at: number;
  mono: bigint;
}

const live = new Set<Proc>();

export class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: Line[] = [];
  readonly stderr: Line[] = [];
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  readonly #events = new EventEmitter();

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    opts: { env?: Record<string, string | undefined>; stdio?: 'pipe' | 'ignore-out' } = {},
  ) {
    this.#events.setMaxListeners(0);
    const stdio: StdioOptions = opts.stdio === 'ignore-out' ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'pipe', 'pipe'];
    this.child = spawn(command, args as string[], { cwd: REPO_ROOT, env: benchEnv(opts.env), stdio });
    if (this.child.pid === undefined) throw new Error(`cannot spawn ${command}`);
    this.pid = this.child.pid;
    live.add(this);
    const closed: Promise<void>[] = [];
    for (const [name, stream, lines] of [
      ['stdout', this.child.stdout, this.stdout],
      ['stderr', this.child.stderr, this.stderr],
    ] as const) {
      if (!stream) continue;
      closed.push(
        new Promise<void>((resolve) => {
          createInterface({ input: stream, crlfDelay: Infinity })
            .on('line', (text) => {
              const line: Line = { text, at: Date.now() };
              if (text.startsWith('{') || text.startsWith('<')) {
                try {
                  line.json = JSON.parse(text.replace(/^<\d+>/, '')) as Record<string, unknown>;
                } catch {
                  // not a log line
                }
              }
              lines.push(line);
              this.#events.emit(name, line);
            })
            .once('close', resolve);
        }),
      );
    }
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('exit', (code, signal) => {
        const exit: Exit = { code, signal, at: Date.now(), mono: process.hrtime.bigint() };
        // Let the pipes drain, but never wait on an orphan holding them.
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((r) => (timer = setTimeout(r, 1000)));
        void Promise.race([Promise.all(closed), grace]).then(() => {
          clearTimeout(timer);
          this.exit = exit;
          live.delete(this);
          this.#events.emit('exit');
          resolve(exit);
        });
      });
    });
  }

  /** First line of `stream` (already read or future) for which `pick` returns something. */
  waitLine<T>(stream: 'stdout' | 'stderr', pick: (l: Line) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const lines = stream === 'stdout' ? this.stdout : this.stderr;
    for (const l of lines) {
      const v = pick(l);
      if (v !== undefined) return Promise.resolve(v);
    }
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#events.off(stream, onLine);
        this.#events.off('exit', onExit);
      };
      const onLine = (l: Line) => {
        const v = pick(l);
        if (v !== undefined) {
          done();
          resolve(v);
        }
      };
      const onExit = () => {
        done();
        reject(new Error(`${this.describe()} exited while waiting for ${what}\n${this.tail()}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.describe()}\n${this.tail()}`));
      }, timeoutMs);
      this.#events.on(stream, onLine);
      this.#events.once('exit', onExit);
    });
  }

  waitStdout(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return this.waitLine('stdout', (l) => l.text.match(re) ?? undefined, timeoutMs, `stdout ${re}`);
  }

  /** The first sdwrap JSON log line with this msg. */
  waitLog(msg: string, timeoutMs = 10_000): Promise<Line> {
    return this.waitLine('stderr', (l) => (l.json?.msg === msg ? l : undefined), timeoutMs, `log "${msg}"`);
  }

  /** Exit status, or throws after timeoutMs (then SIGKILLs, so nothing is left behind). */
  async waitExit(timeoutMs = 10_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill('SIGKILL');
        reject(new Error(`${this.describe()} did not exit within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // gone
      }
    }
  }

  describe(): string {
    return `${[this.command, ...this.args].join(' ')} (pid ${this.pid})`;
  }

  tail(n = 15): string {
    const pick = (ls: Line[]) =>
      ls
        .slice(-n)
        .map((l) => `  ${l.text}`)
        .join('\n');
    return `--- stdout ---\n${pick(this.stdout)}\n--- stderr ---\n${pick(this.stderr)}`;
  }
}

/** `node bin/sdwrap.js ...args`. */
export function startSdwrap(args: readonly string[], env: Record<string, string | undefined> = {}): Proc {
  return new Proc(process.execPath, [SDWRAP_BIN, ...args], { env });
}

/** SIGKILLs every process started here that is still alive, then everything else carrying the marker. */
export async function cleanup(): Promise<number> {
  let killed = 0;
  const procs = [...live];
  for (const p of procs) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.kill('SIGKILL');
      killed += 1;
    }
  }
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 3000))]);
  for (let round = 0; round < 3; round++) {
    const left = processesWithEnv(MARKER.key, MARKER.value);
    if (left.length === 0) break;
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGCONT');
        process.kill(p.pid, 'SIGKILL');
        killed += 1;
      } catch {
        // gone
      }
    }
    await waitFor(() => processesWithEnv(MARKER.key, MARKER.value).length === 0, { timeout: 2000, interval: 25 }).catch(() => undefined);
  }
  return killed;
}
