/**
 * The state store: what statecast remembers between runs, in libSQL (a local file by default,
 * any libSQL URL otherwise). Per app it holds:
 * - per component: the memo (size, mtime, content and logic fingerprints, when it was recorded)
 *   and a small integer id;
 * - per target and component: the fingerprint of every key the component declared, as one JSON
 *   row (`[keyId, fp, keyId, fp, ...]`), read only for the components a round runs;
 * - the key index and the keys being retracted (`key_index.ts`), read per key, in batches;
 * - per target: the keys in doubt, written before changes are applied and cleared by the commit
 *   after the acks, so a crash or a refused batch in between cannot leave the target holding a
 *   value the store does not know about;
 * - per app: the lock of the run that writes (`run_lock.ts`).
 *
 * What was last *published* for a key is derived: the fingerprint of its owner (the first
 * declaring component in path order), or of the retracting row when nobody declares it any more.
 * Commits happen only after the targets acknowledged, one transaction per chunk of a round, so the
 * derived value is always what the target holds, or newer.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type Client, createClient, type InStatement, type Transaction } from "@libsql/client";
import { errorMessage, redactSecrets, StatecastError } from "./errors.ts";
import { claimOwnFiles, databaseFiles } from "./_own_files.ts";
import { type Fingerprint, initFingerprints, keyHash } from "./fingerprint.ts";
import {
  forgetIndexStatements,
  type IndexUpdate,
  isRetracting,
  KEY_INDEX_SCHEMA,
  KEY_RUNS_SCHEMA,
  KEY_RUNS_SEQ_INDEX,
  KeyIndex,
  LEGACY_INDEX_TABLES,
  retractingCount,
  retractingOf,
  retractingPage,
  retractStatements,
  type RetractUpdate,
} from "./key_index.ts";
import type { ComponentRecord } from "./memo.ts";

export type { ComponentRecord } from "./memo.ts";

/** The schema this statecast writes. Bump it and add a migration when the layout changes. */
export const SCHEMA_VERSION = 8;

/** The oldest schema a dry run reads as it is: the versions after it only add indexes. */
const READABLE_FROM = 7;

/** Migrations: `MIGRATIONS[v]` takes a store from version v to v + 1. */
const MIGRATIONS: ReadonlyArray<ReadonlyArray<string>> = [
  [
    `CREATE TABLE IF NOT EXISTS statecast_components (
      app TEXT NOT NULL, component TEXT NOT NULL,
      size INTEGER NOT NULL, mtime_ms REAL NOT NULL,
      content_fp TEXT NOT NULL, logic_fp TEXT NOT NULL, recorded_at_ms REAL NOT NULL,
      PRIMARY KEY (app, component)) WITHOUT ROWID`,
    `CREATE TABLE IF NOT EXISTS statecast_declarations (
      app TEXT NOT NULL, target TEXT NOT NULL, component TEXT NOT NULL,
      key_count INTEGER NOT NULL, keys TEXT NOT NULL,
      PRIMARY KEY (app, target, component)) WITHOUT ROWID`,
  ],
  [
    // v2: keys whose value on the target may differ from the committed state (sent, not yet
    // committed), re-sent whatever the files say until a commit settles them.
    `CREATE TABLE IF NOT EXISTS statecast_in_doubt (
      app TEXT NOT NULL, target TEXT NOT NULL, keys TEXT NOT NULL,
      PRIMARY KEY (app, target)) WITHOUT ROWID`,
  ],
  [
    // v3: one writer per app: the run that holds the lock, and when it was last seen.
    `CREATE TABLE IF NOT EXISTS statecast_locks (
      app TEXT NOT NULL PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER NOT NULL,
      host TEXT NOT NULL, started_at_ms INTEGER NOT NULL, heartbeat_ms INTEGER NOT NULL)
      WITHOUT ROWID`,
  ],
  // v4: component and target ids and the key index, filled in code (`migrateToKeyIndex`).
  [],
  [
    // v5: the files failing or waiting now, and why, for `status` (written after each round).
    `CREATE TABLE IF NOT EXISTS statecast_failures (
      app TEXT NOT NULL, component TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
      line INTEGER, blocked_by TEXT, at_ms INTEGER NOT NULL,
      PRIMARY KEY (app, component)) WITHOUT ROWID`,
  ],
  // v6: new key index rows wait in a small table and are merged into the index in bulk.
  [
    `CREATE TABLE IF NOT EXISTS statecast_key_index_recent (
      tid INTEGER NOT NULL, kh INTEGER NOT NULL, cid INTEGER NOT NULL,
      PRIMARY KEY (tid, kh, cid)) WITHOUT ROWID`,
  ],
  // v7: the key index as sorted runs of blobs, held in memory (`migrateToKeyRuns`).
  [KEY_RUNS_SCHEMA],
  // v8: the runs' (tid, seq) alone, for the check before every use of the index in memory
  // (`KeyIndex`): counting the runs' own rows walked their blobs' pages, 2.1 ms a check at 1M
  // keys (0.36 s of a first publish's main thread), 0.02 ms with this index.
  [KEY_RUNS_SEQ_INDEX],
];

/** A component's memo row and its id (the key index refers to components by id). */
export interface ComponentRow extends ComponentRecord {
  id: number;
}

