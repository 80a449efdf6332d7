// Spawning the app: stdio, cwd and env inherited (less systemd's variables), in a session and process
// group of its own so its whole tree can be signalled at once.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { EXIT, SpawnError } from './errors.js';
import type { ChildStatus } from './lifecycle.js';

export interface ChildHandle {
  readonly pid: number;
  /** The app's output, when it is piped through sdwrap (--watch-log); otherwise it writes to sdwrap's own stdio. */
  readonly stdout: Readable | undefined;
  readonly stderr: Readable | undefined;
  /** Resolves once the child has exited and been reaped. */
  readonly exited: Promise<ChildStatus>;
}

/**
 * Starts the child. node:child_process rather than execa: the child is long-lived with inherited stdio,
 * so execa's output handling buys nothing here, and not loading it keeps sdwrap's start-up cheap.
 * Rejects with a SpawnError when the command cannot run (127 not found, 126 not executable).
 */
export function spawnChild(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  { pipeOutput = false }: { pipeOutput?: boolean } = {},
): Promise<ChildHandle> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: pipeOutput ? ['inherit', 'pipe', 'pipe'] : 'inherit', detached: true, env });
    const exited = new Promise<ChildStatus>((done) => {
      child.once('exit', (code, signal) => done({ code, signal }));
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // errors after a successful spawn are about signals to a dead pid
      reject(spawnFailure(command, error));
    });
    if (child.pid !== undefined) resolve({ pid: child.pid, exited, stdout: child.stdout ?? undefined, stderr: child.stderr ?? undefined });
  });
}

function spawnFailure(command: string, error: NodeJS.ErrnoException): SpawnError {
  switch (error.code) {
    case 'ENOENT':
      return new SpawnError(`${command}: command not found`, 'SDWRAP_SPAWN_NOT_FOUND', EXIT.NOT_FOUND);
    case 'EACCES':
    case 'EISDIR':
    case 'ENOEXEC':
    case 'EPERM':
      return new SpawnError(`${command}: cannot execute (${error.code})`, 'SDWRAP_SPAWN_NOT_EXECUTABLE', EXIT.NOT_EXECUTABLE);
    default:
      return new SpawnError(`${command}: cannot start (${error.code ?? error.message})`, 'SDWRAP_SPAWN_FAILED', EXIT.NOT_EXECUTABLE);
  }
}
