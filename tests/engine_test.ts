// The engine against a real libSQL store and an in-memory target that records what it was given.
// End-to-end behaviour on a real broker is in pipeline_e2e_test.ts.
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ComponentFn, Engine, type RoundOptions } from "../lib/engine.ts";
import { keyFromId, keyId, showKey } from "../lib/key_id.ts";
import { declare } from "../lib/target.ts";
import { RecordingTarget } from "./_recording_target.ts";
import { fingerprint, initFingerprints } from "../lib/fingerprint.ts";
import { type FileItem, walkDir } from "../lib/localfs.ts";
import { StateStore } from "../lib/state_store.ts";

await initFingerprints();

/** CSV rows `k<n>,<n>` for n in [from, to). */
function rows(from: number, to: number): string {
  return Array.from({ length: to - from }, (_, i) => `k${from + i},${from + i}\n`).join("");
}

async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), "statecast-engine-"));
  await writeFile(join(dir, "data.keep"), "");
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  const target = new RecordingTarget();
  const stateUrl = `file:${join(dir, "state.db")}`;
  let runs = 0;
  let version = "1";
  let duplicates: "error" | "last" = "error";
  /** Set: the component catches what `declare()` throws, hands it here and goes on. */
  let onDeclareError: ((error: unknown) => void) | undefined;
  const fn = (): ComponentFn<FileItem> => ({
    memo: true,
    logicFingerprint: fingerprint(`logic-${version}`),
    onDuplicateKey: duplicates,
    run: async (item) => {
      runs++;
      for await (const row of item.csvRows()) {
        const n = row.get("n")!;
        const value = version.startsWith("1") ? JSON.stringify({ n }) : JSON.stringify({ n, v: 2 });
        if (onDeclareError === undefined) declare(target, { key: row.get("key")!, value });
        else {
          try {
            declare(target, { key: row.get("key")!, value });
          } catch (error) {
            onDeclareError(error);
          }
        }
      }
    },
  });
  const source = walkDir(dataDir, { include: ["**/*.csv"] });
  const round = async (options: RoundOptions<FileItem> = {}) => {
    await using store = await StateStore.open(stateUrl); // a new engine each time: a restart
    const engine = new Engine(store, "test");
    engine.addTarget(target);
    await engine.load();
    const before = runs;
    const summary = await engine.round(fn(), await source.scan(), { fullScan: true, ...options });
    return { summary, runs: runs - before, changes: target.last() };
  };
  const write = (name: string, text: string) => writeFile(join(dataDir, name), text);
  return {
    dir,
    dataDir,
    target,
    round,
    write,
    setVersion: (v: string) => version = v,
    setDuplicates: (d: "error" | "last") => duplicates = d,
    setOnDeclareError: (handle: (error: unknown) => void) => onDeclareError = handle,
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  };
}

// Files written within RACY_WINDOW_MS of a scan are hashed rather than trusted by stat; that is
// the behaviour under test for "not parsed", so the files get an old mtime.
async function age(path: string) {
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(path, old, old);
}

Deno.test("Engine.round() sends one upsert per row, then nothing, without parsing unchanged files", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  await age(join(f.dataDir, "a.csv"));
  const first = await f.round();
  assert.deepEqual(first.changes, ['+k1={"n":"1"}', '+k2={"n":"2"}']);
  const second = await f.round();
  assert.deepEqual(second.changes, []);
  assert.equal(second.runs, 0, "an unchanged file is not parsed");
  assert.equal(second.summary.unchanged, 1);
});

Deno.test("Engine.round() calls onDeclared every 4,096 new keys of a file, and onChunk once per chunk", async () => {
  await using f = await fixture();
  // 9,000 rows with 500 repeated keys (onDuplicateKey "last"): 8,500 new keys, two pulses.
  const rows = Array.from({ length: 9000 }, (_, i) => `k${i % 8500},${i}`);
  await f.write("a.csv", `key,n\n${rows.join("\n")}\n`);
  f.setDuplicates("last");
  let declared = 0;
  let chunks = 0;
  const { summary } = await f.round({
    onDeclared: () => declared++,
    onChunk: () => chunks++,
  });
  assert.equal(summary.upserts, 8500);
  assert.equal(declared, 2);
  assert.equal(chunks, 1);
});

