// pino on stderr, written synchronously so the last lines before an exit are never lost. Under systemd
// (stderr is the journal) each line starts with its syslog priority, "<4>", which journald strips and
// records as PRIORITY=, so `journalctl -p warning` finds sdwrap's warnings.
import { fstatSync } from 'node:fs';
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogFormat, LogLevel } from './config.js';
import { requireOptional } from './optional.js';
import { stderrIsJournal } from './systemd-env.js';

export type Logger = PinoLogger;

/** syslog priority for each pino level label. */
const PRIORITY: Record<string, number> = { trace: 7, debug: 7, info: 6, warn: 4, error: 3, fatal: 2 };

/** Prefixes each line with `<N>` from the "level" label pino writes first. */
export function withSyslogPrefix(out: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      const m = /^\{"level":"(\w+)"/.exec(line);
      out.write(`<${PRIORITY[m?.[1] ?? 'info'] ?? 6}>${line}`);
    },
  };
}

/**
 * isatty(2), loading node:tty (and a TTY handle) only when fd 2 is a character device: under systemd it is the
 * journal's socket, and a pipe or a file is no terminal either. Not process.stderr: touching it would make the fd
 * the child shares non-blocking.
 */
export function stderrIsTerminal(): boolean {
  let stat;
  try {
    stat = fstatSync(2);
  } catch {
    return false;
  }
  return stat.isCharacterDevice() && (requireOptional('node:tty') as typeof import('node:tty')).isatty(2);
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  env?: NodeJS.ProcessEnv;
}

/** The logger for a run. Pretty output loads pino-pretty only when asked for. */
export async function createLogger({ level, format, env = process.env }: LoggerOptions): Promise<Logger> {
  const stderr = pino.destination({ dest: 2, sync: true });
  if (format === 'pretty') {
    const pretty = requireOptional('pino-pretty') as typeof import('pino-pretty');
    const stream = pretty({
      destination: stderr,
      sync: true,
      colorize: stderrIsTerminal(),
      ignore: 'pid,hostname',
      translateTime: 'HH:MM:ss.l',
      singleLine: true,
    });
    return pino({ level, base: null }, stream);
  }
  let stat: { dev: number; ino: number } | undefined;
  try {
    stat = fstatSync(2);
  } catch {
    stat = undefined;
  }
  const out = stderrIsJournal(env.JOURNAL_STREAM, stat) ? withSyslogPrefix(stderr) : stderr;
  return pino(
    {
      level,
      base: null,
      formatters: { level: (label) => ({ level: label }) },
    },
    out,
  );
}
