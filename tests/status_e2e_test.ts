// `status [PATH...] [--json]` end to end: main.ts runs against the real broker, then status
// reads the state store: per target keys and files, per file keys, last run, memo and the error
// of a broken file with its line.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "./_pipeline.ts";

Deno.test("main.ts status --json names a broken file and its line, and forgets it once fixed", async () => {
  await using p = await pipeline("status");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.write("b.csv", "id,v\nb1,1\n");
  await p.ok();
  await p.write("b.csv", 'id,v\nb1,1\nb2,"open\n');
  assert.equal((await p.run()).code, 1);

  const r = await p.ok({ args: ["status", "--json"] });
  const report = JSON.parse(r.stdout);
  const target = `kafka:kafka_producer/${p.topic}`;
  assert.equal(report.app, "CsvToKafka");
  assert.equal(report.running, null);
  assert.deepEqual(report.targets, [
    { target, keys: 3, files: 2, retracting: 0, inDoubt: 0 },
  ]);
  const [a, b] = report.files;
  assert.equal(a.path, "a.csv");
  assert.equal(a.state, "ok");
  assert.deepEqual(a.keys, { [target]: 2 });
  assert.ok(Date.parse(a.lastRun) > Date.now() - 60_000);
  assert.equal(a.memo.size, "id,v\nk1,1\nk2,2\n".length);
  assert.match(a.memo.contentFingerprint, /^[0-9a-f]{16}$/);
  assert.equal(a.error, null);
  assert.equal(b.path, "b.csv");
  assert.equal(b.state, "failed");
  assert.deepEqual(b.keys, { [target]: 1 }, "what it published before stays");
  assert.equal(b.error.reason, "invalid");
  assert.equal(b.error.line, 3);
  assert.match(b.error.message, /^Cannot parse "b.csv" line 3/);

  const one = await p.ok({ args: ["status", "b.csv"] });
  assert.match(one.stdout, /^ {2}b\.csv: 1 key, last run .*, failed$/m);
  assert.match(one.stdout, /^ {4}invalid line 3 \(since .*\): Cannot parse "b.csv" line 3/m);
  assert.match(one.stdout, /^ {4}memo: \d+ bytes, mtime /m);
  assert.doesNotMatch(one.stdout, /a\.csv/, "only the file asked for");

  const none = await p.run({ args: ["status", "nope.csv"] });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no file of the state store matches "nope.csv"/);
  // A path as the shell completes it, from the job's folder: the error says how the store names it.
  const shell = await p.run({ args: ["status", join(p.data, "b.csv")] });
  assert.equal(shell.code, 1);
  assert.match(shell.stderr, /; it names files by their path under the source folder, as "a.csv"/);

  await p.write("b.csv", "id,v\nb1,1\nb2,2\n");
  await p.ok();
  const fixed = JSON.parse((await p.ok({ args: ["status", "b.csv", "--json"] })).stdout);
  assert.deepEqual(fixed.files.map((f: { state: string }) => f.state), ["ok"]);
  assert.equal(fixed.files[0].error, null);
});

Deno.test("main.ts status where no state store is makes none, and says nothing is known", async () => {
  await using p = await pipeline("status-none");
  const folder = join(p.dir, "elsewhere", ".statecast");
  const r = await p.ok({
    args: ["status", "--json"],
    env: { STATECAST_STATE: `file:${join(folder, "state.db")}` },
  });
  const report = JSON.parse(r.stdout);
  assert.deepEqual([report.targets, report.files], [[], []]);
  assert.equal(existsSync(join(p.dir, "elsewhere")), false, "no folder, no file");
});
