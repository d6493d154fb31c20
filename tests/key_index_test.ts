import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { HashFilter, KEY_RUNS_SCHEMA, KeyIndex } from "../lib/key_index.ts";

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
      // Some hashes asked twice (two keys may share one): each pair comes back once.
      const once = hashes.filter(() => rnd() < 0.3);
      const asked = [...once, ...once.filter(() => rnd() < 0.2)];
      const found = (await index.declarersOf(tid, asked, exclude))
        .map(([h, cid]) => pairKey(h, cid)).sort();
      const expected = [...live(tid)].filter((p) => {
        const [h, cid] = p.split("/").map(Number);
        return asked.includes(h!) && !exclude.includes(cid!);
      }).sort();
      assert.deepEqual(found, expected, `step ${step}, target ${tid}`);
      const distinct = new Set([...live(tid)].map((p) => p.split("/")[0])).size;
      assert.equal(await index.keyCount(tid), distinct, `step ${step}, target ${tid}: keys`);
    }
  }
  const rows = await client.execute("SELECT SUM(base), COUNT(*) FROM statecast_key_runs");
  assert.ok(Number(rows.rows[0]![0]) > 0, "compacted at least once");
  client.close();
});

// Compacted often (a small compactRows), or never: then only folding the deltas bounds them.
for (const folds of [false, true]) {
  Deno.test(`KeyIndex agrees with a model when commits repeat, re-add, remove what is absent, fail, or lose a target's rows${folds ? " (deltas folded, no new base)" : ""}`, async () => {
    const client = createClient({ url: ":memory:" });
    await client.execute(KEY_RUNS_SCHEMA);
    const seed = Number(Deno.env.get("KEY_INDEX_SEED") ?? 1);
    const rnd = random(seed);
    // Few hashes (ties across components and targets), 0 and the 53-bit edge among them.
    const hashes = [0, 1, 2, 3, 5, 7, 8, 9, 2 ** 52, 12_345_678_901_234, 2 ** 53 - 2, 2 ** 53 - 1];
    const compactRows = folds ? 1_000_000 : 1 + Math.floor(rnd() * 6);
    let present = new Map<number, Set<string>>();
    const live = (m: Map<number, Set<string>>, tid: number) =>
      m.get(tid) ?? m.set(tid, new Set()).get(tid)!;
    let index = new KeyIndex(client, { compactRows });
    for (let step = 0; step < 400; step++) {
      const next = new Map([...present].map(([t, s]) => [t, new Set(s)]));
      const updates = [];
      for (let n = Math.floor(rnd() * 5); n > 0; n--) {
        // The same component may come twice in one commit: the later update counts.
        const tid = 1 + Math.floor(rnd() * 3);
        const cid = 1 + Math.floor(rnd() * 4);
        const add: number[] = [];
        const remove: number[] = [];
        for (const h of hashes) {
          const r = rnd();
          if (r < 0.15) remove.push(h); // present or not
          else if (r < 0.3) add.push(h); // present or not
          else if (r < 0.33) add.push(h, h);
          else if (r < 0.36) {
            remove.push(h);
            add.push(h);
          }
        }
        for (const h of remove) live(next, tid).delete(`${h}/${cid}`);
        for (const h of add) live(next, tid).add(`${h}/${cid}`);
        updates.push({ tid, cid, add, remove });
      }
      const statements = await index.update(updates);
      if (rnd() < 0.1) index.forget(); // the commit failed: nothing written
      else {
        await client.batch(statements, "write");
        present = next;
      }
      if (rnd() < 0.05) index = new KeyIndex(client, { compactRows });
      if (rnd() < 0.03) { // a target forgotten (its rows deleted), then used again
        const tid = 1 + Math.floor(rnd() * 3);
        await client.execute({ sql: "DELETE FROM statecast_key_runs WHERE tid = ?", args: [tid] });
        present.delete(tid);
        index.forget();
      }
      for (const tid of [1, 2, 3]) {
        const exclude = rnd() < 0.3 ? [2] : [];
        const asked = hashes.filter(() => rnd() < 0.5);
        const found = [
          ...new Set((await index.declarersOf(tid, asked, exclude)).map(([h, c]) => `${h}/${c}`)),
        ].sort();
        const expected = [...live(present, tid)].filter((p) => {
          const [h, cid] = p.split("/").map(Number);
          return asked.includes(h!) && !exclude.includes(cid!);
        }).sort();
        assert.deepEqual(found, expected, `seed ${seed}, step ${step}, target ${tid}`);
        const distinct = new Set([...live(present, tid)].map((p) => p.split("/")[0])).size;
        assert.equal(await index.keyCount(tid), distinct, `seed ${seed}, step ${step}: keys`);
      }
    }
    const runs = await client.execute(
      "SELECT SUM(base), MAX(n) FROM (SELECT tid, SUM(base) AS base, COUNT(*) AS n FROM statecast_key_runs GROUP BY tid)",
    );
    if (folds) assert.equal(Number(runs.rows[0]![0] ?? 0), 0, "no base written");
    assert.ok(Number(runs.rows[0]![1]) <= 17 + (folds ? 0 : 1000), "deltas bounded");
    client.close();
  });
}

