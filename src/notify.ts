// Notifiers: how sd_notify messages reach systemd. In process through libsystemd (the optional sd-notify
// addon), else through the systemd-notify command every systemd host has, else nowhere.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { NotifierChoice } from './config.js';
import type { Logger } from './logger.js';
import { isValidNotifySocket } from './systemd-env.js';
import { withTimeout } from './timeout.js';

export type NotifierKind = 'native' | 'systemd-notify' | 'none';

export interface Notifier {
  readonly kind: NotifierKind;
  /** Sends the assignments as one datagram, in order with earlier sends; never throws. */
  send(lines: readonly string[]): void;
  /** Resolves once everything sent so far has been handed over (bounded by `timeoutMs`). */
  drain(timeoutMs?: number): Promise<void>;
}

interface SdNotifyAddon {
  sendState(state: string): void;
}

/** Sends nothing: no NOTIFY_SOCKET, or --no-systemd. */
export const silentNotifier: Notifier = { kind: 'none', send() {}, drain: async () => {} };

/** Picks the notifier for this run (the supervisor logs which, once the child is up). */
export function createNotifier(choice: NotifierChoice, env: NodeJS.ProcessEnv, log: Logger): Notifier {
  const address = env.NOTIFY_SOCKET;
  if (address === undefined || address === '') return silentNotifier;
  if (!isValidNotifySocket(address)) {
    log.warn({ notifySocket: address }, 'NOTIFY_SOCKET is not a path, @abstract name or vsock address: notifying nothing');
    return silentNotifier;
  }
  const warnUnreachable = onceUnreachable(address, log);
  let notifier: Notifier | undefined;
  if (choice !== 'systemd-notify') {
    const addon = loadAddon();
    if (addon) notifier = nativeNotifier(addon, warnUnreachable);
    else if (choice === 'native') log.warn('--notifier native: the sd-notify addon is not built; using systemd-notify');
  }
  return notifier ?? commandNotifier(log, warnUnreachable);
}

function loadAddon(): SdNotifyAddon | undefined {
  try {
    return createRequire(import.meta.url)('sd-notify') as SdNotifyAddon;
  } catch {
    return undefined;
  }
}

/** libsystemd's sd_notify hides send errors; a path socket that does not exist is the one failure we can see. */
function onceUnreachable(address: string, log: Logger): () => void {
  let warned = false;
  return () => {
    if (warned || !address.startsWith('/')) return;
    let isSocket = false;
    try {
      isSocket = statSync(address).isSocket();
    } catch {
      // missing: reported below
    }
    if (!isSocket) {
      warned = true;
      log.warn({ notifySocket: address }, 'notify socket is unreachable: systemd will not hear from sdwrap');
    }
  };
}

function nativeNotifier(addon: SdNotifyAddon, checkReachable: () => void): Notifier {
  return {
    kind: 'native',
    send(lines) {
      checkReachable();
      addon.sendState(lines.join('\n'));
    },
    drain: async () => {},
  };
}

/**
 * Runs `systemd-notify VAR=VALUE...`, one at a time so messages keep their order. It blocks on a BARRIER=1
 * handshake until systemd has read the message, which avoids the race where systemd drops a message
 * whose sender already exited. Run by root it sends with sdwrap's pid; otherwise with its own, hence
 * NotifyAccess=all in the example unit.
 */
function commandNotifier(log: Logger, checkReachable: () => void): Notifier {
  let tail: Promise<void> = Promise.resolve();
  let pendingPing = false;
  let warned = false;
  const run = (lines: readonly string[]) =>
    new Promise<void>((resolve) => {
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn('systemd-notify', lines, { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (error) {
        // spawn() throws synchronously on arguments it cannot pass (a NUL byte): drop the message, not sdwrap.
        log.warn({ err: (error as Error).message }, 'cannot send a message with systemd-notify');
        return resolve();
      }
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => {
        if (stderr.length < 1000) stderr += s;
      });
      child.on('error', (error) => {
        if (!warned) log.warn({ err: error.message }, 'cannot run systemd-notify: systemd will not hear from sdwrap');
        warned = true;
        resolve();
      });
      child.on('close', (code) => {
        if (code !== 0 && code !== null && !warned) {
          warned = true;
          log.warn({ code, stderr: stderr.trim() }, 'systemd-notify failed');
        }
        resolve();
      });
    });
  return {
    kind: 'systemd-notify',
    send(lines) {
      const isPing = lines.length === 1 && lines[0] === 'WATCHDOG=1';
      // A ping still waiting in the queue says all a second one would.
      if (isPing && pendingPing) return;
      if (isPing) pendingPing = true;
      checkReachable();
      tail = tail
        .then(() => {
          if (isPing) pendingPing = false;
          return run(lines);
        })
        .catch(() => undefined);
    },
    async drain(timeoutMs = 3000) {
      await withTimeout(tail, timeoutMs);
    },
  };
}

/** The longest STATUS= text sent; systemd reads datagrams of at most 4096 bytes. */
const MAX_STATUS = 1024;

/**
 * The datagram's lines as the protocol wants them: a STATUS= on one line (control characters folded to a
 * space), at most MAX_STATUS characters of text.
 */
export function formatLines(lines: readonly string[]): string[] {
  return lines.map((line) => (line.startsWith('STATUS=') ? `STATUS=${oneLine(line.slice(7)).slice(0, MAX_STATUS)}` : line));
}

// eslint-disable-next-line no-control-regex
const oneLine = (text: string) => text.replace(/[\x00-\x1f\x7f]+/g, ' ');

/** RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC, as libuv's hrtime reads it) of the moment, as
 * Type=notify-reload wants them, in one datagram with the STATUS that says why. */
export function reloadingLines(status: string): string[] {
  return formatLines(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, `STATUS=${status}`]);
}