Deno.test("Engine.round() keeps the state declared when onDeclared throws and the file goes on", async () => {
  await using f = await fixture();
  const rows = Array.from({ length: 5000 }, (_, i) => `k${i},${i}`);
  await f.write("a.csv", `key,n\n${rows.join("\n")}\n`);
  let thrown = 0;
  f.setOnDeclareError(() => thrown++); // a component that carries on after declare() threw
  const { summary } = await f.round({
    onDeclared: () => {
      throw new Error("onDeclared failed");
    },
  });
  assert.equal(thrown, 1, "the 4,096th key's pulse threw");
  assert.equal(summary.upserts, 5000, "and that key was kept");
});

Deno.test("Engine.round() hashes a recently written file instead of trusting its stat", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\n");
  await f.round();
  const again = await f.round();
  assert.equal(again.runs, 0, "same content: not parsed");
  assert.deepEqual(again.changes, []);
});

Deno.test("Engine.round() sends an edit, an added row, a removed row and a deleted file", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\nk3,3\n");
  await f.write("b.csv", "key,n\nb1,1\n");
  await f.round();
  await f.write("a.csv", "key,n\nk1,1\nk2,20\nk4,4\n");
  assert.deepEqual((await f.round()).changes, ['+k2={"n":"20"}', '+k4={"n":"4"}', "-k3"]);
  await rm(join(f.dataDir, "b.csv"));
  assert.deepEqual((await f.round()).changes, ["-b1"]);
});

Deno.test("Engine.round() sends nothing for a renamed file with the same content", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  await f.round();
  await rename(join(f.dataDir, "a.csv"), join(f.dataDir, "renamed.csv"));
  const r = await f.round();
  assert.deepEqual(r.changes, []);
  assert.equal(r.summary.upserts + r.summary.deletes, 0);
});

Deno.test("Engine.round() fails a file that declares a key twice, naming both lines, and keeps its rows", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  await f.write("b.csv", "key,n\nb1,1\n");
  await f.round();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\nk1,3\n");
  await f.write("b.csv", "key,n\nb1,2\n");
  const r = await f.round();
  assert.equal(r.summary.failed.length, 1);
  assert.equal(
    (r.summary.failed[0]!.error as Error).message,
    'Duplicate key "k1" in "a.csv": declared at line 2 and again at line 4',
  );
  assert.deepEqual(
    r.changes,
    ['+b1={"n":"2"}'],
    "the other file goes on; nothing of a.csv is retracted",
  );
  await f.write("a.csv", "key,n\nk1,1\n");
  assert.deepEqual((await f.round()).changes, ["-k2"], "a fixed file is tried again");
});

Deno.test("Engine.round() publishes the first path's value for a key in two files, and hands it over", async () => {
  await using f = await fixture();
  await f.write("b.csv", "key,n\nshared,from-b\n");
  assert.deepEqual((await f.round()).changes, ['+shared={"n":"from-b"}']);
  await f.write("a.csv", "key,n\nshared,from-a\n");
  const conflict = await f.round();
  assert.deepEqual(conflict.changes, ['+shared={"n":"from-a"}']);
  assert.match(
    conflict.summary.conflicts[0]!,
    /"shared" .* declared by "a.csv" and "b.csv"; publishing the value from "a.csv"/,
  );
  await rm(join(f.dataDir, "a.csv"));
  const handover = await f.round();
  assert.deepEqual(
    handover.changes,
    ['+shared={"n":"from-b"}'],
    "an upsert from b.csv, not a tombstone",
  );
  await rm(join(f.dataDir, "b.csv"));
  // The last file goes: allow it, or the delete guard refuses to empty the target.
  assert.deepEqual((await f.round({ maxDeleteShare: Infinity })).changes, ["-shared"]);
});

Deno.test("Engine.round() commits nothing when the target fails, and re-sends next round", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\n");
  f.target.failNext = true;
  const failed = await f.round();
  assert.equal(failed.summary.committed, false);
  assert.match(String(failed.summary.applyError), /broker down/);
  assert.deepEqual((await f.round()).changes, ['+k1={"n":"1"}']);
});

