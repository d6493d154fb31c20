// The @platformatic/kafka producer on a worker thread (lib/kafka_worker.ts) against the real
// broker, read back with kcat: the same messages, partitions and errors as the adapter itself.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:net";
import { ContextKey } from "../lib/context.ts";
import { StatecastError } from "../lib/errors.ts";
import { initFingerprints } from "../lib/fingerprint.ts";
import { type KafkaProducer, TopicTarget } from "../lib/kafka_target.ts";
import { WorkerProducer } from "../lib/kafka_worker.ts";
import { createTopic, murmur2Partitions, readTopic } from "./_kafka_readback.ts";

const BROKERS = (Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") ?? "127.0.0.1:9092").split(",");
const KEY = new ContextKey<KafkaProducer>("kafka_producer");
await initFingerprints();

Deno.test("WorkerProducer sends keys, bytes, shared headers and tombstones through TopicTarget, in order", async () => {
  const topic = `wrk-smoke-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  await using producer = await WorkerProducer.connect({ brokers: BROKERS });
  const target = new TopicTarget(KEY, producer, topic, { batchSize: 3 });
  const a = { "statecast-source": "a.csv" }, b = { "statecast-source": "b.csv" };
  await target.apply([
    { kind: "upsert", key: "k1", state: { key: "k1", value: "1", metaHeaders: a } },
    { kind: "upsert", key: "k2", state: { key: "k2", value: "", metaHeaders: a } },
    { kind: "upsert", key: "k3", state: { key: "k3", value: "3", metaHeaders: b } },
    {
      kind: "upsert",
      key: "k4",
      state: { key: new Uint8Array([107, 52]), value: Buffer.from("é"), headers: { h: "v" } },
    },
    { kind: "upsert", key: "k1", state: { key: "k1", value: "1b", metaHeaders: a } },
    { kind: "delete", key: "k1" },
  ]);
  const messages = await readTopic(topic);
  const byKey = (k: string) => messages.filter((m) => m.key === k);
  assert.deepEqual(byKey("k1").map((m) => m.value), ["1", "1b", null], "in order, a tombstone");
  assert.deepEqual(byKey("k2").map((m) => m.value), [""], "an empty value is not a tombstone");
  assert.deepEqual(byKey("k3")[0]?.headers, { "statecast-source": "b.csv" });
  assert.deepEqual(byKey("k1")[1]?.headers, { "statecast-source": "a.csv" });
  assert.deepEqual(byKey("k4").map((m) => [m.value, m.headers]), [["é", { h: "v" }]]);
});

Deno.test("WorkerProducer puts 300 keys on the partitions librdkafka's murmur2 picks", async () => {
  const topic = `wrk-murmur-${crypto.randomUUID().slice(0, 8)}`;
  const reference = `${topic}-kcat`;
  await createTopic(topic, 3);
  const keys = Array.from({ length: 300 }, (_, i) => `key-${i}-${i * 7919}`);
  {
    await using producer = await WorkerProducer.connect({ brokers: BROKERS });
    await producer.send({ topic, messages: keys.map((key) => ({ key, value: "x" })) });
  }
  const ours = new Map((await readTopic(topic)).map((m) => [m.key, m.partition]));
  const theirs = await murmur2Partitions(keys, reference);
  assert.equal(ours.size, 300);
  for (const key of keys) assert.equal(ours.get(key), theirs.get(key), `partition of ${key}`);
});

Deno.test("WorkerProducer's errors reach TopicTarget as the adapter's: a missing topic, a refused message", async () => {
  await using producer = await WorkerProducer.connect({ brokers: BROKERS });
  const missing = `missing-${crypto.randomUUID().slice(0, 8)}`;
  await assert.rejects(
    new TopicTarget(KEY, producer, missing).apply([
      { kind: "upsert", key: "k", state: { key: "k", value: "v" } },
    ]),
    (error: StatecastError) =>
      error instanceof StatecastError && !error.retriable &&
      /UNKNOWN_TOPIC_OR_PARTITION; statecast never creates topics/.test(error.message),
  );
  const topic = `wrk-large-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 1, { configs: { "max.message.bytes": "2000" } });
  const target = new TopicTarget(KEY, producer, topic);
  await assert.rejects(
    target.apply([{ kind: "upsert", key: "k", state: { key: "k", value: "x".repeat(5000) } }]),
    (error: StatecastError) => error.refused && /MESSAGE_TOO_LARGE/.test(error.message),
  );
  await target.apply([{ kind: "upsert", key: "k", state: { key: "k", value: "small" } }]);
  assert.deepEqual((await readTopic(topic)).map((m) => m.value), ["small"]);
});

Deno.test("WorkerProducer.connect() fails when no broker listens, and leaves no thread behind", async () => {
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  await assert.rejects(
    WorkerProducer.connect({ brokers: [`127.0.0.1:${port}`], connectTimeoutMs: 1000 }),
  );
});

Deno.test("kafka.connectProducer() runs platformatic on the main thread unless KAFKA_PRODUCER_THREAD is worker", async () => {
  const { connectProducer, connectOptionsFromEnv } = await import("../lib/kafka_connect.ts");
  const { PlatformaticProducer } = await import("../lib/kafka_platformatic.ts");
  const topic = `wrk-connect-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  for (const thread of [undefined, "main", "worker"] as const) {
    const producer = await connectProducer(connectOptionsFromEnv({
      KAFKA_BOOTSTRAP_SERVERS: BROKERS.join(","),
      KAFKA_CLIENT: "platformatic",
      KAFKA_PRODUCER_THREAD: thread,
    }));
    try {
      const expected = thread === "worker" ? WorkerProducer : PlatformaticProducer;
      assert.ok(producer instanceof expected, `KAFKA_PRODUCER_THREAD=${thread}`);
      await producer.send({ topic, messages: [{ key: `k-${thread}`, value: "v" }] });
    } finally {
      await producer.close();
    }
  }
  assert.deepEqual(
    (await readTopic(topic)).map((m) => m.key).sort(),
    ["k-main", "k-undefined", "k-worker"],
  );
  assert.throws(
    () => connectOptionsFromEnv({ KAFKA_PRODUCER_THREAD: "both" }),
    /KAFKA_PRODUCER_THREAD must be main or worker, got "both"/,
  );
});
