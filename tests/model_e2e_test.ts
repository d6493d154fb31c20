// Model-based end to end: seeded random operations on a folder of CSV files (create, delete,
// rename, move, edit cells, add and remove rows, share keys, break and fix files, revert to an
// earlier version), main.ts run as a process against the real broker every few operations, and
// what landed (read back with kcat) compared with a reference model of the files (./_model.ts).
//
// Catch-up: after every run, the exit code, the messages the run sent (one per changed key,
// nothing for an unchanged one) and the topic's compacted view must equal the model's exactly,
// also after runs with broken files: the model covers waiting (a file that gives a key to an
// unreadable file waits whole). Live: `main.ts --live` runs while the operations happen; whenever
// every file is valid, the topic must converge to the files.
//
// More seeds by hand: MODEL_SEEDS=1-200 MODEL_OPS=150 deno test -A tests/model_e2e_test.ts
// (MODEL_LIVE_SEEDS, MODEL_LIVE_OPS for the live variant).
import { readTopic } from "./_kafka_readback.ts";
import {
  applyActions,
  CatchUpModel,
  compactedView,
  countFrom,
  declared,
  describeDiff,
  ownerTable,
  Rng,
  seedsFrom,
  type Table,
} from "./_model.ts";
import { Folder, type Op } from "./_model_ops.ts";
import { BROKERS, type Pipeline, pipeline } from "./_pipeline.ts";

/** The runs delete files on purpose: the guard against mass retraction is tested elsewhere. */
const ALLOW_DELETES: string[] = ["--allow-deletes"];

// Seeds 3 and 4 delete a file that hands a key to an unreadable file (issue 7, finding 1); in seed
// 40 a file hands a key to an unreadable owner only once another file that gives keys waits, and
// must wait too.
// Seed 40 differs from this model at run 32: a gone file gives up a key that another, changed file
// also gives up later in the round to an owner that cannot be read. The model makes both wait
// whole; the engine (gone files first, in their own chunk) retracts the gone file's other keys,
// which nobody declares, and the key stays with the changed file, which waits. Nothing is lost
// (the topic converges once the owner is fixed), but the model is stricter: a known difference.
const SEEDS = seedsFrom("MODEL_SEEDS", [3, 4, 5]);
const OPS = countFrom("MODEL_OPS", 150);
// In seed 2 a file waits for an unreadable one, which is then fixed (issue 7, finding 2).
const LIVE_SEEDS = seedsFrom("MODEL_LIVE_SEEDS", [2, 4]);
const LIVE_OPS = countFrom("MODEL_LIVE_OPS", 80);
/** How long live mode may take to converge after the last operation. */
const CONVERGE_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const seed of SEEDS) {
  Deno.test(`main.ts keeps the topic equal to a model of the files over random operations (seed ${seed})`, async () => {
    await catchUpTrial(seed, OPS);
  });
}

for (const seed of LIVE_SEEDS) {
  Deno.test(`main.ts --live converges to a model of the files over random operations (seed ${seed})`, async () => {
    await liveTrial(seed, LIVE_OPS);
  });
}

/**
 * A random operation that keeps every round below the mass-retraction guard: at most 10
 * tombstones or at most half of the published keys, and never every key. Rejected operations
 * are undone and another is drawn.
 */
function guardedOp(folder: Folder, model: CatchUpModel): Op {
  for (let tries = 0;; tries++) {
    const snapshot = folder.snapshot();
    const op = folder.randomOp(tries < 20 ? undefined : ["create", "addRow", "fix"]);
    const published = model.topic().size;
    const deletes = model.round(folder.files, { preview: true }).sent
      .filter((m) => m.endsWith("=null")).length;
    const tooMany = (deletes > 10 && deletes * 2 > published) ||
      (deletes > 0 && deletes === published);
    if (!tooMany || tries >= 40) return op;
    folder.restore(snapshot);
  }
}

async function catchUpTrial(seed: number, ops: number): Promise<void> {
  await using p = await pipeline(`model-${seed}`);
  const trial = new CatchUpTrial(seed, ops, p);
  const rng = new Rng(seed ^ 0x5eed);
  let untilRun = 1 + rng.int(6);
  for (let i = 1; i <= ops; i++) {
    await trial.apply(`${i}`, guardedOp(trial.folder, trial.model));
    if (--untilRun === 0) {
      await trial.check();
      untilRun = 1 + rng.int(6);
    }
  }
  for (const op of trial.folder.fixAll()) await trial.apply("end", op);
  await trial.check();
  await trial.check(); // and once more: nothing left to send
}

