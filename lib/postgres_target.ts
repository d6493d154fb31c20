/**
 * The PostgreSQL table target: declared rows become `INSERT … ON CONFLICT (primary key) DO
 * UPDATE`, a key nobody declares any more becomes a `DELETE`, an unchanged row sends nothing.
 * Statements go out in batches, each transaction acknowledged only once committed.
 *
 * The user states the table's columns, their SQL types and its primary key. statecast creates
 * the table if it is missing, checks an existing one against the declaration and refuses when
 * they differ; it never drops or alters a table or a column.
 *
 * statecast never creates the client: the app's lifespan provides one under a
 * {@linkcode ContextKey}. Only {@linkcode SqlClient}'s two methods are used, which postgres.js'
 * `sql` object has as it is (any other driver fits behind a ten-line adapter).
 *
 * @module
 */
import { type ContextKey, currentMountScope } from "./context.ts";
import { errorMessage, StatecastError } from "./errors.ts";
import { type Fingerprint, fingerprintParts } from "./fingerprint.ts";
import { type Key, keyId } from "./key_id.ts";
import { type Change, declare, type DeclaredState, sourcePlace, type Target } from "./target.ts";
import { type KeyForm, keyForm } from "./_postgres_keys.ts";

/**
 * A row as the client returns it.
 *
 * @example
 * ```ts
 * import type { postgres } from "./mod.ts";
 * const row: postgres.SqlRow = { name: "qty", type: "integer" };
 * if (row.type !== "integer") throw new Error();
 * ```
 */
export type SqlRow = Record<string, unknown>;

/**
 * Runs one statement with positional parameters (`$1`, `$2`...): postgres.js' `sql.unsafe`.
 *
 * @example
 * ```ts
 * import type { SqlQuery } from "./mod.ts";
 * const seen: string[] = [];
 * const query: SqlQuery = {
 *   unsafe: (text, parameters = []) => {
 *     seen.push(`${text} ${parameters.join(",")}`);
 *     return Promise.resolve([]);
 *   },
 * };
 * await query.unsafe("DELETE FROM t WHERE k = $1", ["A1"]);
 * if (seen[0] !== "DELETE FROM t WHERE k = $1 A1") throw new Error();
 * ```
 */
export interface SqlQuery {
  /** Runs `query` with `parameters` as `$1`, `$2`...; `prepare` asks for a prepared statement. */
  unsafe(query: string, parameters?: string[], options?: { prepare?: boolean }): Promise<SqlRow[]>;
}

/**
 * The smallest PostgreSQL client statecast needs, a subset of postgres.js' `Sql`: statements,
 * and a transaction that commits when `fn` resolves and rolls back when it rejects.
 *
 * @example
 * ```ts
 * import type { SqlClient } from "./mod.ts";
 * // A client that logs statements and runs "transactions" on itself (for a test).
 * const log: string[] = [];
 * const client: SqlClient = {
 *   unsafe: (query) => Promise.resolve(log.push(query) ? [] : []),
 *   begin: async (fn) => {
 *     log.push("BEGIN");
 *     const result = await fn(client);
 *     log.push("COMMIT");
 *     return result;
 *   },
 * };
 * await client.begin((tx) => tx.unsafe("SELECT 1"));
 * if (log.join("; ") !== "BEGIN; SELECT 1; COMMIT") throw new Error();
 * ```
 */
export interface SqlClient extends SqlQuery {
  /** Runs `fn` in a transaction: commits when it resolves, rolls back when it rejects. */
  begin<T>(fn: (tx: SqlQuery) => Promise<T>): Promise<T>;
}

/**
 * A primary key value: one cell, or one per column of a composite key (in `primaryKey` order).
 *
 * @example
 * ```ts
 * import type { RowKey } from "./mod.ts";
 * const single: RowKey = "A1";
 * const composite: RowKey = ["EU", 2024]; // primaryKey: ["region", "year"]
 * if (typeof single !== "string" || composite.length !== 2) throw new Error();
 * ```
 */
export type RowKey = string | number | bigint | ReadonlyArray<string | number | bigint>;

