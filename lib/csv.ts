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
import { setSourceLine, warnSource } from "./target.ts";
import { StatecastError } from "./errors.ts";

/**
 * One parsed record and the 1-based line it starts on, as {@linkcode parseCsvRecords} yields it.
 *
 * @example
 * ```ts
 * import { type CsvRecord, parseCsvRecords } from "./mod.ts";
 * const [header, first]: CsvRecord[] = [...parseCsvRecords('id,note\n1,"two\nlines"\n')];
 * if (header!.line !== 1 || first!.line !== 2 || first!.fields[1] !== "two\nlines") {
 *   throw new Error();
 * }
 * ```
 */
export interface CsvRecord {
  /** The record's fields, unquoted. */
  fields: string[];
  /** The 1-based line the record starts on. */
  line: number;
}

/**
 * Options of {@linkcode parseCsvRecords}: the CSV dialect.
 *
 * @example
 * ```ts
 * import { type CsvOptions, parseCsvRecords } from "./mod.ts";
 * const pipes: CsvOptions = { delimiter: "|", quote: null }; // quotes are data
 * const [record] = [...parseCsvRecords('a|"b"\n', pipes)];
 * if (record!.fields.join(" ") !== 'a "b"') throw new Error();
 * ```
 */
export interface CsvOptions {
  /**
   * The field delimiter, one character: `","`, `";"`, `"|"`, `"\t"`... The word `"tab"` and
   * the two characters `\t` (as an environment variable holds them) also mean a tab.
   * @default ","
   */
  delimiter?: string;
  /** @deprecated The old name of {@linkcode CsvOptions.delimiter}. */
  separator?: string;
  /**
   * The quote character, or `null` for a file whose fields are never quoted (a quote is then
   * data like any other character).
   * @default '"'
   */
  quote?: string | null;
}

const CR = 0x0d, LF = 0x0a;

/**
 * The delimiter of `options`, checked: one character other than the quote and line breaks
 * (`"tab"` and `\t` spelled out mean a tab). A `RangeError` otherwise.
 *
 * @example
 * ```ts
 * import { csvDelimiter } from "./csv.ts";
 * if (csvDelimiter({ delimiter: "tab" }) !== "\t" || csvDelimiter({}) !== ",") throw new Error();
 * ```
 */
export function csvDelimiter(options: CsvOptions = {}): string {
  const given = options.delimiter ?? options.separator ?? ",";
  const delimiter = /^(tab|\\t)$/i.test(given) ? "\t" : given;
  const quote = options.quote === undefined ? '"' : options.quote;
  if (quote !== null && (quote.length !== 1 || quote === "\n" || quote === "\r")) {
    throw new RangeError(
      `The CSV quote must be one character other than a line break, or null, got ${
        JSON.stringify(quote)
      }`,
    );
  }
  if (delimiter.length !== 1 || delimiter === quote || delimiter === "\n" || delimiter === "\r") {
    throw new RangeError(
      `The CSV delimiter must be one character other than the quote and line breaks ` +
        `(",", ";", "|" or "tab"), got ${JSON.stringify(given)}`,
    );
  }
  return delimiter;
}

/**
 * The records of CSV `text`, the header row included, each with the line it starts on: the
 * lower level under {@linkcode parseCsvRows}, for files whose first record is not a header.
 * Records may have different numbers of fields. A malformed field is a `SyntaxError` whose
 * message starts with `line N:`.
 *
 * @example
 * ```ts
 * import { parseCsvRecords } from "./mod.ts";
 * const records = [...parseCsvRecords('# report\nid;name\n\n7;"Desk; oak"\n', { delimiter: ";" })];
 * const text = records.map((r) => `${r.line}:${r.fields.join("|")}`).join(" ");
 * if (text !== "1:# report 2:id|name 4:7|Desk; oak") throw new Error(text);
 * try {
 *   [...parseCsvRecords('a,"b\n')];
 *   throw new Error("unreachable");
 * } catch (error) {
 *   if (!(error instanceof SyntaxError) || !error.message.startsWith("line 1:")) throw error;
 * }
 * ```
 */