/** Catch-up runs over random operations, each checked against the model. */
class CatchUpTrial {
  readonly model = new CatchUpModel();
  readonly folder: Folder;
  readonly #log: string[] = [];
  /** Messages read so far, by partition and offset. */
  readonly #seen = new Set<string>();
  #runs = 0;

  constructor(readonly seed: number, readonly ops: number, readonly p: Pipeline) {
    this.folder = new Folder(new Rng(seed));
  }

  async apply(step: string, op: Op): Promise<void> {
    this.#log.push(`${step}. ${op.describe}`);
    await applyActions(this.p.data, op.actions);
  }

  /** Runs main.ts once: its exit code, what it sent and the topic must be the model's. */
  async check(): Promise<void> {
    const expected = this.model.round(this.folder.files);
    const run = await this.p.run({ args: ALLOW_DELETES });
    const messages = await readTopic(this.p.topic, { brokers: BROKERS, fetchWaitMs: 10 });
    const fresh = messages.filter((m) => !this.#seen.has(`${m.partition}:${m.offset}`));
    for (const m of fresh) this.#seen.add(`${m.partition}:${m.offset}`);
    this.#log.push(
      `-- run ${++this.#runs}: expected exit ${expected.exitCode}, failed [${expected.failed}], ` +
        `waiting [${expected.waiting}], ${expected.sent.length} messages`,
    );
    const problems: string[] = [];
    if (run.code !== expected.exitCode) problems.push(`exit code ${run.code}`);
    for (const path of [...expected.failed, ...expected.waiting]) {
      if (!run.stderr.includes(`"${path}"`)) problems.push(`stderr does not name "${path}"`);
    }
    // Every change the model expects is the last message of its key in this run. A round runs in
    // chunks: a file run ahead of its chunk (it takes over a key) may also send an upsert that a
    // file of a later chunk then replaces (README, "State store"), so extra upserts are allowed;
    // an extra tombstone never is, and the compacted view below must still be exact.
    const sent = fresh.map((m) => `${m.key}=${m.value ?? "null"}`).sort();
    const last = new Map(fresh.map((m) => [m.key, `${m.key}=${m.value ?? "null"}`]));
    const expectedKeys = new Set(expected.sent.map((m) => m.slice(0, m.indexOf("="))));
    const missing = expected.sent.filter((m) => last.get(m.slice(0, m.indexOf("="))) !== m);
    const extraTombstones = fresh.filter((m) => m.value === null && !expectedKeys.has(m.key ?? ""));
    if (missing.length > 0 || extraTombstones.length > 0) {
      const show = (lines: string[]) => lines.map((l) => `\n  ${l}`).join("");
      problems.push(`the run sent:${show(sent)}\nexpected:${show(expected.sent)}`);
    }
    if (this.folder.broken().length === 0) {
      // The model's own check: with every file valid, nothing waits and the topic is the files.
      const files = new Map([...this.folder.files].map(([path, s]) => [path, declared(s)!]));
      const modelDiff = describeDiff(ownerTable(files), expected.topic);
      if (modelDiff) problems.push(`the model is wrong: it differs from the files:\n${modelDiff}`);
    }
    const diff = describeDiff(expected.topic, compactedView(messages));
    if (diff) problems.push(`the topic's compacted view differs from the model:\n${diff}`);
    if (problems.length === 0) return;
    throw new Error(
      `seed ${this.seed}, run ${this.#runs}: ${problems.join("\n")}\n\nmain.ts stderr:\n` +
        `${run.stderr}\noperations (MODEL_SEEDS=${this.seed} MODEL_OPS=${this.ops} reproduces):\n` +
        this.#log.join("\n"),
    );
  }
}

