/**
 * Uniform adapters around each CSV parser candidate, shared by
 * correctness.ts and speed.ts.
 *
 * Every adapter returns ALL records (header included) as string[][], plus the
 * 1-based start line of each record when the parser can tell it. Errors are
 * surfaced by throwing, even for parsers that report them in a result object
 * (PapaParse), because that is how statecast would have to use them.
 *
 * Options are the ones statecast would pick (noted per adapter), not
 * necessarily the library defaults.
 */
import { inferSchema, initParser } from "udsv";
import Papa from "papaparse";
import { parse as csvParseSync } from "csv-parse/sync";
import { parse as csvParseStream } from "csv-parse";
import { parseCsvRecords as parseCsv } from "../../lib/csv.ts";

export interface Parsed {
  rows: string[][];
  /** start line of each record, if the parser exposes it */
  lines?: number[];
}

export interface Adapter {
  name: string;
  /** one-line description of how it is called */
  how: string;
  /** can the parser take input incrementally (chunks)? */
  streaming: boolean;
  /** can it tell the source line of each record? "start" | "end" | "no" */
  lineNumbers: "start" | "end" | "no";
  parse(input: string): Promise<Parsed>;
}

/** Thrown when a streaming parser's output depends on chunk boundaries. */
export class ChunkDependenceError extends Error {}

/** Chunk sizes used to exercise streaming adapters (1 char = worst case). */
export const CHUNK_SIZES = [1, 7, 65536];

/** Splits a string into pieces of ~`size` UTF-16 units, never inside a
 *  surrogate pair (TextDecoderStream never produces half a code point). */
function chunks(input: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < input.length;) {
    let j = Math.min(i + size, input.length);
    const last = input.charCodeAt(j - 1);
    if (last >= 0xd800 && last <= 0xdbff && j < input.length) j += 1; // keep the pair together
    out.push(input.slice(i, j));
    i = j;
  }
  return out;
}

/**
 * Runs a chunked parse once per chunk size and insists the results agree;
 * a parser whose output depends on where chunks split is not usable.
 */
async function acrossChunkSizes(
  input: string,
  run: (pieces: string[]) => Promise<Parsed>,
): Promise<Parsed> {
  let first: { size: number; json: string; parsed: Parsed } | undefined;
  const errors: string[] = [];
  for (const size of CHUNK_SIZES) {
    let parsed: Parsed;
    try {
      parsed = await run(chunks(input, size));
    } catch (e) {
      errors.push(`chunk ${size}: ${(e as Error).message}`);
      continue;
    }
    const json = JSON.stringify(parsed);
    if (!first) first = { size, json, parsed };
    else if (json !== first.json) {
      throw new ChunkDependenceError(
        `result depends on chunk size: ${first.size} -> ${JSON.stringify(first.parsed.rows)}, ` +
          `${size} -> ${JSON.stringify(parsed.rows)}`,
      );
    }
  }
  if (errors.length && first) {
    throw new Error(`error only for some chunk sizes: ${errors.join("; ")}`);
  }
  if (errors.length) throw new Error(errors[0]);
  return first!.parsed;
}

// ---------------------------------------------------------------- uDSV ----

/** uDSV needs a schema; inferSchema() detects the row delimiter from line 1.
 *  `header: () => []` keeps the header as a data row like the others. */
function udsvParser(sample: string) {
  return initParser(inferSchema(sample, { col: ",", encl: '"', header: () => [] }));
}

export const udsv: Adapter = {
  name: "uDSV",
  how: "initParser(inferSchema(s,{col:',',encl:'\"',header:()=>[]})).stringArrs(s)",
  streaming: true,
  lineNumbers: "no",
  parse(input) {
    return Promise.resolve({ rows: udsvParser(input).stringArrs(input) as string[][] });
  },
};

