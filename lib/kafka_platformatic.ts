/**
 * `@platformatic/kafka` behind statecast's {@linkcode KafkaProducer} seam: a maintained Kafka
 * client (idempotent producer, lz4/zstd/snappy/gzip, SASL PLAIN/SCRAM) as an alternative to
 * kafkajs. Import it only when used (`await import(...)`): it is not part of `lib/mod.ts`, so a
 * job on kafkajs never loads it.
 *
 * What this adapter settles, so that a job gets the same messages on the same partitions:
 * - keys go where the Java client (and librdkafka's murmur2) put them: the client's own default
 *   partitioner does not, its `compatibilityPartitioner` does, and so does our `murmur2Partition`
 *   (lib/_kafka_murmur2.ts), which sets each message's partition without BigInt garbage;
 * - a key or value may be a string or bytes, and a null value is a true tombstone;
 * - a topic that does not exist is an `UNKNOWN_TOPIC_OR_PARTITION` error at the first send (the
 *   client itself would ask for its metadata forever), and every send is bounded in time;
 * - errors carry the Kafka error name as `type` and `retriable`, as kafkajs' do, so the target
 *   reports them the same way.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import {
  compatibilityPartitioner,
  type Connection,
  crc32c,
  kGetApi,
  kGetConnection,
  type MessageToProduce,
  Producer,
  produceV11,
  type SASLOptions,
  Writer,
} from "@platformatic/kafka";
import {
  ASCII_COPY_MAX,
  type BatchRecord,
  copyAscii,
  type PartitionRecords,
  RecordBatchWriter,
} from "./_kafka_record_batch.ts";
import type { KafkaProducer, ProducerMessage } from "./kafka_target.ts";
import { murmur2Partition } from "./_kafka_murmur2.ts";

/** Compression codecs of record batches. */
export type KafkaCompression = "none" | "gzip" | "snappy" | "lz4" | "zstd";

/** Options of {@linkcode connectPlatformaticProducer}. */
export interface PlatformaticProducerOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  /** The client id the broker logs. @default "statecast" */
  clientId?: string;
  /** SASL credentials; `tls` should be on with them. */
  sasl?: {
    mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512";
    username: string;
    password: string;
  };
  /**
   * TLS to the brokers: `true` trusts the system's CAs, `{ ca }` (PEM text) a private CA too.
   * @default false
   */
  tls?: boolean | { ca?: string };
  /** Compression of record batches. @default "none" */
  compression?: KafkaCompression;
  /** How long connecting may take before it fails. @default 5000 */
  connectTimeoutMs?: number;
  /** How long one `send()` may take, retries included, before it fails. @default 60000 */
  sendTimeoutMs?: number;
  /**
   * Uncompressed batches are written by statecast itself and sent on the client's connections
   * (`false`: through the client's own `send()`, as compressed batches always are). The client's
   * encoding costs about three times the CPU and most of a first publish's garbage.
   * @default true
   */
  direct?: boolean;
}

type Bytes = Buffer | undefined;

/** Header names as bytes, made once per name (a job uses a handful). */
const headerKeys = new Map<string, Buffer>();
function headerKeyBytes(name: string | undefined): Bytes {
  if (name === undefined) return undefined;
  let bytes = headerKeys.get(name);
  if (bytes === undefined) {
    bytes = Buffer.from(name, "utf8");
    if (headerKeys.size < 1000) headerKeys.set(name, bytes);
  }
  return bytes;
}

/** Strings as UTF-8, bytes as they are, null as no value (a tombstone). */
function serialize(data: Buffer | string | null | undefined): Bytes {
  if (data === null || data === undefined) return undefined;
  return typeof data === "string" ? Buffer.from(data, "utf8") : data;
}

