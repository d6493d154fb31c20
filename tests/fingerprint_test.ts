// Fingerprints are stored: the same bytes must give the same 16 hex digits in every version, or
// a stored state sends every row again after an upgrade. These are pinned (xxh64, seed 0).
import assert from "node:assert/strict";
import { fingerprint, fingerprintParts, initFingerprints, keyHash } from "../lib/fingerprint.ts";

await initFingerprints();

const ROW =
  '{"id":"k0000001","name":"name15455","city":"Oslo","amount":"997.4","updated":"2026-11-15"}';
const PINNED: Array<[string, string, number]> = [
  ["", "ef46db3751d8e999", 8418803346717469],
  ["a", "d24ec4f1a98c6e5b", 7399544110526861],
  [ROW, "33f155d5412446a4", 1827571845571720],
  ["Zoë 🙂", "78fa0a2084640ee9", 4256489825930369],
  ["\uD800x", "fc8676826f9158c0", 8884942210462251], // a lone surrogate is hashed as U+FFFD
  ["x".repeat(1000), "4cb9a3b69cb700e1", 2699526378067680],
];

Deno.test("fingerprint() and keyHash() of strings and their UTF-8 bytes are pinned", () => {
  for (const [text, hex, hash] of PINNED) {
    assert.equal(fingerprint(text), hex, JSON.stringify(text.slice(0, 20)));
    assert.equal(fingerprint(new TextEncoder().encode(text)), hex);
    assert.equal(keyHash(text), hash);
  }
});

Deno.test("fingerprintParts() is pinned", () => {
  assert.equal(fingerprintParts(["v", "h", "1"]), "b109539a95accbc7");
  assert.equal(fingerprintParts([new Uint8Array([1, 2]), "é"]), "89a0d5624dda9105");
});