/** Key id → fingerprint of the declared state. */
export type KeyFingerprints = Map<string, Fingerprint>;

/**
 * A file's keys as a commit gives them: key id → fingerprint, or → what the file declared, which
 * carries its fingerprint (the engine hands over its own map: no copy per commit).
 */
export type KeyList = ReadonlyMap<string, Fingerprint | { readonly fingerprint: Fingerprint }>;

/** Everything committed for one app (for tests and tools: a round never loads it whole). */
export interface StoredState {
  components: Map<string, ComponentRow>;
  /** Target id → component → keys. */
  declarations: Map<string, Map<string, KeyFingerprints>>;
}

/** What one chunk of a round commits, in one transaction. */
export interface RoundCommit {
  components: Map<string, ComponentRow>;
  /** Replaces the component's keys for the target; an empty map removes them. */
  declarations: Array<{ target: string; component: string; keys: KeyList }>;
  /** Components that are gone: their memo and all their keys are removed. */
  removed: string[];
  /** Key index rows to add and remove (see `key_index.ts`). */
  index?: IndexUpdate[];
  /** Keys to start or stop retracting. */
  retract?: RetractUpdate[];
  /** Targets no longer mounted: all their keys are removed. */
  forgetTargets?: string[];
  /** Replaces the keys in doubt of these targets (an empty list clears them). */
  inDoubt?: Map<string, string[]>;
}

/** The run that holds an app's lock. */
export interface LockHolder {
  /** A random id per run. */
  owner: string;
  pid: number;
  host: string;
  startedAtMs: number;
  /** When the holder last showed it is alive (ms since the epoch). */
  heartbeatMs: number;
}

/** A summary per target, for `status`. */
export interface TargetStatus {
  target: string;
  components: number;
  keys: number;
}

/** A file that failed or waits, as the store keeps it for `status`. */
export interface FileFailure {
  path: string;
  /** "invalid", "unreadable", "waiting", "refused" or "error". */
  reason: string;
  /** The error message, secrets redacted. */
  message: string;
  /** The 1-based line the error is about, when known. */
  line?: number;
  /** The file it waits on (reason "waiting"). */
  blockedBy?: string;
  /** When it failed (ms since the epoch). */
  atMs: number;
}

/** Options of {@linkcode StateStore.open}. */
export interface StateStoreOptions {
  /** Auth token for a remote libSQL server. */
  authToken?: string;
  /**
   * Only read (`--dry-run`): create no file and no folder, migrate nothing, refuse every write.
   * A `file:` store that does not exist, or a store without statecast's tables, reads as an
   * empty store (an in-memory one); a store of an older schema is an error that says to run once
   * without `--dry-run`. @default false
   */
  readOnly?: boolean;
  /**
   * Key index entries kept as deltas at least before they are compacted into a new base (see
   * `key_index.ts`). Tests make it small, to compact often. @default COMPACT_ROWS (100,000)
   */
  compactRows?: number;
  /**
   * Whether a `file:` store that does not exist is made. `false` (`status`): it reads as an empty
   * store, and no file or folder is made; an existing store is opened (and migrated) as usual.
   * @default true
   */
  create?: boolean;
}

/**
 * Why `url` cannot name a state store, in words that say what to write instead, or undefined
 * when it can: a store is a URL (`file:path`, `libsql://...`, `http(s)://...`) or `:memory:`,
 * and a bare path such as `state.db` is the usual slip.
 *
 * @example
 * ```ts
 * import { stateUrlProblem } from "./state_store.ts";
 * if (stateUrlProblem("file:state.db") !== undefined) throw new Error();
 * if (!stateUrlProblem("state.db")?.includes('write "file:state.db"')) throw new Error();
 * ```
 */
export function stateUrlProblem(url: string): string | undefined {
  if (url === ":memory:" || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(url)) return undefined;
  return `the state store "${redactSecrets(url)}" is not a URL; for a local file write ` +
    `"file:${redactSecrets(url)}"`;
}

/** The libSQL state store. `await using` closes it. */
export class StateStore implements AsyncDisposable {
  readonly #client: Client;
  /** The store's URL with any password or token hidden, for messages. */
  readonly url: string;
  /** The app and owner id of the lock this store holds: its writes check it is still held. */
  #lock: { app: string; owner: string } | undefined;
  /** The key index, held in memory once read. */
  #index: KeyIndex;
  /** Whether the store was opened to be read only (a dry run): every write throws. */
  readonly readOnly: boolean;
  /** Gives back a local store's files, claimed as statecast's own while it is open. */
  #releaseFiles: (() => void) | undefined;

  private constructor(
    client: Client,
    url: string,
    readOnly: boolean,
    options: { compactRows?: number } = {},
  ) {
    this.#client = client;
    this.#index = new KeyIndex(client, options);
    this.url = redactSecrets(url);
    this.readOnly = readOnly;
  }

