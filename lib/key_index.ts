/**
 * The key index: which components declare a key, and the keys being retracted.
 *
 * - {@linkcode KeyIndex}: per target, which components declare a key, keyed by the key id's 53-bit
 *   hash ({@linkcode keyHash}) and small integer component ids, held in memory as sorted typed
 *   arrays (12 bytes per key: 12 MB for 1M keys) plus the changes since they were last sorted. A
 *   hit is a candidate: the component's own key list (its row in `statecast_declarations`)
 *   confirms it, so two keys sharing a hash cannot mix up. On disk it is a few rows of
 *   `statecast_key_runs`: the sorted arrays as blobs (the base), then one row per commit with
 *   the entries it added and removed (a delta). Once the deltas hold as many entries as half the
 *   base (and at least `compactRows`), a commit writes a new base instead, in the same
 *   transaction; more than 16 deltas short of that are folded into one delta row (the base stays).
 *
 *   It used to be a table of one row per key and component (schema 4 to 6): each chunk's commit
 *   of random key hashes rewrote most of that B-tree, and the look-ups read it row by row. A
 *   first publish of 1M rows spent 3.5 s of its 9 s there with a target that sends nothing; with
 *   the index in memory it is gone from the profile.
 * - `statecast_retracting (tid, key, fp)`: keys nobody declares any more whose delete has not been
 *   sent yet, with the fingerprint of what the target still holds. The key id is stored as its
 *   JSON text, so the id of a non-UTF-8 key (a lone surrogate marker) survives the round trip. A
 *   round only records deletes while its chunks run and sends them at its end, so a key that
 *   moves to a file of a later chunk is an upsert (or nothing), never a tombstone followed by an
 *   upsert. Lists travel as one JSON parameter per statement (`json_each`).
 *
 * @module
 */
import type { InStatement, ResultSet } from "@libsql/client";
import type { Fingerprint } from "./fingerprint.ts";

/** What the key index needs of a libSQL client or transaction. */
export interface Executor {
  execute(statement: InStatement): Promise<ResultSet>;
}

/**
 * The runs of the key index (schema version 7): per target, base segments (`base` 1: the sorted
 * index, in `seq` order) and deltas (`base` 0: a commit's entries; a negative component id is a
 * removal). `hashes` is a little-endian float64 array of key hashes, `cids` an int32 array.
 */
export const KEY_RUNS_SCHEMA = `CREATE TABLE IF NOT EXISTS statecast_key_runs (
    tid INTEGER NOT NULL, seq INTEGER NOT NULL, base INTEGER NOT NULL,
    hashes BLOB NOT NULL, cids BLOB NOT NULL,
    PRIMARY KEY (tid, seq)) WITHOUT ROWID`;

/** The runs' keys alone (schema version 8): what `MAX(seq), COUNT(*)` reads, not the blobs. */
export const KEY_RUNS_SEQ_INDEX =
  "CREATE INDEX IF NOT EXISTS statecast_key_runs_seq ON statecast_key_runs (tid, seq)";

/** The tables of the key index before schema 7 (read once by the migration, then dropped). */
export const LEGACY_INDEX_TABLES = ["statecast_key_index", "statecast_key_index_recent"];

/**
 * Delta entries a target's index keeps at least before it is compacted into a new base. A first
 * publish of 1M rows in 100 files (a target that sends nothing): see `compactRows` in the
 * state store's options.
 */
export const COMPACT_ROWS = 100_000;

/** The tables of the key index besides its runs (schema version 4). */
export const KEY_INDEX_SCHEMA: ReadonlyArray<string> = [
  `CREATE TABLE IF NOT EXISTS statecast_targets (
    tid INTEGER PRIMARY KEY, app TEXT NOT NULL, target TEXT NOT NULL, UNIQUE (app, target))`,
  `CREATE TABLE IF NOT EXISTS statecast_retracting (
    tid INTEGER NOT NULL, key TEXT NOT NULL, fp TEXT,
    PRIMARY KEY (tid, key)) WITHOUT ROWID`,
];

/** Keys per statement: bounds one statement's JSON parameter and result. */
const BATCH = 20_000;

/** Entries per base segment row (768 KiB of blobs). */
const SEGMENT = 65_536;

