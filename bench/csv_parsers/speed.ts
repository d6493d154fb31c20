/**
 * Speed of the CSV parser candidates on 1,000,000 rows x 5 columns (~67 MB).
 *
 *   deno run --allow-read --allow-write=/tmp --allow-env --allow-run bench/csv_parsers/speed.ts
 *   bun bench/csv_parsers/speed.ts
 *
 * Options (after the script name): --rows N (default 1000000), --runs N
 * (default 3), --only name1,name2, --timeout S (per parser, default 300).
 *
 * Two modes per parser (see `Contender`): "collect" (whole string[][]) and
 * "iterate" (per-record callback, nothing retained).
 *
 * The data file is generated once into /tmp/statecast-bench-<rows>.csv
 * (deterministic PRNG; LF line ends; ~25% of one column quoted with a comma,
 * ~5% with doubled quotes, 0.1% with a line break inside quotes).
 *
 * Each parser runs in its own child process (same runtime) so that one
 * parser's garbage does not bill the next. The child reads the file into a
 * string (not timed), then times `runs` full parses of that string and
 * checks the record count and a checksum against the generator's. Streaming variants are fed the same string in 64 KiB slices,
 * so I/O and UTF-8 decoding are excluded for everybody.
 * Reported: median and min of the runs, in ms.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { inferSchema, initParser } from "udsv";
import Papa from "papaparse";
import { parse as csvParseSync } from "csv-parse/sync";
import { parse as csvParseStream } from "csv-parse";
import { parseCsvRecords as parseCsv } from "../../lib/csv.ts";

const isDeno = "Deno" in globalThis;
const runtime = isDeno
  ? `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`;

// ------------------------------------------------------------ data file ----

interface Meta {
  rows: number; // records including header
  checksum: number; // sum of all field lengths
  bytes: number;
}

function generate(rows: number, path: string): Meta {
  let seed = 0x2545f491;
  const rand = () => { // xorshift32, deterministic
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const words = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
  ];
  const parts: string[] = ["id,name,company,amount,updated_at\n"];
  let checksum = "idnamecompanyamountupdated_at".length;
  for (let i = 1; i < rows; i++) {
    const w = words[Math.floor(rand() * words.length)];
    const r = rand();
    // company: the field value, and how it is written in CSV
    let company: string, cell: string;
    if (r < 0.70) company = cell = `${w} ${i % 1000}`;
    else if (r < 0.95) {
      company = `${w}, Inc. ${i % 100}`;
      cell = `"${company}"`;
    } else if (r < 0.999) {
      company = `The "${w}" Co`;
      cell = `"The ""${w}"" Co"`;
    } else {
      company = `${w}\nLtd`;
      cell = `"${company}"`;
    }
    const id = String(i);
    const name = `member_${(i * 7919) % 1000003}`;
    const amount = (rand() * 100000).toFixed(2);
    const ts = new Date(1_700_000_000_000 + Math.floor(rand() * 3e10)).toISOString(); // 24 chars
    parts.push(`${id},${name},${cell},${amount},${ts}\n`);
    checksum += id.length + name.length + company.length + amount.length + ts.length;
  }
  const text = parts.join("");
  writeFileSync(path, text);
  const meta = { rows, checksum, bytes: Buffer.byteLength(text) };
  writeFileSync(path + ".meta.json", JSON.stringify(meta));
  return meta;
}

// -------------------------------------------------------------- parsers ----

const CHUNK = 64 * 1024;
function* slices(s: string): Generator<string> {
  for (let i = 0; i < s.length; i += CHUNK) yield s.slice(i, i + CHUNK); // data is ASCII: no split pairs
}

type OnRow = (fields: string[]) => void;

/**
 * Two ways to consume each parser:
 *   collect - its natural "give me everything" API, result is string[][];
 *   iterate - its per-record API (callback / stream / iterator); rows are
 *             handed to `onRow` and not retained, like statecast would do
 *             when it hashes rows or writes them to a state store.
 */
