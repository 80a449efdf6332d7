// The log relay with real processes: children writing into pipes, relayed into a FIFO read by another
// process (a blocking descriptor, as the journal's socket is), a file, a socket, and an in-process Writable.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, constants, createWriteStream, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from '../../src/clock.js';
import {
  fdDestination,
  flushed,
  READ_BUFFER_BYTES,
  relay,
  SymptomCounter,
  type LogStream,
  type LogWatchOptions,
} from '../../src/log-watch.js';
import { readProc } from '../helpers/processes.js';
import { REPO_ROOT } from '../helpers/run-sdwrap.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
/** log-writer.mjs writes whole 120-byte lines. */
const LINES_OF_120 = (bytes: number) => bytes - (bytes % 120);
const DIR = mkdtempSync(join(tmpdir(), 'sdwrap-log-relay-'));
const LOG_WRITER = join(REPO_ROOT, 'bench/fixtures/log-writer.mjs');
const started: ChildProcess[] = [];
after(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(DIR, { recursive: true, force: true });
});

function run(command: string, args: string[], stdio: StdioOptions): ChildProcess {
  const p = spawn(command, args, { stdio });
  started.push(p);
  return p;
}

/** A counter that also keeps what it was fed, to be replayed: a copy, as relay() reuses a chunk's memory. */
class RecordingCounter extends SymptomCounter {
  readonly fed: Array<[LogStream, Buffer]> = [];
  override feed(stream: LogStream, chunk: Buffer): void {
    this.fed.push([stream, Buffer.from(chunk)]);
    super.feed(stream, chunk);
  }
}

const watch = (max = 1_000_000): LogWatchOptions => ({ pattern: /deadline has elapsed/, max, windowMs: 3_600_000 });

/** Whether `fed`, replayed chunk for chunk, trips a counter allowing `max` lines. */
function trips(fed: Array<[LogStream, Buffer]>, max: number): boolean {
  let tripped = false;
  const counter = new SymptomCounter(watch(max), systemClock, () => (tripped = true));
  for (const [stream, chunk] of fed) counter.feed(stream, chunk);
  return tripped;
}

/**
 * A process reading a FIFO: it opens it at once, reads only after SIGUSR2 (or at once with 'now'), and at
 * the end prints the byte count and SHA-256 of all it read.
 */
const FIFO_READER = `
const fs = require('fs'), crypto = require('crypto');
const keep = setInterval(() => {}, 1e6);
const input = fs.createReadStream(process.argv[1]);
const hash = crypto.createHash('sha256');
let bytes = 0;
const go = () => input.on('data', (c) => { bytes += c.length; hash.update(c); }).on('end', () => {
  clearInterval(keep);
  process.stdout.write(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
});
if (process.argv[2] === 'now') go(); else process.on('SIGUSR2', go);
`;

interface Fifo {
  fd: number;
  reader: ChildProcess;
  /** Starts a reader waiting for SIGUSR2. */
  release(): void;
  /** Closes the write end and resolves with what the reader got. */
  result(): Promise<{ bytes: number; sha256: string }>;
}

/**
 * A FIFO, its write end opened blocking (as the journal's socket is handed to a service), or non-blocking (as
 * it is once something has touched process.stdout), and its reader.
 */
async function fifo(name: string, readNow: boolean, nonBlocking = false): Promise<Fifo> {
  const path = join(DIR, name);
  assert.equal(spawnSync('mkfifo', [path]).status, 0);
  // Opening non-blocking for writing needs a reader already: hold one until the real reader has opened.
  const placeholder = nonBlocking ? openSync(path, 'r+') : -1;
  const nonBlockingFd = nonBlocking ? openSync(path, constants.O_WRONLY | constants.O_NONBLOCK) : -1;
  const reader = run(process.execPath, ['-e', FIFO_READER, path, readNow ? 'now' : 'wait'], ['ignore', 'pipe', 'inherit']);
  let out = '';
  reader.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  let fd: number;
  let close: () => Promise<void>;
  if (nonBlocking) {
    const opened = () => readdirSync(`/proc/${reader.pid}/fd`).some((f) => readlinkSync(`/proc/${reader.pid}/fd/${f}`) === path);
    await waitFor(opened, { message: 'the reader never opened the FIFO' });
    closeSync(placeholder);
    fd = nonBlockingFd;
    close = async () => closeSync(nonBlockingFd);
  } else {
    const handle = await open(path, 'w'); // completes once the reader has opened its end
    fd = handle.fd;
    close = () => handle.close();
  }
  return {
    fd,
    reader,
    release: () => reader.kill('SIGUSR2'),
    async result() {
      await close();
      await once(reader, 'close');
      return JSON.parse(out) as { bytes: number; sha256: string };
    },
  };
}

