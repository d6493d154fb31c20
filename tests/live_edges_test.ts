// Live mode's decisions, in isolation: which changed files are held as still being written
// (Settling), and when a file that waits on an unreadable owner, or a refused round, goes again
// (runLive() driven by a scripted engine), and whether a data folder replaced in place is watched
// again. End-to-end: live_edges_e2e_test.ts.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ComponentFn,
  Engine,
  type RoundOptions,
  type RoundSummary,
  type SourceItem,
} from "../lib/engine.ts";
import { emptyRoundSummary } from "../lib/round.ts";
import { fingerprint, initFingerprints } from "../lib/fingerprint.ts";
import { declare } from "../lib/target.ts";
import { runLive, Settling } from "../lib/live.ts";
import { FileItem, walkDir } from "../lib/localfs.ts";
import { type ComponentRecord, StateStore } from "../lib/state_store.ts";
import { RecordingTarget } from "./_recording_target.ts";

await initFingerprints();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "statecast-live-edges-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A Settling over files published with the given sizes (mtime 0), and its warnings. */
function settling(published: Record<string, number>) {
  const warnings: string[] = [];
  const engine = {
    componentRecord: (path: string): Partial<ComponentRecord> | undefined =>
      published[path] === undefined ? undefined : { size: published[path], mtimeMs: 0 },
  } as unknown as Engine;
  const s = new Settling(engine, {
    settleMs: 1_000,
    settleMaxMs: 60_000,
    warn: (m) => warnings.push(m),
  });
  return { s, warnings };
}

/** Writes `text` as `dir/path` and gives its item, as modified at `mtimeMs`. */
async function file(dir: string, path: string, text: string, mtimeMs: number): Promise<FileItem> {
  await writeFile(join(dir, path), text);
  return new FileItem(path, join(dir, path), new TextEncoder().encode(text).length, mtimeMs);
}

const rows = (n: number) => "id,v\n" + Array.from({ length: n }, (_, i) => `k${i},${i}\n`).join("");
const T = 1_000_000; // a file's mtime; "now" is given relative to it

for (
  const [name, text, publishedSize, now, held] of [
    ["sends a complete edit at once", rows(20), rows(20).length, T + 100, false],
    ["sends an edit that removes one row of twenty at once", rows(19), rows(20).length, T, false],
    ["sends a new file that ends with a line break at once", rows(3), undefined, T, false],
    ["holds an empty file", "", rows(20).length, T + 100, true],
    ["holds a file that lost half its size", rows(10), rows(20).length, T + 100, true],
    ["holds a file whose last line has no line break", rows(3) + "k9,", undefined, T, true],
    ["sends an empty file that has been quiet for the settle window", "", 99, T + 1_000, false],
  ] as const
) {
  Deno.test(`Settling ${name}`, async () => {
    await withDir(async (dir) => {
      const { s } = settling(publishedSize === undefined ? {} : { "a.csv": publishedSize });
      const item = await file(dir, "a.csv", text, T);
      assert.equal((await s.ready([item], now)).length, held ? 0 : 1);
      assert.deepEqual(s.paths(), held ? ["a.csv"] : []);
    });
  });
}

Deno.test("Settling keeps a held file held, however complete it looks, until it is quiet", async () => {
  await withDir(async (dir) => {
    const { s } = settling({ "a.csv": rows(40).length });
    assert.deepEqual(await s.ready([await file(dir, "a.csv", "", T)], T + 50), []);
    // The writer goes on; a chunk that happens to end with a line break is not the end.
    const growing = await file(dir, "a.csv", rows(10), T + 200);
    assert.deepEqual(await s.ready([growing], T + 250), []);
    assert.equal(s.recheckAt([growing]), T + 1_200, "checked again when quiet for 1 s");
    const done = await file(dir, "a.csv", rows(40), T + 400);
    assert.deepEqual(await s.ready([done], T + 900), []);
    assert.deepEqual(await s.ready([done], T + 1_400), [done]);
    assert.deepEqual(s.paths(), []);
  });
});

Deno.test("Settling learns that a file ends without a line break and then sends it at once", async () => {
  await withDir(async (dir) => {
    const { s } = settling({ "a.csv": 14 });
    const first = await file(dir, "a.csv", "id,v\nk1,1\nk2,2", T);
    assert.deepEqual(await s.ready([first], T + 100), []);
    assert.deepEqual(await s.ready([first], T + 1_000), [first]);
    const edited = await file(dir, "a.csv", "id,v\nk1,1\nk2,3", T + 5_000);
    assert.deepEqual(await s.ready([edited], T + 5_050), [edited]);
  });
});

