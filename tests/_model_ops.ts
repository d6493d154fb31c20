// Seeded random operations on a folder of CSV files, for the model-based end-to-end tests: each
// operation changes the folder as data (./_model.ts) and says what to do on disk to match.
import {
  type Breakage,
  type CsvSpec,
  type CsvStyle,
  type DiskAction,
  renderCsv,
  Rng,
} from "./_model.ts";

/** Paths files may take: subfolders, and names whose sort order is easy to get wrong. */
const PATHS = [
  "a.csv",
  "b.csv",
  "c.csv",
  "d.csv",
  "B.csv",
  "a-b.csv",
  "a/b.csv",
  "sub/a.csv",
  "sub/f.csv",
  "sub/deep/g.csv",
  "z/h.csv",
];
const SUBFOLDER_PATHS = PATHS.filter((p) => p.includes("/"));
const FOLDERS = ["a", "sub", "sub/deep", "z"];

/** Keys rows take: a small pool, so files share keys; a few need quoting or are not ASCII. */
const KEYS = [
  ...Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, "0")}`),
  "k,comma",
  'k"quote',
  "ünïcode",
  "with space",
  "😀",
];

const ODD_VALUES = ["", "a,b", 'say "hi"', "two\nlines", "crlf\r\ninside", " padded ", "ünï", "😀"];

/** One operation: what it did, in words, and the disk actions that make the folder match. */
export interface Op {
  describe: string;
  actions: DiskAction[];
}

type Kind =
  | "create"
  | "delete"
  | "rename"
  | "move"
  | "editCell"
  | "addRow"
  | "removeRow"
  | "shareKey"
  | "changeKey"
  | "corrupt"
  | "fix"
  | "revert"
  | "restyle"
  | "reheader"
  | "deleteFolder";

const WEIGHTS: Record<Kind, number> = {
  create: 10,
  delete: 5,
  rename: 5,
  move: 4,
  editCell: 20,
  addRow: 10,
  removeRow: 8,
  shareKey: 10,
  changeKey: 4,
  corrupt: 8,
  fix: 10,
  revert: 7,
  restyle: 3,
  reheader: 2,
  deleteFolder: 1,
};

/** Options of {@linkcode Folder}. */
export interface FolderOptions {
  /** At most this many files at once. @default 8 */
  maxFiles?: number;
  /** At most this many broken files at once. @default 2 */
  maxBroken?: number;
  /** Writes go through a temp file and a rename this often (live mode). @default 0 */
  atomicWrites?: number;
}

/** A folder of CSV files as data, and seeded random operations on it. */
export class Folder {
  /** The files as they are on disk now. */
  files = new Map<string, CsvSpec>();
  /** Every version each path has had, for reverts. */
  #history = new Map<string, CsvSpec[]>();
  readonly #rng: Rng;
  readonly #maxFiles: number;
  readonly #maxBroken: number;
  readonly #atomicWrites: number;

  constructor(rng: Rng, options: FolderOptions = {}) {
    this.#rng = rng;
    this.#maxFiles = options.maxFiles ?? 8;
    this.#maxBroken = options.maxBroken ?? 2;
    this.#atomicWrites = options.atomicWrites ?? 0;
  }

  /** Paths of broken files. */
  broken(): string[] {
    return [...this.files].filter(([, s]) => s.broken !== null).map(([p]) => p);
  }

  /** A copy of the folder's state, to undo an operation with {@linkcode restore}. */
  snapshot(): { files: Map<string, CsvSpec>; history: Map<string, CsvSpec[]> } {
    return {
      files: new Map(this.files),
      history: new Map([...this.#history].map(([p, h]) => [p, [...h]])),
    };
  }

  restore(snapshot: ReturnType<Folder["snapshot"]>): void {
    this.files = new Map(snapshot.files);
    this.#history = new Map([...snapshot.history].map(([p, h]) => [p, [...h]]));
  }

  /** One random operation, applied to the folder as data. `kinds` limits the choice. */
  randomOp(kinds?: readonly Kind[]): Op {
    const possible = (Object.keys(WEIGHTS) as Kind[])
      .filter((k) => (kinds === undefined || kinds.includes(k)) && this.#can(k));
    let roll = this.#rng.next() * possible.reduce((sum, k) => sum + WEIGHTS[k], 0);
    const kind = possible.find((k) => (roll -= WEIGHTS[k]) < 0) ?? possible.at(-1)!;
    return this.#do(kind);
  }

  /** Fixes every broken file (its rows as they were meant to be). */
  fixAll(): Op[] {
    return this.broken().map((path) =>
      this.#set(path, { ...this.files.get(path)!, broken: null }, "fix")
    );
  }

  #can(kind: Kind): boolean {
    const n = this.files.size, free = PATHS.filter((p) => !this.files.has(p)).length;
    const valid = n - this.broken().length;
    switch (kind) {
      case "create":
        return n < this.#maxFiles && free > 0;
      case "delete":
        return n > 1;
      case "rename":
      case "move":
        return n > 0 && free > 0;
      case "removeRow":
      case "changeKey":
        return [...this.files.values()].some((s) => s.rows.length > 0);
      case "shareKey":
        return n > 1;
      case "corrupt":
        return valid > 0 && this.broken().length < this.#maxBroken;
      case "fix":
        return this.broken().length > 0;
      case "revert":
        return this.#revertable().length > 0;
      case "deleteFolder":
        return FOLDERS.some((f) => this.#under(f).length > 0 && this.#under(f).length < n);
      default:
        return n > 0;
    }
  }

  #under(folder: string): string[] {
    return [...this.files.keys()].filter((p) => p.startsWith(folder + "/"));
  }

  #do(kind: Kind): Op {
    const rng = this.#rng, paths = [...this.files.keys()];
    const path = rng.pick(paths.length > 0 ? paths : [""]);
    const spec = this.files.get(path)!;
    switch (kind) {
      case "create": {
        const to = rng.pick(PATHS.filter((p) => !this.files.has(p)));
        return this.#set(to, this.#newSpec(), "create");
      }
      case "delete":
        this.files.delete(path);
        return { describe: `delete ${path}`, actions: [{ kind: "remove", path }] };
      case "rename":
      case "move": {
        const targets = (kind === "move" ? SUBFOLDER_PATHS : PATHS).filter((p) =>
          !this.files.has(p)
        );
        const to = rng.pick(targets.length > 0 ? targets : PATHS.filter((p) => !this.files.has(p)));
        this.files.delete(path);
        this.files.set(to, spec);
        this.#remember(to, spec);
        return {
          describe: `${kind} ${path} to ${to}`,
          actions: [{ kind: "rename", from: path, to }],
        };
      }
      case "deleteFolder": {
        const folder = rng.pick(FOLDERS.filter((f) => {
          const under = this.#under(f).length;
          return under > 0 && under < this.files.size;
        }));
        for (const p of this.#under(folder)) this.files.delete(p);
        return {
          describe: `delete folder ${folder}/`,
          actions: [{ kind: "removeDir", path: folder }],
        };
      }
      case "corrupt":
      case "fix":
      case "revert":
      case "restyle":
      case "reheader":
        return this.#rewrite(kind, path, spec);
      default:
        return this.#edit(kind, path, spec);
    }
  }

  /** Operations that rewrite a file whole: break it, fix it, revert it, restyle it. */
  #rewrite(kind: Kind, path: string, spec: CsvSpec): Op {
    const rng = this.#rng;
    switch (kind) {
      case "corrupt": {
        const target = rng.pick(
          [...this.files].filter(([, s]) => s.broken === null).map(([p]) => p),
        );
        const broken: Breakage = {
          kind: rng.pick(["quote", "fields", "duplicate"] as const),
          at: rng.int(100),
        };
        return this.#set(target, { ...this.files.get(target)!, broken }, `break (${broken.kind})`);
      }
      case "fix": {
        const target = rng.pick(this.broken());
        const fixed = { ...this.files.get(target)!, broken: null };
        return this.#set(target, fixed, "fix");
      }
      case "revert":
        return this.#revert();
      case "restyle":
        return this.#set(path, { ...spec, style: this.#style() }, "restyle");
      case "reheader": {
        const wide = spec.header.length === 2;
        const header = wide ? [...spec.header, "note"] : spec.header.slice(0, 2);
        const rows = spec.rows.map((r) => wide ? [...r, this.#value()] : r.slice(0, 2));
        return this.#set(
          path,
          { ...spec, header, rows },
          wide ? "add a column to" : "drop a column of",
        );
      }
      default:
        throw new TypeError(`unknown operation ${kind}`);
    }
  }

  /** Operations on the rows of one file. */
  #edit(kind: Kind, path: string, spec: CsvSpec): Op {
    const rng = this.#rng;
    const rows = spec.rows.map((r) => [...r]);
    const i = rng.int(Math.max(rows.length, 1));
    switch (kind) {
      case "editCell": {
        if (rows.length === 0) return this.#edit("addRow", path, spec);
        rows[i]![1 + rng.int(spec.header.length - 1)] = this.#value();
        return this.#set(path, { ...spec, rows }, `edit a cell of ${rows[i]![0]} in`);
      }
      case "addRow":
      case "shareKey": {
        const elsewhere = [...this.files].filter(([p]) => p !== path)
          .flatMap(([, s]) => s.rows.map((r) => r[0]!));
        const pool = (kind === "shareKey" && elsewhere.length > 0 ? elsewhere : KEYS)
          .filter((k) => !rows.some((r) => r[0] === k));
        if (pool.length === 0) return this.#edit("removeRow", path, spec);
        const key = rng.pick(pool);
        rows.splice(rng.int(rows.length + 1), 0, [
          key,
          ...spec.header.slice(1).map(() => this.#value()),
        ]);
        return this.#set(path, { ...spec, rows }, `${kind} ${JSON.stringify(key)} to`);
      }
      case "removeRow": {
        if (rows.length === 0) return this.#edit("addRow", path, spec);
        const [gone] = rows.splice(i, 1);
        return this.#set(path, { ...spec, rows }, `remove row ${JSON.stringify(gone![0])} from`);
      }
      case "changeKey": {
        const free = KEYS.filter((k) => !rows.some((r) => r[0] === k));
        if (rows.length === 0 || free.length === 0) return this.#edit("addRow", path, spec);
        const old = rows[i]![0];
        rows[i]![0] = rng.pick(free);
        return this.#set(
          path,
          { ...spec, rows },
          `change key ${JSON.stringify(old)} to ${JSON.stringify(rows[i]![0])} in`,
        );
      }
      default:
        throw new TypeError(`unknown operation ${kind}`);
    }
  }

  /** Puts an earlier version back at a path (a deleted file comes back as it was). */
  #revert(): Op {
    const rng = this.#rng;
    const [path, versions] = rng.pick(this.#revertable());
    const current = this.files.get(path);
    const earlier = versions.filter((v) =>
      current === undefined || renderCsv(v) !== renderCsv(current)
    );
    const version = earlier.length > 0 ? rng.pick(earlier) : versions[0]!;
    return this.#set(
      path,
      version,
      `revert (to version ${versions.indexOf(version) + 1} of ${versions.length})`,
    );
  }

  /** Paths with an earlier version to go back to (a deleted one only while there is room). */
  #revertable(): Array<[string, CsvSpec[]]> {
    return [...this.#history].filter(([p, h]) =>
      this.files.has(p) ? h.length > 1 : this.files.size < this.#maxFiles
    );
  }

  #set(path: string, spec: CsvSpec, what: string): Op {
    this.files.set(path, spec);
    this.#remember(path, spec);
    const text = renderCsv(spec);
    const atomic = this.#rng.chance(this.#atomicWrites);
    return {
      describe: `${what} ${path}${spec.broken ? " (broken)" : ""}: ${JSON.stringify(text)}`,
      actions: [{ kind: "write", path, text, ...(atomic ? { atomic } : {}) }],
    };
  }

  #remember(path: string, spec: CsvSpec): void {
    const versions = this.#history.get(path) ?? [];
    if (versions.at(-1) !== spec) versions.push(spec);
    this.#history.set(path, versions);
  }

  #newSpec(): CsvSpec {
    const rng = this.#rng;
    const header = rng.chance(0.2) ? ["id", "v", "note"] : ["id", "v"];
    const keys = new Set<string>();
    const count = 1 + rng.int(6);
    while (keys.size < count) keys.add(rng.pick(KEYS));
    const rows = [...keys].map((k) => [k, ...header.slice(1).map(() => this.#value())]);
    return { header, rows, broken: null, style: this.#style() };
  }

  #style(): CsvStyle {
    const rng = this.#rng;
    return {
      crlf: rng.chance(0.2),
      bom: rng.chance(0.1),
      finalEol: rng.chance(0.85),
      quoteAll: rng.chance(0.15),
    };
  }

  #value(): string {
    return this.#rng.chance(0.15) ? this.#rng.pick(ODD_VALUES) : `v${this.#rng.int(1000)}`;
  }
}
