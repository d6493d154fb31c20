// A reference model of what main.ts should put on a topic, for the model-based and kill -9
// end-to-end tests: CSV files as data (header, rows, how they are written, whether they are
// broken), a seeded generator of random file operations, and a model of the catch-up round that
// says which messages a run sends and what the topic's compacted view is afterwards.
//
// The semantics modelled (README, "What it sends, exactly"): a key's value is the row as JSON in
// header order; a key declared by two files gets the value of the first path in sort order; a
// file that cannot be parsed (or declares a key twice) publishes nothing and retracts nothing;
// a file that stops declaring a key whose next owner cannot be read waits whole (nothing of it is
// published, its removal is not committed) until that owner is readable.
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ReadbackMessage } from "./_kafka_readback.ts";

/** key → value (the row as JSON). */
export type Table = Map<string, string>;

/** A small, seeded pseudo-random generator (mulberry32): the same seed, the same sequence. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick() from nothing");
    return items[this.int(items.length)]!;
  }
}

/** How a broken file is broken; `at` places the bad row. */
export interface Breakage {
  kind: "quote" | "fields" | "duplicate";
  at: number;
}

/** How a file is written: line ends, BOM, final line end, quoting of every field. */
export interface CsvStyle {
  crlf: boolean;
  bom: boolean;
  finalEol: boolean;
  quoteAll: boolean;
}

/** One CSV file as data. Rows have unique keys (first field); `broken` makes it unparsable. */
export interface CsvSpec {
  readonly header: readonly string[];
  readonly rows: ReadonlyArray<readonly string[]>;
  readonly broken: Breakage | null;
  readonly style: CsvStyle;
}

export const PLAIN_STYLE: CsvStyle = { crlf: false, bom: false, finalEol: true, quoteAll: false };