/** One component's index rows to add and remove on one target. */
export interface IndexUpdate {
  tid: number;
  cid: number;
  add: ReadonlyArray<number>;
  remove: ReadonlyArray<number>;
}

/** Sorted entries: key hashes ascending, ties by component id; a negative id is a removal. */
interface Run {
  hashes: Float64Array;
  cids: Int32Array;
}

/** One target's index in memory: the sorted base, and the deltas since, oldest first. */
interface TargetIndex {
  base: Run;
  deltas: Run[];
  /** The hashes that may be in the base or a deltas (made on first use, see `filterOf`). */
  filter: HashFilter | undefined;
  /** Entries in the deltas (added and removed). */
  deltaEntries: number;
  /** The highest `seq` on disk (0: none), and how many rows: a cheap check that none changed. */
  seq: number;
  rows: number;
}

/**
 * Deltas a target's index keeps at most before they are folded into one: a look-up searches each
 * of them.
 */
const MAX_DELTAS = 16;

/**
 * The key index of a store, loaded per target on first use and kept in step with the commits
 * made through it. Another writer of the same target (only possible by taking the app's lock
 * over) is noticed before every use: its rows changed `MAX(seq)` or their count, and the target
 * is loaded again.
 */
export class KeyIndex {
  readonly #db: Executor;
  readonly #compactRows: number;
  readonly #targets = new Map<number, TargetIndex>();

  constructor(db: Executor, options: { compactRows?: number } = {}) {
    this.#db = db;
    this.#compactRows = Math.max(1, options.compactRows ?? COMPACT_ROWS);
  }

  /**
   * The components other than `exclude` that declare a key whose hash is in `hashes`, as
   * `[hash, component id]` pairs, each once (candidates: confirm with the component's key list;
   * a hash given twice is looked up once). The hashes are looked up in ascending order, so each
   * run is walked forward rather than searched afresh.
   */
  async declarersOf(
    tid: number,
    hashes: ReadonlyArray<number>,
    exclude: ReadonlyArray<number>,
  ): Promise<Array<[number, number]>> {
    const index = await this.#load(tid);
    const runs = [index.base, ...index.deltas];
    const at = new Array<number>(runs.length).fill(0);
    const excluded = new Set(exclude);
    const found: Array<[number, number]> = [];
    const cids: number[] = [];
    // Only hashes the filter may hold are sorted and searched: a first publish asks about 10,000
    // new keys per chunk, each searched in the base and up to 16 deltas before (~250 ms per 1M).
    const filter = filterOf(index);
    const wanted = new Float64Array(hashes.length);
    let n = 0;
    for (const h of hashes) if (filter.has(h)) wanted[n++] = h;
    let previous = NaN;
    for (const h of wanted.subarray(0, n).sort()) {
      if (h === previous) continue; // a hash given twice is looked up once
      previous = h;
      cids.length = 0;
      for (let r = 0; r < runs.length; r++) {
        const run = runs[r]!;
        at[r] = seek(run.hashes, h, at[r]!);
        foldDeclarers(run, at[r]!, h, cids);
      }
      for (const cid of cids) if (!excluded.has(cid)) found.push([h, cid]);
    }
    return found;
  }

