// Provenance without re-sends: main.ts sends each row's source path as the `statecast-source`
// header, outside the fingerprint (metaHeaders). What lands, headers included, is read back with
// kcat (-J prints the headers).
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Pipeline, pipeline, ROOT } from "./_pipeline.ts";

const row = (id: string, v: string) => JSON.stringify({ id, v });

/** The messages that landed since the last call, as "key value source-header", sorted. */
async function landed(p: Pipeline, seen: Set<string>): Promise<string[]> {
  const fresh = (await p.all()).filter((m) => !seen.has(`${m.partition}:${m.offset}`));
  for (const m of fresh) seen.add(`${m.partition}:${m.offset}`);
  return fresh.map((m) => `${m.key} ${m.value} ${m.headers["statecast-source"]}`).sort();
}

Deno.test("main.ts: a row moved to another line or file sends nothing; an edit carries its new source", async () => {
  await using p = await pipeline("provenance");
  const seen = new Set<string>();
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.ok();
  assert.deepEqual(await landed(p, seen), [
    `k1 ${row("k1", "1")} a.csv`,
    `k2 ${row("k2", "2")} a.csv`,
  ]);

  // A row inserted above the others: k1 and k2 moved down a line, only k0 is sent.
  await p.write("a.csv", "id,v\nk0,0\nk1,1\nk2,2\n");
  const inserted = await p.ok();
  assert.match(inserted.stderr, /1 upserts, 0 deletes, 2 unchanged rows/);
  assert.deepEqual(await landed(p, seen), [`k0 ${row("k0", "0")} a.csv`]);

  // k2 moved to another file, in one run: same key, same value, nothing sent.
  await p.write("a.csv", "id,v\nk0,0\nk1,1\n");
  await p.write("sub_b.csv", "id,v\nk2,2\n");
  const moved = await p.ok();
  assert.match(moved.stderr, /0 upserts, 0 deletes, 3 unchanged rows/);
  assert.deepEqual(await landed(p, seen), []);

  // An edit of the moved row: sent with the header of the file that holds it now.
  await p.write("sub_b.csv", "id,v\nk2,22\n");
  const dry = await p.ok({ args: ["--dry-run"] });
  assert.match(
    dry.stdout,
    /^upsert kafka:kafka_producer\/\S+ "k2" \{"id":"k2","v":"22"\} metaHeaders \{"statecast-source":"sub_b.csv"\}$/m,
  );
  await p.ok();
  assert.deepEqual(await landed(p, seen), [`k2 ${row("k2", "22")} sub_b.csv`]);
});

Deno.test("main.ts with the source header re-sends nothing to a store written before it", async () => {
  // main.ts as it was before the statecast-source header.
  const source = await readFile(join(ROOT, "main.ts"), "utf8");
  const before = source.replace(
    "value: row.toJsonText(), metaHeaders }",
    "value: row.toJsonText() }",
  );
  assert.notEqual(before, source, "main.ts declares metaHeaders");
  // Beside main.ts, so that its imports resolve the same way.
  const oldMain = join(ROOT, `.main_before_source_${crypto.randomUUID().slice(0, 8)}.ts`);
  await writeFile(oldMain, before);
  try {
    await using p = await pipeline("provenance-upgrade");
    const seen = new Set<string>();
    await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
    await p.ok({ main: oldMain });
    assert.deepEqual(await landed(p, seen), [
      `k1 ${row("k1", "1")} undefined`,
      `k2 ${row("k2", "2")} undefined`,
    ]);
    const upgraded = await p.ok();
    assert.match(upgraded.stderr, /0 upserts, 0 deletes, 2 unchanged rows/, "re-parsed, not sent");
    assert.deepEqual(await landed(p, seen), []);
  } finally {
    await rm(oldMain);
  }
});
