/**
 * Randomized round-trip test of lib/csv.ts (statecast's parser).
 *
 *   deno run --allow-read --allow-env bench/csv_parsers/fuzz.ts [iterations]
 *   bun bench/csv_parsers/fuzz.ts [iterations]
 *
 * 1. Valid CSV: random records are serialized the RFC 4180 way (quote a field
 *    iff it contains `,` `"` CR LF or is empty-and-alone-on-its-line; double
 *    inner quotes), with random LF/CRLF line ends, optional BOM, optional final
 *    line break and blank lines. The parser must return exactly the records
 *    and their start lines; csv-parse/sync must agree on the records.
 * 2. Corrupted CSV: random bytes are overwritten; the parser must either
 *    return records or throw CsvSyntaxError, never anything else.
 */
import process from "node:process";
import { parse as csvParseSync } from "csv-parse/sync";
import { parseCsvRecords as parseCsv } from "../../lib/csv.ts";
const CsvSyntaxError = SyntaxError;

let seed = 12345;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const ALPHABET = [
  "a",
  "b",
  "Z",
  "1",
  " ",
  ",",
  '"',
  "\n",
  "\r\n",
  "\r",
  "é",
  "\u{1F389}",
  "\t",
] as const;

function field(): string {
  const n = Math.floor(rand() * 5);
  let s = "";
  for (let k = 0; k < n; k++) s += pick(ALPHABET);
  return s;
}

function serialize(f: string, alone: boolean): string {
  return /[",\r\n]/.test(f) || (alone && f === "") ? `"${f.replaceAll('"', '""')}"` : f;
}

const iterations = Number(process.argv[2] ?? 20000);
let records = 0;
for (let it = 0; it < iterations; it++) {
  const cols = 1 + Math.floor(rand() * 4);
  const nrec = 1 + Math.floor(rand() * 6);
  const eol = rand() < 0.5 ? "\n" : "\r\n";
  const rows: string[][] = [];
  const lines: number[] = [];
  let text = rand() < 0.2 ? "\uFEFF" : "";
  let line = 1;
  for (let r = 0; r < nrec; r++) {
    while (rand() < 0.1) { // blank lines are skipped but counted
      text += eol;
      line++;
    }
    const row = Array.from({ length: cols }, field);
    rows.push(row);
    lines.push(line);
    const rec = row.map((f) => serialize(f, cols === 1)).join(",");
    text += rec;
    // Line ends inside quoted fields count as the parser counts them: LF, CRLF, and a lone CR
    // (an old Mac file's, inside quotes as outside).
    line += rec.split(/\r\n|\r|\n/).length - 1;
    if (r < nrec - 1 || rand() < 0.5) {
      text += eol;
      line++;
    }
  }

  const got = [...parseCsv(text)];
  const want = JSON.stringify({ rows, lines });
  const have = JSON.stringify({ rows: got.map((g) => g.fields), lines: got.map((g) => g.line) });
  if (have !== want) {
    throw new Error(`mismatch for ${JSON.stringify(text)}\n got ${have}\nwant ${want}`);
  }
  const theirs = csvParseSync(text, {
    bom: true,
    skip_empty_lines: true,
    relax_column_count: true,
  });
  if (JSON.stringify(theirs) !== JSON.stringify(rows)) {
    throw new Error(`csv-parse disagrees on ${JSON.stringify(text)}: ${JSON.stringify(theirs)}`);
  }
  records += rows.length;

  // corrupt a few characters: only CsvSyntaxError (or success) is acceptable
  const chars = [...text];
  for (let k = 0; k < 2; k++) {
    chars[Math.floor(rand() * chars.length)] = pick(['"', ",", "\r", "\n", "x"]);
  }
  try {
    for (const _ of parseCsv(chars.join(""))) { /* drain */ }
  } catch (e) {
    if (!(e instanceof CsvSyntaxError) || !/^line \d+: /.test(e.message)) throw e;
  }
}
console.log(
  `ok: ${iterations} random files, ${records} records round-tripped (rows + start lines), csv-parse agrees`,
);
