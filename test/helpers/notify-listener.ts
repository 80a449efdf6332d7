/**
 * Test-side sd_notify receiver. Spawns notify_listener.py (python3 stdlib),
 * which binds an AF_UNIX datagram socket with SO_PASSCRED and prints one JSON
 * line per datagram (with sender credentials). Put `listener.address` into
 * NOTIFY_SOCKET of the process under test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./notify_listener.py', import.meta.url));

export interface NotifyMessage {
  /** Sender pid from SCM_CREDENTIALS (-1 if none). */
  pid: number;
  uid: number;
  gid: number;
  /** Raw datagram text. */
  raw: string;
  /** Parsed newline-separated KEY=VALUE lines (last one wins on duplicates). */
  fields: Record<string, string>;
  /** Date.now() when node received the line from the listener. */
  at: number;
  /** When the listener received the datagram (epoch ms, its own clock reading): unlike `at`, not delayed by
   * the test process being busy. */
  receivedAt: number;
}

export function parseNotifyFields(raw: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of raw.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

function describe(messages: NotifyMessage[]): string {
  if (messages.length === 0) return '  (no notify messages received)';
  return messages.map((m, i) => `  #${i} pid=${m.pid} ${JSON.stringify(m.raw)}`).join('\n');
}

export class NotifyListener {
  readonly address: string;
  readonly messages: NotifyMessage[] = [];
  readonly stderr: string[] = [];
  private readonly events = new EventEmitter();
  private readonly child: ChildProcess;
  private readonly tmpDir: string | undefined;
  private readonly exited: Promise<void>;
  private closed = false;

  private constructor(address: string, child: ChildProcess, tmpDir: string | undefined) {
    this.address = address;
    this.child = child;
    this.tmpDir = tmpDir;
    this.events.setMaxListeners(0);
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else {
        child.once('exit', () => resolve());
        child.once('error', () => resolve()); // spawn failure: no 'exit' follows
      }
    });
  }

  /**
   * Starts a listener on a fresh temp-dir socket path, or on a random abstract
   * address (`@sdwrap-test-<hex>`) with `{ abstract: true }`, or on `path`. Resolves once the
   * socket is bound.
   */
  static async start(opts: { abstract?: boolean; timeoutMs?: number; path?: string } = {}): Promise<NotifyListener> {
    let tmpDir: string | undefined;
    let address: string;
    if (opts.path !== undefined) {
      // A given path (a listener coming back where another was): its directory is the caller's.
      address = opts.path;
    } else if (opts.abstract) {
      address = `@sdwrap-test-${process.pid}-${randomBytes(6).toString('hex')}`;
    } else {
      tmpDir = mkdtempSync(path.join(tmpdir(), 'sdwrap-notify-'));
      address = path.join(tmpDir, 'notify.sock');
    }
    const child = spawn('python3', ['-u', SCRIPT, address], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const listener = new NotifyListener(address, child, tmpDir);
    try {
      await listener.init(opts.timeoutMs ?? 10_000);
    } catch (err) {
      await listener.close();
      throw err;
    }
    return listener;
  }

  private init(timeoutMs: number): Promise<void> {
    const child = this.child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => this.stderr.push(chunk));
    const rl = createInterface({ input: child.stdout!, crlfDelay: Infinity });
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      const timer = setTimeout(() => {
        reject(new Error(`notify listener did not start within ${timeoutMs} ms: ${this.stderr.join('')}`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!listening) {
          reject(new Error(`notify listener exited early (code=${code} signal=${signal}): ${this.stderr.join('')}`));
        }
        this.events.emit('exit');
      });
      rl.on('line', (line) => {
        if (!listening) {
          if (line === 'LISTENING') {
            listening = true;
            clearTimeout(timer);
            resolve();
          }
          return;
        }
        let parsed: { pid: number; uid: number; gid: number; data: string; t: number };
        try {
          parsed = JSON.parse(line);
        } catch {
          this.stderr.push(`unparseable listener line: ${line}\n`);
          return;
        }
        const msg: NotifyMessage = {
          pid: parsed.pid,
          uid: parsed.uid,
          gid: parsed.gid,
          raw: parsed.data,
          fields: parseNotifyFields(parsed.data),
          at: Date.now(),
          receivedAt: parsed.t * 1000,
        };
        this.messages.push(msg);
        this.events.emit('message', msg);
      });
    });
  }

  /**
   * Resolves with the first message (already received or future) matching
   * `pred`. On timeout rejects with an error listing every message so far.
   */
  waitFor(pred: (m: NotifyMessage) => boolean, timeoutMs = 10_000, what = 'matching notify message'): Promise<NotifyMessage> {
    const existing = this.messages.find(pred);
    if (existing) return Promise.resolve(existing);
    return new Promise<NotifyMessage>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off('message', onMessage);
        this.events.off('exit', onExit);
      };
      const onMessage = (m: NotifyMessage) => {
        let ok = false;
        try {
          ok = pred(m);
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (ok) {
          cleanup();
          resolve(m);
        }
      };
      const onExit = () => {
        cleanup();
        reject(new Error(`notify listener exited while waiting for ${what}; received:\n${describe(this.messages)}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} on ${this.address}; received:\n${describe(this.messages)}`));
      }, timeoutMs);
      this.events.on('message', onMessage);
      this.events.once('exit', onExit);
    });
  }

  /** Convenience: wait for a message that sets `field` (to `value` if given). */
  waitForField(field: string, value?: string, timeoutMs = 10_000): Promise<NotifyMessage> {
    return this.waitFor(
      (m) => field in m.fields && (value === undefined || m.fields[field] === value),
      timeoutMs,
      value === undefined ? `${field}=*` : `${field}=${value}`,
    );
  }

  /** True if any message so far set `field` (to `value` if given). */
  has(field: string, value?: string): boolean {
    return this.messages.some((m) => field in m.fields && (value === undefined || m.fields[field] === value));
  }

  /** Messages that set `field`, in arrival order. */
  all(field: string): NotifyMessage[] {
    return this.messages.filter((m) => field in m.fields);
  }

  /** Human-readable list of all messages (for assertion messages). */
  dump(): string {
    return describe(this.messages);
  }

  /** Stops python, removes the temp dir. Safe to call more than once. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
        await this.exited;
        clearTimeout(timer);
      }
      if (this.tmpDir) rmSync(this.tmpDir, { recursive: true, force: true });
    }
    await this.exited;
  }
}
