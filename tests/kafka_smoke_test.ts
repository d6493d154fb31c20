// The foundation: kafkajs under Deno against the real broker, read back with kcat.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Kafka, logLevel } from "kafkajs";
import { createTopic, readTopic } from "./_kafka_readback.ts";

const BROKERS = Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") ?? "127.0.0.1:9092";

Deno.test("kafkajs sends keyed messages and a true-null tombstone that kcat reads back", async () => {
  const topic = `smoke-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  const producer = new Kafka({ brokers: BROKERS.split(","), logLevel: logLevel.NOTHING })
    .producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { key: "a", value: "1" },
        { key: "b", value: "" },
        { key: "c", value: "3", headers: { h: "v" } },
        { key: "a", value: null },
      ],
    });
  } finally {
    await producer.disconnect();
  }
  const messages = await readTopic(topic);
  const byKey = (k: string) => messages.filter((m) => m.key === k);
  assert.deepEqual(byKey("a").map((m) => m.value), ["1", null], "a tombstone reads as null");
  assert.deepEqual(byKey("b").map((m) => m.value), [""], "an empty value is not a tombstone");
  assert.deepEqual(byKey("c")[0]?.headers, { h: "v" });
  assert.equal(new Set(byKey("a").map((m) => m.partition)).size, 1, "one key, one partition");
});

Deno.test("kafkajs fails fast, naming the address, when no broker listens there", async () => {
  // A port that was free a moment ago: nothing listens on it.
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const producer = new Kafka({
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    retry: { retries: 2, initialRetryTime: 100 },
  }).producer();
  const started = Date.now();
  await assert.rejects(producer.connect(), new RegExp(`127\\.0\\.0\\.1:${port}`));
  // Not a speed target: a bound that tells "fails" from "hangs".
  assert.ok(Date.now() - started < 30_000, "connect() gave up instead of hanging");
});
