/**
 * Live mode: after the catch-up round, watch the source folder and reconcile what changed.
 * Only *when* reconcile runs differs from a catch-up run: same components, same targets, same
 * commit protocol.
 *
 * Events are coalesced per path over a quiet window (`debounceMs`), then one partial round runs
 * over the paths seen. One round at a time; events during a round go into the next. A deleted
 * folder is one event for the folder (Deno reports it so), so a path that is gone retracts every
 * component under it. A periodic full rescan, and an immediate one when the runtime reports lost
 * events, repair anything the watcher missed.
 *
 * The edges:
 * - The watched folder itself is checked every second (and on any event that names it): while it
 *   is gone, no round runs (a vanished folder is not "every file deleted"); when it is back or was
 *   replaced by another folder, it is watched again and rescanned in full.
 * - A changed file that looks unfinished and was written within `settleMs` is held until it has
 *   been quiet that long ({@linkcode Settling}); the other files go on.
 * - A file that waits on an unreadable owner ({@linkcode WaitingFiles}) is put back into a round
 *   when that owner changes, and retried on a growing pause.
 * - A round a delete guard refused is held until the next event or rescan, without retries.
 *
 * @module
 */
import { type FileHandle, open, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { releaseMemory, type WatchEvent, watchTree } from "./_runtime.ts";
import type { ComponentFn, Engine, RoundSummary } from "./engine.ts";
import type { DirSource, FileItem } from "./localfs.ts";

/** Options of {@linkcode runLive}. */
export interface LiveOptions {
  /** Stops watching; the round in flight finishes first. */
  signal: AbortSignal;
  /**
   * Called after every round that had something to do; `looked` says whether the round looked at
   * a path (a full round looks at every path).
   */
  onRound: (
    summary: RoundSummary,
    changedPaths: number,
    looked: (path: string) => boolean,
  ) => void | Promise<void>;
  /** Called when a round could not run at all (it is retried after a pause). */
  onError: (error: unknown) => void;
  /** Called once the watcher is set up. */
  onReady?: () => void;
  /**
   * Called with what a user should know but that is not a round: the folder is gone or back, a
   * file that kept changing was published anyway, the watcher failed.
   */
  onWarning?: (message: string) => void;
  /** The delete guard's share for every round (see `RoundOptions.maxDeleteShare`). */
  maxDeleteShare?: number;
  /** Keep each round's changes in its summary (for `--verbose`). @default false */
  keepChanges?: boolean;
  /** Called with the number of paths of each batch of file-system events (for metrics). */
  onEvents?: (count: number) => void;
  /** Called when a retry is scheduled: of a failed round, or of files that wait (for metrics). */
  onRetry?: () => void;
  /**
   * Called when the folder starts being watched (`true`) or stops (`false`, with the reason: the
   * folder is gone, the watcher failed), for health checks.
   */
  onWatching?: (watching: boolean, reason: string) => void;
}

/**
 * Events on one path are coalesced while they keep coming, but a round is never put off by more
 * than this many quiet windows after the first pending event.
 */
const MAX_COALESCE_FACTOR = 20;

/** Longest wait before retrying a round whose target failed, or a file that waits. */
const MAX_RETRY_MS = 30_000;

/** How often the watched folder is checked for being gone or replaced. */
const ROOT_CHECK_MS = 1_000;

/**
 * A changed file that lost more than this share of its published size looks like a rewrite in
 * progress. Editing cells or removing a few rows changes the size by less.
 */
const SHRINK_SHARE = 1 / 8;

/** Watches `source` and runs partial rounds of `fn` until `options.signal` aborts. */
export async function runLive(
  engine: Engine,
  fn: ComponentFn<FileItem>,
  source: DirSource,
  options: LiveOptions,
): Promise<void> {
  await new LiveRun(engine, fn, source, options).run();
}

/**
 * Files that wait on an unreadable owner (`blockedBy` of a round's failure): the keys they gave
 * up belong to a file that cannot be read, so their rows stay as they are until a round sees that
 * owner again. Which paths to put back into a round, and when.
 *
 * @example
 * ```ts
 * import { WaitingFiles } from "./live.ts";
 * const waiting = new WaitingFiles();
 * const failed = [{ path: "a.csv", error: new Error(), blockedBy: "b.csv" }];
 * waiting.update(failed, (path) => path === "a.csv");
 * if (waiting.waitingOn("b.csv")[0] !== "a.csv" || waiting.waitingOn("c.csv").length) {
 *   throw new Error();
 * }
 * waiting.update([], () => true); // a round that looked at a.csv and did not fail it
 * if (waiting.size !== 0) throw new Error();
 * ```
 */
export class WaitingFiles {
  /** Waiting path → the path it waits on. */
  readonly #blockers = new Map<string, string>();
  #retries = 0;

  /** How many files wait. */
  get size(): number {
    return this.#blockers.size;
  }

  /** Every waiting path. */
  paths(): string[] {
    return [...this.#blockers.keys()];
  }

  /**
   * Takes a round's failures. `looked` says whether the round looked at a path: a waiting path it
   * looked at and did not fail for a blocker waits no more.
   */
  update(
    failed: ReadonlyArray<{ path: string; blockedBy?: string }>,
    looked: (path: string) => boolean,
  ): void {
    const blocked = new Map<string, string>();
    for (const f of failed) if (f.blockedBy !== undefined) blocked.set(f.path, f.blockedBy);
    for (const path of this.paths()) {
      if (looked(path) && !blocked.has(path)) this.#blockers.delete(path);
    }
    for (const [path, blocker] of blocked) this.#blockers.set(path, blocker);
    if (this.#blockers.size === 0) this.#retries = 0;
  }

  /** The paths waiting on `changed`, or on a file under it (`changed` may be a folder). */
  waitingOn(changed: string): string[] {
    const found: string[] = [];
    for (const [path, blocker] of this.#blockers) {
      if (blocker === changed || blocker.startsWith(changed + "/")) found.push(path);
    }
    return found;
  }

  /** The pause before the next retry of every waiting path: 1 s, 2 s, 4 s ... up to 30 s. */
  nextRetryMs(): number {
    return Math.min(MAX_RETRY_MS, 1_000 * 2 ** this.#retries++);
  }
}

/**
 * Holds back changed files that are still being written. When a round is due, a changed file
 * written less than `settleMs` ago is held if it looks unfinished: it is empty, it lost more than
 * an eighth of the size last published, or its last byte is not a line break (unless that file
 * was seen complete without one). A held file stays held, whatever it looks like, until it has
 * been quiet for `settleMs`, or for at most `settleMaxMs` (then it goes through with a warning).
 * Event timing alone cannot tell a slow writer from an edit: the writer's pauses can be longer
 * than the quiet window. A complete file (edited cells, added or a few removed rows) goes at once.
 */
export class Settling {
  /** Held path → when it was first held (ms since the epoch). */
  readonly #since = new Map<string, number>();
  /** Files seen complete without a final line break: that test says nothing about them. */
  readonly #noFinalBreak = new Set<string>();
  readonly #engine: Engine;
  readonly #settleMs: number;
  readonly #maxMs: number;
  readonly #warn: (message: string) => void;

  constructor(
    engine: Engine,
    options: { settleMs: number; settleMaxMs: number; warn: (message: string) => void },
  ) {
    this.#engine = engine;
    this.#settleMs = options.settleMs;
    this.#maxMs = options.settleMaxMs;
    this.#warn = options.warn;
  }

  /** The paths held now. */
  paths(): string[] {
    return [...this.#since.keys()];
  }

  /** Forgets held paths for which `keep` is false (they are gone). */
  retain(keep: (path: string) => boolean): void {
    for (const path of this.paths()) if (!keep(path)) this.#since.delete(path);
  }

  /** When the first held file may go (ms since the epoch), if any is held. */
  recheckAt(items: ReadonlyArray<FileItem>): number | undefined {
    let at: number | undefined;
    for (const item of items) {
      const since = this.#since.get(item.path);
      if (since === undefined) continue;
      const due = Math.min(item.mtimeMs + this.#settleMs, since + this.#maxMs);
      at = at === undefined ? due : Math.min(at, due);
    }
    return at;
  }

  /** The items that may run now; the others are held. */
  async ready(items: ReadonlyArray<FileItem>, now = Date.now()): Promise<FileItem[]> {
    const go: FileItem[] = [];
    for (const item of items) if (!(await this.#hold(item, now))) go.push(item);
    return go;
  }

  async #hold(item: FileItem, now: number): Promise<boolean> {
    const { path } = item;
    if (this.#settleMs <= 0 || item.size < 0) return false; // off, or fails when read anyway
    const since = this.#since.get(path);
    if (now - item.mtimeMs >= this.#settleMs) {
      if (since !== undefined) {
        this.#since.delete(path);
        if (await endsWithLineBreak(item)) this.#noFinalBreak.delete(path);
        else this.#noFinalBreak.add(path);
      }
      return false;
    }
    if (since !== undefined) {
      if (now - since < this.#maxMs) return true;
      this.#since.delete(path);
      this.#warn(
        `"${path}" has kept changing for ${Math.round((now - since) / 1000)} s: publishing it ` +
          "as it is now",
      );
      return false;
    }
    const published = this.#engine.componentRecord(path);
    if (published?.size === item.size && published.mtimeMs === item.mtimeMs) return false;
    const unfinished = item.size === 0 ||
      (published !== undefined && item.size < published.size * (1 - SHRINK_SHARE)) ||
      (!this.#noFinalBreak.has(path) && !(await endsWithLineBreak(item)));
    if (unfinished) this.#since.set(path, now);
    return unfinished;
  }
}

/** Whether a file's last byte is a line break; true when it cannot be read (the round says why). */
async function endsWithLineBreak(item: FileItem): Promise<boolean> {
  if (item.size <= 0) return item.size < 0;
  let file: FileHandle | undefined;
  try {
    file = await open(item.fullPath, "r");
    const last = new Uint8Array(1);
    const { bytesRead } = await file.read(last, 0, 1, item.size - 1);
    return bytesRead === 0 || last[0] === 0x0a;
  } catch {
    return true;
  } finally {
    await file?.close();
  }
}

/** What identifies a folder on disk; undefined when it is not there (or not a folder). */
async function folderIdentity(path: string): Promise<{ dev: number; ino: number } | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? { dev: s.dev, ino: s.ino } : undefined;
  } catch {
    return undefined;
  }
}

/** The state of one `runLive()`: its queue of paths, its timers, its watcher. */
class LiveRun {
  readonly #engine: Engine;
  readonly #fn: ComponentFn<FileItem>;
  readonly #source: DirSource;
  readonly #options: LiveOptions;
  readonly #root: string;
  readonly #pending = new Set<string>();
  readonly #waiting = new WaitingFiles();
  readonly #settling: Settling;
  #fullRescan = false;
  #ready = false;
  #wake: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #settleTimer: ReturnType<typeof setTimeout> | undefined;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the oldest pending event arrived: a stream of events delays a round only so long. */
  #firstPendingAt: number | undefined;
  /** A retry after a failed round is not brought forward by new events. */
  #notBefore = 0;
  #failures = 0;
  /** The folder being watched (undefined before the first watch). */
  #watched: { dev: number; ino: number } | undefined;
  #watcher: { controller: AbortController; task: Promise<void> } | undefined;
  readonly #watchers = new Set<Promise<void>>();
  /** The folder is gone: no round runs until it is back. */
  #missing = false;
  /** An event named the folder itself: watch it again even if it looks the same. */
  #rewatch = false;
  #rootCheck: Promise<boolean> | undefined;
  #lastWatchError = "";
  /** Options every round gets: the delete guard's share, and memory released between chunks. */
  readonly #guard: {
    maxDeleteShare?: number;
    onChunk: () => void;
    onDeclared: () => void;
    keepChanges: boolean;
  };

  constructor(
    engine: Engine,
    fn: ComponentFn<FileItem>,
    source: DirSource,
    options: LiveOptions,
  ) {
    this.#engine = engine;
    this.#fn = fn;
    this.#source = source;
    this.#options = options;
    this.#root = resolve(source.root);
    const keepChanges = options.keepChanges ?? false;
    this.#guard = {
      ...(options.maxDeleteShare === undefined ? {} : { maxDeleteShare: options.maxDeleteShare }),
      onChunk: releaseMemory,
      onDeclared: () => releaseMemory("declared"),
      keepChanges,
    };
    this.#settling = new Settling(engine, {
      settleMs: source.settleMs,
      settleMaxMs: source.settleMaxMs,
      warn: (message) => this.#warn(message),
    });
  }

  async run(): Promise<void> {
    const { signal } = this.#options;
    const onAbort = () => this.#wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    const every = this.#source.rescanIntervalMs;
    const rescans = every > 0
      ? setInterval(() => {
        this.#fullRescan = true;
        this.#schedule(0);
      }, every)
      : undefined;
    const rootChecks = setInterval(() => void this.#checkRoot(), ROOT_CHECK_MS);
    try {
      await this.#checkRoot();
      this.#options.onReady?.();
      while (!signal.aborted) {
        if (!this.#ready) {
          await new Promise<void>((r) => this.#wake = r);
          this.#wake = undefined;
          continue;
        }
        this.#ready = false;
        // A folder that is gone holds the round (its paths stay pending); one that was replaced
        // is watched again and a full rescan is scheduled.
        if (!(await this.#checkRoot()) || signal.aborted) continue;
        await this.#round();
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      for (const t of [this.#timer, this.#settleTimer, this.#waitTimer]) clearTimeout(t);
      if (rescans !== undefined) clearInterval(rescans);
      clearInterval(rootChecks);
      await this.#rootCheck;
      this.#stopWatching();
      await Promise.all(this.#watchers);
    }
  }

  #warn(message: string): void {
    this.#options.onWarning?.(message);
  }

  #schedule(delayMs: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const now = Date.now();
    this.#firstPendingAt ??= now;
    const latest = this.#firstPendingAt + MAX_COALESCE_FACTOR * this.#source.debounceMs;
    const at = Math.max(this.#notBefore, Math.min(now + delayMs, latest));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#ready = true;
      this.#wake?.();
    }, Math.max(0, at - now));
  }

  #onEvent(event: WatchEvent): void {
    this.#options.onEvents?.(Math.max(1, event.paths.length));
    let relevant = event.rescan;
    let rootEvent = event.rescan;
    for (const path of event.paths) {
      const rel = relative(this.#root, isAbsolute(path) ? path : join(this.#root, path));
      if (rel.startsWith("..")) continue;
      const posix = rel.split(sep).join("/");
      if (posix === "") rootEvent = relevant = true;
      else if (!posix.split("/").some((segment) => segment.startsWith("."))) {
        // Hidden paths can never be items. Others are sorted out after a stat: a file must
        // match the source, while a folder (even one named like a temp file) may hold items.
        this.#pending.add(posix);
        for (const waiter of this.#waiting.waitingOn(posix)) this.#pending.add(waiter);
        relevant = true;
      }
    }
    if (rootEvent) {
      // The folder itself changed (removed, moved, replaced) or events were lost: rescan, and
      // watch it again, since a watch follows the folder it was set on, not its name.
      this.#fullRescan = true;
      this.#rewatch = true;
      void this.#checkRoot();
    }
    // Events on paths that cannot matter do not delay a round that is due.
    if (relevant) this.#schedule(this.#source.debounceMs);
  }

  /** Whether the watched folder is there and watched; one check at a time. */
  #checkRoot(): Promise<boolean> {
    this.#rootCheck ??= this.#doCheckRoot().finally(() => this.#rootCheck = undefined);
    return this.#rootCheck;
  }

  async #doCheckRoot(): Promise<boolean> {
    const id = await folderIdentity(this.#root);
    if (this.#options.signal.aborted) return false;
    if (id === undefined) {
      if (!this.#missing) {
        this.#missing = true;
        this.#stopWatching();
        const message = `the source folder "${this.#source.root}" is gone: nothing is sent ` +
          "or retracted until it is back (checking every second)";
        this.#warn(message);
        this.#options.onWatching?.(false, message);
      }
      return false;
    }
    const watched = this.#watched;
    const same = watched !== undefined && watched.dev === id.dev && watched.ino === id.ino;
    if (same && this.#watcher !== undefined && !this.#rewatch) return true;
    const first = watched === undefined && !this.#missing;
    if (this.#missing) {
      this.#warn(`the source folder "${this.#source.root}" is back: watching it, rescanning`);
    } else if (!first && !same) {
      this.#warn(
        `the source folder "${this.#source.root}" was replaced: watching the new one, rescanning`,
      );
    }
    this.#missing = this.#rewatch = false;
    if (this.#watcher !== undefined) {
      this.#stopWatching();
      // A Deno.watchFs opened in the same tick as the close of the previous watcher of that path
      // never reports anything: open the new one on the next macrotask.
      await new Promise((r) => setTimeout(r, 0));
      if (this.#options.signal.aborted) return false;
    }
    this.#startWatching(id);
    this.#options.onWatching?.(true, `watching "${this.#source.root}"`);
    if (first) return true;
    // Files written into the new folder right now are coalesced into the rescan.
    this.#fullRescan = true;
    this.#schedule(this.#source.debounceMs);
    return false;
  }

  #startWatching(id: { dev: number; ino: number }): void {
    const controller = new AbortController();
    this.#watched = id;
    const task = (async () => {
      try {
        for await (const event of watchTree(this.#root, controller.signal)) this.#onEvent(event);
      } catch (error) {
        // Said once per kind of failure; the folder check tries again every second.
        const message = `watching "${this.#source.root}" failed: ${(error as Error).message}`;
        if (message !== this.#lastWatchError) this.#warn(message);
        this.#lastWatchError = message;
        if (this.#watcher?.controller === controller) this.#options.onWatching?.(false, message);
      }
      // Ended by itself: the next folder check starts a new watch.
      if (this.#watcher?.controller === controller) this.#watcher = undefined;
    })();
    this.#watcher = { controller, task };
    this.#watchers.add(task);
    task.finally(() => this.#watchers.delete(task));
  }

  #stopWatching(): void {
    this.#watcher?.controller.abort();
    this.#watcher = undefined;
  }

  /** Runs one round over what is pending, and decides what comes next. */
  async #round(): Promise<void> {
    const options = this.#options;
    this.#firstPendingAt = undefined;
    const full = this.#fullRescan;
    this.#fullRescan = false;
    const paths = [...new Set([...this.#pending, ...this.#settling.paths()])];
    this.#pending.clear();
    let summary: RoundSummary | undefined;
    let error: unknown;
    const started = performance.now();
    try {
      summary = full ? await this.#fullRound() : await this.#partialRound(paths);
      // The round's time includes finding what changed (stat, scan), not only reconciling it.
      if (summary !== undefined) summary.elapsedMs = performance.now() - started;
    } catch (e) {
      error = e; // a folder that cannot be read, a store that is busy: try again later
      options.onError(e);
    }
    for (const warning of this.#source.takeWarnings()) this.#warn(warning);
    const looked = (path: string) =>
      full || paths.some((p) => path === p || path.startsWith(p + "/"));
    if (summary !== undefined) await options.onRound(summary, summary.scanned, looked);
    const requeue = () => {
      for (const p of paths) this.#pending.add(p);
      this.#fullRescan ||= full;
    };
    if (error !== undefined || summary?.applyError !== undefined) {
      // Nothing was committed: the same paths go again, after a growing pause.
      requeue();
      this.#failures++;
      const pause = Math.min(MAX_RETRY_MS, 500 * 2 ** this.#failures);
      this.#notBefore = Date.now() + pause;
      this.#schedule(pause);
      options.onRetry?.();
      return;
    }
    this.#failures = 0;
    this.#notBefore = 0;
    // A delete guard refused it: retrying cannot help, the next event or rescan tries again.
    if (summary?.refused !== undefined) return requeue();
    if (summary !== undefined) this.#waiting.update(summary.failed, looked);
    this.#armWaitRetry();
  }

  /** Retries the waiting files after a growing pause (their owner may be readable by then). */
  #armWaitRetry(): void {
    if (this.#waiting.size === 0 || this.#waitTimer !== undefined) return;
    this.#options.onRetry?.();
    this.#waitTimer = setTimeout(() => {
      this.#waitTimer = undefined;
      for (const path of this.#waiting.paths()) this.#pending.add(path);
      this.#schedule(0);
    }, this.#waiting.nextRetryMs());
  }

  /** Runs the files that may run now; holds the others and wakes up when they may go. */
  async #settled(items: FileItem[]): Promise<FileItem[]> {
    const ready = await this.#settling.ready(items);
    const at = this.#settling.recheckAt(items);
    if (this.#settleTimer !== undefined) clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
    if (at !== undefined) {
      const delay = Math.max(this.#source.debounceMs, at - Date.now());
      this.#settleTimer = setTimeout(() => {
        this.#settleTimer = undefined;
        this.#schedule(0);
      }, delay);
    }
    return ready;
  }

  /**
   * A round over every file now; a held file is neither run nor retracted, nor is a file under a
   * folder that cannot be read.
   */
  async #fullRound(): Promise<RoundSummary> {
    const { items: all, unreadable } = await this.#source.scanTree();
    const present = new Set(all.map((i) => i.path));
    this.#settling.retain((p) => present.has(p));
    const ready = await this.#settled(all);
    if (ready.length === all.length) {
      return await this.#engine.round(this.#fn, all, {
        fullScan: true,
        unreadable,
        ...this.#guard,
      });
    }
    const under = (c: string) => unreadable.some(({ path }) => c.startsWith(path + "/"));
    return await this.#engine.round(this.#fn, ready, {
      removed: this.#engine.knownComponents().filter((c) => !present.has(c) && !under(c)),
      unreadable,
      resolve: (path) => this.#source.item(path),
      ...this.#guard,
    });
  }

  /** One round over the paths that changed; undefined when none of them is a component. */
  async #partialRound(paths: string[]): Promise<RoundSummary | undefined> {
    const source = this.#source;
    const known = new Set(this.#engine.knownComponents());
    const items = new Map<string, FileItem>();
    const removed = new Set<string>();
    const removeUnder = (prefix: string, except: Map<string, FileItem>) => {
      for (const c of known) if (c.startsWith(prefix + "/") && !except.has(c)) removed.add(c);
    };
    for (const path of paths) {
      let kind: "file" | "dir" | "gone" = "gone";
      try {
        const s = await stat(join(source.root, ...path.split("/")));
        kind = s.isDirectory() ? "dir" : s.isFile() ? "file" : "gone";
      } catch (error) {
        // Only a path that is not there is gone; one that cannot be read fails as a file.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ENOTDIR") kind = "file";
      }
      if (kind === "file") {
        const item = await source.item(path);
        if (item !== undefined) items.set(path, item);
      } else if (kind === "dir") {
        const under = new Map((await source.scan(path)).map((i) => [i.path, i]));
        for (const [p, i] of under) items.set(p, i);
        removeUnder(path, under);
      } else {
        if (known.has(path)) removed.add(path);
        removeUnder(path, items);
      }
    }
    for (const p of items.keys()) removed.delete(p);
    this.#settling.retain((p) => items.has(p)); // every held path is among `paths`
    const ready = await this.#settled([...items.values()]);
    if (ready.length === 0 && removed.size === 0) return undefined;
    return await this.#engine.round(this.#fn, ready, {
      removed,
      resolve: (path) => source.item(path),
      ...this.#guard,
    });
  }
}
