/**
 * One writer per app. A run that sends (a catch-up, live mode, `--reset`) first takes its app's
 * lock in the state store, so it works for a remote libSQL server too; a second run on the same
 * store fails at once naming the holder. The holder refreshes a heartbeat, and every commit
 * checks in its own transaction that the lock is still held. A lock whose holder died is taken
 * over: at once when the holder's process is gone on this host, else once its heartbeat is older
 * than {@linkcode LOCK_STALE_MS}. Read-only commands (`status`, `--dry-run`) take no lock.
 *
 * @module
 */
import { hostname } from "node:os";
import process from "node:process";
import { StatecastError } from "./errors.ts";
import type { LockHolder, StateStore } from "./state_store.ts";

/** A lock whose heartbeat is older than this is taken over (the holder is gone or stuck). */
export const LOCK_STALE_MS = 30_000;

/** How often the holder refreshes its heartbeat. */
const HEARTBEAT_MS = 5_000;

/**
 * Whether `holder`'s run is gone: its heartbeat is stale, or it ran on `host` and its process no
 * longer exists.
 *
 * @example
 * ```ts
 * import { isStaleLock } from "./run_lock.ts";
 * const holder = { owner: "x", pid: 1, host: "elsewhere", startedAtMs: 0, heartbeatMs: 1_000 };
 * if (isStaleLock(holder, { now: 2_000, host: "here" })) throw new Error("fresh elsewhere");
 * if (!isStaleLock(holder, { now: 60_000, host: "here" })) throw new Error("no heartbeat");
 * ```
 */
export function isStaleLock(
  holder: LockHolder,
  here: { now: number; host: string },
): boolean {
  if (here.now - holder.heartbeatMs > LOCK_STALE_MS) return true;
  return holder.host === here.host && !processExists(holder.pid);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only checks that the process exists
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** The lock of one app held by this run; `await using` gives it back. */
export class RunLock implements AsyncDisposable {
  readonly #store: StateStore;
  readonly #timer: ReturnType<typeof setInterval>;

  private constructor(store: StateStore, onLost: () => void) {
    this.#store = store;
    this.#timer = setInterval(() => {
      this.#store.heartbeat().then((held) => held || onLost(), () => {});
    }, HEARTBEAT_MS);
  }

  /**
   * Takes `app`'s lock in `store`, taking over a stale one. Throws a `StatecastError` naming the
   * holder when another live run has it. `onLost` is called if the lock is later taken over.
   */
  static async acquire(
    store: StateStore,
    app: string,
    options: { onLost?: () => void } = {},
  ): Promise<RunLock> {
    const now = Date.now();
    const host = hostname();
    const holder: LockHolder = {
      owner: crypto.randomUUID(),
      pid: process.pid,
      host,
      startedAtMs: now,
      heartbeatMs: now,
    };
    const current = await store.acquireLock(app, holder, (h) => isStaleLock(h, { now, host }));
    if (current !== undefined) {
      throw new StatecastError(
        `Another run of app "${app}" is using the state store "${store.url}": ` +
          `${describeHolder(current, now)}. Wait for it to finish or stop it; a lock whose run ` +
          `died is taken over (at once on its host, else after ${LOCK_STALE_MS / 1000} s)`,
      );
    }
    return new RunLock(store, options.onLost ?? (() => {}));
  }

  /** Gives the lock back. */
  async release(): Promise<void> {
    clearInterval(this.#timer);
    await this.#store.releaseLock();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/** "process 123 on host h, started 12:00:01 UTC, last seen 2 s ago", for messages. */
export function describeHolder(holder: LockHolder, now: number = Date.now()): string {
  const started = new Date(holder.startedAtMs).toISOString().replace("T", " ").slice(0, 19);
  const seen = Math.max(0, Math.round((now - holder.heartbeatMs) / 1000));
  return `process ${holder.pid} on host "${holder.host}", started ${started} UTC, ` +
    `last seen ${seen} s ago`;
}
