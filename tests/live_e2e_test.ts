// Live mode end to end: `main.ts --live` runs as its own process (under Deno, and under Bun),
// files change under it, and what lands on the real broker is read back with kcat.
import assert from "node:assert/strict";
import { appendFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expectedTable, LiveJob, row, sleep, WAIT_MS } from "./_live_job.ts";

function liveTests(runtime: "deno" | "bun") {
  const name = (s: string) => `main.ts --live (${runtime}) ${s}`;

  Deno.test(
    name("sends one message per edited, added or removed row, file and folder"),
    async () => {
      await using job = await LiveJob.create(`edits-${runtime}`, runtime);
      await job.write("a.csv", "id,v\nk1,1\nk2,2\nk3,3\n");
      await mkdir(join(job.data, "sub"));
      await job.write("sub/s.csv", "id,v\ns1,1\ns2,2\n");
      await job.start();
      assert.equal((await job.landed(5)).length, 5, "the catch-up run");

      await job.write("a.csv", "id,v\nk1,1\nk2,20\nk3,3\n");
      assert.deepEqual(
        await job.landed(1),
        [`k2=${row({ id: "k2", v: "20" })}`],
        "one cell edited",
      );

      await appendFile(join(job.data, "a.csv"), "k4,4\n");
      assert.deepEqual(await job.landed(1), [`k4=${row({ id: "k4", v: "4" })}`], "a row added");

      await job.write("a.csv", "id,v\nk1,1\nk2,20\nk4,4\n");
      assert.deepEqual(await job.landed(1), ["k3=null"], "a row removed");

      await job.write("new.csv", "id,v\nn1,1\n");
      assert.deepEqual(await job.landed(1), [`n1=${row({ id: "n1", v: "1" })}`], "a new file");

      await rm(join(job.data, "new.csv"));
      assert.deepEqual(await job.landed(1), ["n1=null"], "a deleted file");

      await rm(join(job.data, "sub"), { recursive: true });
      assert.deepEqual(await job.landed(2), ["s1=null", "s2=null"], "a deleted folder");

      assert.equal(await job.stop("SIGINT"), 130);
      assert.doesNotMatch(job.log, /error/i);
    },
  );

  Deno.test(
    name("sends nothing for a rename or a move, and one message for an atomic save"),
    async () => {
      await using job = await LiveJob.create(`rename-${runtime}`, runtime);
      await job.write("a.csv", "id,v\nk1,1\nk2,2\n");
      await mkdir(join(job.data, "moved"));
      await job.start();
      await job.landed(2);

      await rename(join(job.data, "a.csv"), join(job.data, "b.csv"));
      await rename(join(job.data, "b.csv"), join(job.data, "moved", "b.csv"));
      assert.deepEqual(await job.landed(0), [], "renamed and moved, content unchanged");
      await job.waitForLog(/live: .* 0 upserts, 0 deletes/);

      // An editor's save: write a temp file beside the original, rename it over the original.
      const temp = join(job.data, "moved", ".b.csv.swp");
      await writeFile(temp, "id,v\nk1,1\nk2,22\n");
      await rename(temp, join(job.data, "moved", "b.csv"));
      assert.deepEqual(await job.landed(1), [`k2=${row({ id: "k2", v: "22" })}`]);
    },
  );

  Deno.test(
    name("converges to a file written in two parts and to the last of 50 quick edits"),
    async () => {
      await using job = await LiveJob.create(`bursts-${runtime}`, runtime);
      await job.start();
      const full = "id,v\n" + Array.from({ length: 40 }, (_, i) => `r${i},${i}`).join("\n") + "\n";
      const half = full.indexOf("\n", full.length / 2) + 4; // mid-row
      await job.write("parts.csv", full.slice(0, half));
      await sleep(300);
      await appendFile(join(job.data, "parts.csv"), full.slice(half));
      await job.landed(40);
      assert.deepEqual(
        await job.table(),
        expectedTable(full),
        "exactly the rows of the complete file",
      );

      for (let i = 1; i <= 50; i++) {
        await job.write("parts.csv", full.replace("r0,0", `r0,${1000 + i}`));
        await sleep(5);
      }
      const burst = await job.landed(1);
      assert.ok(burst.length < 50, `fewer messages (${burst.length}) than edits (50)`);
      assert.equal((await job.table()).get("r0"), row({ id: "r0", v: "1050" }), "the final state");
    },
  );

  Deno.test(
    name("logs a broken file with its line, keeps the others flowing, sends the fix"),
    async () => {
      await using job = await LiveJob.create(`broken-${runtime}`, runtime);
      await job.write("a.csv", "id,v\nk1,1\nk2,2\n");
      await job.write("good.csv", "id,v\ng1,1\n");
      await job.start();
      await job.landed(3);

      await job.write("a.csv", 'id,v\nk1,1\nk2,"open\n');
      await job.waitForLog(/Cannot parse "a.csv" line 3: quoted field is never closed/);
      await job.write("good.csv", "id,v\ng1,2\n");
      assert.deepEqual(
        await job.landed(1),
        [`g1=${row({ id: "g1", v: "2" })}`],
        "nothing of a.csv retracted",
      );

      await job.write("a.csv", "id,v\nk1,1\nk2,3\n");
      assert.deepEqual(await job.landed(1), [`k2=${row({ id: "k2", v: "3" })}`]);
    },
  );
}

