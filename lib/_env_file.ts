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

/** Parses `.env` text into name/value pairs (a later line wins over an earlier one). */
export function parseEnvFile(text: string): Map<string, string> {
  return new Map(Object.entries(dotenv.parse(text)));
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
