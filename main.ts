// statecast: every row of every CSV file under DATA_DIR becomes one message on KAFKA_TOPIC,
// keyed by the row's first column, valued by the row as JSON. Edit it to fit your data.
//
//   deno run -A main.ts            catch up once, then exit (non-zero if a file failed)
//   deno run -A main.ts --live     catch up, then keep watching
//   deno run -A main.ts --help     all options (--dry-run, --reset, status, ...)
import { App, ContextKey, kafka, localfs } from "./lib/mod.ts";
import { CompressionTypes, Kafka, logLevel } from "kafkajs";
import process from "node:process";

const env = (name: string, fallback: string) => process.env[name] || fallback;
const PRODUCER = new ContextKey<kafka.KafkaProducer>("kafka_producer");

/** What every client is given: brokers, SASL PLAIN over SSL when a user is set, compression. */
interface Connection {
  brokers: string[];
  sasl: { username: string; password: string } | undefined;
  compression: "none" | "gzip" | "lz4" | "zstd";
}
type Connected = { producer: kafka.KafkaProducer; close: () => Promise<void> };

/** KAFKA_CLIENT=kafkajs (the default): kafkajs 2.2.4, idempotent; it compresses with gzip only. */
async function kafkajs(c: Connection): Promise<Connected> {
  if (c.compression !== "none" && c.compression !== "gzip") {
    throw new TypeError(`kafkajs has no ${c.compression}: use KAFKA_CLIENT=platformatic`);
  }
  const client = new Kafka({
    clientId: "statecast",
    brokers: c.brokers,
    logLevel: logLevel.NOTHING, // statecast reports failures itself, naming topic and address
    connectionTimeout: 5000,
    retry: { retries: 3 },
    ...(c.sasl ? { ssl: true, sasl: { mechanism: "plain", ...c.sasl } } : {}),
  });
  const producer = client.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const compression = c.compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;
  return {
    producer: { send: (record) => producer.send({ ...record, compression }) },
    close: () => producer.disconnect(),
  };
}

/** KAFKA_CLIENT=platformatic: @platformatic/kafka, idempotent, the Java client's partitioner. */
async function platformatic(c: Connection): Promise<Connected> {
  const { connectPlatformaticProducer } = await import("./lib/kafka_platformatic.ts");
  const producer = await connectPlatformaticProducer({
    brokers: c.brokers,
    compression: c.compression,
    ...(c.sasl ? { tls: true, sasl: { mechanism: "PLAIN", ...c.sasl } } : {}),
  });
  return { producer, close: () => producer.close() };
}

const app = new App({ name: "CsvToKafka" });

app.lifespan(async (ctx) => {
  const brokers = env("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092");
  const username = process.env.KAFKA_SASL_USERNAME, password = process.env.KAFKA_SASL_PASSWORD;
  if (!username !== !password) {
    throw new TypeError("Set both KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or neither");
  }
  const clients = { kafkajs, platformatic };
  const name = env("KAFKA_CLIENT", "kafkajs");
  const compression = env("KAFKA_COMPRESSION", "none");
  if (!(name in clients)) throw new TypeError(`KAFKA_CLIENT must be kafkajs or platformatic`);
  if (!["none", "gzip", "lz4", "zstd"].includes(compression)) {
    throw new TypeError(`KAFKA_COMPRESSION must be lz4, zstd, gzip or none, got "${compression}"`);
  }
  const { producer, close } = await clients[name as keyof typeof clients]({
    brokers: brokers.split(","),
    sasl: username && password ? { username, password } : undefined,
    compression: compression as Connection["compression"],
  }).catch((error: Error) => {
    if (error instanceof TypeError) throw error;
    const who = username ? ` as "${username}"` : ""; // never the password
    throw new Error(`Cannot connect to Kafka at ${brokers}${who}: ${error.message}`);
  });
  ctx.provide(PRODUCER, producer);
  return close;
});

const processCsv = app.fn({ memo: true }, async (file, topic: kafka.TopicTarget) => {
  for await (const row of file.csvRows()) {
    // The key is the first column's value; the value is the row as JSON, in the file's order.
    topic.declareTargetState({ key: row.values[0]!, value: row.toJsonText() });
  }
});

app.main(async () => {
  const topic = await kafka.mountTopicTarget(PRODUCER, env("KAFKA_TOPIC", "statecast-csv-rows"));
  const files = localfs.walkDir(env("DATA_DIR", "./data"), { include: ["**/*.csv"], live: true });
  await app.mountEach(processCsv, files, topic);
});

await app.cli();