/**
 * Writes pseudo-random text to stdout and stderr in blocks of random size, so lines of random length (some
 * longer than a pipe read, some with "\r\n", multibyte characters and matches) are split anywhere. Neither
 * stream ends with a newline. Reports each stream's bytes, SHA-256 and matching complete lines on fd 3.
 */
const RANDOM_WRITER = `
const { writeSync } = require('fs'), { createHash } = require('crypto');
let s = Number(process.argv[1]);
const r = (n) => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s % n; };
const pieces = ['context deadline has elapsed', 'deadline has', ' elapsed', 'é', '日本語', '\\r', 'ok', ' ', 'level=info', '\\t'];
function content(total) {
  const lines = [];
  let len = 0;
  while (len < total) {
    let line = '';
    for (let i = r(40); i > 0; i--) line += pieces[r(pieces.length)];
    if (r(40) === 0) line += 'y'.repeat(r(30000));
    lines.push(line);
    len += Buffer.byteLength(line) + 1;
  }
  return Buffer.from(lines.join('\\n'));
}
const streams = [{ fd: 1, data: content(12e6) }, { fd: 2, data: content(8e6) }];
for (const st of streams) st.at = 0;
while (streams.some((st) => st.at < st.data.length)) {
  const st = streams[r(2)];
  const end = Math.min(st.data.length, st.at + 1 + r(65536));
  while (st.at < end) {
    try { st.at += writeSync(st.fd, st.data, st.at, end - st.at); } catch (e) { if (e.code !== 'EAGAIN') throw e; }
  }
}
const report = (st) => ({
  bytes: st.data.length,
  sha256: createHash('sha256').update(st.data).digest('hex'),
  matches: st.data.toString('utf8').split('\\n').slice(0, -1).filter((l) => /deadline has elapsed/.test(l)).length,
});
writeSync(3, JSON.stringify({ stdout: report(streams[0]), stderr: report(streams[1]) }));
`;

test(
  '20 MB of random lines arrive unchanged and in order, stdout and stderr apart, every match counted once',
  { timeout: 60_000 },
  async () => {
    const child = run(process.execPath, ['-e', RANDOM_WRITER, '20250101'], ['ignore', 'pipe', 'pipe', 'pipe']);
    const closed = once(child, 'close');
    let report = '';
    child.stdio[3]!.on('data', (c: Buffer) => (report += c.toString()));
    const toReader = await fifo('stdout.fifo', true);
    const stdoutDestination = fdDestination(toReader.fd);
    const file = join(DIR, 'stderr.log');
    const stderrDestination = createWriteStream(file);
    const counter = new RecordingCounter(watch(), systemClock, () => {});

    await Promise.all([
      relay(child.stdout!, stdoutDestination, counter, 'stdout'),
      relay(child.stderr!, stderrDestination, counter, 'stderr'),
    ]);
    assert.equal(stdoutDestination.writableEnded, false, 'relay leaves the destination open');
    await flushed(stdoutDestination);
    const gotStdout = await toReader.result();
    stderrDestination.end();
    await once(stderrDestination, 'finish');
    const gotStderr = readFileSync(file);
    await closed;
    const expected = JSON.parse(report) as Record<LogStream, { bytes: number; sha256: string; matches: number }>;

    assert.deepEqual(gotStdout, { bytes: expected.stdout.bytes, sha256: expected.stdout.sha256 });
    assert.equal(gotStderr.length, expected.stderr.bytes);
    assert.equal(createHash('sha256').update(gotStderr).digest('hex'), expected.stderr.sha256);

    const total = expected.stdout.matches + expected.stderr.matches;
    assert.ok(expected.stdout.matches > 100 && expected.stderr.matches > 100, JSON.stringify(expected));
    // 12 MB in reads of up to 256 KiB (READ_BUFFER_BYTES), wherever the writer's random blocks happen to end.
    assert.ok(counter.fed.filter(([s]) => s === 'stdout').length > 40, 'many chunks, split anywhere');
    assert.equal(trips(counter.fed, total - 1), true, `more than ${total - 1} matching lines counted`);
    assert.equal(trips(counter.fed, total), false, `no more than ${total} matching lines counted`);
  },
);

