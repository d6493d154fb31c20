/**
 * The key index: which components declare a key, and the keys being retracted, in indexed store
 * tables, read for the keys a round touches, in batched queries, never loaded whole.
 *
 * - `statecast_key_index (tid, kh, cid)`: one row per target, key and declaring component, keyed
 *   by the key id's 53-bit hash ({@linkcode keyHash}) and small integer ids, so a row is about
 *   20 bytes whatever the key's length. A hit is a candidate: the component's own key list (its
 *   row in `statecast_declarations`) confirms it, so two keys sharing a hash cannot mix up.
 * - `statecast_retracting (tid, key, fp)`: keys nobody declares any more whose delete has not been
 *   sent yet, with the fingerprint of what the target still holds. The key id is stored as its
 *   JSON text, so the id of a non-UTF-8 key (a lone surrogate marker) survives the round trip. A round only records deletes
 *   while its chunks run and sends them at its end, so a key that moves to a file of a later
 *   chunk is an upsert (or nothing), never a tombstone followed by an upsert.
 *
 * - `statecast_key_index_recent`: the same rows, newly added. A key hash is random, so a chunk's
 *   new rows land on nearly every page of a large index, and each chunk's commit wrote the whole
 *   index to the WAL again (a first publish of 1M rows in chunks of 20,000: 50 times its 25 MB).
 *   New rows go to this small table instead, which {@linkcode mergeStatements} moves into the
 *   index, sorted, once it holds {@linkcode MERGE_ROWS}: each page of the index is written once
 *   per merge. Look-ups read both tables; a removal deletes from both.
 *
 * Lists travel as one JSON parameter per statement (`json_each`), so a lookup or an update of
 * 10,000 keys is one statement, not 10,000 parameters.
 *
 * @module
 */
import type { InStatement, ResultSet } from "@libsql/client";
import type { Fingerprint } from "./fingerprint.ts";

/** What the key index needs of a libSQL client or transaction. */
export interface Executor {
  execute(statement: InStatement): Promise<ResultSet>;
}

/** The table of newly added index rows (schema version 6). */
export const RECENT_SCHEMA = `CREATE TABLE IF NOT EXISTS statecast_key_index_recent (
    tid INTEGER NOT NULL, kh INTEGER NOT NULL, cid INTEGER NOT NULL,
    PRIMARY KEY (tid, kh, cid)) WITHOUT ROWID`;

/**
 * Rows the recent table holds before they are merged into the index. A first publish of 1M rows
 * in 100 files into a target that sends nothing took 10.0 s with every row written straight
 * into the index (3.6 s of it system time), 7.9 s merging every 50,000 or 100,000 rows, 8.1 s
 * every 200,000 and 9.0 s every 500,000 (the recent table's own pages then add up). Larger
 * stores favour larger merges; 100,000 is the middle.
 */
export const MERGE_ROWS = 100_000;

/** The tables of the key index (schema version 4, and 6 for the recent rows). */
export const KEY_INDEX_SCHEMA: ReadonlyArray<string> = [
  `CREATE TABLE IF NOT EXISTS statecast_targets (
    tid INTEGER PRIMARY KEY, app TEXT NOT NULL, target TEXT NOT NULL, UNIQUE (app, target))`,
  `CREATE TABLE IF NOT EXISTS statecast_key_index (
    tid INTEGER NOT NULL, kh INTEGER NOT NULL, cid INTEGER NOT NULL,
    PRIMARY KEY (tid, kh, cid)) WITHOUT ROWID`,
  RECENT_SCHEMA,
  `CREATE TABLE IF NOT EXISTS statecast_retracting (
    tid INTEGER NOT NULL, key TEXT NOT NULL, fp TEXT,
    PRIMARY KEY (tid, key)) WITHOUT ROWID`,
];

/** Keys per statement: bounds one statement's JSON parameter and result. */
const BATCH = 20_000;

