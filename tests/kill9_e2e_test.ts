// kill -9 during catch-up, end to end: main.ts runs over tens of thousands of rows against the
// real broker and is killed (SIGKILL) at a seeded random moment: before it connects, while it
// reads, while it sends, between the broker's acks and the commit, or not at all. Files are
// sometimes edited or reverted between a kill and the next run. After a final complete run the
// topic's compacted view (read with kcat) must equal the files: every key landed, with the value
// of its owner (the first path declaring it), and every key no file declares is gone.
//
// More trials by hand: KILL9_SEEDS=1-50 KILL9_TRIALS=10 deno test -A tests/kill9_e2e_test.ts
import { readTopic } from "./_kafka_readback.ts";
import {
  applyActions,
  compactedView,
  countFrom,
  type CsvSpec,
  declared,
  describeDiff,
  type DiskAction,
  ownerTable,
  PLAIN_STYLE,
  renderCsv,
  Rng,
  seedsFrom,
  type Table,
  tableChanges,
} from "./_model.ts";
import { BROKERS, type Pipeline, pipeline } from "./_pipeline.ts";

/** The runs delete files on purpose: the guard against mass retraction is tested elsewhere. */
const ALLOW_DELETES: string[] = ["--allow-deletes"];

/** One session per seed: its own topic, state and folder, several trials in a row. */
const SEEDS = seedsFrom("KILL9_SEEDS", [1, 2, 3, 4, 5]);
const TRIALS = countFrom("KILL9_TRIALS", 4);
/** Rows of a file (a session starts with 6 files). */
const ROWS = countFrom("KILL9_ROWS", 8_000);

for (const seed of SEEDS) {
  Deno.test(`main.ts killed with SIGKILL during catch-up loses nothing (seed ${seed}, ${TRIALS} trials)`, async () => {
    await session(seed);
  });
}

/** A folder of big CSV files as data, and the changes trials make to it. */
class BigFolder {
  files = new Map<string, CsvSpec>();
  readonly #history = new Map<string, CsvSpec[]>();
  readonly #rng: Rng;
  #nextFile = 0;
  #version = 0;

  constructor(rng: Rng) {
    this.#rng = rng;
  }

  /** The topic the files call for. */
  expected(): Table {
    return ownerTable(new Map([...this.files].map(([p, s]) => [p, declared(s)!])));
  }

  /** A new file: keys of its own, and 100 shared with the files made before and after it. */
  create(): DiskAction {
    const n = this.#nextFile++, version = ++this.#version;
    const path = n % 3 === 2 ? `sub/part-${n}.csv` : `part-${n}.csv`;
    const rows = Array.from({ length: ROWS }, (_, j) => {
      const key = j < 100 ? `shared-${n * 50 + j}` : `p${n}-${j}`;
      return [key, `v${version}-${j}`, j % 7 === 0 ? 'a, "quoted" note' : "note"];
    });
    return this.#set(path, { header: ["id", "v", "note"], rows, broken: null, style: PLAIN_STYLE });
  }

  /** Rewrites a share of the rows of every file: a run with about as much to send as the first. */
  rewriteAll(): { actions: DiskAction[]; why: string } {
    const rng = this.#rng, version = ++this.#version, share = rng.pick([0.3, 0.6, 1]);
    const actions = [...this.files].map(([path, spec]) => {
      const rows = spec.rows.map((r, j) =>
        rng.next() < share ? [r[0]!, `v${version}-${j}`, r[2]!] : r
      );
      return this.#set(path, { ...spec, rows });
    });
    return { actions, why: `rewrite ${share * 100}% of the rows of every file` };
  }

