// The single binary end to end: `scripts/build-binary` compiles main.ts with `bun build --compile`
// (once per test run, into a temporary folder), and the binary runs as its own process from a
// folder with no node_modules/ anywhere above it, with only the variables it needs, against the
// real broker (`scripts/kafka up`). What landed is read back with kcat, not with kafkajs.
//
// Outside the repo on purpose: a compiled binary falls back to resolving modules from its working
// directory, so inside the repo a binary that lacks the embedded libsql addon would still run.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTopic, type ReadbackMessage, readTopic } from "./_kafka_readback.ts";
import { binaryOnce, type Run, run } from "./_binary.ts";

const BROKERS = Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") ?? "127.0.0.1:9092";
const WAIT_MS = 20_000;
/** After the expected messages arrived, how long nothing else may arrive. */
const SETTLE_MS = 1_500;
/** `scripts/build-binary` supports linux x64 (glibc) only. */
const SUPPORTED = Deno.build.os === "linux" && Deno.build.arch === "x86_64";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const show = (m: ReadbackMessage) => `${m.key}=${m.value === null ? "null" : m.value}`;
const row = (json: Record<string, string>) => JSON.stringify(json);

const binary = binaryOnce("statecast-csv");

/** A working folder (data, state store) outside the repo and a fresh 3-partition topic. */
async function job(name: string) {
  const dir = await mkdtemp(join(tmpdir(), `statecast-binary-${name}-`));
  const data = join(dir, "data");
  await mkdir(data);
  const topic = `binary-${name}-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3);
  const state = join(dir, "state.db");
  // Only what the binary needs: no NODE_PATH, no stray KAFKA_SASL_* from the caller's shell.
  const env = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    KAFKA_BOOTSTRAP_SERVERS: BROKERS,
    KAFKA_TOPIC: topic,
    DATA_DIR: data,
    STATECAST_STATE: `file:${state}`,
    NO_COLOR: "1",
  };
  const seen = new Set<string>();
  const j = {
    dir,
    data,
    topic,
    state,
    env,
    write: (path: string, text: string) => writeFile(join(data, path), text),
    /** Runs the binary once from the working folder. */
    run: async (...args: string[]): Promise<Run> => run(await binary(), args, { cwd: dir, env }),
    /** Runs it and expects exit code 0. */
    async ok(...args: string[]): Promise<Run> {
      const r = await j.run(...args);
      assert.equal(r.code, 0, `the binary exited ${r.code}:\n${r.stderr}`);
      return r;
    },
    /** The messages that landed since the last call, as sorted "key=value" strings. */
    async fresh(): Promise<string[]> {
      const landed = (await readTopic(topic, { brokers: BROKERS }))
        .filter((m) => !seen.has(`${m.partition}:${m.offset}`));
      for (const m of landed) seen.add(`${m.partition}:${m.offset}`);
      return landed.map(show).sort();
    },
    /** Waits until at least `count` new messages landed, then SETTLE_MS more; as `fresh()`. */
    async landed(count: number): Promise<string[]> {
      const until = Date.now() + WAIT_MS;
      for (;;) {
        const all = await readTopic(topic, { brokers: BROKERS });
        const fresh = all.filter((m) => !seen.has(`${m.partition}:${m.offset}`)).length;
        if (fresh >= count || Date.now() > until) break;
        await sleep(200);
      }
      await sleep(SETTLE_MS);
      return await j.fresh();
    },
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  };
  return j;
}

Deno.test({
  name: "the bun-compiled binary sends one message per row, then nothing, with no node_modules",
  ignore: !SUPPORTED,
  async fn() {
    await using j = await job("catchup");
    await j.write("products.csv", 'sku,name,price\nA1,Desk,10\nA2,Chair,20\nA3,"Lamp, brass",5\n');
    await mkdir(join(j.data, "people"));
    await j.write("people/employees.csv", "emp_id,first\nE1,Zoë\nE2,Ada\n");
    // Year columns: the row keeps the header's order, and "1" is not taken for the key.
    await j.write("years.csv", "sku,2023,2024\nA,1,1\nB,1,2\n");

    const help = await j.ok("--help");
    assert.match(help.stdout, /--live/, "--help lists the options");

    const first = await j.ok();
    assert.deepEqual(await j.fresh(), [
      `A1=${row({ sku: "A1", name: "Desk", price: "10" })}`,
      `A2=${row({ sku: "A2", name: "Chair", price: "20" })}`,
      `A3=${row({ sku: "A3", name: "Lamp, brass", price: "5" })}`,
      'A={"sku":"A","2023":"1","2024":"1"}',
      'B={"sku":"B","2023":"1","2024":"2"}',
      `E1=${row({ emp_id: "E1", first: "Zoë" })}`,
      `E2=${row({ emp_id: "E2", first: "Ada" })}`,
    ], `exactly one message per row; the run said:\n${first.stderr}`);
    assert.ok((await stat(j.state)).size > 0, "the libSQL state store is the file we named");

    const second = await j.ok();
    assert.deepEqual(await j.fresh(), [], `nothing changed: nothing sent\n${second.stderr}`);
  },
});

Deno.test({
  name: "the bun-compiled binary --live sends an edit, and exits 130 on SIGINT",
  ignore: !SUPPORTED,
  async fn() {
    await using j = await job("live");
    await j.write("a.csv", "id,v\nk1,1\nk2,2\n");
    const child = new Deno.Command(await binary(), {
      args: ["--live"],
      cwd: j.dir,
      env: j.env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const reading = (async () => {
      for await (const chunk of child.stderr) log += new TextDecoder().decode(chunk);
    })();
    try {
      const until = Date.now() + WAIT_MS;
      while (!/watching "/.test(log)) {
        if (Date.now() > until) throw new Error(`the binary never started watching:\n${log}`);
        await sleep(50);
      }
      assert.equal((await j.landed(2)).length, 2, "the catch-up run");

      await j.write("a.csv", "id,v\nk1,1\nk2,20\n");
      assert.deepEqual(await j.landed(1), [`k2=${row({ id: "k2", v: "20" })}`], "one cell edited");

      child.kill("SIGINT");
      assert.equal((await child.status).code, 130, log);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
      await reading;
    }
  },
});

Deno.test({
  name:
    "the bun-compiled binary sends through @platformatic/kafka (the default) with lz4, on kafkajs' partitions (murmur2)",
  ignore: !SUPPORTED,
  async fn() {
    await using j = await job("platformatic");
    const csv = "id,v\n" + Array.from({ length: 30 }, (_, i) => `key-${i},${i}`).join("\n") + "\n";
    await j.write("a.csv", csv);
    Object.assign(j.env, { KAFKA_CLIENT: "kafkajs" });
    await j.ok(); // kafkajs: the reference
    const reference = (await readTopic(j.topic, { brokers: BROKERS }))
      .map((m) => `${m.partition} ${show(m)}`).sort();
    assert.equal(reference.length, 30);
    await j.ok("--reset");
    Object.assign(j.env, { KAFKA_CLIENT: "", KAFKA_COMPRESSION: "lz4" }); // the default client
    const r = await j.ok();
    assert.match(r.stderr, /30 upserts/);
    // Every message twice, once per client, each key on the same partition both times.
    const both = (await readTopic(j.topic, { brokers: BROKERS }))
      .map((m) => `${m.partition} ${show(m)}`).sort();
    assert.deepEqual(both, reference.flatMap((m) => [m, m]).sort());
  },
});