Deno.test("Settling sends a file that keeps changing after settleMaxMs, with a warning", async () => {
  await withDir(async (dir) => {
    const { s, warnings } = settling({});
    assert.deepEqual(await s.ready([await file(dir, "a.csv", "id,v\nk", T)], T), []);
    const later = await file(dir, "a.csv", "id,v\nk1,1\nk", T + 59_990);
    assert.deepEqual(await s.ready([later], T + 59_999), []);
    assert.equal(s.recheckAt([later]), T + 60_000);
    assert.deepEqual(await s.ready([later], T + 60_000), [later]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /"a.csv" has kept changing for 60 s: publishing it as it is now/);
  });
});

/**
 * An engine that runs nothing: it records the paths of every round and answers with what the
 * test scripts (a failure that waits on another file, a refusal).
 */
class ScriptedEngine extends Engine {
  rounds: Array<{ at: number; paths: string[] }> = [];
  answer: (paths: string[]) => Partial<RoundSummary> = () => ({});

  constructor() {
    super(undefined as unknown as StateStore, "scripted");
  }

  override knownComponents(): string[] {
    return ["a.csv", "b.csv"];
  }

  override componentRecord(): undefined {
    return undefined;
  }

  override round<I extends SourceItem>(
    _fn: ComponentFn<I>,
    items: ReadonlyArray<I>,
    options: RoundOptions<I> = {},
  ): Promise<RoundSummary> {
    const paths = [...items.map((i) => i.path), ...options.removed ?? []].sort();
    this.rounds.push({ at: Date.now(), paths });
    return Promise.resolve({
      ...emptyRoundSummary(),
      scanned: paths.length,
      gone: [...options.removed ?? []].length,
      processed: paths.length,
      committed: true,
      ...this.answer(paths),
    });
  }
}

const FN: ComponentFn<FileItem> = {
  memo: true,
  logicFingerprint: fingerprint("scripted"),
  onDuplicateKey: "error",
  run: () => Promise.resolve(),
};

