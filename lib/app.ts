/**
 * The app: a name (its namespace in the state store), a lifespan that provides resources, a main
 * function that mounts targets and sources, and a command line.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  args as runtimeArgs,
  DEFAULT_V8_FLAGS,
  exit,
  heapCheckWords,
  heapLimitMb,
  invocation,
  onStopSignal,
  releaseMemory,
  restartWithV8Flags,
  stderrIsTerminal,
} from "./_runtime.ts";
import { loadEnvFile } from "./_env_file.ts";
import { Context, withMountScope } from "./context.ts";
import {
  type ComponentFn,
  Engine,
  type OnDuplicateKey,
  type PlannedChange,
  type RoundSummary,
} from "./engine.ts";
import { keyId, showKey } from "./key_id.ts";
import { DEFAULT_MAX_DELETE_SHARE } from "./reconcile.ts";
import { errorMessage, redactSecrets, StatecastError } from "./errors.ts";
import { fingerprint, initFingerprints } from "./fingerprint.ts";
import type { DirSource, FileItem } from "./localfs.ts";
import { runLive } from "./live.ts";
import { serveMetrics } from "./metrics.ts";
import { failureReason, Monitor } from "./_monitor.ts";
import { counted, formatStatus, statusReport } from "./_status.ts";
import {
  askLine,
  deletesPerTarget,
  folderGlobs,
  rerunGlobs,
  rerunMatcher,
  stdinIsTerminal,
} from "./_repair.ts";
import { describeHolder, RunLock } from "./run_lock.ts";
import { type FileFailure, StateStore, stateUrlProblem } from "./state_store.ts";

/**
 * statecast's version.
 *
 * @example
 * ```ts
 * import { VERSION } from "./mod.ts";
 * if (!/^\d+\.\d+\.\d+$/.test(VERSION)) throw new Error(VERSION);
 * ```
 */
export const VERSION = "0.1.0";

/** Part of every logic fingerprint: bump when what components record changes meaning. */
const STATE_FORMAT = "statecast-state/1";

/** After a stop signal, the process exits within this long whatever is in flight. */
const STOP_DEADLINE_MS = 1800;

/** The default state store, relative to the working directory. */
export const DEFAULT_STATE_URL = "file:.statecast/state.db";

/**
 * Options of {@linkcode App}.
 *
 * @example
 * ```ts
 * import { App, type AppOptions } from "./mod.ts";
 * const options: AppOptions = {
 *   name: "orders", // the app's namespace in the state store
 *   maxDeleteShare: 0.2, // refuse a round that would delete more than 20% of a target's keys
 *   environment: { DATA_DIR: "the folder of CSV files (default ./data)" }, // for --help
 * };
 * if (new App(options).name !== "orders") throw new Error();
 * ```
 */
export interface AppOptions {
  /** The app's name: its namespace in the state store. Renaming it starts from scratch. */
  name: string;
  /**
   * The delete guard: a round that would delete more than this share of a target's keys (and
   * more than 20 keys), or any key because the source folder is empty, sends nothing, commits
   * nothing and fails, unless run with `--allow-deletes`. 1 turns the share check off.
   * @default 0.5
   */
  maxDeleteShare?: number;
  /**
   * The environment variables the job reads, name → what it means (with its default), for
   * `--help`; statecast adds its own (`STATECAST_STATE`).
   * @default {}
   */
  environment?: Record<string, string>;
}

/**
 * Options of {@linkcode App.fn}.
 *
 * @example
 * ```ts
 * import { App, type FnOptions } from "./mod.ts";
 * // Skip unchanged files; keep the last of two rows with one key; "2": run every file again.
 * const options: FnOptions = { memo: true, onDuplicateKey: "last", version: "2" };
 * const fn = new App({ name: "example" }).fn(options, () => {});
 * if (!fn.memo || fn.onDuplicateKey !== "last") throw new Error();
 * ```
 */
export interface FnOptions {
  /**
   * Skip a file whose size and mtime (or, failing that, content) and the function are
   * unchanged since the last committed run. @default false
   */
  memo?: boolean;
  /** Bump to re-run every file even though the function's source did not change. @default "" */
  version?: string;
  /** A key declared twice in one file: fail the file ("error") or keep the last. @default "error" */
  onDuplicateKey?: OnDuplicateKey;
}

/**
 * A processing function registered with {@linkcode App.fn}, to pass to {@linkcode App.mountEach}.
 *
 * @example
 * ```ts
 * import { App, type AppFn, kafka } from "./mod.ts";
 * const app = new App({ name: "example" });
 * const processCsv: AppFn<[kafka.TopicTarget]> = app.fn({ memo: true }, async (file, topic) => {
 *   for await (const row of file.csvRows()) {
 *     topic.declareTargetState({ key: row.values[0]!, value: row.toJsonText() });
 *   }
 * });
 * if (!processCsv.logic.includes("row.toJsonText()")) throw new Error();
 * ```
 */
export interface AppFn<A extends unknown[]> {
  /** The function: called once per file with the file and the arguments of `mountEach()`. */
  readonly run: (file: FileItem, ...args: A) => Promise<void> | void;
  /** See {@linkcode FnOptions.memo}. */
  readonly memo: boolean;
  /** What the logic fingerprint covers: statecast's state format, the version, the source. */
  readonly logic: string;
  /** See {@linkcode FnOptions.onDuplicateKey}. */
  readonly onDuplicateKey: OnDuplicateKey;
}

/**
 * Runs once at start-up with the app's context; may return its clean-up. A dry run does not run
 * it: the targets are mounted with stand-ins they never use, so a dry run connects to nothing.
 *
 * @example
 * ```ts
 * import { Context, ContextKey, type Lifespan } from "./mod.ts";
 * const CLOCK = new ContextKey<{ now(): number; stopped: boolean }>("clock");
 * const lifespan: Lifespan = (ctx) => {
 *   const clock = { now: () => Date.now(), stopped: false };
 *   ctx.provide(CLOCK, clock); // targets mounted in app.main() find it under CLOCK
 *   return () => { clock.stopped = true; }; // runs when the app stops
 * };
 * const ctx = new Context();
 * const cleanup = await lifespan(ctx);
 * if (typeof cleanup === "function") await cleanup();
 * if (!ctx.get(CLOCK).stopped) throw new Error();
 * ```
 */
export type Lifespan = (
  ctx: Context,
) => Promise<(() => unknown) | void> | (() => unknown) | void;

/**
 * Options of {@linkcode App.run}: what the command line's flags set (`--live`, `--dry-run`,
 * `--state`...).
 *
 * @example
 * ```ts
 * import type { RunOptions } from "./mod.ts";
 * const stop = new AbortController();
 * const options: RunOptions = {
 *   live: true,
 *   state: "file:.statecast/state.db",
 *   logFormat: "json",
 *   signal: stop.signal, // stop.abort() ends the live run
 * };
 * if (options.dryRun !== undefined) throw new Error();
 * ```
 */
