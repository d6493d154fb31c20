/**
 * Connecting a producer: `@platformatic/kafka` (the default) or kafkajs, with SASL, TLS and
 * compression, from options or from the `KAFKA_*` environment variables a job reads. The target
 * needs only the producer's `send()` (see `kafka_target.ts`); this file is what `main.ts` would
 * otherwise spell out per client.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import type { KafkaProducer } from "./kafka_target.ts";
import { parseBrokers } from "./kafka_target.ts";
import { errorMessage } from "./errors.ts";

/**
 * The Kafka clients statecast ships adapters for (`KAFKA_CLIENT`).
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const client: kafka.KafkaClientName = "platformatic";
 * const options = kafka.connectOptionsFromEnv({ KAFKA_CLIENT: client });
 * if (options.client !== "platformatic") throw new Error();
 * ```
 */
export type KafkaClientName = "kafkajs" | "platformatic";
/**
 * Record batch compression (`KAFKA_COMPRESSION`). kafkajs has gzip only.
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const compression: kafka.CompressionName = "zstd";
 * const options = kafka.connectOptionsFromEnv({ KAFKA_COMPRESSION: compression });
 * if (options.compression !== "zstd") throw new Error();
 * ```
 */
export type CompressionName = "none" | "gzip" | "lz4" | "zstd";
/**
 * SASL mechanisms, as `KAFKA_SASL_MECHANISM` spells them (upper case is read too).
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const mechanism: kafka.SaslMechanism = "scram-sha-256";
 * const options = kafka.connectOptionsFromEnv({
 *   KAFKA_SASL_MECHANISM: "SCRAM-SHA-256",
 *   KAFKA_SASL_USERNAME: "app",
 *   KAFKA_SASL_PASSWORD: "secret",
 * });
 * if (options.sasl?.mechanism !== mechanism) throw new Error();
 * ```
 */
export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";

/**
 * Options of {@linkcode connectProducer}: what {@linkcode connectOptionsFromEnv} reads from the
 * environment, or written by hand.
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const options: kafka.ConnectOptions = {
 *   brokers: kafka.parseBrokers("kafka-1:9092,kafka-2:9092"),
 *   client: "platformatic",
 *   compression: "lz4",
 *   sasl: { mechanism: "scram-sha-512", username: "app", password: "secret" },
 *   tls: true,
 * };
 * if (options.brokers.length !== 2) throw new Error();
 * ```
 */
export interface ConnectOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  /** Which client produces. @default "platformatic" */
  client?: KafkaClientName;
  /** Record batch compression. @default "none" */
  compression?: CompressionName;
  /** SASL credentials; TLS is on with them. */
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
  /** TLS: `true` trusts the system's CAs, `{ ca }` (PEM text) a private CA as well. */
  tls?: boolean | { ca: string };
  /**
   * Where the platformatic client runs (`KAFKA_PRODUCER_THREAD`): on the main thread, or on a
   * worker thread (`lib/kafka_worker.ts`), off the thread that parses and hashes rows. Measured,
   * first publish of 1M rows in 100 files under Deno: the worker took 11.4 s against 17.2 s at
   * the default `STATECAST_HEAP_MB` (its garbage is not in the heap collected between chunks),
   * but 9.6 s against 6.7 s without those collections, and a second isolate's memory (peak RSS
   * 294 MB against 213 MB); under Bun it was slower (31.8 s against 17.4 s). @default "main"
   */
  producerThread?: "main" | "worker";
  /**
   * Who writes the platformatic client's uncompressed record batches (`KAFKA_PRODUCE_PATH`):
   * statecast itself (`direct`: a third of the CPU, a fraction of the garbage) or the client's own
   * `send()` (`client`). Compressed batches always take the client's. @default "direct"
   */
  producePath?: "direct" | "client";
}

/**
 * A connected producer: `send()` for the target, `close()` for the app's lifespan. Anything with
 * these two methods fits, e.g. a stand-in that records what it was given.
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const sent: kafka.ProducerMessage[] = [];
 * let closed = false;
 * const producer: kafka.ConnectedProducer = {
 *   send: ({ messages }) => Promise.resolve(sent.push(...messages)),
 *   close: () => Promise.resolve(void (closed = true)),
 * };
 * await producer.send({ topic: "rows", messages: [{ key: "a", value: "1" }] });
 * await producer.close();
 * if (sent.length !== 1 || !closed) throw new Error();
 * ```
 */
export interface ConnectedProducer extends KafkaProducer {
  /** Disconnects; resolves once the client let go of its sockets. */
  close(): Promise<void>;
}

