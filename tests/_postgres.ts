// End-to-end fixtures for the PostgreSQL table target: a job (an example's main.ts, or a test's
// own) run as its own process against the real server that `scripts/postgres up` started, and
// what the table holds read back with psql, not with our own client.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
/** The server's URL: DATABASE_URL, else what `scripts/postgres up` prints by default. */
export const DATABASE_URL = Deno.env.get("DATABASE_URL") ??
  `postgres://postgres@127.0.0.1:${Deno.env.get("PGPORT") ?? "5433"}/postgres`;
export const TABLE_MAIN = join(ROOT, "examples", "csv_to_postgres", "main.ts");
export const DUAL_MAIN = join(ROOT, "examples", "csv_to_kafka_and_postgres", "main.ts");
export const TYPED_MAIN = join(ROOT, "tests", "_typed_table_job.ts");

/** Runs one SQL text with psql; rows as arrays of cells (NULL reads as null). */
export async function psql(sql: string, url = DATABASE_URL): Promise<Array<Array<string | null>>> {
  const out = await new Deno.Command("psql", {
    args: [
      "-X",
      "-q",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      "-F",
      "\t",
      "-P",
      "null=\\N",
      "-d",
      url,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(sql));
  await writer.close();
  const { code, stdout, stderr } = await out.output();
  const dec = new TextDecoder();
  if (code !== 0) throw new Error(`psql failed (exit ${code}) on ${sql}:\n${dec.decode(stderr)}`);
  return dec.decode(stdout).split("\n").filter((l) => l !== "").map((line) =>
    line.split("\t").map((c) => c === "\\N" ? null : c)
  );
}

/** A table's rows as "key=value" (value as the JSON the file declared), sorted. */
export async function tableContent(table: string, key = "key"): Promise<string[]> {
  const rows = await psql(
    `SELECT ${key}::text, value::text FROM ${table} ORDER BY 1`,
  );
  return rows.map(([k, v]) => `${k}=${canonical(v!)}`);
}

/** Each row's key and the transaction that last wrote it: a write changes `xmin`. */
export async function rowVersions(table: string): Promise<Map<string, string>> {
  const rows = await psql(`SELECT key::text, xmin::text FROM ${table}`);
  return new Map(rows.map(([k, x]) => [k!, x!]));
}

/** Keys whose row was written (inserted, updated) between two {@linkcode rowVersions}. */
export function written(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([k, x]) => before.get(k) !== x).map(([k]) => k).sort();
}

export interface JobRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TableJobOptions {
  env?: Record<string, string>;
  args?: string[];
  main?: string;
}

/** A data folder, a state store and a fresh table name, for one test. */
export async function tableJob(name: string, main = TABLE_MAIN) {
  const dir = await mkdtemp(join(tmpdir(), `statecast-pg-${name}-`));
  const data = join(dir, "data");
  await mkdir(data);
  const table = `e2e_${name.replaceAll("-", "_")}_${crypto.randomUUID().slice(0, 8)}`;
  const job = {
    dir,
    data,
    table,
    async run(options: TableJobOptions = {}): Promise<JobRun> {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", options.main ?? main, ...(options.args ?? [])],
        cwd: dir,
        env: {
          DATABASE_URL,
          PG_TABLE: table,
          DATA_DIR: data,
          STATECAST_STATE: `file:${join(dir, "state.db")}`,
          NO_COLOR: "1",
          ...options.env,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    },
    async ok(options: TableJobOptions = {}): Promise<JobRun> {
      const r = await job.run(options);
      assert.equal(r.code, 0, `the job failed:\n${r.stderr}`);
      return r;
    },
    write: (path: string, text: string) => writeFile(join(data, path), text),
    content: () => tableContent(table),
    versions: () => rowVersions(table),
    [Symbol.asyncDispose]: async () => {
      await psql(`DROP TABLE IF EXISTS ${table}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return job;
}

/** "key=json" lines a file of `rows` should put in the seed example's table. */
export function expected(rows: Record<string, string>[]): string[] {
  return rows.map((r) => `${Object.values(r)[0]}=${JSON.stringify(sortKeys(r))}`).sort();
}

/** JSON text with its object's keys sorted: jsonb keeps keys in an order of its own. */
export function canonical(json: string): string {
  return JSON.stringify(sortKeys(JSON.parse(json)));
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a < b ? -1 : 1));
}

/** CSV text of `rows` (values without commas or quotes). */
export function csv(rows: Record<string, string>[]): string {
  const header = Object.keys(rows[0]!);
  return [header.join(","), ...rows.map((r) => header.map((h) => r[h]).join(","))].join("\n") +
    "\n";
}
