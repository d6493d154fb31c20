/**
 * Fingerprints: 64-bit xxHash (XXH64, seed 0) of the bytes a target would send, kept as 16-digit
 * lowercase hex strings. Hex strings are cheap map keys (no BigInt per row), compare exactly, and
 * round-trip through the state store as fixed-width 8-byte values. The per-row hashes come from
 * statecast's own WASM module (lib/_xxh64.ts), the streaming ones of several parts from
 * xxhash-wasm: the same function, checked against each other in tests/xxh64_test.ts.
 *
 * The WASM modules are instantiated once ({@linkcode initFingerprints}); after that every function
 * here is synchronous, so the hot path (parse, hash, diff) never awaits per row.
 *
 * @module
 */
import xxhash from "xxhash-wasm";
import type { XXHashAPI } from "xxhash-wasm";
import { Xxh64 } from "./_xxh64.ts";

/**
 * A 64-bit fingerprint as 16 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { type Fingerprint, fingerprint, initFingerprints } from "./mod.ts";
 * await initFingerprints();
 * const f: Fingerprint = fingerprint("hello");
 * if (!/^[0-9a-f]{16}$/.test(f)) throw new Error(f);
 * ```
 */
export type Fingerprint = string;

let api: XXHashAPI | undefined;
/** The per-row hashes: the same XXH64, without xxhash-wasm's per-call costs (lib/_xxh64.ts). */
let core: Xxh64 | undefined;

/**
 * Loads the WASM hashing core. Idempotent; call once before any other function here. An app
 * calls it before its first round, so a target's `fingerprint()` never needs to.
 *
 * @example
 * ```ts
 * import { fingerprint, initFingerprints } from "./mod.ts";
 * await initFingerprints();
 * await initFingerprints(); // again: nothing happens
 * if (fingerprint("a") === fingerprint("b")) throw new Error();
 * ```
 */
export async function initFingerprints(): Promise<void> {
  api ??= await xxhash();
  core ??= await Xxh64.create();
}

function hasher(): XXHashAPI {
  return api ?? notReady();
}

function notReady(): never {
  throw new Error("statecast: initFingerprints() must be awaited before hashing");
}

/**
 * Fingerprint of a string's UTF-8 bytes or of raw bytes: a string and its UTF-8 encoding have
 * the same fingerprint, because a string is sent as its UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { fingerprint, initFingerprints } from "./fingerprint.ts";
 * await initFingerprints();
 * const a = fingerprint("x");
 * if (a !== fingerprint(new TextEncoder().encode("x")) || a.length !== 16) throw new Error();
 * ```
 */
export function fingerprint(data: string | Uint8Array): Fingerprint {
  return (core ?? notReady()).hex(data);
}

/**
 * Fingerprint of several parts, each length-prefixed so that ("ab", "c") and ("a", "bc")
 * differ. Used for values with headers; the common case (one part) is {@linkcode fingerprint}.
 *
 * @example
 * ```ts
 * import { fingerprintParts, initFingerprints } from "./mod.ts";
 * await initFingerprints();
 * if (fingerprintParts(["ab", "c"]) === fingerprintParts(["a", "bc"])) throw new Error();
 * if (fingerprintParts(["x", "y"]) !== fingerprintParts(["x", "y"])) throw new Error();
 * ```
 */
export function fingerprintParts(parts: ReadonlyArray<string | Uint8Array>): Fingerprint {
  const state = hasher().create64();
  const encoder = new TextEncoder();
  for (const part of parts) {
    const bytes = typeof part === "string" ? encoder.encode(part) : part;
    state.update(`${bytes.length}:`).update(bytes);
  }
  return state.digest().toString(16).padStart(16, "0");
}

/**
 * A key id's 53-bit hash, a plain number (no BigInt to keep, exact in JSON and in SQLite's
 * INTEGER): what the state store's key index is keyed by. Different keys may share a hash, so a
 * hit in the index is a candidate that the component's own key list confirms.
 *
 * @example
 * ```ts
 * import { initFingerprints, keyHash } from "./fingerprint.ts";
 * await initFingerprints();
 * const h = keyHash("k1");
 * if (!Number.isSafeInteger(h) || h < 0 || h !== keyHash("k1")) throw new Error();
 * ```
 */
export function keyHash(id: string): number {
  return (core ?? notReady()).top53(id);
}