  /**
   * Opens (and creates or migrates) the store at `url`: `file:path` (relative to the working
   * directory), `:memory:`, `libsql://...`, `http(s)://...`. With `readOnly`, creates and
   * migrates nothing (see {@linkcode StateStoreOptions.readOnly}).
   */
  static async open(url: string, options: StateStoreOptions = {}): Promise<StateStore> {
    const problem = stateUrlProblem(url);
    if (problem !== undefined) throw new TypeError(problem);
    const readOnly = options.readOnly ?? false;
    let clientUrl = url;
    if (url.startsWith("file:")) {
      const path = resolve(url.slice("file:".length));
      if ((readOnly || options.create === false) && !existsSync(path)) {
        return await StateStore.#empty(url);
      }
      if (!readOnly) await mkdir(dirname(path), { recursive: true });
      clientUrl = `file:${path}`;
    }
    let client: Client;
    try {
      client = createClient({
        url: clientUrl,
        ...(options.authToken === undefined ? {} : { authToken: options.authToken }),
      });
    } catch (cause) {
      throw new StatecastError(
        `Cannot open the state store "${redactSecrets(url)}": ${redactSecrets(String(cause))}`,
        { cause },
      );
    }
    const compact = options.compactRows === undefined ? {} : { compactRows: options.compactRows };
    const store = new StateStore(client, url, readOnly, compact);
    try {
      if (clientUrl.startsWith("file:")) {
        if (!readOnly) await client.execute("PRAGMA journal_mode=WAL");
        await client.execute("PRAGMA busy_timeout=5000");
      }
      if (readOnly && await store.#schemaVersion() === 0) {
        client.close();
        return await StateStore.#empty(url);
      }
      await store.#migrate();
      if (clientUrl.startsWith("file:")) {
        store.#releaseFiles = claimOwnFiles(databaseFiles(clientUrl.slice("file:".length)));
      }
    } catch (cause) {
      client.close();
      if (cause instanceof StatecastError) throw cause;
      throw new StatecastError(
        `Cannot open the state store "${store.url}": ${redactSecrets(String(cause))}`,
        { cause },
      );
    }
    return store;
  }

