// A dry run that touches nothing: main.ts --dry-run plans from the state store without connecting
// to the broker, creates no file or folder, --reset --dry-run forgets nothing, and --live --dry-run
// is a usage error. What landed on the topic is read back with kcat.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "./_pipeline.ts";

const row = (id: string, v: string) => JSON.stringify({ id, v });
/** The broker's address as a closed port: a dry run that tried to connect would fail. */
const NO_BROKER = { KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:1" };

/**
 * Every entry under `dir` (relative path, size, mtime), sorted. The mtime of SQLite's `-shm` file
 * is left out: it is the WAL's shared-memory index, where every reader takes its read lock.
 */
async function listing(dir: string, prefix = ""): Promise<string[]> {
  const entries: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = join(prefix, entry.name);
    const info = await Deno.stat(join(dir, path));
    const mtime = path.endsWith("-shm") ? "" : ` ${info.mtime?.getTime()}`;
    entries.push(`${path} ${entry.isDirectory ? "dir" : info.size}${mtime}`);
    if (entry.isDirectory) entries.push(...(await listing(dir, path)));
  }
  return entries.sort();
}

Deno.test("main.ts --dry-run plans from the store with no broker to reach, and writes nothing", async () => {
  await using p = await pipeline("dry-nobroker");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.ok();
  await p.fresh();
  await p.write("a.csv", "id,v\nk1,11\nk3,3\n");
  const before = await listing(p.dir);
  const dry = await p.ok({ args: ["--dry-run"], env: NO_BROKER });
  const topic = `kafka:kafka_producer/${p.topic}`;
  assert.deepEqual(dry.stdout.trim().split("\n").sort(), [
    `delete ${topic} "k2"`,
    `upsert ${topic} "k1" ${row("k1", "11")} metaHeaders {"statecast-source":"a.csv"}`,
    `upsert ${topic} "k3" ${row("k3", "3")} metaHeaders {"statecast-source":"a.csv"}`,
  ]);
  assert.match(
    dry.stderr,
    /2 upserts, 1 deletes, 0 unchanged rows; \S+ s \(dry run: nothing sent\)/,
  );
  assert.deepEqual(await listing(p.dir), before, "the state store is as it was");
  assert.deepEqual(await p.fresh(), []);
  // The real run sends what the dry run listed.
  await p.ok();
  assert.deepEqual(await p.fresh(), ["k1=" + row("k1", "11"), "k2=null", "k3=" + row("k3", "3")]);
});

Deno.test("main.ts --dry-run in a fresh folder leaves it exactly as it was", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-e2e-dry-fresh-"));
  try {
    await mkdir(join(dir, "data"));
    await writeFile(join(dir, "data", "a.csv"), "id,v\nk1,1\n");
    const before = await listing(dir);
    await using p = await pipeline("dry-fresh");
    // The default state store (file:.statecast/state.db) in the working directory.
    const dry = await p.ok({
      args: ["--dry-run"],
      cwd: dir,
      env: { ...NO_BROKER, DATA_DIR: join(dir, "data") },
      unset: ["STATECAST_STATE"],
    });
    assert.match(dry.stdout, /^upsert kafka:kafka_producer\/\S+ "k1" /m);
    assert.deepEqual(await listing(dir), before, "no .statecast folder, no state file");
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("main.ts --reset --dry-run says what it would forget and forgets nothing", async () => {
  await using p = await pipeline("dry-reset");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  await p.write("b.csv", "id,v\nk3,3\n");
  await p.ok();
  assert.equal((await p.fresh()).length, 3);
  const before = await listing(p.dir);
  const dry = await p.ok({ args: ["--reset", "--dry-run"], env: NO_BROKER });
  assert.equal(dry.stdout.trim(), `forget kafka:kafka_producer/${p.topic} 3 keys of 2 files`);
  assert.match(
    dry.stderr,
    /--reset would forget 3 keys of 1 target and the memo of 2 files; dry run: nothing was forgotten/,
  );
  assert.deepEqual(await listing(p.dir), before);
  const after = await p.ok();
  assert.match(after.stderr, /2 unchanged, 0 failed; 0 upserts, 0 deletes/, "the state is kept");
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts --live --dry-run is a usage error (exit 2) that says why, and touches nothing", async () => {
  await using p = await pipeline("dry-live");
  await p.write("a.csv", "id,v\nk1,1\n");
  const before = await listing(p.dir);
  const r = await p.run({ args: ["--live", "--dry-run"] });
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /error: --live and --dry-run do not go together: a dry run commits nothing/,
  );
  assert.deepEqual(await listing(p.dir), before);
  assert.deepEqual(await p.fresh(), []);
});
