// What a user reads: --help (the command as typed, every variable, every exit code), the errors
// for a missing data folder, a broker without a port and a state path without `file:`, and a
// run under Bun with nothing printed but the summary. main.ts runs as its own process against
// the real broker; what landed is read back with kcat.
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline, ROOT } from "./_pipeline.ts";

const variablesOf = (text: string) =>
  [...text.matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!);

Deno.test("main.ts --help names the command as typed, every variable and every exit code", async () => {
  await using p = await pipeline("help");
  const deno = await p.ok({ args: ["--help"] });
  assert.match(deno.stdout, /^Usage: deno run -A main\.ts \[command\] \[options\]$/m);
  const bun = await p.ok({ args: ["--help"], runtime: "bun" });
  assert.match(bun.stdout, /^Usage: bun main\.ts \[command\] \[options\]$/m);
  // Each runtime's own memory bound: Bun checks at chunk ends only, with a lower default.
  const heap = (text: string) =>
    text.match(/^ {2}STATECAST_HEAP_MB +(.*(?:\n {4,}.*)*)/m)![1]!.replace(/\s+/g, " ");
  // 84: the run restarts Deno with 4 MiB semi-spaces (tests/v8_restart_e2e_test.ts).
  assert.match(heap(deno.stdout), /every 4,096 declared rows \(default 84;/);
  assert.match(heap(bun.stdout), /runs between chunks \(default 72;/);

  const example = await readFile(join(ROOT, ".env.example"), "utf8");
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const variables = variablesOf(example);
  assert.ok(variables.includes("KAFKA_TOPIC") && variables.includes("STATECAST_STATE"));
  for (const variable of variables) {
    assert.match(deno.stdout, new RegExp(`^  ${variable} `, "m"), `--help lists ${variable}`);
    assert.ok(readme.includes(`\`${variable}\``), `README documents ${variable}`);
  }
  for (const code of ["0", "1", "2", "130", "143"]) {
    assert.match(deno.stdout, new RegExp(`^  ${code} +\\S`, "m"), `--help explains exit ${code}`);
  }
});

Deno.test("main.ts under Bun prints the summary and nothing else (no TimeoutNegativeWarning)", async () => {
  await using p = await pipeline("bunquiet");
  await p.write("a.csv", "id,v\nk1,1\n");
  const bun = await p.ok({ runtime: "bun" });
  assert.doesNotMatch(bun.stderr, /TimeoutNegativeWarning|\(node:\d+\)/);
  assert.match(bun.stderr, /^CsvToKafka: 1 files scanned.*\n$/, "one line: the summary");
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"1"}']);
  const deno = await p.ok();
  assert.match(deno.stderr, /^CsvToKafka: 1 files scanned.*\n$/);
});

Deno.test("main.ts says to set DATA_DIR when the folder does not exist, and sends nothing", async () => {
  await using p = await pipeline("nodata");
  const r = await p.run({ env: { DATA_DIR: join(p.dir, "missing") } });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /Cannot read the source folder ".*missing": it does not exist; create it, or set DATA_DIR to your folder \(DATA_DIR=path\/to\/folder/,
  );
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts says to write host:port for a bootstrap address without a port", async () => {
  await using p = await pipeline("noport");
  await p.write("a.csv", "id,v\nk1,1\n");
  const r = await p.run({ env: { KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1" } });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /"127\.0\.0\.1" has no port; write host:port, e\.g\. KAFKA_BOOTSTRAP_SERVERS=127\.0\.0\.1:9092/,
  );
  assert.doesNotMatch(r.stderr, /Received NaN/);
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts --state without file: is bad usage that suggests file:, and creates nothing", async () => {
  await using p = await pipeline("statepath");
  await p.write("a.csv", "id,v\nk1,1\n");
  for (
    const [args, env, from] of [
      [["--state", "state.db"], {}, "--state"],
      [[], { STATECAST_STATE: "state.db" }, "STATECAST_STATE"],
    ] as const
  ) {
    const r = await p.run({ args: [...args], env, cwd: p.dir });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `error: ${from}: the state store "state.db" is not a URL; for a local file write "file:state.db"`,
    );
  }
  await assert.rejects(stat(join(p.dir, "state.db")), { code: "ENOENT" });
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts says what to write for a bad STATECAST_HEAP_MB, sends nothing; 0 and 256 run", async () => {
  await using p = await pipeline("heapmb");
  await p.write("a.csv", "id,v\nk1,1\n");
  const bad = await p.run({ env: { STATECAST_HEAP_MB: "lots" } });
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /STATECAST_HEAP_MB=lots: write a size in MiB, e\.g\. STATECAST_HEAP_MB=256/,
  );
  assert.deepEqual(await p.fresh(), []);
  await p.ok({ env: { STATECAST_HEAP_MB: "0" } });
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"1"}']);
  await p.write("a.csv", "id,v\nk1,2\n");
  await p.ok({ env: { STATECAST_HEAP_MB: "256" }, runtime: "bun" });
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"2"}']);
});

Deno.test("main.ts --reset with --live, --rerun, status or drop is bad usage, and forgets nothing", async () => {
  await using p = await pipeline("resetwith");
  await p.write("a.csv", "id,v\nk1,1\n");
  await p.ok();
  await p.fresh();
  for (
    const [args, other] of [
      [["--reset", "--live"], "--live"],
      [["--reset", "--rerun", "a.csv"], "--rerun"],
      [["status", "--reset"], "status"],
      [["drop", "--reset", "--yes"], "drop"],
    ] as const
  ) {
    const r = await p.run({ args: [...args] });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`^error: --reset forgets the state and exits; it does not go with ${other}`),
    );
  }
  assert.deepEqual(await p.fresh(), [], "drop sent nothing");
  const again = await p.ok();
  assert.match(again.stderr, /0 upserts, 0 deletes/, "the state was not forgotten");
});
