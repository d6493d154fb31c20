// The Kafka target's mapping from changes to producer messages, with a fake producer that keeps
// what it was given. What a real broker stores is checked end to end in pipeline_e2e_test.ts.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ContextKey } from "../lib/context.ts";
import { keyId } from "../lib/key_id.ts";
import { initFingerprints } from "../lib/fingerprint.ts";
import { type KafkaProducer, type ProducerMessage, TopicTarget } from "../lib/kafka_target.ts";

await initFingerprints();

class FakeProducer implements KafkaProducer {
  sent: Array<{ topic: string; messages: ProducerMessage[]; acks?: number }> = [];
  send(record: { topic: string; messages: ProducerMessage[]; acks?: number }) {
    this.sent.push(record);
    return Promise.resolve([]);
  }
}

const KEY = new ContextKey<KafkaProducer>("producer");

Deno.test("TopicTarget's identity is the context key name and the topic, not the producer", () => {
  const a = new TopicTarget(KEY, new FakeProducer(), "rows");
  const b = new TopicTarget(KEY, new FakeProducer(), "rows");
  assert.equal(a.id, "kafka:producer/rows");
  assert.equal(a.id, b.id);
});

Deno.test("TopicTarget.apply() sends upserts keyed, deletes as null values, acks=all, in batches", async () => {
  const producer = new FakeProducer();
  const target = new TopicTarget(KEY, producer, "rows", { batchSize: 2 });
  const applied: number[] = [];
  await target.apply([
    { kind: "upsert", key: "a", state: { key: "a", value: "1" } },
    {
      kind: "upsert",
      key: new Uint8Array([0xff]),
      state: { key: new Uint8Array([0xff]), value: new Uint8Array([1, 2]) },
    },
    { kind: "delete", key: "c" },
  ], (n) => applied.push(n));
  assert.deepEqual(producer.sent.map((s) => [s.topic, s.acks, s.messages.length]), [
    ["rows", -1, 2],
    ["rows", -1, 1],
  ]);
  const [m1, m2, m3] = producer.sent.flatMap((s) => s.messages);
  assert.deepEqual(m1, { key: "a", value: "1" });
  assert.ok(Buffer.isBuffer(m2!.key) && Buffer.isBuffer(m2!.value));
  assert.deepEqual([...(m2!.key as Buffer)], [0xff]);
  assert.deepEqual(m3, { key: "c", value: null }, "a tombstone is a true null");
  assert.deepEqual(applied, [2, 1]);
});

Deno.test("TopicTarget.apply() sends the deletion value instead of a tombstone when given one", async () => {
  const producer = new FakeProducer();
  const target = new TopicTarget(KEY, producer, "rows", {
    deletionValue: (key) => JSON.stringify({ deleted: keyId(key) }),
  });
  await target.apply([{ kind: "delete", key: "gone" }]);
  assert.deepEqual(producer.sent[0]!.messages, [{ key: "gone", value: '{"deleted":"gone"}' }]);
});

Deno.test("TopicTarget.fingerprint() covers the value and headers; a string equals its bytes", () => {
  const target = new TopicTarget(KEY, new FakeProducer(), "rows");
  const plain = target.fingerprint({ key: "k", value: "v" });
  assert.equal(plain, target.fingerprint({ key: "k", value: new TextEncoder().encode("v") }));
  const withHeaders = target.fingerprint({ key: "k", value: "v", headers: { h: "1" } });
  assert.notEqual(withHeaders, plain);
  assert.notEqual(withHeaders, target.fingerprint({ key: "k", value: "v", headers: { h: "2" } }));
  assert.equal(
    target.fingerprint({ key: "k", value: "v", headers: { a: "1", b: "2" } }),
    target.fingerprint({ key: "k", value: "v", headers: { b: "2", a: "1" } }),
    "header order does not matter",
  );
});

Deno.test("TopicTarget.fingerprint() of a state without metaHeaders is what stores written before hold", () => {
  // Pinned: stores written before metaHeaders existed hold these; a change would re-send every row.
  const target = new TopicTarget(KEY, new FakeProducer(), "rows");
  const value = '{"id":"k","v":"1"}';
  assert.equal(target.fingerprint({ key: "k", value }), "f1ed76a898e62106");
  assert.equal(target.fingerprint({ key: "k", value, headers: { h: "1" } }), "d299394ff4a487ff");
});

Deno.test("TopicTarget.fingerprint() ignores metaHeaders; apply() sends them with the headers", async () => {
  const producer = new FakeProducer();
  const target = new TopicTarget(KEY, producer, "rows");
  const value = '{"id":"k","v":"1"}';
  const source = (path: string) => ({ "statecast-source": path });
  assert.equal(
    target.fingerprint({ key: "k", value, metaHeaders: source("a.csv") }),
    "f1ed76a898e62106",
  );
  assert.equal(
    target.fingerprint({ key: "k", value, headers: { h: "1" }, metaHeaders: source("b.csv") }),
    "d299394ff4a487ff",
  );
  await target.apply([
    { kind: "upsert", key: "k", state: { key: "k", value, metaHeaders: source("a.csv") } },
    {
      kind: "upsert",
      key: "j",
      state: {
        key: "j",
        value: "2",
        headers: { h: "1" },
        metaHeaders: { line: new Uint8Array([55]) },
      },
    },
  ]);
  const [m1, m2] = producer.sent[0]!.messages;
  assert.deepEqual(m1, { key: "k", value, headers: { "statecast-source": "a.csv" } });
  assert.equal(m2!.headers!.h, "1");
  assert.deepEqual([...(m2!.headers!.line as Buffer)], [55]);
});

