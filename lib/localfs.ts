/**
 * The local-filesystem source: the files under a folder, filtered by glob patterns on their
 * relative POSIX path. A catch-up run scans once; live mode then watches for changes.
 *
 * @module
 */
import { statSync } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import picomatch from "picomatch";
import { type CsvRow, type CsvRowsOptions, parseCsvRows } from "./csv.ts";
import type { SourceItem } from "./engine.ts";
import { StatecastError } from "./errors.ts";
import { isOwnFile, mayBeOwnFile } from "./_own_files.ts";

/** Files stat'ed between two pauses for the event loop during a scan. */
const STAT_BATCH = 2000;

/**
 * Options of {@linkcode walkDir}.
 *
 * @example
 * ```ts
 * import { localfs } from "./mod.ts";
 * const options: localfs.WalkDirOptions = {
 *   include: ["**\/*.csv", "**\/*.tsv"],
 *   exclude: ["archive/**", "**\/*_draft.csv"],
 *   live: false, // never watch, even with --live
 * };
 * const files = localfs.walkDir("./data", options);
 * if (!files.matches("eu/stock.tsv") || files.matches("archive/2020.csv")) throw new Error();
 * if (files.matches("eu/stock_draft.csv") || files.live) throw new Error();
 * ```
 */
export interface WalkDirOptions {
  /** Globs a relative path must match, e.g. `["**\/*.csv"]` (also matches top-level files). @default ["**"] */
  include?: string[];
  /** Globs that exclude a relative path. Hidden and editor temp files are always excluded. @default [] */
  exclude?: string[];
  /** Descend into subfolders. @default true */
  recursive?: boolean;
  /** Keep watching after the catch-up scan (only with `--live`). @default true */
  live?: boolean;
  /** Quiet window (ms) over which events on one path are coalesced in live mode. @default 50 */
  debounceMs?: number;
  /** Full rescan interval (ms) in live mode, to repair missed events; 0 turns it off. @default 3600000 */
  rescanIntervalMs?: number;
  /**
   * Follow symbolic links that lead outside `root`. Off, such a link is not an item (as if the
   * file were not there) and a warning names the link and its target: a link in a shared data
   * folder should not publish whatever file it points at. Links inside `root` always work.
   * @default false
   */
  followExternalSymlinks?: boolean;
  /**
   * In live mode, a changed file that looks unfinished (empty, much smaller than what was
   * published, or not ending with a line break) while it was written less than this many ms ago
   * is held until it has been quiet this long; 0 turns this off. @default 1000
   */
  settleMs?: number;
  /** Longest a file that keeps changing is held (ms); it then goes through with a warning. @default 60000 */
  settleMaxMs?: number;
  /**
   * Where `root` came from, for the error when it does not exist: the name of the environment
   * variable the job reads it from (`"DATA_DIR"` in main.ts), so the message says what to set.
   * @default undefined (the message says to create the folder or name another)
   */
  rootFrom?: string;
}

/**
 * Hidden files and folders (a segment starting with "."), editor backups and temp files
 * (`x~`, `.x.swp`, `#x#`, `4913`, `x.tmp`, `x.part`, `x.crdownload`) are never items.
 *
 * @example
 * ```ts
 * import { isIgnoredPath } from "./localfs.ts";
 * if (!isIgnoredPath("a/.b.csv.swp") || !isIgnoredPath("a.csv~") || isIgnoredPath("a/b.csv")) {
 *   throw new Error();
 * }
 * ```
 */
export function isIgnoredPath(relativePath: string): boolean {
  for (const segment of relativePath.split("/")) {
    if (segment.startsWith(".")) return true;
  }
  const name = relativePath.slice(relativePath.lastIndexOf("/") + 1);
  return name.endsWith("~") || name === "4913" || /^#.*#$/.test(name) ||
    /\.(swp|swx|tmp|part|crdownload)$/i.test(name);
}

/**
 * One file of a {@linkcode DirSource}: what the function given to `app.fn()` receives. Read it
 * with {@linkcode FileItem.csvRows}, {@linkcode FileItem.text} or {@linkcode FileItem.bytes}
 * (each reads the file once).
 *
 * @example
 * ```ts
 * import { mkdtemp, rm, writeFile } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { localfs } from "./mod.ts";
 * const dir = await mkdtemp(join(tmpdir(), "statecast-doc-"));
 * await writeFile(join(dir, "a.csv"), "sku,qty\nA1,3\n");
 * const [file] = await localfs.walkDir(dir).scan();
 * if (file!.path !== "a.csv" || file!.size !== 13) throw new Error();
 * for await (const row of file!.csvRows()) {
 *   if (row.get("qty") !== "3" || row.line !== 2) throw new Error();
 * }
 * await rm(dir, { recursive: true });
 * ```
 */
