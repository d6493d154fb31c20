/**
 * `.env` files, parsed by `dotenv` (npm): `NAME=value` lines, `#` comments, optional `export `,
 * single, double or back quotes, values over several lines inside quotes (a PEM certificate),
 * `\n` in double quotes. A variable that is already set is never overridden.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import dotenv from "dotenv";

/**
 * Parses `.env` text into name/value pairs (a later line wins over an earlier one). In an
 * unquoted value, only a `#` after a space or tab starts a comment, as in systemd's
 * EnvironmentFile, Docker Compose and sh (`PASSWORD=s3cr#t` is `s3cr#t`, not `s3cr`): the same
 * file gives the same password to `--env-file` and to a service.
 */
export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map(Object.entries(dotenv.parse(text)));
  for (const [name, value] of values) {
    const whole = unquotedWithHash(text, name);
    if (whole !== undefined && whole.startsWith(value) && whole.length > value.length) {
      values.set(name, whole);
    }
  }
  return values;
}

/**
 * The value of the last line that sets `name`, when it is unquoted and holds a `#` that does not
 * start a comment (none after a space), up to its comment; else undefined.
 */
function unquotedWithHash(text: string, name: string): string | undefined {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const line = new RegExp(`^[ \\t]*(?:export[ \\t]+)?${escaped}[ \\t]*=[ \\t]*([^\\r\\n]*)`, "gm");
  const raw = [...text.matchAll(line)].at(-1)?.[1];
  if (raw === undefined || /^['"`]/.test(raw)) return undefined;
  const value = raw.replace(/[ \t]#.*$/, "").trim();
  return value.includes("#") ? value : undefined;
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