/**
 * The variables {@linkcode connectOptionsFromEnv} reads, with what each means, for `--help`
 * (`new App({ environment: { ...kafka.CONNECT_ENVIRONMENT } })`).
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const names = Object.keys(kafka.CONNECT_ENVIRONMENT);
 * if (!names.includes("KAFKA_BOOTSTRAP_SERVERS") || !names.includes("KAFKA_SSL_CA")) {
 *   throw new Error();
 * }
 * ```
 */
export const CONNECT_ENVIRONMENT: Readonly<Record<string, string>> = {
  KAFKA_BOOTSTRAP_SERVERS: "comma-separated brokers, each host:port (default localhost:9092)",
  KAFKA_SASL_MECHANISM: "plain, scram-sha-256 or scram-sha-512 (default plain when a user is set)",
  KAFKA_SASL_USERNAME: "with KAFKA_SASL_PASSWORD: SASL over TLS (unset: plaintext, no TLS)",
  KAFKA_SASL_PASSWORD: "the SASL password (never printed)",
  KAFKA_SSL:
    "true: TLS without SASL (implied by a SASL user or KAFKA_SSL_CA); false: SASL without TLS " +
    "(a SASL_PLAINTEXT listener)",
  KAFKA_SSL_CA: "the CA of the brokers' certificates (a private CA): a PEM file, or its text",
  KAFKA_CLIENT: "platformatic (@platformatic/kafka, default) or kafkajs",
  KAFKA_COMPRESSION: "none (default), gzip, lz4 or zstd (lz4 and zstd: platformatic only)",
  KAFKA_PRODUCER_THREAD: "platformatic's thread: main (default) or worker (Deno: faster, +80 MB)",
  KAFKA_PRODUCE_PATH:
    "platformatic's record batches: direct (default: written by statecast) or client (its own)",
};

const CLIENTS: readonly KafkaClientName[] = ["kafkajs", "platformatic"];
const COMPRESSIONS: readonly CompressionName[] = ["none", "gzip", "lz4", "zstd"];
const MECHANISMS: readonly SaslMechanism[] = ["plain", "scram-sha-256", "scram-sha-512"];

/**
 * {@linkcode ConnectOptions} from the `KAFKA_*` variables ({@linkcode CONNECT_ENVIRONMENT}),
 * each checked, with an error that says what to write instead.
 *
 * @example
 * ```ts
 * import { kafka } from "./mod.ts";
 * const options = kafka.connectOptionsFromEnv({
 *   KAFKA_BOOTSTRAP_SERVERS: "kafka-1:9092,kafka-2:9092",
 *   KAFKA_SASL_MECHANISM: "scram-sha-512",
 *   KAFKA_SASL_USERNAME: "app",
 *   KAFKA_SASL_PASSWORD: "secret",
 * });
 * if (options.sasl?.mechanism !== "scram-sha-512" || options.tls !== true) throw new Error();
 * ```
 */
export function connectOptionsFromEnv(
  env: Record<string, string | undefined> = process.env,
): ConnectOptions {
  const get = (name: string) => env[name] === "" ? undefined : env[name];
  const client = (get("KAFKA_CLIENT") ?? "platformatic") as KafkaClientName;
  oneOf("KAFKA_CLIENT", client, CLIENTS);
  const compression = (get("KAFKA_COMPRESSION") ?? "none") as CompressionName;
  oneOf("KAFKA_COMPRESSION", compression, COMPRESSIONS);
  const username = get("KAFKA_SASL_USERNAME"), password = get("KAFKA_SASL_PASSWORD");
  if (!username !== !password) {
    throw new TypeError("Set both KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or neither");
  }
  const mechanism = (get("KAFKA_SASL_MECHANISM")?.toLowerCase() ?? "plain") as SaslMechanism;
  oneOf("KAFKA_SASL_MECHANISM", mechanism, MECHANISMS);
  const caFile = get("KAFKA_SSL_CA");
  const ssl = get("KAFKA_SSL");
  if (ssl !== undefined) oneOf("KAFKA_SSL", ssl, ["true", "false"]);
  if (ssl === "false" && caFile !== undefined) {
    throw new TypeError(
      "KAFKA_SSL=false turns TLS off, but KAFKA_SSL_CA is set: unset one of them",
    );
  }
  const thread = get("KAFKA_PRODUCER_THREAD");
  if (thread !== undefined) oneOf("KAFKA_PRODUCER_THREAD", thread, ["main", "worker"] as const);
  const path = get("KAFKA_PRODUCE_PATH");
  if (path !== undefined) oneOf("KAFKA_PRODUCE_PATH", path, ["direct", "client"] as const);
  // KAFKA_SSL=false: SASL in plaintext (a SASL_PLAINTEXT listener); a SASL user implies TLS.
  const tls = ssl === "false"
    ? false
    : caFile !== undefined
    ? { ca: readCa(caFile) }
    : username !== undefined || ssl === "true";
  return {
    brokers: parseBrokers(get("KAFKA_BOOTSTRAP_SERVERS") ?? "localhost:9092"),
    client,
    compression,
    ...(username && password ? { sasl: { mechanism, username, password } } : {}),
    ...(tls === false ? {} : { tls }),
    ...(thread === undefined ? {} : { producerThread: thread as "main" | "worker" }),
    ...(path === undefined ? {} : { producePath: path as "direct" | "client" }),
  };
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): void {
  if (allowed.includes(value as T)) return;
  const words = `${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}`;
  throw new TypeError(`${name} must be ${words}, got "${value}"`);
}

