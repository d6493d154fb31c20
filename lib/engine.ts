/**
 * The engine: turns what components declare into the smallest set of changes for each target.
 *
 * Vocabulary, used the same way in every file of statecast:
 * - **component**: the unit of work for one source item (a file), identified by its relative
 *   path. Running it calls the user's function, which declares target states.
 * - **declared state**: what a component says a target should hold for one key
 *   (`declareTargetState({ key, value })`). A key is `string` or `Uint8Array`; a string is its
 *   UTF-8 bytes, so `"x"` and the bytes of `"x"` are the same key.
 * - **fingerprint**: 64-bit xxHash of the bytes a declared state would send. The state store
 *   keeps, per target and component, the fingerprint of every key it declared.
 * - **owner**: of the components that declare a key, the first in path order. Its declared
 *   state is the one published. Two declarers are a conflict, reported with both paths.
 * - **previous**: the fingerprint of what was last published for a key (the committed owner's).
 * - **upsert**: publish a declared state (new key, or fingerprint differs from previous).
 * - **delete**: publish a deletion (nobody declares the key any more).
 * - **no-op**: fingerprint equals previous; nothing is sent.
 * - **reconcile**: one round of: run changed components, compare declared with previous for
 *   every key they touch, apply the changes to each target, await its acks, then commit the new
 *   fingerprints and memo rows in one transaction. A crash before the commit re-sends on the next
 *   round (at least once); it never loses an upsert or a delete.
 *
 * The engine knows nothing about Kafka: a {@linkcode Target} supplies its identity, the
 * fingerprint of a declared state, and how to apply a batch of changes.
 *
 * @module
 */
import { StatecastError } from "./errors.ts";
import { type Fingerprint, fingerprint } from "./fingerprint.ts";
import type {
  ComponentRecord,
  KeyFingerprints,
  RoundCommit,
  StateStore,
  StoredState,
} from "./state_store.ts";

/** A key as a user declares it. */
export type Key = string | Uint8Array;

/** What every declared state has: a key. Targets add the rest (value, headers, columns...). */
export interface DeclaredState {
  key: Key;
}

/** An upsert or a delete for one key of one target. */
export type Change<S extends DeclaredState> =
  | { kind: "upsert"; key: Key; state: S }
  | { kind: "delete"; key: Key };

/**
 * A target: where declared states end up (a Kafka topic, a database table...).
 * Adding a target never touches the engine.
 */
export interface Target<S extends DeclaredState = DeclaredState> {
  /** Stable identity in the state store; the same identity means nothing is re-sent. */
  readonly id: string;
  /** Fingerprint of the bytes `state` would be sent as. */
  fingerprint(state: S): Fingerprint;
  /**
   * Applies changes, resolving once every one is acknowledged. Rejects if any was not; then the
   * engine commits nothing of the round and retries on the next one.
   */
  apply(
    changes: ReadonlyArray<Change<S>>,
    onApplied?: (count: number) => void,
  ): Promise<void>;
}

/** A declared state with its fingerprint, as reconcile sees it. */
export interface Declared<S> {
  state: S;
  fingerprint: Fingerprint;
}

/**
 * The reconcile rule for one key: upsert a new or changed value, delete a key nobody declares,
 * and do nothing when the fingerprint is unchanged. Pure; one action per key.
 *
 * @example
 * ```ts
 * import { reconcile } from "./engine.ts";
 * const declared = { state: { key: "k" }, fingerprint: "00000000000000aa" };
 * if (reconcile(declared, undefined)?.kind !== "upsert") throw new Error();
 * if (reconcile(declared, "00000000000000aa") !== null) throw new Error();
 * if (reconcile(undefined, "00000000000000aa")?.kind !== "delete") throw new Error();
 * ```
 */
export function reconcile<S>(
  declared: Declared<S> | undefined,
  previous: Fingerprint | undefined,
): { kind: "upsert"; state: S } | { kind: "delete" } | null {
  if (declared === undefined) return previous === undefined ? null : { kind: "delete" };
  if (declared.fingerprint === previous) return null;
  return { kind: "upsert", state: declared.state };
}