Deno.test("Engine.round() re-runs every file when the logic changes and sends only changed values", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\n");
  await f.write("b.csv", "key,n\nk2,2\n");
  await f.round();
  f.setVersion("2");
  const r = await f.round();
  assert.equal(r.runs, 2);
  assert.deepEqual(r.changes, ['+k1={"n":"1","v":2}', '+k2={"n":"2","v":2}']);
  f.setVersion("1");
  await f.round();
  // Same output bytes under a new logic: re-run, nothing sent.
  f.setVersion("1b");
  const same = await f.round();
  assert.equal(same.runs, 2);
  assert.deepEqual(same.changes, []);
});

Deno.test("Engine.round() fails only the file whose data the target refuses; the others commit", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\n");
  await f.write("b.csv", "key,n\nb1,1\n");
  await f.round();
  await f.write("a.csv", "key,n\nk1,TOO-BIG\nk2,2\n");
  await f.write("b.csv", "key,n\nb1,2\n");
  await f.write("c.csv", "key,n\nc1,1\n");
  const r = await f.round();
  assert.deepEqual(
    r.summary.failed.map((x) => x.path),
    ["a.csv"],
    String(r.summary.failed.map((x) => x.error)),
  );
  assert.match(String(r.summary.failed[0]!.error), /MESSAGE_TOO_LARGE/);
  assert.deepEqual(r.changes, ['+b1={"n":"2"}', '+c1={"n":"1"}']);
  assert.equal(r.summary.committed, true);
  assert.equal(r.summary.upserts, 2);
  // a.csv was not committed: fixed, it goes out whole; b.csv and c.csv are not sent again.
  await f.write("a.csv", "key,n\nk1,small\nk2,2\n");
  assert.deepEqual((await f.round()).changes, ['+k1={"n":"small"}', '+k2={"n":"2"}']);
});

Deno.test("Engine.round() keeps the keys of files still to be sent in doubt while a refused chunk is applied file by file", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\na1,TOO-BIG\n");
  await f.write("b.csv", "key,n\nb1,1\n");
  await f.write("c.csv", "key,n\nc1,1\n");
  const sentWhileNotInDoubt: string[] = [];
  f.target.onApply = async (changes) => {
    await using store = await StateStore.open(`file:${join(f.dir, "state.db")}`);
    const inDoubt = (await store.loadInDoubt("test")).get(f.target.id) ?? new Set();
    for (const c of changes) if (!inDoubt.has(keyId(c.key))) sentWhileNotInDoubt.push(keyId(c.key));
  };
  const r = await f.round();
  assert.deepEqual(r.summary.failed.map((x) => x.path), ["a.csv"]);
  assert.deepEqual(r.changes, ['+b1={"n":"1"}', '+c1={"n":"1"}']);
  // b.csv was committed before c.csv went out: c1 was still in doubt then.
  assert.deepEqual(sentWhileNotInDoubt, []);
});

Deno.test("Engine.round() treats a string key and its UTF-8 bytes as the same key", async () => {
  await using store = await StateStore.open(":memory:");
  const target = new RecordingTarget();
  const engine = new Engine(store, "keys");
  engine.addTarget(target);
  await engine.load();
  const item = (path: string) => ({
    path,
    size: 1,
    mtimeMs: 0,
    bytes: () => Promise.resolve(new Uint8Array([path.length])),
  });
  let asBytes = false;
  const fn: ComponentFn<ReturnType<typeof item>> = {
    memo: false,
    logicFingerprint: fingerprint("keys"),
    onDuplicateKey: "error",
    run: () => {
      const key = asBytes ? new TextEncoder().encode("ключ") : "ключ";
      declare(target, { key: key as string, value: "v" });
      return Promise.resolve();
    },
  };
  await engine.round(fn, [item("a")], { fullScan: true });
  assert.deepEqual(target.last(), ["+ключ=v"]);
  asBytes = true;
  await engine.round(fn, [item("a")], { fullScan: true });
  assert.deepEqual(target.last(), [], "the same key, the same value: nothing");
});

Deno.test('Engine.round() with onDuplicateKey "last" keeps the last declaration of a key', async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk1,2\n");
  f.setDuplicates("last");
  const r = await f.round();
  assert.equal(r.summary.failed.length, 0);
  assert.deepEqual(r.changes, ['+k1={"n":"2"}']);
});