export interface RunOptions {
  /** Keep watching after the catch-up run. @default false */
  live?: boolean;
  /**
   * Plan from the state store and print the changes: connect to no target (the lifespan does
   * not run), send nothing, write nothing (a missing store reads as empty and is not created).
   * Not with `live`. @default false
   */
  dryRun?: boolean;
  /** State store URL. @default env STATECAST_STATE, else "file:.statecast/state.db" */
  state?: string;
  /** Send deletes whatever their number (the delete guard is off for this run). @default false */
  allowDeletes?: boolean;
  /** Print only errors. @default false */
  quiet?: boolean;
  /** Log one line per change sent (target, kind, key). @default false */
  verbose?: boolean;
  /** Log lines as text or JSON objects. @default "text" */
  logFormat?: "text" | "json";
  /** Stops a live run. */
  signal?: AbortSignal;
  /**
   * Serve `/metrics` (Prometheus text format) and `/healthz` on this port while the run lasts;
   * 0 picks a free port. @default undefined (no server)
   */
  metricsPort?: number;
  /** The address the metrics server binds. @default "127.0.0.1" (this machine only) */
  metricsHost?: string;
  /** Called once the metrics server listens, with its port. */
  onMetricsServer?: (address: { hostname: string; port: number }) => void;
  /**
   * Globs of files (relative to the source root, matched like the source's include patterns)
   * whose current rows the catch-up round sends again: an upsert per key they own, whatever
   * their memo says; no delete for them. A glob that matches no file stops the run before
   * anything is sent (exit code 2). @default []
   */
  rerun?: string[];
}

/**
 * Options of {@linkcode App.drop}: what `drop`, `drop --dry-run` and `drop --yes` set.
 *
 * @example
 * ```ts
 * import type { DropOptions } from "./mod.ts";
 * const asked: string[] = [];
 * const options: DropOptions = {
 *   verbose: true,
 *   confirm: (what) => Promise.resolve(asked.push(what) > 0 && what.includes("delete")),
 * };
 * if (!await options.confirm!("delete 3 keys")) throw new Error();
 * ```
 */
export interface DropOptions {
  /** List what would be sent (deletes per target); send nothing, forget nothing. @default false */
  dryRun?: boolean;
  /** State store URL. @default env STATECAST_STATE, else "file:.statecast/state.db" */
  state?: string;
  /** Print only errors. @default false */
  quiet?: boolean;
  /** List every key (dry run) or log one line per delete sent. @default false */
  verbose?: boolean;
  /** Log lines as text or JSON objects. @default "text" */
  logFormat?: "text" | "json";
  /**
   * Asked once the targets are mounted and before anything is sent, with a sentence saying what
   * drop will do; it goes on only if this resolves to true. Not asked in a dry run.
   * @default undefined (not asked: the caller has confirmed, as `--yes` does)
   */
  confirm?: (what: string) => Promise<boolean>;
}

/**
 * What {@linkcode App.run} did.
 *
 * @example
 * ```ts
 * import type { RunResult } from "./mod.ts";
 * function sentSomething(result: RunResult): boolean {
 *   return result.summaries.some((round) => round.upserts + round.deletes > 0);
 * }
 * if (sentSomething({ exitCode: 0, summaries: [] })) throw new Error();
 * ```
 */
export interface RunResult {
  /** 0 when every file and every target succeeded, else 1. */
  exitCode: number;
  /** One summary per round: the catch-up round, then (with `live`) one per round of changes. */
  summaries: RoundSummary[];
}

interface Mount {
  fn: ComponentFn<FileItem>;
  source: DirSource;
}

/**
 * Logs to stderr as text or JSON lines, never showing a password or token of a URL (a state
 * store URL can reach a message from anywhere, libSQL's errors included); changes of a dry run
 * go to stdout.
 */
class Log {
  constructor(readonly quiet: boolean, readonly json: boolean) {}

  info(message: string, fields: Record<string, unknown> = {}): void {
    if (!this.quiet) this.#emit("info", message, fields);
  }

  error(message: string, fields: Record<string, unknown> = {}): void {
    this.#emit("error", message, fields);
  }

  warn(message: string, fields: Record<string, unknown> = {}): void {
    if (!this.quiet) this.#emit("warn", message, fields);
  }

  /** A JSON line carries `ts`, `level`, `msg` and the fields (`path`, `line` where known). */
  #emit(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown>): void {
    if (this.json) {
      print(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }));
    } else print(level === "info" ? msg : `${level === "warn" ? "warning" : "error"}: ${msg}`);
  }
}

/**
 * Keeps the store's list of failing files up to date for `status`: the failures of the paths a
 * round looked at are replaced by its own. A round whose target failed says nothing about files.
 * A store that cannot be written now is a warning: the next round writes it again.
 */
async function recordFailures(
  store: StateStore,
  app: string,
  summary: RoundSummary,
  looked: (path: string) => boolean,
  log: Log,
): Promise<void> {
  if (summary.applyError !== undefined) return;
  try {
    const forget = [...(await store.failures(app)).keys()].filter(looked);
    const failures = summary.failed.map(({ path, error, blockedBy }): FileFailure => {
      const line = error instanceof StatecastError ? error.line : undefined;
      return {
        path,
        reason: failureReason({ path, error, ...(blockedBy === undefined ? {} : { blockedBy }) }),
        message: redactSecrets(errorMessage(error)),
        ...(line === undefined ? {} : { line }),
        ...(blockedBy === undefined ? {} : { blockedBy }),
        atMs: Date.now(),
      };
    });
    if (forget.length + failures.length > 0) {
      await store.recordFailures(app, { forget, failures });
    }
  } catch (error) {
    log.warn(`could not record the failing files for status: ${errorMessage(error)}`);
  }
}

/** Where an error happened, when it says: `{ path, line }` for a log line's fields. */
function whereFields(error: unknown, path?: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const at = error instanceof StatecastError ? error : undefined;
  if ((path ?? at?.path) !== undefined) fields.path = path ?? at?.path;
  if (at?.line !== undefined) fields.line = at.line;
  return fields;
}

/** One line per change for `--verbose`: target, kind, key (never the value). */
function logChange(log: Log, change: PlannedChange): void {
  const key = showKey(keyId(change.key));
  log.info(`${change.kind} ${change.target} ${key}`, {
    target: change.target,
    kind: change.kind,
    key,
  });
}

/**
 * The round option of `--rerun`: `{ resend }` for the files the globs match, `{}` without globs,
 * or null (logged) when a glob matches no file.
 */
