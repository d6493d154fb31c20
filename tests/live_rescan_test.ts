// runLive() repairs what the watcher cannot see with its periodic full rescan. A file reached
// through a symlink changes without any event in the watched folder: only a rescan finds it.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ComponentFn, Engine } from "../lib/engine.ts";
import { declare } from "../lib/target.ts";
import { fingerprint, initFingerprints } from "../lib/fingerprint.ts";
import { runLive } from "../lib/live.ts";
import { DirSource, type FileItem, walkDir } from "../lib/localfs.ts";
import { StateStore } from "../lib/state_store.ts";
import { RecordingTarget } from "./_recording_target.ts";

await initFingerprints();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Each row `key,n` of a file declares `n` under `key` on `target`. */
function csvComponent(target: RecordingTarget): ComponentFn<FileItem> {
  return {
    memo: true,
    logicFingerprint: fingerprint("live-test"),
    onDuplicateKey: "error",
    run: async (item) => {
      for await (const row of item.csvRows()) {
        declare(target, { key: row.get("key")!, value: row.get("n")! });
      }
    },
  };
}

for (
  const [name, rescanIntervalMs, expectRescan] of [
    ["finds a change no event reported with the periodic rescan", 300, true],
    ["does not rescan when the interval is 0", 0, false],
  ] as const
) {
  Deno.test(`runLive() ${name}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "statecast-rescan-"));
    const data = join(dir, "data");
    await mkdir(data);
    await writeFile(join(dir, "outside.csv"), "key,n\nk1,1\n");
    await symlink(join(dir, "outside.csv"), join(data, "linked.csv"));
    const target = new RecordingTarget();
    const fn = csvComponent(target);
    const controller = new AbortController();
    const store = await StateStore.open(`file:${join(dir, "state.db")}`);
    try {
      const engine = new Engine(store, "rescan");
      engine.addTarget(target);
      await engine.load();
      const source = walkDir(data, {
        include: ["**/*.csv"],
        rescanIntervalMs,
        debounceMs: 20,
        followExternalSymlinks: true, // the link leads out of data/
      });
      await engine.round(fn, await source.scan(), { fullScan: true });
      assert.deepEqual(target.last(), ["+k1=1"]);

      let rounds = 0;
      const live = runLive(engine, fn, source, {
        signal: controller.signal,
        onRound: () => void rounds++,
        onError: (error) => {
          throw error;
        },
      });
      await sleep(100);
      await writeFile(join(dir, "outside.csv"), "key,n\nk1,2\n"); // no event under data/
      if (expectRescan) {
        await until(() => target.batches.length > 0, "the rescan to send the change");
        assert.deepEqual(target.last(), ["+k1=2"]);
      } else {
        await sleep(1_000);
        assert.deepEqual(target.last(), [], "without rescans the change stays unseen");
        assert.equal(rounds, 0);
      }
      controller.abort();
      await live;
    } finally {
      controller.abort();
      store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

Deno.test("runLive() reports a round that cannot run and tries again after a pause", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-rescan-"));
  const data = join(dir, "data");
  await mkdir(data);
  await writeFile(join(data, "a.csv"), "key,n\nk1,1\n");
  const target = new RecordingTarget();
  const fn = csvComponent(target);
  // A source whose next full scan fails once, as an I/O error would (a sub-folder that cannot be
  // read is not one: it is reported, and the rest of the scan goes on).
  class FlakySource extends DirSource {
    failures = 0;
    failNext = false;
    override scanTree(under = ""): ReturnType<DirSource["scanTree"]> {
      if (this.failNext) {
        this.failNext = false;
        this.failures++;
        return Promise.reject(new Error("cannot read a folder"));
      }
      return super.scanTree(under);
    }
  }
  const source = new FlakySource(data, { include: ["**/*.csv"], rescanIntervalMs: 200 });
  const controller = new AbortController();
  const errors: string[] = [];
  const store = await StateStore.open(`file:${join(dir, "state.db")}`);
  try {
    const engine = new Engine(store, "retry");
    engine.addTarget(target);
    await engine.load();
    await engine.round(fn, await source.scan(), { fullScan: true });
    target.last();
    source.failNext = true;
    await writeFile(join(data, "a.csv"), "key,n\nk1,2\n");
    const live = runLive(engine, fn, source, {
      signal: controller.signal,
      onRound: () => {},
      onError: (error) => errors.push(String(error)),
    });
    await until(() => target.batches.length > 0, "the retried round to send the change");
    assert.equal(source.failures, 1);
    assert.deepEqual(errors, ["Error: cannot read a folder"]);
    assert.deepEqual(target.last(), ["+k1=2"]);
    controller.abort();
    await live;
  } finally {
    controller.abort();
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("a state store inside the source folder is never an item, and its writes start no round", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-own-"));
  await writeFile(join(dir, "a.csv"), "key,n\nk1,1\n");
  const target = new RecordingTarget();
  const fn = csvComponent(target);
  // No include: every file of the folder is an item, as for `walkDir(".")` with the store in it.
  const source = walkDir(dir, { debounceMs: 20, rescanIntervalMs: 0 });
  const controller = new AbortController();
  const errors: string[] = [];
  const store = await StateStore.open(`file:${join(dir, "state.db")}`);
  try {
    const engine = new Engine(store, "own");
    engine.addTarget(target);
    await engine.load();
    const paths = async () => (await source.scan()).map((item) => item.path).sort();
    assert.deepEqual(await paths(), ["a.csv"], "not state.db, its -wal or its -shm");
    const first = await engine.round(fn, await source.scan(), { fullScan: true });
    assert.deepEqual(first.failed, []);
    assert.deepEqual(target.last(), ["+k1=1"]);
    assert.deepEqual(await paths(), ["a.csv"], "after a commit wrote the store");

    let rounds = 0;
    const live = runLive(engine, fn, source, {
      signal: controller.signal,
      onRound: () => void rounds++,
      onError: (error) => errors.push(String(error)),
    });
    await sleep(200);
    await writeFile(join(dir, "a.csv"), "key,n\nk1,2\n");
    await until(() => target.batches.length > 0, "the edit to be sent");
    assert.deepEqual(target.last(), ["+k1=2"]);
    const after = rounds;
    await sleep(1_000); // the edit's commit wrote the store: no round comes of that
    assert.equal(rounds - after, 0, "rounds after the edit's");
    assert.deepEqual(errors, []);
    controller.abort();
    await live;
  } finally {
    controller.abort();
    store.close();
  }
  // Once the store is closed, its files are files like any other.
  assert.ok((await source.scan()).some((item) => item.path === "state.db"));
  await rm(dir, { recursive: true, force: true });
});
