/**
 * CSV as RFC 4180 has it: quoted fields, doubled quotes, commas and line breaks inside quotes,
 * LF or CRLF line ends, an optional final line end; a UTF-8 BOM is stripped. The header row
 * names the fields. Every record knows the line it starts on, so an error names the file and the
 * line. (Why a parser of our own rather than an npm one: README, "Dependencies".)
 *
 * Blank lines are skipped (as Go's encoding/csv and @std/csv do; `""` is an empty field, not a
 * blank line). Strict where guessing could lose data: an unterminated quoted field, a `"` inside
 * an unquoted field, text after a closing quote, and a record whose field count differs from the
 * header are errors naming the line. A lone CR ends a line, as in old Mac files.
 *
 * @module
 */
import { setSourceLine } from "./engine.ts";
import { StatecastError } from "./errors.ts";

/** One parsed record and the 1-based line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/** Options of {@linkcode parseCsvRecords}. */
export interface CsvOptions {
  /** The field separator, one character. @default "," */
  separator?: string;
}

const QUOTE = 0x22, CR = 0x0d, LF = 0x0a;

/**
 * The records of CSV text, lazily. Throws `SyntaxError` ("line N: ...") on malformed input.
 *
 * @example
 * ```ts
 * import { parseCsvRecords } from "./csv.ts";
 * const records = [...parseCsvRecords('a,b\r\n"x, ""y""",2\n')];
 * if (records[1]!.fields[0] !== 'x, "y"' || records[1]!.line !== 2) throw new Error();
 * ```
 */
export function* parseCsvRecords(text: string, options: CsvOptions = {}): Generator<CsvRecord> {
  const separator = options.separator ?? ",";
  if (separator.length !== 1 || separator === '"' || separator === "\n" || separator === "\r") {
    throw new RangeError(`CSV separator must be one character other than quote and line breaks`);
  }
  const SEP = separator.charCodeAt(0);
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (i < n) {
    const recordLine = line;
    const recordStart = i;
    const fields: string[] = [];
    for (;;) {
      let c = text.charCodeAt(i);
      if (c === QUOTE) {
        const fieldLine = line;
        let value = "";
        i++;
        for (;;) {
          const close = text.indexOf('"', i);
          if (close < 0) {
            throw new SyntaxError(
              `line ${fieldLine}: quoted field is never closed (missing '"' before the end of the file)`,
            );
          }
          for (let k = text.indexOf("\n", i); k >= 0 && k < close; k = text.indexOf("\n", k + 1)) {
            line++;
          }
          value += text.slice(i, close);
          if (text.charCodeAt(close + 1) === QUOTE) {
            value += '"';
            i = close + 2;
          } else {
            i = close + 1;
            break;
          }
        }
        fields.push(value);
        c = text.charCodeAt(i);
        if (i < n && c !== SEP && c !== CR && c !== LF) {
          throw new SyntaxError(
            `line ${line}: unexpected ${JSON.stringify(text[i])} after a closing quote ` +
              `(a quote inside a quoted field is written "")`,
          );
        }
      } else {
        const start = i;
        while (i < n) {
          c = text.charCodeAt(i);
          if (c === SEP || c === LF || c === CR) break;
          if (c === QUOTE) {
            throw new SyntaxError(
              `line ${line}: '"' inside an unquoted field (RFC 4180: quote the whole field ` +
                `and double each quote inside it, as in "5"" disk")`,
            );
          }
          i++;
        }
        fields.push(text.slice(start, i));
      }
      // i is at a separator, a line end, or the end of the text.
      if (i >= n) break;
      c = text.charCodeAt(i);
      if (c === SEP) {
        i++;
        if (i >= n) {
          fields.push("");
          break;
        }
        continue;
      }
      if (c === CR) i++;
      if (text.charCodeAt(i) === LF) i++;
      line++;
      break;
    }
    if (fields.length === 1 && fields[0] === "" && text.charCodeAt(recordStart) !== QUOTE) {
      continue; // a blank line
    }
    yield { fields, line: recordLine };
  }
}

/** Options of {@linkcode parseCsvRows}. */
export interface CsvRowsOptions extends CsvOptions {}

/**
 * The rows of a CSV file as objects keyed by the header row, in header order. Errors are
 * `StatecastError`s that name `path` and the line. While a component runs, each row tells the
 * engine its line, so a duplicate key is reported with both lines.
 *
 * @example
 * ```ts
 * import { parseCsvRows } from "./csv.ts";
 * const rows = [...parseCsvRows("sku,name\nA1,Desk\n", "p.csv")];
 * if (rows[0]!.sku !== "A1" || rows[0]!.name !== "Desk") throw new Error();
 * ```
 */
export function* parseCsvRows(
  text: string,
  path: string,
  options: CsvRowsOptions = {},
): Generator<Record<string, string>> {
  let header: string[] | undefined;
  let lastLine = 1;
  try {
    for (const { fields, line } of parseCsvRecords(text, options)) {
      lastLine = line;
      if (header === undefined) {
        const seen = new Set<string>();
        for (const name of fields) {
          if (seen.has(name)) {
            throw new SyntaxError(`line ${line}: the header names the field "${name}" twice`);
          }
          seen.add(name);
        }
        header = fields;
        continue;
      }
      if (fields.length !== header.length) {
        throw new SyntaxError(
          `line ${line}: expected ${header.length} fields (as in the header), got ${fields.length}`,
        );
      }
      const row: Record<string, string> = {};
      for (let k = 0; k < header.length; k++) row[header[k]!] = fields[k]!;
      setSourceLine(line);
      yield row;
    }
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    const m = /^line (\d+): /.exec(error.message);
    const line = m ? Number(m[1]) : lastLine;
    throw new StatecastError(
      `Cannot parse "${path}" line ${line}: ${
        m ? error.message.slice(m[0].length) : error.message
      }`,
      { cause: error, path, line },
    );
  }
}
