/**
 * The Kafka topic target: declared states become keyed messages; a key nobody declares any more
 * becomes a tombstone (a true null value) or the user's deletion value.
 *
 * statecast never creates topics and never creates the producer: the app's lifespan provides
 * one (@platformatic/kafka by default) under a {@linkcode ContextKey}. Only `send()` is used, so any client
 * with the same shape fits (kafkajs, @platformatic/kafka behind an adapter, a test fake).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type ContextKey, currentMountScope } from "./context.ts";
import type { Key } from "./key_id.ts";
import { type Change, declare, type Target } from "./target.ts";
import { errorMessage, StatecastError } from "./errors.ts";
import { type Fingerprint, fingerprint, fingerprintParts } from "./fingerprint.ts";

/**
 * A message as the producer takes it (kafkajs' `Message` subset).
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const tombstone: kafka.ProducerMessage = { key: "A1", value: null };
 * if (tombstone.value !== null) throw new Error();
 * ```
 */
export interface ProducerMessage {
  /** The message key (statecast always sets one). */
  key: Buffer | string | null;
  /** The value; null is a tombstone. */
  value: Buffer | string | null;
  /** Record headers. */
  headers?: Record<string, Buffer | string>;
}

/**
 * The smallest producer statecast needs: kafkajs' `Producer.send`. Any client fits behind it;
 * a test can record what would be sent.
 *
 * @example
 * ```ts
 * import { ContextKey, kafka } from "./mod.ts";
 * const sent: kafka.ProducerMessage[] = [];
 * const recorder: kafka.KafkaProducer = {
 *   send: ({ messages }) => Promise.resolve(sent.push(...messages)),
 * };
 * const topic = new kafka.TopicTarget(new ContextKey("recorder"), recorder, "rows");
 * await topic.apply([{ kind: "upsert", key: "A1", state: { key: "A1", value: "x" } }]);
 * if (sent.length !== 1 || sent[0]!.value !== "x") throw new Error();
 * ```
 */
export interface KafkaProducer {
  /** Sends `messages` to `topic`, resolving once the broker acknowledged them (per `acks`). */
  send(record: { topic: string; messages: ProducerMessage[]; acks?: number }): Promise<unknown>;
  /**
   * How many `send()` calls the producer keeps in order when they run at once; the target's
   * default `inFlight`. @default 1
   */
  readonly inFlight?: number;
}

/**
 * What a row of a topic should be: the argument of {@linkcode TopicTarget.declareTargetState}.
 *
 * @example
 * ```ts
 * import type { TopicState } from "./mod.ts";
 * const state: TopicState = {
 *   key: "A1",
 *   value: JSON.stringify({ sku: "A1", qty: 3 }),
 *   headers: { "content-type": "application/json" },
 * };
 * if (JSON.parse(state.value as string).qty !== 3) throw new Error();
 * ```
 */
export interface TopicState {
  /** The message key: a string (sent as its UTF-8 bytes) or bytes. */
  key: Key;
  /** The message value: a string (sent as its UTF-8 bytes) or bytes. */
  value: string | Uint8Array;
  /**
   * Headers that are part of the message's meaning: they count in its fingerprint, so changing
   * one sends the message again.
   */
  headers?: Record<string, string | Uint8Array>;
  /**
   * Headers that describe where the message came from (the source file, its line, a content
   * hash): they travel with every message sent, but do not count in its fingerprint, so a row
   * that only moves (another line, another file) sends nothing, and the message keeps the
   * metadata it was last sent with. A changed value is sent with the current ones. A name may
   * not be in both `headers` and `metaHeaders`.
   */
  metaHeaders?: Record<string, string | Uint8Array>;
}

/**
 * Options of {@linkcode mountTopicTarget}.
 *
 * @example
 * ```ts
 * import { ContextKey, kafka } from "./mod.ts";
 * const options: kafka.TopicTargetOptions = {
 *   deletionValue: (key) => JSON.stringify({ id: key, deleted: true }), // instead of a tombstone
 *   batchSize: 500,
 * };
 * const sent: kafka.ProducerMessage[] = [];
 * const producer: kafka.KafkaProducer = {
 *   send: ({ messages }) => Promise.resolve(sent.push(...messages)),
 * };
 * const topic = new kafka.TopicTarget(new ContextKey("p"), producer, "rows", options);
 * await topic.apply([{ kind: "delete", key: "A1" }]);
 * if (sent[0]!.value !== '{"id":"A1","deleted":true}') throw new Error();
 * ```
 */
