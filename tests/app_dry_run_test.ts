// App.run({ dryRun }) in process: the lifespan does not run, targets mount on stand-ins, the state
// store is only read. The command line's side (no broker, no files) is in dry_run_e2e_test.ts.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Context, ContextKey, kafka, localfs } from "../lib/mod.ts";

const PRODUCER = new ContextKey<kafka.KafkaProducer>("kafka_producer");

Deno.test("App.run({ dryRun }) runs no lifespan, mounts the target on a stand-in, creates no store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "statecast-app-dry-"));
  try {
    await mkdir(join(dir, "data"));
    await writeFile(join(dir, "data", "a.csv"), "id,v\nk1,1\n");
    const app = new App({ name: "Dry" });
    let lifespans = 0;
    app.lifespan(() => {
      lifespans++;
      throw new Error("a dry run must not run the lifespan");
    });
    const processCsv = app.fn({}, async (file, topic: kafka.TopicTarget) => {
      for await (const row of file.csvRows()) {
        topic.declareTargetState({ key: row.values[0]!, value: row.toJsonText() });
      }
    });
    app.main(async () => {
      const topic = await kafka.mountTopicTarget(PRODUCER, "rows");
      await app.mountEach(processCsv, localfs.walkDir(join(dir, "data")), topic);
    });
    const state = `file:${join(dir, ".statecast", "state.db")}`;
    const result = await app.run({ dryRun: true, state, quiet: true });
    assert.equal(result.exitCode, 0);
    assert.equal(lifespans, 0);
    assert.deepEqual(result.summaries[0]!.changes.map((c) => c.kind), ["upsert"]);
    assert.deepEqual(await readdir(dir), ["data"], "no .statecast folder");
    await assert.rejects(app.run({ dryRun: true, live: true, state }), /--live and --dry-run/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("A dry run's Context hands out stand-ins that throw on use, naming their key", async () => {
  const producer = new Context({ dryRun: true }).get(PRODUCER);
  assert.equal(await Promise.resolve(producer), producer, "awaiting it is harmless");
  assert.throws(
    () => producer.send({ topic: "t", messages: [] }),
    /ContextKey "kafka_producer": a dry run runs no lifespan and connects to nothing/,
  );
  assert.throws(() => new Context().get(PRODUCER), /Nothing was provided for ContextKey/);
});
