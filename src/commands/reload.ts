// `sdwrap reload`, for ExecReload=: asks the sdwrap of the same unit, over its control socket, to reload the
// app, and returns only once every probe has passed again, so that `systemctl reload` means "serving the
// new config" even where Type=notify-reload does not exist (systemd < 253).
import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { validateSpan } from '../config.js';
import { controlSocketPath, RELOAD_EXIT, RELOAD_REQUEST, type ControlReply } from '../control-protocol.js';
import { formatSpan } from '../duration.js';
import { UsageError } from '../errors.js';
import { commandReference } from '../help.js';
import { commandProgram, say } from '../program.js';

const REFERENCE = commandReference('reload');
const DEFAULT_TIMEOUT = '1min';
/** How often to ask again while another reload is under way. */
const BUSY_RETRY_MS = 250;

/** How one request ended. */
type Answer =
  | { kind: 'reloaded'; ms: number }
  | { kind: 'refused'; code: string; message: string }
  /** Nobody to ask: no socket, nothing listening, no permission. */
  | { kind: 'unreachable'; message: string }
  /** The connection ended before a final answer. */
  | { kind: 'cut'; message: string }
  | { kind: 'timeout'; lastFailure: string | undefined };

/** Runs `sdwrap reload` with the arguments after its name; resolves with the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const program = commandProgram(REFERENCE, null);
  program.parse(argv as string[], { from: 'user' });
  if (program.args.length > 0) throw new UsageError(`unexpected argument '${program.args[0]}': sdwrap reload takes options only`);
  const opts = program.opts<{ controlSocket?: string; timeout?: string }>();
  const timeoutMs = validateSpan('--timeout', opts.timeout ?? DEFAULT_TIMEOUT, { min: 1 });
  const path = controlSocketPath(opts.controlSocket, process.env);
  if (path === undefined) {
    throw new UsageError(
      'no control socket to ask: RUNTIME_DIRECTORY is not set (run this as ExecReload= of a unit with RuntimeDirectory=, as `sdwrap unit` writes it) and --control-socket is not given',
    );
  }
  const notOurs = foreignOwner(path);
  if (notOurs) {
    say(`sdwrap reload: ${notOurs}`);
    return RELOAD_EXIT.UNREACHABLE;
  }
  const started = performance.now();
  const deadline = started + timeoutMs;
  let waited = false;
  for (;;) {
    const answer = await ask(path, deadline);
    if (answer.kind === 'refused' && answer.code === 'busy' && performance.now() + BUSY_RETRY_MS < deadline) {
      // A reload under way may predate the change this one is for: wait for it to end, then ask for ours.
      if (!waited) say('sdwrap reload: a reload is under way: waiting for it to end, then asking for another');
      waited = true;
      await delay(BUSY_RETRY_MS);
      continue;
    }
    return report(answer, path, timeoutMs, performance.now() - started);
  }
}

/** Says how it went; the exit code. */
function report(answer: Answer, path: string, timeoutMs: number, tookMs: number): number {
  switch (answer.kind) {
    case 'reloaded':
      say(`sdwrap reload: reloaded: SIGHUP relayed and every probe passed again after ${formatSpan(answer.ms)}`);
      return 0;
    case 'refused':
      say(`sdwrap reload: ${answer.code === 'busy' ? `the reload under way did not end within ${formatSpan(timeoutMs)}` : answer.message}`);
      return RELOAD_EXIT.FAILED;
    case 'unreachable':
      say(`sdwrap reload: no sdwrap answers on ${path}: ${answer.message}`);
      return RELOAD_EXIT.UNREACHABLE;
    case 'cut':
      say(`sdwrap reload: ${answer.message} after ${formatSpan(tookMs)}`);
      return RELOAD_EXIT.FAILED;
    case 'timeout':
      say(
        `sdwrap reload: the probes did not all pass again within ${formatSpan(timeoutMs)} (--timeout)` +
          `${answer.lastFailure ? `; last failure: ${answer.lastFailure}` : ''}; sdwrap goes on waiting for them`,
      );
      return RELOAD_EXIT.FAILED;
  }
}

/** A socket owned by someone else (neither this user nor root) is not the unit's sdwrap: do not talk to it. */
function foreignOwner(path: string): string | undefined {
  const uid = process.getuid?.();
  try {
    const owner = lstatSync(path).uid;
    if (uid === undefined || uid === 0 || owner === uid || owner === 0) return undefined;
    return `${path} belongs to uid ${owner}, not to this user (uid ${uid}): not asking it`;
  } catch {
    // missing: connect() says so
    return undefined;
  }
}

/** One request over the socket, until a final answer, the end of the connection, or the deadline. */
function ask(path: string, deadline: number): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let replied = false;
    let lastFailure: string | undefined;
    let buffered = '';
    const finish = (answer: Answer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', lastFailure }), Math.max(0, deadline - performance.now()));
    socket.once('connect', () => socket.write(`${RELOAD_REQUEST}\n`));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (replied)
        return finish({ kind: 'cut', message: `the connection to sdwrap failed (${error.code ?? error.message}) before the reload ended` });
      const why: Record<string, string> = {
        ENOENT: 'no such socket (is the unit running, with RuntimeDirectory= or --control-socket?)',
        ECONNREFUSED: 'nothing listens there (sdwrap is not running)',
        EACCES: "permission denied (run this as the unit's user, or as root)",
      };
      finish({ kind: 'unreachable', message: why[error.code ?? ''] ?? error.code ?? error.message });
    });
    socket.on('close', () =>
      finish(
        replied
          ? { kind: 'cut', message: 'sdwrap closed the connection before the reload ended (did it exit?)' }
          : { kind: 'unreachable', message: 'sdwrap closed the connection without an answer' },
      ),
    );
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let reply: ControlReply;
        try {
          reply = JSON.parse(line) as ControlReply;
        } catch {
          return finish({ kind: 'cut', message: 'sdwrap answered something that is not JSON' });
        }
        replied = true;
        if (reply.event === 'probe') lastFailure = `${reply.probe}: ${reply.detail}`;
        else if (reply.event === 'reloaded') return finish({ kind: 'reloaded', ms: reply.ms });
        else if (reply.event === 'error') return finish({ kind: 'refused', code: reply.code, message: reply.message });
      }
    });
  });
}
