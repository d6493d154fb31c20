/**
 * One chunk of a round, looked up and planned (private to the engine): what the store knows about
 * the keys the chunk's components touch (their committed key lists, the other components that
 * declare the same keys, the keys being retracted), and the plan `reconcile()` makes of it. The
 * look-up is the only I/O; planning is pure.
 *
 * @module
 */
import type { Declarations } from "./_collector.ts";
import type { EngineState, MarkedKeys } from "./_engine_state.ts";
import { type Fingerprint, keyHash } from "./fingerprint.ts";
import { keyFromId } from "./key_id.ts";
import { KeyTable } from "./_key_table.ts";
import type { ComponentRecord } from "./memo.ts";
import { type Declared, ownerOf, reconcile } from "./reconcile.ts";
import type { KeyFingerprints } from "./state_store.ts";
import type { Change, DeclaredState } from "./target.ts";

/** The components of one chunk: what each declares now (gone ones declare nothing). */
export interface Chunk {
  ran: Map<string, Declarations>;
  memo: Map<string, ComponentRecord>;
  removed: Set<string>;
  /** Plan the keys in doubt in this chunk (the round's first). */
  doubts: boolean;
  /**
   * Components of the chunk whose rows are sent again (`RoundOptions.resend`): a key one of them
   * owns is upserted even when its value did not change.
   */
  resent: Set<string>;
}

/** What the store knows about the keys a chunk touches, per target. */
export interface Lookup {
  /** The chunk's components' committed key lists. */
  prev: Map<string, Map<string, KeyFingerprints>>;
  /** Committed declarers outside the chunk, per key id, with their key lists. */
  others: Map<string, Map<string, string[]>>;
  otherKeys: Map<string, Map<string, KeyFingerprints>>;
  /** Keys nobody declares whose delete is not sent yet, with what the target holds. */
  retracting: Map<string, Map<string, Fingerprint | undefined>>;
  /** Per target, the keys the chunk touches (one key list itself, when only one touches any). */
  touched: Map<string, KeySet>;
  /**
   * Per target, the {@linkcode keyHash} of every touched key, in the order of `touched` (the
   * commit's index rows need them again): an array, not a map of 10,000 keys per chunk (whose
   * entries and numbers lived until the commit and were promoted, GC work per row).
   */
  hashes: Map<string, HashedKeys>;
}

/** Keys and their hashes, `hashes[i]` the hash of the `i`-th key of `keys`. */
export class HashedKeys {
  #byKey: KeyTable<number> | undefined;

  constructor(readonly keys: KeySet, readonly hashes: readonly number[]) {}

  /** The hash of `id`: from the list when it is one of `keys` (a map made on first use). */
  hashOf(id: string): number {
    if (this.#byKey === undefined) {
      this.#byKey = new KeyTable(); // not a Map: V8 would hash every fresh key id
      let i = 0;
      for (const key of this.keys.keys()) this.#byKey.put(key, this.hashes[i++]!);
    }
    return this.#byKey.get(id) ?? keyHash(id);
  }
}

/** One planned action, with a component of the chunk that touched its key (for isolation). */
export interface Planned {
  target: string;
  id: string;
  anchor: string | undefined;
}

/** A chunk's plan: upserts to send now, deletes to record, retracting rows to clear. */
export interface Plan {
  /** Upserts, each its own change (one object per key: a chunk holds 10,000 until committed). */
  upserts: Array<Planned & Extract<Change<DeclaredState>, { kind: "upsert" }>>;
  deletes: Array<Planned & { fp: Fingerprint | undefined }>;
  unretract: Planned[];
  noops: number;
  /** Components whose value a key needs (they did not run), with the components giving it. */
  needed: Map<string, Set<string>>;
  /** Keys declared by several components: target, key id, declarers, owner. */
  conflicts: Array<[string, string, string[], string]>;
}

/**
 * Reads what the store knows about every key the chunk touches, in batched queries. Components
 * in `removed` are gone this round: they never declare anything any more.
 */