export const udsvChunked: Adapter = {
  name: "uDSV chunk()",
  how:
    "parser.chunk(piece, parser.stringArrs) ... parser.end() (schema inferred from the full text, i.e. generously)",
  streaming: true,
  lineNumbers: "no",
  parse(input) {
    return acrossChunkSizes(input, (pieces) => {
      const p = udsvParser(input);
      for (const piece of pieces) p.chunk<string[]>(piece, p.stringArrs<string[]>);
      return Promise.resolve({ rows: p.end<string[]>() });
    });
  },
};

// ----------------------------------------------------------- PapaParse ----

const papaConfig = { delimiter: ",", quoteChar: '"', skipEmptyLines: true as const };

export const papa: Adapter = {
  name: "PapaParse",
  how: "Papa.parse(s,{delimiter:',',skipEmptyLines:true}); throw if result.errors",
  streaming: true,
  lineNumbers: "no",
  parse(input) {
    const r = Papa.parse<string[]>(input, papaConfig);
    if (r.errors.length) {
      throw new Error(
        r.errors.map((e) => `${e.code} (record index ${e.row}): ${e.message}`).join("; "),
      );
    }
    return Promise.resolve({ rows: r.data });
  },
};

export const papaStream: Adapter = {
  name: "PapaParse stream",
  how: "Papa.parse(Papa.NODE_STREAM_INPUT, cfg) duplex; write chunks, read rows",
  streaming: true,
  lineNumbers: "no",
  parse(input) {
    return acrossChunkSizes(input, (pieces) =>
      new Promise<Parsed>((resolve, reject) => {
        const rows: string[][] = [];
        const stream = Papa.parse(Papa.NODE_STREAM_INPUT, papaConfig);
        stream.on("data", (row: string[]) => rows.push(row));
        stream.on("error", reject);
        stream.on("end", () => resolve({ rows }));
        for (const piece of pieces) stream.write(piece);
        stream.end();
      }));
  },
};

// ----------------------------------------------------------- csv-parse ----

/** bom:true is NOT the default (default keeps the BOM in the first header).
 *  relax_column_count stays false (default): a short/long record throws
 *  "Invalid Record Length ... on line N". info:true exposes info.lines. */
const csvParseOptions = { bom: true, skip_empty_lines: true, info: true } as const;

type InfoRecord = { record: string[]; info: { lines: number } };

export const csvParseSyncAdapter: Adapter = {
  name: "csv-parse/sync",
  how: "parse(s,{bom:true,skip_empty_lines:true,info:true})",
  streaming: false,
  lineNumbers: "end",
  parse(input) {
    const recs = csvParseSync(input, csvParseOptions) as unknown as InfoRecord[];
    return Promise.resolve({
      rows: recs.map((r) => r.record),
      lines: recs.map((r) => r.info.lines),
    });
  },
};

export const csvParseStreamAdapter: Adapter = {
  name: "csv-parse stream",
  how: "parse({...same}) Transform; write chunks, read records",
  streaming: true,
  lineNumbers: "end",
  parse(input) {
    return acrossChunkSizes(input, (pieces) =>
      new Promise<Parsed>((resolve, reject) => {
        const rows: string[][] = [];
        const lines: number[] = [];
        const parser = csvParseStream(csvParseOptions);
        parser.on("readable", () => {
          let r: InfoRecord | null;
          while ((r = parser.read()) !== null) {
            rows.push(r.record);
            lines.push(r.info.lines);
          }
        });
        parser.on("error", reject);
        parser.on("end", () => resolve({ rows, lines }));
        for (const piece of pieces) parser.write(piece);
        parser.end();
      }));
  },
};

// --------------------------------------------------------- statecast ----

export const statecast: Adapter = {
  name: "statecast (lib/csv.ts)",
  how: "for (const {fields, line} of parseCsv(s))",
  streaming: false,
  lineNumbers: "start",
  parse(input) {
    const rows: string[][] = [];
    const lines: number[] = [];
    for (const { fields, line } of parseCsv(input)) {
      rows.push(fields);
      lines.push(line);
    }
    return Promise.resolve({ rows, lines });
  },
};

export const ALL: Adapter[] = [
  udsv,
  udsvChunked,
  papa,
  papaStream,
  csvParseSyncAdapter,
  csvParseStreamAdapter,
  statecast,
];
