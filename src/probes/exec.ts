// Command probe: healthy when `/bin/sh -c <command>` exits 0. Runs in its own process group so that on
// timeout the shell and everything it started are killed together, and reaped before the probe settles.
import { execa } from 'execa';
import { type Probe } from './probe.js';

const MAX_OUTPUT = 64 * 1024;

export function execProbe(command: string, env: NodeJS.ProcessEnv): Probe {
  return {
    description: `exec ${JSON.stringify(command)}`,
    async run(signal) {
      const subprocess = execa('/bin/sh', ['-c', command], {
        env,
        extendEnv: false,
        detached: true,
        cleanup: false,
        reject: false,
        stdin: 'ignore',
        all: true,
        maxBuffer: MAX_OUTPUT,
      });
      const killGroup = () => {
        try {
          if (subprocess.pid !== undefined) process.kill(-subprocess.pid, 'SIGKILL');
        } catch {
          // the group is already gone
        }
      };
      signal.addEventListener('abort', killGroup, { once: true });
      const result = await subprocess;
      signal.removeEventListener('abort', killGroup);
      // The shell may be gone while something it backgrounded lives on in its group.
      killGroup();
      if (signal.aborted) return { ok: false, detail: '' };
      const lastLine =
        String(result.all ?? '')
          .trim()
          .split('\n')
          .pop()
          ?.slice(0, 200) ?? '';
      if (result.exitCode === 0) return { ok: true, detail: 'exit 0' };
      const how = result.signal
        ? `killed by ${result.signal}`
        : result.exitCode === undefined
          ? (result.originalMessage ?? 'failed to run')
          : `exit ${result.exitCode}`;
      return { ok: false, detail: lastLine ? `${how}: ${lastLine}` : how };
    },
    close: async () => {},
  };
}
