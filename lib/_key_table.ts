/**
 * A map from key ids to values that never asks V8 to hash a key id (private to the engine).
 *
 * A file's rows arrive as fresh strings, and the first time V8 hashes a string for a `Map` or a
 * `Set` costs far more than the look-up itself under Deno 2.9 (V8 15): measured inside a first
 * publish of 1M rows, a file's collector took 431 ns for a key's first `Map.get` and 82 ns for the
 * same look-up again (Node 20's V8 hashed a fresh 7-character string in ~14 ns). Hashed here
 * instead, by FNV-1a over the UTF-16 units, into an open-addressing table of typed arrays, a key
 * costs tens of nanoseconds.
 *
 * @module
 */

/** A per-process start for the hashes: keys crafted to collide in one run do not in the next. */
const SEED = (Math.random() * 2 ** 32) | 0;

/**
 * FNV-1a of `id`'s UTF-16 units from a per-process seed, then murmur3's finaliser: FNV's
 * multiplications carry a unit's bits only upwards, and the table is indexed by the low bits, so
 * keys that differ only in the high bits of a unit would all land on one slot without it.
 */
export function hashId(id: string): number {
  let h = 0x811c9dc5 ^ SEED;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16); // signed, as the table keeps it
}

const FIRST_CAPACITY = 16;

/**
 * Key ids to values, in insertion order, as a `ReadonlyMap` (the engine reads key lists as maps)
 * that can also be written, by {@linkcode KeyTable.put}. No deletes: a component's declarations
 * only grow while it runs.
 *
 * @example
 * ```ts
 * import { KeyTable } from "./_key_table.ts";
 * const t = new KeyTable<number>();
 * t.put("a", 1);
 * t.put("b", 2);
 * if (t.put("a", 3) !== 1 || t.put("c", 4) !== undefined) throw new Error();
 * if (t.size !== 3 || t.get("a") !== 3 || t.has("d") || [...t.keys()].join() !== "a,b,c") {
 *   throw new Error();
 * }
 * if (t.valueAt(1) !== 2) throw new Error();
 * ```
 */
export class KeyTable<V> implements ReadonlyMap<string, V> {
  /** Open addressing, linear probing: entry index + 1 per slot, 0 when free. */
  #slots = new Int32Array(FIRST_CAPACITY);
  /** Each entry's hash, to skip comparing ids whose hashes differ. */
  #hashes = new Int32Array(FIRST_CAPACITY / 2);
  readonly #ids: string[] = [];
  readonly #values: V[] = [];

  get size(): number {
    return this.#ids.length;
  }

  get [Symbol.toStringTag](): string {
    return "KeyTable";
  }

  /** The entry of `id` (hash `h`), or -1 - the free slot where it would go. */
  #find(id: string, h: number): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let s = h & mask;; s = (s + 1) & mask) {
      const e = slots[s]!;
      if (e === 0) return -1 - s;
      if (this.#hashes[e - 1] === h && this.#ids[e - 1] === id) return e - 1;
    }
  }

  get(id: string): V | undefined {
    const i = this.#find(id, hashId(id));
    return i < 0 ? undefined : this.#values[i];
  }

  has(id: string): boolean {
    return this.#find(id, hashId(id)) >= 0;
  }

  /** The value of the `i`-th entry, in insertion order. */
  valueAt(i: number): V {
    return this.#values[i]!;
  }

  /** Sets `id`'s value (in place if it is there, else as the last entry); returns the earlier. */
  put(id: string, value: V): V | undefined {
    const h = hashId(id);
    const i = this.#find(id, h);
    if (i >= 0) {
      const earlier = this.#values[i];
      this.#values[i] = value;
      return earlier;
    }
    const n = this.#ids.length;
    if (n === this.#hashes.length) {
      const hashes = new Int32Array(n * 2);
      hashes.set(this.#hashes);
      this.#hashes = hashes;
    }
    this.#hashes[n] = h;
    this.#ids.push(id);
    this.#values.push(value);
    // At most half the slots taken: probes stay short. Growing places the new entry too.
    if ((n + 1) * 2 > this.#slots.length) this.#grow();
    else this.#slots[-1 - i] = n + 1;
    return undefined;
  }

  /** Twice the slots, every entry placed again by its kept hash. */
  #grow(): void {
    const slots = new Int32Array(this.#slots.length * 2);
    const mask = slots.length - 1;
    for (let e = 0; e < this.#ids.length; e++) {
      let s = this.#hashes[e]! & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = e + 1;
    }
    this.#slots = slots;
  }

  keys(): MapIterator<string> {
    return this.#ids.values();
  }

  values(): MapIterator<V> {
    return this.#values.values();
  }

  *entries(): MapIterator<[string, V]> {
    for (let i = 0; i < this.#ids.length; i++) yield [this.#ids[i]!, this.#values[i]!];
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(
    fn: (value: V, id: string, table: ReadonlyMap<string, V>) => void,
    thisArg?: unknown,
  ): void {
    for (let i = 0; i < this.#ids.length; i++) {
      fn.call(thisArg, this.#values[i]!, this.#ids[i]!, this);
    }
  }
}