/** An idempotent `@platformatic/kafka` producer, acks=all, as a {@linkcode KafkaProducer}. */
export class PlatformaticProducer implements KafkaProducer, AsyncDisposable {
  readonly #producer: Producer<Bytes, Bytes, string, Bytes>;
  readonly #options: PlatformaticProducerOptions;
  /** Per header name, the last value sent and its bytes (see `#headerValue`). */
  readonly #lastHeader = new Map<string, { text: string; bytes: Buffer }>();
  /** Topics whose existence the broker confirmed. */
  readonly #known = new Set<string>();
  /** The producer id being asked for, shared by the sends that wait for it. */
  #init: Promise<unknown> | undefined;
  /**
   * Two sends at once keep their order: each batch is numbered when it is queued, in the order of
   * the sends, and one connection per broker writes them in that order. Measured with
   * bench/producer.ts (200,000 messages, batches of 2,000): 380-440k msgs/s against 290-350k with
   * one at a time; more did not help. One exception, which the Kafka target never meets (a key
   * comes once in a chunk's changes, and chunks are applied one after the other): a send retried
   * after a failure is written again whole, after the sends that went on meanwhile, so a key in
   * both would end with the older value.
   */
  readonly inFlight = 2;
  /** Whether sends take {@linkcode PlatformaticProducer.#produce} (uncompressed batches). */
  readonly #direct: boolean;
  /** Per `topic:partition`, the sequence number of the next record under this producer id. */
  readonly #sequences = new Map<string, number>();
  readonly #batches = new RecordBatchWriter();
  /** The sends being prepared, in call order: sequence numbers go out in the order given. */
  #order: Promise<unknown> = Promise.resolve();
  /** UTF-8 bytes of the key being placed (murmur2), reused. */
  #keyBytes = Buffer.allocUnsafe(1024);
  /**
   * The last headers object of the send being queued and its pairs as bytes: a run of messages
   * shares one. Forgotten at each send (a caller may reuse the object with new contents).
   */
  #lastHeaders: { of: ProducerMessage["headers"]; pairs: Array<[Buffer, Buffer]> } | undefined;