  /**
   * The statements that write `updates` (per component, its removals before its additions),
   * applied to the index in memory at once: the caller runs them in its commit and calls
   * {@linkcode KeyIndex.forget} if that fails, so the index is read again from the store.
   */
  async update(updates: ReadonlyArray<IndexUpdate>): Promise<InStatement[]> {
    const byTarget = new Map<number, IndexUpdate[]>();
    for (const u of updates) {
      // A removal is stored as the negative id: an id must be positive (ids start at 1).
      if (!(u.cid > 0)) throw new RangeError(`key index: component id ${u.cid} is not positive`);
      if (u.add.length === 0 && u.remove.length === 0) continue;
      const list = byTarget.get(u.tid);
      if (list === undefined) byTarget.set(u.tid, [u]);
      else list.push(u);
    }
    const statements: InStatement[] = [];
    for (const [tid, list] of byTarget) {
      const index = await this.#load(tid);
      const delta = sortedRun(list);
      index.deltas.push(delta);
      index.filter?.addAll(delta.hashes);
      index.deltaEntries += delta.hashes.length;
      const threshold = Math.max(this.#compactRows, index.base.hashes.length / 2);
      if (index.deltaEntries >= threshold) {
        statements.push(...compact(tid, index));
        continue;
      }
      if (index.deltas.length > MAX_DELTAS) {
        statements.push(...mergeDeltas(tid, index));
        continue;
      }
      statements.push(runRow(tid, ++index.seq, false, delta));
      index.rows++;
    }
    return statements;
  }

  /**
   * How many keys the target's components declare, each once however many files declare it (by
   * hash: keys sharing one count once, so the count never overstates). What the delete guard
   * weighs a round's deletes against: a sum over the files counted a key that two snapshots
   * declare twice, so 40 deletes of 70 keys passed as 40 of 100.
   */
  async keyCount(tid: number): Promise<number> {
    const index = await this.#load(tid);
    const runs = [index.base, ...index.deltas];
    const at = new Array<number>(runs.length).fill(0);
    const cids: number[] = [];
    let count = 0;
    for (;;) {
      let h = Infinity; // the smallest hash not yet counted, across the runs
      for (let r = 0; r < runs.length; r++) {
        const i = at[r]!, hashes = runs[r]!.hashes;
        if (i < hashes.length && hashes[i]! < h) h = hashes[i]!;
      }
      if (h === Infinity) return count;
      cids.length = 0;
      for (let r = 0; r < runs.length; r++) at[r] = foldDeclarers(runs[r]!, at[r]!, h, cids);
      if (cids.length > 0) count++;
    }
  }

  /** Drops what is held in memory: the next use reads the index from the store again. */
  forget(): void {
    this.#targets.clear();
  }

  /** A target's index, read from the store unless what is held is still what the store has. */
  async #load(tid: number): Promise<TargetIndex> {
    const rs = await this.#db.execute({
      sql: "SELECT MAX(seq), COUNT(*) FROM statecast_key_runs WHERE tid = ?",
      args: [tid],
    });
    const seq = Number(rs.rows[0]?.[0] ?? 0);
    const rows = Number(rs.rows[0]?.[1] ?? 0);
    const held = this.#targets.get(tid);
    if (held !== undefined && held.seq === seq && held.rows === rows) return held;
    const index = await readIndex(this.#db, tid);
    this.#targets.set(tid, index);
    return index;
  }
}

/** Reads a target's rows: the base segments joined, then the deltas in order. */
async function readIndex(db: Executor, tid: number): Promise<TargetIndex> {
  const rs = await db.execute({
    sql: "SELECT seq, base, hashes, cids FROM statecast_key_runs WHERE tid = ? ORDER BY seq",
    args: [tid],
  });
  const segments: Run[] = [];
  const index: TargetIndex = {
    base: { hashes: new Float64Array(0), cids: new Int32Array(0) },
    deltas: [],
    filter: undefined,
    deltaEntries: 0,
    seq: 0,
    rows: rs.rows.length,
  };
  for (const row of rs.rows) {
    index.seq = Number(row[0]);
    const run = { hashes: new Float64Array(blob(row[2])), cids: new Int32Array(blob(row[3])) };
    if (run.hashes.length !== run.cids.length) {
      throw new TypeError(`key index row ${index.seq} of target ${tid} is corrupt`);
    }
    if (Number(row[1]) === 1 && index.deltas.length === 0) segments.push(run);
    else {
      index.deltas.push(run);
      index.deltaEntries += run.hashes.length;
    }
  }
  if (segments.length === 1) index.base = segments[0]!;
  else if (segments.length > 1) {
    let total = 0;
    for (const s of segments) total += s.hashes.length;
    index.base = { hashes: new Float64Array(total), cids: new Int32Array(total) };
    total = 0;
    for (const s of segments) {
      index.base.hashes.set(s.hashes, total);
      index.base.cids.set(s.cids, total);
      total += s.hashes.length;
    }
  }
  return index;
}

/**
 * The entries of one commit for one target as a sorted run: removals as negative ids. Each
 * component's removals and additions are sorted on their own (a typed array sorts natively), then
 * merged pairwise; should an entry appear twice, the later one counts.
 */
