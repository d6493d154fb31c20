// The PostgreSQL table target end to end: the examples' main.ts (and a typed job) run as their own
// processes against the real server (`scripts/postgres up`); the table is read back with psql.
import assert from "node:assert/strict";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  canonical,
  csv,
  DATABASE_URL,
  DUAL_MAIN,
  expected,
  psql,
  tableContent,
  tableJob,
  TYPED_MAIN,
  written,
} from "./_postgres.ts";
import { pipeline } from "./_pipeline.ts";

const A = [
  { sku: "p1", name: "Pen", price: "1.50" },
  { sku: "p2", name: "Ink", price: "4.00" },
  { sku: "p3", name: "Pad", price: "2.25" },
];
const B = [
  { emp_id: "e1", first: "Ada", dept: "Eng" },
  { emp_id: "e2", first: "Alan", dept: "Research" },
];

/** Rows inserted, updated and deleted in `table` so far, as the server counts them. */
async function writeCounts(table: string): Promise<string> {
  const [row] = await psql(
    `SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = '${table}'`,
  );
  return row!.join("/");
}

Deno.test("csv_to_postgres: the first run loads every row, a second run writes nothing", async () => {
  await using job = await tableJob("first");
  await job.write("a.csv", csv(A));
  await job.write("sub_b.csv", csv(B));
  // A dry run connects to nothing: a closed port for the server changes nothing.
  const closed = "postgres://postgres@127.0.0.1:1/postgres";
  const dry = await job.ok({ args: ["--dry-run"], env: { DATABASE_URL: closed } });
  assert.match(dry.stdout, /upsert postgres:pg\/public\.e2e_first_\w+ "p1"/);
  const [[exists]] = await psql(`SELECT to_regclass('${job.table}') IS NOT NULL`) as [[string]];
  assert.equal(exists, "f", "a dry run creates no table");
  const first = await job.ok();
  assert.match(first.stderr, /5 upserts, 0 deletes/);
  assert.deepEqual(await job.content(), expected([...A, ...B]));
  const versions = await job.versions();
  const counts = await writeCounts(job.table);
  assert.equal(counts, "5/0/0");

  // Nothing changed; then the files touched (new mtime) with the same content.
  await job.ok();
  await job.write("a.csv", csv(A));
  const again = await job.ok();
  assert.match(again.stderr, /0 upserts, 0 deletes/);
  assert.deepEqual(written(versions, await job.versions()), []);
  assert.equal(await writeCounts(job.table), counts, "no statement wrote to the table");
});

Deno.test("csv_to_postgres: an edited cell updates one row, a removed row and a deleted file delete theirs, a rename changes nothing", async () => {
  await using job = await tableJob("edits");
  await job.write("a.csv", csv(A));
  await job.write("b.csv", csv(B));
  await job.ok();
  let versions = await job.versions();

  const edited = A.map((r) => r.sku === "p2" ? { ...r, price: "4.10" } : r);
  await job.write("a.csv", csv(edited));
  assert.match((await job.ok()).stderr, /1 upserts, 0 deletes/);
  assert.deepEqual(written(versions, versions = await job.versions()), ["p2"]);
  assert.deepEqual(await job.content(), expected([...edited, ...B]));

  await job.write("a.csv", csv(edited.filter((r) => r.sku !== "p3")));
  assert.match((await job.ok()).stderr, /0 upserts, 1 deletes/);
  assert.deepEqual(await job.content(), expected([edited[0]!, edited[1]!, ...B]));
  assert.deepEqual(written(versions, versions = await job.versions()), []);

  await rename(join(job.data, "b.csv"), join(job.data, "renamed.csv"));
  assert.match((await job.ok()).stderr, /0 upserts, 0 deletes/);
  assert.deepEqual(written(versions, versions = await job.versions()), []);

  await rm(join(job.data, "renamed.csv"));
  assert.match((await job.ok()).stderr, /0 upserts, 2 deletes/);
  assert.deepEqual(await job.content(), expected([edited[0]!, edited[1]!]));
});

