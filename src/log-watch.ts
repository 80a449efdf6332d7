// Log watch: the child's stdout and stderr pass through sdwrap on their way to the journal, unchanged and as
// they arrive, and the lines matching --watch-log are counted in a sliding window, so a storm of one symptom
// ("context deadline has elapsed") makes the child unhealthy even while its probes still pass.
import { fstatSync, statSync, writeSync, writev, writevSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { ByteSearch, SEARCH_BUFFER_BYTES } from './byte-search.js';
import type { Clock } from './clock.js';
import { formatSpan } from './duration.js';
import { InternalError } from './errors.js';

export interface LogWatchOptions {
  pattern: RegExp;
  max: number;
  windowMs: number;
}

export type LogStream = 'stdout' | 'stderr';

/**
 * The longest partial line carried from one chunk to the next, in characters (bytes, for a plain-text pattern).
 * A longer line is matched on its first MAX_CARRY characters only: a child that floods without newlines must
 * not grow sdwrap's memory.
 */
export const MAX_CARRY = 64 * 1024;

const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);

/**
 * The text a pattern matches when it is plain text (letters, digits, spaces, and punctuation escaped with a
 * backslash), as most --watch-log patterns are: "context deadline has elapsed", "deadline\\.exceeded".
 * Undefined for anything else (a class, an anchor, a quantifier, an escape such as \\d, the i flag): then a
 * regular expression judges each line.
 */
export function plainText(pattern: RegExp): string | undefined {
  if (!/^[dgmsuy]*$/.test(pattern.flags)) return undefined;
  const source = pattern.source;
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const next = source[++i];
      if (next === undefined || !'\\^$.|?*+()[]{}/-'.includes(next)) return undefined;
      text += next;
    } else if ('^$.|?*+()[]{}'.includes(c)) {
      return undefined;
    } else {
      text += c;
    }
  }
  // A replacement character would match bytes that are not UTF-8 in the decoded text only.
  if (text === '' || /[\n\r\uFFFD]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text)) return undefined;
  return text;
}

/** What the counter needs of one stream's lines: how many the next chunk completes that match. */
interface Lines {
  count(chunk: Buffer): number;
}

/**
 * One stream's lines, for a plain-text pattern: its UTF-8 bytes are searched for in the chunk as it is, so no
 * byte is decoded or copied and a chunk without a match costs one search. Only lines with a match are looked
 * at, to count each once and to leave out a match past the first MAX_CARRY bytes of its line. The last
 * needle-length - 1 bytes of the line under way are kept for a match split across chunks.
 */
class PlainTextLines implements Lines {
  readonly #needle: Buffer;
  readonly #search: ByteSearch;
  /** Bytes of the line under way so far. */
  #lineBytes = 0;
  /** The line under way has a match (within MAX_CARRY). */
  #matched = false;
  /** The end of the line under way, up to needle.length - 1 bytes, while a match may still start in it. */
  #tail: Buffer = EMPTY;

  constructor(needle: Buffer, search: ByteSearch) {
    this.#needle = needle;
    this.#search = search;
  }

  count(chunk: Buffer): number {
    const k = this.#needle.length;
    const firstNewline = chunk.indexOf(NEWLINE);
    const lineEnd = firstNewline === -1 ? chunk.length : firstNewline;
    if (!this.#matched && this.#lineBytes < MAX_CARRY)
      this.#matched = this.#spans(chunk, lineEnd) || this.#has(chunk, 0, lineEnd, this.#lineBytes);
    if (firstNewline === -1) {
      this.#grow(chunk, 0, chunk.length);
      return 0;
    }
    let matches = this.#matched ? 1 : 0;
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    // The complete lines between the first and the last newline: a search per match, not per line.
    for (let from = firstNewline + 1; from < lastNewline;) {
      const at = this.#search.find(chunk, from, lastNewline);
      if (at === -1) break;
      const lineStart = chunk.lastIndexOf(NEWLINE, at) + 1;
      // The first match of its line: any other is further along.
      if (at - lineStart + k <= MAX_CARRY) matches++;
      from = chunk.indexOf(NEWLINE, at + k) + 1;
    }
    this.#lineBytes = 0;
    this.#tail = EMPTY;
    this.#matched = this.#has(chunk, lastNewline + 1, chunk.length, 0);
    this.#grow(chunk, lastNewline + 1, chunk.length);
    return matches;
  }

  /** A match in chunk[from, to), part of the line under way at byte `offset` of it, ending within MAX_CARRY. */
  #has(chunk: Buffer, from: number, to: number, offset: number): boolean {
    const at = this.#search.find(chunk, from, to);
    return at !== -1 && offset + (at - from) + this.#needle.length <= MAX_CARRY;
  }

