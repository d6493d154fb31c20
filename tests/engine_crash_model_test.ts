// The engine model (see engine_model_test.ts) with two targets, one engine kept across rounds
// (live mode), target failures and hard crashes (a target takes part of a batch and never
// answers: the process is gone, a new engine loads the store). Every key a target is given must
// be in doubt in the store at that moment; memory and store agree on the keys in doubt.
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

const SEQUENCES = Number(process.env.ENGINE_CRASH_SEQUENCES ?? 200);
const FIRST_SEED = Number(process.env.ENGINE_CRASH_SEED ?? 1);
const OPS = 14;
class Crash {
  /** Apply calls left before the crash (undefined: none planned). */
  countdown: number | undefined;
  accept = 0;
  crashed = false;
  signal: (() => void) | undefined;
}

class Topic implements Target<Row> {
  readonly view = new Map<string, string>();
  failNext = false;
  store: StateStore | undefined;
  readonly violations: string[] = [];
  constructor(readonly id: string, readonly crash: Crash) {}
  fingerprint(state: Row) {
    return fingerprint(state.value);
  }
  async apply(changes: ReadonlyArray<Change<Row>>): Promise<void> {
    const inDoubt = (await this.store!.loadInDoubt("model")).get(this.id) ?? new Set();
    for (const c of changes) {
      if (!inDoubt.has(keyId(c.key))) this.violations.push(`${this.id} ${keyId(c.key)}`);
    }
    let accept = changes.length;
    const crash = this.crash;
    if (crash.countdown !== undefined && --crash.countdown <= 0) {
      accept = Math.min(accept, crash.accept);
      crash.countdown = undefined;
      crash.crashed = true;
    }
    for (const change of changes.slice(0, accept)) {
      const id = keyId(change.key);
      if (change.kind === "upsert") this.view.set(id, change.state.value);
      else this.view.delete(id);
    }
    if (crash.crashed) {
      crash.signal?.();
      return new Promise<void>(() => {}); // the process is gone
    }
    if (this.failNext) {
      this.failNext = false;
      throw new Error("broker lost");
    }
  }
}

function expected(committed: Map<string, Map<string, string>>, b: boolean): Map<string, string> {
  const view = new Map<string, string>();
  for (const path of [...committed.keys()].sort()) {
    for (const [key, value] of committed.get(path)!) {
      if (b && value === "0") continue;
      if (!view.has(key)) view.set(key, value);
    }
  }
  return view;
}

/** The file operations' share of the draws; past `break`: rounds that fail or crash. */
const FILE_OPS = { write: 0.25, delete: 0.4, rename: 0.5, edit: 0.62, break: 0.7 };

async function sequence(seed: number): Promise<void> {
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const files = new Map<string, string>();
  const committed = new Map<string, Map<string, string>>();
  const log: string[] = [];
  const crash = new Crash();
  const ta = new Topic("model:a", crash);
  const tb = new Topic("model:b", crash);
  await using store = await StateStore.open(":memory:", { compactRows: 3 });
  ta.store = tb.store = store;
  const fn = componentFn((row) => {
    declare(ta, row);
    if (row.value !== "0") declare(tb, row);
  });
  let clock = 1_000;
  let engine: Engine | undefined;
  const where = () => `seed ${seed}\n${log.join("\n")}`;

  const round = async (mode: "ok" | "fail" | "crash") => {
    if (engine === undefined || rnd() < 0.3) {
      engine = new Engine(store, "model");
      engine.addTarget(ta);
      engine.addTarget(tb);
      await engine.load();
    }
    clock += 10_000;
    const items = [...files].sort(([a], [b]) => a < b ? -1 : 1)
      .map(([path, text]) => new MemoryItem(path, text, clock));
    if (mode === "fail") pick([ta, tb]).failNext = true;
    if (mode === "crash") {
      crash.countdown = 1 + Math.floor(rnd() * 4);
      crash.accept = Math.floor(rnd() * 3);
    }
    const crashed = new Promise<"crashed">((resolve) => crash.signal = () => resolve("crashed"));
    const summary = await Promise.race([
      engine.round(fn, items, {
        fullScan: true,
        maxDeleteShare: Infinity,
        chunkFiles: 1 + Math.floor(rnd() * 3),
        chunkRows: 1 + Math.floor(rnd() * 8),
      }),
      crashed,
    ]);
    ta.failNext = tb.failNext = false;
    crash.countdown = undefined;
    if (summary === "crashed") {
      crash.crashed = false;
      engine = undefined; // the process died: a new one loads the store
      log.push(`round (${mode}): crashed`);
      await new Promise((r) => setTimeout(r, 0));
      return undefined;
    }
    log.push(`round (${mode}): failed ${summary.failed.map((f) => f.path)}`);
    // Memory and store agree on what is in doubt.
    let stored = 0;
    for (const keys of (await store.loadInDoubt("model")).values()) stored += keys.size;
    assert.equal(engine!.inDoubtCount(), stored, `in doubt in memory vs store\n${where()}`);
    return summary;
  };
  const check = async () => {
    const summary = (await round("ok"))!;
    assert.equal(summary.applyError, undefined, where());
    const failed = new Set(summary.failed.map((f) => f.path));
    for (const path of new Set([...committed.keys(), ...files.keys()])) {
      if (failed.has(path)) continue;
      const rows = files.has(path) ? parse(files.get(path)!) : undefined;
      if (rows === undefined) committed.delete(path);
      else committed.set(path, rows);
    }
    for (const [t, b] of [[ta, false], [tb, true]] as const) {
      assert.deepEqual(
        Object.fromEntries([...t.view].sort()),
        Object.fromEntries([...expected(committed, b)].sort()),
        `${t.id} differs from the model\n${where()}`,
      );
    }
    assert.deepEqual(
      [...ta.violations, ...tb.violations],
      [],
      `sent while not in doubt\n${where()}`,
    );
  };

  for (let op = 0; op < OPS; op++) {
    if (!fileOperation({ files, rnd, log }, rnd(), FILE_OPS)) {
      await round(rnd() < 0.5 ? "fail" : "crash");
      if (rnd() < 0.5) await round(rnd() < 0.5 ? "fail" : "crash");
      await check();
      continue;
    }
    if (rnd() < 0.6) await check();
  }
  for (const [path, text] of files) if (parse(text) === undefined) files.delete(path);
  log.push("repair");
  await check();
}

Deno.test(`Engine.round() matches a two-target model with one engine kept across rounds and hard crashes (${SEQUENCES} sequences)`, async () => {
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEQUENCES; seed++) await sequence(seed);
});
