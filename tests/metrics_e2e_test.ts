// `main.ts --live --metrics-port` end to end: /metrics is scraped while files are edited, broken
// and fixed, and while the broker is unreachable and back; the exposition is parsed by Python's
// prometheus_client. The broker "goes away" through a TCP proxy in front of the shared broker
// (./_tcp_proxy.ts): every Kafka connection of the job goes through it, and it is cut and
// restored; the shared broker itself is never stopped.
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BROKERS, LiveJob, row, sleep } from "./_live_job.ts";
import { type ParsedFamily, parseExposition, sampleValue } from "./_prometheus.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const OUTAGE_MS = 60_000;

/**
 * main.ts with every Kafka connection sent to 127.0.0.1:$TEST_KAFKA_PROXY_PORT: its producer is
 * kafkajs as `kafka.connectProducer()` makes it, with a socket factory that dials the proxy (the
 * broker advertises its own address, so only a socket factory catches every connection).
 */
async function proxiedMain(name: string): Promise<string> {
  const source = await readFile(join(ROOT, "main.ts"), "utf8");
  const connect = "kafka.connectProducer(kafka.connectOptionsFromEnv())";
  const changed = source
    .replaceAll('"./lib/mod.ts"', '"../../lib/mod.ts"')
    .replace(
      'import process from "node:process";',
      'import process from "node:process";\nimport net from "node:net";\n' +
        'import { Kafka, logLevel } from "kafkajs";',
    )
    .replace(
      connect,
      `(async () => {
    const client = new Kafka({
      clientId: "statecast",
      brokers: kafka.connectOptionsFromEnv().brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 5000,
      retry: { retries: 3 },
      socketFactory: ({ onConnect }) =>
        net.connect({ host: "127.0.0.1", port: Number(process.env.TEST_KAFKA_PROXY_PORT) }, onConnect),
    });
    const producer = client.producer({ idempotent: true, allowAutoTopicCreation: false });
    await producer.connect();
    return { send: producer.send.bind(producer), close: () => producer.disconnect() };
  })()`,
    );
  assert.ok(source.includes(connect) && changed.includes("socketFactory"), "main.ts changed shape");
  const path = join(ROOT, ".cache", "e2e", `main_metrics_${name}.ts`);
  await mkdir(join(ROOT, ".cache", "e2e"), { recursive: true });
  await writeFile(path, changed);
  return path;
}

/** The metrics server's base URL, from the job's log. */
async function metricsUrl(job: LiveJob): Promise<string> {
  await job.waitForLog(/metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
  const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(job.log)![1];
  return `http://127.0.0.1:${port}`;
}

async function scrape(base: string): Promise<ParsedFamily[]> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return await parseExposition(await res.text());
}

async function health(base: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}/healthz`);
  return { status: res.status, body: await res.text() };
}

/** Polls until `check` holds (it returns a value), or fails with what was last seen. */
async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>) {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${last ?? ""}`);
    await sleep(200);
  }
}

const value = (f: ParsedFamily[], name: string, labels: Record<string, string> = {}) =>
  sampleValue(f, name, labels) ?? NaN;