  /** An empty store in memory, read only, that says `url` in messages (a dry run's). */
  static async #empty(url: string): Promise<StateStore> {
    const client = createClient({ url: ":memory:" });
    await new StateStore(client, url, false).#migrate(); // made in memory, then only read
    return new StateStore(client, url, true);
  }

  /** The store's schema version; 0 when it has no statecast tables. */
  async #schemaVersion(): Promise<number> {
    const meta = await this.#client.execute(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'statecast_meta'",
    );
    if (meta.rows.length === 0) return 0;
    const rows = await this.#client.execute(
      "SELECT value FROM statecast_meta WHERE name = 'schema_version'",
    );
    return rows.rows.length === 0 ? 0 : Number(rows.rows[0]![0]);
  }

  async #migrate(): Promise<void> {
    const found = await this.#schemaVersion();
    if (found > SCHEMA_VERSION) {
      throw new StatecastError(
        `The state store "${this.url}" has schema version ${found}, newer than this statecast ` +
          `(${SCHEMA_VERSION}); upgrade statecast, or use another --state`,
      );
    }
    if (found === SCHEMA_VERSION) return;
    if (this.readOnly) {
      if (found >= READABLE_FROM) return; // only indexes are missing: read it as it is
      throw new StatecastError(
        `The state store "${this.url}" has schema version ${found}, older than this statecast ` +
          `(${SCHEMA_VERSION}), and a dry run changes nothing: run once without --dry-run ` +
          "(that upgrades it), then plan again",
      );
    }
    await this.#client.execute(
      "CREATE TABLE IF NOT EXISTS statecast_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    );
    await initFingerprints(); // the key index is keyed by key hashes
    const tx = await this.#client.transaction("write");
    try {
      for (const sql of MIGRATIONS.slice(found).flat()) await tx.execute(sql);
      if (found < 4) await migrateToKeyIndex(tx);
      if (found < 7) await migrateToKeyRuns(tx);
      await tx.execute({
        sql: "INSERT INTO statecast_meta (name, value) VALUES ('schema_version', ?) " +
          "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        args: [String(SCHEMA_VERSION)],
      });
      await tx.commit();
    } finally {
      tx.close();
    }
  }

  /** Loads everything committed for `app`. */
  async load(app: string): Promise<StoredState> {
    return {
      components: await this.loadComponents(app),
      declarations: await this.loadDeclarations(app),
    };
  }

  /** The memo rows of `app`: one row per file, cheap. */
  async loadComponents(app: string): Promise<Map<string, ComponentRow>> {
    // One JSON text instead of a result row per file: 100,000 rows through the client's row
    // objects took 0.9 s. Reals go as 17-digit text, so every mtime compares exactly.
    const rs = await this.#client.execute({
      sql: "SELECT json_group_array(json_array(component, size, printf('%!.17g', mtime_ms), " +
        "content_fp, logic_fp, printf('%!.17g', recorded_at_ms), id)) " +
        "FROM statecast_components WHERE app = ?",
      args: [app],
    });
    const rows = JSON.parse(String(rs.rows[0]?.[0] ?? "[]")) as Array<
      [string, number, string, string, string, string, number]
    >;
    const components = new Map<string, ComponentRow>();
    for (const [component, size, mtime, content, logic, recorded, id] of rows) {
      components.set(component, {
        size,
        mtimeMs: Number(mtime),
        contentFingerprint: content,
        logicFingerprint: logic,
        recordedAtMs: Number(recorded),
        id,
      });
    }
    return components;
  }

  /** The ids of `app`'s targets (made on first use): the key index refers to targets by id. */
  async targetIds(app: string, targets: Iterable<string>): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    if (this.readOnly) {
      // Nothing is made: a target the store does not know gets an id no row has (below 0).
      for (const target of targets) {
        const rs = await this.#client.execute({
          sql: "SELECT tid FROM statecast_targets WHERE app = ? AND target = ?",
          args: [app, target],
        });
        ids.set(target, rs.rows.length === 0 ? -1 - ids.size : Number(rs.rows[0]![0]));
      }
      return ids;
    }
    for (const target of targets) {
      const rs = await this.#client.batch([
        {
          sql: "INSERT OR IGNORE INTO statecast_targets (app, target) VALUES (?, ?)",
          args: [app, target],
        },
        {
          sql: "SELECT tid FROM statecast_targets WHERE app = ? AND target = ?",
          args: [app, target],
        },
      ], "write");
      ids.set(target, Number(rs[1]!.rows[0]![0]));
    }
    return ids;
  }

  /** Targets of `app` known to the store (declared, retracting or in doubt). */
  async knownTargets(app: string): Promise<string[]> {
    const rs = await this.#client.execute({
      sql: "SELECT target FROM statecast_targets WHERE app = ? UNION " +
        "SELECT target FROM statecast_declarations WHERE app = ? UNION " +
        "SELECT target FROM statecast_in_doubt WHERE app = ?",
      args: [app, app, app],
    });
    return rs.rows.map((r) => String(r[0]));
  }

  /** The key lists of `components` on `target`: per component, key id → fingerprint. */
  async declarationsOf(
    app: string,
    target: string,
    components: ReadonlyArray<string>,
  ): Promise<Map<string, KeyFingerprints>> {
    const found = new Map<string, KeyFingerprints>();
    for (let i = 0; i < components.length; i += 1000) {
      const rs = await this.#client.execute({
        sql: "SELECT component, keys FROM statecast_declarations WHERE app = ? AND target = ? " +
          "AND component IN (SELECT value FROM json_each(?))",
        args: [app, target, JSON.stringify(components.slice(i, i + 1000))],
      });
      for (const row of rs.rows) {
        const component = String(row[0]);
        found.set(component, this.#keyList(app, target, component, String(row[1])));
      }
    }
    return found;
  }

  /** See {@linkcode KeyIndex.declarersOf}. */
  declarersOf(
    tid: number,
    hashes: ReadonlyArray<number>,
    exclude: ReadonlyArray<number>,
  ): Promise<Array<[number, number]>> {
    return this.#index.declarersOf(tid, hashes, exclude);
  }

  /** See {@linkcode KeyIndex.keyCount}. */
  keyCount(tid: number): Promise<number> {
    return this.#index.keyCount(tid);
  }

  /** See `retractingOf` in `key_index.ts`. */
  retractingOf(
    tid: number,
    keys: ReadonlyArray<string>,
  ): Promise<Map<string, Fingerprint | undefined>> {
    return retractingOf(this.#client, tid, keys);
  }

  /** See `isRetracting` in `key_index.ts`. */
  isRetracting(tid: number): Promise<boolean> {
    return isRetracting(this.#client, tid);
  }

  /** See `retractingPage` in `key_index.ts`. */
  retractingPage(
    tid: number,
    limit: number,
  ): Promise<Array<{ key: string; fp: Fingerprint | undefined }>> {
    return retractingPage(this.#client, tid, limit);
  }

  /** See `retractingCount` in `key_index.ts`. */
  retractingCount(tid: number): Promise<number> {
    return retractingCount(this.#client, tid);
  }

  /** Every key fingerprint of `app`, per target and file: the costly part, read when needed. */
  async loadDeclarations(app: string): Promise<Map<string, Map<string, KeyFingerprints>>> {
    const rs = await this.#client.execute({
      sql: "SELECT target, component, keys FROM statecast_declarations WHERE app = ?",
      args: [app],
    });
    const declarations = new Map<string, Map<string, KeyFingerprints>>();
    for (const row of rs.rows) {
      const target = String(row[0]);
      let byComponent = declarations.get(target);
      if (byComponent === undefined) declarations.set(target, byComponent = new Map());
      const component = String(row[1]);
      byComponent.set(component, this.#keyList(app, target, component, String(row[2])));
    }
    return declarations;
  }

  /** One file's key list as stored in `statecast_declarations`, decoded. */
  #keyList(app: string, target: string, component: string, text: string): KeyFingerprints {
    return this.#decode(text, decodeKeys, {
      table: "statecast_declarations",
      app,
      where: `target "${target}", file "${component}"`,
    });
  }

  /**
   * Decodes one stored JSON column; a row that does not decode (cut short, edited by hand) is an
   * error naming the store, the table, the row and what to do, not a bare `SyntaxError`.
   */
  #decode<T>(
    text: string,
    decode: (text: string) => T,
    row: { table: string; app: string; where: string },
  ): T {
    try {
      return decode(text);
    } catch (cause) {
      throw new StatecastError(
        `The state store "${this.url}" has a corrupt row in ${row.table} (app "${row.app}", ` +
          `${row.where}): ${errorMessage(cause)}. Run with --reset to forget this app's state ` +
          "(the next run re-sends every row), or restore the store from a backup",
        { cause },
      );
    }
  }

  /** Commits one round in one transaction. */
  async commit(app: string, commit: RoundCommit): Promise<void> {
    const statements: InStatement[] = [];
    for (const target of commit.forgetTargets ?? []) {
      statements.push(...forgetTargetStatements(app, target));
    }
    for (const [target, keys] of commit.inDoubt ?? []) {
      statements.push(inDoubtStatement(app, target, keys));
    }
    // Many rows per statement (json_each): a chunk of 1,000 small files is a few statements, not
    // thousands.
    for (const components of slices(commit.removed, ROWS_PER_STATEMENT)) {
      const list = JSON.stringify(components);
      statements.push(
        {
          sql: "DELETE FROM statecast_components WHERE app = ? " +
            "AND component IN (SELECT value FROM json_each(?))",
          args: [app, list],
        },
        {
          sql: "DELETE FROM statecast_declarations WHERE app = ? " +
            "AND component IN (SELECT value FROM json_each(?))",
          args: [app, list],
        },
      );
    }
    const rows = [...commit.components].map(([component, r]) => [
      component,
      r.size,
      r.mtimeMs,
      r.contentFingerprint,
      r.logicFingerprint,
      r.recordedAtMs,
      r.id,
    ]);
    for (const slice of slices(rows, ROWS_PER_STATEMENT)) {
      statements.push({
        sql: "INSERT INTO statecast_components " +
          "(app, component, size, mtime_ms, content_fp, logic_fp, recorded_at_ms, id) " +
          "SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, " +
          "value ->> 5, value ->> 6 FROM json_each(?) WHERE true " +
          "ON CONFLICT (app, component) DO UPDATE SET " +
          "size = excluded.size, mtime_ms = excluded.mtime_ms, content_fp = excluded.content_fp, " +
          "logic_fp = excluded.logic_fp, recorded_at_ms = excluded.recorded_at_ms, id = excluded.id",
        args: [app, JSON.stringify(slice)],
      });
    }
    const gone = commit.declarations.filter((d) => d.keys.size === 0)
      .map((d) => [d.target, d.component]);
    for (const slice of slices(gone, ROWS_PER_STATEMENT)) {
      statements.push({
        sql: "DELETE FROM statecast_declarations WHERE app = ? AND (target, component) IN " +
          "(SELECT value ->> 0, value ->> 1 FROM json_each(?))",
        args: [app, JSON.stringify(slice)],
      });
    }
    // Small key lists go many to a statement (json_each); a large one is its own statement's
    // parameter, not JSON text inside JSON text (escaped by us, parsed and unescaped by SQLite).
    const upsert = " ON CONFLICT (app, target, component) DO UPDATE SET " +
      "key_count = excluded.key_count, keys = excluded.keys";
    const lists: unknown[][] = [];
    for (const d of commit.declarations) {
      if (d.keys.size === 0) continue;
      if (d.keys.size < OWN_STATEMENT_KEYS) {
        lists.push([d.target, d.component, d.keys.size, encodeKeys(d.keys)]);
        continue;
      }
      statements.push({
        sql: "INSERT INTO statecast_declarations (app, target, component, key_count, keys) " +
          `VALUES (?, ?, ?, ?, ?)${upsert}`,
        args: [app, d.target, d.component, d.keys.size, encodeKeys(d.keys)],
      });
    }
    for (const slice of slices(lists, ROWS_PER_STATEMENT)) {
      statements.push({
        sql: "INSERT INTO statecast_declarations (app, target, component, key_count, keys) " +
          "SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) " +
          `WHERE true${upsert}`,
        args: [app, JSON.stringify(slice)],
      });
    }
    statements.push(...retractStatements(commit.retract ?? []));
    // The key index in memory takes the update now; if the commit fails, it is read again.
    this.#writable();
    statements.push(...await this.#index.update(commit.index ?? []));
    await this.#indexWrite(app, statements, (commit.forgetTargets ?? []).length > 0);
  }

  /**
   * {@linkcode StateStore.#write} of statements that change the key index: what it holds in
   * memory is dropped (read again on next use) when the write fails, or when `forgets` (targets
   * forgotten: a new target may get the same id).
   */
  async #indexWrite(app: string, statements: InStatement[], forgets: boolean): Promise<void> {
    try {
      await this.#write(app, statements);
    } catch (error) {
      this.#index.forget();
      throw error;
    }
    if (forgets) this.#index.forget();
  }

  /**
   * Runs `statements` in one write transaction. When this store holds `app`'s lock, the same
   * transaction checks that it still does (and refreshes its heartbeat), so a run whose lock
   * was taken over can never overwrite the new holder's state.
   */
  async #write(app: string, statements: InStatement[]): Promise<void> {
    this.#writable();
    if (statements.length === 0) return;
    const lock = this.#lock;
    if (lock === undefined || lock.app !== app) {
      await this.#client.batch(statements, "write");
      return;
    }
    const tx = await this.#client.transaction("write");
    try {
      const held = await tx.execute({
        sql: "UPDATE statecast_locks SET heartbeat_ms = ? WHERE app = ? AND owner = ?",
        args: [Date.now(), app, lock.owner],
      });
      if (held.rowsAffected === 0) {
        throw new StatecastError(
          `The lock on app "${app}" in the state store "${this.url}" was taken over by ` +
            "another run; this run stops without committing (its changes are sent again later)",
        );
      }
      await tx.batch(statements);
      await tx.commit();
    } finally {
      tx.close();
    }
  }

  /**
   * Takes `app`'s lock for `holder` unless another run holds it and `isStale` says that run is
   * alive. Returns undefined when taken, else the current holder. One transaction, so two runs
   * racing for it cannot both win.
   */
  async acquireLock(
    app: string,
    holder: LockHolder,
    isStale: (current: LockHolder) => boolean,
  ): Promise<LockHolder | undefined> {
    this.#writable();
    const tx = await this.#client.transaction("write");
    try {
      const current = lockHolderOf(
        (await tx.execute({ sql: `${SELECT_LOCK} WHERE app = ?`, args: [app] })).rows[0],
      );
      if (current !== undefined && current.owner !== holder.owner && !isStale(current)) {
        return current;
      }
      await tx.execute({
        sql: "INSERT INTO statecast_locks (app, owner, pid, host, started_at_ms, heartbeat_ms) " +
          "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app) DO UPDATE SET owner = excluded.owner, " +
          "pid = excluded.pid, host = excluded.host, started_at_ms = excluded.started_at_ms, " +
          "heartbeat_ms = excluded.heartbeat_ms",
        args: [app, holder.owner, holder.pid, holder.host, holder.startedAtMs, holder.heartbeatMs],
      });
      await tx.commit();
      this.#lock = { app, owner: holder.owner };
      return undefined;
    } finally {
      tx.close();
    }
  }

  /** Throws when the store was opened read only: a write there is a bug of statecast's. */
  #writable(): void {
    if (this.readOnly) {
      throw new Error(`The state store "${this.url}" was opened read only (a dry run)`);
    }
  }

  /** Refreshes the heartbeat of the lock this store holds; false if it is no longer held. */
  async heartbeat(): Promise<boolean> {
    if (this.#lock === undefined) return false;
    const rs = await this.#client.execute({
      sql: "UPDATE statecast_locks SET heartbeat_ms = ? WHERE app = ? AND owner = ?",
      args: [Date.now(), this.#lock.app, this.#lock.owner],
    });
    return rs.rowsAffected > 0;
  }

  /** Gives the lock this store holds back (if it still holds it). */
  async releaseLock(): Promise<void> {
    const lock = this.#lock;
    if (lock === undefined) return;
    this.#lock = undefined;
    await this.#client.execute({
      sql: "DELETE FROM statecast_locks WHERE app = ? AND owner = ?",
      args: [lock.app, lock.owner],
    });
  }

  /** Who holds `app`'s lock, if anyone (for `status`). */
  async lockHolder(app: string): Promise<LockHolder | undefined> {
    const rs = await this.#client.execute({ sql: `${SELECT_LOCK} WHERE app = ?`, args: [app] });
    return lockHolderOf(rs.rows[0]);
  }

  /** Forgets everything of `app`: the next run re-sends every declared state. */
  async reset(app: string): Promise<void> {
    const statements: InStatement[] = [];
    for (const target of await this.knownTargets(app)) {
      statements.push(...forgetTargetStatements(app, target));
    }
    await this.#indexWrite(app, [
      ...statements,
      { sql: "DELETE FROM statecast_components WHERE app = ?", args: [app] },
      { sql: "DELETE FROM statecast_declarations WHERE app = ?", args: [app] },
      { sql: "DELETE FROM statecast_in_doubt WHERE app = ?", args: [app] },
      { sql: "DELETE FROM statecast_failures WHERE app = ?", args: [app] },
    ], true);
  }

  /** The failing and waiting files of `app`, by path. */
  async failures(app: string): Promise<Map<string, FileFailure>> {
    const rs = await this.#client.execute({
      sql: "SELECT component, reason, message, line, blocked_by, at_ms FROM statecast_failures " +
        "WHERE app = ? ORDER BY component",
      args: [app],
    });
    return new Map(rs.rows.map((r) => {
      const failure: FileFailure = {
        path: String(r[0]),
        reason: String(r[1]),
        message: String(r[2]),
        atMs: Number(r[5]),
      };
      if (r[3] !== null) failure.line = Number(r[3]);
      if (r[4] !== null) failure.blockedBy = String(r[4]);
      return [failure.path, failure];
    }));
  }

  /** Forgets the failures of `forget`, then records `failures` (one transaction). */
  async recordFailures(
    app: string,
    change: { forget: Iterable<string>; failures: Iterable<FileFailure> },
  ): Promise<void> {
    const statements: InStatement[] = [];
    for (const path of change.forget) {
      statements.push({
        sql: "DELETE FROM statecast_failures WHERE app = ? AND component = ?",
        args: [app, path],
      });
    }
    for (const f of change.failures) {
      statements.push({
        sql: "INSERT INTO statecast_failures " +
          "(app, component, reason, message, line, blocked_by, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (app, component) DO UPDATE SET reason = excluded.reason, " +
          "message = excluded.message, line = excluded.line, blocked_by = excluded.blocked_by, " +
          "at_ms = excluded.at_ms",
        args: [app, f.path, f.reason, f.message, f.line ?? null, f.blockedBy ?? null, f.atMs],
      });
    }
    await this.#write(app, statements);
  }

  /** Per file of `app`, how many keys it declares on each target, for `status`. */
  async fileTargetKeyCounts(app: string): Promise<Map<string, Map<string, number>>> {
    const rs = await this.#client.execute({
      sql: "SELECT component, target, key_count FROM statecast_declarations WHERE app = ?",
      args: [app],
    });
    const counts = new Map<string, Map<string, number>>();
    for (const r of rs.rows) {
      const path = String(r[0]);
      let byTarget = counts.get(path);
      if (byTarget === undefined) counts.set(path, byTarget = new Map());
      byTarget.set(String(r[1]), Number(r[2]));
    }
    return counts;
  }

  /** Per target of `app`, keys retracting (deletes not sent yet), for `status`. */
  async retractingCounts(app: string): Promise<Map<string, number>> {
    const rs = await this.#client.execute({
      sql: "SELECT t.target, COUNT(r.key) FROM statecast_targets AS t " +
        "LEFT JOIN statecast_retracting AS r ON r.tid = t.tid WHERE t.app = ? GROUP BY t.target",
      args: [app],
    });
    return new Map(rs.rows.map((r) => [String(r[0]), Number(r[1])]));
  }

  /** The keys in doubt of `app`, per target. */
  async loadInDoubt(app: string): Promise<Map<string, Set<string>>> {
    const rs = await this.#client.execute({
      sql: "SELECT target, keys FROM statecast_in_doubt WHERE app = ?",
      args: [app],
    });
    return new Map(rs.rows.map((r) => {
      const target = String(r[0]);
      const keys = this.#decode(String(r[1]), decodeStrings, {
        table: "statecast_in_doubt",
        app,
        where: `target "${target}"`,
      });
      return [target, new Set(keys)];
    }));
  }

  /** Marks keys in doubt (replacing each given target's set), in one transaction. */
  async markInDoubt(app: string, inDoubt: Map<string, string[]>): Promise<void> {
    const statements = [...inDoubt].map(([target, keys]) => inDoubtStatement(app, target, keys));
    await this.#write(app, statements);
  }

  /** Targets of `app` with their numbers of components and keys. */
  async targets(app: string): Promise<TargetStatus[]> {
    const rs = await this.#client.execute({
      sql: "SELECT target, COUNT(*), SUM(key_count) FROM statecast_declarations WHERE app = ? " +
        "GROUP BY target ORDER BY target",
      args: [app],
    });
    return rs.rows.map((r) => ({
      target: String(r[0]),
      components: Number(r[1]),
      keys: Number(r[2]),
    }));
  }

  /** Closes the connection. */
  close(): void {
    this.#client.close();
    this.#releaseFiles?.();
  }

  /**
   * Closes the store. A local file's WAL is folded into the database and truncated first: it
   * otherwise keeps the size of the largest transaction (a merge of the key index writes ~20 MB)
   * beside the database for good. A store another process is using is closed as it is.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.readOnly && this.url.startsWith("file:")) {
      await this.#client.execute("PRAGMA wal_checkpoint(TRUNCATE)").catch(() => {});
    }
    this.close();
  }
}

/**
 * The statements that forget target `target` of `app`: its key lists, keys in doubt, index and
 * retracting rows.
 */
