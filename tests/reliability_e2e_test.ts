// Issue 7's findings, each as a user meets it: main.ts as its own process against the real broker,
// what landed read back with kcat. Live-mode findings are in live_edges_e2e_test.ts.
import assert from "node:assert/strict";
import { mkdir, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import { BROKERS, pipeline, ROOT } from "./_pipeline.ts";

Deno.test("main.ts hands a deleted file's key to a file that was unreadable, and tombstones the rest", async () => {
  await using p = await pipeline("waiting");
  await p.write("a.csv", "id,v\nK,fromA\nonlyA,1\n");
  await p.write("b.csv", "id,v\nK,fromB\n");
  await p.ok();
  await p.fresh();
  await p.write("b.csv", 'id,v\nK,"fromB\n');
  await rm(join(p.data, "a.csv"));
  const waiting = await p.run();
  assert.equal(waiting.code, 1);
  assert.match(waiting.stderr, /"a.csv" was not published: .* belong to "b.csv"/);
  assert.deepEqual(await p.fresh(), []);
  await p.write("b.csv", "id,v\nK,fromB\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), ['K={"id":"K","v":"fromB"}', "onlyA=null"]);
  await p.ok();
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts refuses to retract everything from an empty data folder unless --allow-deletes", async () => {
  await using p = await pipeline("emptydir");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.ok();
  await p.fresh();
  await rm(join(p.data, "a.csv"));
  const refused = await p.run();
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /refused to delete 2 of the 2 keys of ".*": the source has no files .*nothing was sent or committed.*--allow-deletes/,
  );
  assert.deepEqual(await p.fresh(), [], "nothing sent");
  assert.equal((await p.run()).code, 1, "still refused: nothing was committed");
  await p.ok({ args: ["--allow-deletes"] });
  assert.deepEqual(await p.fresh(), ["k1=null", "k2=null"]);
});

Deno.test("main.ts refuses a round that deletes more than half of the keys", async () => {
  await using p = await pipeline("massdelete");
  const rows = (n: number) => Array.from({ length: n }, (_, i) => `k${i},${i}\n`).join("");
  await p.write("big.csv", "id,v\n" + rows(40));
  await p.write("small.csv", "id,v\ns1,1\n");
  await p.ok();
  await p.fresh();
  await p.write("big.csv", "id,v\n" + rows(10)); // 30 of 41 keys go
  const refused = await p.run();
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refused to delete 30 of the 41 keys .* 73% of its keys/);
  assert.deepEqual(await p.fresh(), []);
  await p.ok({ args: ["--allow-deletes"] });
  assert.equal((await p.fresh()).filter((m) => m.endsWith("=null")).length, 30);
});

Deno.test("main.ts holds a file truncated to 0 bytes instead of tombstoning its rows", async () => {
  await using p = await pipeline("zerobytes");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.write("b.csv", "id,v\nb1,1\n");
  await p.ok();
  await p.fresh();
  await truncate(join(p.data, "a.csv"), 0);
  const held = await p.ok();
  assert.match(held.stderr, /warning: "a.csv": the file is empty \(0 bytes\): held as not ready/);
  assert.deepEqual(await p.fresh(), [], "no tombstone");
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), ["k2=null"]);
});

Deno.test("main.ts keeps the rows of a file rewritten to only a BOM and blank lines", async () => {
  await using p = await pipeline("bomonly");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.write("b.csv", "id,v\nb1,1\n");
  await p.ok();
  await p.fresh();
  await p.write("a.csv", "\uFEFF\r\n"); // what a writer puts first, caught before the rows
  const failed = await p.run();
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /error: Cannot parse "a.csv" line 1: the file has no header row/);
  assert.deepEqual(await p.fresh(), [], "no tombstone");
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.ok();
  assert.deepEqual(await p.fresh(), ["k2=null"]);
});

Deno.test("main.ts refuses a second run on the same store at once, and takes over a dead run's lock", async () => {
  await using p = await pipeline("lock");
  await p.write("a.csv", "id,v\nk1,1\n");
  const live = p.spawn({ args: ["--live"] });
  let log = "";
  const reading = (async () => {
    for await (const chunk of live.stderr) log += new TextDecoder().decode(chunk);
  })();
  try {
    for (let i = 0; !log.includes("watching"); i++) {
      assert.ok(i < 300, `live mode did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const started = Date.now();
    const second = await p.run();
    assert.equal(second.code, 1);
    assert.match(
      second.stderr,
      new RegExp(
        `Another run of app "CsvToKafka" is using the state store .*: process ${live.pid} on host`,
      ),
    );
    assert.ok(Date.now() - started < 5000, "it fails fast");
    const status = await p.ok({ args: ["status"] });
    assert.match(status.stdout, new RegExp(`running: process ${live.pid}`), "status needs no lock");
  } finally {
    live.kill("SIGINT");
    await live.status;
    await reading;
  }
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"1"}']);

  // A run that dies without giving the lock back: the next one takes it over.
  await p.write("a.csv", "id,v\nk1,2\n");
  assert.equal((await p.run({ env: { STATECAST_TEST_CRASH: "after-apply" } })).code, 70);
  await p.ok();
  assert.match((await p.ok({ args: ["status"] })).stdout, /^not running$/m);
});

Deno.test("main.ts keeps the rows of a folder it cannot read while the other files flow", async () => {
  await using p = await pipeline("lockedfolder");
  await mkdir(join(p.data, "locked"));
  await p.write("a.csv", "id,v\na1,1\n");
  await p.write("locked/b.csv", "id,v\nb1,1\n");
  await p.ok();
  await p.fresh();
  await p.write("a.csv", "id,v\na1,2\n");
  // Root reads every folder, so the folder is made unreadable with Deno's own permissions.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--deny-read=${join(p.data, "locked")}`, join(ROOT, "main.ts")],
    cwd: ROOT,
    env: {
      KAFKA_BOOTSTRAP_SERVERS: BROKERS,
      KAFKA_TOPIC: p.topic,
      DATA_DIR: p.data,
      STATECAST_STATE: `file:${join(p.dir, "state.db")}`,
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.match(
    stderr,
    /Cannot read the folder "locked" under .*its files keep what they published/,
  );
  assert.deepEqual(await p.fresh(), ['a1={"id":"a1","v":"2"}'], "no tombstone for b1");
  await p.ok();
  assert.deepEqual(await p.fresh(), [], "b.csv was kept as it was");
});
