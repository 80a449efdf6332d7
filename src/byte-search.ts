// Finding a plain-text --watch-log pattern in the app's output at memory speed. Buffer#indexOf (a Boyer-Moore-
// Horspool search) reads log text no faster than the log relay moves it, so the search alone would halve the
// relay (figures in bench/README.md). This is the SIMD "generic" substring search (Wojciech Muła): compare the needle's first and last bytes
// with 16 positions at once, check whole only where both match. It runs as a tiny WebAssembly module whose
// memory the relay reads the app's pipes into, so the bytes are searched where read(2) put them.
//
// The module, as WebAssembly text (built by hand below; two functions, no imports, fixed memory):
//
//   (memory (export "memory") PAGES PAGES)             ;; min = max: never grows, so views of it stay valid
//   (func (export "find") (param $h i32) (param $n i32) (param $p i32) (param $k i32) (result i32)
//     ;; the first index of needle [p, p+k) in haystack [h, h+n), or -1; k >= 2
//     (local $i i32) (local $end i32) (local $mask i32) (local $j i32) (local $a i32) (local $b i32)
//     (local $first v128) (local $last v128)
//     (if (i32.lt_s (local.tee $end (i32.sub n k)) 0) (return -1))
//     (local.set $first (i8x16.splat (i32.load8_u p)))
//     (local.set $last (i8x16.splat (i32.load8_u (p + k - 1))))
//     ;; hits(off) = (i8x16.eq (v128.load offset=off a) first) & (i8x16.eq (v128.load offset=off b) last):
//     ;; the positions a+off .. a+off+15 where the needle's first and last bytes both match
//     (block $tail (loop $blocks
//       (block $slow (loop $fast                           ;; 128 positions at a time while none is a candidate
//         (br_if $slow (i32.gt_s (i + 127) end))
//         (local.set $a (h + i)) (local.set $b (a + k - 1))
//         (br_if $slow (v128.any_true (hits(0) | hits(16) | ... | hits(112))))
//         (local.set $i (i + 128))
//         (br $fast)))
//       (br_if $tail (i32.gt_s (i + 15) end))            ;; 16 positions, each candidate checked whole
//       (local.set $a (h + i)) (local.set $b (a + k - 1))
//       (local.set $mask (i8x16.bitmask hits(0)))
//       (block $next (loop $candidates
//         (br_if $next (i32.eqz mask))
//         (local.set $j (i + (i32.ctz mask)))
//         (if (call $same (h + j) p k) (return j))
//         (local.set $mask (i32.and mask (mask - 1)))
//         (br $candidates)))
//       (local.set $i (i + 16))
//       (br $blocks)))
//     (block $none (loop $scalar                          ;; the last < 16 positions, one by one
//       (br_if $none (i32.gt_s i end))
//       (if (call $same (h + i) p k) (return i))
//       (local.set $i (i + 1))
//       (br $scalar)))
//     (i32.const -1))
//   (func $same (param $x i32) (param $y i32) (param $len i32) (result i32)   ;; 1 when [x, x+len) == [y, y+len)
//     (block $differ (loop $bytes
//       (if (i32.eqz len) (return 1))
//       (br_if $differ (i32.ne (i32.load8_u x) (i32.load8_u y)))
//       x++ y++ len-- (br $bytes)))
//     (i32.const 0))

/** Each of the two read buffers (stdout, stderr). */
export const SEARCH_BUFFER_BYTES = 256 * 1024;
/** The needle lives in the first page; a longer one is searched with Buffer#indexOf. */
const MAX_NEEDLE_BYTES = 4096;
const PAGE = 64 * 1024;
const BUFFER_SLOTS = 2;
const PAGES = 1 + (BUFFER_SLOTS * SEARCH_BUFFER_BYTES) / PAGE;

const I32 = 0x7f;
const V128 = 0x7b;
// One row of opcodes per kind, as in the spec's tables: kept as written.
// prettier-ignore
const op = {
  block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br: 0x0c, brIf: 0x0d, return: 0x0f, call: 0x10, void: 0x40,
  get: 0x20, set: 0x21, tee: 0x22, load8: [0x2d, 0x00, 0x00], const: 0x41,
  eqz: 0x45, ne: 0x47, ltS: 0x48, gtS: 0x4a, ctz: 0x68, add: 0x6a, sub: 0x6b, and: 0x71,
  // v128.load is followed by its offset (alignment 0 is written here).
  v128load: [0xfd, 0x00, 0x00], splat: [0xfd, 0x0f], eq8: [0xfd, 0x23], v128and: [0xfd, 0x4e], v128or: [0xfd, 0x50],
  anyTrue: [0xfd, 0x53], bitmask: [0xfd, 0x64],
} as const;

/** Signed LEB128, for i32.const (and, being small and positive, every count and index here). */
function leb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const name = (text: string) => [...leb(text.length), ...Buffer.from(text)];
const body = (locals: number[][], code: number[]) => {
  const inner = [...vec(locals), ...code, op.end];
  return [...leb(inner.length), ...inner];
};