interface Contender {
  collect: (text: string) => string[][] | Promise<string[][]>;
  iterate: (text: string, onRow: OnRow) => void | Promise<void>;
}

const udsvFor = (sample: string) =>
  initParser(inferSchema(sample, { col: ",", encl: '"', header: () => [] }));

function papaStream(text: string, onRow: OnRow): Promise<void> {
  return new Promise((resolve, reject) => {
    const st = Papa.parse(Papa.NODE_STREAM_INPUT, {
      delimiter: ",",
      skipEmptyLines: true,
    });
    st.on("data", onRow);
    st.on("error", reject);
    st.on("end", resolve);
    for (const s of slices(text)) st.write(s);
    st.end();
  });
}

function csvParseStreamed(text: string, onRow: OnRow): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = csvParseStream({ bom: true, skip_empty_lines: true, info: true });
    p.on("readable", () => {
      let r: { record: string[] } | null;
      while ((r = p.read()) !== null) onRow(r.record);
    });
    p.on("error", reject);
    p.on("end", resolve);
    // backpressure ignored: the input is already in memory anyway
    for (const s of slices(text)) p.write(s);
    p.end();
  });
}

const collectFrom = (iterate: Contender["iterate"]) => async (text: string) => {
  const rows: string[][] = [];
  await iterate(text, (r) => rows.push(r));
  return rows;
};

const PARSERS: Record<string, Contender> = {
  "uDSV": {
    collect: (t) => udsvFor(t).stringArrs(t),
    iterate: (t, onRow) => void udsvFor(t).stringArrs(t, (row) => onRow(row)),
  },
  "uDSV chunk()": {
    collect: (t) => {
      const p = udsvFor(t.slice(0, CHUNK));
      for (const s of slices(t)) p.chunk<string[]>(s, p.stringArrs<string[]>);
      return p.end<string[]>();
    },
    iterate: (t, onRow) => {
      const p = udsvFor(t.slice(0, CHUNK));
      const cb = (row: string[]) => onRow(row);
      for (const s of slices(t)) p.chunk<string[]>(s, p.stringArrs<string[]>, cb);
      p.end();
    },
  },
  "PapaParse": {
    collect: (t) => {
      const r = Papa.parse<string[]>(t, { delimiter: ",", skipEmptyLines: true });
      if (r.errors.length) throw new Error(r.errors[0]!.message);
      return r.data;
    },
    iterate: (t, onRow) => {
      Papa.parse<string[]>(t, {
        delimiter: ",",
        skipEmptyLines: true,
        step: (r) => {
          if (r.errors.length) throw new Error(r.errors[0]!.message);
          onRow(r.data);
        },
      });
    },
  },
  "PapaParse stream": { collect: collectFrom(papaStream), iterate: papaStream },
  "csv-parse/sync": {
    collect: (t) => csvParseSync(t, { bom: true, skip_empty_lines: true }),
    iterate: (t, onRow) => {
      csvParseSync(t, {
        bom: true,
        skip_empty_lines: true,
        on_record: (rec: string[]) => { // context (2nd arg) has info.lines
          onRow(rec);
          return null; // drop it: do not accumulate
        },
      });
    },
  },
  "csv-parse/sync info": {
    collect: (t) =>
      (csvParseSync(t, { bom: true, skip_empty_lines: true, info: true }) as unknown as {
        record: string[];
      }[])
        .map((r) => r.record),
    iterate: () => {
      throw new Error("n/a (same as csv-parse/sync iterate: on_record always gets info)");
    },
  },
  "csv-parse stream": { collect: collectFrom(csvParseStreamed), iterate: csvParseStreamed },
  "statecast": {
    collect: (t) => {
      const rows: string[][] = [];
      for (const { fields } of parseCsv(t)) rows.push(fields);
      return rows;
    },
    iterate: (t, onRow) => {
      for (const { fields } of parseCsv(t)) onRow(fields);
    },
  },
};