function field(value: string, quoteAll: boolean): string {
  return quoteAll || /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The file's text. Never empty: the header is always there. */
export function renderCsv(spec: CsvSpec): string {
  const { header, style } = spec;
  const lines = spec.rows.map((r) => r.map((f) => field(f, style.quoteAll)).join(","));
  const broken = spec.broken;
  let tail = "";
  if (broken !== null) {
    const at = broken.at % (lines.length + 1);
    if (broken.kind === "quote") {
      tail = 'zz,"never closed'; // to the end of the file: the quote cannot close
    } else if (broken.kind === "duplicate" && spec.rows.length > 0) {
      const key = spec.rows[broken.at % spec.rows.length]![0]!;
      const dup = [key, ...header.slice(1).map(() => "dup")];
      lines.splice(at, 0, dup.map((f) => field(f, style.quoteAll)).join(","));
    } else {
      lines.splice(at, 0, ["bad", ...header.map(() => "extra")].join(",")); // one field too many
    }
  }
  const eol = style.crlf ? "\r\n" : "\n";
  const all = [header.join(","), ...lines];
  let text = all.join(eol) + (tail ? eol + tail : style.finalEol ? eol : "");
  if (style.bom) text = "\uFEFF" + text;
  return text;
}

/** The row as main.ts sends it: a JSON object in header order. */
export function rowValue(header: readonly string[], row: readonly string[]): string {
  const object: Record<string, string> = {};
  header.forEach((name, i) => object[name] = row[i]!);
  return JSON.stringify(object);
}

/** What a file declares, or null when it cannot be parsed. */
export function declared(spec: CsvSpec): Table | null {
  if (spec.broken !== null) return null;
  return new Map(spec.rows.map((r) => [r[0]!, rowValue(spec.header, r)]));
}

/** What a topic holds when each key gets the value of the first path (sort order) declaring it. */
export function ownerTable(tables: ReadonlyMap<string, Table>): Table {
  const out: Table = new Map();
  for (const path of [...tables.keys()].sort()) {
    for (const [key, value] of tables.get(path)!) if (!out.has(key)) out.set(key, value);
  }
  return out;
}

/** The compacted view of a topic: the last message per key; a null value means absent. */
export function compactedView(messages: readonly ReadbackMessage[]): Table {
  const table: Table = new Map();
  for (const m of messages) {
    if (m.value === null) table.delete(m.key ?? "");
    else table.set(m.key ?? "", m.value);
  }
  return table;
}

/** The changes from one table to the next, as sorted "key=value" / "key=null" strings. */
export function tableChanges(before: Table, after: Table): string[] {
  const out: string[] = [];
  for (const [key, value] of after) if (before.get(key) !== value) out.push(`${key}=${value}`);
  for (const key of before.keys()) if (!after.has(key)) out.push(`${key}=null`);
  return out.sort();
}

/** Where two tables differ, one line per key, or "" when they are equal. */
export function describeDiff(expected: Table, actual: Table): string {
  const lines: string[] = [];
  for (const [key, value] of expected) {
    const got = actual.get(key);
    if (got !== value) lines.push(`  ${JSON.stringify(key)}: expected ${value}, topic has ${got}`);
  }
  for (const [key, value] of actual) {
    if (!expected.has(key)) {
      lines.push(`  ${JSON.stringify(key)}: expected absent, topic has ${value}`);
    }
  }
  return lines.join("\n");
}

/** One change to the data folder. */
export type DiskAction =
  | { kind: "write"; path: string; text: string; atomic?: boolean }
  | { kind: "remove"; path: string }
  | { kind: "removeDir"; path: string }
  | { kind: "rename"; from: string; to: string };

/** Carries out actions on the folder `root`. An atomic write goes through a hidden temp file. */
export async function applyActions(root: string, actions: readonly DiskAction[]): Promise<void> {
  for (const a of actions) {
    if (a.kind === "write") {
      const target = join(root, a.path);
      await mkdir(dirname(target), { recursive: true });
      if (!a.atomic) await writeFile(target, a.text);
      else {
        const temp = join(dirname(target), `.${a.path.split("/").at(-1)}.swp`);
        await writeFile(temp, a.text);
        await rename(temp, target);
      }
    } else if (a.kind === "remove") await rm(join(root, a.path));
    else if (a.kind === "removeDir") await rm(join(root, a.path), { recursive: true });
    else {
      await mkdir(dirname(join(root, a.to)), { recursive: true });
      await rename(join(root, a.from), join(root, a.to));
    }
  }
}

/** Seeds from a variable such as "1,2,7-9", or the defaults. */
export function seedsFrom(variable: string, defaults: number[]): number[] {
  const text = Deno.env.get(variable)?.trim();
  if (!text) return defaults;
  const seeds: number[] = [];
  for (const part of text.split(",")) {
    const [from, to] = part.split("-").map((s) => Number(s.trim()));
    if (!Number.isInteger(from) || (to !== undefined && !Number.isInteger(to))) {
      throw new TypeError(`${variable}: expected seeds such as "1,2,7-9", got "${text}"`);
    }
    for (let s = from!; s <= (to ?? from!); s++) seeds.push(s);
  }
  return seeds;
}

/** A positive integer from a variable, or the default. */
export function countFrom(variable: string, fallback: number): number {
  const text = Deno.env.get(variable)?.trim();
  if (!text) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    throw new TypeError(`${variable}: expected a count, got "${text}"`);
  }
  return n;
}

/** What one catch-up run should do. */
export interface RoundResult {
  /** The messages the run should send: "key=value" or "key=null", sorted; one per key. */
  sent: string[];
  /** Files that cannot be parsed. */
  failed: string[];
  /** Files that wait for the next owner of a key they stopped declaring. */
  waiting: string[];
  /** 1 when any file failed or waits, else 0. */
  exitCode: number;
  /** The compacted view of the topic after the run. */
  topic: Table;
}

interface Component {
  /** The text last committed. */
  text: string;
  table: Table;
}

/**
 * The catch-up round as the engine runs it, over files as data: which files run (new or
 * changed text), which fail, which wait, what is committed, and what the topic holds after.
 * The topic is always the owner's committed value per key (the first committed declarer by path).
 */
