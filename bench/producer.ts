/**
 * The producer path alone: `TopicTarget.apply()` of N upserts shaped like the benchmark's rows
 * (keys `r0`..., ~95-byte JSON values), through each client, for each batch size, number of
 * sends in flight and codec, on fresh 3-partition topics of the real broker. It is how main.ts's
 * producer settings were chosen:
 *
 *   deno run -A bench/producer.ts [--messages N] [--clients kafkajs,platformatic]
 *     [--batch-sizes 2000,10000] [--in-flight 1,2] [--compression none,lz4]
 *
 * Prints one line per setting: messages per second, from the first send to the last ack. The
 * machine is shared: compare lines of one run, not runs.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { CompressionTypes, Kafka, logLevel } from "kafkajs";
import { ContextKey } from "../lib/context.ts";
import { initFingerprints } from "../lib/fingerprint.ts";
import { type KafkaProducer, type TopicState, TopicTarget } from "../lib/kafka_target.ts";
import { connectPlatformaticProducer, type KafkaCompression } from "../lib/kafka_platformatic.ts";
import type { Change } from "../lib/target.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
const BROKERS = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092").split(",");

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    messages: { type: "string", default: "200000" },
    clients: { type: "string", default: "kafkajs,platformatic" },
    "batch-sizes": { type: "string", default: "2000,10000" },
    "in-flight": { type: "string", default: "1,2" },
    compression: { type: "string", default: "none" },
  },
});
const list = (text: string) => text.split(",").map((s) => s.trim()).filter((s) => s !== "");
const count = Number(values.messages);

/** The changes apply() gets for a first publish of `count` rows. */
function changes(): Array<Change<TopicState>> {
  const cities = ["Berlin", "Lagos", "Osaka", "Lima", "Oslo"];
  return Array.from({ length: count }, (_, i) => {
    const key = `r${i}`;
    const value = JSON.stringify({
      id: key,
      name: "Grace Hopper",
      city: cities[i % cities.length],
      amount: ((i * 7919) % 10_000).toFixed(2),
      updated: "2025-03-14",
    });
    return { kind: "upsert", key, state: { key, value } };
  });
}

async function connect(
  client: string,
  compression: KafkaCompression,
): Promise<{ producer: KafkaProducer; close(): Promise<void> }> {
  if (client === "platformatic") {
    const producer = await connectPlatformaticProducer({ brokers: BROKERS, compression });
    return { producer, close: () => producer.close() };
  }
  const producer = new Kafka({ brokers: BROKERS, logLevel: logLevel.NOTHING })
    .producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const codec = compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;
  return {
    producer: { send: (record) => producer.send({ ...record, compression: codec }) },
    close: () => producer.disconnect(),
  };
}

async function createTopic(name: string): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/kafka`, "topic", name, "--partitions", "3"],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

await initFingerprints();
const all = changes();
const key = new ContextKey<KafkaProducer>("bench");
for (const client of list(values.clients)) {
  for (const compression of list(values.compression) as KafkaCompression[]) {
    if (client === "kafkajs" && !["none", "gzip"].includes(compression)) continue;
    for (const batchSize of list(values["batch-sizes"]).map(Number)) {
      for (const inFlight of list(values["in-flight"]).map(Number)) {
        if (client === "kafkajs" && inFlight > 1) continue; // its idempotent sends, one at a time
        const topic = `bench-producer-${crypto.randomUUID().slice(0, 8)}`;
        await createTopic(topic);
        const { producer, close } = await connect(client, compression);
        const target = new TopicTarget(key, producer, topic, { batchSize, inFlight });
        const started = performance.now();
        await target.apply(all);
        const ms = performance.now() - started;
        await close();
        console.log(
          `${client.padEnd(12)} ${compression.padEnd(5)} batch ${String(batchSize).padStart(6)}` +
            ` in flight ${inFlight}: ${
              Math.round(count / (ms / 1000)).toLocaleString("en-US")
                .padStart(9)
            } msgs/s (${Math.round(ms)} ms)`,
        );
      }
    }
  }
}