export interface TopicTargetOptions {
  /** The value sent when a key is deleted. @default a tombstone (null value) */
  deletionValue?: (key: Key) => string | Uint8Array;
  /**
   * Messages per `send()` call. 1000 measured cheaper than 2000 under Deno (bench/kafka_send.ts,
   * 1M messages: @platformatic/kafka 3.7-4.1 CPU s against 4.0-4.5, 40 MB less peak RSS;
   * kafkajs, whose grouping by partition is quadratic in a batch, 12-14 against 13.4-13.8).
   * @default 1000
   */
  batchSize?: number;
  /**
   * `send()` calls awaited at once: with more than one, the next batch is handed over while the
   * broker still writes the previous one. Only for a producer that keeps the order of concurrent
   * sends (kafkajs' idempotent producer does not promise it). @default the producer's
   * `inFlight`, else 1
   */
  inFlight?: number;
  /** Acks required: -1 (all in-sync replicas), 1 or 0. @default -1 */
  acks?: -1 | 0 | 1;
}

function toWire(data: string | Uint8Array): Buffer | string {
  return typeof data === "string"
    ? data
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * A mounted Kafka topic. Declare states on it from a component; the engine calls
 * {@linkcode TopicTarget.apply} with the changes of a round. {@linkcode mountTopicTarget} makes
 * one inside `app.main()`.
 *
 * @example
 * ```ts
 * import { ContextKey, initFingerprints, kafka } from "./mod.ts";
 * await initFingerprints();
 * const sent: kafka.ProducerMessage[] = [];
 * const producer: kafka.KafkaProducer = {
 *   send: ({ messages }) => Promise.resolve(sent.push(...messages)),
 * };
 * const topic = new kafka.TopicTarget(new ContextKey("kafka_producer"), producer, "rows");
 * if (topic.id !== "kafka:kafka_producer/rows") throw new Error(topic.id);
 * const state = { key: "A1", value: '{"qty":3}' };
 * if (topic.fingerprint(state) !== topic.fingerprint({ ...state })) throw new Error();
 * await topic.apply([
 *   { kind: "upsert", key: "A1", state },
 *   { kind: "delete", key: "B2" },
 * ]);
 * if (sent.map((m) => `${m.key}=${m.value}`).join(" ") !== 'A1={"qty":3} B2=null') {
 *   throw new Error();
 * }
 * ```
 */
export class TopicTarget implements Target<TopicState> {
  /** `kafka:<producer key name>/<topic>`: the target's identity in the state store. */
  readonly id: string;
  /** The topic's name. */
  readonly topic: string;
  readonly #producer: KafkaProducer;
  readonly #options: TopicTargetOptions;

  /**
   * The topic `topic`, sent to through `producer`, which was provided for `producerKey` (whose
   * name is part of the identity). Inside an app, use {@linkcode mountTopicTarget}.
   */
  constructor(
    producerKey: ContextKey<KafkaProducer>,
    producer: KafkaProducer,
    topic: string,
    options: TopicTargetOptions = {},
  ) {
    if (topic.length === 0) throw new TypeError("A Kafka topic name must not be empty");
    this.id = `kafka:${producerKey.name}/${topic}`;
    this.topic = topic;
    this.#producer = producer;
    this.#options = options;
  }

  /**
   * Declares that the topic should hold `value` (and `headers`) under `key`, for the running
   * component; `metaHeaders` travel with the message but do not count in its fingerprint.
   * Declaring a key twice in one file is an error naming both lines.
   */
  declareTargetState(state: TopicState): void {
    if (typeof state.value !== "string" && !(state.value instanceof Uint8Array)) {
      throw new TypeError(
        `declareTargetState() on topic "${this.topic}": value must be a string or Uint8Array, got ${typeof state
          .value}`,
      );
    }
    if (state.headers !== undefined && state.metaHeaders !== undefined) {
      const both = Object.keys(state.metaHeaders).find((name) =>
        Object.hasOwn(state.headers!, name)
      );
      if (both !== undefined) {
        throw new TypeError(
          `declareTargetState() on topic "${this.topic}": header "${both}" is in both headers ` +
            "and metaHeaders; give it in one of them",
        );
      }
    }
    declare(this, state);
  }

  /** The fingerprint of the value and `headers`; `metaHeaders` do not count. */
  fingerprint(state: TopicState): Fingerprint {
    if (state.headers === undefined) return fingerprint(state.value);
    const parts: Array<string | Uint8Array> = [state.value];
    for (const name of Object.keys(state.headers).sort()) parts.push(name, state.headers[name]!);
    return fingerprintParts(parts);
  }

  /**
   * Sends `changes` in batches (a delete as a tombstone or the deletion value), resolving once
   * the broker acknowledged every one; a failure is a `StatecastError` naming the topic.
   */
  async apply(
    changes: ReadonlyArray<Change<TopicState>>,
    onApplied?: (count: number) => void,
  ): Promise<void> {
    const batchSize = this.#options.batchSize ?? 1000;
    const inFlight = Math.max(1, this.#options.inFlight ?? this.#producer.inFlight ?? 1);
    const acks = this.#options.acks ?? -1;
    const pending: Array<Promise<number>> = [];
    // In order: progress is reported batch after batch. (Not `onApplied?.(await ...)`: without
    // a callback, the argument, and so the await, would be skipped.)
    const acknowledged = async () => {
      const count = await pending.shift()!;
      onApplied?.(count);
    };
    try {
      for (let start = 0; start < changes.length; start += batchSize) {
        const messages = this.#messages(
          changes,
          start,
          Math.min(changes.length, start + batchSize),
        );
        const send = this.#producer.send({ topic: this.topic, messages, acks });
        const count = messages.length; // not the messages: the producer may let go of them first
        const acked = send.then(() => count);
        acked.catch(() => {}); // awaited below, in order; a later batch may fail first
        pending.push(acked);
        while (pending.length >= inFlight) await acknowledged();
      }
      while (pending.length > 0) await acknowledged();
    } catch (cause) {
      await Promise.allSettled(pending); // nothing left in flight when apply() rejects
      throw describeKafkaError(cause, this.topic);
    }
  }

  /**
   * The messages of `changes[start..end)`. Messages whose state has the same `headers` and
   * `metaHeaders` objects (main.ts gives one file's rows one `metaHeaders`) share one headers
   * object: one per message was garbage at once (the clients only read it).
   */
  #messages(
    changes: ReadonlyArray<Change<TopicState>>,
    start: number,
    end: number,
  ): ProducerMessage[] {
    const messages = new Array<ProducerMessage>(end - start);
    let headers: TopicState["headers"], metaHeaders: TopicState["metaHeaders"];
    let wire: Record<string, Buffer | string> | undefined;
    for (let i = start; i < end; i++) {
      const change = changes[i]!;
      if (change.kind === "delete") {
        const value = this.#options.deletionValue?.(change.key);
        messages[i - start] = {
          key: toWire(change.key),
          value: value === undefined ? null : toWire(value),
        };
        continue;
      }
      const state = change.state;
      const message: ProducerMessage = { key: toWire(state.key), value: toWire(state.value) };
      if (state.headers !== undefined || state.metaHeaders !== undefined) {
        if (wire === undefined || state.headers !== headers || state.metaHeaders !== metaHeaders) {
          ({ headers, metaHeaders } = state);
          wire = wireHeaders(headers, metaHeaders);
        }
        message.headers = wire;
      }
      messages[i - start] = message;
    }
    return messages;
  }
}

