/**
 * RFC 4180 correctness matrix for the CSV parser candidates.
 *
 *   deno run --allow-read --allow-env bench/csv_parsers/correctness.ts
 *   bun bench/csv_parsers/correctness.ts
 *
 * Prints a markdown matrix (case x parser) of ok / FAIL / part, then the
 * details behind every non-ok cell. Exit code is 0 regardless: failures are
 * findings about third-party libraries, not test breakage.
 * Set VERBOSE=1 to also print the notes of ok cells.
 *
 * Expectations (each case says which kind it is):
 *   rfc    - follows from RFC 4180 text or grammar;
 *   policy - what statecast needs where the RFC is silent or ambiguous
 *            (e.g. blank lines are skipped, like Go encoding/csv and @std/csv);
 *   cap    - capability: line numbers, field-count mismatches.
 */
import { type Adapter, ALL, ChunkDependenceError, type Parsed } from "./adapters.ts";

type Expect =
  /** exact records (header included); `lines` = expected start line of each */
  | { rows: string[][]; lines?: number[] }
  /** input is malformed: the parser must throw; `line` = where the problem is */
  | { error: true; line: number }
  /** a field-count mismatch on `line` must be detectable: either the parser
   *  throws naming that line, or it returns the records unpadded/untruncated
   *  (`rows`) with the line number of the bad record */
  | { mismatch: { line: number; rows: string[][] } }
  /** the parser must report record START lines equal to `lines` */
  | { lineNumbers: number[]; rows: string[][] };

interface Case {
  name: string;
  kind: "rfc" | "policy" | "cap";
  input: string;
  expect: Expect | Expect[]; // several = any of them is acceptable
}

const H = ["a", "b"];