function rerunOption(
  globs: readonly string[],
  items: ReadonlyArray<{ path: string }>,
  root: string,
  log: Log,
): { resend?: (path: string) => boolean } | null {
  if (globs.length === 0) return {};
  const found = rerunMatcher(globs, items.map((item) => item.path));
  if ("unmatched" in found) {
    const folders = folderGlobs(found.unmatched, items.map((item) => item.path));
    const hint = folders.map((glob) => {
      const folder = glob.replace(/\/+$/, "");
      return `; "${folder}" is a folder: write "${folder}/**" for the files under it`;
    }).join("");
    log.error(
      `--rerun: no file under "${root}" matches ${
        found.unmatched.map((glob) => `"${glob}"`).join(", ")
      } (globs are relative to that folder)${hint}; nothing was sent`,
      { rerun: found.unmatched },
    );
    return null;
  }
  const count = items.filter((item) => found.matches(item.path)).length;
  const files = count === 1 ? "1 file" : `${count} files`;
  log.info(`--rerun: sending the rows of ${files} again`, { rerunFiles: count });
  return { resend: found.matches };
}

/** What drop is about to do, for its confirmation: the keys of each target, from the store. */
async function dropPreview(store: StateStore, app: string): Promise<string> {
  const keys = new Map<string, number>();
  for (const { target, keys: n } of await store.targets(app)) keys.set(target, n);
  for (const [target, n] of await store.retractingCounts(app)) {
    keys.set(target, (keys.get(target) ?? 0) + n);
  }
  const what = [...keys].filter(([, n]) => n > 0).map(([target, n]) => `${n} keys of "${target}"`);
  return `drop sends a delete for every key "${app}" published (` +
    `${what.length === 0 ? "none is known" : what.join(", ")}), then forgets its state`;
}

/** One line on stderr, secrets redacted. */
function print(line: string): void {
  console.error(redactSecrets(line));
}

function showData(data: unknown): string {
  if (typeof data === "string") return data;
  if (data instanceof Uint8Array) return `<${data.length} bytes>`;
  return JSON.stringify(data);
}

/**
 * What a round sent: its upserts and deletes, or "sent nothing" when a target failed before
 * anything of it was committed (the counts are of what was acknowledged and committed).
 */
function sent(summary: RoundSummary): string {
  if (summary.applyError !== undefined && summary.upserts === 0 && summary.deletes === 0) {
    return "sent nothing";
  }
  return `${summary.upserts} upserts, ${summary.deletes} deletes`;
}

/** Why a round was not committed in full, in parentheses; "" when it was. */
function outcomeNote(summary: RoundSummary): string {
  if (summary.applyError !== undefined) {
    return summary.upserts + summary.deletes === 0
      ? " (the target failed: nothing committed)"
      : " (the target failed: the rest was not committed)";
  }
  if (summary.refused !== undefined) return " (deletes held back)";
  return summary.committed ? "" : " (not committed)";
}

/**
 * One line per planned change, for `--dry-run`: kind, target, key, value, then the headers that
 * count in the fingerprint (`headers {...}`) and those that do not (`metaHeaders {...}`).
 */
function formatChange(change: PlannedChange): string {
  const key = showKey(keyId(change.key));
  if (change.kind === "delete") return `delete ${change.target} ${key}`;
  const state = change.state as Record<string, unknown> | undefined;
  let line = `upsert ${change.target} ${key} ${showData(state?.value)}`;
  for (const field of ["headers", "metaHeaders"]) {
    const headers = state?.[field];
    if (typeof headers !== "object" || headers === null) continue;
    const shown = Object.entries(headers).map(([name, value]) => [name, showData(value)]);
    line += ` ${field} ${JSON.stringify(Object.fromEntries(shown))}`;
  }
  return line;
}

/** A one-line progress bar on stderr (files run, then changes acknowledged), at most 10 Hz. */
function progressBar(
  enabled: boolean,
): ((phase: "files" | "changes", done: number, total: number) => void) | undefined {
  if (!enabled) return undefined;
  let last = 0;
  return (phase, done, total) => {
    const now = Date.now();
    if (done !== total && now - last < 100) return;
    last = now;
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    const what = phase === "files" ? "files read" : "messages acknowledged";
    process.stderr.write(
      `\r[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total} ${what}` +
        (done === total ? "\r\x1b[K" : ""),
    );
  };
}

/**
 * A statecast app: a name (its namespace in the state store), a lifespan that provides resources
 * (a Kafka producer), a main function that mounts targets and one source, and a command line
 * ({@linkcode App.cli}; {@linkcode App.run} from code). `main.ts` is the example to copy: it
 * sends every row of every CSV file to a topic. This one runs without a broker, with a target
 * that keeps its rows in memory (see {@linkcode Target}).
 *
 * @example
 * ```ts
 * import { mkdtemp, rm, writeFile } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { App, type Change, declare, fingerprint, keyId, localfs, mountTarget } from "./mod.ts";
 *
 * type Row = { key: string; value: string };
 * class MemoryTarget {
 *   readonly id = "memory:rows";
 *   readonly rows = new Map<string, string>();
 *   fingerprint = (state: Row) => fingerprint(state.value);
 *   declareTargetState = (state: Row) => declare(this, state);
 *   apply(changes: ReadonlyArray<Change<Row>>) {
 *     for (const c of changes) {
 *       if (c.kind === "upsert") this.rows.set(keyId(c.key), c.state.value);
 *       else this.rows.delete(keyId(c.key));
 *     }
 *     return Promise.resolve();
 *   }
 * }
 *
 * const dir = await mkdtemp(join(tmpdir(), "statecast-doc-"));
 * await writeFile(join(dir, "a.csv"), "sku,qty\nA1,3\nB2,5\n");
 * const app = new App({ name: "example" });
 * const processCsv = app.fn({ memo: true }, async (file, target: MemoryTarget) => {
 *   for await (const row of file.csvRows()) {
 *     target.declareTargetState({ key: row.get("sku")!, value: row.toJsonText() });
 *   }
 * });
 * let target: MemoryTarget | undefined;
 * app.main(async () => {
 *   target = mountTarget(() => new MemoryTarget());
 *   await app.mountEach(processCsv, localfs.walkDir(dir, { include: ["*.csv"] }), target);
 * });
 * const state = `file:${join(dir, "state.db")}`;
 * const first = await app.run({ state, quiet: true });
 * if (first.exitCode !== 0 || target!.rows.get("B2") !== '{"sku":"B2","qty":"5"}') {
 *   throw new Error();
 * }
 * const again = await app.run({ state, quiet: true }); // nothing changed: nothing is sent
 * if (again.summaries[0]!.upserts !== 0 || again.summaries[0]!.unchanged !== 1) throw new Error();
 * await rm(dir, { recursive: true });
 * ```
 */
export class App {
  /** The app's name, from {@linkcode AppOptions.name}. */
  readonly name: string;
  readonly #maxDeleteShare: number;
  readonly #environment: Record<string, string>;
  #lifespan: Lifespan | undefined;
  #main: (() => Promise<void> | void) | undefined;
  #mounts: Mount[] | undefined;

