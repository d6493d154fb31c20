/**
 * Everything that differs between Deno and Bun, in one place. The rest of statecast uses `node:`
 * modules, which both runtimes provide.
 *
 * @module
 */
import { relative as relativePath } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";

declare const Bun: { version: string; main: string; gc(force: boolean): void } | undefined;

/** Which runtime runs us, and its version. */
export function runtimeName(): string {
  if (typeof Deno !== "undefined") return `deno ${Deno.version.deno}`;
  if (typeof Bun !== "undefined") return `bun ${Bun.version}`;
  return `node ${process.version}`;
}

/**
 * The V8 flags Deno runs a job with unless `STATECAST_V8_FLAGS` says otherwise
 * ({@linkcode restartWithV8Flags}): a young generation of 4 MiB semi-spaces, which the collections
 * the memory bound asks for no longer shrink and regrow, and an old generation of at most 1,900
 * MiB. V8 scales how far the old generation may grow past what it held after a collection by that
 * maximum: up to 4 times with 2 GiB or more, at most 1.94 times at 1,900 MiB. So V8 collects it
 * itself, incrementally and mostly on another thread, before the memory bound's compacting
 * collections on the main thread (two per call) are needed. `--heap-growing-percent=75` did the
 * same, but V8 checks that flag against its code cache: a run started without it and restarted
 * with it compiled every module twice, 150-200 ms of every run (README: Memory or speed).
 */
export const DEFAULT_V8_FLAGS = "--max-semi-space-size=4,--max-old-space-size=1900";

/**
 * The working directory, `DENO_V8_FLAGS` and command line as they were when this module was
 * loaded: before a job's own code ran (it may change directory before `cli()`, or set
 * `process.title`, which Deno writes over the command line in /proc/self/cmdline) and before
 * `cli()` read a `.env` file (V8 never sees a `DENO_V8_FLAGS` set there; Deno's own `--env-file`
 * it does see, as that is read before V8 starts). `undefined`: not set, outside Deno or off
 * Linux; `null`: no permission to read.
 */
const AT_START = {
  cwd: atStart(() => Deno!.cwd()),
  v8Flags: atStart(() => Deno!.env.get("DENO_V8_FLAGS")),
  cmdline: procStrings("cmdline"),
};
function atStart(read: () => string | undefined): string | undefined | null {
  if (typeof Deno === "undefined") return undefined;
  try {
    return read();
  } catch {
    return null;
  }
}

/**
 * The V8 flags this Deno process was started with: `DENO_V8_FLAGS`, then the `--v8-flags=` of its
 * command line (Linux: `/proc/self/cmdline`), in the order V8 reads them; `undefined` when it
 * cannot tell (not Deno, or no permission to read the command line).
 */
function startupV8Flags(): string[] | undefined {
  if (typeof Deno === "undefined" || AT_START.v8Flags === null) return undefined;
  const flags = AT_START.v8Flags?.split(",") ?? [];
  const line = commandLine();
  if (line === undefined) return undefined;
  for (const arg of line) {
    if (arg === "--") break;
    if (arg.startsWith("--v8-flags=")) flags.push(...arg.slice("--v8-flags=".length).split(","));
  }
  return flags;
}

/** This process's command line as the kernel started it (Linux), if it may be read. */
function commandLine(): string[] | undefined {
  const decoder = new TextDecoder();
  return AT_START.cmdline?.map((bytes) => decoder.decode(bytes));
}

/**
 * The strings of `/proc/self/cmdline` or `/proc/self/environ` (Linux), as bytes without their
 * terminating NUL: what the kernel started this process with, whatever it set or read since.
 */
function procStrings(name: "cmdline" | "environ"): Uint8Array[] | undefined {
  if (typeof Deno === "undefined" || Deno.build.os !== "linux") return undefined;
  const path = `/proc/self/${name}`;
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch {
    return undefined;
  }
  const strings: Uint8Array[] = [];
  for (let start = 0, end = bytes.indexOf(0); end !== -1; end = bytes.indexOf(0, start)) {
    strings.push(bytes.subarray(start, end));
    start = end + 1;
  }
  return strings;
}

