/**
 * The one error class statecast throws for things a caller may want to catch: a file that cannot
 * be parsed, a target that refused a batch, a state store that is newer than this statecast.
 * Misuse of the API throws the built-in `TypeError` / `RangeError` instead.
 *
 * @module
 */

/**
 * Options of {@linkcode StatecastError}: the facts a caller may act on, as fields.
 *
 * @example
 * ```ts
 * import { StatecastError, type StatecastErrorOptions } from "./mod.ts";
 * const options: StatecastErrorOptions = { path: "a.csv", line: 3, cause: new Error("bad") };
 * const error = new StatecastError('Cannot parse "a.csv" line 3: bad', options);
 * if (error.path !== "a.csv" || !(error.cause instanceof Error)) throw new Error();
 * ```
 */
export interface StatecastErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** The source file (relative path) the error is about, when there is one. */
  path?: string;
  /** The 1-based line in {@linkcode StatecastErrorOptions.path}, when known. */
  line?: number;
  /** Whether trying again later may succeed (a broker that is down, a timeout). @default false */
  retriable?: boolean;
  /**
   * A target refused the data itself (a message too large, an invalid record): sending the
   * same data again fails again, so the engine fails the files it came from, not the round.
   * @default false
   */
  refused?: boolean;
}

/**
 * An error a user can act on: its message names the thing, the place and what was expected.
 *
 * @example
 * ```ts
 * import { StatecastError } from "./errors.ts";
 * const e = new StatecastError('Cannot parse "a.csv" line 7: unterminated quoted field', {
 *   path: "a.csv",
 *   line: 7,
 * });
 * if (e.line !== 7 || e.retriable) throw new Error("unexpected");
 * ```
 */
export class StatecastError extends Error {
  /** Always `"StatecastError"`. */
  override name = "StatecastError";
  /** See {@linkcode StatecastErrorOptions.path}. */
  readonly path: string | undefined;
  /** See {@linkcode StatecastErrorOptions.line}. */
  readonly line: number | undefined;
  /** See {@linkcode StatecastErrorOptions.retriable}. */
  readonly retriable: boolean;
  /** See {@linkcode StatecastErrorOptions.refused}. */
  readonly refused: boolean;

  /** An error with `message`, which should name the thing, the place and what was expected. */
  constructor(message: string, options: StatecastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.path = options.path;
    this.line = options.line;
    this.retriable = options.retriable ?? false;
    this.refused = options.refused ?? false;
  }
}

/** The message of any thrown value, for logs. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `text` with the secrets a URL may carry replaced by `***`: the password of every
 * `scheme://user:password@host` (up to the last `@` of the address, as URL parsers split it) and
 * the value of every `authToken`, `token`, `password` or `secret` query parameter. Every log line
 * statecast prints goes through it, so a state store URL or a broker address never shows a
 * password, whoever wrote the message (libSQL's errors repeat the URL they were given).
 *
 * @example
 * ```ts
 * import { redactSecrets } from "./errors.ts";
 * const message = redactSecrets('Cannot open "http://alice:s3cret@db.example:8080/x": refused');
 * if (message !== 'Cannot open "http://alice:***@db.example:8080/x": refused') throw new Error();
 * if (redactSecrets("libsql://db?authToken=t0k&tls=1") !== "libsql://db?authToken=***&tls=1") {
 *   throw new Error();
 * }
 * ```
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s/?#@:"'`]*:)[^\s"'`]*@/gi, "$1***@")
    .replace(
      /([?&](?:authToken|auth_token|access_token|token|password|secret)=)[^&#\s"'`]*/gi,
      "$1***",
    );
}
