// The command line a user runs: main.ts as its own process, real broker, kcat read-back.
import assert from "node:assert/strict";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { createTopic, readTopic } from "./_kafka_readback.ts";
import { pipeline } from "./_pipeline.ts";

Deno.test("main.ts --reset forgets the state, so the next run re-sends every row", async () => {
  await using p = await pipeline("reset");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.ok();
  assert.equal((await p.fresh()).length, 2);
  const reset = await p.ok({ args: ["--reset"] });
  assert.match(reset.stderr, /state forgotten/);
  assert.deepEqual(await p.fresh(), [], "--reset itself sends nothing");
  await p.ok();
  assert.equal((await p.fresh()).length, 2, "everything again");
});

Deno.test("main.ts status shows the target, its keys and the files", async () => {
  await using p = await pipeline("status");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.write("b.csv", "id,v\nk3,3\n");
  await p.ok();
  const status = await p.ok({ args: ["status"] });
  assert.match(status.stdout, /^app CsvToKafka, state file:/m);
  assert.match(
    status.stdout,
    new RegExp(`target kafka:kafka_producer/${p.topic}: 3 keys from 2 files`),
  );
  assert.match(status.stdout, /^ {2}a\.csv: 2 keys, last run \S+, ok$/m);
  assert.deepEqual(await p.fresh(), [
    "k1=" + '{"id":"k1","v":"1"}',
    'k2={"id":"k2","v":"2"}',
    'k3={"id":"k3","v":"3"}',
  ]);
});

Deno.test("main.ts loads .env from the working directory without overriding set variables", async () => {
  await using p = await pipeline("envfile");
  await p.write("a.csv", "id,v\nk1,1\n");
  // The topic comes from the environment; .env must not override it. DATA_DIR comes from .env.
  await writeFile(
    join(p.dir, ".env"),
    `# comment\nKAFKA_TOPIC=not-this-topic\nexport DATA_DIR="${p.data}"\n`,
  );
  const r = await p.ok({ cwd: p.dir, unset: ["DATA_DIR", "STATECAST_STATE"] });
  assert.match(r.stderr, /1 files scanned/);
  assert.equal((await p.fresh()).length, 1, "sent to KAFKA_TOPIC from the environment");
  // STATECAST_STATE is unset: the default store, relative to the working directory.
  assert.ok((await stat(join(p.dir, ".statecast", "state.db"))).isFile());
});

Deno.test("main.ts --log-format json prints the summary as one JSON object", async () => {
  await using p = await pipeline("json");
  await p.write("a.csv", "id,v\nk1,1\n");
  const r = await p.ok({ args: ["--log-format", "json"] });
  const summary = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
  assert.equal(summary.level, "info");
  assert.equal(summary.upserts, 1);
  assert.equal(summary.files, 1);
  assert.equal(summary.failedFiles, 0);
});

Deno.test("main.ts rejects an unknown flag with exit 2 and prints help with --help", async () => {
  await using p = await pipeline("usage");
  const bad = await p.run({ args: ["--nope"] });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option --nope/);
  const missing = await p.run({ args: ["--env-file", "/nonexistent/x.env"] });
  assert.equal(missing.code, 2, "a missing --env-file is bad usage");
  assert.match(missing.stderr, /Cannot read the env file "\/nonexistent\/x.env"/);
  const help = await p.ok({ args: ["--help"] });
  for (const flag of ["--live", "--dry-run", "--reset", "--state", "--env-file", "status"]) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  for (const flag of ["--live", "--dry-run", "--reset", "--env-file", "--log-format"]) {
    assert.ok(readme.includes(flag), `README documents ${flag}`);
  }
});

Deno.test("main.ts names the topic and how to create it when the topic does not exist", async () => {
  await using p = await pipeline("notopic");
  await p.write("a.csv", "id,v\nk1,1\n");
  const r = await p.run({ env: { KAFKA_TOPIC: `missing-${p.topic}` } });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /UNKNOWN_TOPIC_OR_PARTITION; statecast never creates topics: create "missing-/,
  );
  assert.match(r.stderr, /nothing was committed/);
  assert.match(r.stderr, /0 failed; sent nothing, 0 unchanged rows; [\d.]+ s \(the target failed/);
});

