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
  /** Never set: it only carries `T`, so that `ctx.get(key)` is typed. */
  declare readonly _type: T;

  /**
   * A key named `name`: letters, digits, `_`, `.` or `-` (a `TypeError` otherwise). Keep the
   * name when the resource behind it changes (another broker, new credentials): a new name is a
   * new target identity, and every row is sent again.
   */
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

/**
 * The resources an app's lifespan provided, by {@linkcode ContextKey}. The app makes one per run
 * and hands it to its lifespan; mount functions read it ({@linkcode mountTarget}).
 *
 * @example
 * ```ts
 * import { Context, ContextKey } from "./mod.ts";
 * const DB = new ContextKey<{ url: string }>("db");
 * const ctx = new Context();
 * try {
 *   ctx.get(DB);
 *   throw new Error("unreachable");
 * } catch (error) {
 *   if (!(error instanceof TypeError) || !error.message.includes('"db"')) throw error;
 * }
 * ctx.provide(DB, { url: "postgres://localhost/db" });
 * if (ctx.get(DB).url !== "postgres://localhost/db") throw new Error();
 * ```
 */
export class Context {
  readonly #values = new Map<string, unknown>();
  /** Whether this is a dry run's context (see {@linkcode ContextOptions.dryRun}). */
  readonly dryRun: boolean;

  /** A context with nothing provided yet; `dryRun` for a dry run's (see {@linkcode ContextOptions}). */
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

/**
 * Mounts a target of your own on the running app, so that what components declare on it is
 * reconciled: `make` builds it from the app's context (the resources its lifespan provided).
 * Call it from your mount function, inside the function given to `app.main()` (as
 * `kafka.mountTopicTarget()` does); elsewhere it is a `TypeError`. Returns the target. Two
 * targets with one `id` are a `TypeError` when the app runs.
 *
 * @example
 * ```ts
 * import { mountTarget } from "./mod.ts";
 * const target = { id: "memory:t", fingerprint: () => "0", apply: () => Promise.resolve() };
 * try {
 *   mountTarget(() => target); // not inside app.main()
 *   throw new Error("unreachable");
 * } catch (error) {
 *   if (!(error instanceof TypeError)) throw error;
 * }
 * ```
 */
export function mountTarget<T extends Target<never>>(make: (context: Context) => T): T {
  const scope = currentMountScope("mountTarget()");
  const target = make(scope.context);
  scope.mountTarget(target);
  return target;
}
