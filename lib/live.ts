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
 * @module
 */
import { stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { watchTree } from "./_runtime.ts";
import type { ComponentFn, Engine, RoundSummary } from "./engine.ts";
import type { DirSource, FileItem } from "./localfs.ts";

/** Options of {@linkcode runLive}. */
export interface LiveOptions {
  /** Stops watching; the round in flight finishes first. */
  signal: AbortSignal;
  /** Called after every round that had something to do. */
  onRound: (summary: RoundSummary, changedPaths: number) => void;
  /** Called when a round could not run at all (it is retried after a pause). */
  onError: (error: unknown) => void;
  /** Called once the watcher is set up. */
  onReady?: () => void;
  /** The delete guard's share for every round (see `RoundOptions.maxDeleteShare`). */
  maxDeleteShare?: number;
}

/**
 * Events on one path are coalesced while they keep coming, but a round is never put off by more
 * than this many quiet windows after the first pending event.
 */
const MAX_COALESCE_FACTOR = 20;

/** Longest wait before retrying a round whose target failed. */
const MAX_RETRY_MS = 30_000;

/** Watches `source` and runs partial rounds of `fn` until `options.signal` aborts. */
export async function runLive(
  engine: Engine,
  fn: ComponentFn<FileItem>,
  source: DirSource,
  options: LiveOptions,
): Promise<void> {
  const { signal } = options;
  const root = resolve(source.root);
  const pending = new Set<string>();
  let fullRescan: boolean = false;
  let ready: boolean = false;
  let wake: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** When the oldest pending event arrived: a stream of events delays a round only so long. */
  let firstPendingAt: number | undefined;
  /** A retry after a failed round is not brought forward by new events. */
  let notBefore = 0;
  const schedule = (delayMs: number) => {
    if (timer !== undefined) clearTimeout(timer);
    const now = Date.now();
    firstPendingAt ??= now;
    const latest = firstPendingAt + MAX_COALESCE_FACTOR * source.debounceMs;
    const at = Math.max(notBefore, Math.min(now + delayMs, latest));
    timer = setTimeout(() => {
      timer = undefined;
      ready = true;
      wake?.();
    }, Math.max(0, at - now));
  };
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort, { once: true });

  const rescanEvery = source.rescanIntervalMs > 0
    ? setInterval(() => {
      fullRescan = true;
      schedule(0);
    }, source.rescanIntervalMs)
    : undefined;

  // Collect events in the background; the loop below drains them.
  const watching = (async () => {
    for await (const event of watchTree(root, signal)) {
      let relevant = event.rescan;
      if (event.rescan) fullRescan = true;
      for (const path of event.paths) {
        const rel = relative(root, isAbsolute(path) ? path : join(root, path));
        if (rel.startsWith("..")) continue;
        const posix = rel.split(sep).join("/");
        if (posix === "") fullRescan = relevant = true;
        else if (!posix.split("/").some((segment) => segment.startsWith("."))) {
          // Hidden paths can never be items. Others are sorted out after a stat: a file must
          // match the source, while a folder (even one named like a temp file) may hold items.
          pending.add(posix);
          relevant = true;
        }
      }
      // Events on paths that cannot matter do not delay a round that is due.
      if (relevant) schedule(source.debounceMs);
    }
  })();
  options.onReady?.();

  let failures = 0;
  try {
    while (!signal.aborted) {
      if (!ready) {
        await new Promise<void>((r) => wake = r);
        wake = undefined;
        continue;
      }
      ready = false;
      firstPendingAt = undefined;
      const paths = [...pending];
      pending.clear();
      const full: boolean = fullRescan;
      fullRescan = false;
      let summary: RoundSummary | undefined;
      let error: unknown;
      try {
        const guard = options.maxDeleteShare === undefined
          ? {}
          : { maxDeleteShare: options.maxDeleteShare };
        summary = full
          ? await engine.round(fn, await source.scan(), { fullScan: true, ...guard })
          : await partialRound(engine, fn, source, paths, guard);
      } catch (e) {
        error = e; // a folder that cannot be read, a store that is busy: try again later
        options.onError(e);
      }
      if (summary !== undefined) options.onRound(summary, full ? summary.scanned : paths.length);
      if (error !== undefined || summary?.applyError !== undefined) {
        // Nothing was committed: the same paths go again, after a growing pause.
        for (const p of paths) pending.add(p);
        fullRescan ||= full;
        failures++;
        const pause = Math.min(MAX_RETRY_MS, 500 * 2 ** failures);
        notBefore = Date.now() + pause;
        schedule(pause);
      } else {
        failures = 0;
        notBefore = 0;
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (timer !== undefined) clearTimeout(timer);
    if (rescanEvery !== undefined) clearInterval(rescanEvery);
    await watching.catch(() => {});
  }
}

/** One round over the paths that changed; undefined when none of them is a component. */
async function partialRound(
  engine: Engine,
  fn: ComponentFn<FileItem>,
  source: DirSource,
  paths: string[],
  guard: { maxDeleteShare?: number },
): Promise<RoundSummary | undefined> {
  const known = new Set(engine.knownComponents());
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
  if (items.size === 0 && removed.size === 0) return undefined;
  return await engine.round(fn, [...items.values()], {
    removed,
    resolve: (path) => source.item(path),
    ...guard,
  });
}
