// The @platformatic/kafka adapter against the real broker, read back with kcat: what lands (keys,
// values, tombstones, headers, compressed batches), where it lands (murmur2, as librdkafka puts
// it), and how a missing topic, a refused message and a dead address fail.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:net";
import { type Connection, kGetConnection, Producer } from "@platformatic/kafka";
import { connectPlatformaticProducer, type KafkaCompression } from "../lib/kafka_platformatic.ts";
import { createTopic, murmur2Partitions, readTopic } from "./_kafka_readback.ts";

const BROKERS = (Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") ?? "127.0.0.1:9092").split(",");

Deno.test("connectPlatformaticProducer() sends keyed messages, bytes, headers and true-null tombstones", async () => {
  const topic = `plt-smoke-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  await producer.send({
    topic,
    messages: [
      { key: "a", value: "1" },
      { key: "b", value: "" },
      { key: "c", value: "3", headers: { h: "v" } },
      { key: Buffer.from("d"), value: Buffer.from("é") },
      { key: "a", value: null },
    ],
  });
  const messages = await readTopic(topic);
  const byKey = (k: string) => messages.filter((m) => m.key === k);
  assert.deepEqual(byKey("a").map((m) => m.value), ["1", null], "a tombstone reads as null");
  assert.deepEqual(byKey("b").map((m) => m.value), [""], "an empty value is not a tombstone");
  assert.deepEqual(byKey("c")[0]?.headers, { h: "v" });
  assert.deepEqual(byKey("d").map((m) => m.value), ["é"]);
  assert.equal(new Set(byKey("a").map((m) => m.partition)).size, 1, "one key, one partition");
});

Deno.test("PlatformaticProducer.send() keeps every message's own header values when they repeat and change", async () => {
  const topic = `plt-headers-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  // The adapter reuses a header value's bytes while the value repeats: a change must not leak
  // into the messages before it, in this send or in one still in flight.
  const source = (path: string) => ({
    "statecast-source": path,
    "x-n": path.length > 5 ? "é" : "",
  });
  const first = producer.send({
    topic,
    messages: [
      { key: "a", value: "1", headers: source("a.csv") },
      { key: "b", value: "2", headers: source("a.csv") },
      { key: "c", value: "3", headers: source("sub/b.csv") },
    ],
  });
  const second = producer.send({
    topic,
    messages: [
      { key: "d", value: "4", headers: source("sub/b.csv") },
      { key: "e", value: "5", headers: source("a.csv") },
    ],
  });
  await Promise.all([first, second]);
  const headers = Object.fromEntries((await readTopic(topic)).map((m) => [m.key, m.headers]));
  assert.deepEqual(headers, {
    a: { "statecast-source": "a.csv", "x-n": "" },
    b: { "statecast-source": "a.csv", "x-n": "" },
    c: { "statecast-source": "sub/b.csv", "x-n": "é" },
    d: { "statecast-source": "sub/b.csv", "x-n": "é" },
    e: { "statecast-source": "a.csv", "x-n": "" },
  });
});

Deno.test("PlatformaticProducer.send() sends each message its own headers when shared objects alternate", async () => {
  const topic = `plt-shared-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  // The target hands one headers object to the messages that share it; the adapter makes the
  // client's headers once per object and must start over whenever the object changes.
  const a = { "statecast-source": "a.csv" }, b = { "statecast-source": "b.csv", x: "y" };
  await producer.send({
    topic,
    messages: [
      { key: "1", value: "1", headers: a },
      { key: "2", value: "2", headers: a },
      { key: "3", value: "3", headers: b },
      { key: "4", value: "4" },
      { key: "5", value: "5", headers: a },
    ],
  });
  const headers = Object.fromEntries((await readTopic(topic)).map((m) => [m.key, m.headers]));
  assert.deepEqual(headers, {
    1: { "statecast-source": "a.csv" },
    2: { "statecast-source": "a.csv" },
    3: { "statecast-source": "b.csv", x: "y" },
    4: {},
    5: { "statecast-source": "a.csv" },
  });
});

Deno.test("connectPlatformaticProducer() puts 300 keys (UTF-8, long) on the partitions librdkafka's murmur2 picks", async () => {
  const topic = `plt-murmur-${crypto.randomUUID().slice(0, 8)}`;
  const reference = `${topic}-kcat`;
  await createTopic(topic, 3);
  // ASCII keys, keys with 2- and 4-byte characters, and longer ones (statecast copies ASCII keys
  // of up to 512 units itself and lets the runtime encode the rest).
  const keys = Array.from({ length: 300 }, (_, i) => {
    const key = `key-${i}-${i * 7919}`;
    if (i % 10 === 1) return `clé-${key}`;
    if (i % 10 === 2) return `${key}🙂`;
    if (i % 50 === 3) return key.padEnd(512 + (i % 3), "x");
    return key;
  });
  {
    await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
    await producer.send({ topic, messages: keys.map((key) => ({ key, value: "x" })) });
  }
  const ours = new Map((await readTopic(topic)).map((m) => [m.key, m.partition]));
  const theirs = await murmur2Partitions(keys, reference);
  assert.equal(ours.size, 300);
  assert.equal(new Set(ours.values()).size, 3, "keys spread over the 3 partitions");
  for (const key of keys) assert.equal(ours.get(key), theirs.get(key), `partition of ${key}`);
});

Deno.test("connectPlatformaticProducer() sends lz4, zstd and gzip batches that kcat reads", async () => {
  for (const compression of ["lz4", "zstd", "gzip"] as KafkaCompression[]) {
    const topic = `plt-${compression}-${crypto.randomUUID().slice(0, 8)}`;
    await createTopic(topic, 3);
    await using producer = await connectPlatformaticProducer({ brokers: BROKERS, compression });
    const messages = Array.from(
      { length: 50 },
      (_, i) => ({ key: `k${i}`, value: `v${i}`.repeat(20) }),
    );
    await producer.send({ topic, messages });
    const landed = await readTopic(topic);
    assert.equal(landed.length, 50, compression);
    assert.equal(landed.find((m) => m.key === "k7")?.value, "v7".repeat(20), compression);
  }
});

Deno.test("PlatformaticProducer.send() to a missing topic fails at once with UNKNOWN_TOPIC_OR_PARTITION", async () => {
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  const started = Date.now();
  await assert.rejects(
    producer.send({
      topic: `missing-${crypto.randomUUID()}`,
      messages: [{ key: "k", value: "v" }],
    }),
    (error: { type?: string; retriable?: boolean }) =>
      error.type === "UNKNOWN_TOPIC_OR_PARTITION" && error.retriable === false,
  );
  assert.ok(Date.now() - started < 10_000, "the send gave up instead of hanging");
});

Deno.test("PlatformaticProducer.send() names MESSAGE_TOO_LARGE as the error's type", async () => {
  const topic = `plt-large-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3, { configs: { "max.message.bytes": "2000" } });
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  // One partition's batch is refused; the other partitions' batches of the same send land.
  const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
  await assert.rejects(
    producer.send({
      topic,
      messages: keys.map((key, i) => ({ key, value: i === 0 ? "x".repeat(5000) : "first" })),
    }),
    (error: { type?: string }) => error.type === "MESSAGE_TOO_LARGE",
  );
  // The producer goes on after a refusal, on every partition (its sequence numbers too).
  await producer.send({ topic, messages: keys.map((key) => ({ key, value: "small" })) });
  const last = new Map((await readTopic(topic)).map((m) => [m.key, m.value]));
  assert.deepEqual([...last.keys()].sort(), [...keys].sort());
  assert.ok([...last.values()].every((v) => v === "small"));
});