Deno.test("csv_to_postgres: a key in two files holds the first path's value, then the other's", async () => {
  await using job = await tableJob("owner");
  const first = { id: "k1", v: "from-a" };
  const second = { id: "k1", v: "from-b" };
  await job.write("a.csv", csv([first, { id: "k2", v: "x" }]));
  await job.write("b.csv", csv([second]));
  const run = await job.ok();
  assert.match(
    run.stderr,
    /key "k1" .* declared by "a\.csv" and "b\.csv"; publishing the value from "a\.csv"/,
  );
  assert.deepEqual(await job.content(), expected([first, { id: "k2", v: "x" }]));

  await job.write("a.csv", csv([{ id: "k2", v: "x" }]));
  assert.match((await job.ok()).stderr, /1 upserts, 0 deletes/);
  assert.deepEqual(await job.content(), expected([second, { id: "k2", v: "x" }]));
});

Deno.test("a typed table: a value the table refuses fails only its file, with the server's message", async () => {
  await using job = await tableJob("typed", TYPED_MAIN);
  const header = "region,id,qty,name\n";
  await job.write("good.csv", header + "eu,1,5,bolt\nus,1,7,nut\n");
  await job.write("bad.csv", header + "eu,2,abc,screw\n");
  const run = await job.run();
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /"bad\.csv": PostgreSQL refused rows for table "public\.e2e_typed_\w+": invalid input syntax for type integer: "abc"/,
  );
  assert.doesNotMatch(run.stderr, /good\.csv/);
  const rows = () => psql(`SELECT region, id, qty, name FROM ${job.table} ORDER BY 1, 2`);
  assert.deepEqual(await rows(), [["eu", "1", "5", "bolt"], ["us", "1", "7", "nut"]]);

  await job.write("bad.csv", header + "eu,2,,screw\n");
  const notNull = await job.run();
  assert.equal(notNull.code, 1);
  assert.match(
    notNull.stderr,
    /"bad\.csv": .*null value in column "qty" .*violates not-null constraint/,
  );

  // Fixed: its row lands; a composite key's row is deleted.
  await job.write("bad.csv", header + "eu,2,3,screw\n");
  await job.write("good.csv", header + "eu,1,5,bolt\n");
  assert.match((await job.ok()).stderr, /1 upserts, 1 deletes/);
  assert.deepEqual(await rows(), [["eu", "1", "5", "bolt"], ["eu", "2", "3", "screw"]]);
});

Deno.test("a typed table: two forms of one key in a file (1 and 01 in an int column) fail that file naming both lines; fixed, its row is written, not deleted", async () => {
  await using job = await tableJob("same-row", TYPED_MAIN);
  const header = "region,id,qty,name\n";
  const rows = () => psql(`SELECT region, id, qty, name FROM ${job.table} ORDER BY 1, 2`);
  await job.write("a.csv", header + "eu,1,5,bolt\n");
  await job.ok();
  await job.write("a.csv", header + "eu,1,5,bolt\neu,01,6,nut\n");
  await job.write("b.csv", header + "us,2,7,screw\n");
  const run = await job.run();
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /Duplicate key .*"eu\\",\\"1\\".* in "a\.csv": declared at line 2 and again at line 3/,
  );
  assert.doesNotMatch(run.stderr, /b\.csv|nothing was committed/);
  assert.deepEqual(await rows(), [["eu", "1", "5", "bolt"], ["us", "2", "7", "screw"]]);

  // Fixed, keeping the other form: the same row, updated; no delete of "1".
  await job.write("a.csv", header + "eu,01,6,nut\n");
  assert.match((await job.ok()).stderr, /1 upserts, 0 deletes/);
  assert.deepEqual(await rows(), [["eu", "1", "6", "nut"], ["us", "2", "7", "screw"]]);
  assert.match((await job.ok()).stderr, /0 upserts, 0 deletes/);
  await job.write("a.csv", header + "eu,01,6,nut\neu,3,1,pin\n"); // a.csv runs again
  assert.match((await job.ok()).stderr, /1 upserts, 0 deletes/);
  assert.deepEqual(await rows(), [
    ["eu", "1", "6", "nut"],
    ["eu", "3", "1", "pin"],
    ["us", "2", "7", "screw"],
  ]);
});