/**
 * The heap size above which {@linkcode releaseMemory} collects garbage, by default: 88 MiB under
 * Deno, 84 when its young generation is held at 4 MiB semi-spaces by `v8Flags` (at 88 a first
 * publish of 1M rows peaked at 191-203 MB with them, at 84 184-195 MB, as fast); 72 under Bun,
 * which checks at chunk ends only (at 88 a first publish of 1M rows peaked at 235-253 MB instead
 * of 216-219).
 */
function defaultHeapMb(v8Flags: string[]): number {
  if (typeof Bun !== "undefined") return 72;
  let size: number | undefined; // the last one counts
  for (const flag of v8Flags) {
    const match = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(flag.trim());
    if (match) size = Number(match[1]);
  }
  return size !== undefined && size <= 4 ? 84 : 88;
}

/**
 * Under Deno on Linux, starts this process again in place (`execve`: the same process id,
 * command line, working directory, standard streams and environment, all as the process started,
 * so before a `.env` file was read) with `DENO_V8_FLAGS` set to `STATECAST_V8_FLAGS` (default
 * {@linkcode DEFAULT_V8_FLAGS}): V8 reads its flags only when it starts, and a script that sets
 * them later changes nothing. Measured: a first publish of 1M rows in 100 files 4.43 s instead of
 * 4.99 (one bench run; with the semi-space flag alone 4.72 s against 4.91, medians of 5); the
 * restart costs 60-70 ms (README: Running your own job).
 *
 * Returns without restarting when it has nothing to do or may not: under Bun or a compiled
 * binary, off Linux, when V8 flags were given (`DENO_V8_FLAGS`, `--v8-flags`), under a debugger
 * (`--inspect`), in anything but `deno run` (`deno test` calling `cli()`), when
 * `STATECAST_V8_FLAGS` is empty, or without the permissions it needs (`ffi`, reading
 * `/proc/self/cmdline`), or for a script it could not read again (a pipe, standard input). A
 * failed `execve` returns too: the job runs as it was started. What the script does before
 * `cli()` runs twice: once as started, once restarted.
 */
export function restartWithV8Flags(): void {
  try {
    const flags = restartFlags();
    if (flags === undefined) return;
    // The environment as the process started, not as it is now: variables a .env file set stay
    // out of the one the kernel shows for the process (/proc/PID/environ); the job reads the
    // file again. Deno's own --env-file is read again too.
    const encoder = new TextEncoder();
    const environment = procStrings("environ")!
      .filter((entry) => !startsWith(entry, encoder.encode("DENO_V8_FLAGS=")));
    const argv = AT_START.cmdline!;
    // The command line names the script and files relative to where the process started; a job
    // may have changed directory since (it does so again after the restart).
    const cwd = Deno!.cwd();
    if (typeof AT_START.cwd === "string" && AT_START.cwd !== cwd) Deno!.chdir(AT_START.cwd);
    try {
      execve(Deno!.execPath(), argv, [...environment, encoder.encode(`DENO_V8_FLAGS=${flags}`)]);
    } finally {
      Deno!.chdir(cwd);
    }
  } catch {
    // No permission to read the environment, a libc without execve: run as started.
  }
}

/** Whether `bytes` begins with `prefix`. */
function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);
}

