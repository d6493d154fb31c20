/**
 * The files statecast writes itself while a state store is open: the store's database and the
 * files SQLite keeps beside it. They are never a source's items, even when the store lives inside
 * the source folder (`DATA_DIR=.` with `STATECAST_STATE=file:state.db`): every round writes the
 * store, and a folder walked without an `include` read it as a file that changed after every
 * round, so `--live` ran round after round (71 in 4 s).
 *
 * @module
 */
import { basename } from "node:path";

/** Absolute path → how many open stores claim it. */
const claimed = new Map<string, number>();
/** The file names of `claimed`: a cheap first test before a path is resolved. */
const names = new Map<string, number>();

/** The files SQLite keeps for the database at `path`: itself, its WAL, shared memory, journal. */
export function databaseFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`, `${path}-journal`];
}

function count(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n === 0) map.delete(key);
  else map.set(key, n);
}

/** Claims the absolute `paths` as statecast's own until the returned function is called. */
export function claimOwnFiles(paths: readonly string[]): () => void {
  for (const path of paths) {
    count(claimed, path, 1);
    count(names, basename(path), 1);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const path of paths) {
      count(claimed, path, -1);
      count(names, basename(path), -1);
    }
  };
}

/** Whether the file `name` (a base name) might be claimed: `isOwnFile` only then. */
export function mayBeOwnFile(name: string): boolean {
  return names.has(name);
}

/** Whether the absolute `path` is one of statecast's own files. */
export function isOwnFile(path: string): boolean {
  return claimed.has(path);
}
