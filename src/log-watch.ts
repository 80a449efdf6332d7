// Log watch: the child's stdout and stderr pass through sdwrap on their way to the journal, unchanged and as
// they arrive, and the lines matching --watch-log are counted in a sliding window, so a storm of one symptom
// ("context deadline has elapsed") makes the child unhealthy even while its probes still pass.
import { fstatSync, statSync, writev, writevSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Clock } from './clock.js';
import { formatSpan } from './duration.js';

export interface LogWatchOptions {
  pattern: RegExp;
  max: number;
  windowMs: number;
}

export type LogStream = 'stdout' | 'stderr';

/**
 * The longest partial line carried from one chunk to the next, in characters. A longer line is matched on its
 * first MAX_CARRY characters only: a child that floods without newlines must not grow sdwrap's memory.
 */
export const MAX_CARRY = 64 * 1024;

/**
 * One stream's lines: chunks are decoded as UTF-8 and the complete lines of each searched in one pass of a
 * global regular expression; the partial last line is carried to the next chunk. The decoder holds back a
 * character split across chunks, so non-ASCII patterns match too. Measured against latin1 on the relay, utf8
 * costs next to nothing for ASCII output, and a byte search for plain-text patterns saved nothing over V8's.
 */
class StreamLines {
  /** One pass over many lines: global, multiline. */
  readonly #scan: RegExp;
  /** One line on its own. */
  readonly #line: RegExp;
  readonly #decoder = new StringDecoder('utf8');
  #carry = '';
  /** The carried line went past MAX_CARRY: the rest of it, up to its newline, is dropped. */
  #overlong = false;

  constructor(scan: RegExp, line: RegExp) {
    this.#scan = scan;
    this.#line = line;
  }

  /** The number of lines the chunk completes that match. */
  count(chunk: Buffer): number {
    const text = this.#decoder.write(chunk);
    const first = text.indexOf('\n');
    if (first === -1) {
      this.#append(text);
      return 0;
    }
    let matches = 0;
    let from = 0;
    if (this.#carry !== '' || this.#overlong) {
      this.#append(text.slice(0, first));
      if (this.#line.test(this.#carry)) matches++;
      this.#carry = '';
      this.#overlong = false;
      from = first + 1;
    }
    const last = text.lastIndexOf('\n');
    // The complete lines without the final newline, so `$` at the very end is the end of the last line and
    // no empty line is made up after it. slice() of a string is a view, not a copy.
    if (from <= last) matches += this.#count(text.slice(0, last), from);
    this.#append(text.slice(last + 1));
    return matches;
  }

  /** Lines of `text` from `from` on that match, each counted once. */
  #count(text: string, from: number): number {
    const scan = this.#scan;
    let matches = 0;
    scan.lastIndex = from;
    for (let m = scan.exec(text); m !== null; m = scan.exec(text)) {
      let end = text.indexOf('\n', m.index);
      if (end === -1) end = text.length;
      if (m.index + m[0].length <= end) matches++;
      else if (this.#line.test(text.slice(text.lastIndexOf('\n', m.index - 1) + 1, end))) matches++;
      if (end >= text.length) break;
      scan.lastIndex = end + 1; // on to the next line, also past an empty match
    }
    return matches;
  }

  #append(text: string): void {
    if (this.#overlong) return;
    const room = MAX_CARRY - this.#carry.length;
    this.#overlong = text.length > room;
    this.#carry += this.#overlong ? text.slice(0, room) : text;
  }
}

/**
 * Counts matching lines across both streams in a sliding window; trips once when more than `max` fall within
 * `windowMs`.
 *
 * Matching is per line, a line being the text up to '\n'. The user's pattern runs with its own flags plus `m`,
 * so `^` and `$` match at the start and end of each line (and, as in any JavaScript multiline pattern, around
 * a '\r', so `timeout$` matches a line ending "\r\n"); a line counts once however often it matches. A match
 * that runs over a newline (`\s`, `[^x]`, dotAll) is judged on its own line alone. Lookarounds can see the
 * neighbouring lines.
 */
export class SymptomCounter {
  readonly #options: LogWatchOptions;
  readonly #clock: Clock;
  readonly #onTrip: (reason: string) => void;
  readonly #scan: RegExp;
  readonly #line: RegExp;
  /** Kept apart, so a partial stdout line is never completed by stderr. */
  #lines: Record<LogStream, StreamLines>;
  /** Times of the last max + 1 matching lines, oldest at #head: all that deciding "more than max" needs. */
  readonly #times: number[];
  #head = 0;
  #size = 0;
  #tripped = false;

