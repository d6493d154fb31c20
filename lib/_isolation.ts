/**
 * The isolation path's grouping (private to the engine): when a target refuses some of a chunk's
 * data itself, the chunk is applied and committed group by group, and a group holds every
 * component that shares a key with another one (declared before or now, on any target), so a
 * key's tombstone and its new owner's value never land in different groups.
 *
 * @module
 */
import type { Declarations } from "./_collector.ts";
import type { KeyFingerprints } from "./state_store.ts";

/**
 * The components of `ran` in groups that share no key, each sorted, in path order.
 *
 * @example
 * ```ts
 * import { linkedGroups } from "./_isolation.ts";
 * const declares = (...ids: string[]) =>
 *   new Map([["t", new Map(ids.map((id) => [id, { state: { key: id }, fingerprint: "0", line: 1 }]))]]);
 * const ran = new Map([["a", declares("k")], ["b", declares("k")], ["c", declares("x")]]);
 * const groups = linkedGroups(ran, new Map());
 * if (JSON.stringify(groups) !== '[["a","b"],["c"]]') throw new Error(JSON.stringify(groups));
 * ```
 */
export function linkedGroups(
  ran: ReadonlyMap<string, Declarations>,
  before: ReadonlyMap<string, ReadonlyMap<string, KeyFingerprints>>,
): string[][] {
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
  for (const c of ran.keys()) parent.set(c, c);
  for (const [c, byTarget] of ran) {
    for (const [target, keys] of byTarget) for (const id of keys.keys()) link(target, id, c);
    for (const [target, byComponent] of before) {
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
