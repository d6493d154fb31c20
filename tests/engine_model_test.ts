// A model-based test of the engine, in process: seeded random sequences of file operations
// (create, edit, delete, rename, keys moving between files, a key declared by files in different
// chunks, broken files and their fixes, a crash between apply and commit), each followed by a
// round with tiny chunks, and after every round the target must hold exactly what a naive
// reference model says. `ENGINE_MODEL_SEQUENCES` and `ENGINE_MODEL_SEED` run more or other seeds.
import assert from "node:assert/strict";
import process from "node:process";
import { Engine } from "../lib/engine.ts";
import { fingerprint, initFingerprints } from "../lib/fingerprint.ts";
import { keyId } from "../lib/key_id.ts";
import { StateStore } from "../lib/state_store.ts";
import { type Change, declare, type Target } from "../lib/target.ts";
import {
  componentFn,
  fileOperation,
  MemoryItem,
  parse,
  random,
  type Row,
} from "./_engine_model.ts";

await initFingerprints();

const SEQUENCES = Number(process.env.ENGINE_MODEL_SEQUENCES ?? 500);
const FIRST_SEED = Number(process.env.ENGINE_MODEL_SEED ?? 1);
const OPS = 14;
/**
 * Seeds that failed once, run every time: in 51391 and 53382 a file committed earlier in the round
 * (or unchanged) ran again for its value at the end of the round and was reported failed; in
 * 51804 and 53004 a deleted file giving keys to two unreadable owners was not reported at all.
 */
const REGRESSION_SEEDS = [51391, 51804, 53004, 53382];
/** The topic: a compacted view, plus what each round sent, in order. */
class Topic implements Target<Row> {
  readonly id = "model:topic";
  readonly view = new Map<string, string>();
  sent: string[] = [];
  /** Accept this many changes of the next apply, then fail: a crash before the commit. */
  failAfter: number | undefined;
  fingerprint(state: Row) {
    return fingerprint(state.value);
  }
  apply(changes: ReadonlyArray<Change<Row>>): Promise<void> {
    let accept = changes.length;
    if (this.failAfter !== undefined) accept = Math.min(accept, this.failAfter);
    for (const change of changes.slice(0, accept)) {
      const id = keyId(change.key);
      this.sent.push(`${change.kind === "upsert" ? "+" : "-"}${id}`);
      if (change.kind === "upsert") this.view.set(id, change.state.value);
      else this.view.delete(id);
    }
    if (accept < changes.length || this.failAfter !== undefined) {
      this.failAfter = undefined;
      return Promise.reject(new Error("broker lost"));
    }
    return Promise.resolve();
  }
}

/** What the target must hold: per key, the value of the first path that declares it. */
function expected(committed: Map<string, Map<string, string>>): Map<string, string> {
  const view = new Map<string, string>();
  for (const path of [...committed.keys()].sort()) {
    for (const [key, value] of committed.get(path)!) if (!view.has(key)) view.set(key, value);
  }
  return view;
}

/** The file operations' share of the draws; past `break`: a revert, else a crash round. */
const FILE_OPS = { write: 0.25, delete: 0.4, rename: 0.5, edit: 0.65, break: 0.75 };

async function sequence(seed: number): Promise<void> {
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const files = new Map<string, string>();
  const history: string[] = [];
  /** What the engine committed per path, as the model sees it. */
  const committed = new Map<string, Map<string, string>>();
  const log: string[] = [];
  const topic = new Topic();
  const fn = componentFn((row) => declare(topic, row));
  // Compacts the key index every few entries, so sequences cross many compactions.
  await using store = await StateStore.open(":memory:", { compactRows: 3 });
  let clock = 1_000;

  const round = async (crash: boolean) => {
    const engine = new Engine(store, "model");
    engine.addTarget(topic);
    await engine.load();
    clock += 10_000;
    const items = [...files].sort(([a], [b]) => a < b ? -1 : 1)
      .map(([path, text]) => new MemoryItem(path, text, clock));
    topic.sent = [];
    if (crash) topic.failAfter = Math.floor(rnd() * 3);
    const summary = await engine.round(fn, items, {
      fullScan: true,
      maxDeleteShare: Infinity,
      chunkFiles: 1 + Math.floor(rnd() * 3),
      chunkRows: 1 + Math.floor(rnd() * 8),
    });
    topic.failAfter = undefined; // a crash round that sent nothing
    const failed = summary.failed.map((f) => f.blockedBy ? `${f.path}<${f.blockedBy}` : f.path);
    log.push(`round${crash ? " (crash)" : ""}: sent ${topic.sent.join(" ")}; failed ${failed}`);
    return summary;
  };
  const check = async () => {
    const summary = await round(false);
    const where = () => `seed ${seed}\n${log.join("\n")}`;
    assert.equal(summary.applyError, undefined, where());
    const failed = new Map(summary.failed.map((f) => [f.path, f]));
    for (const [path, f] of failed) {
      const blocker = f.blockedBy;
      const broken = (p: string) => files.has(p) && parse(files.get(p)!) === undefined;
      assert.ok(
        broken(path) || (blocker !== undefined && (broken(blocker) || failed.has(blocker))),
        `"${path}" failed but is neither broken nor waiting on a broken file\n${where()}`,
      );
    }
    for (const path of new Set([...committed.keys(), ...files.keys()])) {
      if (failed.has(path)) continue;
      const rows = files.has(path) ? parse(files.get(path)!) : undefined;
      if (rows === undefined) committed.delete(path);
      else committed.set(path, rows);
    }
    assert.deepEqual(
      Object.fromEntries([...topic.view].sort()),
      Object.fromEntries([...expected(committed)].sort()),
      `the target differs from the model\n${where()}`,
    );
    // One action per key and round: never a tombstone followed by an upsert.
    const deleted = new Set<string>();
    for (const m of topic.sent) {
      if (m.startsWith("-")) deleted.add(m.slice(1));
      else assert.ok(!deleted.has(m.slice(1)), `tombstone then upsert of ${m}\n${where()}`);
    }
  };

  for (let op = 0; op < OPS; op++) {
    const r = rnd();
    if (!fileOperation({ files, rnd, log }, r, FILE_OPS)) {
      if (r < 0.85 && history.length > 0) {
        const path = pick([...files.keys()]);
        files.set(path, pick(history));
        log.push(`revert ${path}: ${JSON.stringify(files.get(path))}`);
      } else {
        await round(true);
        await check();
        continue;
      }
    }
    for (const text of files.values()) if (parse(text) !== undefined) history.push(text);
    if (rnd() < 0.6) await check();
  }
  // Repair everything: the target must equal the files.
  for (const [path, text] of files) if (parse(text) === undefined) files.delete(path);
  log.push("repair: broken files deleted");
  await check();
  assert.deepEqual(
    Object.fromEntries([...topic.view].sort()),
    Object.fromEntries([...expected(committed)].sort()),
  );
}

Deno.test(`Engine.round() matches a reference model over ${SEQUENCES} random sequences with tiny chunks and crashes`, async () => {
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEQUENCES; seed++) await sequence(seed);
});

Deno.test(`Engine.round() matches the reference model for the seeds that once failed`, async () => {
  for (const seed of REGRESSION_SEEDS) await sequence(seed);
});
