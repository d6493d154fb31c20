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
  readonly inDoubt: Map<string, Set<string>>;
  /** Stored targets that are not mounted: forgotten at the next commit. */
  readonly orphans: Set<string>;
}