export async function lookUp(
  state: EngineState,
  chunk: Chunk,
  removed: ReadonlySet<string>,
): Promise<Lookup> {
  const { store, app } = state;
  const lookup: Lookup = {
    prev: new Map(),
    others: new Map(),
    otherKeys: new Map(),
    retracting: new Map(),
    touched: new Map(),
    hashes: new Map(),
  };
  const known = [...chunk.ran.keys()].filter((c) => state.components.has(c));
  const exclude = known.map((c) => state.components.get(c)!.id);
  for (const declarations of chunk.ran.values()) {
    for (const target of declarations.keys()) tidOf(state, target);
  }
  for (const [target, tid] of state.tids) {
    const prev = known.length === 0
      ? new Map<string, KeyFingerprints>()
      : await store.declarationsOf(app, target, known);
    const lists: KeySet[] = [...prev.values()];
    for (const declarations of chunk.ran.values()) {
      const keys = declarations.get(target);
      if (keys !== undefined && keys.size > 0) lists.push(keys);
    }
    const doubts = chunk.doubts ? state.inDoubt.get(target) : undefined;
    if (doubts !== undefined && doubts.size > 0) lists.push(doubts);
    const touched = union(lists);
    if (touched.size === 0) continue;
    const hashes = new Array<number>(touched.size);
    let n = 0;
    for (const id of touched.keys()) hashes[n++] = keyHash(id);
    lookup.hashes.set(target, new HashedKeys(touched, hashes));
    const found = await store.declarersOf(tid, hashes, exclude);
    // The keys of the hashes found: mostly none are (a first publish, a file's own keys), and
    // then no map from hashes to keys is made.
    const byHash = new Map<number, Several<string>>();
    if (found.length > 0) {
      const wanted = new Set(found.map(([h]) => h));
      let i = 0;
      for (const id of touched.keys()) {
        const h = hashes[i++]!;
        if (wanted.has(h)) add(byHash, h, id);
      }
    }
    // Declarers outside the chunk: candidates by hash, confirmed by their own key lists.
    const candidates = new Map<string, number[]>();
    for (const [h, cid] of found) {
      const path = state.paths.get(cid);
      if (path === undefined || removed.has(path)) continue; // gone: never declares
      const hashes = candidates.get(path);
      if (hashes === undefined) candidates.set(path, [h]);
      else hashes.push(h);
    }
    const otherKeys = candidates.size === 0
      ? new Map<string, KeyFingerprints>()
      : await store.declarationsOf(app, target, [...candidates.keys()]);
    const others = new Map<string, string[]>();
    for (const [path, hashes] of candidates) {
      const keys = otherKeys.get(path);
      for (const h of hashes) {
        for (const id of list(byHash.get(h))) {
          if (!keys?.has(id)) continue;
          const declarers = others.get(id);
          if (declarers === undefined) others.set(id, [path]);
          else declarers.push(path);
        }
      }
    }
    // Keys with no committed declarer may be retracting: the target still holds them. Mostly
    // nothing is (a first publish asks about every key): one probe says so.
    let retracting = new Map<string, Fingerprint | undefined>();
    if (await store.isRetracting(tid)) {
      const declaredBefore = new Set(others.keys());
      for (const keys of prev.values()) for (const id of keys.keys()) declaredBefore.add(id);
      const orphaned = [...touched.keys()].filter((id) => !declaredBefore.has(id));
      if (orphaned.length > 0) retracting = await store.retractingOf(tid, orphaned);
    }
    lookup.prev.set(target, prev);
    lookup.others.set(target, others);
    lookup.otherKeys.set(target, otherKeys);
    lookup.retracting.set(target, retracting);
    lookup.touched.set(target, touched);
  }
  return lookup;
}

/**
 * Plans every touched key of the chunk, with no I/O: for each, the owner before and after, what
 * was published, and the action `reconcile()` gives. `unreadable` components cannot run this
 * round: a key they would own waits.
 */
export function planChunk(
  state: EngineState,
  chunk: Chunk,
  lookup: Lookup,
  unreadable: ReadonlySet<string>,
): Plan {
  const plan: Plan = {
    upserts: [],
    deletes: [],
    unretract: [],
    noops: 0,
    needed: new Map(),
    conflicts: [],
  };
  for (const [target, touched] of lookup.touched) {
    const prev = lookup.prev.get(target)!;
    const others = lookup.others.get(target)!;
    const otherKeys = lookup.otherKeys.get(target)!;
    const retracting = lookup.retracting.get(target)!;
    const inDoubt = chunk.doubts ? state.inDoubt.get(target) : undefined;
    const fpOf = (c: string, id: string) => (prev.get(c) ?? otherKeys.get(c))?.get(id);
    // Who in the chunk declared each key before and declares it now: one pass per component.
    const hadBy = byKey(chunk, (c) => prev.get(c));
    const hasBy = byKey(chunk, (c) => chunk.ran.get(c)!.get(target));
    // Maps of key ids are asked only when they hold something: V8 hashes a key id for a look-up
    // even in an empty map, and a fresh one's first hash is costly (lib/_key_table.ts).
    const inRetracting = retracting.size > 0;
    // A chunk of one component that touches only its own keys (a new file, a first publish): its
    // table is read by position, the i-th key's state the i-th value, with no look-up per key.
    const [only] = chunk.ran.size === 1 ? chunk.ran.keys() : [];
    const own = only !== undefined && touched === chunk.ran.get(only)!.get(target) &&
        touched instanceof KeyTable
      ? touched as KeyTable<Declared<DeclaredState>>
      : undefined;
    let i = -1;
    for (const id of touched.keys()) {
      i++;
      const outside = others.size === 0 ? NONE : others.get(id) ?? NONE;
      const had = hadBy(id);
      const has = own !== undefined ? only : hasBy(id);
      const anchor = firstIn(had) ?? firstIn(has);
      // The owners before and after: the first of the declarers outside and in the chunk (no
      // arrays joined: this runs once per key).
      const previousOwner = firstOf(outside, had);
      const inRetract = previousOwner === undefined && inRetracting && retracting.has(id);
      const previous = previousOwner !== undefined
        ? fpOf(previousOwner, id)
        : inRetracting
        ? retracting.get(id)
        : undefined;
      const mayBeMissing = inDoubt !== undefined && inDoubt.size > 0 && inDoubt.has(id);
      const owner = firstOf(outside, has);
      if (outside.length + countOf(has) > 1) {
        plan.conflicts.push([target, id, [...outside, ...list(has)], owner!]);
      }
      let declared: Declared<DeclaredState> | undefined;
      /** The owner ran in this chunk to send its rows again: upsert whatever was published. */
      let again = false;
      if (owner !== undefined) {
        const fromRun = owner === only && own !== undefined
          ? own.valueAt(i)
          : chunk.ran.get(owner)?.get(target)?.get(id);
        if (fromRun !== undefined) {
          declared = fromRun;
          again = chunk.resent.has(owner);
        } else {
          const fp = fpOf(owner, id)!;
          if (mayBeMissing || fp !== previous) {
            // Its value is needed but only its fingerprint is known: it must run. The
            // components of the chunk that declared the key before hand it over. If it
            // cannot be read, the key waits, and they wait with it.
            if (unreadable.has(owner) && had === undefined) continue;
            let givers = plan.needed.get(owner);
            if (givers === undefined) plan.needed.set(owner, givers = new Set());
            for (const c of list(had)) givers.add(c);
            continue;
          }
          declared = { state: { key: keyFromId(id) }, fingerprint: fp };
        }
      }
      const action = reconcile(declared, previous, { mayBeMissing: mayBeMissing || again });
      if (action?.kind === "delete") {
        plan.deletes.push({ target, id, anchor, fp: previous });
        continue;
      }
      if (inRetract) plan.unretract.push({ target, id, anchor });
      if (action === null) plan.noops++;
      else {
        plan.upserts.push({
          target,
          id,
          anchor,
          kind: "upsert",
          key: action.state.key,
          state: action.state,
        });
      }
    }
  }
  return plan;
}