/**
 * The components other than `exclude` that declare a key whose hash is in `hashes`, as
 * `[hash, component id]` pairs (candidates: confirm with the component's key list).
 */
export async function declarersOf(
  db: Executor,
  tid: number,
  hashes: ReadonlyArray<number>,
  exclude: ReadonlyArray<number>,
): Promise<Array<[number, number]>> {
  const found: Array<[number, number]> = [];
  const excluded = JSON.stringify(exclude);
  for (let i = 0; i < hashes.length; i += BATCH) {
    const list = JSON.stringify(hashes.slice(i, i + BATCH));
    const rs = await db.execute({
      sql: `${declarersIn("statecast_key_index")} UNION ${
        declarersIn("statecast_key_index_recent")
      }`,
      args: [list, tid, excluded, list, tid, excluded],
    });
    for (const row of rs.rows) found.push([Number(row[0]), Number(row[1])]);
  }
  return found;
}

/** The look-up of one index table: hashes, tid and excluded components as parameters. */
function declarersIn(table: string): string {
  return `SELECT i.kh, i.cid FROM json_each(?) AS j CROSS JOIN ${table} AS i ` +
    "ON i.tid = ? AND i.kh = j.value WHERE i.cid NOT IN (SELECT value FROM json_each(?))";
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

/** One component's index rows to add and remove on one target. */
export interface IndexUpdate {
  tid: number;
  cid: number;
  add: ReadonlyArray<number>;
  remove: ReadonlyArray<number>;
}

/** One target's retracting rows to add (or replace) and remove. */
export interface RetractUpdate {
  tid: number;
  add: ReadonlyArray<[string, Fingerprint | undefined]>;
  remove: ReadonlyArray<string>;
}

/**
 * The statements that apply `updates` to the key index: all components' rows together, as
 * `[tid, hash, cid]` triples, removals first.
 */
export function indexStatements(updates: ReadonlyArray<IndexUpdate>): InStatement[] {
  const remove: Array<[number, number, number]> = [];
  const add: Array<[number, number, number]> = [];
  for (const u of updates) {
    for (const h of u.remove) remove.push([u.tid, h, u.cid]);
    for (const h of u.add) add.push([u.tid, h, u.cid]);
  }
  const statements: InStatement[] = [];
  for (let i = 0; i < remove.length; i += BATCH) {
    const list = JSON.stringify(remove.slice(i, i + BATCH));
    for (const table of ["statecast_key_index", "statecast_key_index_recent"]) {
      statements.push({
        sql: `DELETE FROM ${table} WHERE (tid, kh, cid) IN ` +
          "(SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?))",
        args: [list],
      });
    }
  }
  for (let i = 0; i < add.length; i += BATCH) {
    statements.push({
      sql: "INSERT OR IGNORE INTO statecast_key_index_recent (tid, kh, cid) " +
        "SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
      args: [JSON.stringify(add.slice(i, i + BATCH))],
    });
  }
  return statements;
}

/** How many index rows wait in the recent table. */
export async function recentCount(db: Executor): Promise<number> {
  const rs = await db.execute("SELECT COUNT(*) FROM statecast_key_index_recent");
  return Number(rs.rows[0]?.[0] ?? 0);
}

/** The statements that move the recent rows into the index, in index order. */
export function mergeStatements(): InStatement[] {
  return [
    "INSERT OR IGNORE INTO statecast_key_index (tid, kh, cid) " +
    "SELECT tid, kh, cid FROM statecast_key_index_recent ORDER BY tid, kh, cid",
    "DELETE FROM statecast_key_index_recent",
  ];
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
    { sql: `DELETE FROM statecast_key_index WHERE tid = ${tid}`, args: [app, target] },
    { sql: `DELETE FROM statecast_key_index_recent WHERE tid = ${tid}`, args: [app, target] },
    { sql: `DELETE FROM statecast_retracting WHERE tid = ${tid}`, args: [app, target] },
  ];
}