export const CASES: Case[] = [
  {
    name: "quoted field with comma",
    kind: "rfc",
    input: 'a,b\n1,"x,y"\n',
    expect: { rows: [H, ["1", "x,y"]], lines: [1, 2] },
  },
  {
    name: 'doubled quote ("" inside quotes, empty quoted, lone "")',
    kind: "rfc",
    input: 'a,b,c\n"say ""hi""","",""""\n',
    expect: { rows: [["a", "b", "c"], ['say "hi"', "", '"']], lines: [1, 2] },
  },
  {
    name: "LF inside quotes (LF file)",
    kind: "rfc",
    input: 'a,b\n1,"x\ny"\n2,z\n',
    expect: { rows: [H, ["1", "x\ny"], ["2", "z"]], lines: [1, 2, 4] },
  },
  {
    name: "CRLF inside quotes (CRLF file)",
    kind: "rfc",
    input: 'a,b\r\n1,"x\r\ny"\r\n2,z\r\n',
    expect: { rows: [H, ["1", "x\r\ny"], ["2", "z"]], lines: [1, 2, 4] },
  },
  {
    name: "LF inside quotes, CRLF line ends",
    kind: "rfc",
    input: 'a,b\r\n1,"x\ny"\r\n2,z\r\n',
    expect: { rows: [H, ["1", "x\ny"], ["2", "z"]], lines: [1, 2, 4] },
  },
  {
    name: "CRLF line ends",
    kind: "rfc",
    input: "a,b\r\n1,2\r\n3,4\r\n",
    expect: { rows: [H, ["1", "2"], ["3", "4"]], lines: [1, 2, 3] },
  },
  {
    name: "CRLF line ends, no final line break",
    kind: "rfc",
    input: "a,b\r\n1,2\r\n3,4",
    expect: { rows: [H, ["1", "2"], ["3", "4"]], lines: [1, 2, 3] },
  },
  {
    name: "UTF-8 BOM stripped",
    kind: "policy",
    input: "\uFEFFa,b\n1,2\n",
    expect: { rows: [H, ["1", "2"]], lines: [1, 2] },
  },
  {
    name: "empty fields",
    kind: "rfc",
    input: "a,b,c\n,,\n1,,3\n4,5,\n",
    expect: {
      rows: [["a", "b", "c"], ["", "", ""], ["1", "", "3"], ["4", "5", ""]],
      lines: [1, 2, 3, 4],
    },
  },
  {
    name: "no trailing newline",
    kind: "rfc",
    input: "a,b\n1,2",
    expect: { rows: [H, ["1", "2"]], lines: [1, 2] },
  },
  {
    name: "trailing newline (no phantom record)",
    kind: "rfc",
    input: "a,b\n1,2\n",
    expect: { rows: [H, ["1", "2"]], lines: [1, 2] },
  },
  {
    name: "empty last line skipped",
    kind: "policy",
    input: "a,b\n1,2\n\n",
    expect: { rows: [H, ["1", "2"]], lines: [1, 2] },
  },
  {
    name: "blank line mid-file skipped, lines still counted",
    kind: "policy",
    input: "a,b\n1,2\n\n3,4\n",
    expect: { rows: [H, ["1", "2"], ["3", "4"]], lines: [1, 2, 4] },
  },
  {
    name: 'one column: "" is a record, blank line is not',
    kind: "policy",
    input: 'a\n""\nx\n',
    expect: { rows: [["a"], [""], ["x"]], lines: [1, 2, 3] },
  },
  {
    name: "unquoted whitespace preserved",
    kind: "rfc",
    input: "a,b\n 1 ,  x  \n",
    expect: { rows: [H, [" 1 ", "  x  "]], lines: [1, 2] },
  },
  {
    name: "non-ASCII text",
    kind: "rfc",
    input: 'a,b\nh\u00e9llo,"\u4e16\u754c, \u{1F389}"\n',
    expect: { rows: [H, ["h\u00e9llo", "\u4e16\u754c, \u{1F389}"]], lines: [1, 2] },
  },
  {
    name: "ERROR: unterminated quote at EOF",
    kind: "rfc",
    input: 'a,b\n1,"x\n2,3\n',
    expect: { error: true, line: 2 },
  },
  {
    name: "ERROR: unterminated quote, last field, no newline",
    kind: "rfc",
    input: 'a,b\n1,2\n3,"x',
    expect: { error: true, line: 3 },
  },
  {
    name: 'ERROR: quote inside unquoted field (x"y"z)',
    kind: "rfc",
    input: 'a,b\n1,x"y"z\n',
    expect: { error: true, line: 2 },
  },
  {
    name: 'ERROR: text after closing quote ("x"y)',
    kind: "rfc",
    input: 'a,b\n1,"x"y\n',
    expect: { error: true, line: 2 },
  },
  {
    name: "bare CR line ends: error or 2 records, never merged",
    kind: "policy",
    input: "a,b\r1,2\r",
    expect: [{ error: true, line: 1 }, { rows: [H, ["1", "2"]] }],
  },
  {
    name: "too few fields -> detectable at line 3",
    kind: "cap",
    input: "a,b,c\n1,2,3\n4,5\n6,7,8\n",
    expect: {
      mismatch: { line: 3, rows: [["a", "b", "c"], ["1", "2", "3"], ["4", "5"], ["6", "7", "8"]] },
    },
  },
  {
    name: "too many fields -> detectable at line 3",
    kind: "cap",
    input: "a,b,c\n1,2,3\n4,5,6,7\n8,9,0\n",
    expect: {
      mismatch: {
        line: 3,
        rows: [["a", "b", "c"], ["1", "2", "3"], ["4", "5", "6", "7"], ["8", "9", "0"]],
      },
    },
  },
  {
    name: "too few fields after a multi-line record -> line 5",
    kind: "cap",
    input: 'a,b\n1,"x\ny"\n2,z\n3\n',
    expect: { mismatch: { line: 5, rows: [H, ["1", "x\ny"], ["2", "z"], ["3"]] } },
  },
  {
    name: "too few fields after a CRLF-in-quotes record -> line 4",
    kind: "cap",
    input: 'a,b\r\n1,"p\r\nq"\r\n2\r\n3,4\r\n',
    expect: { mismatch: { line: 4, rows: [H, ["1", "p\r\nq"], ["2"], ["3", "4"]] } },
  },
  {
    name: "record START line numbers (multi-line + blank lines)",
    kind: "cap",
    input: 'h1,h2\n1,"x\ny"\n2,z\n\n3,"p\r\nq\nr"\n4,w',
    expect: {
      lineNumbers: [1, 2, 4, 6, 9],
      rows: [["h1", "h2"], ["1", "x\ny"], ["2", "z"], ["3", "p\r\nq\nr"], ["4", "w"]],
    },
  },
];

// ------------------------------------------------------------ evaluation ----

type Verdict = { status: "ok" | "FAIL" | "part"; note: string };

const show = (v: unknown) => JSON.stringify(v);
const eq = (a: unknown, b: unknown) => show(a) === show(b);
/** first "line N" / "line: N" / "on line N" mentioned in an error message */
const lineIn = (msg: string) => {
  const m = /\bline\D{0,3}(\d+)/i.exec(msg);
  return m ? Number(m[1]) : undefined;
};