// Keys are compared as strings ("key ids"): a string key is itself (made well-formed, as its
// UTF-8 bytes are); a byte key is its UTF-8 decoding when valid, else a marker plus one char per
// byte. A lone surrogate cannot come out of a valid decoding, so the marker cannot collide.
const BINARY_MARKER = "\uD800";
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The string a key is compared by. Same bytes, same id. */
export function keyId(key: Key): string {
  if (typeof key === "string") return key.isWellFormed() ? key : key.toWellFormed();
  try {
    return strictDecoder.decode(key);
  } catch {
    let s = BINARY_MARKER;
    for (const b of key) s += String.fromCharCode(b);
    return s;
  }
}

/**
 * Whether a key id stands for bytes that are not UTF-8. A valid decoding can also start with
 * U+D800, but only as the high half of a surrogate pair (U+10000 to U+103FF); a binary id's marker
 * is followed by a character below U+0100.
 */
function isBinaryId(id: string): boolean {
  if (!id.startsWith(BINARY_MARKER)) return false;
  const next = id.charCodeAt(1);
  return !(next >= 0xdc00 && next <= 0xdfff);
}

/** The key to send for a key id: the string itself, or the original bytes. */
export function keyFromId(id: string): Key {
  if (!isBinaryId(id)) return id;
  const bytes = new Uint8Array(id.length - 1);
  for (let i = 1; i < id.length; i++) bytes[i - 1] = id.charCodeAt(i);
  return bytes;
}

/** A key id for messages: printable, short. */
export function showKey(id: string): string {
  const shown = isBinaryId(id) ? `<${id.length - 1} bytes>` : JSON.stringify(id);
  return shown.length > 80 ? shown.slice(0, 77) + "..." : shown;
}

/** The previous fingerprint of a key in doubt: equal to no fingerprint, so it is always sent. */
const IN_DOUBT = "in-doubt";

/** How a component reacts to declaring one key twice. @default "error" */
export type OnDuplicateKey = "error" | "last";

interface Collected {
  state: DeclaredState;
  fingerprint: Fingerprint;
  line: number | undefined;
}

/** What one run of a component declared, per target id and key id. */
class Collector {
  readonly byTarget = new Map<string, Map<string, Collected>>();
  /** The source line being processed; set by sources that know it (CSV rows). */
  line: number | undefined;

  constructor(readonly component: string, readonly onDuplicateKey: OnDuplicateKey) {}

  declare<S extends DeclaredState>(target: Target<S>, state: S): void {
    let states = this.byTarget.get(target.id);
    if (states === undefined) this.byTarget.set(target.id, states = new Map());
    const id = keyId(state.key);
    const earlier = states.get(id);
    if (earlier !== undefined && this.onDuplicateKey === "error") {
      const where = (line: number | undefined) => line === undefined ? "" : ` line ${line}`;
      throw new StatecastError(
        `Duplicate key ${showKey(id)} in "${this.component}": declared at${
          where(earlier.line)
        } and again at${where(this.line)}`,
        { path: this.component, ...(this.line === undefined ? {} : { line: this.line }) },
      );
    }
    states.set(id, { state, fingerprint: target.fingerprint(state), line: this.line });
  }
}

let active: Collector | undefined;

/**
 * Declares a target state for the running component. Targets call this from their own
 * `declareTargetState`; it is not part of the user-facing API.
 */
export function declare<S extends DeclaredState>(target: Target<S>, state: S): void {
  if (active === undefined) {
    throw new TypeError(
      `declareTargetState() on "${target.id}" was called outside a component: ` +
        "call it from the function given to app.mountEach()",
    );
  }
  active.declare(target, state);
}

/** Tells the running component which source line it is on (for error messages). */
export function setSourceLine(line: number): void {
  if (active !== undefined) active.line = line;
}

