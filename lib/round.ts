/**
 * One reconcile round as its callers see it: the source items and component function it runs,
 * its options, and what it reports. The engine (`engine.ts`) runs rounds; `_round.ts` is how.
 *
 * @module
 */
import type { OnDuplicateKey } from "./_collector.ts";
import type { Fingerprint } from "./fingerprint.ts";
import type { Key } from "./key_id.ts";
import type { DeclaredState } from "./target.ts";

/**
 * One source item as the engine sees it; {@linkcode FileItem} is the one statecast has.
 *
 * @example
 * ```ts
 * import type { SourceItem } from "./mod.ts";
 * const text = new TextEncoder().encode("id\n1\n");
 * const item: SourceItem = {
 *   path: "memory/a.csv",
 *   size: text.length,
 *   mtimeMs: 0,
 *   bytes: () => Promise.resolve(text),
 * };
 * if ((await item.bytes()).length !== 5) throw new Error();
 * ```
 */
export interface SourceItem {
  /** Component id: the relative POSIX path. */
  readonly path: string;
  /** Size in bytes, for the memo (a changed size runs the component again). */
  readonly size: number;
  /** Modification time in ms, for the memo. */
  readonly mtimeMs: number;
  /** The item's bytes; read once and cached until {@linkcode SourceItem.release}. */
  bytes(): Promise<Uint8Array>;
  /** Drops the cached bytes: the engine is done with the item for this round. */
  release?(): void;
}

/** A component function as the engine runs it. */
export interface ComponentFn<I extends SourceItem = SourceItem> {
  run(item: I): Promise<void>;
  /** Skip items whose stat or content and logic are unchanged. */
  readonly memo: boolean;
  /** Fingerprint of the function's source, its version and statecast's state format. */
  readonly logicFingerprint: Fingerprint;
  readonly onDuplicateKey: OnDuplicateKey;
}

/**
 * A file that failed in a round: nothing it declared was published or retracted.
 *
 * @example
 * ```ts
 * import { type ComponentFailure, StatecastError } from "./mod.ts";
 * const failure: ComponentFailure = {
 *   path: "a.csv",
 *   error: new StatecastError('Cannot parse "a.csv" line 3: ...', { path: "a.csv", line: 3 }),
 * };
 * if ((failure.error as StatecastError).line !== 3) throw new Error();
 * ```
 */
export interface ComponentFailure {
  /** The file's relative path. */
  path: string;
  /** Why it failed: a `StatecastError` names the line when there is one. */
  error: unknown;
  /**
   * Set when the file waits: it hands keys to this component, which cannot be read now. The
   * file's committed state (its keys and its memo row) is kept until the handover happens.
   */
  blockedBy?: string;
}

/**
 * A planned change, for dry runs and logs (`RoundSummary.changes`, with `keepChanges`).
 *
 * @example
 * ```ts
 * import type { PlannedChange } from "./mod.ts";
 * const change: PlannedChange = { target: "kafka:kafka_producer/rows", kind: "delete", key: "A1" };
 * if (change.state !== undefined) throw new Error("a delete carries no state");
 * ```
 */
export interface PlannedChange {
  /** The target's id. */
  target: string;
  /** Upsert or delete. */
  kind: "upsert" | "delete";
  /** The key. */
  key: Key;
  /** The declared state, for an upsert. */
  state?: DeclaredState;
}

/**
 * Why the delete guard held a round's deletes back (`RoundSummary.refused`).
 *
 * @example
 * ```ts
 * import type { RefusedDeletes } from "./mod.ts";
 * const refused: RefusedDeletes = {
 *   target: "kafka:kafka_producer/rows",
 *   deletes: 30,
 *   keys: 41,
 *   reason: "that is 73% of its keys, more than the 50% allowed",
 * };
 * if (refused.deletes > refused.keys) throw new Error();
 * ```
 */
export interface RefusedDeletes {
  /** The target's id. */
  target: string;
  /** Deletes the round would have sent to the target. */
  deletes: number;
  /** Keys the target holds now. */
  keys: number;
  /** Why, in words: "that is 73% of its keys, more than the 50% allowed". */
  reason: string;
}

/**
 * What one reconcile round did: {@linkcode RunResult.summaries} holds one per round.
 *
 * @example
 * ```ts
 * import type { RoundSummary } from "./mod.ts";
 * function line(s: RoundSummary): string {
 *   const failed = s.failed.map((f) => f.path).join(", ");
 *   return `${s.upserts} upserts, ${s.deletes} deletes` + (failed ? `; failed: ${failed}` : "");
 * }
 * const summary: RoundSummary = {
 *   scanned: 2, gone: 0, unchanged: 1, processed: 1, failed: [], upserts: 3, deletes: 1,
 *   unchangedKeys: 5, conflicts: [], changes: [], committed: true, held: [], warnings: [],
 *   elapsedMs: 12,
 * };
 * if (line(summary) !== "3 upserts, 1 deletes") throw new Error();
 * ```
 */