/** The flags {@linkcode restartWithV8Flags} restarts with; `undefined` if it would not restart. */
function restartFlags(): string | undefined {
  const flags = process.env.STATECAST_V8_FLAGS ?? DEFAULT_V8_FLAGS;
  // V8 started with flags chosen, or it cannot be told (null).
  if (typeof Deno === "undefined" || flags === "" || AT_START.v8Flags !== undefined) {
    return undefined;
  }
  if (Deno.build.standalone) return undefined; // its flags were set when it was compiled
  const line = commandLine();
  if (line === undefined) return undefined;
  if (line.some((arg) => arg.startsWith("--v8-flags") || arg.startsWith("--inspect"))) {
    return undefined;
  }
  // `deno run ... main.ts` or `deno main.ts`, not `deno test` or `deno eval` calling cli(), nor
  // a script read from standard input (`deno run -`), which a restart could not read again.
  const first = line.slice(1).find((arg) => !arg.startsWith("-"));
  if (first !== "run" && !/\.[cm]?[jt]sx?$/.test(first ?? "")) return undefined;
  if (line.includes("-") || !readableAgain(Deno.mainModule)) return undefined;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
  // Set since the process started (a .env file): chosen, but V8 has not seen it; now it does.
  return process.env.DENO_V8_FLAGS || flags;
}

/**
 * Whether the script can be read again after a restart: a remote module, or a regular file, not
 * a pipe such as `deno run -A <(cat job.ts)` (`/dev/fd/63`, empty the second time: the job would
 * do nothing and exit 0) or standard input (`$deno$stdin.mts`, no such file).
 */
function readableAgain(mainModule: string): boolean {
  if (!mainModule.startsWith("file:")) return true;
  try {
    return Deno!.statSync(new URL(mainModule)).isFile;
  } catch {
    return false;
  }
}

/**
 * `execve(2)` through libc, the arguments and environment as bytes (no NUL); returns only if it
 * failed.
 */
function execve(path: string, argv: Uint8Array[], envp: Uint8Array[]): void {
  const keep: Uint8Array[] = []; // the strings, alive until the call
  const cString = (bytes: Uint8Array) => {
    const text = new Uint8Array(bytes.length + 1); // ends with a NUL
    text.set(bytes);
    keep.push(text);
    return text;
  };
  const pointers = (list: Uint8Array[]) => {
    const array = new BigUint64Array(list.length + 1); // ends with a null pointer
    list.forEach((bytes, i) => {
      array[i] = BigInt(Deno!.UnsafePointer.value(Deno!.UnsafePointer.of(cString(bytes))));
    });
    return array;
  };
  let libc;
  try {
    libc = Deno!.dlopen("libc.so.6", {
      execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
    });
  } catch {
    return; // not glibc: run as started
  }
  try {
    const file = cString(new TextEncoder().encode(path));
    libc.symbols.execve!(file, pointers(argv), pointers(envp));
  } finally {
    libc.close();
  }
}

/**
 * When this runtime checks the heap against `STATECAST_HEAP_MB`, and its default there, as
 * `--help` says it (Bun: chunk ends only, 72 MiB).
 */
export function heapCheckWords(): { when: string; defaultMb: number } {
  return {
    when: typeof Bun === "undefined"
      ? "between chunks and every 4,096 declared rows"
      : "between chunks",
    // As a run uses it: after the restart that `cli()` would do.
    defaultMb: defaultHeapMb([...startupV8Flags() ?? [], ...restartFlags()?.split(",") ?? []]),
  };
}

let collect: (() => void) | undefined | null;
let heapLimitBytes: number | undefined;

/**
 * `STATECAST_HEAP_MB`: the heap size in MiB above which a full garbage collection runs between
 * the chunks of a round and every 4,096 declared states (default 88, 84 when V8 started with 4 MiB
 * semi-spaces, Bun 72 and chunk ends only; 0: never, V8 and Bun collect on their own schedule). A
 * bad value is a `TypeError` that says what to write.
 */
export function heapLimitMb(): number {
  const text = process.env.STATECAST_HEAP_MB;
  // V8's flags as this process started: a run that restarted was started again with them.
  if (text === undefined || text === "") return defaultHeapMb(startupV8Flags() ?? []);
  const mb = Number(text);
  if (!Number.isFinite(mb) || mb < 0) {
    throw new TypeError(
      `STATECAST_HEAP_MB=${text}: write a size in MiB, e.g. STATECAST_HEAP_MB=256, or 0 for ` +
        "no collection between chunks",
    );
  }
  return mb;
}