/** The id of a target a component declared on; it must be mounted. */
function tidOf(state: EngineState, target: string): number {
  const tid = state.tids.get(target);
  if (tid === undefined) {
    throw new TypeError(
      `States were declared on target "${target}", which is not mounted: create targets ` +
        "with their mount function (kafka.mountTopicTarget) inside app.main()",
    );
  }
  return tid;
}

/** A set of key ids, or the keys of a map: what a chunk touches is often one file's key list. */
export type KeySet = ReadonlySet<string> | ReadonlyMap<string, unknown> | MarkedKeys;

/** The keys of `lists` together: the one list itself when there is one (no copy). */
function union(lists: KeySet[]): KeySet {
  if (lists.length === 1) return lists[0]!;
  const all = new KeyTable<true>(); // not a Set: V8 would hash every fresh key id
  for (const keys of lists) for (const id of keys.keys()) all.put(id, true);
  return all;
}

/**
 * Which of the chunk's components have a key in the list `keysOf` gives them, per key: a map,
 * or with one component in the chunk, a look-up in its list (no map per chunk).
 */
function byKey(
  chunk: Chunk,
  keysOf: (c: string) => KeySet | undefined,
): (id: string) => Several<string> | undefined {
  if (chunk.ran.size === 1) {
    const [c] = chunk.ran.keys() as MapIterator<string>;
    const keys = keysOf(c!);
    return (id) => keys?.has(id) ? c : undefined;
  }
  const found = new KeyTable<Several<string>>(); // not a Map: V8 would hash every fresh key id
  for (const c of chunk.ran.keys()) {
    for (const id of keysOf(c)?.keys() ?? []) {
      const earlier = found.put(id, c);
      if (earlier !== undefined) {
        found.put(id, typeof earlier === "string" ? [earlier, c] : [...earlier, c]);
      }
    }
  }
  return (id) => found.get(id);
}

/**
 * One value, or several: most keys have one declarer and most hashes one key, so the per-chunk
 * maps hold the value itself and an array only for the rare second one.
 */
export type Several<T extends string> = T | T[];

export function add<K, T extends string>(map: Map<K, Several<T>>, key: K, value: T): void {
  const found = map.get(key);
  if (found === undefined) map.set(key, value);
  else if (typeof found === "string") map.set(key, [found, value]);
  else found.push(value);
}

const NONE: readonly never[] = [];

/** The owner of the declarers in `a` and `b` together ({@linkcode ownerOf} of both). */
function firstOf(a: readonly string[], b: Several<string> | undefined): string | undefined {
  const x = a.length === 0 ? undefined : a.length === 1 ? a[0] : ownerOf(a);
  const y = typeof b === "object" ? ownerOf(b) : b;
  return x === undefined ? y : y === undefined || x < y ? x : y;
}

function firstIn<T extends string>(found: Several<T> | undefined): T | undefined {
  return typeof found === "object" ? found[0] : found;
}

function countOf<T extends string>(found: Several<T> | undefined): number {
  return found === undefined ? 0 : typeof found === "string" ? 1 : found.length;
}

export function list<T extends string>(found: Several<T> | undefined): readonly T[] {
  return found === undefined ? NONE : typeof found === "string" ? [found] : found;
}