function sortedRun(updates: ReadonlyArray<IndexUpdate>): Run {
  let parts: Run[] = [];
  for (const u of updates) {
    for (const [list, cid] of [[u.remove, -u.cid], [u.add, u.cid]] as const) {
      if (list.length === 0) continue;
      const sorted = Float64Array.from(list).sort();
      let n = 0;
      for (let i = 0; i < sorted.length; i++) {
        if (n === 0 || sorted[n - 1] !== sorted[i]) sorted[n++] = sorted[i]!;
      }
      parts.push({ hashes: sorted.subarray(0, n), cids: new Int32Array(n).fill(cid) });
    }
  }
  while (parts.length > 1) {
    const merged: Run[] = [];
    for (let i = 0; i < parts.length; i += 2) {
      const next = parts[i + 1];
      merged.push(next === undefined ? parts[i]! : mergeRuns(parts[i]!, next, false));
    }
    parts = merged;
  }
  return parts[0] ?? { hashes: new Float64Array(0), cids: new Int32Array(0) };
}

/**
 * `older` with `newer` laid over it, both sorted: an entry of `newer` replaces the same entry of
 * `older`. With `dropRemovals` (the result is a base), removals are left out.
 */
function mergeRuns(older: Run, newer: Run, dropRemovals: boolean): Run {
  const hashes = new Float64Array(older.hashes.length + newer.hashes.length);
  const cids = new Int32Array(hashes.length);
  let i = 0;
  let j = 0;
  let n = 0;
  const put = (h: number, cid: number) => {
    if (cid < 0 && dropRemovals) return;
    hashes[n] = h;
    cids[n++] = cid;
  };
  while (i < older.hashes.length || j < newer.hashes.length) {
    const a = i < older.hashes.length ? older.hashes[i]! : Infinity;
    const b = j < newer.hashes.length ? newer.hashes[j]! : Infinity;
    const order = a - b || Math.abs(older.cids[i] ?? 0) - Math.abs(newer.cids[j] ?? 0);
    if (order < 0) put(a, older.cids[i++]!);
    else if (order > 0) put(b, newer.cids[j++]!);
    else {
      put(b, newer.cids[j++]!);
      i++;
    }
  }
  return { hashes: hashes.subarray(0, n), cids: cids.subarray(0, n) };
}

/**
 * Folds the deltas into a new base, in memory and as the statements that replace the target's
 * rows with it (base segments numbered on from the last `seq`, so a changed store is noticed).
 */
function compact(tid: number, index: TargetIndex): InStatement[] {
  const base = mergeRuns(index.base, foldDeltas(index), true);
  const statements: InStatement[] = [
    { sql: "DELETE FROM statecast_key_runs WHERE tid = ?", args: [tid] },
  ];
  const n = base.hashes.length;
  let rows = 0;
  for (let at = 0; at < n || rows === 0; at += SEGMENT, rows++) {
    const end = Math.min(n, at + SEGMENT);
    const segment = { hashes: base.hashes.subarray(at, end), cids: base.cids.subarray(at, end) };
    statements.push(runRow(tid, ++index.seq, true, segment));
  }
  index.base = base;
  index.deltas = [];
  index.filter = undefined; // made again for the new base (removed keys leave it)
  index.deltaEntries = 0;
  index.rows = rows;
  return statements;
}

/** A target's deltas as one run, the newer laid over the older; removals kept. */
function foldDeltas(index: TargetIndex): Run {
  let delta = index.deltas[0]!;
  for (const next of index.deltas.slice(1)) delta = mergeRuns(delta, next, false);
  return delta;
}

/**
 * Folds the deltas into one delta row, the base left as it is: too many deltas to search, too
 * few entries to be worth a new base. A live job at 1M keys whose edits each change a key or two
 * wrote its 12 MB base again every 17 commits before; now it rewrites the few entries of its
 * deltas, and the base only once they reach half of it.
 */
function mergeDeltas(tid: number, index: TargetIndex): InStatement[] {
  const delta = foldDeltas(index);
  const onDisk = index.deltas.length - 1; // the newest is this commit's, not written yet
  index.deltas = [delta];
  index.deltaEntries = delta.hashes.length;
  index.rows += 1 - onDisk;
  return [
    { sql: "DELETE FROM statecast_key_runs WHERE tid = ? AND base = 0", args: [tid] },
    runRow(tid, ++index.seq, false, delta),
  ];
}

