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