Deno.test("keyId() and keyFromId() round-trip text keys, astral characters and non-UTF-8 bytes", () => {
  for (const key of ["plain", "\u{10000}abc", "\u{103FF}", "😀", ""]) {
    assert.equal(keyFromId(keyId(key)), key, JSON.stringify(key));
    assert.equal(keyId(new TextEncoder().encode(key)), keyId(key));
  }
  const bytes = new Uint8Array([0xff, 0x00, 0x61]);
  assert.deepEqual(keyFromId(keyId(bytes)), bytes);
  assert.equal(showKey(keyId(bytes)), "<3 bytes>");
  assert.equal(showKey(keyId("\u{10000}")), JSON.stringify("\u{10000}"));
});

Deno.test("Engine.round() re-sends keys a failed apply left in doubt, even after the file is reverted", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  await f.round();
  await f.write("a.csv", "key,n\nk1,NEW\nk2,NEW\n");
  f.target.failAfter = 1; // k1=NEW reaches the topic, then the broker is lost
  const failed = await f.round();
  assert.equal(failed.summary.committed, false);
  assert.deepEqual(failed.changes, ['+k1={"n":"NEW"}']);
  // The user reverts the file before the next run (a restart: a new engine on the same store).
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  assert.deepEqual(
    (await f.round()).changes,
    ['+k1={"n":"1"}', '+k2={"n":"2"}'],
    "the topic is repaired",
  );
  assert.deepEqual((await f.round()).changes, [], "and the doubt is settled");
});

Deno.test("Engine.round() retracts a key left in doubt that no file declares any more", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\n");
  await f.round();
  await f.write("a.csv", "key,n\nk1,1\nk9,9\n");
  f.target.failAfter = 1; // k9 lands, uncommitted
  await f.round();
  f.target.last();
  await f.write("a.csv", "key,n\nk1,1\n"); // k9 never existed as far as the store knows
  assert.deepEqual((await f.round()).changes, ["-k9"], "the uncommitted k9 is retracted");
  assert.deepEqual((await f.round()).changes, []);
});

Deno.test("Engine.round() holds back only the files that hand keys to an unreadable new owner", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nshared,from-a\n");
  await f.write("b.csv", "key,n\nshared,from-b\n");
  await f.write("c.csv", "key,n\nc1,1\n");
  await f.round();
  await f.write("a.csv", "key,n\n"); // a drops the key; b, broken now, would own it
  await f.write("b.csv", 'key,n\nshared,"open\n');
  await f.write("c.csv", "key,n\nc1,2\n");
  const r = await f.round();
  assert.deepEqual(r.summary.failed.map((x) => x.path).sort(), ["a.csv", "b.csv"]);
  assert.match(
    String(r.summary.failed.find((x) => x.path === "a.csv")!.error),
    /"a.csv" was not published: keys it no longer declares now belong to "b.csv", which could not be read/,
  );
  assert.deepEqual(r.changes, ['+c1={"n":"2"}'], "the other files go on");
  await f.write("b.csv", "key,n\nshared,from-b\n");
  assert.deepEqual((await f.round()).changes, ['+shared={"n":"from-b"}'], "fixed: handed over");
});

Deno.test("Engine.round() applies files that hand a key over together when another file is refused", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nshared,A\n");
  await f.write("z.csv", "key,n\nz1,1\n");
  await f.round();
  await f.write("a.csv", "key,n\n"); // a lets go of the key ...
  await f.write("b.csv", "key,n\nshared,B\n"); // ... a new file takes it
  await f.write("z.csv", "key,n\nz1,TOO-BIG\n"); // and an unrelated file is refused
  const r = await f.round();
  assert.deepEqual(r.summary.failed.map((x) => x.path), ["z.csv"]);
  assert.deepEqual(r.changes, ['+shared={"n":"B"}'], "one upsert, no tombstone in between");
});