  /** An app named `options.name`; a `TypeError` without a name. */
  constructor(options: AppOptions) {
    if (typeof options?.name !== "string" || options.name.length === 0) {
      throw new TypeError('App needs a non-empty name: new App({ name: "CsvToKafka" })');
    }
    this.name = options.name;
    const share = options.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE;
    if (!(share >= 0)) {
      throw new RangeError(`maxDeleteShare must be a number from 0 to 1, got ${share}`);
    }
    this.#maxDeleteShare = share;
    this.#environment = { ...options.environment };
  }

  /** Sets the start-up function that provides resources; what it returns runs at shutdown. */
  lifespan(fn: Lifespan): void {
    this.#lifespan = fn;
  }

  /** Wraps a processing function: one call per file, declaring target states. */
  fn<const A extends unknown[]>(
    options: FnOptions,
    run: (file: FileItem, ...args: A) => Promise<void> | void,
  ): AppFn<A> {
    return {
      run,
      memo: options.memo ?? false,
      logic: `${STATE_FORMAT}\n${options.version ?? ""}\n${options.onDuplicateKey ?? "error"}\n` +
        run.toString(),
      onDuplicateKey: options.onDuplicateKey ?? "error",
    };
  }

  /** Sets the main function, which mounts targets and calls {@linkcode App.mountEach}. */
  main(fn: () => Promise<void> | void): void {
    this.#main = fn;
  }