/** The statement that writes `run` as row `seq` of target `tid`: a base segment or a delta. */
function runRow(tid: number, seq: number, base: boolean, run: Run): InStatement {
  return {
    sql: "INSERT INTO statecast_key_runs (tid, seq, base, hashes, cids) VALUES (?, ?, ?, ?, ?)",
    args: [tid, seq, base ? 1 : 0, bytesOf(run.hashes), bytesOf(run.cids)],
  };
}

/**
 * Folds the entries of `run` for hash `h`, from `i` on, into `cids`, the components declaring it so
 * far: an added one joins, a removed one (a later delta's negative id) leaves. Runs are folded
 * base first, then the deltas oldest first. Returns the index past those entries.
 */
function foldDeclarers(run: Run, i: number, h: number, cids: number[]): number {
  for (; i < run.hashes.length && run.hashes[i] === h; i++) {
    const cid = run.cids[i]!;
    const known = cids.indexOf(Math.abs(cid));
    if (cid > 0 && known < 0) cids.push(cid);
    else if (cid < 0 && known >= 0) cids.splice(known, 1);
  }
  return i;
}

/** The bits of the largest {@linkcode HashFilter} (16 MiB). */
const MAX_FILTER_BITS = 1 << 27;

/**
 * Which hashes may be in a set of runs: one bit per hash, at its low bits. A set bit is a
 * candidate (another hash may share the bit, a removed one may have left it); a clear bit is
 * certain: no run holds the hash. Sized for 1 bit in 8 set at most; a target's is made with room
 * for twice its entries (`filterOf`): 2 MiB at 1M keys.
 */
export class HashFilter {
  readonly #bits: Uint32Array;
  readonly #mask: number;
  #added = 0;

  /** A filter with room for `capacity` hashes (at least 2^16 bits, at most 2^27). */
  constructor(capacity: number) {
    let bits = 1 << 16;
    while (bits < capacity * 8 && bits < MAX_FILTER_BITS) bits *= 2;
    this.#bits = new Uint32Array(bits / 32);
    this.#mask = bits - 1;
  }

  /**
   * Whether the filter has grown past 1 bit set in 8 (a bigger one filters better). One of the
   * largest size never is: made again, it would be no bigger and full at once, and every look-up
   * past 2^24 entries (a target of ~11M keys with its deltas) rebuilt it, ~0.1 s each.
   */
  get full(): boolean {
    return this.#mask + 1 < MAX_FILTER_BITS && this.#added * 8 > this.#mask + 1;
  }