export function* parseCsvRecords(text: string, options: CsvOptions = {}): Generator<CsvRecord> {
  const SEP = csvDelimiter(options).charCodeAt(0);
  const q = options.quote === undefined ? '"' : options.quote;
  const QUOTE = q === null ? -1 : q.charCodeAt(0); // -1: never quoted
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  // A record's fields are gathered here, then copied out at their number: an array pushed from
  // empty reserves room for 17 (~150 bytes of garbage per row of 5 fields).
  const fields: string[] = [];
  while (i < n) {
    const recordLine = line;
    const recordStart = i;
    let k = 0;
    for (;;) {
      let c = text.charCodeAt(i);
      if (c === QUOTE) {
        const fieldLine = line;
        let value = "";
        i++;
        for (;;) {
          const close = text.indexOf(q!, i);
          if (close < 0) {
            throw new SyntaxError(
              `line ${fieldLine}: quoted field is never closed (missing '${q}' before the end of the file)`,
            );
          }
          for (let k = text.indexOf("\n", i); k >= 0 && k < close; k = text.indexOf("\n", k + 1)) {
            line++;
          }
          // A lone CR ends a line too (old Mac files), inside quotes as outside.
          for (let k = text.indexOf("\r", i); k >= 0 && k < close; k = text.indexOf("\r", k + 1)) {
            if (text.charCodeAt(k + 1) !== LF) line++;
          }
          value += text.slice(i, close);
          if (text.charCodeAt(close + 1) === QUOTE) {
            value += q;
            i = close + 2;
          } else {
            i = close + 1;
            break;
          }
        }
        fields[k++] = value;
        c = text.charCodeAt(i);
        if (i < n && c !== SEP && c !== CR && c !== LF) {
          throw new SyntaxError(
            `line ${line}: unexpected ${JSON.stringify(text[i])} after a closing quote ` +
              `(a quote inside a quoted field is written ${q}${q})`,
          );
        }
      } else {
        const start = i;
        while (i < n) {
          c = text.charCodeAt(i);
          if (c === SEP || c === LF || c === CR) break;
          if (c === QUOTE) {
            throw new SyntaxError(
              `line ${line}: '${q}' inside an unquoted field (RFC 4180: quote the whole field ` +
                `and double each quote inside it, as in ${q}5${q}${q} disk${q})`,
            );
          }
          i++;
        }
        fields[k++] = text.slice(start, i);
      }
      // i is at a separator, a line end, or the end of the text.
      if (i >= n) break;
      c = text.charCodeAt(i);
      if (c === SEP) {
        i++;
        if (i >= n) {
          fields[k++] = "";
          break;
        }
        continue;
      }
      if (c === CR) i++;
      if (text.charCodeAt(i) === LF) i++;
      line++;
      break;
    }
    if (k === 1 && fields[0] === "" && text.charCodeAt(recordStart) !== QUOTE) {
      continue; // a blank line
    }
    yield { fields: fields.slice(0, k), line: recordLine };
  }
}

/**
 * One data row of a CSV file: the header's field names, this row's values in the same order, and
 * the line the row starts on. Not a plain object on purpose: a JavaScript object puts
 * integer-like names (`2024`) before the others and treats `__proto__` specially, while a row
 * keeps the file's order and every name. The rows of one file share one `header` array.
 *
 * @example
 * ```ts
 * import { CsvRow } from "./csv.ts";
 * const row = new CsvRow(["id", "2024", "__proto__"], ["b1", "x", "p"], 2);
 * if (row.get("2024") !== "x" || row.get("__proto__") !== "p" || row.get("nope") !== undefined) {
 *   throw new Error();
 * }
 * if (row.toJsonText() !== '{"id":"b1","2024":"x","__proto__":"p"}') throw new Error();
 * ```
 */