Deno.test("TopicTarget.apply() gives each message its own state's headers when shared objects alternate", async () => {
  const producer = new FakeProducer();
  const target = new TopicTarget(KEY, producer, "rows");
  // main.ts hands one file's rows the same metaHeaders object; the target shares the headers it
  // sends while the objects repeat, and must start over whenever either of them changes.
  const a = { "statecast-source": "a.csv" }, b = { "statecast-source": "b.csv" };
  const h = { h: "1" };
  const up = (key: string, state: object) => ({
    kind: "upsert" as const,
    key,
    state: { key, value: key, ...state },
  });
  await target.apply([
    up("1", { metaHeaders: a }),
    up("2", { metaHeaders: a }),
    up("3", { metaHeaders: b }),
    up("4", { headers: h, metaHeaders: b }),
    up("5", {}),
    { kind: "delete", key: "6" },
    up("7", { metaHeaders: a }),
    up("8", { headers: h }),
  ]);
  assert.deepEqual(producer.sent[0]!.messages.map((m) => [m.key, m.headers]), [
    ["1", { "statecast-source": "a.csv" }],
    ["2", { "statecast-source": "a.csv" }],
    ["3", { "statecast-source": "b.csv" }],
    ["4", { h: "1", "statecast-source": "b.csv" }],
    ["5", undefined],
    ["6", undefined],
    ["7", { "statecast-source": "a.csv" }],
    ["8", { h: "1" }],
  ]);
  assert.ok(!("headers" in producer.sent[0]!.messages[4]!), "no headers field without headers");
});

Deno.test("TopicTarget.declareTargetState() refuses a header named in both headers and metaHeaders", () => {
  const target = new TopicTarget(KEY, new FakeProducer(), "rows");
  assert.throws(
    () =>
      target.declareTargetState({
        key: "k",
        value: "v",
        headers: { s: "1" },
        metaHeaders: { s: "2" },
      }),
    /header "s" is in both headers and metaHeaders/,
  );
});

Deno.test("TopicTarget.declareTargetState() outside a component is a TypeError saying where to call it", () => {
  const target = new TopicTarget(KEY, new FakeProducer(), "rows");
  assert.throws(() => target.declareTargetState({ key: "k", value: "v" }), TypeError);
  assert.throws(
    () => target.declareTargetState({ key: "k", value: 42 as unknown as string }),
    /value must be a string or Uint8Array, got number/,
  );
});

/** A producer whose sends settle only when the test says so. */
class ManualProducer implements KafkaProducer {
  readonly calls: Array<{ size: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  send(record: { messages: ProducerMessage[] }): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.calls.push({ size: record.messages.length, resolve: () => resolve([]), reject });
    });
  }
}

const upserts = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    kind: "upsert" as const,
    key: `k${i}`,
    state: { key: `k${i}`, value: "v" },
  }));
const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("TopicTarget.apply() with inFlight 2 keeps two sends outstanding and reports acks in order", async () => {
  const producer = new ManualProducer();
  const target = new TopicTarget(KEY, producer, "rows", { batchSize: 2, inFlight: 2 });
  const applied: number[] = [];
  let done = false;
  const applying = target.apply(upserts(5), (n) => applied.push(n)).then(() => done = true);
  await tick();
  assert.deepEqual(producer.calls.map((c) => c.size), [2, 2], "two batches in flight, no third");
  producer.calls[1]!.resolve(); // the second is acknowledged first
  await tick();
  assert.deepEqual(applied, [], "progress waits for the first batch");
  producer.calls[0]!.resolve();
  await tick();
  assert.deepEqual(applied, [2, 2]);
  assert.deepEqual(producer.calls.map((c) => c.size), [2, 2, 1]);
  assert.equal(done, false, "not done before the last ack");
  producer.calls[2]!.resolve();
  await applying;
  assert.deepEqual(applied, [2, 2, 1]);
});

Deno.test("TopicTarget.apply() rejects a failed batch only once every send in flight settled", async () => {
  const producer = new ManualProducer();
  const target = new TopicTarget(KEY, producer, "rows", { batchSize: 1, inFlight: 3 });
  let settled = false;
  const applying = target.apply(upserts(3)).finally(() => settled = true);
  await tick();
  assert.equal(producer.calls.length, 3);
  producer.calls[1]!.reject(Object.assign(new Error("boom"), { type: "NOT_ENOUGH_REPLICAS" }));
  producer.calls[0]!.resolve();
  await tick();
  assert.equal(settled, false, "the third send is still in flight");
  producer.calls[2]!.resolve();
  await assert.rejects(
    applying,
    /Kafka did not accept messages for topic "rows": NOT_ENOUGH_REPLICAS/,
  );
});

Deno.test("TopicTarget.apply() keeps as many sends in flight as the producer says it orders", async () => {
  const producer = Object.assign(new ManualProducer(), { inFlight: 3 });
  const target = new TopicTarget(KEY, producer, "rows", { batchSize: 1 });
  const applying = target.apply(upserts(4));
  await tick();
  assert.equal(producer.calls.length, 3);
  for (const call of producer.calls) call.resolve();
  await tick();
  producer.calls[3]!.resolve();
  await applying;
  assert.equal(producer.calls.length, 4);
});
