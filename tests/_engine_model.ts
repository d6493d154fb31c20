// What the in-process engine models (engine_model_test.ts, engine_crash_model_test.ts) share:
// seeded randomness, files in memory of `key=value` lines, their parser, the component that
// declares them, and the file operations between rounds.
import { type ComponentFn, type SourceItem } from "../lib/engine.ts";
import { fingerprint } from "../lib/fingerprint.ts";

export const KEYS = ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"];
export const PATHS = ["a", "b", "c", "d/e", "d/f", "g"];

/** A deterministic generator (xorshift32), so a failing sequence can be replayed by its seed. */
export function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

export interface Row {
  key: string;
  value: string;
}

/** A file in memory: `key=value` lines; a line `!` makes it unreadable. */
export class MemoryItem implements SourceItem {
  readonly size: number;
  constructor(readonly path: string, readonly text: string, readonly mtimeMs: number) {
    this.size = text.length;
  }
  bytes(): Promise<Uint8Array> {
    return Promise.resolve(new TextEncoder().encode(this.text));
  }
}

/** The rows of a file, or undefined when it is broken (a `!` line, a key twice). */
export function parse(text: string): Map<string, string> | undefined {
  const rows = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line === "!") return undefined;
    const [key, value] = line.split("=");
    if (rows.has(key!)) return undefined;
    rows.set(key!, value!);
  }
  return rows;
}

/** The component: each line of a file is a row handed to `declareRow`; `!` fails the file. */
export function componentFn(declareRow: (row: Row) => void): ComponentFn<MemoryItem> {
  return {
    memo: true,
    logicFingerprint: fingerprint("model"),
    onDuplicateKey: "error",
    run: (item) => {
      if (item.text.split("\n").includes("!")) throw new Error(`"${item.path}" is broken`);
      for (const line of item.text.split("\n")) {
        if (line === "") continue;
        const [key, value] = line.split("=");
        declareRow({ key: key!, value: `${value}` });
      }
      return Promise.resolve();
    },
  };
}

/** The folder of one sequence: its files, its generator, and the log a failure prints. */
export interface ModelFiles {
  files: Map<string, string>;
  rnd: () => number;
  log: string[];
}

/** Where a draw in [0, 1) stops picking each file operation (each bound above the one before). */
export interface FileOpBounds {
  write: number;
  delete: number;
  rename: number;
  edit: number;
  break: number;
}

/**
 * Applies the file operation that the draw `r` picks: a new or rewritten file, a deletion, a
 * rename, an edited or removed row, a broken file. False when `r` is at or past `bounds.break`
 * (the caller's own operations), with nothing done.
 */
export function fileOperation(model: ModelFiles, r: number, bounds: FileOpBounds): boolean {
  const { files, rnd, log } = model;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const existing = [...files.keys()];
  if (r < bounds.write || existing.length === 0) {
    const path = pick(PATHS);
    const rows = KEYS.filter(() => rnd() < 0.3).map((k) => `${k}=${Math.floor(rnd() * 3)}`);
    files.set(path, rows.join("\n") + "\n");
    log.push(`write ${path}: ${JSON.stringify(files.get(path))}`);
  } else if (r < bounds.delete) {
    const path = pick(existing);
    files.delete(path);
    log.push(`delete ${path}`);
  } else if (r < bounds.rename) {
    const from = pick(existing), to = pick(PATHS);
    const text = files.get(from)!;
    files.delete(from);
    files.set(to, text);
    log.push(`rename ${from} -> ${to}`);
  } else if (r < bounds.edit) {
    const path = pick(existing);
    const rows = parse(files.get(path)!) ?? new Map<string, string>();
    const key = pick(KEYS);
    if (rnd() < 0.3 && rows.has(key)) rows.delete(key);
    else rows.set(key, String(Math.floor(rnd() * 3)));
    files.set(path, [...rows].map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
    log.push(`edit ${path}: ${JSON.stringify(files.get(path))}`);
  } else if (r < bounds.break) {
    const path = pick(existing);
    files.set(path, files.get(path)! + "!\n");
    log.push(`break ${path}`);
  } else return false;
  return true;
}