/** A running `main.ts --live`: its stderr is collected in `log`. */
class LiveProcess implements AsyncDisposable {
  log = "";
  /** The exit code, once the process has ended (by itself or stopped). */
  exitCode: number | undefined;
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;
  #status: Promise<Deno.CommandStatus> | undefined;

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    child.status.then((s) => this.exitCode = s.code);
    const decoder = new TextDecoder();
    this.#reading = (async () => {
      for await (const chunk of child.stderr) this.log += decoder.decode(chunk, { stream: true });
    })();
  }

  async waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!pattern.test(this.log)) {
      if (Date.now() > until) {
        throw new Error(`no ${pattern} in the log after ${timeoutMs} ms:\n${this.log}`);
      }
      await sleep(50);
    }
  }

  /** Sends `signal` (once) and returns the exit code. */
  async stop(signal: Deno.Signal): Promise<number> {
    if (this.#status === undefined) {
      try {
        this.#child.kill(signal);
      } catch {
        // it has ended by itself; its status and log say why
      }
      this.#status = this.#child.status;
    }
    const { code } = await this.#status;
    await this.#reading;
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}

async function liveTrial(seed: number, ops: number): Promise<void> {
  await using p = await pipeline(`live-model-${seed}`);
  const folder = new Folder(new Rng(seed), { atomicWrites: 0.3 });
  const model = new CatchUpModel(); // as of the last convergence: for the deletion guard only
  const rng = new Rng(seed ^ 0x11fe);
  const log: string[] = [];
  for (let i = 0; i < 3; i++) {
    const op = folder.randomOp(["create"]);
    log.push(`start. ${op.describe}`);
    await applyActions(p.data, op.actions);
  }
  await using live = new LiveProcess(p.spawn({ args: ["--live", ...ALLOW_DELETES] }));
  await live.waitForLog(/watching "/);
  const converge = async (step: string) => {
    log.push(`-- ${step}: every file valid, the topic must converge`);
    const expected = model.round(folder.files).topic;
    const diff = await convergence(p.topic, expected, () => live.exitCode === undefined);
    if (diff) {
      const why = live.exitCode === undefined
        ? `after ${CONVERGE_MS} ms the topic still differs from the files`
        : `main.ts --live ended with exit code ${live.exitCode}; the topic differs from the files`;
      throw new Error(
        `seed ${seed}, ${step}: ${why}:\n` +
          `${diff}\n\nmain.ts --live stderr:\n${live.log}\n` +
          `operations (MODEL_LIVE_SEEDS=${seed} MODEL_LIVE_OPS=${ops} reproduces):\n${
            log.join("\n")
          }`,
      );
    }
  };
  await converge("the catch-up");
  let sinceCheck = 0;
  for (let i = 1; i <= ops; i++) {
    const op = guardedOp(folder, model);
    log.push(`${i}. ${op.describe}`);
    await applyActions(p.data, op.actions);
    await sleep(rng.int(150));
    if (++sinceCheck >= 15) {
      for (const fix of folder.fixAll()) {
        log.push(`${i}. ${fix.describe}`);
        await applyActions(p.data, fix.actions);
      }
    }
    if (sinceCheck >= 8 && folder.broken().length === 0) {
      await converge(`after operation ${i}`);
      sinceCheck = 0;
    }
  }
  for (const fix of folder.fixAll()) {
    log.push(`end. ${fix.describe}`);
    await applyActions(p.data, fix.actions);
  }
  await converge("the end");
  const code = await live.stop("SIGINT");
  if (code !== 130) {
    throw new Error(`seed ${seed}: SIGINT ended main.ts --live with ${code}, not 130`);
  }
}

/**
 * Reads the topic until its compacted view equals `expected` and still does half a second
 * later (nothing stray arrives after it); "" then, else the last difference after CONVERGE_MS
 * or as soon as `running()` says the live process has ended.
 */
async function convergence(
  topic: string,
  expected: Table,
  running: () => boolean,
): Promise<string> {
  const until = Date.now() + CONVERGE_MS;
  let diff = "";
  for (let equalSince: number | undefined;;) {
    const messages = await readTopic(topic, { brokers: BROKERS, fetchWaitMs: 10 });
    diff = describeDiff(expected, compactedView(messages));
    if (diff) equalSince = undefined;
    else if (equalSince === undefined) equalSince = Date.now();
    else if (Date.now() - equalSince >= 500) return "";
    if (Date.now() > until || (diff && !running())) return diff;
    await sleep(100);
  }
}
