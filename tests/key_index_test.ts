import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { KEY_RUNS_SCHEMA, KeyIndex } from "../lib/key_index.ts";

/** A deterministic generator (mulberry32), so a failing sequence can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("KeyIndex agrees with a set of (hash, component) pairs over random commits, compactions and reloads", async () => {
  const client = createClient({ url: ":memory:" });
  await client.execute(KEY_RUNS_SCHEMA);
  const rnd = random(Number(Deno.env.get("KEY_INDEX_SEED") ?? 1));
  // Hashes small and large (53 bits), which components share; a small compaction size.
  const hashes = Array.from({ length: 300 }, (_, i) => i % 2 === 0 ? i : 2 ** 53 - 1 - i);
  const pairKey = (h: number, cid: number) => `${h}/${cid}`;
  const present = new Map<number, Set<string>>();
  const live = (tid: number) => present.get(tid) ?? present.set(tid, new Set()).get(tid)!;
  let index = new KeyIndex(client, { compactRows: 7 });
  const tx = {
    execute: (s: Parameters<typeof client.execute>[0]) => client.execute(s),
  };
  for (let step = 0; step < 300; step++) {
    const updates = [];
    for (const tid of [1, 2]) {
      for (const cid of [1, 2, 3]) {
        if (rnd() < 0.5) continue;
        const add: number[] = [];
        const remove: number[] = [];
        for (const h of hashes) {
          const has = live(tid).has(pairKey(h, cid));
          const r = rnd();
          if (has && r < 0.1) remove.push(h);
          else if (!has && r < 0.05) add.push(h);
        }
        for (const h of remove) live(tid).delete(pairKey(h, cid));
        for (const h of add) live(tid).add(pairKey(h, cid));
        updates.push({ tid, cid, add, remove });
      }
    }
    await client.batch(await index.update(updates), "write");
    if (rnd() < 0.1) index = new KeyIndex(tx, { compactRows: 7 }); // read again from the rows
    for (const tid of [1, 2]) {
      const exclude = rnd() < 0.3 ? [2] : [];
      const asked = hashes.filter(() => rnd() < 0.3);
      const found = (await index.declarersOf(tid, asked, exclude))
        .map(([h, cid]) => pairKey(h, cid)).sort();
      const expected = [...live(tid)].filter((p) => {
        const [h, cid] = p.split("/").map(Number);
        return asked.includes(h!) && !exclude.includes(cid!);
      }).sort();
      assert.deepEqual(found, expected, `step ${step}, target ${tid}`);
    }
  }
  const rows = await client.execute("SELECT SUM(base), COUNT(*) FROM statecast_key_runs");
  assert.ok(Number(rows.rows[0]![0]) > 0, "compacted at least once");
  client.close();
});
