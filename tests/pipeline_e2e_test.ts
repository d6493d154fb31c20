// The catch-up pipeline end to end: main.ts runs as its own process against the real broker
// (`scripts/kafka up`), and what landed is read back with kcat, not with kafkajs.
import assert from "node:assert/strict";
import { mkdir, readFile, realpath, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { murmur2Partitions } from "./_kafka_readback.ts";
import { BROKERS, pipeline, ROOT } from "./_pipeline.ts";

const row = (json: Record<string, string>) => JSON.stringify(json);

Deno.test("main.ts sends one message per row, then nothing, then exactly what changed", async () => {
  await using p = await pipeline("catchup");
  await p.write("products.csv", "sku,name,price\nA1,Desk,10\nA2,Chair,20\nA3,Lamp,5\n");
  await p.write("employees.csv", "emp_id,first\nE1,Ada\n");
  const first = await p.ok();
  assert.deepEqual(await p.fresh(), [
    `A1=${row({ sku: "A1", name: "Desk", price: "10" })}`,
    `A2=${row({ sku: "A2", name: "Chair", price: "20" })}`,
    `A3=${row({ sku: "A3", name: "Lamp", price: "5" })}`,
    `E1=${row({ emp_id: "E1", first: "Ada" })}`,
  ]);
  assert.match(first.stderr, /2 files scanned, 0 unchanged, 0 failed; 4 upserts, 0 deletes/);

  const second = await p.ok();
  assert.deepEqual(await p.fresh(), [], "nothing changed: nothing sent");
  assert.match(second.stderr, /2 files scanned, 2 unchanged, 0 failed; 0 upserts, 0 deletes/);

  await p.write("products.csv", "sku,name,price\nA1,Desk,12\nA2,Chair,20\nA3,Lamp,5\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), [`A1=${row({ sku: "A1", name: "Desk", price: "12" })}`]);

  await p.write("products.csv", "sku,name,price\nA1,Desk,12\nA2,Chair,20\nA3,Lamp,5\nA4,Rug,7\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), [`A4=${row({ sku: "A4", name: "Rug", price: "7" })}`]);

  await p.write("products.csv", "sku,name,price\nA1,Desk,12\nA3,Lamp,5\nA4,Rug,7\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), ["A2=null"], "a removed row is one tombstone");

  await rm(join(p.data, "products.csv"));
  await p.ok();
  assert.deepEqual(await p.fresh(), ["A1=null", "A3=null", "A4=null"]);

  await mkdir(join(p.data, "sub"));
  await p.write("sub/new.csv", "id,x\nN1,1\n");
  await p.ok();
  assert.deepEqual(
    await p.fresh(),
    [`N1=${row({ id: "N1", x: "1" })}`],
    "a new file, in a subfolder",
  );

  // Tombstones are true nulls: kcat tells them from empty strings.
  const tombstones = (await p.all()).filter((m) => m.value === null);
  assert.equal(tombstones.length, 4);
});

Deno.test("main.ts re-sends nothing when the bootstrap address changes or the file is renamed", async () => {
  await using p = await pipeline("identity");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.ok();
  assert.equal((await p.fresh()).length, 2);
  await p.ok({ env: { KAFKA_BOOTSTRAP_SERVERS: `localhost:${BROKERS.split(":").at(-1)}` } });
  assert.deepEqual(await p.fresh(), [], "same context key name and topic: same target");
  await rename(join(p.data, "a.csv"), join(p.data, "b.csv"));
  const renamed = await p.ok();
  assert.deepEqual(await p.fresh(), [], "a renamed file with the same content sends nothing");
  assert.match(renamed.stderr, /0 upserts, 0 deletes/);
});

Deno.test("main.ts re-runs every file after a code change and sends only rows whose bytes changed", async () => {
  await using p = await pipeline("logic");
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.write("b.csv", "id,v\nk2,2\n");
  await p.ok();
  await p.fresh();
  // The same job with a changed processing function: rows of a.csv get a new field.
  const source = await readFile(join(ROOT, "main.ts"), "utf8");
  const changed = source
    .replaceAll('"./lib/', '"../../lib/') // mod.ts, and the Kafka client a job may load
    .replace(
      "value: row.toJsonText()",
      'value: file.path === "a.csv" ? row.toJsonText().slice(0, -1) + `,"file":"${file.path}"}` ' +
        ": row.toJsonText()",
    );
  assert.notEqual(changed, source, "main.ts still has the shape this test edits");
  const variant = join(ROOT, ".cache", "e2e", `main_${p.topic}.ts`);
  await mkdir(join(ROOT, ".cache", "e2e"), { recursive: true });
  await writeFile(variant, changed);
  try {
    const r = await p.ok({ main: variant });
    assert.match(r.stderr, /2 files scanned, 0 unchanged/, "every file re-ran");
    assert.deepEqual(await p.fresh(), [`k1=${row({ id: "k1", v: "1", file: "a.csv" })}`]);
  } finally {
    await rm(variant, { force: true });
  }
});

Deno.test("main.ts fails a file with a duplicate key or a broken quote, and the other files flow", async () => {
  await using p = await pipeline("failures");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.write("good.csv", "id,v\ng1,1\n");
  await p.ok();
  await p.fresh();
  await p.write("a.csv", "id,v\nk1,1\nk2,2\nk1,3\n");
  await p.write("broken.csv", 'id,v\nb1,1\nb2,"open\n');
  await p.write("good.csv", "id,v\ng1,2\n");
  const r = await p.run();
  assert.equal(r.code, 1, "a failed file makes the run exit non-zero");
  assert.match(r.stderr, /Duplicate key "k1" in "a.csv": declared at line 2 and again at line 4/);
  assert.match(r.stderr, /Cannot parse "broken.csv" line 3: quoted field is never closed/);
  assert.match(r.stderr, /3 files scanned, 0 unchanged, 2 failed; 1 upserts, 0 deletes/);
  assert.deepEqual(
    await p.fresh(),
    [`g1=${row({ id: "g1", v: "2" })}`],
    "nothing of a.csv is retracted",
  );
  // Fixed, the file goes out on the next run.
  await p.write("broken.csv", 'id,v\nb1,1\nb2,"closed"\n');
  await p.write("a.csv", "id,v\nk1,3\nk2,2\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), [
    `b1=${row({ id: "b1", v: "1" })}`,
    `b2=${row({ id: "b2", v: "closed" })}`,
    `k1=${row({ id: "k1", v: "3" })}`,
  ]);
});

Deno.test("main.ts publishes a key held by two files from the first path, then hands it over", async () => {
  await using p = await pipeline("conflict");
  await p.write("b.csv", "id,v\nshared,from-b\nonly-b,1\n");
  await p.write("a.csv", "id,v\nshared,from-a\n");
  const r = await p.ok();
  assert.match(
    r.stderr,
    /"shared" .* declared by "a.csv" and "b.csv"; publishing the value from "a.csv"/,
  );
  assert.deepEqual(await p.fresh(), [
    `only-b=${row({ id: "only-b", v: "1" })}`,
    `shared=${row({ id: "shared", v: "from-a" })}`,
  ]);
  await rm(join(p.data, "a.csv"));
  await p.ok();
  assert.deepEqual(
    await p.fresh(),
    [`shared=${row({ id: "shared", v: "from-b" })}`],
    "no tombstone",
  );
});

Deno.test("main.ts sends every key to the same partition, across runs and restarts", async () => {
  await using p = await pipeline("partitions");
  const rows = (v: number) =>
    "id,v\n" + Array.from({ length: 60 }, (_, i) => `key-${i},${v}`).join("\n") + "\n";
  await p.write("a.csv", rows(1));
  await p.ok();
  await p.write("a.csv", rows(2));
  await p.ok();
  const all = await p.all();
  assert.equal(all.length, 120);
  const partitionOf = new Map<string, Set<number>>();
  for (const m of all) {
    partitionOf.set(m.key!, (partitionOf.get(m.key!) ?? new Set()).add(m.partition));
  }
  assert.equal(partitionOf.size, 60);
  for (const [key, partitions] of partitionOf) assert.equal(partitions.size, 1, key);
  assert.equal(new Set(all.map((m) => m.partition)).size, 3, "keys spread over the 3 partitions");

  // The partition is the Java client's (murmur2 of the key): librdkafka's murmur2 partitioner,
  // through kcat, puts the same keys on the same partitions of a second 3-partition topic.
  const referenced = await murmur2Partitions(
    [...partitionOf.keys()],
    `${p.topic}-murmur2`,
    BROKERS,
  );
  assert.equal(referenced.size, 60);
  for (const [key, partition] of referenced) {
    assert.deepEqual([...partitionOf.get(key!)!], [partition], `partition of ${key}`);
  }
});

Deno.test("main.ts re-sends after a crash between the broker's ack and the state commit", async () => {
  await using p = await pipeline("crash");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  const crashed = await p.run({ env: { STATECAST_TEST_CRASH: "after-apply" } });
  assert.equal(crashed.code, 70, crashed.stderr);
  assert.equal((await p.fresh()).length, 2, "the broker had acknowledged both");
  await p.ok();
  assert.deepEqual(
    await p.fresh(),
    [`k1=${row({ id: "k1", v: "1" })}`, `k2=${row({ id: "k2", v: "2" })}`],
    "not committed, so sent again: at least once",
  );
  await p.ok();
  assert.deepEqual(await p.fresh(), [], "committed now");
  // A crash after an edit re-sends the edit, and a delete is never lost either.
  await p.write("a.csv", "id,v\nk1,1\n");
  assert.equal((await p.run({ env: { STATECAST_TEST_CRASH: "after-apply" } })).code, 70);
  assert.deepEqual(await p.fresh(), ["k2=null"]);
  await p.ok();
  assert.deepEqual(await p.fresh(), ["k2=null"]);
  // A crash after an edit, and the file reverted before the next run: the topic holds the edit,
  // the store does not; the keys sent but not committed are in doubt and go out again.
  await p.write("a.csv", "id,v\nk1,edited\n");
  assert.equal((await p.run({ env: { STATECAST_TEST_CRASH: "after-apply" } })).code, 70);
  assert.deepEqual(await p.fresh(), [`k1=${row({ id: "k1", v: "edited" })}`]);
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), [`k1=${row({ id: "k1", v: "1" })}`], "the topic is repaired");
});

Deno.test("main.ts --dry-run prints the changes and sends and commits nothing", async () => {
  await using p = await pipeline("dryrun");
  await p.write("a.csv", "id,v\nk1,1\n");
  const dry = await p.ok({ args: ["--dry-run"] });
  assert.match(
    dry.stdout,
    /upsert kafka:kafka_producer\/e2e-dryrun-\S+ "k1" \{"id":"k1","v":"1"\}/,
  );
  assert.deepEqual(await p.fresh(), []);
  await p.ok();
  assert.equal((await p.fresh()).length, 1, "the real run still sends it");
});

Deno.test("main.ts fails only the file with a message the topic refuses, naming the Kafka error", async () => {
  await using p = await pipeline("toolarge", { "max.message.bytes": "2000" });
  await p.write("a.csv", "id,v\nk1,small\n");
  await p.write("b.csv", "id,v\nb1,1\n");
  await p.ok();
  await p.fresh();
  await p.write("a.csv", `id,v\nk1,${"x".repeat(5000)}\nk2,2\n`);
  await p.write("b.csv", "id,v\nb1,2\n");
  const r = await p.run();
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /error: "a.csv": Kafka did not accept messages for topic "e2e-toolarge-\S+": MESSAGE_TOO_LARGE/,
  );
  // Kafka accepts or refuses per partition, so a.csv's k2 may have landed beside the refusal;
  // not committed, it is simply sent again with the fix. The oversized k1 never lands.
  const landed = await p.fresh();
  assert.ok(landed.includes(`b1=${row({ id: "b1", v: "2" })}`), String(landed));
  assert.ok(!landed.some((m) => m.startsWith("k1=")), String(landed));
  await p.write("a.csv", "id,v\nk1,fixed\nk2,2\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), [
    `k1=${row({ id: "k1", v: "fixed" })}`,
    `k2=${row({ id: "k2", v: "2" })}`,
  ]);
});