Deno.test("connectPlatformaticProducer() fails fast when no broker listens at the address", async () => {
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const started = Date.now();
  await assert.rejects(
    connectPlatformaticProducer({ brokers: [`127.0.0.1:${port}`], connectTimeoutMs: 1000 }),
  );
  assert.ok(Date.now() - started < 30_000, "connecting gave up instead of hanging");
});

Deno.test("PlatformaticProducer writes its own batches: sends at once keep their order, and the messages equal the client's own path", async () => {
  const topic = `plt-direct-${crypto.randomUUID().slice(0, 8)}`;
  const client = `${topic}-client`;
  await createTopic(topic, 3);
  await createTopic(client, 3);
  const source = { "statecast-source": "data/a.csv" };
  // Keys of 1 to 3-byte characters, a value past 16 KiB (a 3-byte length), bytes, tombstones.
  const batch = (n: number) =>
    Array.from({ length: 1500 }, (_, i) => ({
      key: i % 7 === 0 ? Buffer.from(`b-${i}`) : `k-${i % 500}-Zoë-🙂`,
      value: i % 11 === 0 ? null : i === 3 ? "x".repeat(20_000) : `{"n":${n},"i":${i}}`,
      headers: i % 2 === 0 ? source : { "statecast-source": `data/${n}.csv` },
    }));
  const sends = [0, 1, 2, 3, 4].map(batch);
  for (const [name, direct] of [[topic, true], [client, false]] as const) {
    await using producer = await connectPlatformaticProducer({ brokers: BROKERS, direct });
    await Promise.all(sends.map((messages) => producer.send({ topic: name, messages })));
  }
  const ours = await readTopic(topic);
  const theirs = await readTopic(client);
  assert.equal(ours.length, 5 * 1500);
  const view = (ms: typeof ours) =>
    ms.map((m) => JSON.stringify([m.partition, m.key, m.value, m.headers])).sort();
  assert.deepEqual(view(ours), view(theirs));
  // Within a partition, the sends' order: each key's last value is the last send's.
  const last = new Map(ours.map((m) => [m.key, m.value]));
  assert.equal(last.get("k-1-Zoë-🙂"), '{"n":4,"i":501}'); // i = 1001 is a bytes key
});