/**
 * What a row of the table should be: its primary key, and the other columns' values. The
 * argument of {@linkcode TableTarget.declareTargetState}.
 *
 * @example
 * ```ts
 * import type { RowState } from "./mod.ts";
 * const row: RowState = { key: "A1", value: { qty: 3, seen: new Date(0), note: null } };
 * if (row.value.qty !== 3) throw new Error();
 * ```
 */
export interface RowState {
  /** The primary key: one value, or one per `primaryKey` column. */
  key: RowKey;
  /**
   * Column → value. Strings are sent as they are (the server casts them to the column's type);
   * numbers, bigints and booleans as their text; `Date`s as ISO 8601; `Uint8Array`s as `bytea`;
   * other objects and arrays as JSON text; `null` or a missing column is SQL NULL. Primary key
   * columns may be given here too, when equal to `key`.
   */
  value: Readonly<Record<string, unknown>>;
}

/**
 * What the engine keeps for a declared row: the engine's key, the row, and its cells as text
 * (what {@linkcode TableTarget.declareTargetState} makes of a {@linkcode RowState}).
 *
 * @example
 * ```ts
 * import type { TableState } from "./mod.ts";
 * // columns { sku: "text", qty: "integer" }; a composite key's engine key is its JSON array.
 * const state: TableState = { key: "A1", value: { qty: 3 }, cells: ["A1", "3"] };
 * if (state.cells.length !== 2) throw new Error();
 * ```
 */
export interface TableState extends DeclaredState {
  /** The engine's key: the key's text, or the JSON array of a composite key's parts. */
  key: string;
  /** The row as declared. */
  value: Readonly<Record<string, unknown>>;
  /** Every column's cell as text, in table order; null is SQL NULL. */
  cells: Array<string | null>;
}

/**
 * Options of {@linkcode mountTableTarget}.
 *
 * @example
 * ```ts
 * import type { postgres } from "./mod.ts";
 * const options: postgres.TableTargetOptions = {
 *   columns: { region: "text", sku: "text", qty: "integer not null", row: "jsonb" },
 *   primaryKey: ["region", "sku"],
 * };
 * if (options.primaryKey?.length !== 2) throw new Error();
 * ```
 */
export interface TableTargetOptions {
  /**
   * The table's columns and their SQL types, in table order: `{ key: "text", value: "jsonb" }`.
   * A type may end in `not null`.
   */
  columns: Readonly<Record<string, string>>;
  /** The primary key's columns. @default the first column */
  primaryKey?: readonly string[];
  /** Rows per statement (each column's cells go as one JSON array). @default 10000 */
  batchSize?: number;
  /** Rows per transaction: each is acknowledged once committed. @default 10000 */
  transactionSize?: number;
}

/** Cells are NUL-free text (PostgreSQL text cannot hold NUL), so NUL marks SQL NULL. */
const NULL_MARK = "\u0000";

/** `name` as an SQL identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A value as the text the server casts to the column's type, or null. */
function cellText(value: unknown, column: string): string | null {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "bigint":
    case "boolean":
      return String(value);
    case "object":
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array) {
        let hex = "\\x";
        for (const b of value) hex += b.toString(16).padStart(2, "0");
        return hex;
      }
      return JSON.stringify(value);
    default:
      throw new TypeError(`column "${column}": cannot store a ${typeof value}`);
  }
}

/**
 * A mounted PostgreSQL table. Declare rows on it from a component; the engine calls
 * {@linkcode TableTarget.apply} with the changes of a round. {@linkcode mountTableTarget} makes
 * one inside `app.main()` (and checks or creates the table).
 *
 * @example
 * ```ts
 * import { ContextKey, initFingerprints, postgres } from "./mod.ts";
 * await initFingerprints();
 * const statements: string[] = [];
 * const client: postgres.SqlClient = {
 *   unsafe: (query) => Promise.resolve(statements.push(query) ? [] : []),
 *   begin: (fn) => fn(client),
 * };
 * const table = new postgres.TableTarget(new ContextKey("db"), client, "stock", {
 *   columns: { sku: "text", qty: "integer" },
 * });
 * if (table.id !== "postgres:db/public.stock" || table.primaryKey[0] !== "sku") throw new Error();
 * await table.apply([
 *   { kind: "upsert", key: "A1", state: { key: "A1", value: { qty: 3 }, cells: ["A1", "3"] } },
 *   { kind: "delete", key: "B2" },
 * ]);
 * if (!statements[0]!.startsWith('INSERT INTO "public"."stock"')) throw new Error();
 * if (!statements[1]!.startsWith('DELETE FROM "public"."stock"')) throw new Error();
 * ```
 */
