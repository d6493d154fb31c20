// The PostgreSQL table target's first load, measured two ways on the server of
// `scripts/postgres up` (or DATABASE_URL), each into a fresh table dropped afterwards:
//
// - the target alone: TableTarget.apply() on N rows shaped like examples/csv_to_postgres's
//   (key text, value jsonb of 5 fields), handed over in chunks of 20,000 as the engine does;
// - end to end: examples/csv_to_postgres/main.ts as its own process on N rows in 10 CSV files,
//   its rate from the round time it prints (in-process) and from spawn to exit (wall).
//
// Both check the table's row count with psql. A smaller, quicker companion of `deno task bench`
// scenarios 6-7, which run the Kafka scenarios first.
//
//   scripts/postgres up
//   deno run -A bench/postgres_target.ts [--rows N] [--only target|e2e]
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import pg from "postgres";
import { collecting, Collector } from "../lib/_collector.ts";
import { ContextKey } from "../lib/context.ts";
import { initFingerprints } from "../lib/fingerprint.ts";
import { type SqlClient, TableTarget } from "../lib/postgres_target.ts";
import type { Change, DeclaredState } from "../lib/target.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
const URL_ = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5433/postgres";
const CHUNK = 20_000;
const FILES = 10;

const { values } = parseArgs({
  args: Deno.args,
  options: { rows: { type: "string" }, only: { type: "string" } },
});
const ROWS = Number(values.rows ?? 200_000);

/** Row i as the example's value: the CSV row as JSON text. */
function rowJson(i: number): string {
  return JSON.stringify({
    id: `r${i}`,
    name: `Name ${i % 997}`,
    city: ["Lyon", "Oslo", "Porto", "Quito"][i % 4],
    amount: ((i * 7919) % 1_000_000 / 100).toFixed(2),
    updated: `2025-${String(1 + i % 12).padStart(2, "0")}-${String(1 + i % 28).padStart(2, "0")}`,
  });
}

async function psqlOne(sql: string): Promise<string> {
  const out = await new Deno.Command("psql", {
    args: ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", URL_, "-c", sql],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.code === 0 ? out.stdout : out.stderr);
  if (out.code !== 0) throw new Error(`psql: ${text}`);
  return text.trim();
}

/** `/proc/PID/stat`'s fields from the state on (the server runs on this machine). */
function stat(pid: number): number[] {
  return Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ").map(Number);
}

/** User + system CPU seconds of process `pid` (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = stat(pid);
  return (fields[11]! + fields[12]!) / 100;
}

/** CPU seconds of the server's ended processes (the postmaster's reaped children). */
async function serverChildrenCpu(): Promise<number> {
  const checkpointer = await psqlOne(
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
  );
  const postmaster = stat(Number(checkpointer))[1]!;
  const fields = stat(postmaster);
  return (fields[13]! + fields[14]!) / 100;
}

async function targetAlone(): Promise<void> {
  await initFingerprints();
  const table = `bench_target_${crypto.randomUUID().slice(0, 8)}`;
  const sql = pg(URL_, { max: 1, onnotice: () => {} });
  try {
    const target = new TableTarget(new ContextKey<SqlClient>("pg"), sql, table, {
      columns: { key: "text", value: "jsonb" },
    });
    await target.check();
    const collector = new Collector("bench.csv", "error");
    await collecting(collector, () => {
      for (let i = 0; i < ROWS; i++) {
        target.declareTargetState({ key: `r${i}`, value: { value: rowJson(i) } });
      }
      return Promise.resolve();
    });
    const changes = [...collector.byTarget.get(target.id)!.values()].map((c) => ({
      kind: "upsert" as const,
      key: (c.state as DeclaredState).key,
      state: c.state,
    })) as Change<DeclaredState>[];
    const [row] = await sql`SELECT pg_backend_pid() AS pid`;
    const pid = Number(row!.pid);
    const serverBefore = cpuSeconds(pid);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < changes.length; i += CHUNK) {
      await target.apply(changes.slice(i, i + CHUNK) as never);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const client = (cpu.user + cpu.system) / 1e6;
    const server = cpuSeconds(pid) - serverBefore;
    const count = await psqlOne(`SELECT count(*) FROM ${table}`);
    if (Number(count) !== ROWS) throw new Error(`${count} rows in ${table}, expected ${ROWS}`);
    console.log(
      `target alone: ${ROWS} rows in ${seconds.toFixed(2)} s = ${Math.round(ROWS / seconds)} ` +
        `rows/s; CPU: client ${client.toFixed(2)} s, server backend ${server.toFixed(2)} s`,
    );
  } finally {
    await sql.end({ timeout: 5 });
    await psqlOne(`DROP TABLE IF EXISTS ${table}`);
  }
}

async function endToEnd(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "statecast-bench-pg-"));
  const table = `bench_e2e_${crypto.randomUUID().slice(0, 8)}`;
  try {
    for (let f = 0; f < FILES; f++) {
      const lines = ["id,name,city,amount,updated"];
      for (let i = Math.floor(f * ROWS / FILES); i < Math.floor((f + 1) * ROWS / FILES); i++) {
        lines.push(Object.values(JSON.parse(rowJson(i))).join(","));
      }
      await writeFile(join(dir, `part-${f}.csv`), lines.join("\n") + "\n");
    }
    const serverBefore = await serverChildrenCpu();
    const started = performance.now();
    const out = await new Deno.Command("/usr/bin/time", {
      args: [
        "-f",
        "cpu %U %S",
        Deno.execPath(),
        "run",
        "-A",
        join(ROOT, "examples", "csv_to_postgres", "main.ts"),
      ],
      env: {
        DATABASE_URL: URL_,
        PG_TABLE: table,
        DATA_DIR: dir,
        STATECAST_STATE: `file:${join(dir, "state.db")}`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const wall = (performance.now() - started) / 1000;
    const stderr = new TextDecoder().decode(out.stderr);
    if (out.code !== 0) throw new Error(`main.ts exited ${out.code}:\n${stderr}`);
    const seconds = Number(/ rows; ([\d.]+) s\s*$/m.exec(stderr)?.[1]);
    const [, user, system] = /^cpu ([\d.]+) ([\d.]+)$/m.exec(stderr) ?? [];
    await new Promise((resolve) => setTimeout(resolve, 200)); // the backend's exit, reaped
    const server = await serverChildrenCpu() - serverBefore;
    const count = await psqlOne(`SELECT count(*) FROM ${table}`);
    if (Number(count) !== ROWS) throw new Error(`${count} rows in ${table}, expected ${ROWS}`);
    console.log(
      `end to end: ${ROWS} rows, in-process ${seconds.toFixed(2)} s = ` +
        `${Math.round(ROWS / seconds)} rows/s; wall ${wall.toFixed(2)} s = ` +
        `${Math.round(ROWS / wall)} rows/s; CPU: main.ts ${
          (Number(user) + Number(system)).toFixed(2)
        } s, server ${server.toFixed(2)} s`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
    await psqlOne(`DROP TABLE IF EXISTS ${table}`);
  }
}

if (values.only !== "e2e") await targetAlone();
if (values.only !== "target") await endToEnd();
