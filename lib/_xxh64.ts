/**
 * XXH64 (seed 0) in a WebAssembly module of our own, assembled here from the algorithm's
 * specification (about 400 bytes): the per-row hashes of a publish without the costs that
 * xxhash-wasm's API adds around the same computation. Its `h64ToString` encodes the text through
 * the runtime (`TextEncoder.encodeInto`, a call out of JavaScript per string) and returns the
 * hash as a `BigInt` made into hex, and a key's index hash needed two more `BigInt`s; per 1M rows
 * that was ~180 MB of garbage and 2.8 % of the CPU in `encodeInto` alone. Here ASCII text is
 * copied into the module's memory unit by unit, the module writes the hash (or its 16 hex
 * digits) to memory, and JavaScript reads two 32-bit halves or one 16-character string.
 * `tests/xxh64_test.ts` checks every result against xxhash-wasm.
 *
 * @module
 */

const P1 = 0x9E3779B185EBCA87n;
const P2 = 0xC2B2AE3D27D4EB4Fn;
const P3 = 0x165667B19E3779F9n;
const P4 = 0x85EBCA77C2B2AE63n;
const P5 = 0x27D4EB2F165667C5n;

// Opcodes (WebAssembly 1.0).
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41, I64_CONST = 0x42;
const I32_ADD = 0x6a, I32_SUB = 0x6b, I32_AND = 0x71, I32_LT_U = 0x49, I32_LE_U = 0x4d;
const I32_GE_U = 0x4f, I32_GT_U = 0x4b, I32_WRAP_I64 = 0xa7, SELECT = 0x1b;
const I64_ADD = 0x7c, I64_MUL = 0x7e, I64_XOR = 0x85, I64_SHR_U = 0x88, I64_ROTL = 0x89;
const I64_EXTEND_I32_U = 0xad, I64_LOAD = 0x29, I64_LOAD32_U = 0x35, I64_LOAD8_U = 0x31;
const I64_STORE = 0x37, I32_STORE8 = 0x3a, CALL = 0x10;
const BLOCK = 0x02, LOOP = 0x03, IF = 0x04, ELSE = 0x05, END = 0x0b, BR = 0x0c, BR_IF = 0x0d;
const VOID = 0x40, I32 = 0x7f, I64 = 0x7e;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: bigint): number[] {
  const out: number[] = [];
  n = BigInt.asIntN(64, n);
  for (;;) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (b & 0x40) === 0) || (n === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const i64 = (n: bigint) => [I64_CONST, ...sleb(n)];
const get = (local: number) => [LOCAL_GET, local];
const set = (local: number) => [LOCAL_SET, local];

// The hash function's locals: 0 p (the pointer, moving), 1 len, 2 end, 3 limit, 4-7 v1-v4, 8 h.
const [P, LEN, END_, LIMIT, V1, V2, V3, V4, H] = [0, 1, 2, 3, 4, 5, 6, 7, 8];

/** acc + input * P2, rotated left 31, times P1: `input` is code that leaves an i64. */
const round = (acc: number[], input: number[]) => [
  ...acc,
  ...input,
  ...i64(P2),
  I64_MUL,
  I64_ADD,
  ...i64(31n),
  I64_ROTL,
  ...i64(P1),
  I64_MUL,
];

/** h = (h ^ round(0, v)) * P1 + P4. */
const merge = (v: number) => [
  ...get(H),
  ...round(i64(0n), get(v)),
  I64_XOR,
  ...i64(P1),
  I64_MUL,
  ...i64(P4),
  I64_ADD,
  ...set(H),
];

const lane = (v: number, offset: number) => [
  ...round(get(v), [...get(P), I64_LOAD, 3, offset]),
  ...set(v),
];

/** xxh64(p, len) -> i64. */
const HASH_BODY = [
  ...get(P),
  ...get(LEN),
  I32_ADD,
  ...set(END_),
  ...get(LEN),
  I32_CONST,
  32,
  I32_GE_U,
  IF,
  VOID,
  ...[...get(END_), I32_CONST, 32, I32_SUB, ...set(LIMIT)],
  ...i64(P1 + P2),
  ...set(V1),
  ...i64(P2),
  ...set(V2),
  ...i64(0n),
  ...set(V3),
  ...i64(-P1),
  ...set(V4),
  LOOP,
  VOID,
  ...lane(V1, 0),
  ...lane(V2, 8),
  ...lane(V3, 16),
  ...lane(V4, 24),
  ...[...get(P), I32_CONST, 32, I32_ADD, ...set(P)],
  ...[...get(P), ...get(LIMIT), I32_LE_U, BR_IF, 0],
  END,
  ...[...get(V1), ...i64(1n), I64_ROTL],
  ...[...get(V2), ...i64(7n), I64_ROTL, I64_ADD],
  ...[...get(V3), ...i64(12n), I64_ROTL, I64_ADD],
  ...[...get(V4), ...i64(18n), I64_ROTL, I64_ADD],
  ...set(H),
  ...merge(V1),
  ...merge(V2),
  ...merge(V3),
  ...merge(V4),
  ELSE,
  ...i64(P5),
  ...set(H),
  END,
  ...[...get(H), ...get(LEN), I64_EXTEND_I32_U, I64_ADD, ...set(H)],
  // 8 bytes at a time
  BLOCK,
  VOID,
  LOOP,
  VOID,
  ...[...get(P), I32_CONST, 8, I32_ADD, ...get(END_), I32_GT_U, BR_IF, 1],
  ...get(H),
  ...round(i64(0n), [...get(P), I64_LOAD, 3, 0]),
  I64_XOR,
  ...i64(27n),
  I64_ROTL,
  ...i64(P1),
  I64_MUL,
  ...i64(P4),
  I64_ADD,
  ...set(H),
  ...[...get(P), I32_CONST, 8, I32_ADD, ...set(P)],
  BR,
  0,
  END,
  END,
  // 4 bytes
  ...[...get(P), I32_CONST, 4, I32_ADD, ...get(END_), I32_LE_U],
  IF,
  VOID,
  ...get(H),
  ...[...get(P), I64_LOAD32_U, 2, 0, ...i64(P1), I64_MUL],
  I64_XOR,
  ...i64(23n),
  I64_ROTL,
  ...i64(P2),
  I64_MUL,
  ...i64(P3),
  I64_ADD,
  ...set(H),
  ...[...get(P), I32_CONST, 4, I32_ADD, ...set(P)],
  END,
  // 1 byte at a time
  BLOCK,
  VOID,
  LOOP,
  VOID,
  ...[...get(P), ...get(END_), I32_GE_U, BR_IF, 1],
  ...get(H),
  ...[...get(P), I64_LOAD8_U, 0, 0, ...i64(P5), I64_MUL],
  I64_XOR,
  ...i64(11n),
  I64_ROTL,
  ...i64(P1),
  I64_MUL,
  ...set(H),
  ...[...get(P), I32_CONST, 1, I32_ADD, ...set(P)],
  BR,
  0,
  END,
  END,
  // avalanche
  ...[...get(H), ...get(H), ...i64(33n), I64_SHR_U, I64_XOR, ...i64(P2), I64_MUL, ...set(H)],
  ...[...get(H), ...get(H), ...i64(29n), I64_SHR_U, I64_XOR, ...i64(P3), I64_MUL, ...set(H)],
  ...[...get(H), ...get(H), ...i64(32n), I64_SHR_U, I64_XOR],
];

/** h64(p, len, out): the hash, little-endian, at `out`. */
const STORE_BODY = [...get(2), ...get(0), ...get(1), CALL, 0, I64_STORE, 3, 0];

/** hex(p, len, out): the hash's 16 lowercase hex digits at `out`. Locals: 3 h, 4 i, 5 d. */
const HEX_BODY = [
  ...[...get(0), ...get(1), CALL, 0, ...set(3)],
  LOOP,
  VOID,
  // d = (h >> (60 - 4 i)) & 15
  ...get(3),
  ...[I64_CONST, 60, ...get(4), I32_CONST, 2, 0x74, /* i32.shl */ I64_EXTEND_I32_U],
  0x7d, // i64.sub: 60 - 4 i
  I64_SHR_U,
  I32_WRAP_I64,
  I32_CONST,
  15,
  I32_AND,
  ...set(5),
  // out[i] = d + (d < 10 ? 48 : 87)
  ...[...get(2), ...get(4), I32_ADD],
  ...[...get(5), I32_CONST, 48, I32_ADD],
  ...[...get(5), I32_CONST, 0xd7, 0x00, /* 87 */ I32_ADD],
  ...[...get(5), I32_CONST, 10, I32_LT_U],
  SELECT,
  I32_STORE8,
  0,
  0,
  ...[...get(4), I32_CONST, 1, I32_ADD, ...set(4)],
  ...[...get(4), I32_CONST, 16, I32_LT_U, BR_IF, 0],
  END,
];

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function code(locals: Array<[number, number]>, body: number[]): number[] {
  const fn = [...vec(locals.map(([n, type]) => [...uleb(n), type])), ...body, END];
  return [...uleb(fn.length), ...fn];
}

function name(text: string): number[] {
  return [...uleb(text.length), ...[...text].map((c) => c.charCodeAt(0))];
}

/** The module's bytes. */
export function xxh64Module(): Uint8Array {
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, 2, I32, I32, 1, I64], [0x60, 3, I32, I32, I32, 0]])),
    ...section(3, vec([[0], [1], [1]])),
    ...section(5, vec([[0x00, 1]])), // memory: 1 page to start with
    ...section(
      7,
      vec([[...name("memory"), 2, 0], [...name("h64"), 0, 1], [...name("hex"), 0, 2]]),
    ),
    ...section(
      10,
      vec([
        code([[2, I32], [5, I64]], HASH_BODY),
        code([], STORE_BODY),
        code([[1, I64], [2, I32]], HEX_BODY),
      ]),
    ),
  ]);
}

