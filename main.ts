// statecast: every row of every CSV file under DATA_DIR becomes one message on KAFKA_TOPIC,
// keyed by the row's first column, valued by the row as JSON. Edit it to fit your data.
//
//   deno run -A main.ts            catch up once, then exit (non-zero if a file failed)
//   deno run -A main.ts --live     catch up, then keep watching
//   deno run -A main.ts --help     all options (--dry-run, --reset, status, ...)
import { App, ContextKey, kafka, localfs } from "./lib/mod.ts";
import { Kafka, logLevel, type Producer } from "kafkajs";
import process from "node:process";

const env = (name: string, fallback: string) => process.env[name] || fallback;
const PRODUCER = new ContextKey<Producer>("kafka_producer");

const app = new App({
  name: "CsvToKafka",
  environment: { // listed by --help; .env.example has them too
    KAFKA_BOOTSTRAP_SERVERS: "comma-separated brokers, each host:port (default localhost:9092)",
    KAFKA_TOPIC: "the topic, which statecast never creates (default statecast-csv-rows)",
    DATA_DIR: "the folder of CSV files, subfolders too (default ./data)",
    CSV_DELIMITER: 'the field delimiter: ",", ";", "|" or tab (default ,)',
    KAFKA_SASL_USERNAME: "with KAFKA_SASL_PASSWORD: SASL PLAIN over TLS (unset: plaintext)",
    KAFKA_SASL_PASSWORD: "the SASL password (never printed)",
  },
});

app.lifespan(async (ctx) => {
  const brokers = env("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092");
  const username = process.env.KAFKA_SASL_USERNAME, password = process.env.KAFKA_SASL_PASSWORD;
  if (!username !== !password) {
    throw new TypeError("Set both KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or neither");
  }
  const client = new Kafka({
    clientId: "statecast",
    brokers: kafka.parseBrokers(brokers), // host:port each, or an error saying what to write
    logLevel: logLevel.NOTHING, // statecast reports failures itself, naming topic and address
    connectionTimeout: 5000,
    retry: { retries: 3 },
    ...(username && password
      ? { ssl: true, sasl: { mechanism: "plain", username, password } } // SASL PLAIN over SSL
      : {}),
  });
  const producer = client.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect().catch((error: Error) => {
    const who = username ? ` as "${username}"` : ""; // never the password
    throw new Error(`Cannot connect to Kafka at ${brokers}${who}: ${error.message}`);
  });
  ctx.provide(PRODUCER, producer);
  return () => producer.disconnect();
});

const processCsv = app.fn(
  { memo: true },
  async (file, topic: kafka.TopicTarget, delimiter: string) => {
    // The delimiter comes from CSV_DELIMITER: a new one runs every file again (app.mountEach).
    for await (const row of file.csvRows({ delimiter })) {
      // The key is the first column's value; the value is the row as JSON, in the file's order.
      topic.declareTargetState({ key: row.values[0]!, value: row.toJsonText() });
    }
  },
);

app.main(async () => {
  const topic = await kafka.mountTopicTarget(PRODUCER, env("KAFKA_TOPIC", "statecast-csv-rows"));
  const files = localfs.walkDir(env("DATA_DIR", "./data"), {
    include: ["**/*.csv"],
    live: true,
    rootFrom: "DATA_DIR", // a missing folder's error says to set DATA_DIR
  });
  await app.mountEach(processCsv, files, topic, env("CSV_DELIMITER", ","));
});

await app.cli();