liveTests("deno");
liveTests("bun");

Deno.test("main.ts --live stopped by SIGINT in a burst of edits: the next start converges", async () => {
  await using job = await LiveJob.create("restart", "deno");
  const csv = (n: number) =>
    "id,v\n" + Array.from({ length: 30 }, (_, i) =>
      `k${i},${i < n ? `new${n}` : "old"}`).join("\n") +
    "\n";
  await job.write("a.csv", csv(0));
  await job.start();
  await job.landed(30);
  let last = 0;
  const burst = (async () => {
    for (let n = 1; n <= 30; n++) {
      await job.write("a.csv", csv(n));
      last = n;
      await sleep(20);
    }
  })();
  await sleep(250);
  const code = await job.stop("SIGINT");
  assert.equal(code, 130);
  await burst;
  assert.equal(last, 30);
  await job.start(); // catches up what changed meanwhile
  await job.landed(1);
  assert.deepEqual(await job.table(), expectedTable(csv(30)));
  assert.equal(await job.stop("SIGTERM"), 143);
});

Deno.test("main.ts --live exits within 2 s of SIGINT, and at once on a second SIGINT", async () => {
  await using job = await LiveJob.create("signals", "deno");
  await job.write("a.csv", "id,v\nk1,1\n");
  await job.start();
  const started = Date.now();
  assert.equal(await job.stop("SIGINT"), 130);
  // A bound on shutdown, which the issue requires; not a speed target.
  assert.ok(Date.now() - started < 2_000, `exited after ${Date.now() - started} ms`);
  await job.start();
  const child = job.child!;
  job.child = undefined;
  child.kill("SIGINT");
  child.kill("SIGINT");
  assert.equal((await child.status).code, 130);
});

Deno.test("main.ts --live retracts a folder named like a temp file when it leaves the tree", async () => {
  await using job = await LiveJob.create("tmpdir", "deno");
  await mkdir(join(job.data, "export.tmp"));
  await job.write("export.tmp/a.csv", "id,v\nt1,1\n");
  await job.start();
  assert.deepEqual(await job.landed(1), [`t1=${row({ id: "t1", v: "1" })}`]);
  await rename(join(job.data, "export.tmp"), join(job.dir, "moved-out"));
  assert.deepEqual(await job.landed(1), ["t1=null"]);
});

Deno.test("main.ts --live sends an edit while another file keeps changing (a download in progress)", async () => {
  await using job = await LiveJob.create("busy", "deno");
  await job.write("a.csv", "id,v\nk1,1\n");
  await job.start();
  await job.landed(1);
  let downloading = true;
  const download = (async () => {
    const deadline = Date.now() + WAIT_MS + 5_000;
    while (downloading && Date.now() < deadline) {
      await appendFile(join(job.data, "big.csv.part"), "x".repeat(100));
      await sleep(20);
    }
  })();
  try {
    await sleep(200);
    await job.write("a.csv", "id,v\nk1,2\n");
    assert.deepEqual(await job.landed(1), [`k1=${row({ id: "k1", v: "2" })}`]);
  } finally {
    downloading = false;
    await download;
  }
});
