// `deno run -A main.ts` restarts itself in place with the V8 flags a large catch-up needs (V8 reads
// them only at start-up): same process, same arguments, DENO_V8_FLAGS set; and leaves alone a
// process whose flags were chosen, or that may not restart.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";

const JOB = new URL("./_restart_job.ts", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const DEFAULT = "--max-semi-space-size=4,--max-old-space-size=1900";
const REPO = new URL("../", import.meta.url);

interface Report {
  pid: number;
  v8Flags: string | null;
  args: string[];
  /** `STATECAST_HEAP_MB`'s default as the run uses it. */
  heapMb: number;
  /** The names in the environment the process was (re)started with (`/proc/self/environ`). */
  startedWith: string[];
  /** `RESTART_JOB_SECRET` as the job sees it. */
  secret: string | null;
  /** The last argument's bytes as the kernel has them (`/proc/self/cmdline`), in hex. */
  lastArgHex: string;
}

interface StartOptions {
  flags?: string[];
  args?: string[];
  env?: Record<string, string>;
  script?: string;
  /** Files written first into the temporary directory the job runs in (`.env`). */
  files?: Record<string, string>;
  /** The script named relative to the directory the job runs in. */
  relative?: boolean;
  /** Start through `bash -c` with this text after `deno <flags> ` (`<(cat job)`). */
  shell?: string;
}

/** Runs `deno <flags> job <args>`; what the job reported, its process id, stdout and stderr. */
async function start(options: StartOptions) {
  const dir = await mkdtemp(join(tmpdir(), "statecast-restart-"));
  try {
    for (const [name, text] of Object.entries(options.files ?? {})) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    const script = options.relative ? relative(dir, options.script ?? JOB) : options.script ?? JOB;
    const flags = options.flags ?? ["run", "-A"];
    const [command, args] = options.shell === undefined
      ? [Deno.execPath(), [...flags, script, ...(options.args ?? [])]]
      : ["bash", ["-c", `exec "$0" ${flags.join(" ")} ${options.shell}`, Deno.execPath()]];
    const env: Record<string, string> = {
      ...Deno.env.toObject(),
      DATA_DIR: dir,
      STATECAST_STATE: `file:${join(dir, "state.db")}`,
      ...options.env,
    };
    if (options.env?.DENO_V8_FLAGS === undefined) delete env.DENO_V8_FLAGS;
    if (options.env?.STATECAST_V8_FLAGS === undefined) delete env.STATECAST_V8_FLAGS;
    const child = new Deno.Command(command, {
      args,
      cwd: dir, // no .env but the test's own
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const { code, stdout, stderr } = await child.output();
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `exit ${code}: ${err}`);
    const line = out.split("\n").find((l) => l.startsWith('{"pid"'));
    const report = line === undefined ? undefined : JSON.parse(line) as Report;
    return { pid: child.pid, report, stdout: out, stderr: err };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("deno run -A restarts in place with DENO_V8_FLAGS set to the default flags", async () => {
  const r = await start({ args: ["--verbose", "--log-format", "text"] });
  const { pid, v8Flags, args } = r.report!;
  assert.deepEqual({ pid, v8Flags, args }, {
    pid: r.pid, // execve: the process that was started, not a child of it
    v8Flags: DEFAULT,
    args: ["--verbose", "--log-format", "text"],
  });
});

Deno.test("the restart passes arguments on byte for byte, text or not", async () => {
  // "caf\xe9.db" (Latin-1) is not UTF-8: decoded and encoded again it came back as "caf\uFFFD".
  const r = await start({ shell: `'${JOB}' --state $'file:caf\\xe9.db'` });
  assert.equal(r.report?.v8Flags, DEFAULT);
  assert.equal(r.report?.lastArgHex, "66696c653a636166e92e6462"); // file:caf\xe9.db
});

Deno.test("a job that sets process.title before cli() restarts with its command line", async () => {
  // Deno writes the title over the command line's memory: read then, /proc/self/cmdline was
  // "statecast-orders" and empty strings, so the run was not restarted.
  const r = await start({ args: ["--verbose"], env: { RESTART_JOB_TITLE: "statecast-orders" } });
  assert.equal(r.report?.v8Flags, DEFAULT);
  assert.deepEqual(r.report?.args, ["--verbose"]);
  // --v8-flags typed: no restart, and the heap default still sees them under the title.
  const typed = await start({
    flags: ["run", "-A", `--v8-flags=${DEFAULT}`],
    env: { RESTART_JOB_TITLE: "statecast-orders" },
  });
  assert.equal(typed.report?.v8Flags, null);
  assert.equal(typed.report?.heapMb, 84);
});

Deno.test("a job that changes directory before cli() restarts where it was started", async () => {
  // The script is named relative to the directory it was started in; the job then moves to
  // tests/, from where that name leads nowhere ("Module not found" if the restart used it there).
  const r = await start({ relative: true, env: { RESTART_JOB_CHDIR: dirname(JOB) } });
  assert.equal(r.report?.v8Flags, DEFAULT);
  assert.equal(r.report?.pid, r.pid);
});

Deno.test("a job read from a pipe runs as started: a restart could not read it again", async () => {
  // deno run -A <(cat job.ts): /dev/fd/63 is empty the second time; restarted, the job did
  // nothing and exited 0.
  const config = new URL("../deno.json", import.meta.url).pathname; // not found from /dev/fd
  const r = await start({
    flags: ["run", "-A", `--config=${config}`],
    shell: `<(echo 'import "${new URL(`file://${JOB}`)}";')`,
  });
  assert.equal(r.report?.v8Flags, null);
  assert.equal(r.report?.heapMb, 88);
});

Deno.test("the restart passes on the environment as the process started, not .env's", async () => {
  // A .env password is in the process's memory, as before the restart; it is not written into
  // the environment the kernel shows for the process (/proc/PID/environ, ps e): the restarted
  // job reads .env again.
  const r = await start({ files: { ".env": "RESTART_JOB_SECRET=s3cret\n" } });
  assert.equal(r.report?.v8Flags, DEFAULT);
  assert.equal(r.report?.secret, "s3cret");
  assert.ok(r.report?.startedWith.includes("DENO_V8_FLAGS"));
  assert.ok(!r.report?.startedWith.includes("RESTART_JOB_SECRET"), "not in its start environment");
});

Deno.test("DENO_V8_FLAGS from a .env file reaches V8 through the restart", async () => {
  // V8 reads DENO_V8_FLAGS only at start-up, before cli() reads .env: flags chosen there were
  // taken as V8's own, the run was not restarted, and V8 never saw them.
  const flags = "--max-semi-space-size=2,--print-flag-values";
  const r = await start({ files: { ".env": `DENO_V8_FLAGS=${flags}\n` } });
  assert.equal(r.report?.v8Flags, flags);
  assert.ok(r.report?.startedWith.includes("DENO_V8_FLAGS"), "restarted with them");
  assert.match(r.stdout, /^--max-semi-space-size=2$/m, "V8 printed its flags as it started");
  assert.equal(r.report?.heapMb, 84);
  // Deno's own --env-file is read before V8 starts: those flags are V8's already, no restart.
  const deno = await start({
    flags: ["run", "-A", "--env-file=deno.env"],
    files: { "deno.env": "DENO_V8_FLAGS=--max-semi-space-size=8\n" },
  });
  assert.equal(deno.report?.v8Flags, "--max-semi-space-size=8");
  assert.ok(!deno.report?.startedWith.includes("DENO_V8_FLAGS"), "not restarted");
  assert.equal(deno.report?.heapMb, 88);
});

Deno.test("a failed restart runs the job as started, with the heap default for that", async () => {
  // execve refuses a variable over 128 KiB (E2BIG): the run goes on with V8's own semi-spaces,
  // so the memory bound is the one for them (88), not the one for the restart's (84).
  const flags = Array(6000).fill(DEFAULT).join(",");
  const r = await start({ files: { ".env": `STATECAST_V8_FLAGS=${flags}\n` } });
  assert.equal(r.report?.v8Flags, null, "not restarted");
  assert.equal(r.report?.pid, r.pid);
  assert.equal(r.report?.heapMb, 88);
});

Deno.test("app.run() called directly keeps the heap default of V8's own semi-spaces", async () => {
  // Only cli() restarts: a program that calls app.run() under deno run runs as started, so its
  // memory bound is 88, not the 84 of the flags a restart would have given it.
  const r = await start({ env: { RESTART_JOB_RUN: "1" } });
  assert.equal(r.report?.v8Flags, null);
  assert.equal(r.report?.heapMb, 88);
});

Deno.test("STATECAST_V8_FLAGS chooses the flags, and V8 starts with them", async () => {
  const flags = "--max-semi-space-size=2,--print-flag-values";
  const r = await start({ env: { STATECAST_V8_FLAGS: flags } });
  assert.equal(r.report?.v8Flags, flags);
  assert.equal(r.report?.pid, r.pid);
  // V8 printed its flags as it started again: the semi-space size is the one asked for.
  assert.match(r.stdout, /^--max-semi-space-size=2$/m);
});

Deno.test("no restart when V8 flags were chosen, when told not to, or for status", async () => {
  const given = await start({ env: { DENO_V8_FLAGS: "--max-semi-space-size=8" } });
  assert.equal(given.report?.v8Flags, "--max-semi-space-size=8", "DENO_V8_FLAGS kept as given");
  const typed = await start({ flags: ["run", "-A", "--v8-flags=--max-semi-space-size=8"] });
  assert.equal(typed.report?.v8Flags, null, "--v8-flags on the command line");
  const off = await start({ env: { STATECAST_V8_FLAGS: "" } });
  assert.equal(off.report?.v8Flags, null, "STATECAST_V8_FLAGS empty");
  // status reads the store and exits: its report comes from a process that was not restarted.
  const status = await start({
    args: ["status"],
    env: { STATECAST_V8_FLAGS: "--print-flag-values" },
  });
  assert.doesNotMatch(
    status.stdout,
    /^--max-semi-space-size=/m,
    "V8 started once, flags not printed",
  );
});

Deno.test("the heap threshold is 84 MiB with 4 MiB semi-spaces, 88 without (--help)", async () => {
  const helpDefault = (stdout: string) =>
    /STATECAST_HEAP_MB\s+[^]*?\(default (\d+);/.exec(stdout)?.[1];
  const help = (options: StartOptions) =>
    start({ ...options, args: [...options.args ?? [], "--help"], script: MAIN })
      .then((r) => helpDefault(r.stdout));
  assert.equal(await help({}), "84", "as the run restarts");
  assert.equal(await help({ flags: ["run", "-A", "--v8-flags=--max-semi-space-size=4"] }), "84");
  assert.equal(await help({ env: { DENO_V8_FLAGS: "--max-semi-space-size=4" } }), "84");
  assert.equal(await help({ env: { STATECAST_V8_FLAGS: "" } }), "88", "no restart");
  assert.equal(await help({ env: { DENO_V8_FLAGS: "--max-semi-space-size=16" } }), "88");
  // --help reads .env as a run does: the default it prints is the run's.
  assert.equal(
    await help({ files: { ".env": "STATECAST_V8_FLAGS=\n" } }),
    "88",
    ".env: no restart",
  );
  const files = { "prod.env": "DENO_V8_FLAGS=--max-semi-space-size=16\n" };
  assert.equal(await help({ files }), "84", "only .env unless --env-file names another");
  assert.equal(await help({ files, args: ["--env-file", "prod.env"] }), "88", "--env-file");
});

Deno.test("the flags given by hand are the restart's: deno task start, a new job, systemd", async () => {
  // Where V8 flags are typed rather than restarted with (they also hold off Linux), they must be
  // the ones the restart uses, or the same job runs one way under `deno run` and another there.
  const { DEFAULT_V8_FLAGS } = await import("../lib/_runtime.ts");
  assert.equal(DEFAULT_V8_FLAGS, DEFAULT);
  const typed = `--v8-flags=${DEFAULT} main.ts`;
  const start = JSON.parse(await readFile(new URL("deno.json", REPO), "utf8")).tasks.start;
  assert.ok(start.endsWith(typed), `deno task start: ${start}`);
  for (const file of ["scripts/new-job", "examples/systemd/statecast.service"]) {
    const text = await readFile(new URL(file, REPO), "utf8");
    const lines = text.split("\n").filter((line) => line.includes("--v8-flags="));
    assert.ok(lines.length > 0, `${file} passes V8 flags`);
    for (const line of lines) assert.ok(line.includes(typed), `${file}: ${line.trim()}`);
  }
  const example = await readFile(new URL(".env.example", REPO), "utf8");
  assert.match(example, new RegExp(`^# STATECAST_V8_FLAGS=${DEFAULT}$`, "m"));
});
