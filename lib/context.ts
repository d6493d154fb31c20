/**
 * Context keys: named slots for shared resources (a Kafka producer, a database pool) that the
 * app's lifespan provides and targets use. A key's *name* is part of a target's identity, so
 * changing brokers, credentials or the producer object behind a key re-sends nothing.
 *
 * @module
 */
import type { Target } from "./target.ts";

/**
 * A named slot for a resource of type `T`.
 *
 * @example
 * ```ts
 * import { Context, ContextKey } from "./context.ts";
 * const KEY = new ContextKey<number>("answer");
 * const ctx = new Context();
 * ctx.provide(KEY, 42);
 * if (ctx.get(KEY) !== 42) throw new Error();
 * ```
 */
export class ContextKey<T> {
  /** Stable name; part of the identity of every target that uses the resource. */
  readonly name: string;
  declare readonly _type: T;

  constructor(name: string) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new TypeError(
        `ContextKey name "${name}" must be letters, digits, "_", "." or "-" (it is part of target identities)`,
      );
    }
    this.name = name;
  }
}

/** The resources an app's lifespan provided. */
export class Context {
  readonly #values = new Map<string, unknown>();

  /** Provides the resource for `key`. Providing twice replaces it. */
  provide<T>(key: ContextKey<T>, value: T): void {
    this.#values.set(key.name, value);
  }

  /** The resource for `key`; a `TypeError` naming the key when none was provided. */
  get<T>(key: ContextKey<T>): T {
    if (!this.#values.has(key.name)) {
      throw new TypeError(
        `Nothing was provided for ContextKey "${key.name}": call ctx.provide(key, value) in app.lifespan()`,
      );
    }
    return this.#values.get(key.name) as T;
  }
}

/** What a running app offers to targets mounted in its main function. */
export interface MountScope {
  readonly context: Context;
  mountTarget(target: Target<never>): void;
}

let scope: MountScope | undefined;

/** Runs `fn` with `s` as the current mount scope. */
export async function withMountScope<R>(s: MountScope, fn: () => Promise<R>): Promise<R> {
  const outer = scope;
  scope = s;
  try {
    return await fn();
  } finally {
    scope = outer;
  }
}

/** The running app's scope; a `TypeError` outside `app.main()`. */
export function currentMountScope(what: string): MountScope {
  if (scope === undefined) {
    throw new TypeError(`${what} must be called inside the function given to app.main()`);
  }
  return scope;
}