/** `headers` then `metaHeaders` as the producer takes them (strings stay strings). */
function wireHeaders(
  headers: TopicState["headers"],
  metaHeaders: TopicState["metaHeaders"],
): Record<string, Buffer | string> {
  const wire: Record<string, Buffer | string> = {};
  for (const name in headers) wire[name] = toWire(headers[name]!);
  for (const name in metaHeaders) wire[name] = toWire(metaHeaders[name]!);
  return wire;
}

/** The Kafka error name in a kafkajs error chain (`UNKNOWN_TOPIC_OR_PARTITION`...). */
function kafkaErrorType(error: unknown): string | undefined {
  for (
    let e = error as { type?: unknown; cause?: unknown } | undefined;
    e;
    e = e.cause as typeof e
  ) {
    if (typeof e.type === "string") return e.type;
    if (typeof e !== "object") break;
  }
  return undefined;
}

/** Kafka errors about the messages themselves: sending them again fails again. */
const REFUSALS = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_RECORD",
  "CORRUPT_MESSAGE",
  "INVALID_TIMESTAMP",
]);

function describeKafkaError(cause: unknown, topic: string): StatecastError {
  const type = kafkaErrorType(cause);
  const retriable = (cause as { retriable?: unknown })?.retriable === true;
  let hint = "";
  if (
    type === "UNKNOWN_TOPIC_OR_PARTITION" || /does not host this topic/.test(errorMessage(cause))
  ) {
    hint = `; statecast never creates topics: create "${topic}" first ` +
      `(for the local broker: scripts/kafka topic ${topic} --partitions 3)`;
  } else if (type === "MESSAGE_TOO_LARGE") {
    hint = "; a message is larger than the topic's max.message.bytes";
  } else if (type !== undefined && /AUTHORIZATION_FAILED/.test(type)) {
    hint = "; check the ACLs of the producer's user";
  }
  return new StatecastError(
    `Kafka did not accept messages for topic "${topic}": ${type ?? errorMessage(cause)}${hint}`,
    { cause, retriable, refused: type !== undefined && REFUSALS.has(type) },
  );
}