  constructor(options: LogWatchOptions, clock: Clock, onTrip: (reason: string) => void) {
    if (!Number.isInteger(options.max) || options.max < 0) throw new RangeError(`log watch: max must be a whole number, not ${options.max}`);
    if (!(options.windowMs > 0)) throw new RangeError(`log watch: the window must be longer than 0, not ${options.windowMs}ms`);
    this.#options = options;
    this.#clock = clock;
    this.#onTrip = onTrip;
    const flags = options.pattern.flags.replace(/[gymd]/g, '');
    this.#scan = new RegExp(options.pattern.source, `${flags}gm`);
    this.#line = new RegExp(options.pattern.source, `${flags}m`);
    this.#lines = this.#freshLines();
    this.#times = new Array<number>(options.max + 1).fill(0);
  }

  /** Feed a chunk of one stream's output, as read: any size, split anywhere, even inside a character. */
  feed(stream: LogStream, chunk: Buffer): void {
    if (this.#tripped) return; // nothing more to decide until reset()
    const matches = this.#lines[stream].count(chunk);
    if (matches > 0) this.#record(matches);
  }

  /** Fresh counters and line state, for a restarted child. */
  reset(): void {
    this.#head = 0;
    this.#size = 0;
    this.#tripped = false;
    this.#lines = this.#freshLines();
  }

  #freshLines(): Record<LogStream, StreamLines> {
    return { stdout: new StreamLines(this.#scan, this.#line), stderr: new StreamLines(this.#scan, this.#line) };
  }

  #record(matches: number): void {
    const now = this.#clock.now();
    const times = this.#times;
    const capacity = times.length;
    for (let i = 0; i < matches; i++) {
      if (this.#size < capacity) {
        times[(this.#head + this.#size) % capacity] = now;
        this.#size++;
      } else {
        times[this.#head] = now;
        this.#head = (this.#head + 1) % capacity;
      }
      // Times only grow, so more than max lines fall in the window exactly when the oldest of the last
      // max + 1 does.
      if (this.#size === capacity && now - times[this.#head]! < this.#options.windowMs) {
        this.#tripped = true;
        const { pattern, max, windowMs } = this.#options;
        this.#onTrip(`log watch: ${max + 1} lines matching ${String(pattern)} within ${formatSpan(windowMs)} (max ${max})`);
        return;
      }
    }
  }
}

/**
 * Pipes `source` into `destination` unchanged, feeding every chunk to the counter for `stream`. Each chunk is
 * written as soon as it is read, never held back for a newline. While the destination is full the source is
 * paused, so the child blocks in write(2) as it would writing to the journal itself.
 *
 * Settles when the source ends (the child, and every process it left holding the pipe, closed it), once every
 * chunk read has been handed to the destination: use flushed() to wait for it to be written. The destination
 * is not ended, it is sdwrap's own. If the destination fails (EPIPE), the rest of the output is still read and
 * counted, so the child never wedges on a dead journal, but dropped; the promise then rejects with that error.
 * `source` must not have an encoding set.
 */
export function relay(
  source: NodeJS.ReadableStream | Readable,
  destination: Writable,
  counter: SymptomCounter,
  stream: LogStream,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: Error | undefined;
    let waiting = false;
    const onData = (chunk: Buffer) => {
      // A write to a destroyed or ended stream returns false and never drains: that would wedge the child.
      if (failure === undefined && (destination.destroyed || destination.writableEnded)) onFailure();
      if (failure === undefined && !destination.write(chunk) && !waiting) {
        waiting = true;
        source.pause();
        destination.once('drain', onDrain);
      }
      counter.feed(stream, chunk);
    };
    const onDrain = () => {
      waiting = false;
      source.resume();
    };
    const onFailure = (error?: Error) => {
      failure ??= error ?? new Error(`${stream} destination closed`);
      if (waiting) onDrain();
    };
    const onClose = () => onFailure();
    const settle = (error?: Error) => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onEnd);
      source.off('error', settle);
      destination.off('drain', onDrain);
      destination.off('error', onFailure);
      destination.off('close', onClose);
      const outcome = error ?? failure;
      if (outcome) reject(outcome);
      else resolve();
    };
    const onEnd = () => settle();
    if ((source as Readable).readableEnded) return resolve(); // nothing left, and 'end' will not come again
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('close', onEnd);
    source.once('error', settle);
    destination.on('error', onFailure);
    destination.once('close', onClose);
    source.resume();
  });
}

/**
 * Resolves once everything written to `destination` so far has left sdwrap (or could not: a failed destination
 * resolves too). Wait for it before process.exit(), which drops writes still pending. Race it with a timeout:
 * a journal that reads nothing never flushes.
 */
export function flushed(destination: Writable): Promise<void> {
  if (destination.writableLength === 0 || destination.destroyed || destination.writableEnded) return Promise.resolve();
  // An empty write completes after every write before it.
  return new Promise((resolve) => destination.write(EMPTY, () => resolve()));
}

const EMPTY = Buffer.alloc(0);

/** Highest amount queued in an fdDestination before relay() pauses the child's pipe. */
const DESTINATION_HIGH_WATER = 512 * 1024;
/** Retry delays when the descriptor has been made non-blocking by someone else and is full. */
const EAGAIN_RETRY_MS = [1, 2, 5, 10, 20, 50];

/**
 * A Writable for sdwrap's own stdout or stderr (1 or 2), for relay(), in place of process.stdout/stderr.
 * On Linux those are net.Sockets when the descriptor is a pipe or a socket (the journal is a socket): they
 * set O_NONBLOCK on the open file description, which fd 1 and fd 2 share under systemd, so the logger's
 * synchronous writes to fd 2 then meet EAGAIN and sleep in 100 ms steps; and their pending writes are lost at
 * process.exit(). This leaves the flags alone and writes a pipe, socket or terminal with blocking writev(2)
 * calls on libuv's thread pool: the event loop never waits for a slow journal (probes and watchdog pings go
 * on) and backpressure holds at DESTINATION_HIGH_WATER. One write per destination is in flight at a time, so a
 * stalled journal holds at most two pool threads. A regular file or /dev/null, which no reader can stall, is
 * written synchronously, as process.stdout would, saving a thread hop per chunk. The descriptor is never
 * closed. Give it an 'error' listener: EPIPE after relay() has settled has no one else to go to.
 */
export function fdDestination(fd: number): Writable {
  const write = writesWithoutStalling(fd) ? writeNow : writeInPool;
  return new Writable({
    highWaterMark: DESTINATION_HIGH_WATER,
    write(chunk: Buffer, _encoding, callback) {
      write(fd, [chunk], 0, callback);
    },
    writev(chunks, callback) {
      write(fd, chunks.map((c) => c.chunk as Buffer), 0, callback);
    },
  });
}

function writesWithoutStalling(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return stat.isFile() || (stat.isCharacterDevice() && stat.rdev === statSync('/dev/null').rdev);
  } catch {
    return false;
  }
}

type Done = (error?: Error | null) => void;

function writeNow(fd: number, buffers: Buffer[], _retries: number, done: Done): void {
  try {
    let rest = buffers;
    while (rest.length > 0) rest = unwritten(rest, writevSync(fd, rest));
  } catch (error) {
    return done(error as Error);
  }
  done();
}

function writeInPool(fd: number, buffers: Buffer[], retries: number, done: Done): void {
  writev(fd, buffers, (error, written) => {
    if (error) {
      if (error.code !== 'EAGAIN') return done(error);
      const delay = EAGAIN_RETRY_MS[Math.min(retries, EAGAIN_RETRY_MS.length - 1)];
      setTimeout(() => writeInPool(fd, buffers, retries + 1, done), delay);
      return;
    }
    const rest = unwritten(buffers, written);
    if (rest.length === 0) done();
    else writeInPool(fd, rest, 0, done);
  });
}

/** What is left of `buffers` after a write of `written` bytes. */
function unwritten(buffers: Buffer[], written: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && written >= buffers[i]!.length) written -= buffers[i++]!.length;
  if (i === buffers.length) return [];
  return [buffers[i]!.subarray(written), ...buffers.slice(i + 1)];
}