export class FileItem implements SourceItem {
  /** Relative POSIX path from the source root: the component id. */
  readonly path: string;
  /** Absolute (or root-relative) path on disk. */
  readonly fullPath: string;
  /** Size in bytes when the file was listed. */
  readonly size: number;
  /** Modification time (ms since the epoch) when the file was listed. */
  readonly mtimeMs: number;
  #bytes: Promise<Uint8Array> | undefined;
  readonly #statError: unknown;

  /**
   * The file `fullPath`, known as `path`, as listed (`size`, `mtimeMs`); with `statError` it
   * fails when read. Sources make items; a job only reads them.
   */
  constructor(path: string, fullPath: string, size: number, mtimeMs: number, statError?: unknown) {
    this.path = path;
    this.fullPath = fullPath;
    this.size = size;
    this.mtimeMs = mtimeMs;
    this.#statError = statError;
  }

  /** The file's bytes, read once. */
  bytes(): Promise<Uint8Array> {
    if (this.#bytes !== undefined) return this.#bytes;
    const read = this.#statError === undefined
      ? readFile(this.fullPath)
      : Promise.reject(this.#statError);
    this.#bytes = read.then(
      (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
      (cause) => {
        throw new StatecastError(`Cannot read "${this.path}": ${(cause as Error).message}`, {
          cause,
          path: this.path,
        });
      },
    );
    return this.#bytes;
  }

  /** Drops the cached bytes (the engine calls it once the file's component ran). */
  release(): void {
    this.#bytes = undefined;
  }

  /** The file as UTF-8 text (a BOM is kept; {@linkcode FileItem.csvRows} strips it). */
  async text(): Promise<string> {
    return decodeUtf8(await this.bytes(), this.path);
  }

  /**
   * The data rows of the file under its header row, each a {@linkcode CsvRow} (the header's
   * names, the values in header order, the line; `row.get(name)`, `row.toJsonText()`). A
   * malformed file throws a `StatecastError` naming the file and line.
   */
  csvRows(options: CsvRowsOptions = {}): AsyncGenerator<CsvRow> {
    return new AsyncRows(() => this.text().then((text) => parseCsvRows(text, this.path, options)));
  }
}

/**
 * The rows of a parser, as an async generator whose `next()` is one resolved promise per row: an
 * `async function*` doing `yield* rows` costs about three promises and microtask turns per row
 * (~130 ms CPU per 1M rows here). The file is read at the first `next()`, as in a generator
 * function; a parse error rejects that `next()` and ends the rows.
 */
class AsyncRows implements AsyncGenerator<CsvRow> {
  readonly #open: () => Promise<Generator<CsvRow>>;
  #opening: Promise<Generator<CsvRow>> | undefined;
  #rows: Generator<CsvRow> | undefined;
  #closed = false;

  constructor(open: () => Promise<Generator<CsvRow>>) {
    this.#open = open;
  }

  #started(): Promise<Generator<CsvRow>> {
    return this.#opening ??= this.#open().then((rows) => this.#rows = rows);
  }

  next(): Promise<IteratorResult<CsvRow>> {
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#rows === undefined) return this.#started().then((rows) => rows.next());
    try {
      return Promise.resolve(this.#rows.next());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  return(value?: unknown): Promise<IteratorResult<CsvRow>> {
    this.#closed = true;
    this.#opening?.then((rows) => rows.return(undefined), () => {});
    return Promise.resolve({ value: value as undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<CsvRow>> {
    this.#closed = true;
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): AsyncGenerator<CsvRow> {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}

/**
 * A path whose stat failed: gone (undefined), or there but unreadable (a symlink loop, no
 * permission): an item that fails when read, so the file is reported and keeps what it published,
 * and the other files go on.
 */
function failedStat(path: string, fullPath: string, error: unknown): FileItem | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return undefined;
  return new FileItem(path, fullPath, -1, 0, error);
}

/**
 * Decodes UTF-8 (a BOM is kept); invalid bytes are a `StatecastError` naming `path` and the line.
 *
 * @example
 * ```ts
 * import { localfs, StatecastError } from "./mod.ts";
 * const text = localfs.decodeUtf8(new TextEncoder().encode("héllo"), "a.txt");
 * if (text !== "héllo") throw new Error();
 * try {
 *   localfs.decodeUtf8(new Uint8Array([0x61, 0x0a, 0xff]), "b.txt");
 *   throw new Error("unreachable");
 * } catch (error) {
 *   if (!(error instanceof StatecastError) || error.line !== 2) throw error;
 * }
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
      throw new StatecastError(
        `Cannot decode "${path}" line 1: it is UTF-16 (its byte order mark says so), not UTF-8; ` +
          `save it as UTF-8 (Excel: "CSV UTF-8")`,
        { cause, path, line: 1 },
      );
    }
    const offset = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
    throw new StatecastError(
      `Cannot decode "${path}" line ${line}: invalid UTF-8 at byte ${offset}; a file saved as ` +
        `Windows-1252 or Latin-1 must be saved as UTF-8 (Excel: "CSV UTF-8") or converted ` +
        "(iconv -f WINDOWS-1252 -t UTF-8)",
      { cause, path, line },
    );
  }
}

/** Offset of the first byte that breaks UTF-8 well-formedness (bytes.length if none). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const n = b < 0x80
      ? 0
      : b >= 0xc2 && b < 0xe0
      ? 1
      : b >= 0xe0 && b < 0xf0
      ? 2
      : b >= 0xf0 && b < 0xf5
      ? 3
      : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
    }
    const second = bytes[i + 1] ?? 0;
    if (
      (b === 0xe0 && second < 0xa0) || (b === 0xed && second > 0x9f) ||
      (b === 0xf0 && second < 0x90) || (b === 0xf4 && second > 0x8f)
    ) return i;
    i += n + 1;
  }
  return i;
}

/**
 * A folder of files, as a source of components: what {@linkcode walkDir} returns and
 * `app.mountEach()` takes. Iterate it for a catch-up listing.
 *
 * @example
 * ```ts
 * import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { localfs } from "./mod.ts";
 * const dir = await mkdtemp(join(tmpdir(), "statecast-doc-"));
 * await mkdir(join(dir, "eu"));
 * for (const name of ["b.csv", "eu/a.csv", "notes.txt", ".hidden.csv"]) {
 *   await writeFile(join(dir, name), "id\n1\n");
 * }
 * const paths = [];
 * for await (const file of localfs.walkDir(dir, { include: ["**\/*.csv"] })) paths.push(file.path);
 * if (paths.join(" ") !== "b.csv eu/a.csv") throw new Error(paths.join(" "));
 * await rm(dir, { recursive: true });
 * ```
 */
export class DirSource implements AsyncIterable<FileItem> {
  /** The folder, as given. */
  readonly root: string;
  /** See {@linkcode WalkDirOptions.recursive}. */
  readonly recursive: boolean;
  /** See {@linkcode WalkDirOptions.live}. */
  readonly live: boolean;
  /** See {@linkcode WalkDirOptions.debounceMs}. */
  readonly debounceMs: number;
  /** See {@linkcode WalkDirOptions.rescanIntervalMs}. */
  readonly rescanIntervalMs: number;
  /** See {@linkcode WalkDirOptions.followExternalSymlinks}. */
  readonly followExternalSymlinks: boolean;
  /** See {@linkcode WalkDirOptions.settleMs}. */
  readonly settleMs: number;
  /** See {@linkcode WalkDirOptions.settleMaxMs}. */
  readonly settleMaxMs: number;
  readonly #include: (path: string) => boolean;
  /** `include` matching letters of either case: for the warning about a file only case skips. */
  readonly #includeAnyCase: (path: string) => boolean;
  readonly #includeGlobs: readonly string[];
  readonly #exclude: (path: string) => boolean;
  readonly #rootFrom: string | undefined;
  /** Warnings not yet taken, and every warning given (each is given once). */
  #warnings: string[] = [];
  readonly #warned = new Set<string>();

  /** The files under `root` that `options` selects; {@linkcode walkDir} is the usual way. */
  constructor(root: string, options: WalkDirOptions = {}) {
    this.root = root;
    this.recursive = options.recursive ?? true;
    this.live = options.live ?? true;
    this.debounceMs = options.debounceMs ?? 50;
    this.rescanIntervalMs = options.rescanIntervalMs ?? 3_600_000;
    this.followExternalSymlinks = options.followExternalSymlinks ?? false;
    this.settleMs = options.settleMs ?? 1_000;
    this.settleMaxMs = options.settleMaxMs ?? 60_000;
    this.#rootFrom = options.rootFrom;
    const include = options.include ?? ["**"];
    this.#includeGlobs = include;
    this.#include = picomatch(include, { dot: false });
    this.#includeAnyCase = picomatch(include, { dot: false, nocase: true });
    const exclude = options.exclude ?? [];
    this.#exclude = exclude.length === 0 ? () => false : picomatch(exclude, { dot: true });
  }

  /** The error for a root that does not exist: which folder that is, and what to do. */
  #missingRoot(): string {
    const absolute = resolve(this.root);
    const where = absolute === this.root ? "" : ` (${absolute})`;
    const fix = this.#rootFrom === undefined
      ? "create it, or name an existing folder"
      : `create it, or set ${this.#rootFrom} to your folder (${this.#rootFrom}=path/to/folder ` +
        "in the environment or in .env)";
    return `Cannot read the source folder "${this.root}"${where}: it does not exist; ${fix}`;
  }

  /** Whether a relative POSIX path is an item of this source. */
  matches(path: string): boolean {
    return this.#eligible(path) && this.#include(path) && !this.#exclude(path);
  }

  /**
   * Whether a relative path may be an item whatever the globs say: not hidden or a temp file, not
   * below the top level of a source that does not recurse, not an open state store's file (see
   * _own_files.ts).
   */
  #eligible(path: string): boolean {
    if (isIgnoredPath(path)) return false;
    if (!this.recursive && path.includes("/")) return false;
    const name = path.slice(path.lastIndexOf("/") + 1);
    return !(mayBeOwnFile(name) && isOwnFile(resolve(this.root, path)));
  }

  /** Stats one relative path; undefined when it is gone, not a file, or not matched. */
  async item(path: string): Promise<FileItem | undefined> {
    if (!this.matches(path)) return undefined;
    return await this.#item(path, true);
  }

  /** {@linkcode DirSource.#item} for a path the walk found as a plain file: no real path check. */
  #itemSync(path: string): FileItem | undefined {
    const fullPath = join(this.root, ...path.split("/"));
    try {
      const s = statSync(fullPath);
      return s.isFile() ? new FileItem(path, fullPath, s.size, s.mtimeMs) : undefined;
    } catch (error) {
      return failedStat(path, fullPath, error);
    }
  }

  /**
   * Stats one matching path. `mayLeave`: the path may lead outside the root (a symbolic link, or
   * a path the walk did not see), so its real path is checked.
   */
  async #item(path: string, mayLeave: boolean): Promise<FileItem | undefined> {
    const fullPath = join(this.root, ...path.split("/"));
    try {
      const s = await stat(fullPath);
      if (!s.isFile() || (mayLeave && !await this.#inside(path, fullPath))) return undefined;
      return new FileItem(path, fullPath, s.size, s.mtimeMs);
    } catch (error) {
      return failedStat(path, fullPath, error);
    }
  }

  /**
   * Warns (once per file) about a file that `include` would match but for the case of its
   * letters: an export named `ORDERS.CSV` is skipped by the glob of every `.csv`, and without a
   * word a run would say "0 files" and send nothing.
   */
  #warnIfCaseOnly(path: string): void {
    if (!this.#eligible(path) || this.#include(path) || this.#exclude(path)) return;
    if (!this.#includeAnyCase(path)) return;
    this.#warn(
      `"${path}" is not read: the include globs (${this.#includeGlobs.join(", ")}) match ` +
        'letter case exactly; add a glob for its case to include it (e.g. "**/*.CSV")',
    );
  }

  /** Records `warning` for {@linkcode DirSource.takeWarnings}, once per source. */
  #warn(warning: string): void {
    if (!this.#warned.has(warning)) {
      this.#warned.add(warning);
      this.#warnings.push(warning);
    }
  }

  async #inside(path: string, fullPath: string): Promise<boolean> {
    if (this.followExternalSymlinks) return true;
    const [target, root] = await Promise.all([realpath(fullPath), realpath(this.root)]);
    if (target.startsWith(root.endsWith(sep) ? root : root + sep)) return true;
    const warning = `"${path}" is a symbolic link to "${target}", outside "${this.root}": ` +
      "skipped, as if the file were not there (walkDir option followExternalSymlinks: true " +
      "follows it)";
    this.#warn(warning);
    return false;
  }

  /**
   * The warnings found since the last call (a symbolic link that leads outside the root), each
   * given once per source; the app logs them.
   */
  takeWarnings(): string[] {
    const warnings = this.#warnings;
    this.#warnings = [];
    return warnings;
  }

  /**
   * Every matching file now (under the relative folder `under`, if given), sorted by path. A
   * missing root is an error naming it; a missing `under` is empty; a sub-folder that cannot be
   * read is an error (see {@linkcode DirSource.scanTree} to go on without it).
   */
  async scan(under = ""): Promise<FileItem[]> {
    const { items, unreadable } = await this.scanTree(under);
    if (unreadable[0] !== undefined) throw unreadable[0].error;
    return items;
  }

  /**
   * Like {@linkcode DirSource.scan}, but a sub-folder that cannot be read is listed in
   * `unreadable` (relative path and error) and the walk goes on: skipping its files silently
   * would retract their rows, so callers keep them as they are.
   */
  async scanTree(under = ""): Promise<{
    items: FileItem[];
    unreadable: Array<{ path: string; error: StatecastError }>;
  }> {
    try {
      const s = await stat(this.root);
      if (!s.isDirectory()) throw new StatecastError(`"${this.root}" is not a directory`);
    } catch (cause) {
      if (cause instanceof StatecastError) throw cause;
      throw new StatecastError(this.#missingRoot(), { cause });
    }
    const paths: string[] = [];
    /** Paths that are symbolic links: the only ones that can lead outside the root. */
    const links = new Set<string>();
    const unreadable: Array<{ path: string; error: StatecastError }> = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (cause) {
        if (dir === this.root) throw cause;
        const path = relative(this.root, dir).split(sep).join("/");
        unreadable.push({
          path,
          error: new StatecastError(
            `Cannot read the folder "${path}" under "${this.root}": ` +
              `${(cause as Error).message}; its files keep what they published`,
            { cause, path },
          ),
        });
        return;
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        const rel = relative(this.root, full).split(sep).join("/");
        if (entry.isDirectory()) {
          if (this.recursive && !entry.name.startsWith(".")) await walk(full);
        } else if ((entry.isFile() || entry.isSymbolicLink()) && this.matches(rel)) {
          paths.push(rel);
          if (entry.isSymbolicLink()) links.add(rel);
        } else if (entry.isFile() || entry.isSymbolicLink()) {
          this.#warnIfCaseOnly(rel);
        }
      }
    };
    try {
      await walk(under === "" ? this.root : join(this.root, ...under.split("/")));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (under === "" || (code !== "ENOENT" && code !== "ENOTDIR")) throw error;
    }
    paths.sort();
    // Plain files are stat'ed synchronously, a batch at a time with a pause for the event loop in
    // between: per file, an awaited stat costs more than the system call (100,000 small files:
    // 19 s one awaited stat at a time, 2.7 s 64 at a time, 1.6 s synchronously). Links, which may
    // lead outside the root, take the checked path.
    const found = new Array<FileItem | undefined>(paths.length);
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i]!;
      found[i] = links.has(path) ? await this.#item(path, true) : this.#itemSync(path);
      if (i % STAT_BATCH === STAT_BATCH - 1) await new Promise((r) => setTimeout(r, 0));
    }
    const items = found.filter((item) => item !== undefined);
    return { items, unreadable };
  }

  /** Every matching file now, sorted by path ({@linkcode DirSource.scan}). */
  async *[Symbol.asyncIterator](): AsyncIterator<FileItem> {
    yield* await this.scan();
  }
}

/**
 * A source of the files under `root` whose relative POSIX paths match `include` and not
 * `exclude`.
 *
 * @example
 * ```ts
 * import { walkDir } from "./localfs.ts";
 * const files = walkDir("./data", { include: ["**\/*.csv"] });
 * if (!files.matches("a.csv") || !files.matches("x/b.csv") || files.matches("c.txt")) {
 *   throw new Error();
 * }
 * ```
 */
export function walkDir(root: string, options: WalkDirOptions = {}): DirSource {
  return new DirSource(root, options);
}
