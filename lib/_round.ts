/**
 * One reconcile round (private to the engine). The round walks its components in path order, the
 * gone ones first, in bounded chunks; each chunk is run, looked up, planned, applied and
 * committed before the next one starts, so memory is bounded by a chunk and a crash resumes after
 * the last committed chunk. Deletes are recorded as retracting while the chunks run and sent at
 * the end of the round, under the delete guard, so a key that moves to a file of a later chunk is
 * never tombstoned on the way.
 *
 * @module
 */
import {
  type Chunk,
  type HashedKeys,
  type Lookup,
  lookUp,
  type Plan,
  planChunk,
  type Planned,
} from "./_chunk.ts";
import { collecting, Collector } from "./_collector.ts";
import { linkedGroups } from "./_isolation.ts";
import { type EngineState, type KeysInDoubt, MarkedKeys } from "./_engine_state.ts";
import {
  type ComponentFn,
  emptyRoundSummary,
  type RoundOptions,
  type RoundSummary,
  type SourceItem,
} from "./round.ts";
import { StatecastError } from "./errors.ts";
import { type Fingerprint, fingerprint, keyHash } from "./fingerprint.ts";
import { keyFromId, showKey } from "./key_id.ts";
import { type ComponentRecord, unchangedByContent, unchangedByStat } from "./memo.ts";
import { DEFAULT_MAX_DELETE_SHARE, DELETE_GUARD_FLOOR, deleteGuard } from "./reconcile.ts";
import type { KeyFingerprints, RoundCommit } from "./state_store.ts";
import type { Change, DeclaredState } from "./target.ts";

/** The logic fingerprint of a memo row that must run again (a target did not get its changes). */
const RUN_AGAIN = "run-again";

/** The key list of a file that declares nothing on a target. */
const NO_KEYS: ReadonlyMap<string, Fingerprint> = new Map<string, Fingerprint>();

/** Keys sent and committed per end-of-round batch of deletes. */
const DELETE_BATCH = 10_000;

/** A change with the target it goes to. */
type TargetChange = Change<DeclaredState> & { target: string };

/** Which of a plan's parts a commit covers. */
interface Part {
  upserts: Plan["upserts"];
  deletes: Plan["deletes"];
  unretract: Plan["unretract"];
  /** Also commit the memo rows of files whose content did not change. */
  unchanged: boolean;
}

/** Runs one round; see the module doc. */
export class Round<I extends SourceItem> {
  readonly summary: RoundSummary;
  readonly #e: EngineState;
  readonly #fn: ComponentFn<I>;
  readonly #items: ReadonlyArray<I>;
  readonly #options: RoundOptions<I>;
  readonly #logic: Fingerprint;
  readonly #started = performance.now();
  readonly #itemsByPath: Map<string, I>;
  /** Components gone this round and not committed as gone yet. */
  readonly #removed = new Set<string>();
  /** Components run ahead of their chunk because a key needed their value. */
  readonly #pulled = new Set<string>();
  readonly #failed = new Set<string>();
  /** Components that cannot be read this round: the keys they would own wait. */
  readonly #unreadable = new Set<string>();
  /** The last item path run so far: declarers after it may still run this round. */
  #frontier = "";
  /** Conflicts that involved a component still to run: checked again at the end. */
  readonly #laterConflicts = new Map<string, Set<string>>();
  /** Deletes a dry run planned (a real round records them as retracting). */
  readonly #dryDeletes = new Map<string, Map<string, Fingerprint | undefined>>();
  #changesPlanned = 0;
  #changesDone = 0;
  /**
   * Components that would wait on an unreadable owner, tried once more at the end of the round:
   * a later chunk's file may have become the key's owner meanwhile. Until then their committed
   * state stands, so the chunks in between see them as declaring what they did.
   */
  readonly #deferred = new Map<string, "gone" | "changed">();
  /** The end-of-round chunk of deferred components: waiting is final there. */
  #final = false;
  /** Components whose memo row a chunk of this round committed. */
  readonly #committedNow = new Set<string>();
  /** The next free component id (found on first use). */
  #nextId: number | undefined;