  /** One random change; `why` says what it was. */
  mutate(): { action: DiskAction; why: string } {
    const rng = this.#rng, paths = [...this.files.keys()];
    const path = rng.pick(paths), spec = this.files.get(path)!;
    const roll = rng.int(100), version = ++this.#version;
    if (roll < 35) {
      const share = rng.pick([0.2, 0.5, 1]);
      const rows = spec.rows.map((r, j) =>
        rng.next() < share ? [r[0]!, `v${version}-${j}`, r[2]!] : r
      );
      return {
        action: this.#set(path, { ...spec, rows }),
        why: `rewrite ${share * 100}% of ${path}`,
      };
    }
    if (roll < 45) {
      const rows = spec.rows.filter(() => rng.next() > 0.2);
      return { action: this.#set(path, { ...spec, rows }), why: `drop 20% of the rows of ${path}` };
    }
    if (roll < 55) {
      const more = Array.from({ length: 500 }, (_, j) => [`new${version}-${j}`, `v${version}`, ""]);
      const rows = [...spec.rows, ...more];
      return { action: this.#set(path, { ...spec, rows }), why: `add 500 rows to ${path}` };
    }
    if (roll < 65 && paths.length > 4) {
      this.files.delete(path);
      return { action: { kind: "remove", path }, why: `delete ${path}` };
    }
    if (roll < 75) {
      const to = path.startsWith("sub/") ? path.slice(4) : `sub/${path}`;
      this.files.delete(path);
      this.#set(to, spec);
      return { action: { kind: "rename", from: path, to }, why: `move ${path} to ${to}` };
    }
    if (roll < 85) return { action: this.create(), why: "create a file" };
    return this.revert();
  }

  /** Puts every file back as it was in `files` (removes the ones it lacked). */
  restore(files: ReadonlyMap<string, CsvSpec>): DiskAction[] {
    const actions: DiskAction[] = [];
    for (const path of this.files.keys()) {
      if (!files.has(path)) actions.push({ kind: "remove", path });
    }
    for (const [path, spec] of files) {
      if (this.files.get(path) !== spec) {
        actions.push({ kind: "write", path, text: renderCsv(spec) });
      }
    }
    this.files = new Map(files);
    return actions;
  }

  /** Puts a file (present or deleted) back to an earlier version. */
  revert(): { action: DiskAction; why: string } {
    const rng = this.#rng;
    const candidates = [...this.#history].filter(([p, h]) =>
      h.length > (this.files.has(p) ? 1 : 0)
    );
    if (candidates.length === 0) return { action: this.create(), why: "create a file" };
    const [path, versions] = rng.pick(candidates);
    const earlier = versions.filter((v) => v !== this.files.get(path));
    const version = rng.pick(earlier);
    return {
      action: this.#set(path, version),
      why: `revert ${path} to version ${versions.indexOf(version) + 1} of ${versions.length}`,
    };
  }

  #set(path: string, spec: CsvSpec): DiskAction {
    this.files.set(path, spec);
    const versions = this.#history.get(path) ?? [];
    if (!versions.includes(spec)) versions.push(spec);
    this.#history.set(path, versions);
    return { kind: "write", path, text: renderCsv(spec) };
  }
}

/** Keys of `from` that `to` lacks: what a run from `from` to `to` would delete. */
function deletes(from: Table, to: Table): number {
  let n = 0;
  for (const key of from.keys()) if (!to.has(key)) n++;
  return n;
}

async function session(seed: number): Promise<void> {
  await using p = await pipeline(`kill9-${seed}`);
  const trials = new Trials(seed, p);
  await trials.start();
  for (let trial = 1; trial <= TRIALS; trial++) await trials.run(trial);
  console.log(
    `seed ${seed}: ${TRIALS} trials converged; ${trials.killed} runs killed mid-way, ` +
      `${trials.finished} finished before their SIGKILL (a full run takes ${trials.fullRunMs} ms)`,
  );
}

/** The trials of one session, on one topic, state store and folder. */
class Trials {
  readonly #rng: Rng;
  readonly #folder: BigFolder;
  readonly #log: string[] = [];
  /** What the last complete run committed: the files, and the topic they call for. */
  #lastRun = new Map<string, CsvSpec>();
  #published: Table = new Map();
  /** Tables a killed run may have committed since: each a possible start of the next run. */
  #committable: Table[] = [];
  fullRunMs = 0;
  idleRunMs = 0;
  killed = 0;
  finished = 0;

  constructor(readonly seed: number, readonly p: Pipeline) {
    this.#rng = new Rng(seed);
    this.#folder = new BigFolder(this.#rng);
  }

