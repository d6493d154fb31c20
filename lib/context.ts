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

/** Options of {@linkcode Context}. */
export interface ContextOptions {
  /**
   * A dry run's context: the app's lifespan does not run, and {@linkcode Context.get} hands out
   * a stand-in for a resource nobody provided, so targets mount without connecting anywhere. A
   * dry run never applies changes; a stand-in that is used anyway throws, naming its key.
   * @default false
   */
  dryRun?: boolean;
}

/** The resources an app's lifespan provided. */
export class Context {
  readonly #values = new Map<string, unknown>();
  /** Whether this is a dry run's context (see {@linkcode ContextOptions.dryRun}). */
  readonly dryRun: boolean;

  constructor(options: ContextOptions = {}) {
    this.dryRun = options.dryRun ?? false;
  }

  /** Provides the resource for `key`. Providing twice replaces it. */
  provide<T>(key: ContextKey<T>, value: T): void {
    this.#values.set(key.name, value);
  }

  /**
   * The resource for `key`; a `TypeError` naming the key when none was provided (in a dry run,
   * a stand-in instead).
   */
  get<T>(key: ContextKey<T>): T {
    if (!this.#values.has(key.name) && this.dryRun) return standIn(key.name) as T;
    if (!this.#values.has(key.name)) {
      throw new TypeError(
        `Nothing was provided for ContextKey "${key.name}": call ctx.provide(key, value) in app.lifespan()`,
      );
    }
    return this.#values.get(key.name) as T;
  }
}

/**
 * A dry run's stand-in for the resource of `name`: an object whose every use throws, naming it.
 * (`then` reads undefined, so awaiting or returning it from an async function is harmless.)
 */
function standIn(name: string): unknown {
  return new Proxy({}, {
    get(_, property) {
      if (property === "then" || typeof property === "symbol") return undefined;
      throw new Error(
        `ContextKey "${name}": a dry run runs no lifespan and connects to nothing, so this ` +
          `stand-in has no "${property}"; a dry run must not use it`,
      );
    },
  });
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
