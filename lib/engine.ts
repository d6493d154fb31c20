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
import type { EngineState } from "./_engine_state.ts";
import type { ComponentFn, RoundOptions, RoundSummary, SourceItem } from "./round.ts";
import type { ComponentRow, StateStore } from "./state_store.ts";
import type { Target } from "./target.ts";
import { Round } from "./_round.ts";

export type { OnDuplicateKey } from "./_collector.ts";
export type {
  ComponentFailure,
  ComponentFn,
  PlannedChange,
  RefusedDeletes,
  RoundOptions,
  RoundSummary,
  SourceItem,
} from "./round.ts";

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
   * are forgotten at the end of a round that got through (not when a mounted target failed, as a
   * mistyped topic does); nothing is sent to it. Returns the ids of such targets.
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
