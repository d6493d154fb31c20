// A job that reports how it was started, for tests/v8_restart_e2e_test.ts: its process id, the
// V8 flags Deno was given through the environment, and its arguments, as one JSON line; with
// RESTART_JOB_CHDIR set it changes to that directory before cli(), as a job may.
import { App, localfs } from "../lib/mod.ts";
import { heapLimitMb } from "../lib/_runtime.ts";
import process from "node:process";

const app = new App({ name: "RestartReport" });
const nothing = app.fn({}, () => Promise.resolve());

app.main(async () => {
  // The environment the kernel started this process with (what execve passed), by name.
  const environ = new TextDecoder().decode(Deno.readFileSync("/proc/self/environ"));
  const cmdline = Deno.readFileSync("/proc/self/cmdline");
  const lastArg = cmdline.subarray(cmdline.lastIndexOf(0, cmdline.length - 2) + 1, -1);
  console.log(JSON.stringify({
    pid: process.pid,
    v8Flags: process.env.DENO_V8_FLAGS ?? null,
    args: process.argv.slice(2),
    heapMb: heapLimitMb(),
    startedWith: environ.split("\0").filter((e) => e !== "").map((e) => e.split("=")[0]),
    secret: process.env.RESTART_JOB_SECRET ?? null,
    lastArgHex: Array.from(lastArg, (b) => b.toString(16).padStart(2, "0")).join(""),
  }));
  await app.mountEach(nothing, localfs.walkDir(process.env.DATA_DIR!));
});

if (process.env.RESTART_JOB_CHDIR) process.chdir(process.env.RESTART_JOB_CHDIR);
// Deno writes a process title over the command line's memory (/proc/self/cmdline shows it).
if (process.env.RESTART_JOB_TITLE) process.title = process.env.RESTART_JOB_TITLE;
// RESTART_JOB_RUN: app.run() called directly, as a program may, not through cli().
if (process.env.RESTART_JOB_RUN) await app.run({ quiet: true });
else await app.cli();