/**
 * Mounts the Kafka topic `topic`, sending through the producer provided for `producerKey`.
 * Call it inside `app.main()`. The target's identity is `(producerKey.name, topic)`.
 *
 * @example
 * ```ts
 * import { mkdtemp, rm, writeFile } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { App, ContextKey, kafka, localfs } from "./mod.ts";
 *
 * const PRODUCER = new ContextKey<kafka.KafkaProducer>("kafka_producer");
 * const sent: kafka.ProducerMessage[] = [];
 * const dir = await mkdtemp(join(tmpdir(), "statecast-doc-"));
 * await writeFile(join(dir, "a.csv"), "sku,qty\nA1,3\n");
 * const app = new App({ name: "example" });
 * // main.ts provides kafka.connectProducer(); this producer only records what it is given.
 * app.lifespan((ctx) => {
 *   ctx.provide(PRODUCER, { send: ({ messages }) => Promise.resolve(sent.push(...messages)) });
 * });
 * const processCsv = app.fn({}, async (file, topic: kafka.TopicTarget) => {
 *   for await (const row of file.csvRows()) {
 *     topic.declareTargetState({ key: row.get("sku")!, value: row.get("qty")! });
 *   }
 * });
 * app.main(async () => {
 *   const topic = await kafka.mountTopicTarget(PRODUCER, "stock");
 *   await app.mountEach(processCsv, localfs.walkDir(dir, { include: ["*.csv"] }), topic);
 * });
 * const result = await app.run({ state: `file:${join(dir, "state.db")}`, quiet: true });
 * if (result.exitCode !== 0 || sent.map((m) => `${m.key}=${m.value}`).join() !== "A1=3") {
 *   throw new Error();
 * }
 * await rm(dir, { recursive: true });
 * ```
 */
export function mountTopicTarget(
  producerKey: ContextKey<KafkaProducer>,
  topic: string,
  options: TopicTargetOptions = {},
): Promise<TopicTarget> {
  const scope = currentMountScope("kafka.mountTopicTarget()");
  const target = new TopicTarget(producerKey, scope.context.get(producerKey), topic, options);
  scope.mountTarget(target as Target<never>);
  return Promise.resolve(target);
}

/**
 * Splits a comma-separated broker list (`KAFKA_BOOTSTRAP_SERVERS`) into `host:port` addresses,
 * checking each: an address without a port, or with one that is not a number from 1 to 65535,
 * is a `TypeError` that says what to write instead (kafkajs would say only
 * `Port should be >= 0 and < 65536. Received NaN.` when it connects). `name` is the setting the
 * list came from, for that message.
 *
 * @example
 * ```ts
 * import { parseBrokers } from "./kafka_target.ts";
 * const brokers = parseBrokers("kafka-1:9092, kafka-2:9092");
 * if (brokers.join(" ") !== "kafka-1:9092 kafka-2:9092") throw new Error();
 * try {
 *   parseBrokers("127.0.0.1");
 *   throw new Error("not reached");
 * } catch (error) {
 *   if (!(error as Error).message.includes('write host:port')) throw error;
 * }
 * ```
 */
export function parseBrokers(list: string, name = "KAFKA_BOOTSTRAP_SERVERS"): string[] {
  const brokers = list.split(",").map((broker) => broker.trim()).filter((b) => b !== "");
  if (brokers.length === 0) {
    throw new TypeError(`${name} is empty: write host:port, e.g. ${name}=localhost:9092`);
  }
  for (const broker of brokers) {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+):(\d+)$/.exec(broker);
    const port = match === null ? NaN : Number(match[2]);
    if (match !== null && port >= 1 && port <= 65535) continue;
    const host = /^(\[[^\]]*\]|[^:]*)/.exec(broker)![1] || "localhost";
    const what = broker.includes(":") && !broker.startsWith("[") || /\]:/.test(broker)
      ? `"${broker}" does not end in a port from 1 to 65535`
      : `"${broker}" has no port`;
    throw new TypeError(
      `${name}=${list}: ${what}; write host:port, e.g. ${name}=${host}:9092 (comma-separated for ` +
        "several brokers)",
    );
  }
  return brokers;
}