export class TableTarget implements Target<TableState> {
  /** `postgres:<client key name>/<schema.table>`: the target's identity in the state store. */
  readonly id: string;
  /** `schema.table`. */
  readonly table: string;
  /** The columns, in table order. */
  readonly columns: readonly string[];
  /** The primary key's columns. */
  readonly primaryKey: readonly string[];
  readonly #sql: SqlClient;
  readonly #qualified: string;
  readonly #index: Map<string, number>;
  readonly #keyIndexes: number[];
  /** Each key column's canonical form (`01` → `1` for an integer); undefined: as given. */
  readonly #keyForms: Array<KeyForm | undefined>;
  /**
   * Keys upserted by this process that were declared in another form than their canonical one
   * (`01`): a delete of that form, stored before keys were canonical, is the same row.
   */
  readonly #rekeyed = new Set<string>();
  /** Each column's type as declared, maybe with `not null`. */
  readonly #declared: string[];
  /** Each column's type as the server spells it (no `not null`), for the casts. */
  #types: string[];
  readonly #batchSize: number;
  readonly #transactionSize: number;
  /** The table to create before the first write, when it was missing at mount. */
  #createSql: string | undefined;

  /**
   * The table `table` ("table" or "schema.table"), written through `client`, which was provided
   * for `clientKey` (whose name is part of the identity). Inside an app, use
   * {@linkcode mountTableTarget}, which also checks the table.
   */
  constructor(
    clientKey: ContextKey<SqlClient>,
    client: SqlClient,
    table: string,
    options: TableTargetOptions,
  ) {
    const parts = table.split(".");
    if (parts.length > 2 || parts.some((p) => p.length === 0)) {
      throw new TypeError(`A table name is "table" or "schema.table", got "${table}"`);
    }
    const [schema, name] = parts.length === 2 ? parts as [string, string] : ["public", parts[0]!];
    this.table = `${schema}.${name}`;
    this.#qualified = `${ident(schema)}.${ident(name)}`;
    this.id = `postgres:${clientKey.name}/${this.table}`;
    this.#sql = client;
    const columns = Object.entries(options?.columns ?? {});
    if (columns.length === 0) {
      throw new TypeError(`mountTableTarget("${table}"): options.columns must name the columns`);
    }
    this.columns = columns.map(([c]) => c);
    this.#declared = columns.map(([, t]) => t);
    this.#types = columns.map(([, t]) => t.replace(/\s+not\s+null\s*$/i, ""));
    this.#index = new Map(this.columns.map((c, i) => [c, i]));
    this.primaryKey = options.primaryKey ?? [this.columns[0]!];
    if (this.primaryKey.length === 0) throw new TypeError("primaryKey must name a column");
    this.#keyIndexes = this.primaryKey.map((c) => {
      const i = this.#index.get(c);
      if (i === undefined) {
        throw new TypeError(`primaryKey column "${c}" is not among the columns of "${table}"`);
      }
      return i;
    });
    this.#keyForms = this.#keyIndexes.map((i) => keyForm(this.#declared[i]!));
    this.#batchSize = Math.max(1, options.batchSize ?? 10_000);
    this.#transactionSize = Math.max(1, options.transactionSize ?? 10_000);
  }

  /**
   * Declares that the table should hold the row `value` under the primary key `key`, for the
   * running component. A column the table does not have is a `TypeError`.
   */
  declareTargetState(state: RowState): void {
    const cells = new Array<string | null>(this.columns.length).fill(null);
    const keyParts = Array.isArray(state.key) ? state.key : [state.key];
    if (keyParts.length !== this.primaryKey.length) {
      throw new TypeError(
        `"${this.table}": the key must have ${this.primaryKey.length} part(s) ` +
          `(${this.primaryKey.join(", ")}), got ${keyParts.length}`,
      );
    }
    // The cells keep the key as given; the engine's key is its canonical form, so two forms of
    // one row (1 and 01 in an integer column) are one key.
    const keyTexts = keyParts.map((part, i) => {
      const text = cellText(part, this.primaryKey[i]!);
      if (text === null) throw new TypeError(`"${this.table}": a key part is null`);
      cells[this.#keyIndexes[i]!] = text;
      return this.#canonical(text, i);
    });
    for (const [column, value] of Object.entries(state.value)) {
      const i = this.#index.get(column);
      if (i === undefined) {
        throw new TypeError(
          `"${this.table}" has no column "${column}" (declared: ${this.columns})`,
        );
      }
      const text = cellText(value, column);
      const k = this.#keyIndexes.indexOf(i);
      if (k < 0) cells[i] = text;
      else if (text === null || this.#canonical(text, k) !== keyTexts[k]) {
        throw new TypeError(
          `"${this.table}": column "${column}" is ${JSON.stringify(text)} but the key says ` +
            JSON.stringify(cells[i]),
        );
      }
    }
    declare(this, { key: this.#keyOf(keyTexts), value: state.value, cells });
  }

  /** The engine's key: the key itself, or the JSON array of a composite key's parts. */
  #keyOf(parts: string[]): string {
    return parts.length === 1 ? parts[0]! : JSON.stringify(parts);
  }

  /**
   * `text` in the canonical form of key column `k`'s type; a value that is not of the type is a
   * `StatecastError` naming the column, the value and the source line.
   */
  #canonical(text: string, k: number): string {
    const form = this.#keyForms[k];
    if (form === undefined) return text;
    try {
      return form(text);
    } catch (cause) {
      const place = sourcePlace();
      const where = place === undefined
        ? ""
        : ` in "${place.path}"${place.line === undefined ? "" : ` line ${place.line}`}`;
      const type = this.#declared[this.#keyIndexes[k]!]!.replace(/\s+not\s+null\s*$/i, "");
      throw new StatecastError(
        `Key column "${this.primaryKey[k]}" (${type}) of table "${this.table}" cannot hold ` +
          `${JSON.stringify(text)}${where}: ${errorMessage(cause)}`,
        {
          cause,
          ...(place === undefined ? {} : { path: place.path }),
          ...(place?.line === undefined ? {} : { line: place.line }),
        },
      );
    }
  }

  /** Fingerprint of the row's cells. */
  fingerprint(state: TableState): Fingerprint {
    return fingerprintParts(state.cells.map((c) => c ?? NULL_MARK));
  }

  /**
   * Checks the table against the declaration (a `StatecastError` naming every difference), or
   * notes that it must be created before the first write when it does not exist.
   */
  async check(): Promise<void> {
    const shape = await checkTable(this.#sql, {
      table: this.table,
      qualified: this.#qualified,
      columns: this.columns,
      definitions: this.columns.map((c, i) => `${ident(c)} ${this.#declared[i]}`),
      primaryKey: this.primaryKey,
    });
    this.#types = shape.types;
    this.#createSql = shape.createSql;
  }

  /**
   * Upserts and deletes `changes` in transactions of `transactionSize` rows, resolving once
   * every one is committed; a failure is a `StatecastError` naming the table.
   */
  async apply(
    changes: ReadonlyArray<Change<TableState>>,
    onApplied?: (count: number) => void,
  ): Promise<void> {
    for (let start = 0; start < changes.length; start += this.#transactionSize) {
      const part = changes.slice(start, start + this.#transactionSize);
      const { upserts, deletes } = this.#statementsOf(part);
      try {
        await this.#sql.begin(async (tx) => {
          if (this.#createSql !== undefined) await tx.unsafe(this.#createSql);
          for (let i = 0; i < upserts.length; i += this.#batchSize) {
            const rows = upserts.slice(i, i + this.#batchSize);
            await tx.unsafe(this.#upsertSql, columnJson(rows, this.columns.length), {
              prepare: true,
            });
          }
          for (let i = 0; i < deletes.length; i += this.#batchSize) {
            const keys = deletes.slice(i, i + this.#batchSize);
            await tx.unsafe(this.#deleteSql, columnJson(keys, this.primaryKey.length), {
              prepare: true,
            });
          }
        });
      } catch (cause) {
        throw describePostgresError(cause, this.table);
      }
      this.#createSql = undefined;
      onApplied?.(part.length);
    }
  }

  /**
   * The upserts' cells and the deletes' keys of `changes`. A delete of a key stored in another
   * form than its canonical one (by a statecast that compared keys as given: `01`) is dropped
   * when this process upserted the canonical key: both are the same row, and the delete would
   * remove the row the upsert wrote.
   */
  #statementsOf(
    changes: ReadonlyArray<Change<TableState>>,
  ): { upserts: Array<Array<string | null>>; deletes: string[][] } {
    const upserts: Array<Array<string | null>> = [];
    const deletes: string[][] = [];
    const upserted = new Set<string>();
    for (const change of changes) {
      if (change.kind !== "upsert") continue;
      const cells = change.state.cells;
      upserts.push(cells);
      const key = keyId(change.key);
      upserted.add(key);
      if (this.#keyOf(this.#keyIndexes.map((i) => cells[i]!)) !== key) this.#rekeyed.add(key);
    }
    for (const change of changes) {
      if (change.kind !== "delete") continue;
      const parts = this.#keyParts(change.key);
      const canonical = this.#canonicalOrUndefined(parts);
      const stale = canonical !== undefined && canonical !== this.#keyOf(parts);
      if (stale && (upserted.has(canonical) || this.#rekeyed.has(canonical))) continue;
      deletes.push(parts);
    }
    return { upserts, deletes };
  }

  /** The canonical key of a deleted key's parts; undefined when a part is not of its type. */
  #canonicalOrUndefined(parts: string[]): string | undefined {
    try {
      return this.#keyOf(parts.map((part, k) => this.#keyForms[k]?.(part) ?? part));
    } catch {
      return undefined;
    }
  }

  /** A deleted key's primary key cells, from the engine's key. */
  #keyParts(key: Key): string[] {
    const text = typeof key === "string" ? key : new TextDecoder().decode(key);
    return this.primaryKey.length === 1 ? [text] : JSON.parse(text) as string[];
  }

  /**
   * One statement for any number of rows: parameter `$c` is column c's cells as one JSON array of
   * strings (and nulls), its elements zipped into rows by `ROWS FROM` and cast to the column's
   * type. The text is the same for every batch (prepared once), and the client's work is one
   * `JSON.stringify` per column instead of a parameter per cell.
   */
  get #upsertSql(): string {
    const cells = this.#types.map((t, c) => `u.c${c}::${t}`).join(", ");
    const others = this.columns.filter((c) => !this.primaryKey.includes(c));
    const action = others.length === 0
      ? "DO NOTHING"
      : `DO UPDATE SET ${others.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(", ")}`;
    return `INSERT INTO ${this.#qualified} (${this.columns.map(ident).join(", ")}) ` +
      `SELECT ${cells} FROM ${rowsFrom(this.columns.length, "u", "c")} ` +
      `ON CONFLICT (${this.primaryKey.map(ident).join(", ")}) ${action}`;
  }

  /** One statement for any number of keys: parameter `$k` is key column k's cells, as JSON. */
  get #deleteSql(): string {
    const type = (k: number) => this.#types[this.#keyIndexes[k]!];
    if (this.primaryKey.length === 1) {
      return `DELETE FROM ${this.#qualified} WHERE ${ident(this.primaryKey[0]!)} = ANY (ARRAY(` +
        `SELECT json_array_elements_text($1::text::json))::${type(0)}[])`;
    }
    const keys = rowsFrom(this.primaryKey.length, "d", "k");
    const match = this.primaryKey.map((c, k) => `t.${ident(c)} = d.k${k}::${type(k)}`);
    return `DELETE FROM ${this.#qualified} AS t USING ${keys} WHERE ${match.join(" AND ")}`;
  }
}