// The code reads as the WebAssembly text above, one instruction group per line: kept as written.
// prettier-ignore
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const [h, n, p, k, i, end, mask, j, a, b, first, last] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const get = (x: number) => [op.get, x];
  const set = (x: number) => [op.set, x];
  const c = (x: number) => [op.const, ...leb(x)];
  const SAME = 1;
  /** The v128 of positions a+off .. a+off+15 whose first byte and last byte (at b+off) match the needle's. */
  const hits = (off: number) => [
    ...get(a), ...op.v128load, ...leb(off), ...get(first), ...op.eq8,
    ...get(b), ...op.v128load, ...leb(off), ...get(last), ...op.eq8, ...op.v128and,
  ];
  /** a = h + i; b = a + k - 1 */
  const at = [...get(h), ...get(i), op.add, op.tee, a, ...get(k), op.add, ...c(1), op.sub, ...set(b)];
  const find = [
    ...get(n), ...get(k), op.sub, op.tee, end, ...c(0), op.ltS, op.if, op.void, ...c(-1), op.return, op.end,
    ...get(p), ...op.load8, ...op.splat, ...set(first),
    ...get(p), ...get(k), op.add, ...c(1), op.sub, ...op.load8, ...op.splat, ...set(last),
    op.block, op.void, op.loop, op.void, // $tail, $blocks
    op.block, op.void, op.loop, op.void, // $slow, $fast: 128 positions at a time while none is a candidate
    ...get(i), ...c(127), op.add, ...get(end), op.gtS, op.brIf, 1,
    ...at, ...hits(0), ...hits(16), ...op.v128or, ...hits(32), ...hits(48), ...op.v128or, ...op.v128or,
    ...hits(64), ...hits(80), ...op.v128or, ...hits(96), ...hits(112), ...op.v128or, ...op.v128or, ...op.v128or, ...op.anyTrue, op.brIf, 1,
    ...get(i), ...c(128), op.add, ...set(i),
    op.br, 0, op.end, op.end,
    ...get(i), ...c(15), op.add, ...get(end), op.gtS, op.brIf, 1, // 16 positions, each candidate checked whole
    ...at, ...hits(0), ...op.bitmask, ...set(mask),
    op.block, op.void, op.loop, op.void, // $next, $candidates
    ...get(mask), op.eqz, op.brIf, 1,
    ...get(i), ...get(mask), op.ctz, op.add, ...set(j),
    ...get(h), ...get(j), op.add, ...get(p), ...get(k), op.call, SAME, op.if, op.void, ...get(j), op.return, op.end,
    ...get(mask), ...get(mask), ...c(1), op.sub, op.and, ...set(mask),
    op.br, 0, op.end, op.end,
    ...get(i), ...c(16), op.add, ...set(i),
    op.br, 0, op.end, op.end,
    op.block, op.void, op.loop, op.void, // $none, $scalar: the last positions, one by one
    ...get(i), ...get(end), op.gtS, op.brIf, 1,
    ...get(h), ...get(i), op.add, ...get(p), ...get(k), op.call, SAME, op.if, op.void, ...get(i), op.return, op.end,
    ...get(i), ...c(1), op.add, ...set(i),
    op.br, 0, op.end, op.end,
    ...c(-1),
  ];
  const [x, y, len] = [0, 1, 2];
  const same = [
    op.block, op.void, op.loop, op.void,
    ...get(len), op.eqz, op.if, op.void, ...c(1), op.return, op.end,
    ...get(x), ...op.load8, ...get(y), ...op.load8, op.ne, op.brIf, 1,
    ...get(x), ...c(1), op.add, ...set(x), ...get(y), ...c(1), op.add, ...set(y), ...get(len), ...c(1), op.sub, ...set(len),
    op.br, 0, op.end, op.end,
    ...c(0),
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([[I32]])], [0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])]])),
    ...section(3, vec([[0], [1]])),
    ...section(5, vec([[0x01, ...leb(PAGES), ...leb(PAGES)]])),
    ...section(7, vec([[...name('memory'), 0x02, 0], [...name('find'), 0x00, 0]])),
    ...section(10, vec([body([[6, I32], [2, V128]], find), body([], same)])),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly (with SIMD) is not available. */
function searchModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(moduleBytes());
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** A needle to find in chunks of the app's output, and the memory to read them into. */
export class ByteSearch {
  readonly #needle: Buffer;
  readonly #find: ((h: number, n: number, p: number, k: number) => number) | undefined;
  readonly #memory: ArrayBuffer | undefined;
  #slotsGiven = 0;

  constructor(needle: Buffer) {
    this.#needle = needle;
    const module = needle.length >= 2 && needle.length <= MAX_NEEDLE_BYTES ? searchModule() : null;
    if (module) {
      const exports = new WebAssembly.Instance(module, {}).exports as {
        memory: WebAssembly.Memory;
        find: (h: number, n: number, p: number, k: number) => number;
      };
      this.#memory = exports.memory.buffer;
      this.#find = exports.find;
      needle.copy(Buffer.from(this.#memory, 0, needle.length));
    }
  }

  /**
   * A buffer to read output into, SEARCH_BUFFER_BYTES long: in the search's own memory while a slot is free (then
   * find() searches it in place), else an ordinary one.
   */
  readBuffer(): Buffer {
    if (this.#memory && this.#slotsGiven < BUFFER_SLOTS) {
      return Buffer.from(this.#memory, PAGE + this.#slotsGiven++ * SEARCH_BUFFER_BYTES, SEARCH_BUFFER_BYTES);
    }
    return Buffer.allocUnsafe(SEARCH_BUFFER_BYTES);
  }

  /** The first index of the needle in chunk[from, to), counted from the start of `chunk`, or -1. */
  find(chunk: Buffer, from: number, to: number): number {
    if (to - from < this.#needle.length) return -1;
    if (this.#find && chunk.buffer === this.#memory) {
      const at = this.#find(chunk.byteOffset + from, to - from, 0, this.#needle.length);
      return at === -1 ? -1 : from + at;
    }
    const at = chunk.subarray(from, to).indexOf(this.#needle);
    return at === -1 ? -1 : from + at;
  }
}
