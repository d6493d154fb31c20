import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { type RoundCommit, SCHEMA_VERSION, StateStore } from "../lib/state_store.ts";
import { initFingerprints, keyHash } from "../lib/fingerprint.ts";

await initFingerprints();

Deno.test("StateStore round-trips a commit: memo rows and key fingerprints, per app", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "nested", "state.db")}`;
  try {
    {
      await using store = await StateStore.open(url);
      await store.commit("app", {
        components: new Map([["a.csv", {
          size: 10,
          mtimeMs: 1764130123456.7893,
          contentFingerprint: "00000000000000ff",
          logicFingerprint: "ffffffffffffffff",
          recordedAtMs: 2,
          id: 1,
        }]]),
        declarations: [{
          target: "t",
          component: "a.csv",
          keys: new Map([["k", "8000000000000000"], ["\uD800\u00ff", "0000000000000001"]]),
        }],
        removed: [],
      });
    }
    await using store = await StateStore.open(url);
    const state = await store.load("app");
    assert.equal(state.components.get("a.csv")?.logicFingerprint, "ffffffffffffffff");
    assert.equal(
      state.components.get("a.csv")?.mtimeMs,
      1764130123456.7893,
      "exact, or every stat differs",
    );
    assert.deepEqual([...state.declarations.get("t")!.get("a.csv")!], [
      ["k", "8000000000000000"],
      ["\uD800\u00ff", "0000000000000001"],
    ]);
    assert.equal((await store.load("other")).components.size, 0, "apps are namespaces");
    assert.deepEqual(await store.targets("app"), [{ target: "t", components: 1, keys: 2 }]);
    await store.reset("app");
    assert.equal((await store.load("app")).components.size, 0);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore round-trips large and small key lists in one commit, and replaces them", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  // A list of 300 keys is written by a statement of its own, small ones many to a statement.
  const list = (n: number, tag: string) =>
    new Map(
      Array.from({ length: n }, (_, i) => [`${tag}-${i}-"é`, i.toString(16).padStart(16, "0")]),
    );
  const commit = (lists: Array<[string, Map<string, string>]>): RoundCommit => ({
    components: new Map(),
    declarations: lists.map(([component, keys]) => ({ target: "t", component, keys })),
    removed: [],
  });
  try {
    await using store = await StateStore.open(url);
    const big = list(300, "b"), small = list(3, "s"), edge = list(256, "e");
    await store.commit("app", commit([["big.csv", big], ["small.csv", small], ["edge.csv", edge]]));
    let lists = (await store.load("app")).declarations.get("t")!;
    assert.deepEqual([...lists.get("big.csv")!], [...big]);
    assert.deepEqual([...lists.get("small.csv")!], [...small]);
    assert.deepEqual([...lists.get("edge.csv")!], [...edge]);
    const bigger = list(400, "c");
    await store.commit("app", commit([["big.csv", bigger], ["small.csv", list(255, "d")]]));
    lists = (await store.load("app")).declarations.get("t")!;
    assert.deepEqual([...lists.get("big.csv")!], [...bigger]);
    assert.equal(lists.get("small.csv")!.size, 255);
    assert.deepEqual(await store.targets("app"), [{ target: "t", components: 3, keys: 911 }]);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.open() refuses a store written by a newer statecast", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    (await StateStore.open(url)).close();
    const client = createClient({ url });
    await client.execute({
      sql: "UPDATE statecast_meta SET value = ? WHERE name = 'schema_version'",
      args: [String(SCHEMA_VERSION + 1)],
    });
    client.close();
    await assert.rejects(
      StateStore.open(url),
      new RegExp(
        `schema version ${SCHEMA_VERSION + 1}, newer than this statecast \\(${SCHEMA_VERSION}\\)`,
      ),
    );
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.open() never prints a remote store's auth token or password", async () => {
  await assert.rejects(
    StateStore.open("libsql://127.0.0.1:1?authToken=s3cret-token&tls=0"),
    (e: unknown) => {
      const text = `${(e as Error).message} ${String((e as Error).cause)}`;
      assert.match(
        (e as Error).message,
        /Cannot open the state store "libsql:\/\/127\.0\.0\.1:1\?authToken=\*\*\*&tls=0"/,
      );
      assert.ok(!(e as Error).message.includes("s3cret"), text);
      return true;
    },
  );
  for (const url of ["http://alice:s3cret@127.0.0.1:1/", "ws://alice:s3cret@127.0.0.1:1"]) {
    await assert.rejects(StateStore.open(url), (e: unknown) => {
      const message = (e as Error).message;
      assert.ok(
        message.startsWith(`Cannot open the state store "${url.replace("s3cret", "***")}"`),
      );
      assert.ok(!message.includes("s3cret"), message);
      return true;
    });
  }
  await assert.rejects(StateStore.open("bogus://alice:s3cret@h"), (e: unknown) => {
    assert.ok(!(e as Error).message.includes("s3cret"), (e as Error).message);
    return true;
  });
});

