// A running `main.ts --live` (under Deno or Bun) with its own data folder, state store and
// topic, for the live end-to-end tests. What lands on the topic is read back with kcat.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTopic, type ReadbackMessage, readTopic } from "./_kafka_readback.ts";

export type { ReadbackMessage };

const ROOT = new URL("..", import.meta.url).pathname;
export const BROKERS = Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") ?? "127.0.0.1:9092";
const BUN = join(ROOT, "node_modules", ".bin", "bun");
/** Generous bounds: these tests check *what* lands, the benchmark measures how fast. */
export const WAIT_MS = 20_000;
/** After the expected messages arrived, how long nothing else may arrive. */
const SETTLE_MS = 1_500;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const show = (m: ReadbackMessage) => `${m.key}=${m.value ?? "null"}`;
export const row = (json: Record<string, string>) => JSON.stringify(json);

/** A running `main.ts --live` and its folder, state and topic. */
export class LiveJob implements AsyncDisposable {
  readonly seen = new Set<string>();
  child: Deno.ChildProcess | undefined;
  log = "";
  #reading: Promise<void> | undefined;

  constructor(readonly dir: string, readonly topic: string, readonly runtime: "deno" | "bun") {}

  static async create(name: string, runtime: "deno" | "bun" = "deno"): Promise<LiveJob> {
    const dir = await mkdtemp(join(tmpdir(), `statecast-live-${name}-`));
    await mkdir(join(dir, "data"));
    const topic = `live-${name}-${crypto.randomUUID().slice(0, 8)}`;
    await createTopic(topic, 3);
    return new LiveJob(dir, topic, runtime);
  }

  get data(): string {
    return join(this.dir, "data");
  }

  /**
   * Starts the live process and waits until it watches; `main` replaces main.ts, `args` and `env`
   * are added.
   */
  async start(
    options: { main?: string; args?: string[]; env?: Record<string, string> } = {},
  ): Promise<void> {
    const main = [options.main ?? "main.ts", "--live", ...options.args ?? []];
    const [cmd, args] = this.runtime === "deno"
      ? [Deno.execPath(), ["run", "-A", ...main]]
      : [BUN, main];
    this.log = "";
    this.child = new Deno.Command(cmd, {
      args,
      cwd: ROOT,
      env: {
        KAFKA_BOOTSTRAP_SERVERS: BROKERS,
        KAFKA_TOPIC: this.topic,
        DATA_DIR: this.data,
        STATECAST_STATE: `file:${join(this.dir, "state.db")}`,
        NO_COLOR: "1",
        ...options.env,
      },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const decoder = new TextDecoder();
    this.#reading = (async () => {
      for await (const chunk of this.child!.stderr) this.log += decoder.decode(chunk);
    })();
    await this.waitForLog(/watching "/);
  }

  async waitForLog(pattern: RegExp, timeoutMs = WAIT_MS): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!pattern.test(this.log)) {
      if (Date.now() > until) {
        throw new Error(`timed out waiting for ${pattern} in the log:\n${this.log}`);
      }
      await sleep(50);
    }
  }

  /** Sends SIGINT (or SIGTERM) and waits for the exit code. */
  async stop(signal: Deno.Signal = "SIGINT"): Promise<number> {
    const child = this.child!;
    this.child = undefined;
    child.kill(signal);
    const { code } = await child.status;
    await this.#reading;
    return code;
  }

  write(path: string, text: string): Promise<void> {
    return writeFile(join(this.data, path), text);
  }

  /**
   * Waits until at least `count` new messages landed, then for SETTLE_MS more, and returns all
   * new ones as sorted "key=value" strings.
   */
  async landed(count: number): Promise<string[]> {
    const until = Date.now() + WAIT_MS;
    let fresh: ReadbackMessage[] = [];
    for (;;) {
      fresh = (await readTopic(this.topic, { brokers: BROKERS }))
        .filter((m) => !this.seen.has(`${m.partition}:${m.offset}`));
      if (fresh.length >= count) break;
      if (Date.now() > until) break;
      await sleep(200);
    }
    await sleep(SETTLE_MS);
    fresh = (await readTopic(this.topic, { brokers: BROKERS }))
      .filter((m) => !this.seen.has(`${m.partition}:${m.offset}`));
    for (const m of fresh) this.seen.add(`${m.partition}:${m.offset}`);
    return fresh.map(show).sort();
  }

  /** Every message on the topic, read back with kcat. */
  messages(): Promise<ReadbackMessage[]> {
    return readTopic(this.topic, { brokers: BROKERS });
  }

  /**
   * Waits until the topic's compacted view equals `expected` and returns how long that took;
   * throws after `timeoutMs`, showing the difference.
   */
  async converges(expected: Map<string, string>, timeoutMs: number): Promise<number> {
    const started = Date.now();
    let table = new Map<string, string>();
    while (Date.now() - started < timeoutMs) {
      table = await this.table();
      if (sameTable(table, expected)) return Date.now() - started;
      await sleep(100);
    }
    const diff = [...new Set([...table.keys(), ...expected.keys()])].sort()
      .filter((k) => table.get(k) !== expected.get(k))
      .map((k) =>
        `${k}: topic ${table.get(k) ?? "(none)"}, expected ${expected.get(k) ?? "(none)"}`
      );
    throw new Error(
      `the topic did not converge in ${timeoutMs} ms:\n${diff.join("\n")}\n${this.log}`,
    );
  }

  /** The topic as a compacted table: key → last value (tombstoned keys are absent). */
  async table(): Promise<Map<string, string>> {
    const table = new Map<string, string>();
    for (const m of await readTopic(this.topic, { brokers: BROKERS })) {
      if (m.value === null) table.delete(m.key!);
      else table.set(m.key!, m.value);
    }
    return table;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.child !== undefined) await this.stop("SIGKILL");
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** What a compacted topic should hold for these CSV rows (first column is the key). */
export function expectedTable(csv: string): Map<string, string> {
  const [header, ...lines] = csv.trim().split("\n").map((l) => l.split(","));
  return new Map(
    lines.map((
      f,
    ) => [f[0]!, JSON.stringify(Object.fromEntries(header!.map((h, i) => [h, f[i]!])))]),
  );
}

function sameTable(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}