function forgetTargetStatements(app: string, target: string): InStatement[] {
  return [
    ...forgetIndexStatements(app, target),
    {
      sql: "DELETE FROM statecast_declarations WHERE app = ? AND target = ?",
      args: [app, target],
    },
    { sql: "DELETE FROM statecast_in_doubt WHERE app = ? AND target = ?", args: [app, target] },
    { sql: "DELETE FROM statecast_targets WHERE app = ? AND target = ?", args: [app, target] },
  ];
}

/**
 * Migration to schema 4: component ids, target ids, and the key index filled from the stored key
 * lists, one component at a time (memory stays bounded by the largest file).
 */
async function migrateToKeyIndex(tx: Transaction): Promise<void> {
  await tx.execute("ALTER TABLE statecast_components ADD COLUMN id INTEGER NOT NULL DEFAULT 0");
  await tx.execute(
    "UPDATE statecast_components SET id = r.n FROM (SELECT app AS a, component AS c, " +
      "ROW_NUMBER() OVER (PARTITION BY app ORDER BY component) AS n FROM statecast_components) " +
      "AS r WHERE r.a = statecast_components.app AND r.c = statecast_components.component",
  );
  for (const sql of KEY_INDEX_SCHEMA) await tx.execute(sql);
  await tx.execute(
    `CREATE TABLE IF NOT EXISTS statecast_key_index (
      tid INTEGER NOT NULL, kh INTEGER NOT NULL, cid INTEGER NOT NULL,
      PRIMARY KEY (tid, kh, cid)) WITHOUT ROWID`,
  );
  await tx.execute(
    "INSERT OR IGNORE INTO statecast_targets (app, target) " +
      "SELECT DISTINCT app, target FROM statecast_declarations",
  );
  let after: unknown[] = ["", "", ""];
  for (;;) {
    const rs = await tx.execute({
      sql: "SELECT d.app, d.target, d.component, d.keys, c.id, t.tid " +
        "FROM statecast_declarations AS d " +
        "JOIN statecast_components AS c ON c.app = d.app AND c.component = d.component " +
        "JOIN statecast_targets AS t ON t.app = d.app AND t.target = d.target " +
        "WHERE (d.app, d.target, d.component) > (?, ?, ?) " +
        "ORDER BY d.app, d.target, d.component LIMIT 100",
      args: after as string[],
    });
    if (rs.rows.length === 0) return;
    for (const row of rs.rows) {
      const hashes = new Set<number>();
      for (const id of decodeKeys(String(row[3])).keys()) hashes.add(keyHash(id));
      await tx.execute({
        sql: "INSERT OR IGNORE INTO statecast_key_index (tid, kh, cid) " +
          "SELECT ?, value, ? FROM json_each(?)",
        args: [Number(row[5]), Number(row[4]), JSON.stringify([...hashes])],
      });
      after = [row[0], row[1], row[2]];
    }
  }
}