const BEGIN_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/** The CA's PEM: `value` itself when it is PEM text (a quoted value of a `.env`), else a file. */
function readCa(value: string): string {
  if (value.includes(BEGIN_CERTIFICATE)) {
    if (value.includes("-----END CERTIFICATE-----")) return value;
    throw new TypeError(
      "KAFKA_SSL_CA holds a PEM certificate without its END CERTIFICATE line: in a .env file, " +
        'put the whole PEM in double quotes (KAFKA_SSL_CA="-----BEGIN ...), or give a file path',
    );
  }
  const path = value;
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (error) {
    throw new TypeError(`KAFKA_SSL_CA=${path}: cannot read it (${errorMessage(error)})`);
  }
  if (!pem.includes(BEGIN_CERTIFICATE)) {
    throw new TypeError(`KAFKA_SSL_CA=${path}: not a PEM certificate (no BEGIN CERTIFICATE line)`);
  }
  return pem;
}

/**
 * Connects an idempotent producer (acks=all, the Java client's partitioner) with the chosen
 * client; a failure names the brokers and the user, never the password.
 *
 * @example
 * ```ts ignore
 * const producer = await kafka.connectProducer(kafka.connectOptionsFromEnv());
 * ctx.provide(PRODUCER, producer);
 * ```
 */
export async function connectProducer(options: ConnectOptions): Promise<ConnectedProducer> {
  const connect = options.client === "kafkajs" ? kafkajs : platformatic;
  try {
    return await connect(options);
  } catch (error) {
    if (error instanceof TypeError) throw error;
    const who = options.sasl ? ` as "${options.sasl.username}"` : ""; // never the password
    const via = options.sasl ? ` (SASL ${options.sasl.mechanism.toUpperCase()})` : "";
    throw new Error(
      `Cannot connect to Kafka at ${options.brokers.join(",")}${who}${via}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

/** kafkajs 2.2.4: no dependencies, loads fast, gzip only. */
async function kafkajs(options: ConnectOptions): Promise<ConnectedProducer> {
  const compression = options.compression ?? "none";
  if (compression !== "none" && compression !== "gzip") {
    throw new TypeError(`kafkajs has no ${compression}: use KAFKA_CLIENT=platformatic`);
  }
  const { CompressionTypes, Kafka, logLevel } = await import("kafkajs");
  const tls = options.tls;
  const client = new Kafka({
    clientId: "statecast",
    brokers: options.brokers,
    logLevel: logLevel.NOTHING, // statecast reports failures itself, naming topic and address
    connectionTimeout: 5000,
    retry: { retries: 3 },
    ...(tls ? { ssl: tls === true ? true : { ca: [tls.ca] } } : {}),
    // kafkajs' mechanism names are the same words, lower case
    ...(options.sasl ? { sasl: { ...options.sasl } as never } : {}),
  });
  const producer = client.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const codec = compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;
  return {
    send: (record) => producer.send({ ...record, compression: codec }),
    close: () => producer.disconnect(),
  };
}

/**
 * @platformatic/kafka: maintained, lz4/zstd, two sends in flight (lib/kafka_platformatic.ts), on a
 * worker thread if asked (lib/kafka_worker.ts).
 */
async function platformatic(options: ConnectOptions): Promise<ConnectedProducer> {
  const onWorker = options.producerThread === "worker";
  const connect = onWorker
    ? (await import("./kafka_worker.ts")).WorkerProducer.connect
    : (await import("./kafka_platformatic.ts")).connectPlatformaticProducer;
  const sasl = options.sasl;
  return await connect({
    brokers: options.brokers,
    compression: options.compression ?? "none",
    direct: options.producePath !== "client",
    ...(options.tls ? { tls: options.tls } : {}),
    ...(sasl
      ? {
        sasl: {
          mechanism: sasl.mechanism.toUpperCase() as "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512",
          username: sasl.username,
          password: sasl.password,
        },
      }
      : {}),
  });
}