/** How often a 5 ms timer fired while `during` ran: a loop blocked in a write would fire it once at most.
 * (The worst lag is a figure for `npm run bench`, not a test.) */
async function timerTicks(during: () => Promise<void>): Promise<number> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    await during();
  } finally {
    clearInterval(timer);
  }
  return ticks;
}

test(
  'backpressure into a blocking pipe: the child blocks, sdwrap buffers little and its event loop runs on',
  { timeout: 60_000 },
  async (t) => {
    const total = LINES_OF_120(200 * MiB);
    const child = run(process.execPath, [LOG_WRITER, '--bytes', String(total)], ['ignore', 'pipe', 'inherit']);
    const journal = await fifo('slow.fifo', false);
    const destination = fdDestination(journal.fd);
    let read = 0;
    const counter = new (class extends SymptomCounter {
      override feed(stream: LogStream, chunk: Buffer) {
        read += chunk.length;
        super.feed(stream, chunk);
      }
    })(watch(), systemClock, () => {});
    const rssBefore = process.memoryUsage().rss;
    const relayed = relay(child.stdout!, destination, counter, 'stdout');

    await waitFor(() => child.stdout!.isPaused(), { message: 'the source was never paused' });
    let readWhenPaused = 0;
    const ticks = await timerTicks(async () => {
      readWhenPaused = read;
      await delay(750); // the journal reads nothing for a while
    });
    t.diagnostic(
      `while stalled: read ${(read / MiB).toFixed(1)} MiB of ${(total / MiB).toFixed(0)}, writableLength ${destination.writableLength}, a 5 ms timer fired ${ticks} times in 750 ms`,
    );
    assert.ok(read - readWhenPaused <= 256 * 1024, `read ${read - readWhenPaused} bytes more while paused`);
    assert.ok(read < 8 * MiB, `read only what the pipes hold, not ${read} bytes`);
    assert.ok(destination.writableLength <= 1 * MiB, `writableLength ${destination.writableLength}`);
    assert.ok(process.memoryUsage().rss - rssBefore < 64 * MiB, 'rss stays bounded');
    assert.equal(readProc(child.pid!)?.state, 'S', 'the child sleeps in write(2)');
    assert.equal(child.exitCode, null);
    assert.ok(ticks >= 3, `the event loop ran only ${ticks} timer callbacks in 750 ms while the destination was full`);

    journal.release();
    await relayed;
    await flushed(destination);
    assert.equal(destination.writableLength, 0);
    assert.equal(read, total);
    assert.equal((await journal.result()).bytes, total);
  },
);

test(
  'backpressure into a socket (what process.stdout is on a pipe): source paused, bounded, then everything arrives',
  { timeout: 60_000 },
  async () => {
    const total = LINES_OF_120(100 * MiB);
    const child = run(process.execPath, [LOG_WRITER, '--bytes', String(total)], ['ignore', 'pipe', 'inherit']);
    const reader = run(
      process.execPath,
      [
        '-e',
        `const keep = setInterval(() => {}, 1e6); let n = 0; process.on('SIGUSR2', () => process.stdin.on('data', (c) => n += c.length).on('end', () => { clearInterval(keep); process.stdout.write(String(n)); })); process.stdout.write('ready\\n');`,
      ],
      ['pipe', 'pipe', 'inherit'],
    );
    let out = '';
    reader.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    await waitFor(() => out.startsWith('ready\n'));
    const destination = reader.stdin!;
    const relayed = relay(child.stdout!, destination, new SymptomCounter(watch(), systemClock, () => {}), 'stdout');

    await waitFor(() => child.stdout!.isPaused(), { message: 'the source was never paused' });
    assert.ok(destination.writableLength <= 1 * MiB, `writableLength ${destination.writableLength}`);
    assert.equal(readProc(child.pid!)?.state, 'S', 'the child sleeps in write(2)');
    reader.kill('SIGUSR2');
    await relayed;
    await flushed(destination);
    destination.end();
    await once(reader, 'close');
    assert.equal(out, `ready\n${total}`);
  },
);