/**
 * Migration to schema 7: the key index rows of schema 4 to 6 (the index and its recent table),
 * read in index order a segment at a time, become each target's base segments; the old tables
 * are dropped.
 */
async function migrateToKeyRuns(tx: Transaction): Promise<void> {
  const [index, recent] = LEGACY_INDEX_TABLES;
  for (const table of LEGACY_INDEX_TABLES) {
    await tx.execute(
      `CREATE TABLE IF NOT EXISTS ${table} (tid INTEGER NOT NULL, kh INTEGER NOT NULL, ` +
        "cid INTEGER NOT NULL, PRIMARY KEY (tid, kh, cid)) WITHOUT ROWID",
    );
  }
  const both = `SELECT tid, kh, cid FROM ${index} UNION SELECT tid, kh, cid FROM ${recent}`;
  const tids = await tx.execute(`SELECT DISTINCT tid FROM (${both}) ORDER BY tid`);
  for (const row of tids.rows) {
    const tid = Number(row[0]);
    let after = [-1, -1];
    for (let seq = 1;; seq++) {
      const rs = await tx.execute({
        sql: "SELECT json_group_array(json_array(kh, cid)) FROM (SELECT kh, cid FROM " +
          `(${both}) WHERE tid = ? AND (kh, cid) > (?, ?) ORDER BY kh, cid LIMIT 65536)`,
        args: [tid, after[0]!, after[1]!],
      });
      const pairs = JSON.parse(String(rs.rows[0]?.[0] ?? "[]")) as Array<[number, number]>;
      if (pairs.length === 0) break;
      const hashes = Float64Array.from(pairs, (p) => p[0]);
      const cids = Int32Array.from(pairs, (p) => p[1]);
      await tx.execute({
        sql: "INSERT INTO statecast_key_runs (tid, seq, base, hashes, cids) VALUES (?, ?, 1, ?, ?)",
        args: [tid, seq, new Uint8Array(hashes.buffer), new Uint8Array(cids.buffer)],
      });
      after = pairs[pairs.length - 1]!;
    }
  }
  for (const table of LEGACY_INDEX_TABLES) await tx.execute(`DROP TABLE IF EXISTS ${table}`);
}

