// A table job with typed columns and a composite primary key, for the end-to-end tests: each CSV
// row (region,id,qty,name) becomes a row of PG_TABLE; an empty qty is NULL, which the table
// refuses (qty is NOT NULL).
import { App, ContextKey, localfs, postgres } from "../lib/mod.ts";
import pg from "postgres";
import process from "node:process";

const DB = new ContextKey<postgres.SqlClient>("pg");
const app = new App({ name: "TypedTable" });

app.lifespan((ctx) => {
  const sql = pg(process.env.DATABASE_URL!, { max: 1, connect_timeout: 5, onnotice: () => {} });
  ctx.provide(DB, sql);
  return () => sql.end({ timeout: 5 });
});

const processCsv = app.fn({ memo: true }, async (file, table: postgres.TableTarget) => {
  for await (const row of file.csvRows()) {
    table.declareTargetState({
      key: [row.get("region")!, row.get("id")!],
      value: { qty: row.get("qty") || null, name: row.get("name") },
    });
  }
});

app.main(async () => {
  const table = await postgres.mountTableTarget(DB, process.env.PG_TABLE!, {
    columns: { region: "text", id: "int", qty: "integer not null", name: "varchar(20)" },
    primaryKey: ["region", "id"],
  });
  await app.mountEach(processCsv, localfs.walkDir(process.env.DATA_DIR!), table);
});

await app.cli();