/** Runs `runLive()` over `dir` with a scripted engine for the duration of `fn`. */
async function scripted(
  dir: string,
  fn: (engine: ScriptedEngine) => Promise<void>,
): Promise<void> {
  await writeFile(join(dir, "a.csv"), "id,v\nK,fromA\n");
  await writeFile(join(dir, "b.csv"), "id,v\nK,fromB\n");
  const engine = new ScriptedEngine();
  const controller = new AbortController();
  const source = walkDir(dir, { include: ["*.csv"], debounceMs: 20, rescanIntervalMs: 0 });
  let ready!: () => void;
  const watching = new Promise<void>((r) => ready = r);
  const live = runLive(engine, FN, source, {
    signal: controller.signal,
    onRound: () => {},
    onError: (error) => {
      throw error;
    },
    onReady: ready,
  });
  try {
    await watching;
    await sleep(100);
    await fn(engine);
  } finally {
    controller.abort();
    await live;
  }
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** a.csv fails waiting on b.csv until `fixed()` says b.csv is readable. */
const waitsOnB = (fixed: () => boolean) => (paths: string[]): Partial<RoundSummary> =>
  paths.includes("a.csv") && !fixed()
    ? { failed: [{ path: "a.csv", error: new Error("waits"), blockedBy: "b.csv" }] }
    : {};

Deno.test("runLive() puts a file that waits into the round of its blocker's change", async () => {
  await withDir(async (dir) => {
    await scripted(dir, async (engine) => {
      let fixed = false;
      engine.answer = waitsOnB(() => fixed);
      await rm(join(dir, "a.csv"));
      await until(() => engine.rounds.length === 1, "the round of the deletion");
      assert.deepEqual(engine.rounds[0]!.paths, ["a.csv"]);
      fixed = true;
      const changed = Date.now();
      await writeFile(join(dir, "b.csv"), "id,v\nK,fixed\n");
      await until(() => engine.rounds.length === 2, "the round of the blocker's change");
      assert.deepEqual(engine.rounds[1]!.paths, ["a.csv", "b.csv"]);
      // Not the retry on a pause (the first one is 1 s after the failure).
      assert.ok(engine.rounds[1]!.at - changed < 500);
      await sleep(1_500);
      assert.equal(engine.rounds.length, 2, "it waits no more: no retry");
    });
  });
});

Deno.test("runLive() retries a file that waits on a growing pause", async () => {
  await withDir(async (dir) => {
    await scripted(dir, async (engine) => {
      let fixed = false;
      engine.answer = waitsOnB(() => fixed);
      await rm(join(dir, "a.csv"));
      await until(() => engine.rounds.length === 3, "two retries", 6_000);
      const [first, second, third] = engine.rounds.map((r) => r.at);
      assert.deepEqual(engine.rounds.map((r) => r.paths), [["a.csv"], ["a.csv"], ["a.csv"]]);
      const gaps = [second! - first!, third! - second!];
      assert.ok(gaps[0]! >= 900 && gaps[0]! < 1_600, `first pause ${gaps[0]} ms`);
      assert.ok(gaps[1]! >= 1_900 && gaps[1]! < 2_600, `second pause ${gaps[1]} ms`);
      fixed = true; // the owner became readable without an event (a permission restored)
      await until(() => engine.rounds.length === 4, "the third retry", 6_000);
      await sleep(4_500);
      assert.equal(engine.rounds.length, 4, "nothing waits: no more retries");
    });
  });
});

Deno.test("runLive() holds a round a delete guard refused until the next event, without retrying", async () => {
  await withDir(async (dir) => {
    await scripted(dir, async (engine) => {
      let refuse = true;
      engine.answer = () =>
        refuse
          ? { committed: false, refused: { target: "t", deletes: 1, keys: 2, reason: "" } }
          : {};
      await rm(join(dir, "a.csv"));
      await until(() => engine.rounds.length === 1, "the refused round");
      await sleep(2_000);
      assert.equal(engine.rounds.length, 1, "no retry of a refused round");
      refuse = false;
      await writeFile(join(dir, "c.csv"), "id,v\nc,1\n");
      await until(() => engine.rounds.length === 2, "the round of the next event");
      assert.deepEqual(engine.rounds[1]!.paths, ["a.csv", "c.csv"], "the held deletion goes too");
    });
  });
});

Deno.test("runLive() watches a data folder replaced in place (rm -rf && mkdir), again and again", async () => {
  await withDir(async (dir) => {
    const data = join(dir, "data");
    await mkdir(data);
    await writeFile(join(data, "a.csv"), "key,n\nk,0\n");
    const target = new RecordingTarget();
    const fn: ComponentFn<FileItem> = {
      memo: true,
      logicFingerprint: fingerprint("replaced"),
      onDuplicateKey: "error",
      run: async (item) => {
        for await (const row of item.csvRows()) {
          declare(target, { key: row.get("key")!, value: row.get("n")! });
        }
      },
    };
    const store = await StateStore.open(`file:${join(dir, "state.db")}`);
    const controller = new AbortController();
    const warnings: string[] = [];
    try {
      const engine = new Engine(store, "replaced");
      engine.addTarget(target);
      await engine.load();
      const source = walkDir(data, { include: ["*.csv"], debounceMs: 20 });
      await engine.round(fn, await source.scan(), { fullScan: true });
      target.last();
      const live = runLive(engine, fn, source, {
        signal: controller.signal,
        onRound: () => {},
        onError: (error) => {
          throw error;
        },
        onWarning: (message) => warnings.push(message),
      });
      await sleep(100);
      for (let i = 1; i <= 8; i++) {
        await rm(data, { recursive: true });
        await mkdir(data);
        await writeFile(join(data, "a.csv"), `key,n\nk,${i}\n`);
        await until(() => target.batches.length > 0, `the rescan of folder ${i}`);
        assert.deepEqual(target.last(), [`+k=${i}`]);
        // The new folder is watched: an edit in it is seen.
        await writeFile(join(data, "a.csv"), `key,n\nk,${i}x\n`);
        await until(() => target.batches.length > 0, `the edit in folder ${i}`);
        assert.deepEqual(target.last(), [`+k=${i}x`]);
      }
      controller.abort();
      await live;
      assert.ok(warnings.every((w) => /is gone|is back|was replaced/.test(w)), warnings.join("\n"));
    } finally {
      controller.abort();
      store.close();
    }
  });
});
