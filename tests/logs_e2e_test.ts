// What an operator reads: the summary counts source files only, JSON lines carry ts, level, msg
// and the path and line of a failure, --verbose prints one line per change, a live run says
// how it stopped. main.ts runs as its own process against the real broker.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "./_pipeline.ts";
import { LiveJob } from "./_live_job.ts";

Deno.test("main.ts counts a deleted file as gone, not as scanned", async () => {
  await using p = await pipeline("logs-gone");
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.write("b.csv", "id,v\nb1,1\n");
  await p.ok();
  await rm(join(p.data, "b.csv"));
  const r = await p.ok();
  assert.match(r.stderr, /: 1 files scanned, 1 unchanged, 0 failed, 1 gone; 0 upserts, 1 deletes,/);
});

Deno.test("main.ts --log-format json: every line has ts, level and msg; a failure names path and line", async () => {
  await using p = await pipeline("logs-json");
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.write("bad.csv", 'id,v\nk1,1\nk2,"open\n');
  const r = await p.run({ args: ["--log-format", "json"] });
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l));
  for (const line of lines) {
    assert.ok(!Number.isNaN(Date.parse(line.ts)) && line.ts.endsWith("Z"), line.ts);
    assert.ok(["info", "warn", "error"].includes(line.level));
    assert.equal(typeof line.msg, "string");
  }
  const failure = lines.find((l) => l.level === "error");
  assert.equal(failure.path, "bad.csv");
  assert.equal(failure.line, 3);
  assert.match(failure.msg, /^Cannot parse "bad.csv" line 3/);
});

Deno.test("main.ts --verbose prints one line per change: kind, target, key", async () => {
  await using p = await pipeline("logs-verbose");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.ok();
  await p.write("a.csv", "id,v\nk1,10\n");
  const r = await p.ok({ args: ["--verbose"] });
  const target = `kafka:kafka_producer/${p.topic}`;
  const changes = r.stderr.split("\n").filter((l) => /^(upsert|delete) /.test(l)).sort();
  assert.deepEqual(changes, [`delete ${target} "k2"`, `upsert ${target} "k1"`]);
  assert.equal(r.stdout, "", "changes are log lines (stderr), not a dry run's output");
});

Deno.test("main.ts --live counts one file for a sed -i edit and prints a last line on Ctrl-C", async () => {
  await using job = await LiveJob.create("logs-live");
  await job.write("a.csv", "id,v\nk1,1\n");
  await job.start();
  await job.landed(1);
  const sed = await new Deno.Command("sed", {
    args: ["-i", "s/k1,1/k1,2/", join(job.data, "a.csv")],
  })
    .output();
  assert.ok(sed.success);
  await job.landed(1);
  await job.waitForLog(/live: \d+ files changed/);
  assert.match(job.log, /live: 1 files changed, 1 upserts, 0 deletes, \d+ ms\n/);
  assert.equal(await job.stop("SIGINT"), 130);
  assert.match(
    job.log,
    /CsvToKafka: stopped \(SIGINT\) after 2 rounds: 2 upserts, 0 deletes since the start/,
  );
});