export class CsvRow {
  /** The header's field names, in file order; shared by every row of the file. */
  readonly header: readonly string[];
  /** This row's values, in header order (`values[i]` is the field `header[i]`). */
  readonly values: readonly string[];
  /** The 1-based line of the file the row starts on. */
  readonly line: number;

  /**
   * A row of `values` under `header` (one value per name, names distinct), from `line`.
   * Throws `RangeError` otherwise.
   */
  constructor(header: readonly string[], values: readonly string[], line: number) {
    if (values.length !== header.length) {
      throw new RangeError(
        `A CSV row needs one value per header name: ${header.length} names, ${values.length} values`,
      );
    }
    headerIndex(header); // checks that the names are distinct, once per header
    this.header = header;
    this.values = values;
    this.line = line;
  }

  /**
   * The value of the field `name`, or undefined when the header has no such name. Any name
   * works, `"2024"`, `"__proto__"` and `"toString"` included.
   *
   * @example
   * ```ts
   * import { CsvRow } from "./csv.ts";
   * const row = new CsvRow(["sku", "constructor", "toString"], ["A", "c", "t"], 2);
   * if (row.get("constructor") !== "c" || row.get("toString") !== "t") throw new Error();
   * ```
   */
  get(name: string): string | undefined {
    const i = headerIndex(this.header).index.get(name);
    return i === undefined ? undefined : this.values[i];
  }

  /**
   * The row as the text of one JSON object, fields in header order, values as strings. For
   * names that a JavaScript object keeps in insertion order (not integer-like, not
   * `__proto__`) it is exactly `JSON.stringify` of the row as such an object, byte for byte.
   *
   * @example
   * ```ts
   * import { CsvRow } from "./csv.ts";
   * const row = new CsvRow(["sku", "name", "2023"], ["A1", 'Desk "XL"', "7"], 2);
   * if (row.toJsonText() !== '{"sku":"A1","name":"Desk \\"XL\\"","2023":"7"}') throw new Error();
   * const plain = new CsvRow(["sku", "name"], ["A1", "Desk"], 2);
   * if (plain.toJsonText() !== JSON.stringify({ sku: "A1", name: "Desk" })) throw new Error();
   * ```
   */
  toJsonText(): string {
    const found = headerIndex(this.header);
    const values = this.values;
    const object = found.object;
    if (object !== undefined) {
      // One native call, one flat string: no concatenation per field (see HeaderIndex.object).
      const names = this.header;
      for (let i = 0; i < names.length; i++) object[names[i]!] = values[i]!;
      const text = JSON.stringify(object);
      for (let i = 0; i < names.length; i++) object[names[i]!] = ""; // keeps no row alive
      return text;
    }
    const names = found.jsonNames;
    let text = "{";
    for (let i = 0; i < names.length; i++) {
      text += (i === 0 ? "" : ",") + names[i] + JSON.stringify(values[i]);
    }
    return text + "}";
  }

  /**
   * Refuses: a plain object cannot hold a row's order (see {@linkcode CsvRow}), so
   * `JSON.stringify(row)` would silently change it. Use {@linkcode CsvRow.toJsonText}.
   */
  toJSON(): never {
    throw new TypeError(
      "JSON.stringify() cannot keep a CSV row's column order: use row.toJsonText() " +
        "(the row as a JSON object in header order)",
    );
  }
}

/** What a header needs for lookups and JSON, computed once per header array. */
interface HeaderIndex {
  /** Name → position. */
  index: Map<string, number>;
  /** `"name":` as JSON text, per position. */
  jsonNames: string[];
  /**
   * An object whose own keys are the header's names in header order, reused by every row's
   * `toJsonText()` (values assigned, then `JSON.stringify`); undefined when an object would not
   * keep that order (integer-like names, `__proto__`), so the text is built field by field.
   */
  object: Record<string, string> | undefined;
}

const headerIndexes = new WeakMap<readonly string[], HeaderIndex>();
/** The last header looked up and its index: the rows of a file share one header array. */
let lastHeader: readonly string[] | undefined;
let lastIndex: HeaderIndex | undefined;

