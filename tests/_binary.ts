// What the binary tests share: running a process to its end (bounded in time), and building a
// job's binary once per test file with `scripts/build-binary`.
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
/** Generous bounds: a build takes well under a second, a catch-up run a fraction of that. */
const BUILD_TIMEOUT_MS = 120_000;
const RUN_TIMEOUT_MS = 60_000;

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** How a process ended and what it printed. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` to its end, killed after `timeoutMs`; `env` replaces the whole environment. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<Run> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), options.timeoutMs ?? RUN_TIMEOUT_MS);
  try {
    const out = await new Deno.Command(cmd, {
      args,
      cwd: options.cwd,
      ...(options.env ? { env: options.env, clearEnv: true } : {}),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** `scripts/build-binary [ENTRY] --outfile PATH`; fails the test with the build's output. */
export async function buildBinary(path: string, entry?: string): Promise<string> {
  const args = [join(ROOT, "scripts", "build-binary"), ...(entry ? [entry] : []), "-o", path];
  const out = await run("bash", args, { cwd: ROOT, timeoutMs: BUILD_TIMEOUT_MS });
  assert.equal(out.code, 0, `scripts/build-binary failed:\n${out.stderr}${out.stdout}`);
  return path;
}

/**
 * A job's binary built once for all tests of a file, on first use, into a temporary folder that
 * is removed when the test process ends: `const binary = binaryOnce("statecast-csv")`, then
 * `await binary()` in each test. `entry`: the job's main.ts (default this checkout's).
 */
export function binaryOnce(name: string, entry?: string): () => Promise<string> {
  let built: Promise<string> | undefined;
  return () =>
    built ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), `statecast-binary-${name}-`));
      globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
      return await buildBinary(join(dir, name), entry);
    })();
}
