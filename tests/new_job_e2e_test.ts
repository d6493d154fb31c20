// `scripts/new-job DIR` end to end, as a new user would use it: a job made in a temporary folder
// outside the checkout runs right away with `deno run -A main.ts`, `bun main.ts` and as a binary
// built by `scripts/build-binary DIR/main.ts`, configured by a .env made from its .env.example,
// against the real broker; what landed is read back with kcat.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROKERS, BUN, ROOT } from "./_pipeline.ts";
import { createTopic, readTopic } from "./_kafka_readback.ts";

const NEW_JOB = join(ROOT, "scripts", "new-job");
const BUILD_BINARY = join(ROOT, "scripts", "build-binary");
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` in `cwd` with only PATH and NO_COLOR from this process (no KAFKA_*, no DATA_DIR). */
async function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    clearEnv: true,
    env: { PATH: `${join(ROOT, "node_modules", ".bin")}:${Deno.env.get("PATH")}`, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r;
}

Deno.test("scripts/new-job makes a job outside the checkout that runs under Deno, Bun and as a binary", async () => {
  const parent = await mkdtemp(join(tmpdir(), "statecast-new-job-"));
  try {
    const dir = join(parent, "orders");
    const made = ok(await run("bash", [NEW_JOB, dir], parent), "scripts/new-job");
    assert.match(made.stderr, /made job "orders"/);
    for (const file of [".env.example", ".gitignore", "package-lock.json"]) {
      await stat(join(dir, file)); // throws if missing
    }
    const main = await readFile(join(dir, "main.ts"), "utf8");
    assert.match(main, /from "statecast"/, "main.ts imports the package, not ./lib");
    assert.match(main, /new App\(\{\s*name: "orders"/, "the job has its own app name");
    // statecast and its dependencies are installed in the job, not borrowed from the checkout.
    await stat(join(dir, "node_modules", "@libsql", "client", "package.json"));
    await stat(join(dir, "node_modules", "statecast", "lib", "mod.ts"));

    // Configured as the .env.example says: copy it to .env and edit.
    const topic = `new-job-${crypto.randomUUID().slice(0, 8)}`;
    await createTopic(topic, 3);
    const example = await readFile(join(dir, ".env.example"), "utf8");
    const env = example
      .replace(/^KAFKA_BOOTSTRAP_SERVERS=.*$/m, `KAFKA_BOOTSTRAP_SERVERS=${BROKERS}`)
      .replace(/^KAFKA_TOPIC=.*$/m, `KAFKA_TOPIC=${topic}`);
    assert.notEqual(env, example, ".env.example names KAFKA_TOPIC and KAFKA_BOOTSTRAP_SERVERS");
    await writeFile(join(dir, ".env"), env);
    const data = join(dir, "data"); // the default DATA_DIR, made by new-job
    await writeFile(join(data, "a.csv"), "id,name\n1,apple\n2,pear\n");

    const seen = new Set<string>();
    const fresh = async () => {
      const landed = (await readTopic(topic, { brokers: BROKERS }))
        .filter((m) => !seen.has(`${m.partition}:${m.offset}`));
      for (const m of landed) seen.add(`${m.partition}:${m.offset}`);
      return landed.map((m) => `${m.key}=${m.value}`).sort();
    };

    const deno = ok(await run(Deno.execPath(), ["run", "-A", "main.ts"], dir), "deno run");
    assert.match(deno.stderr, /^orders: 1 files scanned/m, "the summary names the job's app");
    assert.deepEqual(await fresh(), [
      '1={"id":"1","name":"apple"}',
      '2={"id":"2","name":"pear"}',
    ]);
    await stat(join(dir, ".statecast", "state.db")); // the job's own state, in the job

    await writeFile(join(data, "a.csv"), "id,name\n1,apple\n2,pears\n");
    const bun = ok(await run(BUN, ["main.ts"], dir), "bun main.ts");
    assert.match(bun.stderr, /^orders: .* 1 upserts/m);
    assert.deepEqual(await fresh(), ['2={"id":"2","name":"pears"}'], "Bun: one row changed");

    // --update takes the checkout's statecast again (here: repairs a damaged copy).
    await rm(join(dir, "vendor", "statecast", "lib", "csv.ts"));
    ok(await run("bash", [NEW_JOB, "--update", dir], parent), "scripts/new-job --update");
    await stat(join(dir, "node_modules", "statecast", "lib", "csv.ts"));

    ok(await run("bash", [BUILD_BINARY, "main.ts"], dir), "scripts/build-binary main.ts");
    const binary = join(dir, "dist", "orders");
    // From an empty folder with no node_modules above it, pointed at the job's files.
    const elsewhere = join(parent, "elsewhere");
    await mkdir(elsewhere);
    const state = `file:${join(dir, ".statecast", "state.db")}`;
    await writeFile(
      join(elsewhere, ".env"),
      env.replace(/^DATA_DIR=.*$/m, `DATA_DIR=${data}`)
        .replace(/^STATECAST_STATE=.*$/m, `STATECAST_STATE=${state}`),
    );
    await writeFile(join(data, "a.csv"), "id,name\n1,apples\n");
    const help = ok(await run(binary, ["--help"], elsewhere), "the job's binary --help");
    assert.match(help.stdout, new RegExp(`^Usage: ${binary} \\[command\\]`, "m"), "names itself");
    const bin = ok(await run(binary, [], elsewhere), "the job's binary");
    assert.match(bin.stderr, /^orders: .* 1 upserts, 1 deletes/m);
    assert.deepEqual(await fresh(), ['1={"id":"1","name":"apples"}', "2=null"]);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

Deno.test("scripts/new-job refuses a folder inside the checkout, a non-empty folder and a bad name", async () => {
  const parent = await mkdtemp(join(tmpdir(), "statecast-new-job-"));
  try {
    const inside = await run("bash", [NEW_JOB, join(ROOT, `job-${crypto.randomUUID()}`)], parent);
    assert.equal(inside.code, 1);
    assert.match(inside.stderr, /is inside the statecast checkout; make the job outside it/);

    await writeFile(join(parent, "x.txt"), "");
    const full = await run("bash", [NEW_JOB, parent], parent);
    assert.equal(full.code, 1);
    assert.match(full.stderr, /is not empty; name a new folder/);

    const bad = await run("bash", [NEW_JOB, join(parent, "j"), "--name", "a b"], parent);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /the app name "a b" should be letters, digits/);

    const usage = await run("bash", [NEW_JOB, "--frobnicate"], parent);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown option --frobnicate/);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});
