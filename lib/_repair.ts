/**
 * Repairing a job (private to the app): `--rerun GLOB`, which sends the matching files' current
 * rows again, and `drop`, which retracts every key the app published and forgets its state. The
 * engine does the work (`RoundOptions.resend`, and a round in which every file is gone); this
 * file holds what the command line needs around it: the globs, the confirmation, the counts.
 *
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import picomatch from "picomatch";
import type { PlannedChange } from "./round.ts";

/**
 * The globs of `--rerun` values: each value may hold several, separated by commas outside braces
 * (`a.csv,b/*.csv` is two globs, `{a,b}.csv` one). A leading `./` is dropped: globs are relative
 * to the source root.
 *
 * @example
 * ```ts
 * import { rerunGlobs } from "./_repair.ts";
 * const globs = rerunGlobs(["a.csv,./orders/*.csv", "{x,y}.csv"]);
 * if (globs.join(" ") !== "a.csv orders/*.csv {x,y}.csv") throw new Error(globs.join(" "));
 * ```
 */
export function rerunGlobs(values: readonly string[]): string[] {
  const globs: string[] = [];
  for (const value of values) {
    let depth = 0, start = 0;
    for (let i = 0; i <= value.length; i++) {
      const c = value[i];
      if (c === "{") depth++;
      else if (c === "}" && depth > 0) depth--;
      else if (i === value.length || (c === "," && depth === 0)) {
        const glob = value.slice(start, i).trim().replace(/^(\.\/)+/, "");
        if (glob !== "") globs.push(glob);
        start = i + 1;
      }
    }
  }
  return globs;
}

/**
 * Matches `globs` against the relative paths of the files found, as the source's include
 * patterns are matched (picomatch, dot files only when named). Returns the matcher, or the globs
 * that match no file.
 *
 * @example
 * ```ts
 * import { rerunMatcher } from "./_repair.ts";
 * const found = rerunMatcher(["orders/*.csv"], ["orders/a.csv", "b.csv"]);
 * if (!("matches" in found) || !found.matches("orders/a.csv") || found.matches("b.csv")) {
 *   throw new Error();
 * }
 * const none = rerunMatcher(["x/*.csv"], ["b.csv"]);
 * if (!("unmatched" in none) || none.unmatched[0] !== "x/*.csv") throw new Error();
 * ```
 */
export function rerunMatcher(
  globs: readonly string[],
  paths: readonly string[],
): { matches: (path: string) => boolean } | { unmatched: string[] } {
  const each = globs.map((glob) => ({ glob, test: picomatch(glob, { dot: false }) }));
  const unmatched = each.filter(({ test }) => !paths.some((p) => test(p))).map((g) => g.glob);
  if (unmatched.length > 0) return { unmatched };
  return { matches: (path) => each.some(({ test }) => test(path)) };
}

/**
 * Of the `unmatched` globs, those that name a folder holding some of `paths` (`orders`, or
 * `orders/`): a glob matches files only, so the hint is `orders/**`.
 *
 * @example
 * ```ts
 * import { folderGlobs } from "./_repair.ts";
 * const folders = folderGlobs(["orders", "sub/", "x"], ["orders/a.csv", "sub/b/c.csv"]);
 * if (folders.join(" ") !== "orders sub/") throw new Error(folders.join(" "));
 * ```
 */
export function folderGlobs(unmatched: readonly string[], paths: readonly string[]): string[] {
  return unmatched.filter((glob) => {
    const folder = glob.replace(/\/+$/, "") + "/";
    return folder !== "/" && paths.some((p) => p.startsWith(folder));
  });
}

/** Deletes per target, from a round's planned changes, in target order. */
export function deletesPerTarget(changes: readonly PlannedChange[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { target, kind } of changes) {
    if (kind === "delete") counts.set(target, (counts.get(target) ?? 0) + 1);
  }
  return new Map([...counts].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

/** Whether stdin is a terminal someone can type a confirmation on. */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/**
 * Asks on the terminal (the question on stderr) and resolves to the line typed, trimmed; "" when
 * stdin ends first.
 */
export function askLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  return new Promise((resolve) => {
    let answered = false;
    rl.on("close", () => {
      if (!answered) resolve("");
    });
    rl.question(question, (answer) => {
      answered = true;
      rl.close();
      resolve(answer.trim());
    });
  });
}