/** The index of `header`, cached; a name given twice is a `RangeError`. */
function headerIndex(header: readonly string[]): HeaderIndex {
  if (header === lastHeader) return lastIndex!;
  let found = headerIndexes.get(header);
  if (found === undefined) {
    const index = new Map<string, number>();
    for (let i = 0; i < header.length; i++) {
      const name = header[i]!;
      if (index.has(name)) throw new RangeError(`The header names the field "${name}" twice`);
      index.set(name, i);
    }
    const jsonNames = header.map((name) => `${JSON.stringify(name)}:`);
    found = { index, jsonNames, object: orderedObject(header) };
    headerIndexes.set(header, found);
  }
  lastHeader = header;
  lastIndex = found;
  return found;
}

/** An object with the names of `header` as own keys in header order, or undefined if none can. */
function orderedObject(header: readonly string[]): Record<string, string> | undefined {
  const object: Record<string, string> = {};
  for (const name of header) object[name] = "";
  const keys = Object.keys(object);
  if (keys.length !== header.length) return undefined; // `__proto__` is not an own key
  for (let i = 0; i < keys.length; i++) if (keys[i] !== header[i]) return undefined;
  return object;
}

/**
 * Options of {@linkcode parseCsvRows} and `FileItem.csvRows()`: the dialect, and the header.
 *
 * @example
 * ```ts
 * import { type CsvRowsOptions, parseCsvRows } from "./mod.ts";
 * const warnings: string[] = [];
 * const options: CsvRowsOptions = {
 *   delimiter: "tab", // or "\t"
 *   header: ["sku", "qty"], // the file has no header row: every record is data
 *   onWarning: (message) => warnings.push(message),
 * };
 * const [row] = [...parseCsvRows("A1\t3\n", "stock.tsv", options)];
 * if (row!.get("qty") !== "3" || row!.line !== 1 || warnings.length !== 0) throw new Error();
 * ```
 */
export interface CsvRowsOptions extends CsvOptions {
  /**
   * The field names, for a file that has no header row: every record is then a data row (the
   * first is line 1). Names must be distinct.
   * @default undefined (the first record is the header)
   */
  header?: readonly string[];
  /**
   * Called with a warning about the file, such as a header that looks delimited by another
   * character. @default inside a component, the warning goes to the round's summary (the app
   * logs it with the file's path); elsewhere it is dropped
   */
  onWarning?: (message: string) => void;
}

/** Delimiters a one-column header is checked against, with their names for messages. */
const LIKELY_DELIMITERS: ReadonlyArray<[string, string]> = [
  [";", '";"'],
  ["\t", "tab"],
  ["|", '"|"'],
  [",", '","'],
];

/**
 * When a header read with `delimiter` is one field that another delimiter would split into
 * several, a warning naming that delimiter; else undefined.
 *
 * @example
 * ```ts
 * import { delimiterWarning } from "./csv.ts";
 * if (!delimiterWarning(["id;name;qty"], ",")?.includes('delimited by ";"')) throw new Error();
 * if (delimiterWarning(["id", "name"], ",") !== undefined) throw new Error();
 * ```
 */
export function delimiterWarning(header: readonly string[], delimiter: string): string | undefined {
  if (header.length !== 1) return undefined;
  let best: [string, string] | undefined, most = 1;
  for (const candidate of LIKELY_DELIMITERS) {
    if (candidate[0] === delimiter) continue;
    const fields = header[0]!.split(candidate[0]).length;
    if (fields > most) [best, most] = [candidate, fields];
  }
  if (best === undefined) return undefined;
  const setting = best[0] === "\t" ? "tab" : best[0];
  const shown = delimiter === "\t" ? "tab" : JSON.stringify(delimiter);
  return `the header ${JSON.stringify(header[0])} is one column with the delimiter ${shown}, ` +
    `but looks delimited by ${best[1]} (${most} columns): set CSV_DELIMITER=${setting} ` +
    `(main.ts), or csvRows({ delimiter: ${JSON.stringify(best[0])} })`;
}

