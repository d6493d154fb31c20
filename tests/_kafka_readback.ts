/**
 * Independent read-back of what landed in Kafka, for tests.
 *
 * Reads with `kcat` (librdkafka, Debian package `kcat`; `scripts/install-deps` installs it), not
 * with kafkajs, so a test does not check statecast's Kafka client against itself. `kcat -J`
 * prints one JSON object per message, with `"payload": null` for a null value (a tombstone) and
 * `"payload": ""` for an empty string, and the same for keys.
 *
 * Only `Deno.Command` is used (no npm imports); needs --allow-run and --allow-env.
 */

/** One message as read back, in (partition, offset) order. */
export interface ReadbackMessage {
  partition: number;
  offset: number;
  /** null when the message has no key. */
  key: string | null;
  /** null for a tombstone (null value); "" for an empty value. */
  value: string | null;
  /** Header name → value; a repeated name keeps its last value; a null header value reads "". */
  headers: Record<string, string>;
}

export interface ReadTopicOptions {
  /** Bootstrap servers; default env KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092. */
  brokers?: string;
  /** Give up (kill kcat, throw) after this long; default 30 000 ms. */
  timeoutMs?: number;
  /**
   * kcat's `fetch.wait.max.ms`: how long the broker holds a fetch that has nothing new. A small
   * value makes a read of a small topic take milliseconds instead of about a second (tests that
   * read after every run). Default: librdkafka's (500 ms).
   */
  fetchWaitMs?: number;
}

const DEFAULT_BROKERS = "127.0.0.1:9092";

function defaultBrokers(): string {
  const env = Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")?.trim();
  return env ? env : DEFAULT_BROKERS;
}

/** What one line of `kcat -J` output looks like (fields we use). */
interface KcatJsonMessage {
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  headers?: Array<string | null>;
}

/**
 * Read every message of `topic`, all partitions, from the beginning up to the end as of now,
 * sorted by (partition, offset). Throws if the topic does not exist, the broker cannot be
 * reached, or kcat fails or runs past `timeoutMs`; the error carries kcat's stderr.
 */
export async function readTopic(
  topic: string,
  opts: ReadTopicOptions = {},
): Promise<ReadbackMessage[]> {
  const brokers = opts.brokers ?? defaultBrokers();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const args = [
    "-b",
    brokers,
    "-C", // consumer mode, all partitions (no -p)
    "-t",
    topic,
    "-o",
    "beginning",
    "-e", // exit once every partition has reached its end
    "-q",
    "-J",
    "-m", // metadata timeout (s): fail rather than hang on an unreachable broker
    String(Math.max(1, Math.ceil(timeoutMs / 1000))),
    "-X",
    "allow.auto.create.topics=false",
    ...(opts.fetchWaitMs === undefined ? [] : ["-X", `fetch.wait.max.ms=${opts.fetchWaitMs}`]),
  ];
  const out = await runKcat(args, timeoutMs, `reading topic '${topic}' from ${brokers}`);

  const messages: ReadbackMessage[] = [];
  for (const line of out.split("\n")) {
    if (line.trim() === "") continue;
    let m: KcatJsonMessage;
    try {
      m = JSON.parse(line) as KcatJsonMessage;
    } catch (e) {
      throw new Error(`kcat -J printed a line that is not JSON: ${JSON.stringify(line)} (${e})`);
    }
    const headers: Record<string, string> = {};
    const h = m.headers ?? [];
    for (let i = 0; i + 1 < h.length; i += 2) {
      const name = h[i];
      if (name == null) continue;
      headers[name] = h[i + 1] ?? "";
    }
    messages.push({
      partition: m.partition,
      offset: m.offset,
      key: m.key,
      value: m.payload,
      headers,
    });
  }
  messages.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  return messages;
}

/**
 * Where librdkafka's murmur2 partitioner (the Java client's) puts each of `keys`: kcat produces
 * them to `reference`, a fresh 3-partition topic, and the topic is read back. Key -> partition.
 */
export async function murmur2Partitions(
  keys: ReadonlyArray<string>,
  reference: string,
  brokers: string = defaultBrokers(),
): Promise<Map<string | null, number>> {
  await createTopic(reference, 3, { brokers });
  const kcat = new Deno.Command("kcat", {
    args: ["-b", brokers, "-P", "-t", reference, "-K", "\t", "-X", "partitioner=murmur2_random"],
    stdin: "piped",
  }).spawn();
  const writer = kcat.stdin.getWriter();
  await writer.write(new TextEncoder().encode(keys.map((k) => `${k}\tx\n`).join("")));
  await writer.close();
  if (!(await kcat.status).success) throw new Error(`kcat -P to ${reference} failed`);
  const messages = await readTopic(reference, { brokers });
  if (messages.length !== keys.length) {
    throw new Error(`${reference}: ${messages.length} messages read back, ${keys.length} sent`);
  }
  return new Map(messages.map((m) => [m.key, m.partition]));
}

/**
 * Create `name` with `partitions` partitions (replication factor 1) through `scripts/kafka topic`;
 * a topic that already exists is fine. `compact` sets cleanup.policy=compact. The broker port is
 * taken from KAFKA_PORT, else from the first of `brokers` / KAFKA_BOOTSTRAP_SERVERS.
 */