export interface RoundSummary {
  /** Items looked at (present now, or gone since the last round). */
  scanned: number;
  /** Of `scanned`, the items gone since the last round (their keys are retracted or handed on). */
  gone: number;
  /** Items skipped by the memo (not parsed). */
  unchanged: number;
  /** Items whose component ran (or whose rows were retracted because they are gone). */
  processed: number;
  /** Items whose component failed: their keys keep what was published. */
  failed: ComponentFailure[];
  /** Upserts sent and committed. */
  upserts: number;
  /** Deletes sent and committed. */
  deletes: number;
  /** Keys touched by processed components whose published value did not change. */
  unchangedKeys: number;
  /** Conflicts seen: a key declared by more than one component. */
  conflicts: string[];
  /** The changes themselves (only with `keepChanges`). */
  changes: PlannedChange[];
  /**
   * Whether every change was applied and committed (false for a dry run, a failed apply, or
   * deletes held by the guard). A round commits chunk by chunk, so a failure in a later chunk
   * leaves the earlier ones committed.
   */
  committed: boolean;
  /** Why the round stopped, if a target failed. */
  applyError?: unknown;
  /**
   * Set when the delete guard held the deletes back: none was sent. With an empty source the
   * round commits nothing at all; otherwise the rest of the round went through, and the deletes
   * wait (remembered in the store) until a round may send them.
   */
  refused?: RefusedDeletes;
  /** Items held as not ready (an empty file): neither run nor retracted; tried again later. */
  held: Array<{ path: string; reason: string }>;
  /** Warnings about items that ran (a CSV header that looks delimited by another character). */
  warnings: Array<{ path: string; message: string }>;
  /** How long the round took (the app's catch-up round includes the scan). */
  elapsedMs: number;
}

/** Options of {@linkcode Engine.round}. */
export interface RoundOptions<I extends SourceItem = SourceItem> {
  /** Plan only: apply nothing, commit nothing (one chunk, memory not bounded). @default false */
  dryRun?: boolean;
  /** Keep the planned changes in the summary. @default false */
  keepChanges?: boolean;
  /** Items that are gone; components not listed in `items` are kept unless named here. */
  removed?: Iterable<string>;
  /** Every component not in `items` is gone (a full scan). @default false */
  fullScan?: boolean;
  /**
   * Folders of a full scan that could not be read: the components under them are kept as they
   * are (not gone), and each folder is reported as failed.
   */
  unreadable?: ReadonlyArray<{ path: string; error: unknown }>;
  /**
   * Gives the item of a component that was not in `items` but must run again (it becomes the
   * owner of a key another component stopped declaring). Partial rounds (live mode) need it.
   */
  resolve?: (path: string) => Promise<I | undefined>;
  /**
   * Components whose current rows are sent again (`--rerun`): they run whatever their memo says,
   * and every key one of them owns is upserted even when its value did not change. Nothing more
   * is deleted than a plain round would delete. @default none
   */
  resend?: (path: string) => boolean;
  /**
   * Hold back the deletes of a round that would delete more than this share of a target's keys
   * (above `DELETE_GUARD_FLOOR` deletes), or any key when a full scan found no items; 1 or more
   * allows every delete. @default 0.5
   */
  maxDeleteShare?: number;
  /**
   * A chunk ends once its files declared this many states: memory is bounded by a chunk (and by
   * the largest file, which always runs whole). 10,000 keeps a first publish of 1M rows under
   * 200 MB (kafkajs under Deno: 193 MB, 20.5 s; 20,000: 209 MB, 20.2 s). @default 10000
   */
  chunkRows?: number;
  /** A chunk ends after this many files. @default 1000 */
  chunkFiles?: number;
  /**
   * Called after each chunk was committed, when its memory is no longer needed (the app asks the
   * runtime for a garbage collection there: V8 otherwise lets the heap grow to several times
   * what a chunk holds).
   */
  onChunk?: () => void;
  /**
   * Called every 4,096 states a file declares (the app checks the heap there as well: the files
   * of a chunk allocate tens of MB between two chunk ends, and a large file is one chunk).
   */
  onDeclared?: () => void;
  /** Called after each file ran and each batch of changes was acknowledged, for progress. */
  onProgress?: ((phase: "files" | "changes", done: number, total: number) => void) | undefined;
}

/**
 * A summary of a round that has done nothing yet: every count 0, every list empty, not committed.
 *
 * @example
 * ```ts
 * import { emptyRoundSummary } from "./round.ts";
 * const summary = { ...emptyRoundSummary(), scanned: 2 };
 * if (summary.upserts !== 0 || summary.committed || summary.failed.length !== 0) throw new Error();
 * ```
 */
export function emptyRoundSummary(): RoundSummary {
  return {
    scanned: 0,
    gone: 0,
    unchanged: 0,
    processed: 0,
    failed: [],
    upserts: 0,
    deletes: 0,
    unchangedKeys: 0,
    conflicts: [],
    changes: [],
    committed: false,
    held: [],
    warnings: [],
    elapsedMs: 0,
  };
}