Deno.test("a typed table: two forms of one key in two files follow the owner rule; deleting the owner hands the row over, never loses it", async () => {
  await using job = await tableJob("same-row-files", TYPED_MAIN);
  const header = "region,id,qty,name\n";
  const rows = () => psql(`SELECT region, id, qty, name FROM ${job.table} ORDER BY 1, 2`);
  await job.write("a.csv", header + "eu,01,5,bolt\n");
  await job.write("b.csv", header + "eu,1,7,nut\n");
  const first = await job.ok();
  assert.match(
    first.stderr,
    /declared by "a\.csv" and "b\.csv"; publishing the value from "a\.csv"/,
  );
  assert.match(first.stderr, /1 upserts, 0 deletes/);
  assert.deepEqual(await rows(), [["eu", "1", "5", "bolt"]]);
  assert.match((await job.ok()).stderr, /0 upserts, 0 deletes/);

  await rm(join(job.data, "a.csv"));
  assert.match((await job.ok()).stderr, /1 upserts, 0 deletes/);
  assert.deepEqual(await rows(), [["eu", "1", "7", "nut"]]);
  assert.match((await job.ok()).stderr, /0 upserts, 0 deletes/);
  assert.deepEqual(await rows(), [["eu", "1", "7", "nut"]]);

  await job.write("b.csv", header + "us,2,8,pin\n"); // the key is no longer declared
  assert.match((await job.ok()).stderr, /1 upserts, 1 deletes/);
  assert.deepEqual(await rows(), [["us", "2", "8", "pin"]]);
});

/** The commit before keys were canonical: its keys are stored as given ("01"). */
const BEFORE_CANONICAL_KEYS = "05c6f0c";
const hasOldCommit = new Deno.Command("git", {
  args: ["cat-file", "-e", `${BEFORE_CANONICAL_KEYS}^{commit}`],
  cwd: new URL("..", import.meta.url).pathname,
  stdout: "null",
  stderr: "null",
}).outputSync().success;

Deno.test({
  name:
    "a typed table: a key stored in another form by an older statecast (01) is not deleted when the same row is upserted in its canonical form",
  ignore: !hasOldCommit, // a shallow clone lacks the older commit
  async fn() {
    await using job = await tableJob("old-store", TYPED_MAIN);
    const root = new URL("..", import.meta.url).pathname;
    const old = join(job.dir, "old");
    await Deno.mkdir(old);
    const files = ["deno.json", "package.json", "lib", "tests/_typed_table_job.ts"];
    const archive = new Deno.Command("sh", {
      args: ["-c", `git archive ${BEFORE_CANONICAL_KEYS} ${files.join(" ")} | tar -x -C "${old}"`],
      cwd: root,
    });
    assert.ok((await archive.output()).success);
    await Deno.symlink(join(root, "node_modules"), join(old, "node_modules"));
    const header = "region,id,qty,name\n";
    const rows = () => psql(`SELECT region, id, qty, name FROM ${job.table} ORDER BY 1, 2`);
    await job.write("a.csv", header + "eu,01,5,bolt\neu,02,6,nut\n");
    await job.ok({ main: join(old, "tests/_typed_table_job.ts") }); // stores ["eu","01"], ["eu","02"]

    // This statecast: ["eu","1"] upserted, the stored ["eu","01"] retracted (the same row: kept),
    // ["eu","02"] retracted and not declared in any form (deleted).
    await job.write("a.csv", header + "eu,01,7,bolt\n");
    assert.match((await job.ok()).stderr, /1 upserts, 2 deletes/);
    assert.deepEqual(await rows(), [["eu", "1", "7", "bolt"]]);
    assert.match((await job.ok()).stderr, /0 upserts, 0 deletes/);
    assert.deepEqual(await rows(), [["eu", "1", "7", "bolt"]]);
  },
});

Deno.test("a typed table: a key that is not an integer in an int column fails its file, naming the column, the value and the line", async () => {
  await using job = await tableJob("bad-key", TYPED_MAIN);
  const header = "region,id,qty,name\n";
  await job.write("a.csv", header + "eu,1,5,bolt\neu,1.5,6,nut\n");
  await job.write("b.csv", header + "us,2,7,screw\n");
  const run = await job.run();
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /Key column "id" \(int\) of table "public\.e2e_bad_key_\w+" cannot hold "1\.5" in "a\.csv" line 3: expected an integer/,
  );
  assert.deepEqual(await psql(`SELECT region, id FROM ${job.table}`), [["us", "2"]]);
});

Deno.test("csv_to_postgres: a NUL byte in a file fails that file only, naming the NUL character", async () => {
  await using job = await tableJob("nul");
  await job.write("a.csv", "id,v\nk1,x\u0000y\n");
  await job.write("b.csv", "id,v\nk2,ok\n");
  const run = await job.run();
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /"a\.csv": PostgreSQL refused rows .*the NUL character \(U\+0000/);
  assert.deepEqual(await job.content(), ['k2={"id":"k2","v":"ok"}']);
});

