/**
 * The engine: turns what components declare into the smallest set of changes for each target.
 *
 * Vocabulary, used the same way in every file of statecast:
 * - **component**: the unit of work for one source item (a file), identified by its relative
 *   path. Running it calls the user's function, which declares target states.
 * - **declared state**: what a component says a target should hold for one key
 *   (`declareTargetState({ key, value })`). A key is `string` or `Uint8Array`; a string is its
 *   UTF-8 bytes, so `"x"` and the bytes of `"x"` are the same key (`key_id.ts`).
 * - **fingerprint**: 64-bit xxHash of the bytes a declared state would send. The state store
 *   keeps, per target and component, the fingerprint of every key it declared.
 * - **owner**: of the components that declare a key, the first in path order. Its declared
 *   state is the one published. Two declarers are a conflict, reported with both paths.
 * - **previous**: the fingerprint of what was last published for a key (the committed owner's,
 *   or the retracting row's when nobody declares it any more). A key sent but not committed
 *   **may be missing**: whatever its fingerprints say, it is sent again.
 * - **upsert**: publish a declared state (new key, or fingerprint differs from previous).
 * - **delete**: publish a deletion (nobody declares the key any more).
 * - **no-op**: fingerprint equals previous; nothing is sent.
 * - **reconcile**: one round of: run the changed components in path order, in bounded chunks;
 *   per chunk, compare declared with previous for every key they touch, apply the upserts,
 *   await the acks, commit; at the end of the round, send the deletes. A crash before a commit
 *   re-sends on the next round (at least once); it never loses an upsert or a delete.
 *
 * Where each part lives: the target contract in `target.ts`, key ids in `key_id.ts`, the pure
 * rules in `reconcile.ts`, the memo in `memo.ts`, the key index in `key_index.ts`, one round's
 * work in `_round.ts`. The engine knows nothing about Kafka, files or processes.
 *
 * @module
 */
import type { Fingerprint } from "./fingerprint.ts";
import type { Key } from "./key_id.ts";
import type { ComponentRow, StateStore } from "./state_store.ts";
import type { DeclaredState, Target } from "./target.ts";
import type { OnDuplicateKey } from "./_collector.ts";
import { Round } from "./_round.ts";

export type { OnDuplicateKey } from "./_collector.ts";

/** One source item as the engine sees it. */
export interface SourceItem {
  /** Component id: the relative POSIX path. */
  readonly path: string;
  readonly size: number;
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

/** A file that failed in a round: nothing it declared was published or retracted. */
export interface ComponentFailure {
  path: string;
  error: unknown;
  /**
   * Set when the file waits: it hands keys to this component, which cannot be read now. The
   * file's committed state (its keys and its memo row) is kept until the handover happens.
   */
  blockedBy?: string;
}

/** A planned change, for dry runs and logs. */
export interface PlannedChange {
  target: string;
  kind: "upsert" | "delete";
  key: Key;
  state?: DeclaredState;
}

/** Why the delete guard held a round's deletes back. */
export interface RefusedDeletes {
  target: string;
  /** Deletes the round would have sent to the target. */
  deletes: number;
  /** Keys the target holds now. */
  keys: number;
  reason: string;
}

/** What one reconcile round did. */
export interface RoundSummary {
  /** Items looked at (present now, or gone since the last round). */
  scanned: number;
  /** Of `scanned`, the items gone since the last round (their keys are retracted or handed on). */
  gone: number;
  /** Items skipped by the memo (not parsed). */
  unchanged: number;
  /** Items whose component ran (or whose rows were retracted because they are gone). */
  processed: number;
  failed: ComponentFailure[];
  upserts: number;
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
   * Hold back the deletes of a round that would delete more than this share of a target's keys
   * (above `DELETE_GUARD_FLOOR` deletes), or any key when a full scan found no items; 1 or more
   * allows every delete. @default 0.5
   */
  maxDeleteShare?: number;
  /**
   * A chunk ends once its files declared this many states: memory is bounded by a chunk (and by
   * the largest file, which always runs whole). @default 20000
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
  /** Called after each file ran and each batch of changes was acknowledged, for progress. */
  onProgress?: ((phase: "files" | "changes", done: number, total: number) => void) | undefined;
}

/** What a round needs of the engine: its store, targets and the state kept between rounds. */
export interface EngineState {
  readonly store: StateStore;
  readonly app: string;
  readonly targets: ReadonlyMap<string, Target>;
  /** Target → its id in the key index. */
  readonly tids: ReadonlyMap<string, number>;
  /** The committed memo rows, by path. */
  readonly components: Map<string, ComponentRow>;
  /** Component id → path. */
  readonly paths: Map<number, string>;
  /** Per target, keys sent but not committed: the target may hold a value the store lacks. */
  readonly inDoubt: Map<string, Set<string>>;
  /** Stored targets that are not mounted: forgotten at the next commit. */
  readonly orphans: Set<string>;
}

/**
 * Runs reconcile rounds against a state store and a set of targets. Between rounds it keeps one
 * memo row per file and the keys in doubt, never the keys themselves: those are read from the
 * store's key index for the files a round runs.
 */
export class Engine {
  readonly #store: StateStore;
  readonly #app: string;
  readonly #targets = new Map<string, Target>();
  #state: EngineState | undefined;

