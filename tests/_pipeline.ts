// One end-to-end fixture: main.ts run as its own process, as a user runs it, against the real
// broker, with its own data folder, state store and 3-partition topic; what landed is read back
// with kcat (./_kafka_readback.ts), not with kafkajs.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTopic, type ReadbackMessage, readTopic } from "./_kafka_readback.ts";

export const ROOT = new URL("..", import.meta.url).pathname;
export const BROKERS = Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") ?? "127.0.0.1:9092";
/** The pinned Bun from npm, for runs under Bun (`bun main.ts`). */
export const BUN = join(ROOT, "node_modules", ".bin", "bun");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Working directory. @default the repository root */
  cwd?: string;
  /** Variables to remove from the environment main.ts inherits. */
  unset?: string[];
  main?: string;
  args?: string[];
  /** Run under Deno (`deno run -A main.ts`) or Bun (`bun main.ts`). @default "deno" */
  runtime?: "deno" | "bun";
}

/** A data folder, a state store and a fresh 3-partition topic, for one test. */
export async function pipeline(name: string, configs: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), `statecast-e2e-${name}-`));
  const data = join(dir, "data");
  await mkdir(data);
  const topic = `e2e-${name}-${crypto.randomUUID().slice(0, 8)}`;
  await createTopic(topic, 3, { configs });
  const seen = new Set<string>();
  const command = (options: RunOptions, stdout: "piped" | "null") => {
    const main = [options.main ?? join(ROOT, "main.ts"), ...(options.args ?? [])];
    const [cmd, args] = options.runtime === "bun"
      ? [BUN, main]
      : [Deno.execPath(), ["run", "-A", ...main]];
    return new Deno.Command(cmd, {
      args,
      cwd: options.cwd ?? ROOT,
      clearEnv: true,
      env: withoutKeys({
        ...Deno.env.toObject(),
        KAFKA_BOOTSTRAP_SERVERS: BROKERS,
        KAFKA_TOPIC: topic,
        DATA_DIR: data,
        STATECAST_STATE: `file:${join(dir, "state.db")}`,
        NO_COLOR: "1",
        ...options.env,
      }, options.unset ?? []),
      stdin: "null",
      stdout,
      stderr: "piped",
    });
  };
  const p = {
    dir,
    data,
    topic,
    /** Runs `main` (default main.ts) once, as a user would, under Deno or Bun. */
    async run(options: RunOptions = {}): Promise<Run> {
      const out = await command(options, "piped").output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    },
    /** Starts `main` (default main.ts) without waiting for it; stdout is dropped, stderr piped. */
    spawn: (options: RunOptions = {}): Deno.ChildProcess => command(options, "null").spawn(),
    /** Runs main.ts and expects success. */
    async ok(options: RunOptions = {}): Promise<Run> {
      const r = await p.run(options);
      assert.equal(r.code, 0, `main.ts failed:\n${r.stderr}`);
      return r;
    },
    write: (path: string, text: string) => writeFile(join(data, path), text),
    /** Every message on the topic so far. */
    all: (): Promise<ReadbackMessage[]> => readTopic(topic, { brokers: BROKERS }),
    /** The messages that landed since the last call, as "key=value" / "key=null", sorted. */
    async fresh(): Promise<string[]> {
      const all = await readTopic(topic, { brokers: BROKERS });
      const landed = all.filter((m) => !seen.has(`${m.partition}:${m.offset}`));
      for (const m of landed) seen.add(`${m.partition}:${m.offset}`);
      return landed.map(show).sort();
    },
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  };
  return p;
}

/** What {@linkcode pipeline} returns. */
export type Pipeline = Awaited<ReturnType<typeof pipeline>>;

function show(m: ReadbackMessage): string {
  return `${m.key}=${m.value === null ? "null" : m.value}`;
}

function withoutKeys(env: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !keys.includes(k)));
}
