/**
 * The pure rules of statecast, with no I/O: what to do for one key (reconcile), who owns a key
 * that several components declare (the owner rule), and when a round deletes too much (the delete
 * guard). Everything else in the engine gathers their inputs and carries out their answers.
 *
 * @module
 */
import type { Fingerprint } from "./fingerprint.ts";

/**
 * A declared state with its fingerprint, as reconcile sees it.
 *
 * @example
 * ```ts
 * import { type Declared, fingerprint, initFingerprints, reconcile } from "./mod.ts";
 * await initFingerprints();
 * const declared: Declared<{ key: string; value: string }> = {
 *   state: { key: "A1", value: "3" },
 *   fingerprint: fingerprint("3"),
 * };
 * if (reconcile(declared, fingerprint("3")) !== null) throw new Error("unchanged: no-op");
 * ```
 */
export interface Declared<S> {
  /** The declared state. */
  state: S;
  /** Its fingerprint, from the target's `fingerprint()`. */
  fingerprint: Fingerprint;
}

/**
 * Options of {@linkcode reconcile}.
 *
 * @example
 * ```ts
 * import { reconcile, type ReconcileOptions } from "./mod.ts";
 * const options: ReconcileOptions = { mayBeMissing: true }; // sent, never committed
 * if (reconcile(undefined, undefined, options)?.kind !== "delete") throw new Error();
 * ```
 */
export interface ReconcileOptions {
  /**
   * The target may hold something other than `previous` for this key (it was sent but the send
   * was never committed: a crash, a lost broker), so an equal fingerprint proves nothing and a
   * key nobody declares is deleted even with no previous fingerprint. @default false
   */
  mayBeMissing?: boolean;
}

/**
 * The reconcile rule for one key: upsert a new or changed value, delete a key nobody declares,
 * and do nothing when the fingerprint is unchanged. Pure; one action per key.
 *
 * @example
 * ```ts
 * import { reconcile } from "./reconcile.ts";
 * const declared = { state: { key: "k" }, fingerprint: "00000000000000aa" };
 * if (reconcile(declared, undefined)?.kind !== "upsert") throw new Error();
 * if (reconcile(declared, "00000000000000aa") !== null) throw new Error();
 * if (reconcile(undefined, "00000000000000aa")?.kind !== "delete") throw new Error();
 * // Sent but never committed: send again, whatever the fingerprints say.
 * const again = reconcile(declared, "00000000000000aa", { mayBeMissing: true });
 * if (again?.kind !== "upsert") throw new Error();
 * if (reconcile(undefined, undefined, { mayBeMissing: true })?.kind !== "delete") throw new Error();
 * ```
 */
export function reconcile<S>(
  declared: Declared<S> | undefined,
  previous: Fingerprint | undefined,
  options: ReconcileOptions = {},
): { kind: "upsert"; state: S } | { kind: "delete" } | null {
  const mayBeMissing = options.mayBeMissing ?? false;
  if (declared === undefined) {
    return previous === undefined && !mayBeMissing ? null : { kind: "delete" };
  }
  if (declared.fingerprint === previous && !mayBeMissing) return null;
  return { kind: "upsert", state: declared.state };
}

/**
 * The owner rule: of the components that declare a key, the first in path order (UTF-16 code
 * unit order, as `Array.prototype.sort`) owns it; its state is the one published.
 *
 * @example
 * ```ts
 * import { ownerOf } from "./reconcile.ts";
 * if (ownerOf(["b.csv", "a.csv"]) !== "a.csv" || ownerOf([]) !== undefined) throw new Error();
 * ```
 */
export function ownerOf(declarers: Iterable<string>): string | undefined {
  let owner: string | undefined;
  for (const c of declarers) if (owner === undefined || c < owner) owner = c;
  return owner;
}

/**
 * A round deletes at most this many keys of a target without the share check: removing a small
 * file is never mistaken for a mount that is not ready.
 */
export const DELETE_GUARD_FLOOR = 20;

/** Share of a target's keys a round may delete, unless deletes are allowed. */
export const DEFAULT_MAX_DELETE_SHARE = 0.5;

/**
 * The delete guard: why a round that deletes `deletes` of the `keys` a target holds is refused,
 * or null. A `maxShare` of 1 or more allows everything; else an empty source that would retract
 * keys is refused whatever the count, and so are more than `DELETE_GUARD_FLOOR` deletes that
 * exceed `maxShare` of the keys.
 *
 * @example
 * ```ts
 * import { deleteGuard } from "./reconcile.ts";
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
