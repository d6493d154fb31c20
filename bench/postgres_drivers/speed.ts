// The measurement behind the PostgreSQL driver choice (README, "Dependencies"): the statements
// statecast's table target sends (multi-row INSERT ... ON CONFLICT DO UPDATE with a text
// parameter per cell and a cast per column, then DELETE ... WHERE key IN (...)), through
// postgres.js and through pg, 1,000 rows per statement, 20 statements per transaction.
//
//   scripts/postgres up
//   deno run -A bench/postgres_drivers/speed.ts [rows]      (or: bun bench/postgres_drivers/speed.ts)
import postgres from "postgres";
import pg from "pg";
import process from "node:process";

const URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5433/postgres";
const ROWS = Number(process.argv[2] ?? process.argv.at(-1)) || 200_000;
const PER_STATEMENT = 1000;
const PER_TX = 20;

interface Driver {
  name: string;
  exec(sql: string, params?: unknown[]): Promise<void>;
  tx(fn: (exec: (sql: string, params: unknown[]) => Promise<void>) => Promise<void>): Promise<void>;
  end(): Promise<void>;
}

function postgresJs(): Driver {
  const sql = postgres(URL, { max: 1, onnotice: () => {} });
  return {
    name: "postgres.js 3.4",
    exec: async (q, p = []) => void await sql.unsafe(q, p as never[]),
    tx: async (fn) => {
      await sql.begin(async (t) => {
        await fn(async (q, p) => void await t.unsafe(q, p as never[], { prepare: true }));
      });
    },
    end: () => sql.end(),
  };
}

function nodePg(): Driver {
  const client = new pg.Client({ connectionString: URL });
  let connected: Promise<unknown> | undefined;
  const ready = () => connected ??= client.connect();
  return {
    name: "pg 8.23",
    exec: async (q, p = []) => {
      await ready();
      await client.query(q, p);
    },
    tx: async (fn) => {
      await ready();
      await client.query("BEGIN");
      try {
        await fn(async (q, p) => void await client.query(q, p));
        await client.query("COMMIT");
      } catch (e) {
        await client.query("ROLLBACK");
        throw e;
      }
    },
    end: () => client.end(),
  };
}

function upsertSql(table: string, n: number): string {
  const values = [];
  for (let i = 0; i < n; i++) values.push(`($${2 * i + 1}::text, $${2 * i + 2}::jsonb)`);
  return `INSERT INTO ${table} (key, value) VALUES ${values.join(",")} ` +
    `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`;
}

async function measure(driver: Driver, round: number): Promise<void> {
  const table = `bench_driver_${round}`;
  await driver.exec(`DROP TABLE IF EXISTS ${table}`);
  await driver.exec(`CREATE TABLE ${table} (key text PRIMARY KEY, value jsonb)`);
  const sql = upsertSql(table, PER_STATEMENT);
  const row = (i: number, v: string) => [`k${i}`, `{"id":"k${i}","name":"row ${i}","v":"${v}"}`];
  for (const v of ["first", "second"]) {
    const started = performance.now();
    for (let start = 0; start < ROWS; start += PER_STATEMENT * PER_TX) {
      await driver.tx(async (exec) => {
        for (
          let s = start;
          s < Math.min(ROWS, start + PER_STATEMENT * PER_TX);
          s += PER_STATEMENT
        ) {
          const params: string[] = [];
          for (let i = s; i < s + PER_STATEMENT; i++) params.push(...row(i, v));
          await exec(sql, params);
        }
      });
    }
    const ms = performance.now() - started;
    console.log(
      `${driver.name}: ${v === "first" ? "insert" : "update"} ${ROWS} rows ${ms.toFixed(0)} ms, ` +
        `${Math.round(ROWS / ms * 1000)} rows/s`,
    );
  }
  const started = performance.now();
  const del = `DELETE FROM ${table} WHERE key IN (${
    Array.from({ length: PER_STATEMENT }, (_, i) => `$${i + 1}::text`).join(",")
  })`;
  for (let s = 0; s < ROWS; s += PER_STATEMENT) {
    await driver.exec(del, Array.from({ length: PER_STATEMENT }, (_, i) => `k${s + i}`));
  }
  const ms = performance.now() - started;
  console.log(`${driver.name}: delete ${ROWS} rows ${ms.toFixed(0)} ms`);
  await driver.exec(`DROP TABLE ${table}`);
  await driver.end();
}

const runtime = typeof Deno !== "undefined"
  ? `Deno ${Deno.version.deno}`
  : `Bun ${process.versions.bun}`;
console.log(`${runtime}, ${ROWS} rows`);
await measure(postgresJs(), 1);
await measure(nodePg(), 2);