/** One source item as the engine sees it. */
export interface SourceItem {
  /** Component id: the relative POSIX path. */
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** The item's bytes; read once and cached. */
  bytes(): Promise<Uint8Array>;
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

/** What one reconcile round did. */
export interface RoundSummary {
  /** Items looked at (present now, or gone since the last round). */
  scanned: number;
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
  /** Whether the changes were applied and committed (false for a dry run or a failed apply). */
  committed: boolean;
  /** Why the round's changes were not applied, if a target failed. */
  applyError?: unknown;
  /** Set when the delete guard refused the round: nothing was sent or committed. */
  refused?: RefusedDeletes;
  /** Items held as not ready (an empty file): neither run nor retracted; tried again later. */
  held: Array<{ path: string; reason: string }>;
  elapsedMs: number;
}

/** Why a round was refused by the delete guard. */
export interface RefusedDeletes {
  target: string;
  /** Deletes the round would have sent to the target. */
  deletes: number;
  /** Keys the target holds now. */
  keys: number;
  reason: string;
}

/**
 * A round deletes at most this many keys of a target without the share check: removing a small
 * file is never mistaken for a mount that is not ready.
 */
export const DELETE_GUARD_FLOOR = 20;

/** Share of a target's keys a round may delete, unless deletes are allowed. @default 0.5 */
export const DEFAULT_MAX_DELETE_SHARE = 0.5;

/**
 * The delete guard, a pure rule: why a round that deletes `deletes` of the `keys` a target holds
 * is refused, or null. A `maxShare` of 1 or more allows everything; else an empty source that
 * would retract keys is refused whatever the count, and so are more than `DELETE_GUARD_FLOOR`
 * deletes that exceed `maxShare` of the keys.
 *
 * @example
 * ```ts
 * import { deleteGuard } from "./engine.ts";
 * if (deleteGuard({ deletes: 5, keys: 8, emptySource: false, maxShare: 0.5 }) !== null) {
 *   throw new Error("a few deletes are fine");
 * }
 * if (deleteGuard({ deletes: 600, keys: 1000, emptySource: false, maxShare: 0.5 }) === null) {
 *   throw new Error("most keys at once is refused");
 * }
 * ```
 */
export function deleteGuard(
  round: { deletes: number; keys: number; emptySource: boolean; maxShare: number },
): string | null {
  const { deletes, keys, emptySource, maxShare } = round;
  if (deletes === 0 || maxShare >= 1) return null;
  if (emptySource) return "the source has no files (a wrong folder, or a mount that is not ready?)";
  if (deletes <= DELETE_GUARD_FLOOR || deletes <= maxShare * keys) return null;
  const share = Math.round((deletes / Math.max(keys, 1)) * 100);
  return `that is ${share}% of its keys, more than the ${Math.round(maxShare * 100)}% allowed`;
}

/** Options of {@linkcode Engine.round}. */
export interface RoundOptions<I extends SourceItem = SourceItem> {
  /** Plan only: apply nothing, commit nothing. @default false */
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
   * Refuse a round that would delete more than this share of a target's keys (above
   * `DELETE_GUARD_FLOOR` deletes), or any key when a full scan found no items; 1 or more allows
   * every delete. @default 0.5
   */
  maxDeleteShare?: number;
  /** Called after each file ran and each batch of changes was acknowledged, for progress. */
  onProgress?: ((phase: "files" | "changes", done: number, total: number) => void) | undefined;
}

/**
 * Within this many milliseconds of the recorded scan, a file's stat is not trusted (a file
 * rewritten within the clock's resolution keeps size and mtime): its content is hashed instead.
 */
export const RACY_WINDOW_MS = 2000;