export async function createTopic(
  name: string,
  partitions = 1,
  opts: { compact?: boolean; brokers?: string; configs?: Record<string, string> } = {},
): Promise<void> {
  const script = decodeURIComponent(new URL("../scripts/kafka", import.meta.url).pathname);
  const args = ["topic", name, "--partitions", String(partitions)];
  if (opts.compact) args.push("--compact");
  for (const [k, v] of Object.entries(opts.configs ?? {})) args.push("--config", `${k}=${v}`);
  const env: Record<string, string> = {};
  if (!Deno.env.get("KAFKA_PORT") || opts.brokers) {
    const first = (opts.brokers ?? defaultBrokers()).split(",")[0] ?? "";
    const port = /:(\d+)\s*$/.exec(first)?.[1];
    if (port) env.KAFKA_PORT = port;
  }
  let res: Deno.CommandOutput;
  try {
    res = await new Deno.Command("bash", {
      args: [script, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(`could not run ${script}: ${e}`);
  }
  if (!res.success) {
    const dec = new TextDecoder();
    throw new Error(
      `scripts/kafka ${args.join(" ")} failed (exit ${res.code}):\n` +
        dec.decode(res.stderr) + dec.decode(res.stdout),
    );
  }
}

async function runKcat(args: string[], timeoutMs: number, what: string): Promise<string> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  let res: Deno.CommandOutput;
  try {
    res = await new Deno.Command("kcat", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        "kcat is not installed (needed to read Kafka topics back in tests): " +
          "run scripts/install-deps, or apt-get install -y kcat",
      );
    }
    throw new Error(`${what}: could not run kcat: ${e}`);
  } finally {
    clearTimeout(timer);
  }
  const dec = new TextDecoder();
  const stderr = dec.decode(res.stderr).trim();
  if (ac.signal.aborted) {
    throw new Error(
      `${what}: kcat did not finish within ${timeoutMs} ms` +
        (stderr ? `; stderr:\n${stderr}` : ""),
    );
  }
  if (!res.success) {
    throw new Error(
      `${what}: kcat failed (exit ${res.code}${res.signal ? `, ${res.signal}` : ""}) ` +
        `running: kcat ${args.join(" ")}` + (stderr ? `\n${stderr}` : ""),
    );
  }
  return dec.decode(res.stdout);
}

/** SASL mechanisms of the SASL_SSL listener of the broker that `scripts/kafka up` started. */
export type SaslMechanismName = "plain" | "scram-sha-256" | "scram-sha-512";

/** One credentials file that `scripts/kafka up` writes, and what it says. */
export interface SaslCredentials {
  /** Absolute path of `.cache/kafka/sasl-MECHANISM-PORT.env`, a job's `--env-file` as is. */
  file: string;
  /** KAFKA_BOOTSTRAP_SERVERS: host:port of the SASL_SSL listener. */
  brokers: string;
  /** KAFKA_SASL_MECHANISM. */
  mechanism: SaslMechanismName;
  /** KAFKA_SASL_USERNAME. */
  username: string;
  /** KAFKA_SASL_PASSWORD. */
  password: string;
  /** KAFKA_SSL_CA: absolute path of the PEM of the CA that issued the listener's certificate. */
  caFile: string;
}

/**
 * The broker port whose `.cache/kafka/` files the tests use: KAFKA_PORT, else the first port of
 * `brokers` / KAFKA_BOOTSTRAP_SERVERS, else 9092.
 */
export function brokerPort(brokers?: string): string {
  const first = (brokers ?? defaultBrokers()).split(",")[0] ?? "";
  return (brokers ? undefined : Deno.env.get("KAFKA_PORT")?.trim()) ||
    /:(\d+)\s*$/.exec(first)?.[1] || "9092";
}

/**
 * The credentials file of `mechanism` that `scripts/kafka up` wrote for the local broker
 * (`.cache/kafka/sasl-MECHANISM-PORT.env`, port: {@linkcode brokerPort}), read with a parser of
 * its own (not statecast's), or undefined when the file is missing (a broker started by an older
 * scripts/kafka) or incomplete.
 */
export async function saslCredentials(
  mechanism: SaslMechanismName,
  brokers?: string,
): Promise<SaslCredentials | undefined> {
  const file = decodeURIComponent(
    new URL(`../.cache/kafka/sasl-${mechanism}-${brokerPort(brokers)}.env`, import.meta.url)
      .pathname,
  );
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const vars: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) vars[m[1]!] = m[2]!;
  }
  const credentials = {
    file,
    brokers: vars.KAFKA_BOOTSTRAP_SERVERS ?? "",
    mechanism: vars.KAFKA_SASL_MECHANISM as SaslMechanismName,
    username: vars.KAFKA_SASL_USERNAME ?? "",
    password: vars.KAFKA_SASL_PASSWORD ?? "",
    caFile: vars.KAFKA_SSL_CA ?? "",
  };
  if (Object.values(credentials).some((v) => !v)) return undefined;
  return credentials;
}