Deno.test("main.ts --live --metrics-port: scraped while files are edited, broken and fixed, and while the broker is away", async () => {
  await using job = await LiveJob.create("metrics");
  await using proxy = TcpProxy.start(BROKERS);
  const main = await proxiedMain(job.topic);
  try {
    await job.write("a.csv", "id,v\nk1,1\nk2,2\n");
    const started = Date.now() / 1000;
    await job.start({
      main,
      env: { METRICS_PORT: "0", TEST_KAFKA_PROXY_PORT: String(proxy.port) },
    });
    const base = await metricsUrl(job);
    assert.equal((await job.landed(2)).length, 2, "the catch-up run");

    let m = await scrape(base);
    assert.equal(value(m, "statecast_rounds_total", { outcome: "ok" }), 1, "the catch-up round");
    assert.equal(value(m, "statecast_upserts_total"), 2);
    assert.equal(value(m, "statecast_files"), 1);
    assert.equal(value(m, "statecast_keys", { target: `kafka:kafka_producer/${job.topic}` }), 2);
    assert.equal(value(m, "statecast_watching"), 1);
    assert.ok(value(m, "statecast_last_success_timestamp_seconds") >= started - 1);
    assert.equal((await health(base)).status, 200);

    // An edit: one upsert, events seen, a second round timed.
    await job.write("a.csv", "id,v\nk1,1\nk2,20\n");
    assert.deepEqual(await job.landed(1), [`k2=${row({ id: "k2", v: "20" })}`]);
    m = await scrape(base);
    assert.equal(value(m, "statecast_upserts_total"), 3);
    assert.ok(value(m, "statecast_watch_events_total") >= 1);
    assert.ok(value(m, "statecast_round_duration_seconds_count") >= 2);

    // Broken: counted as a failed file (invalid), the run stays healthy. Fixed: no failed file.
    await job.write("a.csv", 'id,v\nk1,1\nk2,"20\n');
    m = await until("a failed file", 20_000, async () => {
      const f = await scrape(base);
      return value(f, "statecast_failed_files", { reason: "invalid" }) === 1 ? f : undefined;
    });
    assert.ok(value(m, "statecast_rounds_total", { outcome: "files_failed" }) >= 1);
    assert.equal((await health(base)).status, 200, "a broken file is data to fix");
    await job.write("a.csv", "id,v\nk1,1\nk2,21\n");
    assert.deepEqual(await job.landed(1), [`k2=${row({ id: "k2", v: "21" })}`]);
    m = await scrape(base);
    assert.equal(value(m, "statecast_failed_files", { reason: "invalid" }), 0);

    // The broker goes away while a file changes: /healthz turns 503 once rounds keep failing.
    await proxy.cut();
    await job.write("a.csv", "id,v\nk1,1\nk2,22\n");
    const down = await until("/healthz 503", OUTAGE_MS, async () => {
      const h = await health(base);
      return h.status === 503 ? h : undefined;
    });
    assert.match(down.body, /^unhealthy: \d+ rounds in a row failed .*\n$/);
    assert.match(
      job.log,
      /live: 1 files changed, sent nothing, \d+ ms \(the target failed: nothing committed\)/,
      "a round the broker did not take says it sent nothing",
    );
    m = await scrape(base);
    assert.ok(value(m, "statecast_rounds_total", { outcome: "target_failed" }) >= 3);
    assert.ok(value(m, "statecast_retries_total") >= 3);
    assert.equal(value(m, "statecast_healthy"), 0);

    // Back: the retried round goes through, /healthz is 200 again, the edit landed.
    proxy.restore();
    const up = await until("/healthz 200", OUTAGE_MS, async () => {
      const h = await health(base);
      return h.status === 200 ? h : undefined;
    });
    assert.match(up.body, /^ok: watching/);
    assert.deepEqual(await job.landed(1), [`k2=${row({ id: "k2", v: "22" })}`]);
    m = await scrape(base);
    assert.equal(value(m, "statecast_healthy"), 1);
    assert.equal(value(m, "statecast_in_doubt_keys"), 0);

    assert.equal(await job.stop("SIGINT"), 130);
  } finally {
    await rm(main, { force: true });
  }
});

Deno.test("bun main.ts --live --metrics-port serves /metrics and /healthz, on 127.0.0.1 only", async () => {
  await using job = await LiveJob.create("metrics-bun", "bun");
  await job.write("a.csv", "id,v\nk1,1\n");
  await job.start({ args: ["--metrics-port", "0"] });
  const base = await metricsUrl(job);
  await job.landed(1);
  const m = await scrape(base);
  assert.equal(value(m, "statecast_upserts_total"), 1);
  assert.equal(value(m, "statecast_watching"), 1);
  const h = await health(base);
  assert.equal(h.status, 200, h.body);
  assert.equal(await job.stop("SIGTERM"), 143);
});