Deno.test("main.ts skips a symbolic link that leads out of DATA_DIR, with a warning, and follows one inside", async () => {
  await using p = await pipeline("symlinks");
  await writeFile(join(p.dir, "outside.csv"), "id,v\nsecret,1\n");
  await mkdir(join(p.data, "raw"));
  await p.write("raw/export.txt", "id,v\ninside,1\n");
  await symlink(join(p.data, "raw", "export.txt"), join(p.data, "in.csv"));
  await symlink(join(p.dir, "outside.csv"), join(p.data, "out.csv"));
  await p.write("plain.csv", "id,v\nplain,1\n");
  const first = await p.ok();
  assert.deepEqual(await p.fresh(), [
    `inside=${row({ id: "inside", v: "1" })}`,
    `plain=${row({ id: "plain", v: "1" })}`,
  ]);
  assert.match(
    first.stderr,
    new RegExp(
      `^warning: "out\\.csv" is a symbolic link to "${await realpath(
        join(p.dir, "outside.csv"),
      )}", ` +
        `outside "${p.data}": skipped, as if the file were not there \\(walkDir option ` +
        "followExternalSymlinks: true follows it\\)$",
      "m",
    ),
  );
  assert.match(first.stderr, /2 files scanned/);

  // A link that starts to lead outside is like a deleted file: its rows are retracted.
  await rm(join(p.data, "in.csv"));
  await rename(join(p.data, "raw", "export.txt"), join(p.dir, "export.txt"));
  await symlink(join(p.dir, "export.txt"), join(p.data, "in.csv"));
  const second = await p.ok();
  assert.deepEqual(await p.fresh(), ["inside=null"]);
  assert.match(second.stderr, /warning: "in\.csv" is a symbolic link to /);
});