Deno.test("Engine.round() keeps a deleted file that waits on an unreadable new owner until the handover", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nK,fromA\nonlyA,1\n");
  await f.write("b.csv", "key,n\nK,fromB\n");
  await f.round();
  await f.write("b.csv", 'key,n\nK,"fromB\n'); // the next owner of K breaks ...
  await Deno.remove(join(f.dataDir, "a.csv")); // ... as its owner goes away
  const waiting = await f.round();
  assert.deepEqual(waiting.changes, []);
  const a = waiting.summary.failed.find((x) => x.path === "a.csv");
  assert.equal(a?.blockedBy, "b.csv");
  assert.deepEqual((await f.round()).changes, [], "still waiting, still nothing sent");
  await f.write("b.csv", "key,n\nK,fromB\n");
  assert.deepEqual((await f.round()).changes, ['+K={"n":"fromB"}', "-onlyA"], "handed over");
  assert.deepEqual((await f.round()).changes, []);
});

Deno.test("Engine.round() reports a deleted file that waits on two unreadable new owners", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nK1,fromA\nK2,fromA\n");
  await f.write("b.csv", "key,n\nK1,fromB\n");
  await f.write("c.csv", "key,n\nK2,fromC\n");
  await f.round();
  await f.write("b.csv", 'key,n\nK1,"fromB\n'); // both next owners break ...
  await f.write("c.csv", 'key,n\nK2,"fromC\n');
  await Deno.remove(join(f.dataDir, "a.csv")); // ... as their keys' owner goes away
  const waiting = await f.round();
  assert.deepEqual(waiting.changes, []);
  assert.deepEqual(
    waiting.summary.failed.map((x) => [x.path, x.blockedBy]).sort(),
    [["a.csv", "b.csv"], ["b.csv", undefined], ["c.csv", undefined]],
    "a.csv waits, and says so",
  );
  await f.write("b.csv", "key,n\nK1,fromB\n");
  await f.write("c.csv", "key,n\nK2,fromC\n");
  const handed = await f.round();
  assert.deepEqual(
    handed.changes.sort(),
    ['+K1={"n":"fromB"}', '+K2={"n":"fromC"}'],
    "handed over",
  );
  assert.deepEqual(handed.summary.failed, []);
});

Deno.test("Engine.round() does not report as failed a file committed earlier in the round that a waiting file's key touches", async () => {
  await using f = await fixture();
  await f.write("b.csv", "key,n\nK,fromB\n");
  await f.write("d.csv", "key,n\nK,fromD\nK2,fromD\n");
  await f.write("g.csv", "key,n\nK,fromG\n");
  await f.write("u.csv", "key,n\nK2,fromU\n");
  await f.round();
  // d.csv gives K2 to u.csv, which breaks: d.csv waits, and so does b.csv, whose K would go to
  // d.csv. g.csv, which declares K too, changes and is committed: it waits for nothing.
  await Deno.remove(join(f.dataDir, "b.csv"));
  await Deno.remove(join(f.dataDir, "d.csv"));
  await f.write("u.csv", 'key,n\nK2,"fromU\n');
  await f.write("g.csv", "key,n\nK,fromG\nG,1\n");
  const r = await f.round();
  assert.deepEqual(r.changes, ['+G={"n":"1"}']);
  assert.deepEqual(
    r.summary.failed.map((x) => [x.path, x.blockedBy]).sort(),
    [["b.csv", "d.csv"], ["d.csv", "u.csv"], ["u.csv", undefined]],
    "g.csv was sent and committed: not failed",
  );
  assert.deepEqual((await f.round()).changes, [], "still waiting, nothing to send");
  await f.write("u.csv", "key,n\nK2,fromU\n");
  const handed = await f.round();
  assert.deepEqual(handed.changes.sort(), ['+K2={"n":"fromU"}', '+K={"n":"fromG"}']);
  assert.deepEqual(handed.summary.failed, []);
});

Deno.test("Engine.round() holds an empty (0-byte) file as not ready and keeps its rows", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  await f.round();
  await f.write("a.csv", "");
  const held = await f.round();
  assert.deepEqual(held.changes, [], "no tombstones for a truncated file");
  assert.deepEqual(held.summary.held.map((h) => h.path), ["a.csv"]);
  assert.deepEqual(held.summary.failed, []);
  await f.write("a.csv", "key,n\nk1,1\n"); // written out: a real edit
  assert.deepEqual((await f.round()).changes, ["-k2"]);
  await f.write("a.csv", "key,n\n"); // a header-only file really has no rows
  assert.deepEqual((await f.round()).changes, ["-k1"]);
});

