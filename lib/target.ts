/**
 * The target contract, for people who write targets: a target (a Kafka topic, a database table)
 * has a stable identity, fingerprints the states declared on it, and applies batches of changes.
 * Its `declareTargetState()` hands each state to {@linkcode declare}; the engine does the rest
 * (ownership, reconcile, the commit protocol). Adding a target never touches the engine.
 *
 * @module
 */
import type { Fingerprint } from "./fingerprint.ts";
import type { Key } from "./key_id.ts";
import { activeCollector } from "./_collector.ts";

export type { Key } from "./key_id.ts";

/**
 * What every declared state has: a key. Targets add the rest (value, headers, columns...).
 *
 * @example
 * ```ts
 * import type { DeclaredState } from "./mod.ts";
 * interface Row extends DeclaredState {
 *   key: string;
 *   value: string;
 * }
 * const row: Row = { key: "A1", value: '{"qty":3}' };
 * if (row.key !== "A1") throw new Error();
 * ```
 */
export interface DeclaredState {
  /** The key: a string is its UTF-8 bytes, so `"x"` and the bytes of `"x"` are one key. */
  key: Key;
}

/**
 * An upsert or a delete for one key of one target: what {@linkcode Target.apply} receives. An
 * upsert carries the declared state; a delete only the key. Read `kind`, `key` and `state` only:
 * the objects the engine hands over are its own plan's (one object per key, not a copy made for
 * the target) and carry more properties, its bookkeeping, which a target must not send or keep
 * (to keep a change, copy those three).
 *
 * @example
 * ```ts
 * import type { Change, DeclaredState } from "./mod.ts";
 * type Row = DeclaredState & { value: string };
 * const changes: Change<Row>[] = [
 *   { kind: "upsert", key: "a", state: { key: "a", value: "1" } },
 *   { kind: "delete", key: "b" },
 * ];
 * const text = changes.map((c) => c.kind === "upsert" ? `+${c.key}=${c.state.value}` : `-${c.key}`)
 *   .join(" ");
 * if (text !== "+a=1 -b") throw new Error();
 * ```
 */
export type Change<S extends DeclaredState> =
  | { kind: "upsert"; key: Key; state: S }
  | { kind: "delete"; key: Key };

/**
 * A target: where declared states end up (a Kafka topic, a database table...). Implement it to
 * send declared states somewhere new; give it a `declareTargetState()` that hands each state to
 * {@linkcode declare}, and a mount function that calls {@linkcode mountTarget}. The engine calls
 * `fingerprint()` for every declared state and `apply()` with the changes of a round.
 *
 * @example
 * ```ts
 * import {
 *   type Change,
 *   declare,
 *   type DeclaredState,
 *   fingerprint,
 *   initFingerprints,
 *   keyId,
 *   type Target,
 * } from "./mod.ts";
 *
 * interface Row extends DeclaredState {
 *   value: string;
 * }
 * class MemoryTarget implements Target<Row> {
 *   readonly id = "memory:rows";
 *   readonly rows = new Map<string, string>();
 *   fingerprint(state: Row): string {
 *     return fingerprint(state.value); // the bytes that would be sent
 *   }
 *   apply(changes: ReadonlyArray<Change<Row>>): Promise<void> {
 *     for (const c of changes) {
 *       if (c.kind === "upsert") this.rows.set(keyId(c.key), c.state.value);
 *       else this.rows.delete(keyId(c.key));
 *     }
 *     return Promise.resolve(); // resolve once every change is stored
 *   }
 *   declareTargetState(state: Row): void {
 *     declare(this, state);
 *   }
 * }
 *
 * await initFingerprints(); // an app does this itself before a round
 * const target = new MemoryTarget();
 * await target.apply([
 *   { kind: "upsert", key: "a", state: { key: "a", value: "1" } },
 *   { kind: "upsert", key: "b", state: { key: "b", value: "2" } },
 * ]);
 * await target.apply([{ kind: "delete", key: "a" }]);
 * if ([...target.rows].join() !== "b,2") throw new Error();
 * if (target.fingerprint({ key: "x", value: "2" }) !== fingerprint("2")) throw new Error();
 * ```
 */
export interface Target<S extends DeclaredState = DeclaredState> {
  /** Stable identity in the state store; the same identity means nothing is re-sent. */
  readonly id: string;
  /** Fingerprint of the bytes `state` would be sent as. */
  fingerprint(state: S): Fingerprint;
  /**
   * Applies changes, resolving once every one is acknowledged. Rejects if any was not; then the
   * engine commits nothing of the batch and sends it again later. A rejection with
   * `StatecastError({ refused: true })` says the target refused the data itself (a message too
   * large): the engine then finds the files it came from and fails only those.
   */
  apply(
    changes: ReadonlyArray<Change<S>>,
    onApplied?: (count: number) => void,
  ): Promise<void>;
}

/**
 * Declares a target state for the running component: targets call it from their own
 * `declareTargetState`. Outside a component (the function given to `app.mountEach()`) it is a
 * `TypeError`.
 *
 * @example
 * ```ts
 * import { declare } from "./target.ts";
 * const target = { id: "t", fingerprint: () => "0", apply: () => Promise.resolve() };
 * try {
 *   declare(target, { key: "k" });
 *   throw new Error("unreachable");
 * } catch (error) {
 *   if (!(error instanceof TypeError)) throw error;
 * }
 * ```
 */
export function declare<S extends DeclaredState>(target: Target<S>, state: S): void {
  const collector = activeCollector();
  if (collector === undefined) {
    throw new TypeError(
      `declareTargetState() on "${target.id}" was called outside a component: ` +
        "call it from the function given to app.mountEach()",
    );
  }
  collector.declare(target, state);
}

/**
 * Tells the running component which source line it is on, so that errors (a key declared twice)
 * name it. Sources that know lines (CSV rows) call it; outside a component it does nothing.
 *
 * @example
 * ```ts
 * import { setSourceLine } from "./target.ts";
 * setSourceLine(7); // no component is running: nothing happens
 * ```
 */
export function setSourceLine(line: number): void {
  const collector = activeCollector();
  if (collector !== undefined) collector.line = line;
}

/**
 * Where the running component is: its path, and the source line being processed when the source
 * told it ({@linkcode setSourceLine}). Targets use it to name the place in an error about a
 * declared state. Outside a component, undefined.
 *
 * @example
 * ```ts
 * import { sourcePlace } from "./target.ts";
 * if (sourcePlace() !== undefined) throw new Error("no component is running");
 * ```
 */
export function sourcePlace(): { path: string; line: number | undefined } | undefined {
  const collector = activeCollector();
  return collector === undefined ? undefined : { path: collector.component, line: collector.line };
}

/**
 * Tells the running component's round a warning about its source (a CSV header that looks
 * delimited by another character): the round's summary lists it with the component's path and
 * the app logs it. Outside a component it does nothing.
 *
 * @example
 * ```ts
 * import { warnSource } from "./target.ts";
 * warnSource("looks odd"); // no component is running: nothing happens
 * ```
 */
export function warnSource(message: string): void {
  activeCollector()?.warnings.push(message);
}
