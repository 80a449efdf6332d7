// Spawning the app: stdio, cwd and env inherited (less systemd's variables), in a session and process
// group of its own so its whole tree can be signalled at once.
import { spawn, type IOType, type StdioOptions } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import { EXIT, SpawnError } from './errors.js';
import type { ChildStatus } from './lifecycle.js';
import { listenStdio, pidShim } from './socket-activation.js';

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
  { pipeOutput = false, listenFds = 0, pidVars = [] }: SpawnOptions = {},
): Promise<ChildHandle> {
  return new Promise((resolve, reject) => {
    const output: IOType = pipeOutput ? 'pipe' : 'inherit';
    const stdio: StdioOptions = ['inherit', output, output, ...listenStdio(listenFds)];
    const shimmed = pidShim(command, args, pidVars);
    if (shimmed.command !== command) {
      // Behind the shell, a missing command would be the shell's exit 127: say it the way a direct spawn does.
      const problem = checkExecutable(command, env.PATH);
      if (problem) return reject(spawnFailure(command, { code: problem } as NodeJS.ErrnoException));
    }
    const child = spawn(shimmed.command, shimmed.args, { stdio, detached: true, env });
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

export interface SpawnOptions {
  /** Pipe the app's stdout and stderr through sdwrap (--watch-log). */
  pipeOutput?: boolean;
  /** Socket activation: pass fds 3..3+N-1 on at the same numbers. */
  listenFds?: number;
  /** Variables set to the app's own pid (LISTEN_PID, WATCHDOG_PID), through a shell that execs the app. */
  pidVars?: readonly string[];
}

/** What a direct spawn of `command` would fail with (ENOENT, EACCES), or undefined when it can run. */
function checkExecutable(command: string, path: string | undefined): string | undefined {
  const candidates = command.includes('/') ? [command] : (path ?? '').split(delimiter).map((dir) => join(dir || '.', command));
  let found: string | undefined = 'ENOENT';
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isDirectory()) {
        found = 'EACCES';
        continue;
      }
      accessSync(candidate, constants.X_OK);
      return undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EACCES') found = 'EACCES';
    }
  }
  return found;
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