test(
  'a dead destination (EPIPE) does not wedge the child: the rest is read and counted, then relay rejects',
  { timeout: 60_000 },
  async () => {
    const child = run(
      'sh',
      [
        '-c',
        'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done; echo "context deadline has elapsed"; echo "deadline has elapsed"',
      ],
      ['ignore', 'pipe', 'inherit'],
    );
    const closed = once(child, 'close');
    const head = run('head', ['-c', '1000'], ['pipe', 'ignore', 'inherit']);
    const destination = head.stdin!;
    const reasons: string[] = [];
    const counter = new SymptomCounter({ pattern: /deadline has elapsed/, max: 1, windowMs: 60_000 }, systemClock, (r) => reasons.push(r));
    // Which comes first depends on timing: a write failing, or the socket seeing its peer go.
    await assert.rejects(
      relay(child.stdout!, destination, counter, 'stdout'),
      (error: NodeJS.ErrnoException) => error.code === 'EPIPE' || error.message === 'stdout destination closed',
    );
    assert.deepEqual(await closed, [0, null], 'the child ran to the end');
    assert.deepEqual(reasons, ['log watch: 2 lines matching /deadline has elapsed/ within 1min (max 1)']);
  },
);

test('flushed() waits for what the destination still holds; relay has already settled', { timeout: 60_000 }, async () => {
  const total = LINES_OF_120(300 * 1024); // more than the FIFO holds, less than the destination's high water mark
  const child = run(process.execPath, [LOG_WRITER, '--bytes', String(total)], ['ignore', 'pipe', 'inherit']);
  const journal = await fifo('flush.fifo', false);
  const destination = fdDestination(journal.fd);
  await relay(child.stdout!, destination, new SymptomCounter(watch(), systemClock, () => {}), 'stdout');
  assert.ok(destination.writableLength > 0, 'the FIFO is full, so some is still queued');
  let done = false;
  const flushing = flushed(destination).then(() => (done = true));
  await delay(200); // the journal reads nothing for a while
  assert.equal(done, false);
  journal.release();
  await flushing;
  assert.equal(destination.writableLength, 0);
  assert.equal((await journal.result()).bytes, total);
});

test(
  'a non-blocking descriptor (something touched process.stdout): EAGAIN is waited out, nothing lost or reordered',
  { timeout: 60_000 },
  async () => {
    const child = run(process.execPath, ['-e', RANDOM_WRITER, '7'], ['ignore', 'pipe', 'pipe', 'pipe']);
    let report = '';
    child.stdio[3]!.on('data', (c: Buffer) => (report += c.toString()));
    const journal = await fifo('nonblocking.fifo', false, true);
    const destination = fdDestination(journal.fd);
    const counter = new SymptomCounter(watch(), systemClock, () => {});
    const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    const relayed = Promise.all([relay(child.stdout!, destination, counter, 'stdout'), relay(child.stderr!, discard, counter, 'stderr')]);
    await waitFor(() => child.stdout!.isPaused(), { message: 'the source was never paused' });
    journal.release();
    await relayed;
    await flushed(destination);
    const got = await journal.result();
    const expected = (JSON.parse(report) as Record<LogStream, { bytes: number; sha256: string }>).stdout;
    assert.deepEqual(got, { bytes: expected.bytes, sha256: expected.sha256 });
  },
);

test('output reaches the destination as it is written, a partial line too, without waiting for more', { timeout: 60_000 }, async () => {
  const child = run(
    process.execPath,
    [
      '-e',
      `process.stdin.on('data', (c) => { process.stdout.write((c.toString().trim() === 'line' ? '' : 'partial ') + (performance.timeOrigin + performance.now()) + (c.toString().trim() === 'line' ? '\\n' : '')); });`,
    ],
    ['pipe', 'pipe', 'inherit'],
  );
  const arrivals: Array<{ at: number; text: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      arrivals.push({ at: performance.timeOrigin + performance.now(), text: chunk.toString() });
      callback();
    },
  });
  const relayed = relay(child.stdout!, destination, new SymptomCounter(watch(), systemClock, () => {}), 'stdout');
  // Each write is answered before the next is asked for: a relay that held a partial line back for its newline
  // (or a chunk for a fuller buffer) would never hand this one on. How fast is `npm run bench`'s question.
  for (let i = 0; i < 20; i++) {
    const kind = i % 2 === 0 ? 'partial' : 'line';
    child.stdin!.write(`${kind}\n`);
    const arrival = await waitFor(() => arrivals.length > i && arrivals[i], {
      timeout: 10_000,
      message: `write ${i} (${kind}) never arrived`,
    });
    assert.match(arrival.text, kind === 'partial' ? /^partial [\d.]+$/ : /^[\d.]+\n$/);
  }
  child.stdin!.end();
  await relayed;
});