  /** Six files, sent by one complete run, which says how long a run of everything takes. */
  async start(): Promise<void> {
    for (let i = 0; i < 6; i++) await applyActions(this.p.data, [this.#folder.create()]);
    const started = performance.now();
    const first = await this.p.run({ args: ALLOW_DELETES });
    this.fullRunMs = Math.round(performance.now() - started);
    if (first.code !== 0) {
      throw new Error(`seed ${this.seed}: the first run failed:\n${first.stderr}`);
    }
    const idle = performance.now();
    await this.p.ok({ args: ALLOW_DELETES }); // nothing to send: start-up and scan
    this.idleRunMs = Math.round(performance.now() - idle);
    this.#log.push(
      `first run: ${this.fullRunMs} ms; a run with nothing to send ${this.idleRunMs} ms`,
    );
    this.#lastRun = new Map(this.#folder.files);
    this.#published = this.#folder.expected();
  }

  /** Changes, one or two runs killed at a random moment, a complete run, the check. */
  async run(trial: number): Promise<void> {
    const rng = this.#rng, folder = this.#folder;
    this.#committable = [this.#published];
    if (rng.chance(0.7)) await this.#apply(trial, folder.rewriteAll());
    for (let n = 1 + rng.int(2); n > 0; n--) await this.#change(trial);
    for (let kills = 1 + rng.int(2); kills > 0; kills--) {
      const delay = this.#killDelay();
      const outcome = await killedRun(this.p.spawn({ args: ALLOW_DELETES }), delay);
      this.#log.push(`trial ${trial}: SIGKILL after ${delay} ms: ${outcome}`);
      if (outcome === "killed") this.killed++;
      else this.finished++;
      if (outcome.startsWith("finished: exit") && outcome !== "finished: exit 0") {
        throw new Error(`seed ${this.seed}, trial ${trial}: a run failed\n${this.#log.join("\n")}`);
      }
      this.#committable.push(folder.expected());
      const roll = rng.next();
      if (roll < 0.4 && this.#allowed(this.#published)) {
        // Back to what the last complete run committed: the killed run's acknowledged but
        // uncommitted messages must be put right although every file matches its memo.
        const restore = { actions: folder.restore(this.#lastRun), why: "revert every file" };
        await this.#apply(trial, restore);
      } else if (roll < 0.7) await this.#change(trial);
    }
    await this.#check(trial);
  }

  /**
   * When to kill the next run: sometimes while it starts, reads and parses, mostly while it
   * sends (the time a run with this much to send takes, estimated), a little past its end.
   */
  #killDelay(): number {
    const rng = this.#rng, idle = this.idleRunMs;
    if (rng.chance(0.2)) return rng.int(idle);
    const work = tableChanges(this.#published, this.#folder.expected()).length /
      this.#published.size;
    return Math.round(idle + rng.next() * (this.fullRunMs - idle) * Math.min(1, work) * 1.2);
  }

  /** One random change (or a revert of one file), unless it would delete too many keys. */
  async #change(trial: number): Promise<void> {
    const folder = this.#folder, before = new Map(folder.files);
    const { action, why } = this.#rng.chance(0.3) ? folder.revert() : folder.mutate();
    if (!this.#allowed(folder.expected())) {
      folder.files = before; // too many deletes at once would meet the deletion guard
      return;
    }
    await this.#apply(trial, { actions: [action], why });
  }

  /** Whether a run from any state it may start from to `next` deletes at most half the keys. */
  #allowed(next: Table): boolean {
    return this.#committable.every((t) => deletes(t, next) * 2 <= t.size);
  }

  async #apply(trial: number, change: { actions: DiskAction[]; why: string }): Promise<void> {
    this.#log.push(`trial ${trial}: ${change.why}`);
    await applyActions(this.p.data, change.actions);
  }

  /** A complete run; then the topic must hold exactly what the files call for. */
  async #check(trial: number): Promise<void> {
    const final = await this.p.run({ args: ALLOW_DELETES });
    this.#lastRun = new Map(this.#folder.files);
    this.#published = this.#folder.expected();
    const messages = await readTopic(this.p.topic, { brokers: BROKERS, fetchWaitMs: 10 });
    const diff = describeDiff(this.#published, compactedView(messages));
    if (final.code === 0 && !diff) return;
    const lines = diff.split("\n");
    throw new Error(
      `seed ${this.seed}, trial ${trial}: after the final run (exit ${final.code}) the topic ` +
        `differs from the files in ${lines.length} keys:\n${lines.slice(0, 30).join("\n")}\n\n` +
        `main.ts stderr:\n${final.stderr}\nwhat happened (KILL9_SEEDS=${this.seed} reproduces):\n` +
        this.#log.join("\n"),
    );
  }
}

/** Runs `child` for `delayMs`, then kills it with SIGKILL; says whether it was still running. */
async function killedRun(child: Deno.ChildProcess, delayMs: number): Promise<string> {
  const stderr = new Response(child.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // it has just exited by itself
      }
      resolve();
    }, delayMs);
  });
  const { code, signal } = await child.status;
  clearTimeout(timer);
  const text = await stderr;
  if (signal === "SIGKILL") {
    await killed;
    return "killed";
  }
  return code === 0 ? "finished: exit 0" : `finished: exit ${code}\n${text}`;
}