Deno.test("csv_to_postgres: keys and cells with quotes, backslashes, braces, line breaks and non-ASCII text land as they are, and are deleted together", async () => {
  await using job = await tableJob("text");
  // Keys hold no tab or line break (psql's unaligned output could not tell them apart); values do.
  const rows = [
    { id: 'say "hi"', note: "a\\b\\\\c" },
    { id: "{x,y}", note: "line one\nline two\tand a tab" },
    { id: "NULL", note: "" },
    { id: "null", note: "[1, 2]" },
    { id: "é🙂", note: '\u00e9\u{1F642} {} "" ,' },
  ];
  const field = (v: string) => /[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
  await job.write(
    "odd.csv",
    "id,note\n" + rows.map((r) => `${field(r.id)},${field(r.note)}`).join("\n") + "\n",
  );
  await job.write("plain.csv", csv(A));
  assert.match((await job.ok()).stderr, /8 upserts, 0 deletes/);
  assert.deepEqual((await job.content()).sort(), expected([...rows, ...A]));

  await rm(join(job.data, "odd.csv"));
  assert.match((await job.ok()).stderr, /0 upserts, 5 deletes/);
  assert.deepEqual(await job.content(), expected(A));
});

Deno.test("a typed table: several composite keys deleted in one run, the others kept", async () => {
  await using job = await tableJob("typed_del", TYPED_MAIN);
  const header = "region,id,qty,name\n";
  await job.write("a.csv", header + "eu,1,5,bolt\neu,2,6,nut\nus,1,7,screw\nus,2,8,washer\n");
  assert.match((await job.ok()).stderr, /4 upserts, 0 deletes/);
  await job.write("a.csv", header + "eu,2,6,nut\nus,1,9,screw\n");
  assert.match((await job.ok()).stderr, /1 upserts, 2 deletes/);
  assert.deepEqual(await psql(`SELECT region, id, qty, name FROM ${job.table} ORDER BY 1, 2`), [
    ["eu", "2", "6", "nut"],
    ["us", "1", "9", "screw"],
  ]);
});

Deno.test("a table that differs from the declaration is refused, and left as it was", async () => {
  await using job = await tableJob("shape");
  await psql(`CREATE TABLE ${job.table} (key text PRIMARY KEY, value text, note text NOT NULL)`);
  await psql(`INSERT INTO ${job.table} VALUES ('x', 'kept', 'n')`);
  await job.write("a.csv", csv(A));
  const run = await job.run();
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /Table "public\.e2e_shape_\w+" differs from its declaration: column "value" is text, declared jsonb; column "note" is not declared and is not null without a default\. statecast never alters or drops a table/,
  );
  assert.deepEqual(await psql(`SELECT * FROM ${job.table}`), [["x", "kept", "n"]]);
});

Deno.test("csv_to_postgres: another host name or a password in DATABASE_URL re-sends nothing; a password is never printed", async () => {
  await using job = await tableJob("identity");
  await job.write("a.csv", csv(A));
  await job.ok();
  const versions = await job.versions();
  const url = new URL(DATABASE_URL);
  url.hostname = "localhost";
  url.password = "s3cret-pw"; // the test server trusts every local connection
  await job.write("a.csv", csv(A.map((r) => ({ ...r, name: r.name + "!" }))));
  await job.write("a.csv", csv(A)); // the file changed (stat), its rows did not
  assert.match((await job.ok({ env: { DATABASE_URL: url.href } })).stderr, /0 upserts, 0 deletes/);
  assert.deepEqual(written(versions, await job.versions()), []);

  url.hostname = "127.0.0.1";
  url.port = "9"; // nothing listens there
  const down = await job.run({ env: { DATABASE_URL: url.href } });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /Cannot connect to PostgreSQL at 127\.0\.0\.1:9 as "postgres"/);
  assert.doesNotMatch(down.stderr + down.stdout, /s3cret-pw/);
});