Deno.test("main.ts sends every row to a new topic after KAFKA_TOPIC changes, and forgets the old one", async () => {
  await using p = await pipeline("switch");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.ok();
  assert.equal((await p.fresh()).length, 2);
  const other = `${p.topic}-renamed`;
  await createTopic(other, 3);
  const switched = await p.ok({ env: { KAFKA_TOPIC: other } });
  assert.match(
    switched.stderr,
    new RegExp(`keys of "kafka:kafka_producer/${p.topic}", which is no longer mounted`),
  );
  assert.deepEqual((await readTopic(other)).map((m) => m.key).sort(), ["k1", "k2"]);
  assert.deepEqual(await p.fresh(), [], "nothing is sent to the old topic");
  const again = await p.ok({ env: { KAFKA_TOPIC: other } });
  assert.doesNotMatch(again.stderr, /no longer mounted/, "forgotten once, for good");
  assert.equal((await readTopic(other)).length, 2, "and nothing re-sent to the new one");
});

Deno.test("main.ts run once with a mistyped topic keeps the real topic's state: nothing re-sent, deletes kept", async () => {
  await using p = await pipeline("typo");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.write("b.csv", "id,v\nb1,1\n");
  await p.ok();
  assert.equal((await p.fresh()).length, 3);
  const typo = await p.run({ env: { KAFKA_TOPIC: `${p.topic}-typo` } });
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /UNKNOWN_TOPIC_OR_PARTITION/);
  assert.match(typo.stderr, /nothing was committed/);
  const status = await p.run({ args: ["status"] });
  assert.match(status.stdout, new RegExp(`target kafka:kafka_producer/${p.topic}: 3 keys`));
  await p.write("b.csv", "id,v\nb1,2\n");
  const back = await p.ok();
  assert.doesNotMatch(
    back.stderr,
    new RegExp(`keys of "kafka:kafka_producer/${p.topic}", which is no longer mounted`),
    "the real topic was never forgotten",
  );
  assert.deepEqual(await p.fresh(), ['b1={"id":"b1","v":"2"}'], "only the edit, no re-send");
  await rm(join(p.data, "a.csv"));
  await p.ok();
  assert.deepEqual(await p.fresh(), ["k1=null", "k2=null"], "its keys are still known");
});

Deno.test("main.ts never prints the password of a state store URL, under Deno and Bun", async () => {
  await using p = await pipeline("redact");
  await p.write("a.csv", "id,v\nk1,1\n");
  const state = "http://alice:secret@127.0.0.1:1/"; // nothing listens there
  const runs = [
    ["status", "deno", await p.run({ args: ["status", "--state", state] })],
    ["run", "deno", await p.run({ args: ["--state", state] })],
    ["json", "deno", await p.run({ args: ["--state", state, "--log-format", "json"] })],
    ["env", "deno", await p.run({ env: { STATECAST_STATE: `${state}?authToken=tok3n` } })],
    ["status", "bun", await p.run({ args: ["status", "--state", state], runtime: "bun" })],
  ] as const;
  for (const [what, runtime, r] of runs) {
    const output = r.stdout + r.stderr;
    assert.equal(r.code, 1, `${what} under ${runtime}:\n${output}`);
    assert.ok(
      !output.includes("secret"),
      `${what} under ${runtime} printed the password:\n${output}`,
    );
    assert.ok(!output.includes("tok3n"), `${what} under ${runtime} printed the token:\n${output}`);
    assert.match(output, /Cannot open the state store \\?"http:\/\/alice:\*\*\*@127\.0\.0\.1:1\//);
  }
  assert.deepEqual(await p.fresh(), [], "nothing sent without a state store");
});

Deno.test("main.ts names the store, the table and --reset when a state row is corrupt", async () => {
  await using p = await pipeline("corrupt");
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.ok();
  assert.equal((await p.fresh()).length, 1);
  const url = `file:${join(p.dir, "state.db")}`;
  const sql = createClient({ url });
  try {
    await sql.execute("UPDATE statecast_declarations SET keys = substr(keys, 1, length(keys) - 3)");
  } finally {
    sql.close();
  }
  await p.write("a.csv", "id,v\nk1,2\n"); // a change, so the declarations are read
  const r = await p.run();
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `^error: The state store "${url}" has a corrupt row in statecast_declarations ` +
        `\\(app "CsvToKafka", target "kafka:kafka_producer/${p.topic}", file "a\\.csv"\\): .*JSON.*` +
        `Run with --reset to forget this app's state \\(the next run re-sends every row\\)`,
      "m",
    ),
  );
  // status reads counts, not key lists: it still answers.
  assert.match((await p.ok({ args: ["status"] })).stdout, /a\.csv: 1 key, /);
  assert.deepEqual(await p.fresh(), [], "nothing sent");
  await p.ok({ args: ["--reset"] });
  await p.ok();
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"2"}']);
});