test(
  'relay settles only when every holder of the pipe has closed it: a child that exits early and its background job',
  { timeout: 60_000 },
  async () => {
    const child = run('sh', ['-c', 'exec 3<&0; (read -r _ <&3; echo late) & echo early'], ['pipe', 'pipe', 'inherit']);
    const exited = once(child, 'exit');
    let text = '';
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    let settled = false;
    const relayed = relay(child.stdout!, destination, new SymptomCounter(watch(), systemClock, () => {}), 'stdout').then(
      () => (settled = true),
    );
    await exited;
    await waitFor(() => text === 'early\n');
    assert.equal(settled, false, 'the background job still holds the pipe');
    child.stdin!.end('go\n');
    await relayed;
    assert.equal(text, 'early\nlate\n');
  },
);

test("a child's pipe is read into one reused buffer, more than a stream's 64 KiB at a time", { timeout: 60_000 }, async () => {
  const total = LINES_OF_120(64 * MiB);
  const child = run(process.execPath, [LOG_WRITER, '--bytes', String(total)], ['ignore', 'pipe', 'inherit']);
  const memories = new Set<ArrayBufferLike>();
  let largest = 0;
  let read = 0;
  const counter = new (class extends SymptomCounter {
    override feed(stream: LogStream, chunk: Buffer) {
      memories.add(chunk.buffer);
      largest = Math.max(largest, chunk.length);
      read += chunk.length;
      super.feed(stream, chunk);
    }
  })(watch(), systemClock, () => {});
  const devNull = openSync('/dev/null', 'w');
  try {
    await relay(child.stdout!, fdDestination(devNull), counter, 'stdout');
  } finally {
    closeSync(devNull);
  }
  assert.equal(read, total);
  assert.equal(memories.size, 1, 'every read went into the same memory');
  assert.ok(largest > 64 * 1024, `largest read ${largest} bytes`);
  assert.ok(largest <= READ_BUFFER_BYTES);
});

/** MB/s of log-writer.mjs from its first write to its last. */
function writerRate(report: string): number {
  const r = JSON.parse(readFileSync(report, 'utf8')) as { bytes: number; firstWriteAt: number; lastWriteAt: number };
  return r.bytes / MiB / ((r.lastWriteAt - r.firstWriteAt) / 1000);
}

test('throughput: 200 MB through relay against the child writing to /dev/null (reported, not asserted)', { timeout: 60_000 }, async (t) => {
  const bytes = String(200 * MiB);
  const directReport = join(DIR, 'direct.json');
  await once(run(process.execPath, [LOG_WRITER, '--bytes', bytes, '--report', directReport], ['ignore', 'ignore', 'inherit']), 'close');

  const relayReport = join(DIR, 'relay.json');
  const child = run(process.execPath, [LOG_WRITER, '--bytes', bytes, '--report', relayReport], ['ignore', 'pipe', 'pipe']);
  const closed = once(child, 'close');
  const devNull = openSync('/dev/null', 'w');
  const counter = new SymptomCounter(watch(10), systemClock, () => {});
  const out = fdDestination(devNull);
  const err = fdDestination(devNull);
  await Promise.all([relay(child.stdout!, out, counter, 'stdout'), relay(child.stderr!, err, counter, 'stderr')]);
  await Promise.all([flushed(out), flushed(err), closed]);
  closeSync(devNull);

  const viaRelay = writerRate(relayReport);
  const directly = writerRate(directReport);
  t.diagnostic(
    `relay ${viaRelay.toFixed(0)} MB/s, direct to /dev/null ${directly.toFixed(0)} MB/s, ratio ${(viaRelay / directly).toFixed(3)}`,
  );
});