  constructor(store: StateStore, app: string) {
    this.#store = store;
    this.#app = app;
  }

  /** Registers a target. Two targets with one identity are a mistake. */
  addTarget(target: Target): void {
    const existing = this.#targets.get(target.id);
    if (existing !== undefined && existing !== target) {
      throw new TypeError(`Target "${target.id}" is mounted twice`);
    }
    this.#targets.set(target.id, target);
  }

  /**
   * Loads the committed memo of the app (once), after the targets were added: one row per file,
   * no keys. The keys of a stored target that is no longer mounted (the topic was renamed, say)
   * are forgotten at the next commit; nothing is sent to it. Returns the ids of such targets.
   */
  async load(): Promise<string[]> {
    if (this.#state !== undefined) return [];
    const store = this.#store;
    const components = await store.loadComponents(this.#app);
    const paths = new Map<number, string>();
    for (const [path, row] of components) paths.set(row.id, path);
    const orphans = new Set<string>();
    for (const target of await store.knownTargets(this.#app)) {
      if (!this.#targets.has(target)) orphans.add(target);
    }
    const inDoubt = new Map<string, Set<string>>();
    for (const [target, keys] of await store.loadInDoubt(this.#app)) {
      if (this.#targets.has(target)) inDoubt.set(target, keys);
    }
    this.#state = {
      store,
      app: this.#app,
      targets: this.#targets,
      tids: await store.targetIds(this.#app, this.#targets.keys()),
      components,
      paths,
      inDoubt,
      orphans,
    };
    return [...orphans];
  }

  /** Component ids (relative paths) with committed state. */
  knownComponents(): string[] {
    return [...this.#loaded().components.keys()];
  }

  /** How many components have committed state (0 before {@linkcode Engine.load}). */
  componentCount(): number {
    return this.#state?.components.size ?? 0;
  }

  /** How many keys are in doubt (sent, not committed), all targets together. */
  inDoubtCount(): number {
    let count = 0;
    for (const keys of this.#state?.inDoubt.values() ?? []) count += keys.size;
    return count;
  }

  /** The committed memo row of a component, if it has one. */
  componentRecord(path: string): ComponentRow | undefined {
    return this.#loaded().components.get(path);
  }

  #loaded(): EngineState {
    if (this.#state === undefined) throw new Error("Engine.load() was not awaited");
    return this.#state;
  }

  /** Runs one reconcile round over `items` (the items present now, or the ones that changed). */
  round<I extends SourceItem>(
    fn: ComponentFn<I>,
    items: ReadonlyArray<I>,
    options: RoundOptions<I> = {},
  ): Promise<RoundSummary> {
    return new Round(this.#loaded(), fn, items, options).run();
  }
}
