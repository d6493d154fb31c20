// A job that reports how it was started, for tests/v8_restart_e2e_test.ts: its process id, the
// V8 flags Deno was given through the environment, and its arguments, as one JSON line.
import { App, localfs } from "../lib/mod.ts";
import process from "node:process";

const app = new App({ name: "RestartReport" });
const nothing = app.fn({}, () => Promise.resolve());

app.main(async () => {
  console.log(JSON.stringify({
    pid: process.pid,
    v8Flags: process.env.DENO_V8_FLAGS ?? null,
    args: process.argv.slice(2),
  }));
  await app.mountEach(nothing, localfs.walkDir(process.env.DATA_DIR!));
});

await app.cli();