/**
 * A full garbage collection, if the heap (with array buffers) has grown past
 * `STATECAST_HEAP_MB` (88 MiB). Called between the chunks of a round and every 4,096 states a
 * file declares: V8 otherwise lets its heap grow to several times what a chunk holds (a first
 * publish of 1M rows peaked at 340-370 MB instead of 190 MB). Checked at chunk ends only, the
 * heap overshot the threshold by up to 17 MB between two checks, so the threshold had to be low
 * (72 MiB: peaks of 186-208 MB); checked every 4,096 states too, 88 MiB peaks at 190-193 MB with
 * 24 calls instead of 33, 6.1 s instead of 7.0 (medians of 4, 1M rows in 100 files; 84:
 * 189-193 MB, 6.4 s; 92: 192-200 MB; README: Memory or speed). Each call of Deno's `gc()` is a
 * low-memory notification: two full, compacting collections, whatever its arguments. Bun has
 * `Bun.gc()`; V8 exposes `gc` only to a context made after `--expose-gc` is set, which Deno allows
 * at run time. Anywhere else this is a no-op.
 *
 * `at` says where the round is: at the end of a chunk, or among a file's declared states. Under
 * Bun only chunk ends check: its heap (JavaScriptCore's, measured its own way) stayed over the
 * threshold, so a check every 4,096 states collected every time (1M rows: 8.3 s instead of 5.7 s,
 * 238 MB instead of 219-229).
 */
export function releaseMemory(at: "chunk" | "declared" = "chunk"): void {
  if (at === "declared" && typeof Bun !== "undefined") return;
  if (collect === undefined) {
    collect = null;
    try {
      if (typeof Bun !== "undefined") collect = () => Bun!.gc(true);
      else {
        v8.setFlagsFromString("--expose-gc");
        const gc: unknown = vm.runInNewContext("gc");
        if (typeof gc === "function") collect = gc as () => void;
      }
    } catch {
      collect = null; // no way to ask: V8 collects on its own schedule
    }
  }
  heapLimitBytes ??= heapLimitMb() * 1024 * 1024;
  if (collect === null || heapLimitBytes === 0) return;
  const heap = v8.getHeapStatistics();
  if (heap.total_heap_size + heap.external_memory > heapLimitBytes) collect();
}