  constructor(options: PlatformaticProducerOptions) {
    this.#options = options;
    const sasl: SASLOptions | undefined = options.sasl && { ...options.sasl };
    this.#producer = new Producer<Bytes, Bytes, string, Bytes>({
      clientId: options.clientId ?? "statecast",
      bootstrapBrokers: options.brokers,
      idempotent: true,
      acks: -1,
      partitioner: compatibilityPartitioner,
      autocreateTopics: false,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      retries: 5,
      serializers: {
        key: serialize,
        value: serialize,
        headerKey: (s) => headerKeyBytes(s),
        headerValue: serialize,
      },
      ...(options.compression && options.compression !== "none"
        ? { compression: options.compression }
        : {}),
      ...(options.tls ? { tls: options.tls === true ? {} : { ...options.tls } } : {}),
      ...(sasl ? { sasl } : {}),
    });
    this.#direct = (options.compression ?? "none") === "none" && options.direct !== false;
  }

  /** Connects to the brokers, so that a wrong address or password fails now, not at a send. */
  async connect(): Promise<void> {
    const ms = this.#options.connectTimeoutMs ?? 5000;
    await within(ms * 3, "connecting", this.#producer.connectToBrokers(null)).catch((error) => {
      throw kafkaError(error, this.#options.sasl?.mechanism);
    });
  }

  /**
   * Sends messages to `topic` and resolves once the broker acknowledged every one: through
   * {@linkcode PlatformaticProducer.#produce} unless the batches are compressed (then through
   * the client's own `send()`).
   */
  async send(record: { topic: string; messages: ProducerMessage[] }): Promise<unknown> {
    const { topic } = record;
    if (!this.#known.has(topic)) await this.#checkTopic(topic);
    if (this.#direct && await this.#produceVersion() !== undefined) {
      // Once the send has timed out, nothing of it starts again: a late attempt could land after
      // a later round's messages for the same keys.
      const send = { gaveUp: false };
      const sending = this.#produceRetrying(topic, record.messages, send);
      return await within(this.#options.sendTimeoutMs ?? 60_000, `sending to "${topic}"`, sending)
        .catch((error) => {
          send.gaveUp = true;
          throw kafkaError(error);
        });
    }
    return await this.#clientSend(record);
  }

  async #clientSend(record: { topic: string; messages: ProducerMessage[] }): Promise<unknown> {
    const { topic } = record;
    // One producer id for sends that start together (each would ask for its own otherwise).
    if (this.#producer.producerId === undefined) {
      this.#init ??= this.#producer.initIdempotentProducer({}).finally(() =>
        this.#init = undefined
      );
      await this.#init.catch((error) => {
        throw kafkaError(error);
      });
    }
    const messages = this.#encode(topic, record.messages);
    const sending = this.#producer.send({ messages });
    return await within(this.#options.sendTimeoutMs ?? 60_000, `sending to "${topic}"`, sending)
      .catch((error) => {
        throw kafkaError(error);
      });
  }

  /**
   * The client's messages, with headers as a Map made once per headers object: the target hands
   * the same one to the messages that share it, and the client would copy an object into a new
   * Map per message. (Keys and values written into one Buffer per send instead of a Buffer each
   * measured no faster under Deno: bench/kafka_send.ts, --cpu-prof.)
   */
  #encode(
    topic: string,
    messages: ProducerMessage[],
  ): Array<MessageToProduce<Bytes, Bytes, string, Bytes>> {
    const out = new Array<MessageToProduce<Bytes, Bytes, string, Bytes>>(messages.length);
    let lastHeaders: ProducerMessage["headers"], lastMap: Map<string, Bytes> | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const key = serialize(m.key);
      const message: MessageToProduce<Bytes, Bytes, string, Bytes> = {
        topic,
        key,
        value: serialize(m.value),
      };
      // The client takes it modulo the partition count; its partitioner would do the same in BigInt.
      if (key !== undefined) message.partition = murmur2Partition(key);
      if (m.headers !== undefined) {
        if (m.headers !== lastHeaders) {
          lastMap = new Map();
          for (const name in m.headers) {
            lastMap.set(name, this.#headerValue(name, m.headers[name]!));
          }
          lastHeaders = m.headers;
        }
        message.headers = lastMap!;
      }
      out[i] = message;
    }
    return out;
  }

  /**
   * A header value as bytes, the same Buffer again while a header keeps its value: a job sends
   * one file's rows with one `statecast-source`, and a Buffer per message is garbage at once.
   * (The client only reads them.)
   */
  #headerValue(name: string, value: Buffer | string): Bytes {
    if (typeof value !== "string") return value;
    const last = this.#lastHeader.get(name);
    if (last !== undefined && last.text === value) return last.bytes;
    const bytes = Buffer.from(value, "utf8");
    this.#lastHeader.set(name, { text: value, bytes });
    return bytes;
  }

  /**
   * {@linkcode PlatformaticProducer.#produce}, again after a retriable failure (a leader moved, a
   * connection dropped) with a new producer id: batches the broker took before the failure are
   * written again, which at-least-once allows (the same keys, the same values).
   */
  async #produceRetrying(topic: string, messages: ProducerMessage[], send: Send): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#produce(topic, messages, send);
      } catch (error) {
        // The broker's sequence numbers may now be ahead of ours or behind: the next batch goes
        // under a new producer id (a batch numbered on under this one could be taken for a
        // duplicate and dropped).
        this.#renew = true;
        if (attempt > SEND_RETRIES || !retriable(error) || unsent.has(error as object)) throw error;
        await this.#backOff(attempt);
        if (send.gaveUp) throw error;
      }
    }
  }

  /** Whether the producer id must be renewed before the next batch (a send failed). */
  #renew = false;
  /** Whether `STATECAST_TEST_KAFKA_FAULT` failed a send of this producer already. */
  #faulted = false;

  /**
   * Sends `messages` as one uncompressed record batch per partition and one Produce request per
   * leader, written by `_kafka_record_batch.ts` into one buffer each (the client's own encoding makes
   * about 4 KB of garbage per message). Sequence numbers are taken and the requests queued in the
   * order of the calls; the acknowledgements are awaited together.
   */
  async #produce(topic: string, messages: ProducerMessage[], send: Send): Promise<void> {
    const queued = this.#order.then(() => this.#queueRetrying(topic, messages, send));
    this.#order = queued.catch(() => {});
    const responses = await queued;
    const fault = process.env.STATECAST_TEST_KAFKA_FAULT;
    if (fault === "after-queue-always" || (fault === "after-queue" && !this.#faulted)) {
      this.#faulted = true; // a test: the requests are on their way, the send fails as if cut off
      throw Object.assign(new Error("STATECAST_TEST_KAFKA_FAULT=after-queue"), { canRetry: true });
    }
    await Promise.all(responses);
  }

  /**
   * {@linkcode PlatformaticProducer.#queue}, again after a retriable failure before any request
   * went out (metadata, a connection, a leader being elected), in this send's turn: a later send
   * that went first would have its messages overwritten by this one's older ones.
   */
  async #queueRetrying(
    topic: string,
    messages: ProducerMessage[],
    send: Send,
  ): Promise<Promise<unknown>[]> {
    for (let attempt = 1;; attempt++) {
      if (send.gaveUp) { // timed out while waiting its turn or its pause: nothing goes out
        const error = new Error(`sending to "${topic}" was given up`);
        unsent.add(error);
        throw error;
      }
      try {
        return await this.#queue(topic, messages);
      } catch (error) {
        this.#renew = true; // the producer id may have been renewed halfway
        if (attempt > SEND_RETRIES || !retriable(error)) {
          if (typeof error === "object" && error !== null) unsent.add(error);
          throw error;
        }
        await this.#backOff(attempt);
      }
    }
  }

  /** The pause before retry `attempt` (200 ms, doubling), then the topics' metadata asked anew. */
  async #backOff(attempt: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    this.#producer.clearMetadata();
  }

  /**
   * Encodes and queues the requests of one send; returns their acknowledgements. Everything from
   * the producer id check to the last request queued runs without a pause, so a failure reported
   * meanwhile cannot leave a batch numbered on under an id that must be renewed.
   */
  async #queue(topic: string, messages: ProducerMessage[]): Promise<Promise<unknown>[]> {
    const version = (await this.#produceVersion())!;
    const metadata = await this.#producer.metadata({ topics: [topic], autocreateTopics: false });
    const info = metadata.topics.get(topic)!;
    const partitionOf = new Int32Array(messages.length);
    const used = new Set<number>();
    for (let i = 0; i < messages.length; i++) {
      used.add(partitionOf[i] = this.#partition(messages[i]!.key) % info.partitionsCount);
    }
    const connections = new Map<number, Connection>();
    for (const p of used) {
      const leader = info.partitions[p]!.leader;
      const broker = metadata.brokers.get(leader);
      if (broker === undefined) { // a leader being elected: ask again after a pause
        throw Object.assign(new Error(`"${topic}" partition ${p} has no leader`), {
          canRetry: true,
        });
      }
      if (!connections.has(leader)) connections.set(leader, await this.#connection(broker));
    }
    while (this.#renew || this.#producer.producerId === undefined) {
      this.#renew = false;
      await this.#producer.initIdempotentProducer({});
      this.#sequences.clear();
    }
    // From here on nothing waits: the records are made and written at once, so they die young
    // (made before the waits above, they outlived a collection or two and were promoted).
    const byPartition = new Map<number, BatchRecord[]>();
    this.#lastHeaders = undefined;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const p = partitionOf[i]!;
      const records = byPartition.get(p) ?? byPartition.set(p, []).get(p)!;
      records.push({ key: m.key, value: m.value, headers: this.#headerPairs(m.headers) });
    }
    const header = {
      producerId: this.#producer.producerId!,
      producerEpoch: this.#producer.producerEpoch!,
      timestamp: Date.now(),
    };
    const byLeader = new Map<number, PartitionRecords[]>();
    for (const [p, records] of byPartition) {
      const id = `${topic}:${p}`;
      const baseSequence = this.#sequences.get(id) ?? 0;
      this.#sequences.set(id, (baseSequence + records.length) % 2 ** 31);
      const leader = info.partitions[p]!.leader;
      const list = byLeader.get(leader) ?? byLeader.set(leader, []).get(leader)!;
      list.push([p, records, baseSequence]);
    }
    const acks: Promise<unknown>[] = [];
    const name = Buffer.from(topic, "utf8");
    const timeout = this.#options.sendTimeoutMs ?? 60_000;
    for (const [leader, partitions] of byLeader) {
      const connection = connections.get(leader)!;
      const body = this.#batches.request(name, partitions, header, crc32c, timeout);
      const ack = new Promise((resolve, reject) => {
        connection.send(
          produceV11.api.key,
          version,
          () => Writer.create().append(body),
          produceV11.parseResponse,
          true,
          true,
          (error: unknown, response: unknown) => error ? reject(error) : resolve(response),
        );
      });
      ack.catch(() => {}); // awaited by #produce; no unhandled rejection meanwhile
      acks.push(ack);
    }
    return acks;
  }

  /**
   * The Produce version the client chose for the brokers, if it is one whose request
   * `RecordBatchWriter.request` writes (9 to 11, the flexible ones; Kafka 2.4 and later): else sends take
   * the client's own path.
   */
  async #produceVersion(): Promise<number | undefined> {
    this.#version ??= new Promise<number | undefined>((resolve) => {
      // deno-lint-ignore no-explicit-any
      (this.#producer as any)[kGetApi]("Produce", (error: unknown, api?: { version: number }) => {
        const v = error ? undefined : api?.version;
        resolve(v !== undefined && v >= 9 && v <= 11 ? v : undefined);
      });
    });
    return await this.#version;
  }

  #version: Promise<number | undefined> | undefined;

  /** The partition before the modulo: Kafka's murmur2 of the key's bytes. */
  #partition(key: ProducerMessage["key"]): number {
    if (typeof key !== "string") return key === null ? 0 : murmur2Partition(key);
    if (this.#keyBytes.length < key.length * 3) {
      this.#keyBytes = Buffer.allocUnsafe(key.length * 3);
    }
    // As the batch writer: ASCII copied (Buffer.write made a view and a result object per key).
    const ascii = key.length <= ASCII_COPY_MAX && copyAscii(key, this.#keyBytes, 0);
    return murmur2Partition(
      this.#keyBytes,
      ascii ? key.length : this.#keyBytes.write(key, 0, "utf8"),
    );
  }

  /** A message's headers as byte pairs, the same array again for the same headers object. */
  #headerPairs(headers: ProducerMessage["headers"]): Array<[Buffer, Buffer]> | undefined {
    if (headers === undefined) return undefined;
    if (this.#lastHeaders?.of === headers) return this.#lastHeaders.pairs;
    const pairs: Array<[Buffer, Buffer]> = [];
    for (const name in headers) {
      pairs.push([headerKeyBytes(name)!, this.#headerValue(name, headers[name]!)!]);
    }
    this.#lastHeaders = { of: headers, pairs };
    return pairs;
  }

  /** The client's connection to `broker` (authenticated, shared with its other requests). */
  #connection(broker: { host: string; port: number }): Promise<Connection> {
    return new Promise((resolve, reject) => {
      // deno-lint-ignore no-explicit-any
      (this.#producer as any)[kGetConnection](
        broker,
        (error: unknown, c: Connection) => error ? reject(error) : resolve(c),
      );
    });
  }

  /** The client asks for a missing topic's metadata forever: ask once, without retries. */
  async #checkTopic(topic: string): Promise<void> {
    try {
      await this.#producer.metadata({ topics: [topic], autocreateTopics: false, retries: 0 });
    } catch (error) {
      if (/Unknown topic/.test(String((error as Error)?.message))) {
        throw Object.assign(new Error(`Unknown topic "${topic}"`, { cause: error }), {
          type: "UNKNOWN_TOPIC_OR_PARTITION",
          retriable: false,
        });
      }
      throw kafkaError(error);
    }
    this.#known.add(topic);
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    await this.#producer.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Creates and connects a {@linkcode PlatformaticProducer}.
 *
 * @example
 * ```ts ignore
 * const producer = await connectPlatformaticProducer({ brokers: ["127.0.0.1:9092"] });
 * ctx.provide(PRODUCER, producer);
 * ```
 */
export async function connectPlatformaticProducer(
  options: PlatformaticProducerOptions,
): Promise<PlatformaticProducer> {
  const producer = new PlatformaticProducer(options);
  try {
    await producer.connect();
  } catch (error) {
    await producer.close().catch(() => {});
    throw error;
  }
  return producer;
}

/** One `send()` of the direct path: set once it has timed out, so that it starts nothing more. */
interface Send {
  gaveUp: boolean;
}

/** How often a send that failed for a reason the client calls retriable is tried again. */
const SEND_RETRIES = 3;

/** Failures of `#queueRetrying`, retried there already (no request of theirs went out). */
const unsent = new WeakSet<object>();

/** Whether the client says `error` (or one in its tree) can be retried. */
function retriable(error: unknown): boolean {
  for (const e of errorTree(error)) {
    if (e.canRetry === true || e.code === "PLT_KFK_NETWORK") return true;
  }
  return false;
}

/** Rejects with a timeout error when `promise` takes longer than `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`${what} took over ${ms} ms`), { retriable: true })),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface ClientError {
  message?: string;
  code?: string;
  apiId?: string;
  canRetry?: boolean;
  serverErrorMessage?: string | null;
  cause?: unknown;
  errors?: unknown[];
}

/** Every error in the client's error tree (`cause` and `errors`), depth first. */
function* errorTree(error: unknown, depth = 0): Generator<ClientError> {
  if (typeof error !== "object" || error === null || depth > 8) return;
  const e = error as ClientError;
  yield e;
  yield* errorTree(e.cause, depth + 1);
  for (const inner of Array.isArray(e.errors) ? e.errors : []) yield* errorTree(inner, depth + 1);
}

/**
 * The client's error as statecast reports Kafka errors: `type` is the first Kafka error name in
 * the tree (`MESSAGE_TOO_LARGE`), `retriable` whether the client says it can be retried, and a
 * failed SASL login says so, with the broker's words (never the password).
 */
function kafkaError(error: unknown, mechanism?: string): Error {
  const all = [...errorTree(error)];
  const api = all.find((e) => typeof e.apiId === "string");
  const auth = all.find((e) => e.code === "PLT_KFK_AUTHENTICATION");
  if (auth !== undefined) {
    const said = all.find((e) => typeof e.serverErrorMessage === "string")?.serverErrorMessage;
    return Object.assign(
      new Error(
        `SASL ${mechanism ?? ""} authentication failed: ${said ?? auth.message}`.replace(
          "SASL  ",
          "SASL ",
        ),
        { cause: error },
      ),
      { retriable: false },
    );
  }
  // Each without its closing period: joined, "failed 6 times.: Cannot connect to any broker.:"
  const messages = all.map((e) => e.message)
    .filter((m): m is string => typeof m === "string" && m !== "")
    .map((m) => m.replace(/\.$/, ""));
  const message = [...new Set(messages)].join(": ") || String(error);
  return Object.assign(new Error(message, { cause: error }), {
    ...(api ? { type: api.apiId } : {}),
    retriable: api?.canRetry ?? (error as ClientError)?.canRetry ?? false,
  });
}