export class CatchUpModel {
  /** Committed components: path → the text it was committed with and what it declared. */
  readonly #components = new Map<string, Component>();

  /** The compacted view the topic should have now. */
  topic(): Table {
    return ownerTable(new Map([...this.#components].map(([p, c]) => [p, c.table])));
  }

  /** Runs one round over `files` (every file present): commits it unless `preview`. */
  round(files: ReadonlyMap<string, CsvSpec>, options: { preview?: boolean } = {}): RoundResult {
    const before = this.topic();
    const texts = new Map([...files].map(([p, spec]) => [p, renderCsv(spec)]));
    const ran = new Map<string, Table>(); // what the files that ran (or are gone) declare now
    const failed = new Set<string>();
    const removed = new Set([...this.#components.keys()].filter((p) => !files.has(p)));
    for (const p of removed) ran.set(p, new Map());
    for (const [path, spec] of files) {
      if (this.#components.get(path)?.text === texts.get(path)) continue; // memo: unchanged
      const table = declared(spec);
      if (table === null) failed.add(path);
      else ran.set(path, table);
    }
    const waiting = this.#settle(files, ran, failed);
    const next = new Map(this.#components);
    for (const [path, table] of ran) {
      if (removed.has(path)) next.delete(path);
      else next.set(path, { text: texts.get(path)!, table });
    }
    const after = ownerTable(new Map([...next].map(([p, c]) => [p, c.table])));
    if (!options.preview) {
      this.#components.clear();
      for (const [p, c] of next) this.#components.set(p, c);
    }
    return {
      sent: tableChanges(before, after),
      failed: [...failed].filter((p) => !waiting.has(p)).sort(),
      waiting: [...waiting].sort(),
      exitCode: failed.size > 0 ? 1 : 0,
      topic: after,
    };
  }

  /**
   * Until nothing changes: a key whose next owner did not run and whose committed value differs
   * from what was published needs that owner's value. The owner runs (it is readable), or it
   * cannot be read, and then every file that ran and held the key waits: it leaves `ran` (nothing
   * of it is published or committed) and counts as failed. A file that gives a key to an owner
   * found unreadable earlier in the loop waits too (once another giver waits, the key's next
   * owner can change). Returns the waiting files.
   */
  #settle(files: ReadonlyMap<string, CsvSpec>, ran: Map<string, Table>, failed: Set<string>) {
    const waiting = new Set<string>();
    for (;;) {
      const needed = this.#needed(ran);
      if (needed.size === 0) return waiting;
      for (const [owner, givers] of needed) {
        if (!failed.has(owner)) {
          const table = files.has(owner) ? declared(files.get(owner)!) : null;
          if (table !== null) {
            ran.set(owner, table);
            continue;
          }
          failed.add(owner);
        }
        for (const giver of givers) {
          ran.delete(giver);
          waiting.add(giver);
          failed.add(giver);
        }
      }
    }
  }

  /** Owners (not in `ran`) whose value is needed, each with the files in `ran` that held the key. */
  #needed(ran: ReadonlyMap<string, Table>) {
    const committed = this.#components;
    const touched = new Set<string>();
    for (const [path, table] of ran) {
      for (const key of committed.get(path)?.table.keys() ?? []) touched.add(key);
      for (const key of table.keys()) touched.add(key);
    }
    const paths = [...committed.keys()].sort();
    const needed = new Map<string, Set<string>>();
    for (const key of touched) {
      const before = paths.filter((p) => committed.get(p)!.table.has(key));
      const previous = before.length > 0 ? committed.get(before[0]!)!.table.get(key) : undefined;
      const after = before.filter((p) => !ran.has(p));
      for (const [path, table] of ran) if (table.has(key)) after.push(path);
      const owner = after.sort()[0];
      if (owner === undefined || ran.has(owner)) continue;
      if (committed.get(owner)!.table.get(key) === previous) continue;
      let givers = needed.get(owner);
      if (givers === undefined) needed.set(owner, givers = new Set());
      for (const p of before) if (ran.has(p)) givers.add(p);
    }
    return needed;
  }
}