/**
 * `ROWS FROM (json_array_elements_text($1::text::json), ...) AS alias(prefix0, ...)`: `width`
 * JSON arrays of text as rows, element i of each array in row i.
 */
function rowsFrom(width: number, alias: string, prefix: string): string {
  const columns = Array.from({ length: width }, (_, c) => c);
  return `ROWS FROM (${
    columns.map((c) => `json_array_elements_text($${c + 1}::text::json)`).join(", ")
  }) AS ${alias}(${columns.map((c) => `${prefix}${c}`).join(", ")})`;
}

/**
 * `rows` (each `width` cells) as one JSON array per column: `["a","b",null]`. A lone surrogate,
 * which `JSON.stringify` writes as `\udXXX` and the server refuses, becomes U+FFFD, as when a
 * driver encodes a parameter as UTF-8.
 */
function columnJson(rows: ReadonlyArray<ReadonlyArray<string | null>>, width: number): string[] {
  const arrays: string[] = [];
  const column = new Array<string | null>(rows.length);
  for (let c = 0; c < width; c++) {
    for (let r = 0; r < rows.length; r++) column[r] = rows[r]![c] ?? null;
    let json = JSON.stringify(column);
    if (json.includes("\\ud")) json = JSON.stringify(column.map((t) => t?.toWellFormed() ?? null));
    arrays.push(json);
  }
  return arrays;
}

