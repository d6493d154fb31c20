// The single binary with a table target: `scripts/build-binary examples/csv_to_postgres/main.ts`
// (once per test run, into a temporary folder), run as its own process from a folder with no
// node_modules/ above it, with only the variables it needs, against the real server
// (`scripts/postgres up`). The table is read back with psql, not with our own client.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_URL, psql, rowVersions, tableContent, written } from "./_postgres.ts";
import { binaryOnce, type Run, run } from "./_binary.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** `scripts/build-binary` supports linux x64 (glibc) only. */
const SUPPORTED = Deno.build.os === "linux" && Deno.build.arch === "x86_64";

const binary = binaryOnce(
  "csv-to-postgres",
  join(ROOT, "examples", "csv_to_postgres", "main.ts"),
);

/** A working folder (data, state store) outside the repo and a fresh table name. */
async function job(name: string) {
  const dir = await mkdtemp(join(tmpdir(), `statecast-binary-pg-${name}-`));
  const data = join(dir, "data");
  await mkdir(data);
  const table = `binary_${name}_${crypto.randomUUID().slice(0, 8)}`;
  const env = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    DATABASE_URL,
    PG_TABLE: table,
    DATA_DIR: data,
    STATECAST_STATE: `file:${join(dir, "state.db")}`,
    NO_COLOR: "1",
  };
  const j = {
    dir,
    data,
    table,
    env,
    write: (path: string, text: string) => writeFile(join(data, path), text),
    run: async (vars: Record<string, string> = {}): Promise<Run> =>
      run(await binary(), [], { cwd: dir, env: { ...env, ...vars } }),
    async ok(): Promise<Run> {
      const r = await j.run();
      assert.equal(r.code, 0, `the binary exited ${r.code}:\n${r.stderr}`);
      return r;
    },
    content: () => tableContent(table),
    [Symbol.asyncDispose]: async () => {
      await psql(`DROP TABLE IF EXISTS ${table}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return j;
}

Deno.test({
  name:
    "the csv_to_postgres binary loads, edits and deletes rows of a real table, then writes nothing",
  ignore: !SUPPORTED,
  async fn() {
    await using j = await job("rows");
    await j.write("a.csv", 'sku,name\nA1,Desk\nA2,"Lamp, brass"\n');
    await j.write("b.csv", "emp_id,first\nE1,Zoë\n");

    assert.match((await j.ok()).stderr, /3 upserts, 0 deletes/);
    assert.deepEqual(await j.content(), [
      'A1={"name":"Desk","sku":"A1"}',
      'A2={"name":"Lamp, brass","sku":"A2"}',
      'E1={"emp_id":"E1","first":"Zoë"}',
    ]);
    const versions = await rowVersions(j.table);
    assert.match((await j.ok()).stderr, /0 upserts, 0 deletes/);
    assert.deepEqual(written(versions, await rowVersions(j.table)), [], "nothing written");

    await j.write("a.csv", "sku,name\nA1,Desk\nA2,Lamp\n");
    await rm(join(j.data, "b.csv"));
    assert.match((await j.ok()).stderr, /1 upserts, 1 deletes/);
    assert.deepEqual(await j.content(), [
      'A1={"name":"Desk","sku":"A1"}',
      'A2={"name":"Lamp","sku":"A2"}',
    ]);
    assert.deepEqual(written(versions, await rowVersions(j.table)), ["A2"]);
  },
});

Deno.test({
  name: "the csv_to_postgres binary names the server it cannot reach, never the password",
  ignore: !SUPPORTED,
  async fn() {
    await using j = await job("down");
    await j.write("a.csv", "id\nk1\n");
    const r = await j.run({ DATABASE_URL: "postgres://someone:s3cret-pw@127.0.0.1:9/db" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Cannot connect to PostgreSQL at 127\.0\.0\.1:9 as "someone"/);
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret-pw/);
  },
});
