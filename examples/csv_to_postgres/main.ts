// statecast: every row of every CSV file under DATA_DIR becomes one row of the PostgreSQL table
// PG_TABLE (key text primary key, value jsonb), keyed by the row's first column, valued by the
// row as JSON. Files with different headers share the table. Edit it to fit your data.
//
//   scripts/postgres up                                      a local server; prints DATABASE_URL
//   DATABASE_URL=... deno run -A examples/csv_to_postgres/main.ts [--live] [--help]
import { App, ContextKey, localfs, postgres } from "../../lib/mod.ts";
import pg from "postgres";
import process from "node:process";

const env = (name: string, fallback: string) => process.env[name] || fallback;
const DB = new ContextKey<postgres.SqlClient>("pg");

const app = new App({ name: "CsvToPostgres" });

app.lifespan(async (ctx) => {
  const url = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5433/postgres");
  const sql = pg(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  await sql`select 1`.catch((error: Error) => {
    const { host, username } = new URL(url); // never the password
    throw new Error(`Cannot connect to PostgreSQL at ${host} as "${username}": ${error.message}`);
  });
  ctx.provide(DB, sql);
  return () => sql.end({ timeout: 5 });
});

const processCsv = app.fn({ memo: true }, async (file, table: postgres.TableTarget) => {
  for await (const row of file.csvRows()) {
    // The key is the first column's value; the value is the row as JSON, in the file's order.
    table.declareTargetState({ key: row.values[0]!, value: { value: row.toJsonText() } });
  }
});

app.main(async () => {
  const table = await postgres.mountTableTarget(DB, env("PG_TABLE", "csv_rows"), {
    columns: { key: "text", value: "jsonb" },
  });
  const files = localfs.walkDir(env("DATA_DIR", "./data"), { include: ["**/*.csv"], live: true });
  await app.mountEach(processCsv, files, table);
});

await app.cli();