  /** A match that starts in the kept tail and ends in chunk[0, lineEnd). */
  #spans(chunk: Buffer, lineEnd: number): boolean {
    if (this.#tail.length === 0) return false;
    const joined = Buffer.concat([this.#tail, chunk.subarray(0, Math.min(lineEnd, this.#needle.length - 1))]);
    const at = joined.indexOf(this.#needle);
    return at !== -1 && this.#lineBytes - this.#tail.length + at + this.#needle.length <= MAX_CARRY;
  }

  /** The line under way goes on with chunk[from, to): keeps (copies) what a split match may start with. */
  #grow(chunk: Buffer, from: number, to: number): void {
    this.#lineBytes += to - from;
    const keep = this.#needle.length - 1;
    if (this.#matched || this.#lineBytes >= MAX_CARRY || keep === 0) {
      this.#tail = EMPTY;
    } else if (to - from >= keep) {
      this.#tail = Buffer.from(chunk.subarray(to - keep, to));
    } else {
      const joined = Buffer.concat([this.#tail, chunk.subarray(from, to)]);
      this.#tail = joined.subarray(Math.max(0, joined.length - keep));
    }
  }
}

/**
 * One stream's lines, for any other pattern: chunks are decoded as UTF-8 and the complete lines of each searched in one pass of a
 * global regular expression; the partial last line is carried to the next chunk. The decoder holds back a
 * character split across chunks, so non-ASCII patterns match too. Measured against latin1 on the relay, utf8
 * costs next to nothing for ASCII output, and a byte search for plain-text patterns saved nothing over V8's.
 */
class StreamLines implements Lines {
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
  /** The pattern's UTF-8 bytes when it is plain text, searched for as bytes. */
  readonly #needle: Buffer | undefined;
  readonly #search: ByteSearch | undefined;
  /** Kept apart, so a partial stdout line is never completed by stderr. */
  readonly #lines: Record<LogStream, Lines>;
  /** Times of the last max + 1 matching lines, oldest at #head: all that deciding "more than max" needs. */
  readonly #times: number[];
  #head = 0;
  #size = 0;
  #tripped = false;

  constructor(options: LogWatchOptions, clock: Clock, onTrip: (reason: string) => void) {
    if (!Number.isInteger(options.max) || options.max < 0)
      throw new InternalError(`log watch: max must be a whole number, not ${options.max}`);
    if (!(options.windowMs > 0)) throw new InternalError(`log watch: the window must be longer than 0, not ${options.windowMs}ms`);
    this.#options = options;
    this.#clock = clock;
    this.#onTrip = onTrip;
    const flags = options.pattern.flags.replace(/[gymd]/g, '');
    this.#scan = new RegExp(options.pattern.source, `${flags}gm`);
    this.#line = new RegExp(options.pattern.source, `${flags}m`);
    const text = plainText(options.pattern);
    this.#needle = text === undefined ? undefined : Buffer.from(text);
    this.#search = this.#needle && new ByteSearch(this.#needle);
    this.#lines = this.#freshLines();
    this.#times = new Array<number>(options.max + 1).fill(0);
  }

  /**
   * Feed a chunk of one stream's output, as read: any size, split anywhere, even inside a character. The chunk
   * is not kept: the caller may reuse its memory once this returns.
   */
  feed(stream: LogStream, chunk: Buffer): void {
    if (this.#tripped) return; // tripped once: nothing more to decide
    const matches = this.#lines[stream].count(chunk);
    if (matches > 0) this.#record(matches);
  }

  /**
   * Memory for relay() to read a stream into, READ_BUFFER_BYTES long: for a plain-text pattern, the search's own
   * (see ByteSearch), so each chunk is searched where it was read.
   */
  readBuffer(): Buffer {
    return this.#search ? this.#search.readBuffer() : Buffer.allocUnsafe(READ_BUFFER_BYTES);
  }

  #freshLines(): Record<LogStream, Lines> {
    const lines = () =>
      this.#needle && this.#search ? new PlainTextLines(this.#needle, this.#search) : new StreamLines(this.#scan, this.#line);
    return { stdout: lines(), stderr: lines() };
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
 * A child's pipe (a net.Socket on a libuv stream) is read into one reused buffer of READ_BUFFER_BYTES, all that
 * the pipe holds in one read(2), rather than as a stream of 64 KiB Buffers (see readIntoBuffer). A destination
 * from fdDestination() that is a file or /dev/null is written at once with write(2), bypassing its stream.
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
    const direct = destination instanceof FdDestination && destination.synchronous ? destination.fd : undefined;
    /** `reused`: the chunk's memory is read into again once this returns, so the destination gets a copy. */
    const onChunk = (chunk: Buffer, reused: boolean) => {
      // A write to a destroyed or ended stream returns false and never drains: that would wedge the child.
      if (failure === undefined && (destination.destroyed || destination.writableEnded)) onFailure();
      if (failure === undefined) {
        if (direct !== undefined) {
          try {
            writeAllSync(direct, chunk);
          } catch (error) {
            onFailure(error as Error);
            destination.destroy(error as Error);
          }
        } else if (!destination.write(reused ? Buffer.from(chunk) : chunk) && !waiting) {
          waiting = true;
          source.pause();
          destination.once('drain', onDrain);
        }
      }
      counter.feed(stream, chunk);
    };
    const onData = (chunk: Buffer) => onChunk(chunk, false);
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
    if (
      !readIntoBuffer(
        source,
        () => counter.readBuffer(),
        (chunk) => onChunk(chunk, true),
      )
    )
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
 * Bytes read from a child's pipe at once: Linux queues about 200 KiB on a socket pair (what libuv makes for a
 * child's stdio), so one read(2) takes all there is. The buffer is reused, read after read.
 */
export const READ_BUFFER_BYTES = SEARCH_BUFFER_BYTES;

/** The parts of a net.Socket and its libuv handle that switch it to reading into a buffer of its own. */
interface UserBufferSocket {
  _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } | null;
  [key: symbol]: unknown;
}

/**
 * Makes `source`, a child's pipe, read into one buffer from `allocate`, again and again, and hand each read to
 * `onRead` (a view of it, valid until onRead returns), as net.Socket's documented `onread` option does for a socket one creates; child_process
 * makes the socket itself, so the same fields are set on it here. pause(), resume(), 'end', 'close' and 'error'
 * work as before. The cost of a Node stream is per chunk: a 64 KiB Buffer, a 'data' event, a read(2) each; this
 * takes a quarter of the reads and none of the rest.
 *
 * Returns false, leaving the socket as it was, when `source` is not such a socket or this Node's net.Socket is
 * not laid out as expected; then the caller reads it as a stream.
 */
function readIntoBuffer(source: NodeJS.ReadableStream | Readable, allocate: () => Buffer, onRead: (chunk: Buffer) => void): boolean {
  if (
    !(source instanceof Socket) ||
    source.destroyed ||
    source.readableEnded ||
    source.readableLength > 0 ||
    source.listenerCount('data') > 0
  )
    return false;
  const socket = source as unknown as UserBufferSocket;
  const handle = socket._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return false;
  // net.Socket's fields for `onread` (lib/net.js): the buffer, and the callback that gets (nread, buffer).
  const field = (name: string) => Object.getOwnPropertySymbols(socket).find((key) => key.description === name);
  const bufferKey = field('kBuffer');
  const callbackKey = field('kBufferCb');
  if (!bufferKey || !callbackKey || socket[bufferKey] !== null || socket[callbackKey] !== null) return false;
  const memory = allocate();
  socket[bufferKey] = memory;
  socket[callbackKey] = (nread: number) => {
    onRead(memory.subarray(0, nread));
    // true: read on (pausing is pause()'s to do, as for a stream).
    return true;
  };
  handle.useUserBuffer(memory);
  return true;
}

/** write(2) until all of it is written (a file or /dev/null takes it whole, in practice). */
function writeAllSync(fd: number, chunk: Buffer): void {
  for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at, chunk.length - at);
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
  return new FdDestination(fd);
}

class FdDestination extends Writable {
  readonly fd: number;
  /** A regular file or /dev/null: written synchronously, and relay() writes it directly. */
  readonly synchronous: boolean;
  readonly #write: typeof writeNow;

  constructor(fd: number) {
    super({ highWaterMark: DESTINATION_HIGH_WATER });
    this.fd = fd;
    this.synchronous = writesWithoutStalling(fd);
    this.#write = this.synchronous ? writeNow : writeInPool;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Done): void {
    this.#write(this.fd, [chunk], 0, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: Done): void {
    this.#write(
      this.fd,
      chunks.map((c) => c.chunk),
      0,
      callback,
    );
  }
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

let sharedOutputs: Record<LogStream, Writable> | undefined;

/** sdwrap's stdout and stderr as relay destinations, made once and shared by every run (restarts). */
function outputs(): Record<LogStream, Writable> {
  if (!sharedOutputs) {
    sharedOutputs = { stdout: fdDestination(1), stderr: fdDestination(2) };
    // EPIPE after a relay settled has nowhere else to go; relay() reports failures while it runs.
    for (const destination of Object.values(sharedOutputs)) destination.on('error', () => {});
  }
  return sharedOutputs;
}

/**
 * --watch-log for one run: relays the child's stdout and stderr to sdwrap's own, counting the symptom on the
 * way; `onTrip` hears the symptom's storm. Resolves once both streams ended and what was read is written
 * (a destination that fails is reported once, through `onWriteError`, and the rest dropped).
 */
export function watchOutput(
  child: { stdout: Readable | undefined; stderr: Readable | undefined },
  options: LogWatchOptions,
  clock: Clock,
  onTrip: (reason: string) => void,
  onWriteError: (stream: LogStream, error: Error) => void,
): Promise<unknown> {
  const counter = new SymptomCounter(options, clock, onTrip);
  const out = outputs();
  const watch = (stream: LogStream) => {
    const source = child[stream];
    return source
      ? relay(source, out[stream], counter, stream).then(
          () => flushed(out[stream]),
          (error: Error) => onWriteError(stream, error),
        )
      : undefined;
  };
  return Promise.all([watch('stdout'), watch('stderr')]);
}
