// main.ts's Kafka clients end to end (KAFKA_CLIENT, KAFKA_COMPRESSION): each lands the same
// messages on the same partitions, under Deno and Bun, read back with kcat.
import assert from "node:assert/strict";
import { pipeline } from "./_pipeline.ts";

const CSV = "id,v\n" + Array.from({ length: 60 }, (_, i) => `key-${i},${i}`).join("\n") + "\n";

/** "partition key=value" of every message on the topic, sorted. */
async function landed(
  p: { all(): Promise<Array<{ partition: number; key: string | null; value: string | null }>> },
) {
  return (await p.all()).map((m) => `${m.partition} ${m.key}=${m.value}`).sort();
}

Deno.test("main.ts lands the same messages on the same partitions with kafkajs and platformatic, under Deno and Bun", async () => {
  const runs = [
    { KAFKA_CLIENT: "kafkajs", runtime: "deno" },
    { KAFKA_CLIENT: "platformatic", runtime: "deno" },
    { KAFKA_CLIENT: "platformatic", runtime: "bun" },
    { KAFKA_CLIENT: "platformatic", runtime: "deno", KAFKA_COMPRESSION: "lz4" },
    { KAFKA_CLIENT: "platformatic", runtime: "bun", KAFKA_COMPRESSION: "zstd" },
    { KAFKA_CLIENT: "kafkajs", runtime: "bun", KAFKA_COMPRESSION: "gzip" },
  ] as const;
  let reference: string[] | undefined;
  for (const { runtime, ...env } of runs) {
    await using p = await pipeline(`client-${env.KAFKA_CLIENT}`);
    await p.write("a.csv", CSV);
    await p.ok({ env, runtime });
    const messages = await landed(p);
    assert.equal(messages.length, 60, JSON.stringify(env));
    assert.equal(new Set(messages.map((m) => m.split(" ")[0])).size, 3, "over 3 partitions");
    await p.fresh();
    reference ??= messages;
    assert.deepEqual(messages, reference, `${runtime} ${JSON.stringify(env)}`);
    // The edit and the tombstone go through the same client.
    await p.write("a.csv", CSV.replace("key-7,7\n", "").replace("key-8,8", "key-8,eight"));
    await p.ok({ env, runtime });
    assert.deepEqual(await p.fresh(), [
      "key-7=null",
      'key-8={"id":"key-8","v":"eight"}',
    ]);
  }
});

Deno.test("main.ts refuses an unknown KAFKA_CLIENT and a codec kafkajs does not have", async () => {
  await using p = await pipeline("client-bad");
  await p.write("a.csv", "id,v\nk1,1\n");
  const unknown = await p.run({ env: { KAFKA_CLIENT: "rdkafka" } });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /KAFKA_CLIENT must be kafkajs or platformatic/);
  const lz4 = await p.run({ env: { KAFKA_CLIENT: "kafkajs", KAFKA_COMPRESSION: "lz4" } });
  assert.equal(lz4.code, 1);
  assert.match(lz4.stderr, /kafkajs has no lz4: use KAFKA_CLIENT=platformatic/);
  const codec = await p.run({ env: { KAFKA_COMPRESSION: "brotli" } });
  assert.match(codec.stderr, /KAFKA_COMPRESSION must be none, gzip, lz4 or zstd, got "brotli"/);
  const mechanism = await p.run({
    env: { KAFKA_SASL_MECHANISM: "gssapi", KAFKA_SASL_USERNAME: "u", KAFKA_SASL_PASSWORD: "pw" },
  });
  assert.match(
    mechanism.stderr,
    /KAFKA_SASL_MECHANISM must be plain, scram-sha-256 or scram-sha-512/,
  );
  const ca = await p.run({ env: { KAFKA_SSL_CA: "/nonexistent/ca.pem" } });
  assert.match(ca.stderr, /KAFKA_SSL_CA=\/nonexistent\/ca.pem: cannot read it/);
  assert.deepEqual(await p.fresh(), []);
});