Deno.test("KeyIndex folds many small deltas into one without writing its base again", async () => {
  const client = createClient({ url: ":memory:" });
  await client.execute(KEY_RUNS_SCHEMA);
  const index = new KeyIndex(client, { compactRows: 4 });
  const base = Array.from({ length: 100 }, (_, i) => i * 10);
  await client.batch(await index.update([{ tid: 1, cid: 1, add: base, remove: [] }]), "write");
  const baseRows = async () =>
    (await client.execute("SELECT seq FROM statecast_key_runs WHERE base = 1")).rows
      .map((r) => Number(r[0]));
  const written = await baseRows();
  assert.equal(written.length, 1);
  // 40 commits of one entry each (a live job's edits): half the base (50) is never reached.
  const expected = new Set(base.map((h) => `${h}/1`));
  for (let i = 0; i < 40; i++) {
    const update = i % 4 === 3
      ? { tid: 1, cid: 1, add: [], remove: [i * 10] } // a key gone
      : { tid: 1, cid: 2, add: [i * 10 + 5], remove: [] }; // a key new in another file
    if (update.remove.length > 0) expected.delete(`${i * 10}/1`);
    else expected.add(`${i * 10 + 5}/2`);
    await client.batch(await index.update([update]), "write");
    const deltas = await client.execute("SELECT COUNT(*) FROM statecast_key_runs WHERE base = 0");
    assert.ok(Number(deltas.rows[0]![0]) <= 17, `commit ${i}: at most 17 delta rows`);
  }
  assert.deepEqual(await baseRows(), written, "the base rows are the ones written first");
  const all = Array.from({ length: 1000 }, (_, h) => h);
  for (const reader of [index, new KeyIndex(client, { compactRows: 4 })]) {
    const found = (await reader.declarersOf(1, all, [])).map(([h, c]) => `${h}/${c}`).sort();
    assert.deepEqual(found, [...expected].sort());
  }
  client.close();
});

Deno.test("HashFilter holds every hash it was given, and few others at its capacity", () => {
  const rnd = random(Number(Deno.env.get("KEY_INDEX_SEED") ?? 1));
  const hash = () => Math.floor(rnd() * 2 ** 21) * 2 ** 32 + Math.floor(rnd() * 2 ** 32); // < 2^53
  const given = Float64Array.from({ length: 100_000 }, hash);
  const filter = new HashFilter(given.length);
  filter.addAll(given);
  assert.equal(filter.full, false, "at its capacity, not past it");
  for (const h of given) assert.ok(filter.has(h), `${h} given, not held`);
  let others = 0;
  for (let i = 0; i < 100_000; i++) if (filter.has(hash())) others++;
  assert.ok(others < 15_000, `${others} of 100,000 other hashes pass (1 bit in 8 is set)`);
  let added = given.length;
  while (!filter.full) filter.addAll(Float64Array.from({ length: 1_000 }, hash)), added += 1_000;
  // Its bits are a power of 2: full between its capacity and twice that.
  assert.ok(added > given.length && added <= 2 * given.length + 1_000, `full at ${added}`);
  assert.ok(new HashFilter(0).has(0) === false, "an empty filter holds nothing");
});

Deno.test("HashFilter of the largest size is never full: made again it would be no bigger", () => {
  const rnd = random(Number(Deno.env.get("KEY_INDEX_SEED") ?? 1));
  // Past 2^24 entries (base and deltas of a target of ~11M keys) the filter is at its largest
  // (2^27 bits); when it said it was full, every look-up made it again (~0.1 s each).
  const filter = new HashFilter(2 ** 25);
  const batch = Float64Array.from({ length: 2 ** 20 }, () => Math.floor(rnd() * 2 ** 53));
  for (let i = 0; i < 17; i++) filter.addAll(batch); // 17.8M entries
  assert.equal(filter.full, false);
  for (let i = 0; i < 1_000; i++) assert.ok(filter.has(batch[i]!));
  // A smaller one still grows: full past 1 bit in 8.
  const small = new HashFilter(1_000);
  small.addAll(batch.subarray(0, 70_000));
  assert.equal(small.full, true);
});
