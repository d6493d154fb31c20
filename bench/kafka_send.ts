/**
 * The Kafka send path alone, as a first publish drives it: N upserts (string keys, ~100-byte
 * JSON values, a `statecast-source` meta header per file of 10,000 rows, as main.ts declares
 * them) through `TopicTarget.apply()`, in chunks of 10,000 changes as the engine hands them
 * over, to a fresh 3-partition topic of the real broker; then the topic is counted with kcat.
 *
 *   deno run -A bench/kafka_send.ts [--client kafkajs|platformatic] [--messages N]
 *     [--chunk 10000] [--batch-size N] [--in-flight N] [--compression none|lz4|...]
 *     [--thread main|worker]   (platformatic: where the client runs; default: connectProducer's)
 *     [--path direct|client]   (platformatic: who writes the record batches; default direct)
 *   node_modules/.bin/bun bench/kafka_send.ts ...
 *
 * Prints wall time, the process's CPU time (user + system, all threads), messages per second
 * and peak RSS. Making each chunk's changes is timed apart and taken out of the "send" figures.
 * The machine is shared: compare CPU seconds as well as wall time, and repeat.
 *
 * @module
 */
import process from "node:process";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ContextKey } from "../lib/context.ts";
import { initFingerprints } from "../lib/fingerprint.ts";
import { connectProducer, type KafkaClientName } from "../lib/kafka_connect.ts";
import { type KafkaProducer, type TopicState, TopicTarget } from "../lib/kafka_target.ts";
import type { Change } from "../lib/target.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
const BROKERS = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092").split(",");

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    client: { type: "string", default: "platformatic" },
    messages: { type: "string", default: "1000000" },
    chunk: { type: "string", default: "10000" },
    "batch-size": { type: "string" },
    "in-flight": { type: "string" },
    compression: { type: "string", default: "none" },
    verify: { type: "boolean", default: true },
    "no-verify": { type: "boolean", default: false },
    thread: { type: "string" },
    path: { type: "string" },
  },
});
const count = Number(values.messages);
const chunkSize = Number(values.chunk);
const ROWS_PER_FILE = 10_000;
const CITIES = ["Berlin", "Lagos", "Osaka", "Lima", "Oslo"];

/** The changes of rows `from` to `to`, shaped as main.ts declares a CSV row. */
function changes(from: number, to: number): Array<Change<TopicState>> {
  const out: Array<Change<TopicState>> = new Array(to - from);
  let metaHeaders = { "statecast-source": `data/part-${Math.floor(from / ROWS_PER_FILE)}.csv` };
  for (let i = from; i < to; i++) {
    if (i % ROWS_PER_FILE === 0) {
      metaHeaders = { "statecast-source": `data/part-${i / ROWS_PER_FILE}.csv` };
    }
    const key = `k${String(i).padStart(7, "0")}`;
    const value = `{"id":"${key}","name":"Grace Hopper","city":"${CITIES[i % 5]}","amount":"${
      ((i * 7919) % 10_000).toFixed(2)
    }","updated":"2025-03-14"}`;
    out[i - from] = { kind: "upsert", key, state: { key, value, metaHeaders } };
  }
  return out;
}

function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * The main thread's CPU seconds (Linux: /proc/self/task/<pid>/stat, in clock ticks of 10 ms),
 * or NaN elsewhere: what a producer on another thread takes off the thread that parses rows.
 */
function mainThreadSeconds(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
  } catch {
    return NaN;
  }
}

const topic = `bench-send-${crypto.randomUUID().slice(0, 8)}`;
execFileSync("bash", [`${ROOT}scripts/kafka`, "topic", topic, "--partitions", "3"], {
  stdio: ["ignore", "ignore", "inherit"],
});
await initFingerprints();
const client = values.client as KafkaClientName;
const producer = await connectProducer({
  brokers: BROKERS,
  client,
  compression: values.compression as "none",
  ...(values.thread ? { producerThread: values.thread as "main" | "worker" } : {}),
  ...(values.path ? { producePath: values.path as "direct" | "client" } : {}),
});
const options = {
  ...(values["batch-size"] ? { batchSize: Number(values["batch-size"]) } : {}),
  ...(values["in-flight"] ? { inFlight: Number(values["in-flight"]) } : {}),
};
const target = new TopicTarget(new ContextKey<KafkaProducer>("bench"), producer, topic, options);

let makeMs = 0, makeCpu = 0;
const cpu0 = cpuSeconds(), main0 = mainThreadSeconds(), t0 = performance.now();
for (let from = 0; from < count; from += chunkSize) {
  const m0 = performance.now(), c0 = cpuSeconds();
  const chunk = changes(from, Math.min(count, from + chunkSize));
  makeMs += performance.now() - m0;
  makeCpu += cpuSeconds() - c0;
  await target.apply(chunk);
}
const wall = (performance.now() - t0) / 1000, cpu = cpuSeconds() - cpu0;
const mainCpu = mainThreadSeconds() - main0;
await producer.close();
const sendWall = wall - makeMs / 1000, sendCpu = cpu - makeCpu;
const runtime = "Bun" in globalThis ? `bun ${process.versions.bun}` : `deno ${Deno.version.deno}`;
console.log(
  `${runtime} ${client}${values.thread ? ` (${values.thread} thread)` : ""}${
    values.path ? ` (${values.path} batches)` : ""
  } ${values.compression} ${JSON.stringify(options)}: ${count} messages, ` +
    `${wall.toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU; send only ${
      sendWall.toFixed(2)
    } s wall, ` +
    `${sendCpu.toFixed(2)} s CPU (main thread ${(mainCpu - makeCpu).toFixed(2)} s), ${
      Math.round(count / sendWall).toLocaleString("en-US")
    } msgs/s, ` +
    `${(sendCpu / count * 1e6).toFixed(2)} CPU s per 1M; peak RSS ${
      Math.round(process.resourceUsage().maxRSS / 1024)
    } MB`,
);
if (values.verify && !values["no-verify"]) {
  const keys = execFileSync("bash", [
    "-c",
    `kcat -b ${BROKERS[0]} -C -t ${topic} -e -q -f '%k\\n' | wc -l`,
  ], { encoding: "utf8", maxBuffer: 1 << 20 }).trim();
  console.log(
    `kcat counted ${keys} messages on ${topic}${Number(keys) === count ? "" : " (WRONG)"}`,
  );
  if (Number(keys) !== count) process.exitCode = 1;
}