/** What {@linkcode checkTable} compares. */
interface TableSpec {
  table: string;
  qualified: string;
  columns: readonly string[];
  /** `"name" type` per column, as declared. */
  definitions: string[];
  primaryKey: readonly string[];
}

/** A column as the catalog describes it. */
interface ColumnShape {
  name: string;
  type: string;
  notNull: boolean;
  hasDefault: boolean;
  inKey: boolean;
}

const COLUMNS_SQL = `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
  a.attnotnull::text AS not_null, a.atthasdef::text AS has_default,
  coalesce(a.attnum = ANY (i.indkey::int2[]), false)::text AS in_key
FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

async function columnsOf(sql: SqlQuery, qualified: string): Promise<ColumnShape[]> {
  const rows = await sql.unsafe(COLUMNS_SQL, [qualified]);
  return rows.map((r) => ({
    name: String(r.name),
    type: String(r.type),
    notNull: r.not_null === "true",
    hasDefault: r.has_default === "true",
    inKey: r.in_key === "true",
  }));
}

/**
 * The declared shape as the server spells it (a temporary table made from the declaration, so
 * `int` reads `integer` and `varchar(5)` reads `character varying(5)`), and the table's own, if
 * it exists. Returns the types for the casts, and the `CREATE TABLE` still to run when the table
 * is missing. Differences are a `StatecastError` naming each one.
 */
async function checkTable(
  sql: SqlClient,
  spec: TableSpec,
): Promise<{ types: string[]; createSql: string | undefined }> {
  const body = `${spec.definitions.join(", ")}, PRIMARY KEY (${spec.primaryKey.map(ident)})`;
  let declared: ColumnShape[];
  try {
    declared = await sql.begin(async (tx) => {
      await tx.unsafe(`CREATE TEMPORARY TABLE statecast_declared (${body}) ON COMMIT DROP`);
      return await columnsOf(tx, "pg_temp.statecast_declared");
    });
  } catch (cause) {
    if (isConnectionError(cause)) throw describePostgresError(cause, spec.table);
    throw new StatecastError(
      `The columns declared for table "${spec.table}" are not valid: ${errorMessage(cause)}`,
      { cause },
    );
  }
  const types = declared.map((c) => c.type);
  let found: ColumnShape[];
  try {
    found = await columnsOf(sql, spec.qualified);
  } catch (cause) {
    throw describePostgresError(cause, spec.table);
  }
  if (found.length === 0) {
    return { types, createSql: `CREATE TABLE IF NOT EXISTS ${spec.qualified} (${body})` };
  }
  const differences = shapeDifferences(declared, found);
  if (differences.length > 0) {
    throw new StatecastError(
      `Table "${spec.table}" differs from its declaration: ${differences.join("; ")}. ` +
        "statecast never alters or drops a table: change the declared columns, or migrate " +
        "the table yourself (or mount another table name)",
    );
  }
  return { types, createSql: undefined };
}

/** How the table `found` differs from the `declared` one, one phrase per difference. */
function shapeDifferences(declared: ColumnShape[], found: ColumnShape[]): string[] {
  const differences: string[] = [];
  const byName = new Map(found.map((c) => [c.name, c]));
  const nullability = (c: ColumnShape) => c.notNull ? "not null" : "nullable";
  for (const want of declared) {
    const have = byName.get(want.name);
    if (have === undefined) differences.push(`column "${want.name}" is missing`);
    else if (have.type !== want.type) {
      differences.push(`column "${want.name}" is ${have.type}, declared ${want.type}`);
    } else if (have.notNull !== want.notNull) {
      differences.push(
        `column "${want.name}" is ${nullability(have)}, declared ${nullability(want)}`,
      );
    }
  }
  const names = new Set(declared.map((c) => c.name));
  for (const extra of found) {
    if (!names.has(extra.name) && extra.notNull && !extra.hasDefault) {
      differences.push(`column "${extra.name}" is not declared and is not null without a default`);
    }
  }
  const keyOf = (cs: ColumnShape[]) => cs.filter((c) => c.inKey).map((c) => c.name);
  const wantKey = keyOf(declared), haveKey = keyOf(found);
  if ([...wantKey].sort().join("\0") !== [...haveKey].sort().join("\0")) {
    const have = haveKey.length === 0 ? "missing" : `(${haveKey.join(", ")})`;
    differences.push(`the primary key is ${have}, declared (${wantKey.join(", ")})`);
  }
  return differences;
}

/**
 * SQLSTATE classes of errors about the data itself: sending the same rows again fails again.
 * 22 data exception (a value that is not of the column's type, too long, out of range), 23
 * integrity constraint violation (NOT NULL, CHECK, foreign key), 54 program limit exceeded (a
 * row too large for an index), 21 cardinality violation (two keys that differ as text are one row
 * of the table, in a type whose keys are not made canonical: one statement cannot upsert a row
 * twice).
 */
const REFUSED_CLASSES = new Set(["21", "22", "23", "54"]);

/** What the server's message leaves unsaid, per SQLSTATE. */
const HINTS: Readonly<Record<string, string>> = {
  "21000": ": two keys are the same row of the table (keys that differ as text but are equal " +
    "as the column's type, such as two spellings of one timestamp: give such keys in one form)",
  "22P05": ": a value holds the NUL character (U+0000, \\u0000), which PostgreSQL text and " +
    "jsonb cannot store, or a character the server's encoding lacks",
};

/** Connection failures: class 08, the server shutting down (57P0x), socket errors. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  return code.startsWith("08") || code.startsWith("57P") || /^[A-Z_]{4,}$/.test(code);
}

function describePostgresError(cause: unknown, table: string): StatecastError {
  const code = (cause as { code?: unknown })?.code;
  const sqlState = typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  const refused = sqlState !== undefined && REFUSED_CLASSES.has(sqlState.slice(0, 2));
  const column = (cause as { column_name?: unknown })?.column_name;
  const where = typeof column === "string" && column !== "" ? ` (column "${column}")` : "";
  const what = refused ? "refused rows for" : "failed on";
  return new StatecastError(
    `PostgreSQL ${what} table "${table}": ${errorMessage(cause)}` +
      `${HINTS[sqlState ?? ""] ?? ""}${where}` +
      (sqlState === undefined ? "" : ` [SQLSTATE ${sqlState}]`),
    { cause, refused, retriable: isConnectionError(cause) || sqlState === "40001" },
  );
}

/**
 * Mounts the PostgreSQL table `table` ("table" in schema `public`, or "schema.table"), writing
 * through the client provided for `clientKey`. Call it inside `app.main()`. Checks the table
 * against `options.columns` now (not in a dry run, which connects to nothing); creates it before
 * the first write if it does not exist. The
 * target's identity is `(clientKey.name, schema.table)`: another host or password re-sends
 * nothing.
 *
 * Needs a PostgreSQL server, so this example is not run here: `examples/csv_to_postgres/main.ts`
 * is the same code as a job, and `tests/postgres_e2e_test.ts` runs it.
 *
 * @example
 * ```ts ignore
 * const table = await postgres.mountTableTarget(DB, "csv_rows", {
 *   columns: { key: "text", value: "jsonb" },
 * });
 * ```
 */
export async function mountTableTarget(
  clientKey: ContextKey<SqlClient>,
  table: string,
  options: TableTargetOptions,
): Promise<TableTarget> {
  const scope = currentMountScope("postgres.mountTableTarget()");
  const target = new TableTarget(clientKey, scope.context.get(clientKey), table, options);
  if (!scope.context.dryRun) await target.check(); // a dry run connects to nothing
  scope.mountTarget(target as Target<never>);
  return target;
}