/** Where the hash is written, and where the input starts. */
const OUT = 0;
const INPUT = 64;

/** XXH64 of text (as UTF-8) and bytes, synchronous once made. */
export class Xxh64 {
  readonly #memory: WebAssembly.Memory;
  readonly #h64: (p: number, len: number, out: number) => void;
  readonly #hex: (p: number, len: number, out: number) => void;
  #bytes: Uint8Array;
  #words: Uint32Array;
  readonly #encoder = new TextEncoder();

  private constructor(instance: WebAssembly.Instance) {
    const exports = instance.exports as {
      memory: WebAssembly.Memory;
      h64(p: number, len: number, out: number): void;
      hex(p: number, len: number, out: number): void;
    };
    this.#memory = exports.memory;
    this.#h64 = exports.h64;
    this.#hex = exports.hex;
    this.#bytes = new Uint8Array(this.#memory.buffer);
    this.#words = new Uint32Array(this.#memory.buffer);
  }

  static async create(): Promise<Xxh64> {
    const module = await WebAssembly.compile(xxh64Module() as Uint8Array<ArrayBuffer>);
    return new Xxh64(await WebAssembly.instantiate(module));
  }

  /** Room for `n` input bytes. */
  #room(n: number): Uint8Array {
    const need = INPUT + n - this.#bytes.length;
    if (need > 0) {
      this.#memory.grow(Math.ceil(need / 65536));
      this.#bytes = new Uint8Array(this.#memory.buffer);
      this.#words = new Uint32Array(this.#memory.buffer);
    }
    return this.#bytes;
  }

  /** Writes `data` as the input; returns its length in bytes. */
  #input(data: string | Uint8Array): number {
    if (typeof data !== "string") {
      this.#room(data.length).set(data, INPUT);
      return data.length;
    }
    const n = data.length;
    const bytes = this.#room(n * 3);
    // ASCII unit by unit: most keys and values are, and a call out per string cost more.
    let i = 0;
    for (; i < n; i++) {
      const c = data.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[INPUT + i] = c;
    }
    if (i === n) return n;
    return i + this.#encoder.encodeInto(data.slice(i), bytes.subarray(INPUT + i)).written;
  }

  /** The hash as 16 lowercase hex digits. */
  hex(data: string | Uint8Array): string {
    const n = this.#input(data);
    this.#hex(INPUT, n, OUT);
    const b = this.#bytes;
    return String.fromCharCode(
      b[OUT]!,
      b[OUT + 1]!,
      b[OUT + 2]!,
      b[OUT + 3]!,
      b[OUT + 4]!,
      b[OUT + 5]!,
      b[OUT + 6]!,
      b[OUT + 7]!,
      b[OUT + 8]!,
      b[OUT + 9]!,
      b[OUT + 10]!,
      b[OUT + 11]!,
      b[OUT + 12]!,
      b[OUT + 13]!,
      b[OUT + 14]!,
      b[OUT + 15]!,
    );
  }

  /** The hash's top 53 bits (the hash shifted right by 11), a plain number. */
  top53(data: string | Uint8Array): number {
    const n = this.#input(data);
    this.#h64(INPUT, n, OUT);
    const lo = this.#words[OUT / 4]!;
    const hi = this.#words[OUT / 4 + 1]!;
    return hi * 2097152 + (lo >>> 11);
  }
}