function judgeOne(exp: Expect, out: Parsed | Error, adapter: Adapter): Verdict {
  if (out instanceof ChunkDependenceError) return { status: "FAIL", note: out.message };
  if ("error" in exp) {
    if (!(out instanceof Error)) {
      return { status: "FAIL", note: `no error, silently returned ${show(out.rows)}` };
    }
    const l = lineIn(out.message);
    if (l === undefined) {
      return { status: "part", note: `threw without a line number: ${out.message}` };
    }
    if (l !== exp.line) {
      return {
        status: "ok",
        note: `threw, but names line ${l} (problem at ${exp.line}): ${out.message}`,
      };
    }
    return { status: "ok", note: `threw: ${out.message}` };
  }
  if (out instanceof Error) {
    if ("mismatch" in exp) {
      const l = lineIn(out.message);
      if (l === exp.mismatch.line) return { status: "ok", note: `threw: ${out.message}` };
      return {
        status: "part",
        note: `threw, but line ${l ?? "?"} (want ${exp.mismatch.line}): ${out.message}`,
      };
    }
    return { status: "FAIL", note: `threw on valid input: ${out.message}` };
  }
  if ("mismatch" in exp) {
    const { line, rows } = exp.mismatch;
    if (!eq(out.rows, rows)) {
      return {
        status: "FAIL",
        note: `no error and records padded/truncated/merged: ${show(out.rows)}`,
      };
    }
    const bad = rows.findIndex((r) => r.length !== rows[0]!.length);
    if (!out.lines) {
      return { status: "part", note: "field count visible, but no line number available" };
    }
    if (out.lines[bad] !== line) {
      return {
        status: "part",
        note: `field count visible, but reported line ${
          out.lines[bad]
        } (want ${line}; ${adapter.lineNumbers} line)`,
      };
    }
    return { status: "ok", note: `field count visible on record with line ${line}` };
  }
  if ("lineNumbers" in exp) {
    if (!eq(out.rows, exp.rows)) {
      return { status: "FAIL", note: `records wrong: ${show(out.rows)}` };
    }
    if (!out.lines) return { status: "FAIL", note: "parser exposes no line numbers" };
    if (!eq(out.lines, exp.lineNumbers)) {
      return {
        status: "part",
        note: `lines ${show(out.lines)} (want start lines ${show(exp.lineNumbers)})`,
      };
    }
    return { status: "ok", note: "" };
  }
  if (!eq(out.rows, exp.rows)) {
    return { status: "FAIL", note: `got ${show(out.rows)} want ${show(exp.rows)}` };
  }
  // line numbers of ordinary cases are only checked when the parser claims start lines
  if (exp.lines && out.lines && adapter.lineNumbers === "start" && !eq(out.lines, exp.lines)) {
    return { status: "FAIL", note: `lines ${show(out.lines)} want ${show(exp.lines)}` };
  }
  return { status: "ok", note: "" };
}

function judge(c: Case, out: Parsed | Error, adapter: Adapter): Verdict {
  const exps = Array.isArray(c.expect) ? c.expect : [c.expect];
  const verdicts = exps.map((e) => judgeOne(e, out, adapter));
  return verdicts.find((v) => v.status === "ok") ?? verdicts.find((v) => v.status === "part") ??
    verdicts[0]!;
}

async function run(adapter: Adapter, input: string): Promise<Parsed | Error> {
  try {
    return await adapter.parse(input);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

if (import.meta.main) {
  const runtime = "Deno" in globalThis
    ? `Deno ${Deno.version.deno}`
    : `Bun ${(globalThis as { Bun?: { version: string } }).Bun?.version}`;
  const verbose = Boolean(
    (globalThis as { process?: { env: Record<string, string> } }).process?.env.VERBOSE,
  );
  const verdicts: Verdict[][] = [];
  for (const c of CASES) {
    const row: Verdict[] = [];
    for (const a of ALL) row.push(judge(c, await run(a, c.input), a));
    verdicts.push(row);
  }

  console.log(`# CSV parser correctness (${runtime})\n`);
  console.log(`| # | case | kind | ${ALL.map((a) => a.name).join(" | ")} |`);
  console.log(`|---|---|---|${ALL.map(() => "---").join("|")}|`);
  CASES.forEach((c, i) => {
    console.log(
      `| ${i + 1} | ${c.name} | ${c.kind} | ${verdicts[i]!.map((v) => v.status).join(" | ")} |`,
    );
  });
  const count = (ai: number, s: Verdict["status"]) =>
    verdicts.filter((r) => r[ai]!.status === s).length;
  console.log(
    `|   | **FAIL / part** | | ${
      ALL.map((_, ai) => `${count(ai, "FAIL")} / ${count(ai, "part")}`).join(" | ")
    } |`,
  );
  console.log(`|   | line numbers | | ${ALL.map((a) => a.lineNumbers).join(" | ")} |`);
  console.log(
    `|   | streaming input | | ${ALL.map((a) => (a.streaming ? "yes" : "no")).join(" | ")} |`,
  );

  console.log("\n## Details\n");
  for (const [ai, a] of ALL.entries()) {
    const notes = CASES.map((c, i) => [i, c, verdicts[i]![ai]!] as const)
      .filter(([, , v]) => v.note && (verbose || v.status !== "ok"));
    if (!notes.length) continue;
    console.log(`### ${a.name}  (${a.how})`);
    for (const [i, c, v] of notes) {
      console.log(
        `- #${i + 1} ${c.name}: **${v.status}** ${
          v.note.replaceAll("\n", "\\n").replaceAll("\r", "\\r")
        }`,
      );
    }
    console.log();
  }
}
