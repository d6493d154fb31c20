/**
 * The ambient collector: while a component runs, what its function declares is collected here,
 * per target and key id. One component runs at a time, so one slot is enough.
 *
 * @module
 */
import { StatecastError } from "./errors.ts";
import type { Fingerprint } from "./fingerprint.ts";
import { type Key, keyId, showKey } from "./key_id.ts";
import { KeyTable } from "./_key_table.ts";

/** What the collector needs of a target: its id and how it fingerprints a state. */
interface Fingerprinting<S> {
  readonly id: string;
  fingerprint(state: S): Fingerprint;
}

/**
 * How a component reacts to declaring one key twice: `"error"` fails the file with a
 * `StatecastError` naming both lines; `"last"` keeps the last declaration (a file of updates in
 * order). `app.fn()`'s option. @default "error"
 *
 * @example
 * ```ts
 * import { App, type OnDuplicateKey } from "./mod.ts";
 * const onDuplicateKey: OnDuplicateKey = "last";
 * const fn = new App({ name: "example" }).fn({ onDuplicateKey }, () => {});
 * if (fn.onDuplicateKey !== "last") throw new Error();
 * ```
 */
export type OnDuplicateKey = "error" | "last";

/** One declared state with its fingerprint and the source line it came from. */
export interface Collected {
  state: { key: Key };
  fingerprint: Fingerprint;
  line: number | undefined;
}

/**
 * Target id → key id → what one component declared. The key ids are a {@linkcode KeyTable}:
 * V8 never hashes them (a fresh string's first hash costs ~350 ns under Deno).
 */
export type Declarations = Map<string, ReadonlyMap<string, Collected>>;

/** Declared states between two calls of a collector's `onDeclared` (a power of 2). */
export const DECLARED_PULSE = 4096;

/** What one run of a component declared, per target id and key id. */
export class Collector {
  readonly byTarget = new Map<string, KeyTable<Collected>>() satisfies Declarations;
  /** The source line being processed; set by sources that know it (CSV rows). */
  line: number | undefined;
  /** Declared states so far, all targets together (for chunk sizes). */
  count = 0;
  /** Warnings about the source, given by `warnSource()`. */
  readonly warnings: string[] = [];

  /**
   * `onDeclared`, if given, is called every {@linkcode DECLARED_PULSE} new keys (the app checks
   * the heap there).
   */
  constructor(
    readonly component: string,
    readonly onDuplicateKey: OnDuplicateKey,
    readonly onDeclared?: () => void,
  ) {}

  declare<S extends { key: Key }>(target: Fingerprinting<S>, state: S): void {
    let states = this.byTarget.get(target.id);
    if (states === undefined) this.byTarget.set(target.id, states = new KeyTable());
    const id = keyId(state.key);
    const collected = { state, fingerprint: target.fingerprint(state), line: this.line };
    const earlier = states.put(id, collected); // one look-up: kept at once, the earlier returned
    if (earlier !== undefined && this.onDuplicateKey === "error") {
      states.put(id, earlier); // the first declaration stands, as if this one never came
      const where = (line: number | undefined) => line === undefined ? "" : ` line ${line}`;
      throw new StatecastError(
        `Duplicate key ${showKey(id)} in "${this.component}": declared at${
          where(earlier.line)
        } and again at${where(this.line)}`,
        { path: this.component, ...(this.line === undefined ? {} : { line: this.line }) },
      );
    }
    // After the state is kept: what onDeclared does (or throws) cannot lose it.
    if (earlier === undefined && (++this.count & (DECLARED_PULSE - 1)) === 0) this.onDeclared?.();
  }
}

let active: Collector | undefined;

/** The collector of the running component, if one runs. */
export function activeCollector(): Collector | undefined {
  return active;
}

/** Runs `fn` with `collector` as the running component's collector. */
export async function collecting(collector: Collector, fn: () => Promise<void>): Promise<void> {
  active = collector;
  try {
    await fn();
  } finally {
    active = undefined;
  }
}
