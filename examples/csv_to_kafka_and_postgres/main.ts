// statecast: one job, two targets. Every row of every CSV file under DATA_DIR becomes a message on
// KAFKA_TOPIC (keyed by the first column, valued by the row as JSON) and a row of the PostgreSQL
// table PG_TABLE (key text primary key, value jsonb), from the same declarations, in the same run.
// Each target commits only what it acknowledged: when one fails, the next run repairs it alone.
//
//   scripts/kafka up && scripts/kafka topic statecast-csv-rows --partitions 3
//   scripts/postgres up                                      prints DATABASE_URL
//   DATABASE_URL=... deno run -A examples/csv_to_kafka_and_postgres/main.ts [--live] [--help]
import { App, ContextKey, kafka, localfs, postgres } from "../../lib/mod.ts";
import pg from "postgres";
import process from "node:process";

const env = (name: string, fallback: string) => process.env[name] || fallback;
const PRODUCER = new ContextKey<kafka.KafkaProducer>("kafka_producer");
const DB = new ContextKey<postgres.SqlClient>("pg");

const app = new App({ name: "CsvToKafkaAndPostgres" });

app.lifespan(async (ctx) => {
  // @platformatic/kafka by default (KAFKA_CLIENT=kafkajs for kafkajs); brokers, SASL, TLS and
  // compression from the KAFKA_* variables.
  const producer = await kafka.connectProducer(kafka.connectOptionsFromEnv());
  const url = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5433/postgres");
  const sql = pg(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  await sql`select 1`.catch(async (error: Error) => {
    await producer.close();
    const { host, username } = new URL(url); // never the password
    throw new Error(`Cannot connect to PostgreSQL at ${host} as "${username}": ${error.message}`);
  });
  ctx.provide(PRODUCER, producer);
  ctx.provide(DB, sql);
  return async () => {
    await producer.close();
    await sql.end({ timeout: 5 });
  };
});

const processCsv = app.fn(
  { memo: true },
  async (file, topic: kafka.TopicTarget, table: postgres.TableTarget) => {
    const metaHeaders = { "statecast-source": file.path }; // not fingerprinted: see main.ts
    for await (const row of file.csvRows()) {
      const key = row.values[0]!, json = row.toJsonText();
      topic.declareTargetState({ key, value: json, metaHeaders });
      table.declareTargetState({ key, value: { value: json } });
    }
  },
);

app.main(async () => {
  const topic = await kafka.mountTopicTarget(PRODUCER, env("KAFKA_TOPIC", "statecast-csv-rows"));
  const table = await postgres.mountTableTarget(DB, env("PG_TABLE", "csv_rows"), {
    columns: { key: "text", value: "jsonb" },
  });
  const files = localfs.walkDir(env("DATA_DIR", "./data"), { include: ["**/*.csv"], live: true });
  await app.mountEach(processCsv, files, topic, table);
});

await app.cli();