Deno.test("PlatformaticProducer sends again, under a new producer id, a send cut off after its requests went out", async () => {
  const topic = `plt-retry-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  const messages = Array.from({ length: 900 }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));
  Deno.env.set("STATECAST_TEST_KAFKA_FAULT", "after-queue");
  try {
    await producer.send({ topic, messages });
  } finally {
    Deno.env.delete("STATECAST_TEST_KAFKA_FAULT");
  }
  // Later sends go on under the new id, in sequence.
  await producer.send({ topic, messages: messages.map((m) => ({ ...m, value: `${m.value}'` })) });
  const read = await readTopic(topic);
  const last = new Map(read.map((m) => [m.key, m.value]));
  assert.equal(last.size, 900);
  for (let i = 0; i < 900; i++) assert.equal(last.get(`k${i}`), `v${i}'`);
  // The first requests landed too, then the same messages again: at least once, not exactly.
  assert.equal(read.length, 3 * 900, "the first send twice, the second once");
});

Deno.test("PlatformaticProducer.send() sends a headers object's new contents when the caller reuses it", async () => {
  const topic = `plt-reused-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  // The adapter makes a headers object's bytes once for the messages of a send that share it;
  // the next send must not take them for an object changed since.
  const headers: Record<string, string> = { x: "1" };
  await producer.send({ topic, messages: [{ key: "a", value: "1", headers }] });
  headers.x = "2";
  headers.y = "3";
  await producer.send({ topic, messages: [{ key: "b", value: "2", headers }] });
  const read = Object.fromEntries((await readTopic(topic)).map((m) => [m.key, m.headers]));
  assert.deepEqual(read, { a: { x: "1" }, b: { x: "2", y: "3" } });
});

Deno.test("PlatformaticProducer sends again, under a new producer id, the sends in flight when their connection drops", async () => {
  const topic = `plt-drop-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  // The client's connections, reached through its own kGetConnection: the socket is destroyed
  // right after the second Produce request is handed over, with two sends in flight.
  // deno-lint-ignore no-explicit-any
  const proto = Producer.prototype as any;
  const original = proto[kGetConnection];
  let produces = 0;
  proto[kGetConnection] = function (
    broker: unknown,
    callback: (e: unknown, c?: Connection) => void,
  ) {
    original.call(this, broker, (error: unknown, connection?: Connection) => {
      // deno-lint-ignore no-explicit-any
      const c = connection as any;
      if (c !== undefined && c.statecastTestSend === undefined) {
        c.statecastTestSend = c.send.bind(c);
        c.send = (...args: unknown[]) => {
          c.statecastTestSend(...args);
          if (args[0] === 0 && ++produces === 2) c.socket.destroy();
        };
      }
      callback(error, connection);
    });
  };
  try {
    await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
    const batch = (n: number) =>
      Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value: `v${n}-${i}` }));
    await Promise.all([0, 1, 2, 3].map((n) => producer.send({ topic, messages: batch(n) })));
    assert.ok(produces > 4, "requests were sent again");
    await producer.send({ topic, messages: batch(4) });
    const read = await readTopic(topic);
    const values = new Set(read.map((m) => m.value));
    for (let n = 0; n <= 4; n++) {
      for (let i = 0; i < 1000; i++) assert.ok(values.has(`v${n}-${i}`), `v${n}-${i} landed`);
    }
    const last = new Map(read.map((m) => [m.key, m.value]));
    for (let i = 0; i < 1000; i++) assert.equal(last.get(`k${i}`), `v4-${i}`);
  } finally {
    proto[kGetConnection] = original;
  }
});