  /**
   * Runs `fn` for every item of `source` (one component per file, keyed by its relative path),
   * passing `args` after the item. Call it once, inside `app.main()`. Arguments that are plain
   * values (strings, numbers, booleans: a delimiter from the environment) count in the logic
   * fingerprint like the function's source, so changing one runs every file again.
   */
  mountEach<const A extends unknown[]>(fn: AppFn<A>, source: DirSource, ...args: A): Promise<void> {
    if (this.#mounts === undefined) {
      throw new TypeError("app.mountEach() must be called inside the function given to app.main()");
    }
    if (this.#mounts.length > 0) {
      throw new TypeError(
        "app.mountEach() was called twice: one App processes one source; use a second App (another name) for another",
      );
    }
    this.#mounts.push({
      source,
      fn: {
        run: async (item: FileItem) => {
          await fn.run(item, ...args);
        },
        memo: fn.memo,
        logicFingerprint: fingerprint(fn.logic + valuesOf(args)),
        onDuplicateKey: fn.onDuplicateKey,
      },
    });
    return Promise.resolve();
  }

  /** Runs the app: a catch-up round, then (with `live`) rounds on every change. */
  async run(options: RunOptions = {}): Promise<RunResult> {
    if (this.#main === undefined) throw new TypeError("app.main() was never called");
    if (options.live && options.dryRun) throw new TypeError(LIVE_DRY_RUN);
    heapLimitMb(); // a bad STATECAST_HEAP_MB says so now, not between the first chunks
    const log = new Log(options.quiet ?? false, options.logFormat === "json");
    await initFingerprints();
    const url = options.state ?? (process.env.STATECAST_STATE || DEFAULT_STATE_URL);
    await using store = await StateStore.open(url, { readOnly: options.dryRun ?? false });
    let running: Engine | undefined; // for the metrics, once made
    const monitor = options.metricsPort === undefined ? undefined : new Monitor({
      files: () => running?.componentCount() ?? 0,
      inDoubt: () => running?.inDoubtCount() ?? 0,
      keys: () => store.targets(this.name),
    });
    await using _server = await this.#serveMetrics(monitor, options, log);
    // One writer per store and app; a dry run only reads.
    await using _lock = options.dryRun ? undefined : await RunLock.acquire(store, this.name, {
      onLost: () => {
        monitor?.lockLost();
        log.error("the state store's lock was taken over by another run");
      },
    });
    const context = new Context({ dryRun: options.dryRun ?? false });
    const cleanup = options.dryRun ? undefined : await this.#lifespan?.(context);
    const result: RunResult = { exitCode: 0, summaries: [] };
    try {
      const { engine, mount } = await this.#mountAll(store, context);
      running = engine;
      for (const target of await engine.load()) {
        log.warn(
          `the state store has keys of "${target}", which is no longer mounted: they are ` +
            "forgotten once this run got through (nothing is sent to it), and every file runs " +
            "again for the mounted targets",
        );
      }
      const scanStarted = performance.now();
      const { items, unreadable } = await mount.source.scanTree();
      for (const warning of mount.source.takeWarnings()) log.warn(warning);
      const maxDeleteShare = options.allowDeletes ? Infinity : this.#maxDeleteShare;
      const resend = rerunOption(options.rerun ?? [], items, mount.source.root, log);
      if (resend === null) return { exitCode: 2, summaries: [] };
      const summary = await engine.round(mount.fn, items, {
        ...resend,
        fullScan: true,
        unreadable,
        onChunk: releaseMemory,
        onDeclared: () => releaseMemory("declared"),
        maxDeleteShare,
        dryRun: options.dryRun ?? false,
        keepChanges: (options.dryRun || options.verbose) ?? false,
        onProgress: progressBar(!options.quiet && stderrIsTerminal()),
      });
      // The summary's time includes the scan (with many small files, most of the time).
      summary.elapsedMs = performance.now() - scanStarted;
      result.summaries.push(summary);
      monitor?.round(summary);
      if (!options.dryRun) await recordFailures(store, this.name, summary, () => true, log);
      if (!this.#report(summary, log, options)) result.exitCode = 1;
      if (options.live && !mount.source.live) {
        log.warn(
          `--live: the source "${mount.source.root}" was made with live: false; not watching`,
        );
      }
      if (options.live && mount.source.live && !options.dryRun && !options.signal?.aborted) {
        options.signal?.addEventListener("abort", () => monitor?.stopping(), { once: true });
        await runLive(engine, mount.fn, mount.source, {
          onError: (error) => {
            monitor?.roundError(error);
            log.error(`live round failed, retrying: ${errorMessage(error)}`);
          },
          onWarning: (message) => log.warn(message),
          onEvents: (count) => monitor?.events(count),
          onRetry: () => monitor?.retry(),
          onWatching: (watching, reason) => monitor?.watching(watching, reason),
          signal: options.signal ?? new AbortController().signal,
          maxDeleteShare,
          keepChanges: options.verbose ?? false,
          onReady: () => log.info(`${this.name}: watching "${mount.source.root}" (Ctrl-C to stop)`),
          onRound: async (summary, changed, looked) => {
            for (const warning of mount.source.takeWarnings()) log.warn(warning);
            monitor?.round(summary, looked);
            await recordFailures(store, this.name, summary, looked, log);
            result.summaries.push(summary);
            this.#reportLive(summary, changed, log);
          },
        });
      }
    } finally {
      this.#mounts = undefined;
      if (typeof cleanup === "function") await cleanup();
    }
    if (options.live && options.signal?.aborted) this.#reportStop(result, options.signal, log);
    return result;
  }

  /**
   * Takes the app down: sends a delete (a tombstone, or the target's deletion value; a table
   * target DELETEs the row) for every key the app published to each mounted target, then forgets
   * the app's state, as `--reset` does. The delete guard does not apply. With `dryRun`, lists the
   * deletes per target and changes nothing. When a send fails, what was not retracted stays in
   * the state store, so drop can be run again. Returns the exit code: 0 done, 1 failed or not
   * confirmed.
   */
  async drop(options: DropOptions = {}): Promise<number> {
    heapLimitMb(); // as in run(): a bad STATECAST_HEAP_MB stops it before it commits anything
    const log = new Log(options.quiet ?? false, options.logFormat === "json");
    const dryRun = options.dryRun ?? false;
    await initFingerprints();
    const url = options.state ?? (process.env.STATECAST_STATE || DEFAULT_STATE_URL);
    // A dry run, as elsewhere: the store read only, no lifespan (targets mount on stand-ins).
    await using store = await StateStore.open(url, { readOnly: dryRun });
    await using _lock = dryRun ? undefined : await RunLock.acquire(store, this.name);
    const context = new Context({ dryRun });
    const cleanup = dryRun ? undefined : await this.#lifespan?.(context);
    try {
      const { engine, mount } = await this.#mountAll(store, context);
      for (const target of await engine.load()) {
        log.warn(
          `the state store has keys of "${target}", which is not mounted: nothing can be sent ` +
            "to it" + (dryRun ? "" : "; its keys are forgotten with the rest"),
        );
      }
      if (!dryRun && options.confirm !== undefined) {
        if (!await options.confirm(await dropPreview(store, this.name))) {
          log.error(`${this.name}: drop not confirmed: nothing was sent or forgotten`);
          return 1;
        }
      }
      const summary = await engine.round(mount.fn, [], {
        removed: engine.knownComponents(),
        maxDeleteShare: Infinity, // drop is the explicit "delete everything"
        dryRun,
        keepChanges: true,
        onChunk: releaseMemory,
      });
      const ok = summary.applyError === undefined && summary.failed.length === 0;
      if (ok && !dryRun) await store.reset(this.name);
      this.#reportDrop(summary, log, options);
      return ok ? 0 : 1;
    } finally {
      this.#mounts = undefined;
      if (typeof cleanup === "function") await cleanup();
    }
  }

  /** What drop sent (or, dry, would send), per target, and whether the state was forgotten. */
  #reportDrop(summary: RoundSummary, log: Log, options: DropOptions): void {
    const dryRun = options.dryRun ?? false;
    for (const change of summary.changes) {
      if (dryRun) {
        if (options.verbose) console.log(formatChange(change));
      } else if (options.verbose) logChange(log, change);
    }
    const perTarget = deletesPerTarget(summary.changes);
    for (const [target, deletes] of perTarget) {
      const line = `${target}: ${deletes} deletes${dryRun ? " would be sent" : " sent"}`;
      if (dryRun) console.log(line);
      else log.info(`${this.name}: drop: ${line}`, { app: this.name, target, deletes });
    }
    const fields = { app: this.name, deletes: summary.deletes, dryRun };
    if (summary.applyError !== undefined) {
      log.error(
        `${this.name}: drop failed after ${summary.deletes} deletes: ` +
          `${errorMessage(summary.applyError)}; the state of what was not retracted is kept: ` +
          "run drop again",
        fields,
      );
    } else if (dryRun) {
      log.info(
        `${this.name}: drop (dry run): ${summary.deletes} deletes would be sent; nothing sent, ` +
          "nothing forgotten",
        fields,
      );
    } else {
      log.info(
        `${this.name}: dropped: ${summary.deletes} deletes sent, state forgotten; the next run ` +
          "publishes every row again",
        fields,
      );
    }
  }

  /** Runs the main function: the engine with the targets it mounted, and its one mount. */
  async #mountAll(store: StateStore, context: Context): Promise<{ engine: Engine; mount: Mount }> {
    const main = this.#main;
    if (main === undefined) throw new TypeError("app.main() was never called");
    const engine = new Engine(store, this.name);
    this.#mounts = [];
    await withMountScope(
      { context, mountTarget: (t) => engine.addTarget(t) },
      async () => await main(),
    );
    const mount = this.#mounts[0];
    if (mount === undefined) throw new TypeError("app.main() did not call app.mountEach()");
    return { engine, mount };
  }

  /** The last line of a live run that was asked to stop: what it did since it started. */
  #reportStop(result: RunResult, signal: AbortSignal, log: Log): void {
    const why = typeof signal.reason === "string" ? signal.reason : "asked to stop";
    let upserts = 0, deletes = 0;
    for (const s of result.summaries) {
      upserts += s.upserts;
      deletes += s.deletes;
    }
    log.info(
      `${this.name}: stopped (${why}) after ${result.summaries.length} rounds: ${upserts} ` +
        `upserts, ${deletes} deletes since the start; nothing is in flight`,
      { app: this.name, stopped: why, rounds: result.summaries.length, upserts, deletes },
    );
  }

  /** Starts the metrics server when asked to (`metricsPort`); undefined otherwise. */
  async #serveMetrics(monitor: Monitor | undefined, options: RunOptions, log: Log) {
    if (monitor === undefined || options.metricsPort === undefined) return undefined;
    const server = await serveMetrics({
      port: options.metricsPort,
      ...(options.metricsHost === undefined ? {} : { hostname: options.metricsHost }),
      registry: monitor.registry,
      health: () => monitor.health(),
    });
    log.info(
      `${this.name}: metrics on http://${server.hostname}:${server.port}/metrics and /healthz`,
      { port: server.port, hostname: server.hostname },
    );
    options.onMetricsServer?.({ hostname: server.hostname, port: server.port });
    return server;
  }

  /** Logs a round; false when something failed. */
  #report(summary: RoundSummary, log: Log, options: RunOptions): boolean {
    const dryRun = options.dryRun ?? false;
    for (const change of summary.changes) {
      if (dryRun) console.log(formatChange(change));
      else logChange(log, change);
    }
    this.#reportProblems(summary, log, "nothing was committed");
    const seconds = (summary.elapsedMs / 1000).toFixed(2);
    const files = summary.scanned - summary.gone;
    const line = `${files} files scanned, ${summary.unchanged} unchanged, ` +
      `${summary.failed.length} failed${summary.gone > 0 ? `, ${summary.gone} gone` : ""}; ` +
      `${sent(summary)}, ${summary.unchangedKeys} unchanged rows; ${seconds} s` +
      (dryRun ? " (dry run: nothing sent)" : outcomeNote(summary));
    log.info(`${this.name}: ${line}`, {
      app: this.name,
      files,
      goneFiles: summary.gone,
      unchangedFiles: summary.unchanged,
      failedFiles: summary.failed.length,
      upserts: summary.upserts,
      deletes: summary.deletes,
      unchangedRows: summary.unchangedKeys,
      ms: Math.round(summary.elapsedMs),
      committed: summary.committed,
      dryRun,
    });
    return summary.failed.length === 0 && summary.applyError === undefined &&
      summary.refused === undefined;
  }

  /** A round's conflicts (warnings), failed files (naming each) and target failure. */
  #reportProblems(summary: RoundSummary, log: Log, notCommitted: string): void {
    for (const conflict of summary.conflicts) log.warn(conflict);
    for (const { path, error } of summary.failed) {
      const message = errorMessage(error);
      log.error(
        message.includes(`"${path}"`) ? message : `"${path}": ${message}`,
        whereFields(error, path),
      );
    }
    for (const { path, reason } of summary.held) log.warn(`"${path}": ${reason}`, { path });
    for (const { path, message } of summary.warnings) log.warn(`"${path}": ${message}`, { path });
    if (summary.applyError !== undefined) {
      log.error(`${notCommitted}: ${errorMessage(summary.applyError)}`);
    }
    const refused = summary.refused;
    if (refused !== undefined) {
      const what = summary.upserts > 0
        ? `no delete was sent (the ${summary.upserts} upserts were)`
        : summary.scanned === summary.gone
        ? "nothing was sent or committed"
        : "nothing was sent";
      log.error(
        `refused to delete ${refused.deletes} of the ${refused.keys} keys of ` +
          `"${refused.target}": ${refused.reason}; ${what}. If the ` +
          "deletes are meant, run again with --allow-deletes (or raise the app's maxDeleteShare)",
        { target: refused.target, deletes: refused.deletes, keys: refused.keys },
      );
    }
  }

  /** One log line per live round (and one per change with `--verbose`), plus its problems. */
  #reportLive(summary: RoundSummary, changed: number, log: Log): void {
    for (const change of summary.changes) logChange(log, change);
    this.#reportProblems(summary, log, "nothing was committed, retrying");
    const ms = Math.round(summary.elapsedMs);
    log.info(
      `${this.name}: live: ${changed} files changed, ${sent(summary)}, ${ms} ms` +
        outcomeNote(summary),
      {
        app: this.name,
        live: true,
        changedFiles: changed,
        failedFiles: summary.failed.length,
        upserts: summary.upserts,
        deletes: summary.deletes,
        ms,
        committed: summary.committed,
      },
    );
  }

  /**
   * Prints what the state store holds for this app: per target, keys and files; per file (all of
   * them when `paths` names files or folders), keys, last run, memo and why it fails or waits.
   * `json` prints the {@linkcode StatusReport} as one JSON object. Returns 1 when `paths` match
   * no file, else 0.
   */
  async status(url: string, options: { paths?: string[]; json?: boolean } = {}): Promise<number> {
    // In a folder without a store (the wrong one, often), status makes none.
    await using store = await StateStore.open(url, { create: false });
    const paths = options.paths ?? [];
    const report = await statusReport(store, this.name, paths);
    const holder = await store.lockHolder(this.name);
    if (options.json) console.log(JSON.stringify(report, null, 2));
    else {
      const text = formatStatus(report, {
        detailed: paths.length > 0,
        ...(holder === undefined ? {} : { holder: describeHolder(holder) }),
      });
      for (const line of text) console.log(line);
    }
    if (paths.length > 0 && report.files.length === 0) {
      const known = [...(await store.loadComponents(this.name)).keys()].sort()[0];
      print(
        `error: no file of the state store matches ${paths.map((p) => `"${p}"`).join(", ")}` +
          (known === undefined
            ? ""
            : `; it names files by their path under the source folder, as "${known}"`),
      );
      return 1;
    }
    return 0;
  }

  /**
   * `--reset --dry-run`: prints what `--reset` would forget (per target, its keys; then the
   * files), reading the store only; forgets nothing. Returns the exit code.
   */
  async #planReset(url: string): Promise<number> {
    await initFingerprints();
    await using store = await StateStore.open(url, { readOnly: true });
    const targets = await store.targets(this.name);
    const files = (await store.loadComponents(this.name)).size;
    let keys = 0;
    for (const target of targets) {
      keys += target.keys;
      console.log(
        `forget ${target.target} ${counted(target.keys, "key")} of ` +
          counted(target.components, "file"),
      );
    }
    print(
      `${this.name}: --reset would forget ${counted(keys, "key")} of ` +
        `${counted(targets.length, "target")} and the memo of ${counted(files, "file")}; ` +
        "dry run: nothing was forgotten",
    );
    return 0;
  }

  /**
   * The command line: parses `argv`, runs, and exits with the run's code (0 ok, 1 a file or a
   * target failed, 2 bad usage, 130 interrupted, 143 terminated). See `--help`.
   */
  async cli(argv: string[] = runtimeArgs()): Promise<never> {
    const parsed = parseCommandLine(argv, this.name, this.#environment);
    if (typeof parsed === "number") return exit(parsed);
    const { values, command, logFormat } = parsed;
    try {
      try {
        loadEnvFile(values["env-file"] ?? ".env", values["env-file"] === undefined);
      } catch (error) {
        print(`error: ${errorMessage(error)}`);
        return exit(2);
      }
      if (command === "run") restartWithV8Flags(); // before anything is opened or sent
      const state = values.state ?? (process.env.STATECAST_STATE || DEFAULT_STATE_URL);
      const badState = stateUrlProblem(state);
      if (badState !== undefined) {
        const from = values.state === undefined ? "STATECAST_STATE" : "--state";
        print(`error: ${from}: ${badState}`);
        return exit(2);
      }
      if (command === "status") {
        return exit(await this.status(state, { paths: parsed.paths, json: values.json ?? false }));
      }
      if (values.reset && values["dry-run"]) return exit(await this.#planReset(state));
      if (command === "drop") {
        const dryRun = values["dry-run"] ?? false;
        const confirm = dryRun || values.yes ? undefined : dropConfirmation(this.name);
        if (confirm === null) return exit(2);
        return exit(
          await this.drop({
            dryRun,
            state,
            quiet: values.quiet ?? false,
            verbose: values.verbose ?? false,
            logFormat,
            ...(confirm === undefined ? {} : { confirm }),
          }),
        );
      }
      if (values.reset) {
        await initFingerprints();
        await using store = await StateStore.open(state);
        await using _lock = await RunLock.acquire(store, this.name);
        await store.reset(this.name);
        print(`${this.name}: state forgotten; the next run re-sends every row`);
        return exit(0);
      }
      const metrics = metricsOptions(
        values["metrics-port"] ?? process.env.METRICS_PORT,
        values["metrics-host"] ?? process.env.METRICS_HOST,
      );
      if (typeof metrics === "string") {
        print(`error: ${metrics}\nRun with --help for usage.`);
        return exit(2);
      }
      const stop = stopOnSignals(this.name, new Log(false, logFormat === "json"));
      const result = await this.run({
        ...metrics,
        live: values.live ?? false,
        dryRun: values["dry-run"] ?? false,
        allowDeletes: values["allow-deletes"] ?? false,
        state,
        quiet: values.quiet ?? false,
        verbose: values.verbose ?? false,
        logFormat,
        signal: stop.signal,
        rerun: rerunGlobs(values.rerun ?? []),
      });
      return exit(stop.code() ?? result.exitCode);
    } catch (error) {
      const log = new Log(false, logFormat === "json");
      log.error(errorMessage(error));
      return exit(1);
    }
  }
}

/** Why `--live --dry-run` is refused. */
const LIVE_DRY_RUN = "--live and --dry-run do not go together: a dry run commits nothing, so " +
  "every live round would plan against the same stored state and list changes a live run would " +
  "not send; run --dry-run alone to see what the catch-up would send";

/** The command line's options, for `parseArgs` and for checking what was typed. */
const OPTIONS = {
  live: { type: "boolean", short: "L" },
  "dry-run": { type: "boolean" },
  reset: { type: "boolean" },
  "allow-deletes": { type: "boolean" },
  state: { type: "string" },
  "env-file": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
  json: { type: "boolean" },
  "log-format": { type: "string" },
  "metrics-port": { type: "string" },
  "metrics-host": { type: "string" },
  rerun: { type: "string", multiple: true },
  yes: { type: "boolean", short: "y" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** What the value of each string option looks like, for messages. */
const PLACEHOLDERS: Record<string, string> = {
  state: "file:path/to/state.db",
  "env-file": "path/to/.env",
  "log-format": "json",
  "metrics-port": "9464",
  "metrics-host": "127.0.0.1",
  rerun: "'orders/*.csv'",
};

/**
 * What is wrong with the options typed, in words that say what to type instead, or undefined.
 * (`parseArgs` would say "Unknown option '--x'. To specify a positional argument ...".)
 */
export function usageProblem(argv: string[]): string | undefined {
  const { tokens } = parseArgs({
    args: argv,
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const spec = (OPTIONS as Record<string, { type: string }>)[token.name];
    const raw = token.rawName;
    if (spec === undefined) {
      const near = closestOption(token.name);
      return `unknown option ${raw}` + (near === undefined ? "" : `; did you mean --${near}?`);
    }
    if (spec.type === "string" && (token.value === undefined || token.value === "")) {
      return `${raw} needs a value: ${raw} ${PLACEHOLDERS[token.name] ?? "VALUE"}`;
    }
    if (spec.type === "string" && !token.inlineValue && token.value?.startsWith("-")) {
      return `${raw} needs a value, got the option "${token.value}": ${raw} ` +
        `${PLACEHOLDERS[token.name] ?? "VALUE"} (or ${raw}=${token.value} if that is the value)`;
    }
    if (spec.type === "boolean" && token.inlineValue) {
      return `${raw} takes no value: write ${raw} alone, not ${raw}=${token.value}`;
    }
  }
  return undefined;
}

/** The long option nearest to a mistyped one (a prefix of it, or two edits away), if any. */
function closestOption(typed: string): string | undefined {
  const names = Object.keys(OPTIONS);
  const prefixed = names.filter((name) => typed.length >= 2 && name.startsWith(typed));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined, bestDistance = 3;
  for (const name of names) {
    const d = editDistance(typed.replaceAll("_", "-"), name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The plain-value arguments of a mount, as text for the logic fingerprint ("" when none). */
function valuesOf(args: readonly unknown[]): string {
  const values = args.map((arg) =>
    ["string", "number", "boolean"].includes(typeof arg) ? JSON.stringify(arg) : "-"
  );
  return values.some((value) => value !== "-") ? `\nargs ${values.join(" ")}` : "";
}

/**
 * Reads the `.env` file (or `--env-file`) for `--help`, as a run would, so that the defaults it
 * prints are the run's: `STATECAST_V8_FLAGS` or `DENO_V8_FLAGS` there change the heap default. A
 * file it cannot read is the run's error to report, not help's.
 */
function helpReadsEnvFile(path: string | undefined): void {
  try {
    loadEnvFile(path ?? ".env", true);
  } catch {
    // The run says so.
  }
}

/** What the command line asked for, or the exit code of `--help`, `--version` or bad usage. */
function parseCommandLine(argv: string[], name: string, environment: Record<string, string>) {
  const problem = usageProblem(argv);
  if (problem !== undefined) {
    print(`error: ${problem}\nRun with --help for usage.`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (error) {
    print(`error: ${errorMessage(error)}\nRun with --help for usage.`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    helpReadsEnvFile(values["env-file"]);
    console.log(helpText(name, environment));
    return 0;
  }
  if (values.version) {
    console.log(`statecast ${VERSION}`);
    return 0;
  }
  const logFormat = values["log-format"] ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    print(`error: --log-format must be "text" or "json", got "${logFormat}"`);
    return 2;
  }
  if (values.live && values["dry-run"]) {
    print(`error: ${LIVE_DRY_RUN}\nRun with --help for usage.`);
    return 2;
  }
  const command = positionals[0] ?? "run";
  if (
    command !== "run" && command !== "status" && command !== "drop" ||
    command !== "status" && positionals.length > 1
  ) {
    print(`error: unknown command "${positionals.join(" ")}"\nRun with --help for usage.`);
    return 2;
  }
  const misplaced = values.rerun !== undefined && command !== "run"
    ? "--rerun"
    : values.yes && command !== "drop"
    ? "--yes"
    : undefined;
  if (misplaced !== undefined) {
    const where = misplaced === "--yes" ? "drop" : "a run";
    print(`error: ${misplaced} is for ${where}, not ${command}\nRun with --help for usage.`);
    return 2;
  }
  const withReset = resetConflict(values, command);
  if (withReset !== undefined) {
    print(`error: ${withReset}\nRun with --help for usage.`);
    return 2;
  }
  return { values, command, logFormat, paths: positionals.slice(1) } as const;
}

/**
 * Why `--reset` cannot go with what else was typed, or undefined. It forgets the state and exits,
 * so `--reset --live` would not watch (and a service restarted on exit would forget its state
 * every time), `--reset --rerun` would send nothing, and `status` or `drop` would ignore it.
 */
function resetConflict(
  values: { reset?: boolean; live?: boolean; rerun?: string[] },
  command: string,
): string | undefined {
  if (!values.reset) return undefined;
  const other = command !== "run"
    ? command
    : values.live
    ? "--live"
    : values.rerun
    ? "--rerun"
    : "";
  if (other === "") return undefined;
  return `--reset forgets the state and exits; it does not go with ${other}: run --reset alone, ` +
    "then the run you want";
}

/**
 * How `drop` is confirmed without `--yes`: by typing the app's name on the terminal; null (and
 * an error printed) when stdin is not a terminal.
 */
function dropConfirmation(name: string): ((what: string) => Promise<boolean>) | null {
  if (!stdinIsTerminal()) {
    print(
      `error: drop sends a delete for every key "${name}" published and forgets its state; ` +
        "stdin is not a terminal to confirm on: add --yes to drop without asking " +
        "(or --dry-run to see what it would send)",
    );
    return null;
  }
  return async (what) => {
    print(`${what}.`);
    return (await askLine(`Type the app's name (${name}) to drop it: `)) === name;
  };
}

/** `--metrics-port` / `METRICS_PORT` and `--metrics-host` / `METRICS_HOST`, or what is wrong. */
function metricsOptions(
  port: string | undefined,
  host: string | undefined,
): { metricsPort?: number; metricsHost?: string } | string {
  if (port === undefined || port === "") {
    return host ? "--metrics-host (METRICS_HOST) needs --metrics-port (METRICS_PORT)" : {};
  }
  const n = Number(port);
  if (!/^\d+$/.test(port) || n > 65535) {
    return `--metrics-port (METRICS_PORT) must be a port number from 0 to 65535, got "${port}"`;
  }
  return host ? { metricsPort: n, metricsHost: host } : { metricsPort: n };
}

/**
 * First SIGINT/SIGTERM: stop watching, let the round in flight finish (nothing is committed
 * before the broker acked it), disconnect, exit; if that takes too long, exit anyway: an
 * uncommitted round is simply sent again next time. Second SIGINT: exit now.
 */
function stopOnSignals(
  name: string,
  log: Log,
): { signal: AbortSignal; code: () => number | undefined } {
  const controller = new AbortController();
  let stopCode: number | undefined;
  onStopSignal((signal) => {
    const code = signal === "SIGINT" ? 130 : 143;
    if (stopCode !== undefined) {
      log.warn(`${name}: ${signal} again: exiting now (an unfinished round is sent again)`);
      return exit(code);
    }
    stopCode = code;
    controller.abort(signal);
    setTimeout(() => {
      log.warn(
        `${name}: stopping took longer than ${STOP_DEADLINE_MS} ms: exiting now (an ` +
          "unfinished round is sent again next time)",
      );
      exit(code);
    }, STOP_DEADLINE_MS);
  });
  return { signal: controller.signal, code: () => stopCode };
}

/** `--help`: usage with the command as it was typed, options, environment, exit codes. */
function helpText(name: string, environment: Record<string, string>): string {
  const variables = Object.entries({
    ...environment,
    STATECAST_STATE: `the state store, a URL: file:path (relative to the working directory), ` +
      `libsql://host?authToken=..., http://user:password@host/ (default ${DEFAULT_STATE_URL}; ` +
      `--state overrides it)`,
    STATECAST_HEAP_MB: `the heap size (MiB) above which a full garbage collection runs ` +
      `${heapCheckWords().when} (default ${heapCheckWords().defaultMb}; more is faster and ` +
      "takes more memory: 0, never, took a first publish of 1M rows under Deno from 6.1 s to " +
      "4.2 s and its peak from 193 to 350 MB)",
    STATECAST_V8_FLAGS: `the V8 flags a run under Deno (Linux) restarts itself with, in place, ` +
      `unless DENO_V8_FLAGS or --v8-flags chose them (default ${DEFAULT_V8_FLAGS}; empty: no ` +
      "restart)",
  });
  const width = Math.max(...variables.map(([variable]) => variable.length)) + 2;
  const environmentLines = variables.map(([variable, meaning]) =>
    wrap(`  ${variable.padEnd(width)}${meaning}`, 2 + width)
  ).join("\n");
  return `${name}: statecast app (statecast ${VERSION})

Usage: ${invocation()} [command] [options]

Commands:
  run (default)      Catch up: scan, send what changed, print a summary, exit
  status [PATH...]   Show the targets, keys and files in the state store; with PATHs (files or
                     folders), each of their files: keys, last run, memo, why it fails or waits
      --json         (status) Print it as one JSON object (its shape is in README)
  drop               Take the job down: send a delete for every key this app published to its
                     targets (a tombstone; a table target DELETEs the row), then forget its
                     state; asks to type the app's name first. With --dry-run, list the deletes
                     per target (--verbose: the keys) and change nothing
  -y, --yes          (drop) Do not ask; needed when stdin is not a terminal

Options:
  -L, --live         After catching up, keep watching and send every change
      --dry-run      Plan from the state store and print the changes (with their headers);
                     connect to no target, send nothing, write nothing. With --reset: say what
                     it would forget. Not with --live (exit 2)
      --reset        Forget this app's state (the next run re-sends every row), then exit
      --rerun GLOB   Send the current rows of the files matching GLOB again, memo or not: an
                     upsert per key they own, no delete. Relative to the source folder, like
                     its include patterns ('orders/*.csv'); repeatable or comma-separated
      --allow-deletes
                     Send deletes however many: a round that would delete more than half of a
                     target's keys (above 20), or any key because the folder is empty, is
                     refused otherwise
      --state URL    State store (default: $STATECAST_STATE or ${DEFAULT_STATE_URL})
      --env-file F   Load variables from F (default: .env if present; never overrides)
  -q, --quiet        Print only errors
  -v, --verbose      Also print one line per change sent: kind, target, key
      --log-format F text (default) or json
      --metrics-port N
                     Serve /metrics (Prometheus) and /healthz on 127.0.0.1:N while running
                     (default: $METRICS_PORT; none when unset)
      --metrics-host H
                     Bind the metrics server to H instead (default: $METRICS_HOST or 127.0.0.1)
  -h, --help         Show this help
  -V, --version      Show the version

Environment (or a .env file in the working directory, or --env-file F; a .env never overrides a
variable that is set):
${environmentLines}

Exit codes:
  0    success (a dry run, status, --reset, drop, --help too)
  1    a file or the target failed, the delete guard refused a round, another run holds the
       state store, or the job could not start (an unreachable broker, a missing folder); drop
       not confirmed, or a delete it sent failed (run it again)
  2    bad usage: an unknown option or command, a missing value, --live with --dry-run, an
       unreadable --env-file, a state store that is not a URL, a --rerun glob that matches no
       file, drop with neither a terminal nor --yes
  130  interrupted (SIGINT, Ctrl-C)
  143  terminated (SIGTERM)`;
}

/** Wraps `text` at 100 columns, continuation lines indented by `indent`. */
function wrap(text: string, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/(?<=\S) (?=\S)/)) {
    if (line !== "" && line.length + 1 + word.length > 100) {
      lines.push(line);
      line = " ".repeat(indent) + word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  return [...lines, line].join("\n");
}