// ---------------------------------------------------------------- child ----

type Mode = "collect" | "iterate";

async function child(name: string, mode: Mode, path: string, runs: number) {
  const meta: Meta = JSON.parse(readFileSync(path + ".meta.json", "utf8"));
  const text = readFileSync(path, "utf8");
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    let count = 0;
    let sum = 0;
    const tally = (row: string[]) => {
      count++;
      for (let k = 0; k < row.length; k++) sum += row[k]!.length;
    };
    let ms: number;
    const t0 = performance.now();
    if (mode === "collect") {
      const rows = await PARSERS[name]!.collect(text);
      ms = performance.now() - t0; // tally is outside the timing
      for (const row of rows) tally(row);
    } else {
      await PARSERS[name]!.iterate(text, tally); // tally inside, it is the consumer
      ms = performance.now() - t0;
    }
    if (count !== meta.rows || sum !== meta.checksum) {
      throw new Error(
        `${name}: wrong result: ${count} rows (want ${meta.rows}), checksum ${sum} (want ${meta.checksum})`,
      );
    }
    times.push(ms);
  }
  console.log(JSON.stringify({ name, times }));
}

// --------------------------------------------------------------- driver ----

function arg(flag: string, dflt: string): string {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] ?? dflt : dflt;
}

const TIMEOUT_S = Number(arg("--timeout", "300"));
const scriptPath = new URL(import.meta.url).pathname;

if (process.argv.includes("--child")) {
  await child(
    arg("--child", ""),
    arg("--mode", "collect") as Mode,
    arg("--file", ""),
    Number(arg("--runs", "3")),
  );
} else {
  const rows = Number(arg("--rows", "1000000"));
  const runs = Number(arg("--runs", "3"));
  const only = arg("--only", "");
  const names = only ? only.split(",") : Object.keys(PARSERS);
  const path = `/tmp/statecast-bench-${rows}.csv`;
  const meta: Meta = existsSync(path + ".meta.json")
    ? JSON.parse(readFileSync(path + ".meta.json", "utf8"))
    : generate(rows, path);

  /** runs one parser+mode in a fresh child process; returns a table cell */
  const measure = (name: string, mode: Mode): string => {
    const args = isDeno ? ["run", "--allow-read", "--allow-env", scriptPath] : [scriptPath];
    const res = spawnSync(
      process.execPath,
      [...args, "--child", name, "--mode", mode, "--file", path, "--runs", String(runs)],
      { encoding: "utf8", maxBuffer: 1 << 20, timeout: TIMEOUT_S * 1000 },
    );
    if (res.signal) return `timeout (> ${TIMEOUT_S} s for ${runs} runs)`;
    const line = res.stdout.trim().split("\n").pop() ?? "";
    if (res.status !== 0 || !line.startsWith("{")) {
      const err = (res.stderr || res.stdout).trim().split("\n").find((l) => /error/i.test(l)) ??
        "failed";
      return err.includes("n/a") ? "n/a" : `error: ${err.slice(0, 120)}`;
    }
    const times = (JSON.parse(line) as { times: number[] }).times;
    const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    return `**${median.toFixed(0)}** (${times.map((t) => t.toFixed(0)).join(", ")})`;
  };

  console.log(
    `# CSV parse speed, ${runtime}, ${meta.rows.toLocaleString("en")} records incl. header, ` +
      `${(meta.bytes / 1e6).toFixed(1)} MB, ${runs} runs each (${path})\n`,
  );
  console.log(
    "ms: **median** (all runs). collect = parse to string[][]; iterate = per-record callback, rows not kept\n",
  );
  console.log("| parser | collect ms | iterate ms |");
  console.log("|---|---|---|");
  for (const name of names) {
    console.log(`| ${name} | ${measure(name, "collect")} | ${measure(name, "iterate")} |`);
  }
}