/**
 * A store as statecast wrote it before the key index (schema 1 to 3, SQL as those versions had
 * it): two files, one key they share, a key in doubt (from version 2).
 */
async function oldStore(url: string, version: 1 | 3): Promise<void> {
  const client = createClient({ url });
  const statements = [
    "CREATE TABLE statecast_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    `CREATE TABLE statecast_components (app TEXT NOT NULL, component TEXT NOT NULL,
      size INTEGER NOT NULL, mtime_ms REAL NOT NULL, content_fp TEXT NOT NULL,
      logic_fp TEXT NOT NULL, recorded_at_ms REAL NOT NULL,
      PRIMARY KEY (app, component)) WITHOUT ROWID`,
    `CREATE TABLE statecast_declarations (app TEXT NOT NULL, target TEXT NOT NULL,
      component TEXT NOT NULL, key_count INTEGER NOT NULL, keys TEXT NOT NULL,
      PRIMARY KEY (app, target, component)) WITHOUT ROWID`,
    `INSERT INTO statecast_meta VALUES ('schema_version', '${version}')`,
    `INSERT INTO statecast_components VALUES ('app', 'a.csv', 10, 1, 'c1', 'l1', 2),
      ('app', 'b.csv', 20, 1, 'c2', 'l1', 2)`,
    `INSERT INTO statecast_declarations VALUES
      ('app', 't', 'a.csv', 2, '["k","0000000000000001","shared","00000000000000aa"]'),
      ('app', 't', 'b.csv', 1, '["shared","00000000000000bb"]')`,
  ];
  if (version === 3) {
    statements.push(
      `CREATE TABLE statecast_in_doubt (app TEXT NOT NULL, target TEXT NOT NULL,
        keys TEXT NOT NULL, PRIMARY KEY (app, target)) WITHOUT ROWID`,
      `CREATE TABLE statecast_locks (app TEXT NOT NULL PRIMARY KEY, owner TEXT NOT NULL,
        pid INTEGER NOT NULL, host TEXT NOT NULL, started_at_ms INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL) WITHOUT ROWID`,
      `INSERT INTO statecast_in_doubt VALUES ('app', 't', '["k"]')`,
    );
  }
  await client.batch(statements, "write");
  client.close();
}

for (const version of [1, 3] as const) {
  Deno.test(`StateStore.open() migrates a version ${version} store: rows kept, ids given, key index filled`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
    const url = `file:${join(dir, "state.db")}`;
    try {
      await oldStore(url, version);
      await using store = await StateStore.open(url);
      const state = await store.load("app");
      assert.deepEqual(
        [...state.components].map(([path, row]) => [path, row.id, row.contentFingerprint]).sort(),
        [["a.csv", 1, "c1"], ["b.csv", 2, "c2"]],
      );
      assert.equal(state.declarations.get("t")?.get("b.csv")?.get("shared"), "00000000000000bb");
      const [tid] = (await store.targetIds("app", ["t"])).values();
      const declarers = await store.declarersOf(tid!, [keyHash("shared"), keyHash("k")], []);
      assert.deepEqual(
        declarers.map(([h, cid]) => [h === keyHash("shared") ? "shared" : "k", cid]).sort(),
        [["k", 1], ["shared", 1], ["shared", 2]],
      );
      assert.deepEqual(
        await store.loadInDoubt("app"),
        version === 3 ? new Map([["t", new Set(["k"])]]) : new Map(),
      );
      const client = createClient({ url });
      const meta = await client.execute("SELECT value FROM statecast_meta");
      // The check before each use of the index in memory reads the runs' keys, not their blobs.
      const plan = await client.execute(
        "EXPLAIN QUERY PLAN SELECT MAX(seq), COUNT(*) FROM statecast_key_runs WHERE tid = 1",
      );
      client.close();
      assert.equal(String(meta.rows[0]![0]), String(SCHEMA_VERSION));
      assert.match(plan.rows.map((row) => String(row[3])).join("\n"), /statecast_key_runs_seq/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
}

Deno.test("StateStore.acquireLock() lets one run hold an app; a stale holder is taken over and can no longer commit", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  const holder = (owner: string) => ({
    owner,
    pid: 1,
    host: "h",
    startedAtMs: 1,
    heartbeatMs: 2,
  });
  try {
    await using first = await StateStore.open(url);
    await using second = await StateStore.open(url);
    assert.equal(await first.acquireLock("app", holder("one"), () => false), undefined);
    const refused = await second.acquireLock("app", holder("two"), () => false);
    assert.equal(refused?.owner, "one", "a live holder keeps the lock");
    assert.equal(
      await second.acquireLock("other", holder("two"), () => false),
      undefined,
      "apps lock separately",
    );
    const commit = { components: new Map(), declarations: [], removed: ["x.csv"] };
    await first.commit("app", commit);
    assert.equal(
      await second.acquireLock("app", holder("two"), (h) => h.owner === "one"),
      undefined,
      "a stale holder is taken over",
    );
    await assert.rejects(first.commit("app", commit), /was taken over by another run/);
    assert.equal(await first.heartbeat(), false);
    assert.equal((await second.lockHolder("app"))?.owner, "two");
    await second.releaseLock();
    assert.equal(await second.lockHolder("app"), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("StateStore names the store, the table, the row and --reset for a corrupt row", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    {
      await using store = await StateStore.open(url);
      await store.commit("app", {
        components: new Map(),
        declarations: [{ target: "t", component: "a.csv", keys: new Map([["k", "0123"]]) }],
        removed: [],
        inDoubt: new Map([["t", ["k"]]]),
      });
    }
    const sql = createClient({ url });
    try {
      for (
        const [update, table, where, why] of [
          [
            "UPDATE statecast_declarations SET keys = substr(keys, 1, 5)",
            "statecast_declarations",
            'target "t", file "a.csv"',
            /JSON/,
          ],
          [
            `UPDATE statecast_declarations SET keys = '["k"]'`,
            "statecast_declarations",
            'target "t", file "a.csv"',
            /expected key and fingerprint pairs/,
          ],
          [
            `UPDATE statecast_in_doubt SET keys = '{"k":1}'`,
            "statecast_in_doubt",
            'target "t"',
            /expected a JSON array of strings/,
          ],
        ] as const
      ) {
        await sql.execute(update);
        await using store = await StateStore.open(url);
        const load = table === "statecast_in_doubt"
          ? store.loadInDoubt("app")
          : store.loadDeclarations("app");
        await assert.rejects(load, (e: unknown) => {
          const message = (e as Error).message;
          assert.ok(
            message.startsWith(
              `The state store "${url}" has a corrupt row in ${table} (app "app", ${where}): `,
            ),
            message,
          );
          assert.match(message, why);
          assert.match(message, /Run with --reset to forget this app's state/);
          return true;
        });
      }
    } finally {
      sql.close();
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.open() migrates a version 4 store: the failures table is added", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    (await StateStore.open(url)).close();
    const client = createClient({ url });
    await client.batch([
      "DROP TABLE statecast_failures",
      "UPDATE statecast_meta SET value = '4' WHERE name = 'schema_version'",
    ], "write");
    client.close();
    await using store = await StateStore.open(url);
    await store.recordFailures("app", {
      forget: [],
      failures: [{ path: "a.csv", reason: "invalid", message: "bad", line: 3, atMs: 1 }],
    });
    assert.equal((await store.failures("app")).get("a.csv")?.line, 3);
    const check = createClient({ url });
    const meta = await check.execute("SELECT value FROM statecast_meta");
    check.close();
    assert.equal(String(meta.rows[0]![0]), String(SCHEMA_VERSION));
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.recordFailures() replaces what it forgets, keeps the others; reset forgets all", async () => {
  await using store = await StateStore.open(":memory:");
  await store.recordFailures("app", {
    forget: [],
    failures: [
      { path: "a.csv", reason: "invalid", message: "x", line: 2, atMs: 1 },
      { path: "b.csv", reason: "waiting", message: "y", blockedBy: "a.csv", atMs: 1 },
    ],
  });
  await store.recordFailures("other", {
    forget: [],
    failures: [{ path: "a.csv", reason: "error", message: "z", atMs: 1 }],
  });
  await store.recordFailures("app", { forget: ["b.csv"], failures: [] });
  const failures = await store.failures("app");
  assert.deepEqual([...failures.keys()], ["a.csv"]);
  assert.deepEqual(failures.get("a.csv"), {
    path: "a.csv",
    reason: "invalid",
    message: "x",
    line: 2,
    atMs: 1,
  });
  await store.reset("app");
  assert.equal((await store.failures("app")).size, 0);
  assert.equal((await store.failures("other")).size, 1, "another app's rows stay");
});

/**
 * Every entry under `dir`, with its size and mtime: what a read-only open must leave as is. SQLite's
 * `-wal` and `-shm` companions are left out: they go away when the last connection of any store
 * closes, which libSQL may do later (a connection whose statements are not finalized yet), so
 * whether they are there says nothing about what the read-only store did.
 */
async function listing(dir: string): Promise<string[]> {
  const entries: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith("-wal") || entry.name.endsWith("-shm")) continue;
    const info = await Deno.stat(join(dir, entry.name));
    entries.push(`${entry.name} ${info.size} ${info.mtime?.getTime()}`);
    if (entry.isDirectory) entries.push(...(await listing(join(dir, entry.name))));
  }
  return entries.sort();
}

Deno.test("StateStore.open({ readOnly }) of a missing file creates nothing and reads an empty store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  try {
    await using store = await StateStore.open(`file:${join(dir, ".statecast", "state.db")}`, {
      readOnly: true,
    });
    assert.equal((await store.loadComponents("app")).size, 0);
    assert.deepEqual([...await store.targetIds("app", ["t1", "t2"])], [["t1", -1], ["t2", -2]]);
    await assert.rejects(store.markInDoubt("app", new Map([["t1", ["k"]]])), /read only/);
    assert.deepEqual(await listing(dir), [], "no folder, no file");
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.open({ readOnly }) reads a store and changes nothing in it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    {
      await using store = await StateStore.open(url);
      await store.targetIds("app", ["t"]);
      await store.commit("app", {
        components: new Map([["a.csv", {
          size: 1,
          mtimeMs: 1,
          contentFingerprint: "0000000000000001",
          logicFingerprint: "0000000000000002",
          recordedAtMs: 1,
          id: 1,
        }]]),
        declarations: [{
          target: "t",
          component: "a.csv",
          keys: new Map([["k", "00000000000000aa"]]),
        }],
        removed: [],
      });
    }
    const before = await listing(dir);
    {
      await using store = await StateStore.open(url, { readOnly: true });
      assert.deepEqual([...(await store.loadComponents("app")).keys()], ["a.csv"]);
      const ids = await store.targetIds("app", ["t", "new"]);
      assert.ok(ids.get("t")! > 0 && ids.get("new")! < 0, "a target it does not know is not made");
      await assert.rejects(store.reset("app"), /read only/);
      await assert.rejects(
        store.acquireLock("app", {
          owner: "o",
          pid: 1,
          host: "h",
          startedAtMs: 1,
          heartbeatMs: 1,
        }, () => true),
        /read only/,
      );
    }
    assert.deepEqual(await listing(dir), before);
    await using store = await StateStore.open(url);
    assert.deepEqual(await store.knownTargets("app"), ["t"]);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.open({ readOnly }) of an older schema says to run once without --dry-run", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    (await StateStore.open(url)).close();
    const client = createClient({ url });
    await client.execute("UPDATE statecast_meta SET value = '4' WHERE name = 'schema_version'");
    client.close();
    await assert.rejects(
      StateStore.open(url, { readOnly: true }),
      new RegExp(
        `schema version 4, older than this statecast \\(${SCHEMA_VERSION}\\), and a dry run ` +
          "changes nothing: run once without --dry-run",
      ),
    );
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.open({ readOnly }) reads a version 7 store as it is (version 8 only adds an index)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    {
      await using store = await StateStore.open(url);
      const [tid] = (await store.targetIds("app", ["t"])).values();
      await store.commit("app", indexCommit(tid!, 1, [keyHash("k")]));
    }
    const client = createClient({ url });
    await client.batch([
      "DROP INDEX statecast_key_runs_seq",
      "UPDATE statecast_meta SET value = '7' WHERE name = 'schema_version'",
    ], "write");
    {
      await using store = await StateStore.open(url, { readOnly: true });
      const [tid] = (await store.targetIds("app", ["t"])).values();
      assert.deepEqual(await declarers(store, tid!, ["k"]), [["k", 1]]);
    }
    const meta = await client.execute("SELECT value FROM statecast_meta");
    client.close();
    assert.equal(String(meta.rows[0]![0]), "7", "a dry run upgrades nothing");
  } finally {
    await rm(dir, { recursive: true });
  }
});

/** `[name, component id]` of the declarers of `keys` (named by their hash), sorted. */
async function declarers(store: StateStore, tid: number, keys: string[]) {
  const byHash = new Map(keys.map((k) => [keyHash(k), k]));
  return (await store.declarersOf(tid, [...byHash.keys()], []))
    .map(([h, cid]) => [byHash.get(h), cid]).sort();
}

/** A commit that only changes the key index: `cid`'s keys `add` and `remove` on target `tid`. */
function indexCommit(
  tid: number,
  cid: number,
  add: ReadonlyArray<number>,
  remove: ReadonlyArray<number> = [],
): RoundCommit {
  return {
    components: new Map(),
    declarations: [],
    removed: [],
    index: [{ tid, cid, add, remove }],
  };
}

/** Rows of the key index: base segments and deltas. */
async function indexRows(url: string): Promise<{ base: number; deltas: number }> {
  const client = createClient({ url });
  try {
    const rs = await client.execute(
      "SELECT COALESCE(SUM(base), 0), COUNT(*) - COALESCE(SUM(base), 0) FROM statecast_key_runs",
    );
    return { base: Number(rs.rows[0]![0]), deltas: Number(rs.rows[0]![1]) };
  } finally {
    client.close();
  }
}

Deno.test("StateStore key index: a commit adds a delta row, found with the base; enough deltas are compacted; a reopened store finds the same", async () => {
  await initFingerprints();
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    let tid: number;
    {
      await using store = await StateStore.open(url, { compactRows: 1000 });
      [tid] = (await store.targetIds("app", ["t"])).values() as unknown as [number];
      const commit = (cid: number, add: string[], remove: string[] = []) =>
        store.commit("app", indexCommit(tid, cid, add.map(keyHash), remove.map(keyHash)));
      await commit(1, ["a", "b"]);
      assert.deepEqual(await indexRows(url), { base: 0, deltas: 1 });
      assert.deepEqual(await declarers(store, tid, ["a", "b", "c"]), [["a", 1], ["b", 1]]);
      // Enough entries: the deltas become the base, in the same commit.
      const many = Array.from({ length: 1000 }, (_, i) => `k${i}`);
      await commit(2, many);
      assert.deepEqual(await indexRows(url), { base: 1, deltas: 0 });
      await commit(3, ["a"]); // a second declarer, in a delta, of a key in the base
      assert.deepEqual(await declarers(store, tid, ["a", "b", "k7"]), [
        ["a", 1],
        ["a", 3],
        ["b", 1],
        ["k7", 2],
      ]);
      await commit(1, [], ["a", "b"]); // removed from the base by a delta
      await commit(3, [], ["a"]); // removed from a delta by a later one
      assert.deepEqual(await declarers(store, tid, ["a", "b", "k7"]), [["k7", 2]]);
      assert.deepEqual(await indexRows(url), { base: 1, deltas: 3 });
    }
    // Read from disk: the base and the deltas replayed.
    await using store = await StateStore.open(url);
    assert.deepEqual(await declarers(store, tid, ["a", "b", "k7", "k999"]), [
      ["k7", 2],
      ["k999", 2],
    ]);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore key index: a store written by another StateStore meanwhile is read again, not answered from memory", async () => {
  await initFingerprints();
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    await using one = await StateStore.open(url);
    await using other = await StateStore.open(url);
    const [tid] = (await one.targetIds("app", ["t"])).values();
    const add = (store: StateStore, cid: number, keys: string[]) =>
      store.commit("app", indexCommit(tid!, cid, keys.map(keyHash)));
    await add(one, 1, ["a"]);
    assert.deepEqual(await declarers(other, tid!, ["a"]), [["a", 1]]);
    await add(other, 2, ["a"]);
    assert.deepEqual(await declarers(one, tid!, ["a"]), [["a", 1], ["a", 2]]);
    await one.reset("app");
    assert.deepEqual(await declarers(other, tid!, ["a"]), []);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore.open() migrates a version 6 store: the rows of its index and recent table become the base", async () => {
  await initFingerprints();
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    await oldStore(url, 3);
    (await StateStore.open(url)).close();
    // Back to version 6: the index rows in the table of version 4 and its recent table.
    const client = createClient({ url });
    const tid = Number((await client.execute("SELECT tid FROM statecast_targets")).rows[0]![0]);
    const row = (k: string, cid: number) => `(${tid}, ${keyHash(k)}, ${cid})`;
    await client.batch([
      "DROP TABLE statecast_key_runs",
      `CREATE TABLE statecast_key_index (tid INTEGER NOT NULL, kh INTEGER NOT NULL,
        cid INTEGER NOT NULL, PRIMARY KEY (tid, kh, cid)) WITHOUT ROWID`,
      `CREATE TABLE statecast_key_index_recent (tid INTEGER NOT NULL, kh INTEGER NOT NULL,
        cid INTEGER NOT NULL, PRIMARY KEY (tid, kh, cid)) WITHOUT ROWID`,
      `INSERT INTO statecast_key_index VALUES ${row("k", 1)}, ${row("shared", 1)}`,
      `INSERT INTO statecast_key_index_recent VALUES ${row("shared", 2)}, ${row("n", 3)}`,
      "UPDATE statecast_meta SET value = '6' WHERE name = 'schema_version'",
    ], "write");
    client.close();
    await using store = await StateStore.open(url);
    assert.deepEqual(await declarers(store, tid, ["k", "shared", "n", "x"]), [
      ["k", 1],
      ["n", 3],
      ["shared", 1],
      ["shared", 2],
    ]);
    assert.deepEqual(await indexRows(url), { base: 1, deltas: 0 });
    const check = createClient({ url });
    const left = await check.execute(
      "SELECT name FROM sqlite_master WHERE name LIKE 'statecast_key_index%'",
    );
    check.close();
    assert.deepEqual(left.rows, [], "the tables of version 6 are dropped");
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore: closing a local store folds its WAL into the database (no WAL left the size of a compaction)", async () => {
  await initFingerprints();
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  try {
    {
      await using store = await StateStore.open(url, { compactRows: 10_000 });
      const [tid] = (await store.targetIds("app", ["t"])).values();
      for (let c = 1; c <= 3; c++) {
        const add = Array.from({ length: 10_000 }, (_, i) => keyHash(`k${c}-${i}`));
        await store.commit("app", indexCommit(tid!, c, add));
      }
      const wal = await Deno.stat(join(dir, "state.db-wal"));
      assert.ok(wal.size > 100_000, `the WAL holds the compactions while open (${wal.size} bytes)`);
    }
    const wal = await Deno.stat(join(dir, "state.db-wal")).catch(() => undefined);
    assert.equal(wal?.size ?? 0, 0, "no WAL left after closing");
    assert.deepEqual(await indexRows(url), { base: 1, deltas: 0 });
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("StateStore key index: a commit refused after a takeover is forgotten, even when the new holder's rows have the same MAX(seq) and count", async () => {
  await initFingerprints();
  const dir = await mkdtemp(join(tmpdir(), "statecast-store-"));
  const url = `file:${join(dir, "state.db")}`;
  const holder = (owner: string) => ({ owner, pid: 1, host: "h", startedAtMs: 1, heartbeatMs: 2 });
  try {
    // compactRows 1: every commit writes a new one-row base, so both stores' next commit after
    // the first would leave MAX(seq) 2 and one row: only forgetting the refused one tells them apart.
    await using first = await StateStore.open(url, { compactRows: 1 });
    await using second = await StateStore.open(url, { compactRows: 1 });
    const [tid] = (await first.targetIds("app", ["t"])).values();
    const adding = (cid: number, key: string) => indexCommit(tid!, cid, [keyHash(key)]);
    assert.equal(await first.acquireLock("app", holder("one"), () => false), undefined);
    await first.commit("app", adding(1, "k1"));
    assert.equal(await second.acquireLock("app", holder("two"), () => true), undefined);
    await assert.rejects(first.commit("app", adding(1, "k2")), /taken over/);
    await second.commit("app", adding(2, "k3"));
    const expected = [["k1", 1], ["k3", 2]];
    assert.deepEqual(await declarers(second, tid!, ["k1", "k2", "k3"]), expected);
    assert.deepEqual(await declarers(first, tid!, ["k1", "k2", "k3"]), expected);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