/**
 * The data rows of a CSV file under its header row (or `options.header`), as
 * {@linkcode CsvRow}s. Errors are `StatecastError`s that name `path` and the line (a header that
 * names a field twice is one). While a component runs, each row tells the engine its line, so a
 * duplicate key is reported with both lines. A header that is one column but looks delimited by
 * `;`, a tab, `|` or `,` gives a warning that names that delimiter.
 *
 * @example
 * ```ts
 * import { parseCsvRows } from "./csv.ts";
 * const rows = [...parseCsvRows("sku,name\nA1,Desk\n", "p.csv")];
 * if (rows[0]!.get("sku") !== "A1" || rows[0]!.values[1] !== "Desk" || rows[0]!.line !== 2) {
 *   throw new Error();
 * }
 * const semicolons = [...parseCsvRows("sku;name\nA1;Desk\n", "s.csv", { delimiter: ";" })];
 * if (semicolons[0]!.get("name") !== "Desk") throw new Error();
 * const headless = [...parseCsvRows("A1,Desk\n", "h.csv", { header: ["sku", "name"] })];
 * if (headless[0]!.get("sku") !== "A1" || headless[0]!.line !== 1) throw new Error();
 * ```
 */
export function* parseCsvRows(
  text: string,
  path: string,
  options: CsvRowsOptions = {},
): Generator<CsvRow> {
  const delimiter = csvDelimiter(options);
  let header: readonly string[] | undefined;
  if (options.header !== undefined) {
    header = Object.freeze([...options.header]);
    headerIndex(header); // distinct names, or a RangeError
  }
  let lastLine = 1;
  try {
    for (const { fields, line } of parseCsvRecords(text, options)) {
      lastLine = line;
      if (header === undefined) {
        header = readHeader(fields, line);
        const warning = delimiterWarning(header, delimiter);
        if (warning !== undefined) (options.onWarning ?? warnSource)(warning);
        continue;
      }
      if (fields.length !== header.length) {
        throw new SyntaxError(
          `line ${line}: expected ${header.length} fields (as in the header), got ${fields.length}`,
        );
      }
      setSourceLine(line);
      yield new CsvRow(header, fields, line);
    }
    if (options.header === undefined && /^\uFEFF?\s+$/.test(text)) throw noHeaderRow(text, path);
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

/**
 * The error for a text that is not empty but holds no header row: only a byte order mark and blank
 * lines or spaces (what a writer puts first, or an export of nothing). Read as a file without
 * rows, it would tombstone every key the file published; as an error, the file keeps them, as a
 * 0-byte file is held.
 */
function noHeaderRow(text: string, path: string): StatecastError {
  const what = text.charCodeAt(0) === 0xfeff ? "a byte order mark and blank lines" : "blank lines";
  return new StatecastError(
    `Cannot parse "${path}" line 1: the file has no header row, only ${what}; ` +
      "what it published stays until it has one",
    { path, line: 1 },
  );
}

/**
 * Why a header with several empty names is refused, saying which columns: a spreadsheet saved with
 * stray empty columns writes `id,name,,` on every line.
 */
function unnamedColumns(fields: readonly string[]): string {
  const columns = fields.flatMap((name, i) => name === "" ? [i + 1] : []);
  return `the header has ${columns.length} columns with no name (columns ${columns.join(", ")}), ` +
    "and names must be distinct: name them, or delete the empty columns";
}

/** A header row's names, frozen; a name given twice is a `SyntaxError` naming the line. */
function readHeader(fields: string[], line: number): readonly string[] {
  const seen = new Set<string>();
  for (const name of fields) {
    if (seen.has(name)) {
      if (name === "") throw new SyntaxError(`line ${line}: ${unnamedColumns(fields)}`);
      throw new SyntaxError(`line ${line}: the header names the field "${name}" twice`);
    }
    seen.add(name);
  }
  return Object.freeze(fields);
}