  constructor(
    state: EngineState,
    fn: ComponentFn<I>,
    items: ReadonlyArray<I>,
    options: RoundOptions<I>,
  ) {
    this.#e = state;
    this.#fn = fn;
    this.#items = items;
    this.#options = options;
    this.#itemsByPath = new Map(items.map((i) => [i.path, i]));
    // The memo is valid for one function *and* one set of targets: a newly mounted target (a
    // renamed topic) must receive every file's states, so every file runs again.
    this.#logic = fingerprint(
      `${fn.logicFingerprint}\n${[...state.targets.keys()].sort().join("\n")}`,
    );
    this.summary = { ...emptyRoundSummary(), scanned: items.length };
  }

  async run(): Promise<RoundSummary> {
    this.#findRemoved();
    if (await this.#refuseEmptySource()) return this.#finish();
    // A pipeline: while a chunk's changes are on their way to the targets, the next chunk's files
    // are read and parsed (the generator runs them when the loop asks for the next chunk); its
    // look-up and plan wait until the previous chunk is committed.
    let first = true;
    let previous: Promise<boolean> = Promise.resolve(true);
    for await (const chunk of this.#chunks()) {
      if (!await previous) return this.#finish();
      chunk.doubts = first;
      first = false;
      previous = (await this.#sendChunk(chunk)).done;
    }
    if (!await previous) return this.#finish();
    if (first && [...this.#e.inDoubt.values()].some((keys) => keys.size > 0)) {
      const empty: Chunk = { ...newChunk(), doubts: true };
      if (!await (await this.#sendChunk(empty)).done) return this.#finish();
    }
    if (this.#deferred.size > 0 && !await (await this.#sendChunk(await this.#lastChunk())).done) {
      return this.#finish();
    }
    if (!await this.#sendDeletes()) return this.#finish();
    await this.#forgetOrphans();
    await this.#reportLaterConflicts();
    this.summary.committed = !this.#options.dryRun && this.summary.refused === undefined;
    return this.#finish();
  }

  #finish(): RoundSummary {
    this.summary.elapsedMs = performance.now() - this.#started;
    return this.summary;
  }

  /** The components that are gone: named by the caller, or (full scan) not among the items. */
  #findRemoved(): void {
    const unreadable = this.#options.unreadable ?? [];
    this.summary.failed.push(...unreadable);
    for (const c of this.#options.removed ?? []) this.#removed.add(c);
    if (this.#options.fullScan) {
      const hidden = (c: string) => unreadable.some((u) => c.startsWith(u.path + "/"));
      for (const c of this.#e.components.keys()) {
        if (!this.#itemsByPath.has(c) && !hidden(c)) this.#removed.add(c);
      }
    }
    for (const c of [...this.#removed]) {
      if (this.#itemsByPath.has(c) || !this.#e.components.has(c)) this.#removed.delete(c);
    }
    this.summary.scanned += this.#removed.size;
    this.summary.gone = this.#removed.size;
  }

  /** A full scan that found no items would retract everything: refuse before touching anything. */
  async #refuseEmptySource(): Promise<boolean> {
    if (!this.#options.fullScan || this.#items.length > 0) return false;
    const maxShare = this.#options.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE;
    const counts = await this.#keyCounts();
    for (const [target, keys] of counts) {
      const reason = deleteGuard({ deletes: keys, keys, emptySource: true, maxShare });
      if (reason !== null) {
        this.summary.refused = { target, deletes: keys, keys, reason };
        return true;
      }
    }
    return false;
  }

  /**
   * Keys per mounted target: declared (each once, however many files declare it), or retracting
   * and not sent yet.
   */
  async #keyCounts(): Promise<Map<string, number>> {
    const { store } = this.#e;
    const counts = new Map<string, number>();
    for (const [target, tid] of this.#e.tids) {
      counts.set(target, await store.keyCount(tid) + await store.retractingCount(tid));
    }
    return counts;
  }

  /**
   * The round's chunks: the gone components first, together in one chunk (they only carry their
   * committed key lists, and whether one of them must wait for another's handover can only be
   * told with all of them at hand), then the items in path order, each chunk ending at
   * `chunkRows` declared states or `chunkFiles` files. A dry run is one chunk.
   */
  async *#chunks(): AsyncGenerator<Chunk> {
    const dry = this.#options.dryRun === true;
    const maxRows = dry ? Infinity : this.#options.chunkRows ?? 10_000;
    const maxFiles = dry ? Infinity : this.#options.chunkFiles ?? 1000;
    let chunk = newChunk();
    for (const c of [...this.#removed].sort()) {
      chunk.ran.set(c, new Map());
      chunk.removed.add(c);
      this.summary.processed++;
    }
    if (!dry && chunk.ran.size > 0) {
      yield chunk;
      chunk = newChunk();
    }
    let rows = 0;
    let done = 0;
    for (const item of this.#items) {
      this.#frontier = item.path;
      if (!this.#pulled.has(item.path)) rows += await this.#runInto(chunk, item, false);
      this.#options.onProgress?.("files", ++done, this.#items.length);
      if (rows >= maxRows || chunk.ran.size + chunk.memo.size >= maxFiles) {
        yield chunk;
        chunk = newChunk();
        rows = 0;
      }
    }
    if (chunk.ran.size > 0 || chunk.memo.size > 0) yield chunk;
  }

  /** The end-of-round chunk: the deferred components, gone or run again. */
  async #lastChunk(): Promise<Chunk> {
    this.#final = true;
    const chunk = newChunk();
    for (const [c, kind] of this.#deferred) {
      if (kind === "gone") {
        chunk.ran.set(c, new Map());
        chunk.removed.add(c);
        this.#removed.add(c);
        continue;
      }
      const item = this.#itemsByPath.get(c) ?? await this.#options.resolve?.(c);
      if (item !== undefined) await this.#runInto(chunk, item, true);
    }
    this.#deferred.clear();
    return chunk;
  }

  /**
   * Runs one component into `chunk` unless the memo says it is unchanged; returns how many states
   * it declared. `force` runs it whatever the memo says, and so does `resend` for its paths.
   */
  async #runInto(chunk: Chunk, item: I, force: boolean): Promise<number> {
    const scanTime = Date.now();
    const previous = this.#e.components.get(item.path);
    const resend = this.#options.resend?.(item.path) ?? false;
    const logic = this.#fn.memo && !force && !resend ? this.#logic : undefined;
    try {
      if (unchangedByStat(previous, item, logic)) {
        this.summary.unchanged++;
        return 0;
      }
      let content: Fingerprint;
      try {
        const bytes = await item.bytes();
        if (bytes.length === 0) {
          // A file truncated to nothing is far more often caught mid-write than meant to be
          // empty (a header-only file really has no rows): keep what it published.
          this.summary.held.push({
            path: item.path,
            reason: "the file is empty (0 bytes): held as not ready; what it published stays",
          });
          return 0;
        }
        content = fingerprint(bytes);
      } catch (error) {
        this.#fail(item.path, error);
        return 0;
      }
      const record: ComponentRecord = {
        size: item.size,
        mtimeMs: item.mtimeMs,
        contentFingerprint: content,
        logicFingerprint: this.#logic,
        recordedAtMs: scanTime,
      };
      if (unchangedByContent(previous, content, logic)) {
        this.summary.unchanged++;
        chunk.memo.set(item.path, record); // new stat, same content: remember, do not parse
        return 0;
      }
      const collector = new Collector(
        item.path,
        this.#fn.onDuplicateKey,
        this.#options.onDeclared,
      );
      try {
        await collecting(collector, () => this.#fn.run(item));
      } catch (error) {
        this.#fail(item.path, error);
        return 0;
      } finally {
        for (const message of collector.warnings) {
          this.summary.warnings.push({ path: item.path, message });
        }
      }
      this.summary.processed++;
      chunk.ran.set(item.path, collector.byTarget);
      chunk.memo.set(item.path, record);
      if (resend) chunk.resent.add(item.path);
      return collector.count;
    } finally {
      item.release?.();
    }
  }

  #fail(path: string, error: unknown, blockedBy?: string): void {
    this.#failed.add(path);
    this.summary.failed.push(
      blockedBy === undefined ? { path, error } : { path, error, blockedBy },
    );
  }

  /** Plans, applies and commits one chunk; false when a target failed (the round stops). */
  /**
   * Plans a chunk and starts sending it; `done` settles once it is applied and committed (false
   * when a target failed: the round stops). A wrapper, so the caller can go on while it runs.
   */
  async #sendChunk(chunk: Chunk): Promise<{ done: Promise<boolean> }> {
    const { plan, lookup } = await this.#planChunk(chunk);
    this.summary.unchangedKeys += plan.noops;
    for (const [target, id, declarers, owner] of plan.conflicts) {
      this.#conflict(target, id, declarers, owner);
    }
    if (this.#options.dryRun) {
      this.#recordDry(plan);
      return { done: Promise.resolve(true) };
    }
    await this.#markInDoubt(plan.upserts);
    const done = this.#applyAndCommit(chunk, plan, lookup).then((ok) => {
      this.#options.onChunk?.();
      return ok;
    });
    done.catch(() => {}); // awaited by the caller; no unhandled rejection meanwhile
    return { done };
  }

  /** Applies a planned chunk and commits what the targets acknowledged. */
  async #applyAndCommit(chunk: Chunk, plan: Plan, lookup: Lookup): Promise<boolean> {
    const failures = await this.#applyEach(plan.upserts);
    if (failures.size > 0 && [...failures.values()].every(isRefusal)) {
      return await this.#isolate(chunk, plan, lookup);
    }
    if (plan.upserts.length > 0) testHook("after-apply");
    const all = new Set(chunk.ran.keys());
    if (failures.size === 0) {
      await this.#commit(chunk, lookup, all, { ...plan, unchanged: true });
      this.#count(plan.upserts);
      return true;
    }
    // A target failed: the others keep what they acknowledged, and the round stops.
    this.summary.applyError = [...failures.values()][0];
    const healthy = new Set([...this.#e.targets.keys()].filter((t) => !failures.has(t)));
    const sent = plan.upserts.filter((u) => healthy.has(u.target));
    await this.#commit(chunk, lookup, all, { ...plan, upserts: sent, unchanged: true }, healthy);
    this.#count(sent);
    return false;
  }

  /**
   * Looks the chunk's keys up and plans them. A key whose new owner did not run needs its value:
   * the owner runs into the chunk and the chunk is planned again. An owner that cannot be read
   * makes the components that hand it keys wait (their committed state stays as it is).
   */
  async #planChunk(chunk: Chunk): Promise<{ plan: Plan; lookup: Lookup }> {
    /** Components run into this chunk because a key needed them. */
    const pulled = new Set<string>();
    for (;;) {
      const lookup = await lookUp(this.#e, chunk, this.#removed);
      // A deferred component waits itself: a key it would own waits with it.
      const blocked = new Set([...this.#unreadable, ...this.#deferred.keys()]);
      const plan = planChunk(this.#e, chunk, lookup, blocked);
      if (plan.needed.size === 0) return { plan, lookup };
      for (const [owner, givers] of plan.needed) {
        if (!blocked.has(owner) && !this.#failed.has(owner)) {
          const item = this.#itemsByPath.get(owner) ?? await this.#options.resolve?.(owner);
          if (item !== undefined) {
            this.#pulled.add(owner);
            await this.#runInto(chunk, item, true);
            if (chunk.ran.has(owner)) {
              pulled.add(owner);
              continue;
            }
          }
        }
        if (!this.#deferred.has(owner)) this.#unreadable.add(owner);
        for (const giver of givers) {
          // Already waiting: it gave a key to another owner of this pass (and if it is gone, its
          // `removed` mark is cleared, so it must not be taken for a changed file now).
          if (!chunk.ran.has(giver)) continue;
          const gone = chunk.removed.has(giver);
          // At the end of the round, a file that ran to what the store holds for it (committed
          // earlier in the round, or unchanged, and run here for its value) hands nothing over.
          const settled = this.#final && this.#holdsCommitted(chunk, giver);
          chunk.ran.delete(giver);
          chunk.memo.delete(giver);
          // A file that is gone waits too: committing its removal would forget what it owes.
          chunk.removed.delete(giver);
          this.#removed.delete(giver);
          if (settled) {
            if (pulled.delete(giver)) this.summary.processed--;
            continue;
          }
          if (this.#failed.has(giver)) continue;
          if (!this.#final && !this.#options.dryRun) {
            this.#deferred.set(giver, gone ? "gone" : "changed");
            if (!gone) this.summary.processed--; // it runs again at the end
            // What was run for it may not be needed any more: plan it in its own chunk.
            for (const p of pulled) {
              chunk.ran.delete(p);
              chunk.memo.delete(p);
              this.#pulled.delete(p);
              this.summary.processed--;
            }
            pulled.clear();
            continue;
          }
          this.#fail(
            giver,
            new StatecastError(
              `"${giver}" was not published: keys it no longer declares now belong to ` +
                `"${owner}", which could not be read`,
              { path: giver },
            ),
            owner,
          );
        }
      }
    }
  }

  /**
   * Whether `c` ran into `chunk` to exactly what the store holds for it: the same content under
   * the same logic, committed earlier in this round, or unchanged since an earlier one (memo on,
   * its rows not to be sent again). Leaving it out of the chunk then changes nothing.
   */
  #holdsCommitted(chunk: Chunk, c: string): boolean {
    const record = chunk.memo.get(c);
    const row = this.#e.components.get(c);
    if (record === undefined || !unchangedByContent(row, record.contentFingerprint, this.#logic)) {
      return false;
    }
    return this.#committedNow.has(c) || (this.#fn.memo && !chunk.resent.has(c));
  }

  /**
   * A key declared by several components. Reported now when every declarer is settled; when one
   * of them still runs later in this round (its committed keys may be stale), checked again at
   * the end of the round.
   */
  #conflict(target: string, id: string, declarers: string[], owner: string): void {
    const later = declarers.some((c) =>
      c > this.#frontier && this.#itemsByPath.has(c) && !this.#pulled.has(c)
    );
    if (later && !this.#options.dryRun) {
      let ids = this.#laterConflicts.get(target);
      if (ids === undefined) this.#laterConflicts.set(target, ids = new Set());
      ids.add(id);
      return;
    }
    this.summary.conflicts.push(conflictMessage(target, id, declarers, owner));
  }

  /** The conflicts put off during the round, as the store has them now. */
  async #reportLaterConflicts(): Promise<void> {
    for (const [target, ids] of this.#laterConflicts) {
      const tid = this.#e.tids.get(target)!;
      const byHash = new Map([...ids].map((id) => [keyHash(id), id]));
      const candidates = new Map<string, string[]>();
      for (const [h, cid] of await this.#e.store.declarersOf(tid, [...byHash.keys()], [])) {
        const path = this.#e.paths.get(cid);
        const id = byHash.get(h);
        if (path === undefined || id === undefined) continue;
        const paths = candidates.get(id);
        if (paths === undefined) candidates.set(id, [path]);
        else paths.push(path);
      }
      const lists = await this.#e.store.declarationsOf(
        this.#e.app,
        target,
        [...new Set([...candidates.values()].flat())],
      );
      for (const [id, paths] of candidates) {
        const declarers = paths.filter((p) => lists.get(p)?.has(id)).sort();
        if (declarers.length > 1) {
          this.summary.conflicts.push(conflictMessage(target, id, declarers, declarers[0]!));
        }
      }
    }
  }

  #recordDry(plan: Plan): void {
    this.#count(plan.upserts);
    for (const { target, id, fp } of plan.deletes) {
      let keys = this.#dryDeletes.get(target);
      if (keys === undefined) this.#dryDeletes.set(target, keys = new Map());
      keys.set(id, fp);
    }
  }

  /** Counts upserts that went out (deletes are counted when sent). */
  #count(upserts: Plan["upserts"]): void {
    for (const { target, key, state } of upserts) {
      this.summary.upserts++;
      if (this.#options.keepChanges) {
        this.summary.changes.push({ target, kind: "upsert", key, state });
      }
    }
  }

  /**
   * Persists the keys about to be sent as in doubt, before anything is sent. A target with no key
   * in doubt (the rule: the previous chunk was committed) gets the changes' keys as they are.
   */
  async #markInDoubt(changes: ReadonlyArray<{ target: string; id: string }>): Promise<void> {
    const counts = new Map<string, number>();
    for (const { target } of changes) counts.set(target, (counts.get(target) ?? 0) + 1);
    if (counts.size === 0) return;
    const marks = new Map<string, KeysInDoubt>();
    for (const [target, count] of counts) {
      const before = this.#e.inDoubt.get(target);
      if (before === undefined || before.size === 0) {
        marks.set(target, new MarkedKeys(changes, target, count));
        continue;
      }
      const keys = new Set(before.keys());
      for (const change of changes) if (change.target === target) keys.add(change.id);
      marks.set(target, keys);
    }
    await this.#e.store.markInDoubt(
      this.#e.app,
      new Map([...marks].map(([target, keys]) => [target, [...keys.keys()]])),
    );
    for (const [target, keys] of marks) this.#e.inDoubt.set(target, keys);
  }

  /** Applies changes target by target, reporting progress. */
  async #apply(changes: ReadonlyArray<TargetChange>): Promise<void> {
    const failures = await this.#applyEach(changes);
    for (const error of failures.values()) throw error;
  }

  /**
   * Applies changes target by target, reporting progress; every target gets its changes even
   * when another one fails. Returns the errors of the targets that failed.
   */
  async #applyEach(changes: ReadonlyArray<TargetChange>): Promise<Map<string, unknown>> {
    const byTarget = new Map<string, Array<Change<DeclaredState>>>();
    for (const change of changes) {
      let list = byTarget.get(change.target);
      if (list === undefined) byTarget.set(change.target, list = []);
      list.push(change); // the change itself: a target reads kind, key and state
    }
    this.#changesPlanned += changes.length;
    const failures = new Map<string, unknown>();
    for (const [target, list] of byTarget) {
      try {
        await this.#e.targets.get(target)!.apply(list, (count) => {
          this.#changesDone += count;
          this.#options.onProgress?.("changes", this.#changesDone, this.#changesPlanned);
        });
      } catch (error) {
        failures.set(target, error);
      }
    }
    return failures;
  }

  /**
   * The target refused some of the chunk's data itself (a message too large): sending it again
   * will not help, so find the files it comes from. Components that share keys (now or before)
   * are applied and committed together, group by group; a refused group fails like a file that
   * cannot be parsed, and the others go through.
   */
  async #isolate(chunk: Chunk, plan: Plan, lookup: Lookup): Promise<boolean> {
    for (const group of linkedGroups(chunk.ran, lookup.prev)) {
      const members = new Set(group);
      const mine = (p: Planned) => p.anchor !== undefined && members.has(p.anchor);
      const upserts = plan.upserts.filter(mine);
      try {
        await this.#apply(upserts);
      } catch (error) {
        if (!isRefusal(error)) {
          this.summary.applyError = error;
          return false;
        }
        for (const member of group) {
          this.#fail(member, error);
          chunk.ran.delete(member);
          chunk.memo.delete(member);
          chunk.removed.delete(member);
        }
        continue;
      }
      const part = {
        upserts,
        deletes: plan.deletes.filter(mine),
        unretract: plan.unretract.filter(mine),
        unchanged: false,
      };
      await this.#commit(chunk, lookup, members, part);
      this.#count(upserts);
    }
    // What is left: memo rows of files whose content did not change.
    const none = { upserts: [], deletes: [], unretract: [], unchanged: true };
    await this.#commit(chunk, lookup, new Set(), none);
    return true;
  }

  /**
   * Commits, in one transaction, the chunk's components in `members` and the plan's parts that
   * went out for them: memo rows, key lists, key index rows, retracting rows, and the keys that
   * are no longer in doubt. With `only`, just those targets' parts: the others failed, so the
   * files keep their memo rows marked to run again (and gone files stay known) until every
   * target has their changes; the committed targets then find nothing to send.
   */
  async #commit(
    chunk: Chunk,
    lookup: Lookup,
    members: Set<string>,
    part: Part,
    only?: ReadonlySet<string>,
  ): Promise<void> {
    const e = this.#e;
    const targets = [...e.tids].filter(([target]) => only === undefined || only.has(target));
    const commit: RoundCommit = {
      components: new Map(),
      declarations: [],
      removed: [],
      index: [],
      retract: [],
      inDoubt: new Map(),
    };
    for (const [c, record] of chunk.memo) {
      if (chunk.ran.has(c) ? !members.has(c) : !part.unchanged) continue;
      const id = e.components.get(c)?.id ?? this.#newId();
      const rerun = only !== undefined && chunk.ran.has(c);
      commit.components.set(c, {
        ...record,
        id,
        ...(rerun ? { logicFingerprint: RUN_AGAIN } : {}),
      });
    }
    for (const c of members) {
      const declarations = chunk.ran.get(c)!;
      const gone = chunk.removed.has(c);
      if (gone && only === undefined) commit.removed.push(c);
      const cid = commit.components.get(c)?.id ?? e.components.get(c)!.id;
      for (const [target, tid] of targets) {
        const before = lookup.prev.get(target)?.get(c);
        const now = gone ? undefined : declarations.get(target);
        if (before === undefined && now === undefined) continue;
        const keys = now ?? NO_KEYS;
        if (!gone || only !== undefined) commit.declarations.push({ target, component: c, keys });
        commit.index!.push({ tid, cid, ...hashDiff(before, keys, lookup.hashes.get(target)) });
      }
    }
    for (const [target, tid] of targets) {
      const add = part.deletes.filter((d) => d.target === target)
        .map((d): [string, Fingerprint | undefined] => [d.id, d.fp]);
      const remove = part.unretract.filter((u) => u.target === target).map((u) => u.id);
      if (add.length > 0 || remove.length > 0) commit.retract!.push({ tid, add, remove });
      // The keys just acknowledged are no longer in doubt.
      const doubts = e.inDoubt.get(target);
      if (doubts === undefined || doubts.size === 0) continue;
      if (doubts instanceof MarkedKeys && doubts.changes === part.upserts) {
        commit.inDoubt!.set(target, []); // this chunk's keys, every one acknowledged
        continue;
      }
      let acked = 0;
      for (const u of part.upserts) if (u.target === target && doubts.has(u.id)) acked++;
      if (acked === 0) continue;
      // Mostly every key in doubt was this chunk's, and all were acknowledged: no copy to make.
      if (acked === doubts.size) commit.inDoubt!.set(target, []);
      else {
        const left = new Set(doubts.keys());
        for (const u of part.upserts) if (u.target === target) left.delete(u.id);
        commit.inDoubt!.set(target, [...left]);
      }
    }
    await e.store.commit(e.app, commit);
    // The store now holds the chunk; mirror it in memory.
    for (const [target, keys] of commit.inDoubt!) e.inDoubt.set(target, new Set(keys));
    for (const c of commit.removed) {
      const id = e.components.get(c)?.id;
      if (id !== undefined) e.paths.delete(id);
      e.components.delete(c);
      this.#removed.delete(c);
    }
    for (const [c, row] of commit.components) {
      e.components.set(c, row);
      e.paths.set(row.id, c);
      this.#committedNow.add(c);
    }
  }

  #newId(): number {
    if (this.#nextId === undefined) {
      let max = 0;
      for (const id of this.#e.paths.keys()) if (id > max) max = id;
      this.#nextId = max + 1;
    }
    return this.#nextId++;
  }

  /**
   * The end of the round: sends the deletes recorded as retracting (this round's and any left
   * from an earlier one), target by target, in batches, unless the delete guard holds them back.
   */
  async #sendDeletes(): Promise<boolean> {
    const { store } = this.#e;
    const maxShare = this.#options.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE;
    let counts: Map<string, number> | undefined;
    for (const [target, tid] of this.#e.tids) {
      const dry = this.#dryDeletes.get(target) ?? new Map<string, Fingerprint | undefined>();
      const stored = await store.retractingCount(tid);
      const pending = stored + dry.size;
      if (pending === 0) continue;
      if (pending > DELETE_GUARD_FLOOR) {
        counts ??= await this.#keyCounts();
        const keys = (counts.get(target) ?? 0) + dry.size;
        const reason = deleteGuard({ deletes: pending, keys, emptySource: false, maxShare });
        if (reason !== null) {
          this.summary.refused ??= { target, deletes: pending, keys, reason };
          continue;
        }
      }
      if (this.#options.dryRun) {
        const keys = new Set(dry.keys());
        for (const { key } of stored === 0 ? [] : await store.retractingPage(tid, stored)) {
          keys.add(key);
        }
        for (const id of keys) this.#countDelete(target, id);
        continue;
      }
      for (;;) {
        const page = await store.retractingPage(tid, DELETE_BATCH);
        if (page.length === 0) break;
        const deletes = page.map(({ key }) => ({
          target,
          id: key,
          kind: "delete" as const,
          key: keyFromId(key),
        }));
        await this.#markInDoubt(deletes);
        try {
          await this.#apply(deletes);
        } catch (error) {
          this.summary.applyError ??= error; // this target stops; the others go on
          break;
        }
        testHook("after-apply");
        const sent = new Set(page.map(({ key }) => key));
        const left = [...this.#e.inDoubt.get(target)?.keys() ?? []].filter((id) => !sent.has(id));
        await store.commit(this.#e.app, {
          components: new Map(),
          declarations: [],
          removed: [],
          retract: [{ tid, add: [], remove: [...sent] }],
          inDoubt: new Map([[target, left]]),
        });
        this.#e.inDoubt.set(target, new Set(left));
        for (const id of sent) this.#countDelete(target, id);
      }
    }
    return this.summary.applyError === undefined;
  }

  /**
   * Forgets the keys of the stored targets that are no longer mounted (a renamed topic), once the
   * round got through: not before, so a run whose new target fails (a mistyped topic that does not
   * exist) leaves the store as it found it, and the next run with the right one sends nothing.
   */
  async #forgetOrphans(): Promise<void> {
    const orphans = this.#e.orphans;
    if (this.#options.dryRun || orphans.size === 0) return;
    await this.#e.store.commit(this.#e.app, {
      components: new Map(),
      declarations: [],
      removed: [],
      forgetTargets: [...orphans],
    });
    orphans.clear();
  }

  #countDelete(target: string, id: string): void {
    this.summary.deletes++;
    if (this.#options.keepChanges) {
      this.summary.changes.push({ target, kind: "delete", key: keyFromId(id) });
    }
  }
}