Deno.test("PlatformaticProducer keeps two sends in order when the first fails before its requests go out", async () => {
  const topic = `plt-order-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  await using producer = await connectPlatformaticProducer({ brokers: BROKERS });
  await producer.send({ topic, messages: [{ key: "k", value: "0" }] });
  // The first send's metadata look-up fails once, retriably: it is sent again after a pause,
  // and the second send must not go first (its value would be overwritten by the older one).
  // deno-lint-ignore no-explicit-any
  const proto = Producer.prototype as any;
  const original = proto.metadata;
  let failed = false;
  proto.metadata = function (...args: unknown[]) {
    if (!failed) {
      failed = true;
      return Promise.reject(Object.assign(new Error("blip"), { canRetry: true }));
    }
    return original.apply(this, args);
  };
  try {
    await Promise.all([
      producer.send({ topic, messages: [{ key: "k", value: "older" }] }),
      producer.send({ topic, messages: [{ key: "k", value: "newer" }] }),
    ]);
  } finally {
    proto.metadata = original;
  }
  assert.ok(failed, "the look-up failed once");
  assert.deepEqual((await readTopic(topic)).map((m) => m.value), ["0", "older", "newer"]);
});

Deno.test("PlatformaticProducer starts nothing more of a send once it has timed out", async () => {
  const topic = `plt-giveup-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  // Every attempt fails after its requests went out; the send gives up after 150 ms, while the
  // first retry still waits its 200 ms pause: that retry, and the ones after it, must not start.
  await using producer = await connectPlatformaticProducer({
    brokers: BROKERS,
    sendTimeoutMs: 150,
  });
  const messages = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));
  Deno.env.set("STATECAST_TEST_KAFKA_FAULT", "after-queue-always");
  try {
    await assert.rejects(producer.send({ topic, messages }), /took over 150 ms/);
    await new Promise((resolve) => setTimeout(resolve, 2000)); // the retries' pauses, and more
  } finally {
    Deno.env.delete("STATECAST_TEST_KAFKA_FAULT");
  }
  assert.equal((await readTopic(topic)).length, 300, "the first attempt only");
  // The producer goes on (under a new id).
  await producer.send({ topic, messages: [{ key: "k0", value: "after" }] });
  const last = new Map((await readTopic(topic)).map((m) => [m.key, m.value]));
  assert.equal(last.get("k0"), "after");
});

Deno.test("connectProducer() to a port where no broker listens says so in one sentence", async () => {
  const { connectProducer } = await import("../lib/kafka_connect.ts");
  const error = await connectProducer({ brokers: ["127.0.0.1:9"], client: "platformatic" }).then(
    () => assert.fail("connected to nothing"),
    (e: Error) => e,
  );
  assert.match(error.message, /^Cannot connect to Kafka at 127\.0\.0\.1:9: .*ECONNREFUSED/);
  // The client's messages end in periods; joined, they read "failed 6 times.: Cannot connect...".
  assert.doesNotMatch(error.message, /\.:/);
});
