// The engine's table of key ids (lib/_key_table.ts): the same answers as a Map, with ids whose
// 32-bit hashes collide, ids that are prefixes of each other, and growth through many sizes.
import assert from "node:assert/strict";
import { hashId, KeyTable } from "../lib/_key_table.ts";

Deno.test("KeyTable answers as a Map, colliding hashes and growth included", () => {
  const table = new KeyTable<number>();
  const model = new Map<string, number>();
  const ids: string[] = [];
  for (let i = 0; i < 200_000; i++) ids.push(`k${(i * 2654435761 % 4294967296).toString(36)}`);
  ids.push("", "a", "aa", "a\u0000", "é", "\ud83d\ude42", "\ud800"); // empty, prefixes, non-ASCII
  const byHash = new Map<number, string>();
  let collisions = 0;
  for (const [n, id] of ids.entries()) {
    const other = byHash.get(hashId(id));
    if (other !== undefined && other !== id) collisions++;
    byHash.set(hashId(id), id);
    assert.equal(table.put(id, n), model.get(id));
    model.set(id, n);
    if (n % 3 === 0) { // again, with a new value: replaced in place, order kept
      assert.equal(table.put(id, -n), n);
      model.set(id, -n);
    }
  }
  assert.ok(collisions > 0, "some ids share a 32-bit hash");
  assert.equal(table.size, model.size);
  assert.deepEqual([...table.keys()], [...model.keys()]);
  assert.deepEqual([...table], [...model]);
  [...model.values()].forEach((value, i) => assert.equal(table.valueAt(i), value));
  for (const id of ids) assert.equal(table.get(id), model.get(id));
  for (const id of ["k", "b", "aaa", "\ud801", "k0 "]) {
    assert.equal(table.has(id), false, id);
    assert.equal(table.get(id), undefined);
  }
});

Deno.test("hashId spreads keys that differ only in the high bits of a unit over the low bits", () => {
  // The table's slot is the hash's low bits. FNV-1a alone carries a unit's bits only upwards: ids
  // that differ in bits 8-15 of their last unit had equal low 8 bits, one slot for all of them.
  const lows = new Set<number>();
  for (let i = 1; i < 256; i++) lows.add(hashId(`id-${String.fromCharCode(i << 8)}`) & 0xff);
  assert.ok(lows.size > 128, `${lows.size} distinct low bytes of 255`);
});