function newChunk(): Chunk {
  return { ran: new Map(), memo: new Map(), removed: new Set(), doubts: false, resent: new Set() };
}

function conflictMessage(target: string, id: string, declarers: string[], owner: string): string {
  return `key ${showKey(id)} of "${target}" is declared by ${
    declarers.slice().sort().map((c) => `"${c}"`).join(" and ")
  }; publishing the value from "${owner}"`;
}

/**
 * The key hashes a component's index rows gain and lose when its keys go from `before` to `now`.
 * `hashed` has the hashes the look-up computed: when `now` is its key list itself (a chunk of
 * one component), they are taken in order; else they are found by key.
 */
function hashDiff(
  before: KeyFingerprints | undefined,
  now: ReadonlyMap<string, unknown>,
  hashed: HashedKeys | undefined,
): { add: readonly number[]; remove: readonly number[] } {
  const hash = (id: string) => hashed === undefined ? keyHash(id) : hashed.hashOf(id);
  if (before === undefined || before.size === 0) {
    // A hash twice: the index keeps one. The index copies what it is given.
    return { add: hashed?.keys === now ? hashed.hashes : Array.from(now.keys(), hash), remove: [] };
  }
  const was = new Set<number>();
  for (const id of before.keys()) was.add(hash(id));
  const is = new Set<number>();
  for (const id of now.keys()) is.add(hash(id));
  return {
    add: [...is].filter((h) => !was.has(h)),
    remove: [...was].filter((h) => !is.has(h)),
  };
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
