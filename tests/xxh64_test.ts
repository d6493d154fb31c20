// statecast's own XXH64 module (lib/_xxh64.ts) against xxhash-wasm, the reference: text of every
// length around the algorithm's 32/8/4-byte steps, ASCII or not (lone surrogates too), bytes, and
// inputs larger than the module's first page of memory.
import assert from "node:assert/strict";
import xxhash from "xxhash-wasm";
import { Xxh64 } from "../lib/_xxh64.ts";

function random(seed: number): () => number {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

Deno.test("Xxh64 gives xxhash-wasm's XXH64 for text and bytes", async () => {
  const ref = await xxhash();
  const ours = await Xxh64.create();
  const rnd = random(7);
  const units = [
    "a",
    "Z",
    "0",
    ",",
    '"',
    "\n",
    "é",
    "ß",
    "€",
    "🙂",
    "\ud800",
    "\udc00",
    "\u007f",
    "\u0080",
  ];
  const texts: string[] = [""];
  for (let len = 1; len <= 200; len++) {
    texts.push("x".repeat(len)); // ASCII: the unit-by-unit copy
    let mixed = "";
    while (mixed.length < len) mixed += units[Math.floor(rnd() * units.length)]!;
    texts.push(mixed);
    texts.push("k".repeat(len - 1) + "é"); // not ASCII at the very end
  }
  texts.push("v".repeat(70_000), "é".repeat(40_000), "🙂".repeat(50_000)); // past the first page
  for (const text of texts) {
    const want = ref.h64ToString(text);
    assert.equal(ours.hex(text), want, JSON.stringify(text.slice(0, 40)));
    assert.equal(ours.top53(text), Number(ref.h64(text) >> 11n));
    const bytes = new TextEncoder().encode(text);
    assert.equal(ours.hex(bytes), ref.h64Raw(bytes).toString(16).padStart(16, "0"));
    assert.equal(ours.top53(bytes), Number(ref.h64Raw(bytes) >> 11n));
  }
  const big = new Uint8Array(3_000_001).map((_, i) => (i * 7919) & 255);
  assert.equal(ours.hex(big), ref.h64Raw(big).toString(16).padStart(16, "0"));
  assert.equal(ours.hex("short after big"), ref.h64ToString("short after big"));
});

Deno.test("Xxh64 at the edges: non-ASCII from any offset, byte views, the page boundary", async () => {
  const ref = await xxhash();
  const ours = await Xxh64.create();
  const want = (data: string | Uint8Array) =>
    typeof data === "string" ? ref.h64(data) : ref.h64Raw(data);
  const same = (data: string | Uint8Array, label: string) => {
    const h = want(data);
    // hex and top53 in turn: each call writes its own input and output over the last one's
    assert.equal(ours.hex(data), h.toString(16).padStart(16, "0"), label);
    assert.equal(ours.top53(data), Number(h >> 11n), label);
    assert.equal(ours.hex(data), h.toString(16).padStart(16, "0"), label);
  };
  // The ASCII copy stops at the first unit ≥ 0x80 and encodes the rest: every offset, every
  // length across the 4/8/32-byte steps, and a lone surrogate as the very last unit.
  for (let len = 0; len <= 72; len++) {
    for (let at = 0; at <= len; at++) {
      for (const unit of ["\u0080", "€", "🙂", "\ud83d", "\udc00"]) {
        const text = "a".repeat(at) + unit + "b".repeat(len - at);
        same(text, `${JSON.stringify(unit)} at ${at} of ${len}`);
      }
    }
  }
  // A view into a larger buffer (byteOffset ≠ 0): only its own bytes are hashed.
  const base = new Uint8Array(400).map((_, i) => (i * 131 + 7) & 255);
  for (let offset = 1; offset < 10; offset++) {
    for (let len = 0; len <= 70; len++) same(base.subarray(offset, offset + len), `view ${offset}`);
  }
  // Inputs that end exactly at, one short of and one past the end of a page (input at byte 64),
  // each on a fresh instance, so that the first call is the one that grows the memory.
  for (const n of [65471, 65472, 65473, 131007, 131008, 131009]) {
    const fresh = await Xxh64.create();
    const bytes = new Uint8Array(n).map((_, i) => (i * 7) & 255);
    assert.equal(fresh.top53(bytes), Number(ref.h64Raw(bytes) >> 11n), `bytes ${n}`);
    const fresh2 = await Xxh64.create();
    const text = "x".repeat(n - 2) + "é"; // n bytes of UTF-8
    assert.equal(fresh2.hex(text), ref.h64ToString(text), `text ${n}`);
  }
  // Several MB, then short inputs again on the grown memory.
  same("ab🙂€".repeat(700_000) + "\ud800", "long text");
  same("k1", "short after long");
  same(new Uint8Array(0), "no bytes");
});