Deno.test("csv_to_postgres --live puts an edit into the table within a second", async () => {
  await using job = await tableJob("live");
  await job.write("a.csv", csv(A));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(new URL("..", import.meta.url).pathname, "examples/csv_to_postgres/main.ts"),
      "--live",
    ],
    cwd: job.dir,
    env: {
      DATABASE_URL,
      PG_TABLE: job.table,
      DATA_DIR: job.data,
      STATECAST_STATE: `file:${join(job.dir, "state.db")}`,
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const reading = (async () => {
    for await (const chunk of child.stderr) log += new TextDecoder().decode(chunk);
  })();
  try {
    for (let i = 0; !/watching "/.test(log); i++) {
      assert.ok(i < 400, `not watching after 20 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(await job.content(), expected(A));
    const edited = A.map((r) => r.sku === "p1" ? { ...r, price: "9.99" } : r);
    const started = Date.now();
    await job.write("a.csv", csv(edited));
    const want = expected(edited);
    let elapsed = 0;
    for (;;) {
      const got = await tableContent(job.table);
      elapsed = Date.now() - started;
      if (JSON.stringify(got) === JSON.stringify(want)) break;
      assert.ok(elapsed < 10_000, `the edit did not land:\n${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(elapsed < 1000, `the edit took ${elapsed} ms to land`);
  } finally {
    child.kill("SIGINT");
    await child.status;
    await reading;
  }
});

/** The dual example: a topic (pipeline()) and a table, from one run. */
async function dualJob(name: string) {
  const p = await pipeline(name);
  const table = `e2e_${name.replaceAll("-", "_")}_${crypto.randomUUID().slice(0, 8)}`;
  const env = { DATABASE_URL, PG_TABLE: table };
  return {
    p,
    table,
    ok: () => p.ok({ main: DUAL_MAIN, env, cwd: p.dir }),
    run: () => p.run({ main: DUAL_MAIN, env, cwd: p.dir }),
    /** The topic's latest value per key (tombstones drop the key), as "key=json", sorted. */
    async topic(): Promise<string[]> {
      const latest = new Map<string, string | null>();
      for (const m of await p.all()) latest.set(m.key!, m.value);
      return [...latest].filter(([, v]) => v !== null)
        .map(([k, v]) => `${k}=${canonical(v!)}`).sort();
    },
    [Symbol.asyncDispose]: async () => {
      await psql(`DROP TABLE IF EXISTS ${table}`);
      await p[Symbol.asyncDispose]();
    },
  };
}

Deno.test("csv_to_kafka_and_postgres keeps the topic and the table equal to the files", async () => {
  await using job = await dualJob("dual");
  const check = async (rows: Record<string, string>[], landed: number) => {
    assert.deepEqual(await tableContent(job.table), expected(rows));
    assert.deepEqual(await job.topic(), expected(rows));
    assert.equal((await job.p.fresh()).length, landed);
  };
  await job.p.write("a.csv", csv(A));
  await job.p.write("b.csv", csv(B));
  await job.ok();
  await check([...A, ...B], 5);
  await job.ok();
  await check([...A, ...B], 0);

  const edited = A.map((r) => r.sku === "p2" ? { ...r, price: "4.10" } : r).slice(0, 2);
  await job.p.write("a.csv", csv(edited)); // one cell edited, one row removed
  await job.ok();
  await check([...edited, ...B], 2);

  await rename(join(job.p.data, "b.csv"), join(job.p.data, "c.csv"));
  await job.ok();
  await check([...edited, ...B], 0);

  await rm(join(job.p.data, "c.csv"));
  await job.ok();
  await check(edited, 2);
});

Deno.test("csv_to_kafka_and_postgres: when the table fails, the topic keeps what it acknowledged and the next run repairs only the table", async () => {
  await using job = await dualJob("dual-fail");
  await job.p.write("a.csv", csv(A));
  await job.ok(); // creates the table
  await psql(`
    CREATE FUNCTION ${job.table}_stop() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'the table is closed for maintenance' USING ERRCODE = '55000'; END $$;
    CREATE TRIGGER stop BEFORE INSERT OR UPDATE OR DELETE ON ${job.table}
      FOR EACH ROW EXECUTE FUNCTION ${job.table}_stop();`);
  assert.equal((await job.p.fresh()).length, 3);

  const edited = A.map((r) => ({ ...r, price: r.price + "0" }));
  await job.p.write("a.csv", csv(edited));
  const failed = await job.run();
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /closed for maintenance/);
  assert.equal((await job.p.fresh()).length, 3, "the topic got the edits");
  assert.deepEqual(await tableContent(job.table), expected(A), "the table kept its rows");

  await psql(`DROP TRIGGER stop ON ${job.table}; DROP FUNCTION ${job.table}_stop();`);
  await job.ok();
  assert.deepEqual(await tableContent(job.table), expected(edited));
  assert.deepEqual(await job.p.fresh(), [], "nothing was sent to the topic again");
  assert.deepEqual(await job.topic(), expected(edited));
});
