// Live mode at the edges, end to end (`main.ts --live` against the real broker, read back with
// kcat): the data folder replaced or gone for a while, a file rewritten slowly in place, a file
// that waits on an unreadable owner.
import assert from "node:assert/strict";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { expectedTable, LiveJob, row, sleep } from "./_live_job.ts";

/** "A few seconds": the folder is checked every second, a held file waits one second. */
const CONVERGE_MS = 5_000;

const csv = (rows: Array<[string, string]>) =>
  "id,v\n" + rows.map(([k, v]) => `${k},${v}\n`).join("");

for (const runtime of ["deno", "bun"] as const) {
  Deno.test(`main.ts --live (${runtime}) watches a data folder that was replaced (rm -rf data && mkdir data)`, async () => {
    await using job = await LiveJob.create(`replaced-${runtime}`, runtime);
    await job.write("a.csv", csv([["k1", "1"], ["k2", "2"], ["k3", "3"], ["k4", "4"]]));
    await job.write("b.csv", csv([["b1", "1"]]));
    await job.start();
    await job.landed(5);

    await rm(job.data, { recursive: true });
    await mkdir(job.data);
    const a = csv([["k1", "1"], ["k2", "22"], ["k3", "3"]]); // k2 changed, k4 gone
    const c = csv([["c1", "1"]]); // b.csv gone, c.csv new
    await job.write("a.csv", a);
    await job.write("c.csv", c);
    const expected = new Map([...expectedTable(a), ...expectedTable(c)]);
    await job.converges(expected, CONVERGE_MS);

    // The new folder is watched: an edit in it arrives as one message.
    await job.write("c.csv", csv([["c1", "2"]]));
    expected.set("c1", row({ id: "c1", v: "2" }));
    await job.converges(expected, CONVERGE_MS);
    // No log line is asserted: a folder made again at once may get the old one's inode, and then
    // only the event on the folder itself says it was replaced (it is watched again silently).
    assert.doesNotMatch(job.log, /error/i);
  });

  Deno.test(`main.ts --live (${runtime}) holds a folder that is gone, retracts nothing it restores`, async () => {
    await using job = await LiveJob.create(`vanished-${runtime}`, runtime);
    const a = csv([["k1", "1"], ["k2", "2"], ["k3", "3"]]);
    const s = csv([["s1", "1"]]);
    await job.write("a.csv", a);
    await mkdir(join(job.data, "sub"));
    await job.write("sub/s.csv", s);
    await job.start();
    await job.landed(4);

    await rm(job.data, { recursive: true });
    await sleep(3_000); // several checks of the folder while it is gone
    await mkdir(join(job.data, "sub"), { recursive: true });
    await job.write("a.csv", a);
    await job.write("sub/s.csv", s);
    await sleep(2_000);
    await job.write("a.csv", a.replace("k3,3", "k3,33")); // watched again
    await job.converges(
      new Map([...expectedTable(a), ...expectedTable(s), ["k3", row({ id: "k3", v: "33" })]]),
      CONVERGE_MS,
    );

    const tombstones = (await job.messages()).filter((m) => m.value === null).map((m) => m.key);
    assert.deepEqual(tombstones, [], "no row of the restored folder was retracted");
    assert.equal(job.log.match(/is gone/g)?.length, 1, `said once:\n${job.log}`);
    assert.match(job.log, /is back/);
  });
}

/** Rewrites a file in place the slow way: truncate, then 4 KiB every 150 ms. */
async function writeSlowly(path: string, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  const file = await open(path, "w");
  try {
    for (let at = 0; at < bytes.length; at += 4096) {
      await sleep(150);
      await file.write(bytes.subarray(at, at + 4096));
    }
  } finally {
    await file.close();
  }
}

Deno.test("main.ts --live publishes no half-written file: no tombstone, no truncated row", async () => {
  await using job = await LiveJob.create("slow-writer");
  const rows = Array.from({ length: 600 }, (_, i) => [`key${i}`, `value-${i}-${"x".repeat(30)}`]);
  const before = csv(rows as Array<[string, string]>);
  await job.write("a.csv", before);
  await job.start();
  assert.equal((await job.landed(600)).length, 600);

  // The same content, rewritten slowly: nothing changes, so nothing may be sent.
  await writeSlowly(join(job.data, "a.csv"), before);
  await sleep(2_500);
  assert.deepEqual(await job.landed(0), [], "an unchanged file rewritten slowly");

  // New content (every tenth value changed, the last 50 rows gone), rewritten slowly.
  const after = csv(
    rows.slice(0, 550).map(([k, v], i) => [k!, i % 10 === 0 ? `${v}-new` : v!]),
  );
  await writeSlowly(join(job.data, "a.csv"), after);
  const expected = expectedTable(after);
  await job.converges(expected, CONVERGE_MS);
  const fresh = await job.landed(0);
  const gone = new Set(rows.slice(550).map(([k]) => k!));
  for (const message of fresh) {
    const [key, value] = [
      message.slice(0, message.indexOf("=")),
      message.slice(message.indexOf("=") + 1),
    ];
    if (value === "null") {
      assert.ok(gone.has(key), `a tombstone for a row still in the file: ${key}`);
    } else assert.equal(value, expected.get(key), `a value that is not the row of the file`);
  }
  assert.equal(fresh.length, 55 + 50, "one message per changed or removed row");
});

Deno.test("main.ts --live sends a normal edit at once: a changed cell, a removed row", async () => {
  await using job = await LiveJob.create("fast-edit");
  let rows: Array<[string, string]> = Array.from({ length: 20 }, (_, i) => [`k${i}`, `${i}00`]);
  await job.write("a.csv", csv(rows));
  await job.start();
  await job.landed(20);
  const edits: Array<[string, (r: Array<[string, string]>) => Array<[string, string]>]> = [
    ["a shorter cell", (r) => r.map(([k, v]) => [k, k === "k5" ? "5" : v])],
    ["a removed row", (r) => r.filter(([k]) => k !== "k7")],
  ];
  for (const [what, edit] of edits) {
    rows = edit(rows);
    const rounds = job.log.match(/live: /g)?.length ?? 0;
    const started = Date.now();
    await job.write("a.csv", csv(rows));
    // A round is logged once the broker acknowledged it. The settle window is 1 s: a held edit
    // would take at least that long.
    while ((job.log.match(/live: /g)?.length ?? 0) === rounds) await sleep(10);
    const ms = Date.now() - started;
    assert.ok(ms < 500, `${what} was sent after ${ms} ms`);
    await job.converges(expectedTable(csv(rows)), 3_000);
  }
});

Deno.test("main.ts --live retries a file that waited on an unreadable owner once it is fixed", async () => {
  await using job = await LiveJob.create("waiting");
  await job.write("a.csv", "id,v\nK,fromA\nonlyA,1\n");
  await job.write("b.csv", "id,v\nK,fromB\n");
  await job.start();
  await job.landed(2);

  await job.write("b.csv", 'id,v\nK,"fromB\n');
  await job.waitForLog(/Cannot parse "b.csv"/);
  await rm(join(job.data, "a.csv"));
  await job.waitForLog(/"a.csv" was not published/);
  await job.write("b.csv", "id,v\nK,fromB\n");
  await job.converges(new Map([["K", row({ id: "K", v: "fromB" })]]), CONVERGE_MS);
});
