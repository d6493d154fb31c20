/**
 * `.env` files: `NAME=value` lines, `#` comments, optional `export `, single or double quotes
 * (double quotes understand \n). A variable that is already set is never overridden.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";

/** Parses `.env` text into name/value pairs. */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (m === null) continue;
    let value = m[2]!;
    const quoted = /^"((?:[^"\\]|\\.)*)"(?:\s+#.*)?$/.exec(value) ??
      /^'([^']*)'(?:\s+#.*)?$/.exec(value);
    if (quoted !== null) {
      value = value.startsWith('"')
        ? quoted[1]!.replaceAll("\\n", "\n").replaceAll('\\"', '"')
        : quoted[1]!;
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out.set(m[1]!, value);
  }
  return out;
}

/**
 * Loads `path` into the environment without overriding set variables. A missing file is fine
 * when `optional`; returns the names that were set.
 */
export function loadEnvFile(path: string, optional: boolean): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new TypeError(`Cannot read the env file "${path}": ${(error as Error).message}`);
  }
  const set: string[] = [];
  for (const [name, value] of parseEnvFile(text)) {
    if (process.env[name] === undefined) {
      process.env[name] = value;
      set.push(name);
    }
  }
  return set;
}