Deno.test("Engine.round() refuses a round that deletes most keys, or any from an empty source", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\n" + rows(0, 30));
  await f.write("b.csv", "key,n\n" + rows(30, 40));
  await f.round();
  await Deno.remove(join(f.dataDir, "a.csv")); // 30 of 40 keys
  const refused = await f.round();
  assert.deepEqual(refused.changes, [], "nothing sent");
  assert.equal(refused.summary.committed, false);
  assert.equal(refused.summary.refused?.deletes, 30);
  assert.equal(refused.summary.refused?.keys, 40);
  assert.match(refused.summary.refused?.reason ?? "", /75% of its keys, more than the 50%/);
  assert.equal((await f.round()).changes.length, 0, "still refused: nothing was committed");

  await f.write("a.csv", "key,n\n" + rows(0, 15)); // 15 deletes: under the floor of 20
  assert.equal((await f.round()).changes.length, 15);
  await Deno.remove(join(f.dataDir, "a.csv"));
  await Deno.remove(join(f.dataDir, "b.csv"));
  const empty = await f.round();
  assert.match(empty.summary.refused?.reason ?? "", /the source has no files/);
  assert.deepEqual(empty.changes, []);
});

Deno.test("Engine.round()'s delete guard counts a key declared by several files once", async () => {
  await using f = await fixture();
  // Two snapshots of the same 30 keys, and a file of 40 others: 70 keys in 100 declarations.
  await f.write("a.csv", "key,n\n" + rows(0, 30));
  await f.write("b.csv", "key,n\n" + rows(0, 30));
  await f.write("c.csv", "key,n\n" + rows(30, 70));
  assert.equal((await f.round()).changes.length, 70);
  await Deno.remove(join(f.dataDir, "c.csv"));
  const refused = await f.round(); // 40 of 70 keys (a sum over the files said 40 of 100: 40 %)
  assert.deepEqual(refused.changes, [], "nothing sent");
  assert.equal(refused.summary.refused?.deletes, 40);
  assert.equal(refused.summary.refused?.keys, 70);
  assert.match(refused.summary.refused?.reason ?? "", /57% of its keys, more than the 50%/);
});

Deno.test("Engine.round() in chunks: a rename and a key moving to a later chunk's file send no tombstone", async () => {
  await using f = await fixture();
  const oneFileChunks = { chunkFiles: 1, maxDeleteShare: Infinity };
  await f.write("a.csv", "key,n\nK,1\nA,1\n");
  await f.write("b.csv", "key,n\nB,1\n");
  await f.round(oneFileChunks);
  await rename(join(f.dataDir, "a.csv"), join(f.dataDir, "z.csv")); // gone first, back last
  assert.deepEqual((await f.round(oneFileChunks)).changes, [], "a rename sends nothing");
  await f.write("z.csv", "key,n\nA,1\n"); // z lets go of K ...
  await f.write("m.csv", "key,n\nK,2\n"); // ... which a file of an earlier chunk takes
  assert.deepEqual((await f.round(oneFileChunks)).changes, ['+K={"n":"2"}']);
  await f.write("m.csv", "key,n\n"); // m lets go of K, which y (a later chunk) takes
  await f.write("y.csv", "key,n\nK,2\n");
  const moved = await f.round(oneFileChunks);
  assert.deepEqual(moved.changes, [], "the same value from another file: nothing to send");
  assert.deepEqual(f.target.batches, []);
});

Deno.test("Engine.round() commits chunk by chunk: after a failure, the next round resumes", async () => {
  await using f = await fixture();
  for (const name of ["a", "b", "c", "d"]) await f.write(`${name}.csv`, `key,n\n${name}1,1\n`);
  // The second chunk's batch is lost: a's chunk is committed, then b's fails.
  const apply = f.target.apply.bind(f.target);
  let calls = 0;
  f.target.apply = (changes) =>
    ++calls === 2 ? Promise.reject(new Error("broker lost")) : apply(changes);
  const first = await f.round({ chunkFiles: 1 });
  assert.ok(first.summary.applyError !== undefined);
  assert.deepEqual(first.changes, ['+a1={"n":"1"}']);
  f.target.apply = apply;
  const resumed = await f.round({ chunkFiles: 1 });
  assert.equal(resumed.runs, 3, "a, committed in the first chunk, is not run again");
  assert.deepEqual(resumed.changes, ['+b1={"n":"1"}', '+c1={"n":"1"}', '+d1={"n":"1"}']);
});

