// --notify-passthrough, the socket: a NOTIFY_SOCKET for the app alone, in a private directory (mode 0700,
// under $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR, /run or the temp dir), removed at exit. Node cannot receive unix
// datagrams by itself; node-unix-socket (prebuilt N-API binaries) can, and is loaded only for this flag.
// It reads without ancillary data, so the fd systemd-notify passes for its BARRIER=1 is closed on receipt
// and systemd-notify does not block.
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, SdwrapError } from './errors.js';
import { requireOptional } from './optional.js';

interface DgramSocketLike {
  bind(path: string): void;
  close(): void;
  on(event: 'data', listener: (data: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}
type DgramModule = { DgramSocket: new () => DgramSocketLike };

/** The flag given without the addon. */
class NotifyAddonMissingError extends SdwrapError {
  constructor(detail: string) {
    super(
      `--notify-passthrough needs the optional package node-unix-socket, which is not installed (${detail}): install it beside sdwrap (npm install node-unix-socket), or drop the flag`,
      'SDWRAP_NOTIFY_ADDON_MISSING',
      EXIT.USAGE,
    );
    this.name = 'NotifyAddonMissingError';
  }
}

let loaded: DgramModule | undefined;

/** Loads node-unix-socket, or throws NotifyAddonMissingError: called at start-up, so the flag fails at once. */
export function loadDgramAddon(): DgramModule {
  if (loaded) return loaded;
  try {
    loaded = requireOptional('node-unix-socket') as DgramModule;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new NotifyAddonMissingError(code === 'MODULE_NOT_FOUND' ? 'no build for this platform, or not installed' : String(code ?? error));
  }
  return loaded;
}

/** Where the private directory goes: the first of these that is a writable directory. */
export function runtimeBase(env: NodeJS.ProcessEnv): string {
  for (const candidate of [env.RUNTIME_DIRECTORY?.split(':')[0], env.XDG_RUNTIME_DIR, '/run']) {
    if (!candidate) continue;
    try {
      if (statSync(candidate).isDirectory()) {
        // /run is root's: mkdtemp tells; try it and fall through on failure.
        return candidate;
      }
    } catch {
      // not there
    }
  }
  return tmpdir();
}

export interface AppNotifySocket {
  /** NOTIFY_SOCKET for the app. */
  readonly address: string;
  /** Stops listening and removes the directory; safe to call twice. */
  close(): void;
}

/** Binds the app's notify socket; each datagram goes to onDatagram as it came (parseDatagram decides). */
export function openAppNotifySocket(
  env: NodeJS.ProcessEnv,
  onDatagram: (data: Buffer) => void,
  onError: (error: Error) => void,
): AppNotifySocket {
  const { DgramSocket } = loadDgramAddon();
  let dir: string | undefined;
  for (const base of [runtimeBase(env), tmpdir()]) {
    try {
      dir = mkdtempSync(join(base, 'sdwrap-notify-'));
      break;
    } catch {
      // not writable for this user: the next
    }
  }
  if (dir === undefined) throw new SdwrapError("cannot make a private directory for the app's notify socket", 'SDWRAP_USAGE', EXIT.USAGE);
  // mkdtemp makes it 0700 already; say so in code, whatever the umask.
  chmodSync(dir, 0o700);
  const address = join(dir, 'notify');
  const socket = new DgramSocket();
  try {
    socket.bind(address);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  socket.on('data', (data) => onDatagram(data));
  socket.on('error', onError);
  let closed = false;
  return {
    address,
    close() {
      if (closed) return;
      closed = true;
      try {
        socket.close();
      } catch {
        // closed already (after an error)
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
