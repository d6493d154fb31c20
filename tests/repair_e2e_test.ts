// Repairing a job end to end: `--rerun GLOB` sends a file's rows again and `drop` takes the job
// down. main.ts runs as its own process against the real broker (and the dual example against
// the real PostgreSQL server); what landed is read back with kcat and psql.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Pipeline, pipeline, ROOT } from "./_pipeline.ts";
import { DATABASE_URL, DUAL_MAIN, psql, tableContent } from "./_postgres.ts";

const ORDERS = "id,v\no1,1\no2,2\n";
const B = "id,v\nb1,1\n";

/** Two files: orders/a.csv (o1, o2) and b.csv (b1), published once; the topic read up to now. */
async function published(name: string): Promise<Pipeline> {
  const p = await pipeline(name);
  await mkdir(join(p.data, "orders"));
  await p.write("orders/a.csv", ORDERS);
  await p.write("b.csv", B);
  await p.ok();
  assert.equal((await p.fresh()).length, 3);
  return p;
}

/** The topic's compacted view: the last value of each key, tombstoned keys left out. */
async function compacted(p: Pipeline): Promise<string[]> {
  const latest = new Map<string, string | null>();
  for (const m of await p.all()) latest.set(m.key!, m.value);
  return [...latest].filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`).sort();
}

Deno.test("main.ts --rerun re-sends exactly the matching file's keys, no tombstone; the next run sends nothing", async () => {
  await using p = await published("rerun");
  const r = await p.ok({ args: ["--rerun", "orders/*.csv"] });
  assert.deepEqual(await p.fresh(), ['o1={"id":"o1","v":"1"}', 'o2={"id":"o2","v":"2"}']);
  assert.match(r.stderr, /--rerun: sending the rows of 1 file again/);
  assert.match(r.stderr, /2 upserts, 0 deletes/);

  await p.ok();
  assert.deepEqual(await p.fresh(), [], "the store recorded what --rerun sent");

  // Comma-separated and repeated globs, relative to DATA_DIR.
  await p.ok({ args: ["--rerun", "./b.csv,orders/a.csv", "--rerun=b.csv"] });
  assert.deepEqual((await p.fresh()).map((m) => m.split("=")[0]), ["b1", "o1", "o2"]);
});

Deno.test("main.ts --rerun with a glob that matches no file exits 2 and sends nothing", async () => {
  await using p = await published("rerun-none");
  const r = await p.run({ args: ["--rerun", "orders/*.csv", "--rerun", "nope/*.csv"] });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--rerun: no file under ".*" matches "nope\/\*\.csv"/);
  assert.doesNotMatch(r.stderr, /"orders\/\*\.csv"/, "only the glob that matched nothing");
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts --rerun naming a folder exits 2 and suggests the folder's glob", async () => {
  await using p = await published("rerun-folder");
  const r = await p.run({ args: ["--rerun", "orders"] });
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /--rerun: no file under ".*" matches "orders" \(globs are relative to that folder\); "orders" is a folder: write "orders\/\*\*" for the files under it; nothing was sent/,
  );
  assert.deepEqual(await p.fresh(), []);
  assert.doesNotMatch((await p.run({ args: ["--rerun", "nope"] })).stderr, /is a folder/);
});

Deno.test("main.ts --rerun --dry-run lists the upserts and sends nothing", async () => {
  await using p = await published("rerun-dry");
  const r = await p.ok({ args: ["--rerun", "b.csv", "--dry-run"] });
  assert.deepEqual(r.stdout.trim().split("\n"), [
    `upsert kafka:kafka_producer/${p.topic} "b1" {"id":"b1","v":"1"} ` +
    `metaHeaders {"statecast-source":"b.csv"}`,
  ]);
  assert.deepEqual(await p.fresh(), []);
  await p.ok();
  assert.deepEqual(await p.fresh(), [], "a dry run commits nothing either");
});

Deno.test("main.ts drop with a bad STATECAST_HEAP_MB says so before it touches anything", async () => {
  await using p = await published("drop-heap");
  const r = await p.run({ args: ["drop", "--yes"], env: { STATECAST_HEAP_MB: "lots" } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /STATECAST_HEAP_MB=lots: write a size in MiB/);
  assert.deepEqual(await p.fresh(), [], "no delete sent");
  // Nothing committed either: every file and key as before, none being retracted.
  const status = JSON.parse((await p.ok({ args: ["status", "--json"] })).stdout);
  assert.deepEqual(
    status.targets.map((t: { keys: number; files: number; retracting: number }) => [
      t.keys,
      t.files,
      t.retracting,
    ]),
    [[3, 2, 0]],
  );
  await p.ok();
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts drop --yes tombstones every key and forgets the state; the next run publishes everything again", async () => {
  await using p = await published("drop");
  const r = await p.ok({ args: ["drop", "--yes"] });
  assert.deepEqual(await p.fresh(), ["b1=null", "o1=null", "o2=null"]);
  assert.deepEqual(await compacted(p), [], "the compacted view is empty");
  assert.match(r.stderr, /dropped: 3 deletes sent, state forgotten/);

  const status = JSON.parse((await p.ok({ args: ["status", "--json"] })).stdout);
  assert.deepEqual(status.targets, []);
  assert.deepEqual(status.files, []);

  await p.ok();
  assert.deepEqual(await p.fresh(), [
    'b1={"id":"b1","v":"1"}',
    'o1={"id":"o1","v":"1"}',
    'o2={"id":"o2","v":"2"}',
  ]);
});

Deno.test("main.ts drop without --yes and no terminal exits 2 and sends nothing", async () => {
  await using p = await published("drop-no-tty");
  const r = await p.run({ args: ["drop"] });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /stdin is not a terminal to confirm on: add --yes/);
  assert.deepEqual(await p.fresh(), []);
  const status = JSON.parse((await p.ok({ args: ["status", "--json"] })).stdout);
  assert.equal(status.targets[0].keys, 3, "the state is kept");
});

Deno.test("main.ts drop --dry-run lists the deletes per target (keys with --verbose) and changes nothing", async () => {
  await using p = await published("drop-dry");
  const target = `kafka:kafka_producer/${p.topic}`;
  const r = await p.ok({ args: ["drop", "--dry-run"] });
  assert.deepEqual(r.stdout.trim().split("\n"), [`${target}: 3 deletes would be sent`]);
  const verbose = await p.ok({ args: ["drop", "--dry-run", "--verbose"] });
  assert.deepEqual(verbose.stdout.trim().split("\n"), [
    `delete ${target} "b1"`,
    `delete ${target} "o1"`,
    `delete ${target} "o2"`,
    `${target}: 3 deletes would be sent`,
  ]);
  assert.deepEqual(await p.fresh(), []);
  // Like every dry run, it connects to no target: a broker on a closed port changes nothing.
  const offline = await p.ok({
    args: ["drop", "--dry-run"],
    env: { KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:1" },
  });
  assert.deepEqual(offline.stdout.trim().split("\n"), [`${target}: 3 deletes would be sent`]);
  await p.ok();
  assert.deepEqual(await p.fresh(), [], "nothing was forgotten");
});

Deno.test("main.ts drop on a terminal goes on only when the app's name is typed", async () => {
  await using p = await published("drop-tty");
  const wrong = await onTerminal(p, ["drop"], "NotTheName");
  assert.equal(wrong.code, 1, wrong.output);
  assert.match(wrong.output, /3 keys of "kafka:kafka_producer\/e2e-drop-tty-/);
  assert.match(wrong.output, /drop not confirmed: nothing was sent or forgotten/);
  assert.deepEqual(await p.fresh(), []);
  const right = await onTerminal(p, ["drop"], "CsvToKafka");
  assert.equal(right.code, 0, right.output);
  assert.deepEqual(await p.fresh(), ["b1=null", "o1=null", "o2=null"]);
});

Deno.test("drop deletes the rows of a PostgreSQL table target and tombstones the topic", async () => {
  await using p = await pipeline("drop-dual");
  const table = `e2e_drop_dual_${crypto.randomUUID().slice(0, 8)}`;
  const env = { DATABASE_URL, PG_TABLE: table };
  try {
    await p.write("a.csv", "sku,name,price\np1,Pen,1.50\np2,Ink,4.00\n");
    await p.ok({ main: DUAL_MAIN, env, cwd: p.dir });
    assert.equal((await tableContent(table)).length, 2);
    assert.equal((await p.fresh()).length, 2);

    const dry = await p.ok({ main: DUAL_MAIN, env, cwd: p.dir, args: ["drop", "--dry-run"] });
    assert.match(dry.stdout, new RegExp(`^postgres:.*${table}.*: 2 deletes would be sent$`, "m"));
    assert.match(dry.stdout, /^kafka:.*: 2 deletes would be sent$/m);
    assert.equal((await tableContent(table)).length, 2);

    await p.ok({ main: DUAL_MAIN, env, cwd: p.dir, args: ["drop", "--yes"] });
    assert.deepEqual(await tableContent(table), []);
    assert.deepEqual(await p.fresh(), ["p1=null", "p2=null"]);
  } finally {
    await psql(`DROP TABLE IF EXISTS ${table}`);
  }
});

/**
 * Runs main.ts on a pseudo-terminal (util-linux `script`), types `answer` once the prompt shows,
 * and returns the exit code and everything printed.
 */
async function onTerminal(
  p: Pipeline,
  args: string[],
  answer: string,
): Promise<{ code: number; output: string }> {
  const command = [Deno.execPath(), "run", "-A", join(ROOT, "main.ts"), ...args]
    .map((word) => `'${word}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd: ROOT,
    env: {
      KAFKA_TOPIC: p.topic,
      DATA_DIR: p.data,
      STATECAST_STATE: `file:${join(p.dir, "state.db")}`,
      NO_COLOR: "1",
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let output = "";
  const decoder = new TextDecoder();
  let typed = false;
  for await (const bytes of child.stdout) {
    output += decoder.decode(bytes, { stream: true });
    if (!typed && output.includes("to drop it: ")) {
      typed = true;
      await writer.write(new TextEncoder().encode(`${answer}\n`));
      await writer.close();
    }
  }
  if (!typed) await writer.close();
  const { code } = await child.status;
  output += decoder.decode(await new Response(child.stderr).arrayBuffer());
  return { code, output };
}

Deno.test("drop that a target refuses keeps what it could not retract; run again, it finishes", async () => {
  await using p = await pipeline("drop-fail");
  const table = `e2e_drop_fail_${crypto.randomUUID().slice(0, 8)}`;
  const env = { DATABASE_URL, PG_TABLE: table };
  try {
    await p.write("a.csv", "sku,name,price\np1,Pen,1.50\np2,Ink,4.00\n");
    await p.ok({ main: DUAL_MAIN, env, cwd: p.dir });
    assert.equal((await p.fresh()).length, 2);
    await psql(`
      CREATE FUNCTION ${table}_stop() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'the table is closed for maintenance' USING ERRCODE = '55000'; END $$;
      CREATE TRIGGER stop BEFORE DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_stop();`);

    const failed = await p.run({ main: DUAL_MAIN, env, cwd: p.dir, args: ["drop", "--yes"] });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /drop failed after 2 deletes: .*closed for maintenance/);
    assert.match(failed.stderr, /run drop again/);
    assert.deepEqual(await p.fresh(), ["p1=null", "p2=null"], "the topic's deletes went out");
    assert.equal((await tableContent(table)).length, 2, "the table kept its rows");
    const status = JSON.parse(
      (await p.ok({ main: DUAL_MAIN, env, cwd: p.dir, args: ["status", "--json"] })).stdout,
    );
    const kept = status.targets.find((t: { target: string }) => t.target.startsWith("postgres"));
    assert.equal(kept.retracting + kept.keys, 2, "the table's keys are not forgotten");

    await psql(`DROP TRIGGER stop ON ${table}; DROP FUNCTION ${table}_stop();`);
    await p.ok({ main: DUAL_MAIN, env, cwd: p.dir, args: ["drop", "--yes"] });
    assert.deepEqual(await tableContent(table), []);
    assert.deepEqual(await p.fresh(), [], "nothing sent to the topic twice");
  } finally {
    await psql(`DROP TABLE IF EXISTS ${table}`);
  }
});