Deno.test("Engine.round() with two targets commits what each acknowledged; the next round repairs only the failed one", async () => {
  await using f = await fixture();
  const other = new RecordingTarget();
  Object.defineProperty(other, "id", { value: "memory:other" });
  const fn = (): ComponentFn<FileItem> => ({
    memo: true,
    logicFingerprint: fingerprint("both"),
    onDuplicateKey: "error",
    run: async (item) => {
      for await (const row of item.csvRows()) {
        const state = { key: row.values[0]!, value: row.values[1]! };
        declare(f.target, state);
        declare(other, state);
      }
    },
  });
  const round = async () => {
    await using store = await StateStore.open(`file:${join(f.dir, "state.db")}`);
    const engine = new Engine(store, "two");
    engine.addTarget(f.target);
    engine.addTarget(other);
    await engine.load();
    const source = walkDir(f.dataDir, { include: ["**/*.csv"] });
    return await engine.round(fn(), await source.scan(), { fullScan: true });
  };
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  other.failNext = true;
  const failed = await round();
  assert.ok(failed.applyError !== undefined);
  assert.deepEqual(f.target.last(), ["+k1=1", "+k2=2"]);
  assert.deepEqual(other.last(), []);
  await round();
  assert.deepEqual(f.target.last(), [], "nothing re-sent to the target that had it");
  assert.deepEqual(other.last(), ["+k1=1", "+k2=2"], "the failed one is repaired");
  await Deno.remove(join(f.dataDir, "a.csv"));
  await f.write("b.csv", "key,n\nb1,1\n");
  other.failNext = true;
  await round();
  assert.deepEqual(f.target.last(), ["+b1=1"]);
  await round();
  assert.deepEqual(f.target.last(), ["-k1", "-k2"]);
  assert.deepEqual(other.last(), ["+b1=1", "-k1", "-k2"]);
  await round();
  assert.deepEqual([...f.target.last(), ...other.last()], []);
});

Deno.test("Engine.round() with resend upserts every key the file owns again, then nothing", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  await f.write("b.csv", "key,n\nk1,from-b\nb1,1\n");
  await f.write("c.csv", "key,n\nc1,1\n");
  for (const name of ["a.csv", "b.csv", "c.csv"]) await age(join(f.dataDir, name));
  await f.round();
  const resendB = await f.round({ resend: (path) => path === "b.csv", chunkFiles: 1 });
  assert.deepEqual(resendB.changes, ['+b1={"n":"1"}'], "k1 belongs to a.csv: not b's to send");
  assert.equal(resendB.runs, 1, "only the file asked for is parsed, though unchanged");
  assert.equal(resendB.summary.upserts, 1);
  assert.equal(resendB.summary.committed, true);
  const resendA = await f.round({ resend: (path) => path === "a.csv" });
  assert.deepEqual(resendA.changes, ['+k1={"n":"1"}', '+k2={"n":"2"}']);
  const next = await f.round();
  assert.deepEqual(next.changes, [], "the store records what was sent: the next round is quiet");
  assert.equal(next.runs, 0);
});

Deno.test("Engine.round() with resend and dryRun plans the upserts and sends nothing", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\n");
  await f.round();
  const dry = await f.round({ resend: () => true, dryRun: true, keepChanges: true });
  assert.deepEqual(f.target.last(), []);
  assert.deepEqual(dry.summary.changes.map((c) => `${c.kind} ${c.key}`), [
    "upsert k1",
    "upsert k2",
  ]);
  assert.deepEqual((await f.round()).changes, [], "a dry run commits nothing");
});

Deno.test("Engine.round() with resend still sends what changed in the file, and no extra delete", async () => {
  await using f = await fixture();
  await f.write("a.csv", "key,n\nk1,1\nk2,2\nk3,3\n");
  await f.round();
  await f.write("a.csv", "key,n\nk1,1\nk2,20\n");
  const r = await f.round({ resend: (path) => path === "a.csv" });
  assert.deepEqual(r.changes, ['+k1={"n":"1"}', '+k2={"n":"20"}', "-k3"]);
  assert.deepEqual((await f.round({ resend: () => false })).changes, []);
});