/** Rows written per statement, as one JSON parameter. */
const ROWS_PER_STATEMENT = 1000;

/** Keys from which a file's key list is written by a statement of its own. */
const OWN_STATEMENT_KEYS = 256;

function* slices<T>(items: ReadonlyArray<T>, size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

const SELECT_LOCK = "SELECT owner, pid, host, started_at_ms, heartbeat_ms FROM statecast_locks";

function lockHolderOf(row: ArrayLike<unknown> | undefined): LockHolder | undefined {
  if (row === undefined) return undefined;
  return {
    owner: String(row[0]),
    pid: Number(row[1]),
    host: String(row[2]),
    startedAtMs: Number(row[3]),
    heartbeatMs: Number(row[4]),
  };
}

function inDoubtStatement(app: string, target: string, keys: string[]): InStatement {
  return keys.length === 0
    ? { sql: "DELETE FROM statecast_in_doubt WHERE app = ? AND target = ?", args: [app, target] }
    : {
      sql: "INSERT INTO statecast_in_doubt (app, target, keys) VALUES (?, ?, ?) " +
        "ON CONFLICT (app, target) DO UPDATE SET keys = excluded.keys",
      args: [app, target, JSON.stringify(keys)],
    };
}

function encodeKeys(keys: KeyList): string {
  const flat: string[] = [];
  for (const [id, fp] of keys) flat.push(id, typeof fp === "string" ? fp : fp.fingerprint);
  return JSON.stringify(flat);
}

/** A JSON array of strings; anything else is a `TypeError` (or the parser's `SyntaxError`). */
function decodeStrings(text: string): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((x) => typeof x === "string")) {
    throw new TypeError("expected a JSON array of strings");
  }
  return value;
}

function decodeKeys(text: string): KeyFingerprints {
  const flat = decodeStrings(text);
  if (flat.length % 2 !== 0) throw new TypeError("expected key and fingerprint pairs");
  const keys: KeyFingerprints = new Map();
  for (let i = 0; i < flat.length; i += 2) keys.set(flat[i]!, flat[i + 1]!);
  return keys;
}