  addAll(hashes: Float64Array): void {
    for (let i = 0; i < hashes.length; i++) {
      const bit = (hashes[i]! | 0) & this.#mask; // the hash's low bits (an integer below 2^53)
      this.#bits[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.#added += hashes.length;
  }

  has(hash: number): boolean {
    const bit = (hash | 0) & this.#mask;
    return (this.#bits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }
}

/** The filter of a target's base and deltas, made (again) when it is missing or full. */
function filterOf(index: TargetIndex): HashFilter {
  if (index.filter !== undefined && !index.filter.full) return index.filter;
  let entries = index.base.hashes.length;
  for (const delta of index.deltas) entries += delta.hashes.length;
  const filter = new HashFilter(2 * entries);
  filter.addAll(index.base.hashes);
  for (const delta of index.deltas) filter.addAll(delta.hashes);
  return index.filter = filter;
}

/**
 * The first position at or after `from` in sorted `hashes` whose hash is not below `h`
 * (`from` must not be past it): galloping forward, then a binary search.
 */
function seek(hashes: Float64Array, h: number, from: number): number {
  const n = hashes.length;
  if (from >= n || hashes[from]! >= h) return from;
  let step = 1;
  while (from + step < n && hashes[from + step]! < h) step *= 2;
  let lo = from + (step >>> 1) + 1;
  let hi = Math.min(n, from + step);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hashes[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A typed array's bytes (a blob argument; not a copy). */
function bytesOf(array: Float64Array | Int32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** A blob column as an `ArrayBuffer` a typed array can view (aligned: a copy if need be). */
function blob(value: unknown): ArrayBuffer {
  if (value instanceof ArrayBuffer) return value;
  if (value instanceof Uint8Array) {
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer;
  }
  throw new TypeError("key index row is not a blob");
}

/** Of `keys`, those being retracted on target `tid`, with the fingerprint the target holds. */
export async function retractingOf(
  db: Executor,
  tid: number,
  keys: ReadonlyArray<string>,
): Promise<Map<string, Fingerprint | undefined>> {
  const found = new Map<string, Fingerprint | undefined>();
  for (let i = 0; i < keys.length; i += BATCH) {
    const rs = await db.execute({
      sql: "SELECT r.key, r.fp FROM json_each(?) AS j CROSS JOIN statecast_retracting AS r " +
        "ON r.tid = ? AND r.key = j.value",
      args: [JSON.stringify(keys.slice(i, i + BATCH).map((k) => JSON.stringify(k))), tid],
    });
    for (const row of rs.rows) {
      found.set(JSON.parse(String(row[0])), row[1] === null ? undefined : String(row[1]));
    }
  }
  return found;
}

/** Whether any key of target `tid` is being retracted. */
export async function isRetracting(db: Executor, tid: number): Promise<boolean> {
  const rs = await db.execute({
    sql: "SELECT EXISTS (SELECT 1 FROM statecast_retracting WHERE tid = ?)",
    args: [tid],
  });
  return Number(rs.rows[0]?.[0] ?? 0) === 1;
}

/** Up to `limit` keys being retracted on target `tid`, with the fingerprint the target holds. */
export async function retractingPage(
  db: Executor,
  tid: number,
  limit: number,
): Promise<Array<{ key: string; fp: Fingerprint | undefined }>> {
  const rs = await db.execute({
    sql: "SELECT key, fp FROM statecast_retracting WHERE tid = ? ORDER BY key LIMIT ?",
    args: [tid, limit],
  });
  return rs.rows.map((row) => ({
    key: JSON.parse(String(row[0])),
    fp: row[1] === null ? undefined : String(row[1]),
  }));
}

/** How many keys are being retracted on target `tid`. */
export async function retractingCount(db: Executor, tid: number): Promise<number> {
  const rs = await db.execute({
    sql: "SELECT COUNT(*) FROM statecast_retracting WHERE tid = ?",
    args: [tid],
  });
  return Number(rs.rows[0]?.[0] ?? 0);
}

/** One target's retracting rows to add (or replace) and remove. */
export interface RetractUpdate {
  tid: number;
  add: ReadonlyArray<[string, Fingerprint | undefined]>;
  remove: ReadonlyArray<string>;
}

/** The statements that apply `updates` to the retracting keys. */
export function retractStatements(updates: ReadonlyArray<RetractUpdate>): InStatement[] {
  const statements: InStatement[] = [];
  for (const { tid, add, remove } of updates) {
    for (let i = 0; i < remove.length; i += BATCH) {
      statements.push({
        sql: "DELETE FROM statecast_retracting WHERE tid = ? " +
          "AND key IN (SELECT value FROM json_each(?))",
        args: [tid, JSON.stringify(remove.slice(i, i + BATCH).map((k) => JSON.stringify(k)))],
      });
    }
    for (let i = 0; i < add.length; i += BATCH) {
      statements.push({
        sql: "INSERT INTO statecast_retracting (tid, key, fp) " +
          "SELECT ?, value ->> 0, value ->> 1 FROM json_each(?) WHERE true " +
          "ON CONFLICT (tid, key) DO UPDATE SET fp = excluded.fp",
        args: [
          tid,
          JSON.stringify(add.slice(i, i + BATCH).map(([k, fp]) => [JSON.stringify(k), fp ?? null])),
        ],
      });
    }
  }
  return statements;
}

/** The statements that forget the index and retracting rows of `app`'s target `target`. */
export function forgetIndexStatements(app: string, target: string): InStatement[] {
  const tid = "(SELECT tid FROM statecast_targets WHERE app = ? AND target = ?)";
  return [
    { sql: `DELETE FROM statecast_key_runs WHERE tid = ${tid}`, args: [app, target] },
    { sql: `DELETE FROM statecast_retracting WHERE tid = ${tid}`, args: [app, target] },
  ];
}