/** Runs reconcile rounds against a state store and a set of targets. */
export class Engine {
  readonly #store: StateStore;
  readonly #app: string;
  readonly #targets = new Map<string, Target>();
  #state: StoredState | undefined;
  /** Per target: key id → declaring components (one, or a sorted array). */
  readonly #index = new Map<string, Map<string, string | string[]>>();
  #declarationsLoaded = false;
  /** Per target, keys sent but not committed: the target may hold a value the store lacks. */
  readonly #inDoubt = new Map<string, Set<string>>();
  /** Stored targets that are not mounted: forgotten at the next commit. */
  readonly #orphans = new Set<string>();

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
   * Loads the committed memo of the app (once), after the targets were added. Key fingerprints
   * are read only when a round has files to reconcile, so a run where nothing changed reads one
   * row per file and no keys. The keys of a stored target that is no longer mounted (the topic
   * was renamed, say) are forgotten at the next commit; nothing is sent to it. Returns the ids
   * of such targets.
   */
  async load(): Promise<string[]> {
    if (this.#state !== undefined) return [];
    const components = await this.#store.loadComponents(this.#app);
    for (const { target } of await this.#store.targets(this.#app)) {
      if (!this.#targets.has(target)) this.#orphans.add(target);
    }
    for (const [target, keys] of await this.#store.loadInDoubt(this.#app)) {
      if (this.#targets.has(target)) this.#inDoubt.set(target, keys);
      else this.#orphans.add(target);
    }
    this.#state = { components, declarations: new Map() };
    return [...this.#orphans];
  }

  /** Reads every key fingerprint and builds the key index, the first time a round needs them. */
  async #loadDeclarations(): Promise<void> {
    if (this.#declarationsLoaded) return;
    const state = this.#loaded();
    state.declarations = await this.#store.loadDeclarations(this.#app);
    for (const target of this.#orphans) state.declarations.delete(target);
    this.#index.clear();
    for (const [target, byComponent] of state.declarations) {
      for (const [component, keys] of byComponent) {
        for (const id of keys.keys()) this.#indexAdd(target, id, component);
      }
    }
    this.#declarationsLoaded = true;
  }

  /** Component ids with committed state. */
  knownComponents(): string[] {
    return [...this.#loaded().components.keys()];
  }

  #loaded(): StoredState {
    if (this.#state === undefined) throw new Error("Engine.load() was not awaited");
    return this.#state;
  }

  #indexAdd(target: string, id: string, component: string): void {
    let keys = this.#index.get(target);
    if (keys === undefined) this.#index.set(target, keys = new Map());
    const current = keys.get(id);
    if (current === undefined) keys.set(id, component);
    else if (typeof current === "string") {
      if (current !== component) keys.set(id, [current, component].sort());
    } else if (!current.includes(component)) {
      current.push(component);
      current.sort();
    }
  }

  #indexRemove(target: string, id: string, component: string): void {
    const keys = this.#index.get(target);
    const current = keys?.get(id);
    if (keys === undefined || current === undefined) return;
    if (typeof current === "string") {
      if (current === component) keys.delete(id);
      return;
    }
    const rest = current.filter((c) => c !== component);
    keys.set(id, rest.length === 1 ? rest[0]! : rest);
  }

  /**
   * Runs one reconcile round over `items` (the items present now, or the ones that changed).
   */
  async round<I extends SourceItem>(
    fn: ComponentFn<I>,
    items: ReadonlyArray<I>,
    options: RoundOptions<I> = {},
  ): Promise<RoundSummary> {
    const started = performance.now();
    const state = this.#loaded();
    // The memo is valid for one function *and* one set of targets: a newly mounted target (a
    // renamed topic) must receive every file's states, so every file runs again.
    const logic = fingerprint(
      `${fn.logicFingerprint}\n${[...this.#targets.keys()].sort().join("\n")}`,
    );
    const summary: RoundSummary = {
      scanned: items.length,
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
      elapsedMs: 0,
    };

    // Components that ran (or are gone) this round, with what they declare now.
    const ran = new Map<string, Map<string, Map<string, Collected>>>();
    const memoUpdates = new Map<string, ComponentRecord>();
    const removed = new Set(options.removed ?? []);
    const unreadableFolders = options.unreadable ?? [];
    summary.failed.push(...unreadableFolders);
    if (options.fullScan) {
      const present = new Set(items.map((i) => i.path));
      const hidden = (c: string) => unreadableFolders.some((u) => c.startsWith(u.path + "/"));
      for (const c of state.components.keys()) {
        if (!present.has(c) && !hidden(c)) removed.add(c);
      }
    }
    for (const c of removed) ran.set(c, new Map());
    summary.scanned += removed.size;

    const itemsByPath = new Map(items.map((i) => [i.path, i]));
    const runOne = async (item: I, force: boolean): Promise<void> => {
      const scanTime = Date.now();
      const previous = state.components.get(item.path);
      const sameLogic = fn.memo && !force && previous?.logicFingerprint === logic;
      if (
        sameLogic && previous.size === item.size && previous.mtimeMs === item.mtimeMs &&
        item.mtimeMs < previous.recordedAtMs - RACY_WINDOW_MS
      ) {
        summary.unchanged++;
        return;
      }
      let content: Fingerprint;
      try {
        const bytes = await item.bytes();
        if (bytes.length === 0) {
          // A file truncated to nothing is far more often caught mid-write than meant to be
          // empty (a header-only file really has no rows): keep what it published.
          summary.held.push({
            path: item.path,
            reason: "the file is empty (0 bytes): held as not ready; what it published stays",
          });
          return;
        }
        content = fingerprint(bytes);
      } catch (error) {
        summary.failed.push({ path: item.path, error });
        return;
      }
      const record: ComponentRecord = {
        size: item.size,
        mtimeMs: item.mtimeMs,
        contentFingerprint: content,
        logicFingerprint: logic,
        recordedAtMs: scanTime,
      };
      if (sameLogic && previous.contentFingerprint === content) {
        summary.unchanged++;
        memoUpdates.set(item.path, record); // new stat, same content: remember, do not parse
        return;
      }
      const collector = new Collector(item.path, fn.onDuplicateKey);
      active = collector;
      try {
        await fn.run(item);
      } catch (error) {
        summary.failed.push({ path: item.path, error });
        return;
      } finally {
        active = undefined;
      }
      summary.processed++;
      ran.set(item.path, collector.byTarget);
      memoUpdates.set(item.path, record);
    };

    let done = 0;
    for (const item of items) {
      await runOne(item, false);
      options.onProgress?.("files", ++done, items.length);
    }
    summary.processed += removed.size;

    // Plan per target. When a key's new owner is a component that did not run, its value is not
    // in memory: run that component too and plan again.
    type Group = Map<string, Map<string, Map<string, Collected>>>;
    // Owners that could not be read this round: their keys wait, with the files that gave them.
    const unreadable = new Set<string>();
    const planFor = async (group: Group, conflicts: string[], allInDoubt: boolean) => {
      for (;;) {
        const needed = new Map<string, Set<string>>();
        const result = this.#plan(group, needed, conflicts, unreadable, allInDoubt);
        const missing = [...needed.keys()].filter((c) => !group.has(c));
        if (missing.length === 0) return result;
        for (const c of missing) {
          const failedBefore = summary.failed.some((f) => f.path === c);
          if (!ran.has(c) && !failedBefore) {
            const item = itemsByPath.get(c) ?? await options.resolve?.(c);
            if (item !== undefined) await runOne(item, true);
          }
          const declared = ran.get(c);
          if (declared !== undefined) {
            group.set(c, declared);
            continue;
          }
          // The key's next owner cannot be read now. Publishing anything for the key could be
          // wrong, so the files that stopped declaring it wait (their rows stay as they are);
          // everything else goes on.
          unreadable.add(c);
          for (const giver of needed.get(c)!) {
            group.delete(giver);
            ran.delete(giver);
            memoUpdates.delete(giver);
            // A file that is gone waits too: committing its removal would forget what it owes.
            removed.delete(giver);
            summary.failed.push({
              path: giver,
              blockedBy: c,
              error: new StatecastError(
                `"${giver}" was not published: keys it no longer declares now belong to ` +
                  `"${c}", which could not be read`,
                { path: giver },
              ),
            });
          }
        }
      }
    };
    const count = (plan: Map<string, Array<Change<DeclaredState>>>) => {
      for (const [target, changes] of plan) {
        for (const change of changes) {
          if (change.kind === "upsert") summary.upserts++;
          else summary.deletes++;
          if (options.keepChanges) {
            summary.changes.push(
              change.kind === "upsert"
                ? { target, kind: "upsert", key: change.key, state: change.state }
                : { target, kind: "delete", key: change.key },
            );
          }
        }
      }
    };
    const finish = () => {
      summary.elapsedMs = performance.now() - started;
      return summary;
    };

    const doubts = [...this.#inDoubt.values()].some((keys) => keys.size > 0);
    if (ran.size > 0 || doubts) await this.#loadDeclarations();
    const planned = await planFor(ran, summary.conflicts, true);
    summary.unchangedKeys = planned.noops;
    count(planned.plan);
    const refused = await this.#guardDeletes(planned.plan, {
      emptySource: options.fullScan === true && items.length === 0,
      maxShare: options.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE,
    });
    if (refused !== undefined) summary.refused = refused;
    if (options.dryRun || refused !== undefined) return finish();
    await this.#markInDoubt(planned.plan);
    try {
      await this.#apply(planned.plan, options.onProgress);
    } catch (error) {
      if (!isRefusal(error)) {
        summary.applyError = error;
        return finish();
      }
      // The target refused some of the data itself (a message too large...): trying again will
      // not help, so find the files it comes from. Apply and commit file by file; a refused
      // file fails like a file that cannot be parsed, and the others go through.
      summary.upserts = summary.deletes = 0;
      summary.changes = [];
      for (const members of this.#linkedGroups(ran)) {
        const c = members[0]!;
        if (!ran.has(c) || summary.failed.some((f) => f.path === c)) continue;
        const group: Group = new Map(members.map((m) => [m, ran.get(m)!]));
        const one = await planFor(group, [], false);
        try {
          await this.#apply(one.plan);
        } catch (error) {
          if (!isRefusal(error)) {
            summary.applyError = error;
            return finish();
          }
          for (const member of group.keys()) summary.failed.push({ path: member, error });
          for (const member of group.keys()) ran.delete(member);
          continue;
        }
        count(one.plan);
        const memo = new Map<string, ComponentRecord>();
        for (const m of group.keys()) {
          const record = memoUpdates.get(m);
          if (record !== undefined) memo.set(m, record);
        }
        const gone = new Set([...group.keys()].filter((m) => removed.has(m)));
        await this.#commit(group, memo, gone, one.plan);
        for (const member of group.keys()) {
          ran.delete(member);
          memoUpdates.delete(member);
        }
      }
      // What is left: memo rows of files whose content did not change.
      for (const f of summary.failed) memoUpdates.delete(f.path);
      await this.#commit(new Map(), memoUpdates, new Set(), new Map());
      summary.committed = true;
      return finish();
    }
    testHook("after-apply");
    await this.#commit(ran, memoUpdates, removed, planned.plan);
    summary.committed = true;
    return finish();
  }

  /**
   * The ran components in groups that share no key (before or now, on any target), sorted: files
   * that hand keys to each other are applied and committed together, so the isolation path never
   * sends a key's tombstone in one group and its new owner's value in another.
   */
  #linkedGroups(ran: Map<string, Map<string, Map<string, Collected>>>): string[][] {
    const parent = new Map<string, string>();
    const find = (c: string): string => {
      let root = c;
      while (parent.get(root) !== root) root = parent.get(root)!;
      parent.set(c, root);
      return root;
    };
    const firstHolder = new Map<string, string>(); // target + key id -> a component holding it
    const link = (target: string, id: string, c: string) => {
      const k = `${target}\u0000${id}`;
      const other = firstHolder.get(k);
      if (other === undefined) firstHolder.set(k, c);
      else parent.set(find(other), find(c));
    };
    const committed = this.#loaded().declarations;
    for (const c of ran.keys()) parent.set(c, c);
    for (const [c, byTarget] of ran) {
      for (const [target, keys] of byTarget) for (const id of keys.keys()) link(target, id, c);
      for (const [target, byComponent] of committed) {
        for (const id of byComponent.get(c)?.keys() ?? []) link(target, id, c);
      }
    }
    const groups = new Map<string, string[]>();
    for (const c of [...ran.keys()].sort()) {
      const root = find(c);
      const group = groups.get(root);
      if (group === undefined) groups.set(root, [c]);
      else group.push(c);
    }
    return [...groups.values()];
  }

  /** The first target whose deletes the guard refuses, if any. */
  async #guardDeletes(
    plan: Map<string, Array<Change<DeclaredState>>>,
    options: { emptySource: boolean; maxShare: number },
  ): Promise<RefusedDeletes | undefined> {
    let keysOf: Map<string, number> | undefined;
    for (const [target, changes] of plan) {
      let deletes = 0;
      for (const change of changes) if (change.kind === "delete") deletes++;
      if (deletes === 0 || (!options.emptySource && deletes <= DELETE_GUARD_FLOOR)) continue;
      keysOf ??= new Map(
        (await this.#store.targets(this.#app)).map((t) => [t.target, t.keys]),
      );
      const keys = keysOf.get(target) ?? 0;
      const reason = deleteGuard({ deletes, keys, ...options });
      if (reason !== null) return { target, deletes, keys, reason };
    }
    return undefined;
  }

  /** Persists the keys about to be sent as in doubt, before anything is sent. */
  async #markInDoubt(plan: Map<string, Array<Change<DeclaredState>>>): Promise<void> {
    const marks = new Map<string, string[]>();
    for (const [target, changes] of plan) {
      if (changes.length === 0) continue;
      const keys = new Set(this.#inDoubt.get(target));
      for (const change of changes) keys.add(keyId(change.key));
      marks.set(target, [...keys]);
    }
    if (marks.size === 0) return;
    await this.#store.markInDoubt(this.#app, marks);
    for (const [target, keys] of marks) this.#inDoubt.set(target, new Set(keys));
  }

  async #apply(
    plan: Map<string, Array<Change<DeclaredState>>>,
    onProgress?: RoundOptions["onProgress"],
  ): Promise<void> {
    let total = 0, done = 0;
    for (const changes of plan.values()) total += changes.length;
    for (const [target, changes] of plan) {
      if (changes.length === 0) continue;
      await this.#targets.get(target)!.apply(changes, (count) => {
        done += count;
        onProgress?.("changes", done, total);
      });
    }
  }

  #plan(
    ran: Map<string, Map<string, Map<string, Collected>>>,
    needed: Map<string, Set<string>>,
    conflicts: string[],
    unreadable: Set<string>,
    allInDoubt: boolean,
  ): { plan: Map<string, Array<Change<DeclaredState>>>; noops: number } {
    const committed = this.#loaded().declarations;
    const plan = new Map<string, Array<Change<DeclaredState>>>();
    let noops = 0;
    conflicts.length = 0;
    const targets = new Set<string>();
    for (const byTarget of ran.values()) for (const t of byTarget.keys()) targets.add(t);
    for (const c of ran.keys()) {
      for (const [t, byComponent] of committed) if (byComponent.has(c)) targets.add(t);
    }
    if (allInDoubt) { for (const [t, keys] of this.#inDoubt) if (keys.size > 0) targets.add(t); }
    for (const target of targets) {
      if (!this.#targets.has(target)) {
        throw new TypeError(
          `States were declared on target "${target}", which is not mounted: create targets ` +
            "with their mount function (kafka.mountTopicTarget) inside app.main()",
        );
      }
      const committedByComponent = committed.get(target);
      const index = this.#index.get(target);
      // Every key a ran component declared before or declares now, and who declares it now
      // among the ran components (one pass over their keys, not one per key and component).
      const touched = new Set<string>();
      const declaredNow = new Map<string, string | string[]>();
      for (const [c, byTarget] of ran) {
        const before = committedByComponent?.get(c);
        if (before !== undefined) { for (const id of before.keys()) touched.add(id); }
        const now = byTarget.get(target);
        if (now === undefined) continue;
        for (const id of now.keys()) {
          touched.add(id);
          const others = declaredNow.get(id);
          if (others === undefined) declaredNow.set(id, c);
          else if (typeof others === "string") declaredNow.set(id, [others, c]);
          else others.push(c);
        }
      }
      // Keys in doubt are planned against an unknown previous value, so they are sent whatever
      // the files say; a whole round plans all of them, a group of the isolation path its own.
      const inDoubt = this.#inDoubt.get(target);
      if (allInDoubt && inDoubt !== undefined) { for (const id of inDoubt) touched.add(id); }
      const changes: Array<Change<DeclaredState>> = [];
      for (const id of touched) {
        const declarers = index?.get(id);
        const before = declarers === undefined
          ? []
          : typeof declarers === "string"
          ? [declarers]
          : declarers;
        const previousOwner = before[0];
        const previous = inDoubt?.has(id)
          ? IN_DOUBT
          : previousOwner === undefined
          ? undefined
          : committedByComponent?.get(previousOwner)?.get(id);
        // New declarers: the ones that did not run keep declaring; the ran ones as they say now.
        const now = declaredNow.get(id);
        let after: string[];
        if (before.length === 0 || (before.length === 1 && ran.has(before[0]!))) {
          after = now === undefined ? [] : typeof now === "string" ? [now] : now.slice().sort();
        } else {
          after = before.filter((c) => !ran.has(c));
          if (now !== undefined) after.push(...(typeof now === "string" ? [now] : now));
          after.sort();
        }
        const owner = after[0];
        if (after.length > 1) {
          conflicts.push(
            `key ${showKey(id)} of "${target}" is declared by ${
              after.map((c) => `"${c}"`).join(" and ")
            }; publishing the value from "${owner}"`,
          );
        }
        let declared: Declared<DeclaredState> | undefined;
        if (owner !== undefined) {
          const fromRun = ran.get(owner)?.get(target)?.get(id);
          if (fromRun !== undefined) declared = fromRun;
          else {
            const fp = committedByComponent?.get(owner)?.get(id)!;
            if (fp !== previous) {
              // Its value is needed but only its fingerprint is known: it must run. The files
              // that ran and stopped declaring the key hand it over.
              if (unreadable.has(owner)) continue;
              let givers = needed.get(owner);
              if (givers === undefined) needed.set(owner, givers = new Set());
              for (const c of before) if (ran.has(c)) givers.add(c);
              continue;
            }
            declared = { state: { key: keyFromId(id) }, fingerprint: fp };
          }
        }
        const action = reconcile(declared, previous);
        if (action === null) noops++;
        else if (action.kind === "upsert") {
          changes.push({ kind: "upsert", key: action.state.key, state: action.state });
        } else changes.push({ kind: "delete", key: keyFromId(id) });
      }
      plan.set(target, changes);
    }
    return { plan, noops };
  }

  async #commit(
    ran: Map<string, Map<string, Map<string, Collected>>>,
    memoUpdates: Map<string, ComponentRecord>,
    removed: Set<string>,
    applied: Map<string, Array<Change<DeclaredState>>>,
  ): Promise<void> {
    const state = this.#loaded();
    // The keys just acknowledged are no longer in doubt.
    const inDoubt = new Map<string, string[]>();
    for (const [target, changes] of applied) {
      const keys = this.#inDoubt.get(target);
      if (keys === undefined || changes.length === 0) continue;
      const left = new Set(keys);
      for (const change of changes) left.delete(keyId(change.key));
      inDoubt.set(target, [...left]);
    }
    const commit: RoundCommit = {
      components: new Map(),
      declarations: [],
      removed: [...removed],
      forgetTargets: [...this.#orphans],
      inDoubt,
    };
    for (const [c, record] of memoUpdates) commit.components.set(c, record);
    for (const [c, byTarget] of ran) {
      if (removed.has(c)) continue;
      const targets = new Set(byTarget.keys());
      for (const [t, byComponent] of state.declarations) if (byComponent.has(c)) targets.add(t);
      for (const t of targets) {
        const keys: KeyFingerprints = new Map();
        for (const [id, collected] of byTarget.get(t) ?? []) keys.set(id, collected.fingerprint);
        commit.declarations.push({ target: t, component: c, keys });
      }
    }
    await this.#store.commit(this.#app, commit);
    this.#orphans.clear();
    for (const [target, keys] of inDoubt) this.#inDoubt.set(target, new Set(keys));

    // The store now holds the round; mirror it in memory.
    for (const c of removed) state.components.delete(c);
    for (const [c, record] of commit.components) state.components.set(c, record);
    for (const c of removed) {
      for (const [t, byComponent] of state.declarations) {
        const keys = byComponent.get(c);
        if (keys === undefined) continue;
        for (const id of keys.keys()) this.#indexRemove(t, id, c);
        byComponent.delete(c);
      }
    }
    for (const { target, component, keys } of commit.declarations) {
      let byComponent = state.declarations.get(target);
      if (byComponent === undefined) state.declarations.set(target, byComponent = new Map());
      const before = byComponent.get(component);
      if (before !== undefined) {
        for (const id of before.keys()) if (!keys.has(id)) this.#indexRemove(target, id, component);
      }
      for (const id of keys.keys()) this.#indexAdd(target, id, component);
      if (keys.size === 0) byComponent.delete(component);
      else byComponent.set(component, keys);
    }
  }
}

/**
 * Whether a target refused the data itself, so that sending it again cannot succeed (a message
 * larger than the topic allows). Targets say so with `StatecastError({ refused: true })`.
 */
function isRefusal(error: unknown): boolean {
  return error instanceof StatecastError && error.refused;
}

/** A failure injected by tests through `STATECAST_TEST_CRASH=<point>`: the process dies there. */
function testHook(point: string): void {
  const wanted = typeof process === "undefined" ? undefined : process.env.STATECAST_TEST_CRASH;
  if (wanted === point) {
    console.error(`statecast: STATECAST_TEST_CRASH=${point}: exiting before the commit`);
    process.exit(70);
  }
}
