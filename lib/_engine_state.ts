/**
 * What a round needs of the engine (private): the store, the mounted targets and the state the
 * engine keeps between rounds, which a round updates as it commits.
 *
 * @module
 */
import type { ComponentRow, StateStore } from "./state_store.ts";
import type { Target } from "./target.ts";

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
  readonly inDoubt: Map<string, KeysInDoubt>;
  /** Stored targets that are not mounted: forgotten at the next commit. */
  readonly orphans: Set<string>;
}

/** Keys in doubt: a set, or the keys of the changes a chunk marked when none were in doubt. */
export type KeysInDoubt = ReadonlySet<string> | MarkedKeys;

/**
 * The keys of `changes` on `target`, marked in doubt when no key of the target was: the changes
 * themselves, and a set only if one is looked up. (A set of a chunk's 10,000 keys was built per
 * chunk and kept until its commit: 0.5 s CPU per 1M-row first publish, mostly GC.)
 */
export class MarkedKeys {
  #set: Set<string> | undefined;

  /** `size` keys of `changes` are on `target` (a chunk's changes have distinct keys per target). */
  constructor(
    readonly changes: ReadonlyArray<{ readonly target: string; readonly id: string }>,
    readonly target: string,
    readonly size: number,
  ) {}

  has(id: string): boolean {
    this.#set ??= new Set(this.keys());
    return this.#set.has(id);
  }

  *keys(): IterableIterator<string> {
    for (const change of this.changes) if (change.target === this.target) yield change.id;
  }
}