/** Whether stderr is a terminal (for progress bars). */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** Calls `handler` on SIGINT and SIGTERM; returns a function that removes it. */
export function onStopSignal(handler: (signal: "SIGINT" | "SIGTERM") => void): () => void {
  const onInt = () => handler("SIGINT");
  const onTerm = () => handler("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}

/** Ends the process. */
export function exit(code: number): never {
  process.exit(code);
}

/** The command-line arguments after the script. */
export function args(): string[] {
  return process.argv.slice(2);
}

/**
 * How the job was started, for `--help`: `deno run -A main.ts`, `bun main.ts` or the binary as it
 * was typed (`dist/orders`), with the script's path relative to the working directory.
 */
export function invocation(): string {
  const script = (path: string) => {
    const relative = relativePath(process.cwd(), path);
    return relative.startsWith("..") ? path : relative;
  };
  if (typeof Deno !== "undefined") {
    const main = Deno.mainModule.startsWith("file:") ? fileURLToPath(Deno.mainModule) : "main.ts";
    return `deno run -A ${script(main)}`;
  }
  if (typeof Bun !== "undefined") {
    // A compiled binary runs from Bun's embedded file system; argv0 is what was typed.
    if (Bun.main.startsWith("/$bunfs/")) return process.argv0;
    return `bun ${script(Bun.main)}`;
  }
  return `node ${script(process.argv[1] ?? "main.ts")}`;
}

/** One batch of file-system events: absolute paths, or a request to rescan everything. */
export interface WatchEvent {
  paths: string[];
  /** The runtime lost events (queue overflow) or could not say which path changed. */
  rescan: boolean;
}

interface DenoWatcher extends AsyncIterable<{ paths: string[]; flag?: string }> {
  close(): void;
}
declare const Deno: {
  version: { deno: string };
  mainModule: string;
  watchFs(paths: string, options: { recursive: boolean }): DenoWatcher;
  build: { os: string; standalone?: boolean };
  env: { get(name: string): string | undefined };
  permissions: { querySync(permission: { name: string; path?: string }): { state: string } };
  readFileSync(path: string): Uint8Array;
  statSync(path: URL): { isFile: boolean };
  execPath(): string;
  cwd(): string;
  chdir(directory: string): void;
  dlopen(path: string, symbols: Record<string, unknown>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
    close(): void;
  };
  UnsafePointer: { of(buffer: Uint8Array): unknown; value(pointer: unknown): number | bigint };
} | undefined;

/**
 * Watches the tree under `root` (recursively) until `signal` aborts: `Deno.watchFs` on Deno,
 * `node:fs` `watch(..., { recursive: true })` on Bun and Node. Directories are watched, not
 * single files, so editors that save by renaming a temp file over the original are seen.
 */
export async function* watchTree(root: string, signal: AbortSignal): AsyncGenerator<WatchEvent> {
  if (signal.aborted) return;
  if (typeof Deno !== "undefined") {
    const watcher = Deno.watchFs(root, { recursive: true });
    const close = () => {
      try {
        watcher.close();
      } catch { /* already closed */ }
    };
    signal.addEventListener("abort", close, { once: true });
    try {
      for await (const event of watcher) {
        yield { paths: event.paths, rescan: event.flag === "rescan" };
      }
    } finally {
      signal.removeEventListener("abort", close);
      close();
    }
    return;
  }
  const { watch } = await import("node:fs");
  const { join } = await import("node:path");
  const queue: WatchEvent[] = [];
  let wake: (() => void) | undefined;
  const push = (event: WatchEvent) => {
    queue.push(event);
    wake?.();
  };
  const watcher = watch(root, { recursive: true }, (_type, filename) => {
    push(
      filename == null
        ? { paths: [], rescan: true }
        : { paths: [join(root, String(filename))], rescan: false },
    );
  });
  watcher.on("error", () => push({ paths: [], rescan: true }));
  const stop = () => {
    watcher.close();
    wake?.();
  };
  signal.addEventListener("abort", stop, { once: true });
  try {
    while (!signal.aborted) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
        continue;
      }
      yield queue.shift()!;
    }
  } finally {
    signal.removeEventListener("abort", stop);
    watcher.close();
  }
}

// kafkajs 2.2.4 schedules a timer with a negative delay when it is not throttled (its request
// queue starts from `throttledUntil = -1`); the runtimes then use 1 ms and print a
// TimeoutNegativeWarning on every run. Deno prints it through process.emitWarning, so that one
// warning is dropped there. Bun (and so the binary) prints it natively, so under Bun the cause
// is removed: a negative delay is given as the 1 ms the runtime would use. Nothing else changes.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const type = typeof rest[0] === "string"
    ? rest[0]
    : (rest[0] as { type?: string } | undefined)?.type ??
      (warning instanceof Error ? warning.name : undefined);
  if (type === "TimeoutNegativeWarning") return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
if (typeof Bun !== "undefined") {
  const setTimeoutAsGiven = globalThis.setTimeout;
  const clamped = (handler: unknown, delay?: unknown, ...rest: unknown[]) =>
    (setTimeoutAsGiven as unknown as (...args: unknown[]) => unknown)(
      handler,
      typeof delay === "number" && delay < 0 ? 1 : delay,
      ...rest,
    );
  // Keep what hangs off the original (util.promisify.custom).
  for (const key of Reflect.ownKeys(setTimeoutAsGiven)) {
    if (key === "length" || key === "name" || key === "prototype") continue;
    Object.defineProperty(clamped, key, Object.getOwnPropertyDescriptor(setTimeoutAsGiven, key)!);
  }
  globalThis.setTimeout = clamped as unknown as typeof setTimeout;
}
