// statecast: every row of every CSV file under DATA_DIR becomes one message on KAFKA_TOPIC,
// keyed by the row's first column, valued by the row as JSON. Edit it to fit your data.
//
//   deno run -A main.ts            catch up once, then exit (non-zero if a file failed)
//   deno run -A main.ts --live     catch up, then keep watching
//   deno run -A main.ts --help     all options (--dry-run, --reset, status, ...)
import { App, ContextKey, kafka, localfs } from "./lib/mod.ts";
import process from "node:process";

const env = (name: string, fallback: string) => process.env[name] || fallback;
const PRODUCER = new ContextKey<kafka.KafkaProducer>("kafka_producer");

const app = new App({
  name: "CsvToKafka",
  environment: { // listed by --help; .env.example has them too
    KAFKA_TOPIC: "the topic, which statecast never creates (default statecast-csv-rows)",
    DATA_DIR: "the folder of CSV files, subfolders too (default ./data)",
    CSV_DELIMITER: 'the field delimiter: ",", ";", "|" or tab (default ,)',
    ...kafka.CONNECT_ENVIRONMENT, // KAFKA_BOOTSTRAP_SERVERS, KAFKA_SASL_*, KAFKA_SSL_CA, ...
  },
});

app.lifespan(async (ctx) => {
  // @platformatic/kafka by default (KAFKA_CLIENT=kafkajs for kafkajs); brokers, SASL, TLS and
  // compression from the KAFKA_* variables.
  const producer = await kafka.connectProducer(kafka.connectOptionsFromEnv());
  ctx.provide(PRODUCER, producer);
  return () => producer.close();
});

const processCsv = app.fn(
  { memo: true },
  async (file, topic: kafka.TopicTarget, delimiter: string) => {
    // The delimiter comes from CSV_DELIMITER: a new one runs every file again (app.mountEach).
    // The path goes along as a header outside the fingerprint: a row that moves sends nothing.
    const metaHeaders = { "statecast-source": file.path };
    for await (const row of file.csvRows({ delimiter })) {
      // The key is the first column's value; the value is the row as JSON, in the file's order.
      topic.declareTargetState({ key: row.values[0]!, value: row.toJsonText(), metaHeaders });
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
