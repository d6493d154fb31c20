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

Deno.test("scripts/kafka topic --delete deletes topics in one call; a missing one is fine", async () => {
  const id = crypto.randomUUID().slice(0, 8);
  const names = [`del-${id}-a`, `del.${id}.b`];
  for (const name of names) await createTopic(name, 1);
  const script = decodeURIComponent(new URL("../scripts/kafka", import.meta.url).pathname);
  const run = (...args: string[]) =>
    new Deno.Command("bash", { args: [script, "topic", ...args], stdout: "piped", stderr: "piped" })
      .output();
  const exists = async (name: string) => {
    const out = await new Deno.Command("kcat", {
      args: ["-b", BROKERS, "-L", "-t", name, "-X", "allow.auto.create.topics=false"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout).split("\n")
      .some((line) => line.startsWith(`  topic "${name}" with `) && line.endsWith(" partitions:"));
  };
  // `del.ID.b`'s dots must not match other names (the call passes a pattern to TopicCommand).
  const bystander = `del-${id}-b`;
  await createTopic(bystander, 1);
  const deleted = await run("--delete", ...names, `del-${id}-never-made`);
  assert.ok(deleted.success, new TextDecoder().decode(deleted.stderr));
  for (const name of names) {
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = !await exists(name);
      if (!gone) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(gone, `${name} still exists`);
  }
  assert.ok(await exists(bystander), "a topic not named is kept");
  const bad = await run("--delete", "no such name");
  assert.equal(bad.success, false);
  assert.match(new TextDecoder().decode(bad.stderr), /not a topic name: 'no such name'/);
  await run("--delete", bystander);
});
