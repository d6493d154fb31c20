import assert from "node:assert/strict";
import { CsvRow, parseCsvRecords, parseCsvRows } from "../lib/csv.ts";
import { StatecastError } from "../lib/errors.ts";

const fields = (text: string) => [...parseCsvRecords(text)].map((r) => r.fields);
const lines = (text: string) => [...parseCsvRecords(text)].map((r) => r.line);

Deno.test("parseCsvRecords() reads quoted fields, doubled quotes, separators and newlines in quotes", () => {
  assert.deepEqual(fields('a,b\n"x, y","say ""hi"""\n"multi\nline","crlf\r\ninside"\n'), [
    ["a", "b"],
    ["x, y", 'say "hi"'],
    ["multi\nline", "crlf\r\ninside"],
  ]);
});

Deno.test("parseCsvRecords() accepts LF and CRLF, with or without a final line end", () => {
  for (const text of ["a,b\r\n1,2\r\n", "a,b\r\n1,2", "a,b\n1,2\n", "a,b\n1,2"]) {
    assert.deepEqual(fields(text), [["a", "b"], ["1", "2"]], JSON.stringify(text));
  }
});

Deno.test("parseCsvRecords() strips a UTF-8 BOM and keeps empty fields and whitespace", () => {
  assert.deepEqual(fields("\uFEFFa,b,c\n, x ,\n"), [["a", "b", "c"], ["", " x ", ""]]);
});

Deno.test("parseCsvRecords() skips blank lines but keeps a quoted empty field", () => {
  assert.deepEqual(fields('a\n\n1\n""\n'), [["a"], ["1"], [""]]);
});

Deno.test("parseCsvRecords() gives the line each record starts on", () => {
  assert.deepEqual(lines('a,b\n"1\n2",3\n\n4,5\n'), [1, 2, 5]);
});

Deno.test("parseCsvRecords() counts a lone CR inside quotes as a line end, as outside (old Mac files)", () => {
  assert.deepEqual(lines('a,b\r"1\r2",3\r\r4,5\r'), [1, 2, 5]);
  assert.deepEqual(lines('a,b\r\n"1\r\n2\r3",3\r\n4,5\r\n'), [1, 2, 5]);
  assert.throws(() => [...parseCsvRecords('a,b\r"1\r2",3\r4,x"y\r')], /^SyntaxError: line 4:/);
});

Deno.test("parseCsvRecords() rejects an unterminated quoted field, naming its line", () => {
  assert.throws(() => fields('a,b\n1,2\n"open,3\n4,5\n'), (e: unknown) => {
    assert.ok(e instanceof SyntaxError);
    assert.match(e.message, /^line 3: quoted field is never closed/);
    return true;
  });
});

Deno.test("parseCsvRecords() rejects text after a closing quote", () => {
  assert.throws(() => fields('a\n"x"y\n'), /line 2: unexpected "y" after a closing quote/);
});

Deno.test("parseCsvRecords() rejects a quote inside an unquoted field, as RFC 4180 does", () => {
  assert.throws(
    () => fields('a\nok\n5" disk\n'),
    /^SyntaxError: line 3: '"' inside an unquoted field/,
  );
  assert.deepEqual(fields('a\n"5"" disk"\n'), [["a"], ['5" disk']]);
});

Deno.test("parseCsvRows() gives each row the header, its values in header order and its line", () => {
  const rows = [...parseCsvRows("sku,name,price\nA1,Desk,10\n\nA2,Chair,20\n", "p.csv")];
  assert.deepEqual(rows.map((r) => [r.header, r.values, r.line]), [
    [["sku", "name", "price"], ["A1", "Desk", "10"], 2],
    [["sku", "name", "price"], ["A2", "Chair", "20"], 4],
  ]);
  assert.equal(rows[0]!.header, rows[1]!.header, "the rows of a file share one header");
  assert.equal(rows[1]!.get("price"), "20");
});

Deno.test("parseCsvRows() keeps year columns in header order and distinct", () => {
  // A plain object would put "2023" and "2024" first, and "A,1,1" would key both rows by "1".
  const rows = [...parseCsvRows("sku,2023,2024\nA,1,1\nB,1,2\n", "y.csv")];
  assert.deepEqual(rows.map((r) => r.values[0]), ["A", "B"]);
  assert.deepEqual(rows.map((r) => r.toJsonText()), [
    '{"sku":"A","2023":"1","2024":"1"}',
    '{"sku":"B","2023":"1","2024":"2"}',
  ]);
  assert.equal(rows[1]!.get("2024"), "2");
});

Deno.test("CsvRow keeps __proto__, constructor and toString as ordinary names", () => {
  const [row] = parseCsvRows(
    "k,__proto__,constructor,toString,hasOwnProperty\nz,p,c,t,h\n",
    "o.csv",
  );
  assert.equal(row!.get("__proto__"), "p");
  assert.equal(row!.get("constructor"), "c");
  assert.equal(row!.get("toString"), "t");
  assert.equal(row!.get("hasOwnProperty"), "h");
  assert.equal(row!.get("valueOf"), undefined, "a name the header does not have");
  assert.equal(
    row!.toJsonText(),
    '{"k":"z","__proto__":"p","constructor":"c","toString":"t","hasOwnProperty":"h"}',
  );
  assert.deepEqual(Object.keys(JSON.parse(row!.toJsonText())), row!.header);
});

Deno.test("CsvRow.toJsonText() is JSON.stringify of the row object for ordinary names", () => {
  const header = ["sku", "name", "note", "émoji", "x y", 'q"uote', "back\\slash", "tab\t"];
  const values = [
    "A1",
    'Desk "XL"',
    "line\nbreak\r\n",
    "Zoë 🙂",
    "",
    "\u0000\u001f",
    "\\",
    "\uD800",
  ];
  const object: Record<string, string> = {};
  header.forEach((name, i) => object[name] = values[i]!);
  assert.equal(new CsvRow(header, values, 2).toJsonText(), JSON.stringify(object));
  const text = 'id,v\nk1,1\nk2,"two, ""quoted"""\n';
  for (const row of parseCsvRows(text, "a.csv")) {
    const plain: Record<string, string> = {};
    row.header.forEach((name, i) => plain[name] = row.values[i]!);
    assert.equal(row.toJsonText(), JSON.stringify(plain));
  }
});

Deno.test("CsvRow refuses JSON.stringify(), mismatched values and a name given twice", () => {
  const row = new CsvRow(["id", "2024"], ["b1", "x"], 2);
  assert.throws(
    () => JSON.stringify(row),
    /cannot keep a CSV row's column order: use row.toJsonText/,
  );
  assert.throws(() => new CsvRow(["a", "b"], ["1"], 2), RangeError);
  assert.throws(() => new CsvRow(["a", "a"], ["1", "2"], 2), /names the field "a" twice/);
});

Deno.test("parseCsvRows() names the file and line of a row with the wrong field count", () => {
  assert.throws(
    () => [...parseCsvRows("a,b,c,d\n1,2,3,4\n1,2,3,4,5\n", "data/a.csv")],
    (e: unknown) => {
      assert.ok(e instanceof StatecastError);
      assert.equal(
        e.message,
        'Cannot parse "data/a.csv" line 3: expected 4 fields (as in the header), got 5',
      );
      assert.equal(e.path, "data/a.csv");
      assert.equal(e.line, 3);
      return true;
    },
  );
});

Deno.test("parseCsvRows() names the empty columns of a header saved with stray empty columns", () => {
  assert.throws(
    () => [...parseCsvRows("id,name,,\n1,a,,\n", "x.csv")],
    /^StatecastError: Cannot parse "x.csv" line 1: the header has 2 columns with no name \(columns 3, 4\)/,
  );
  assert.equal([...parseCsvRows("id,name,\n1,a,\n", "x.csv")][0]!.get(""), "", "one is a name");
});

Deno.test("parseCsvRows() rejects a file with no header row, only a BOM and blank lines", () => {
  // As a file of no rows, it would tombstone every key it published (a 0-byte file is held).
  for (const text of ["\uFEFF", "\n", "\r\n\r\n", "\uFEFF\r\n", " \n\t\n"]) {
    assert.throws(
      () => [...parseCsvRows(text, "a.csv")],
      (e: unknown) => {
        assert.ok(e instanceof StatecastError, JSON.stringify(text));
        assert.match(e.message, /^Cannot parse "a.csv" line 1: the file has no header row, only/);
        assert.equal(e.path, "a.csv");
        return true;
      },
    );
  }
  assert.deepEqual([...parseCsvRows("", "a.csv")], [], "empty text: no rows (the engine holds it)");
  assert.deepEqual([...parseCsvRows("\uFEFFid\r\n", "a.csv")], [], "a header only: no rows");
  assert.deepEqual([...parseCsvRows("\n\n", "a.csv", { header: ["id"] })], [], "named header");
});

Deno.test("parseCsvRows() rejects a header that names a field twice", () => {
  assert.throws(
    () => [...parseCsvRows("a,a\n1,2\n", "x.csv")],
    /"x.csv" line 1: the header names the field "a" twice/,
  );
});

Deno.test("CsvRow.toJsonText() equals the field-by-field JSON for 5,000 seeded random rows", () => {
  // The text is what is fingerprinted and sent: it must not change by a byte (a stored state
  // would send every row again). The reference builds it field by field, as the first version did.
  let seed = 0x2545f491;
  const random = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pieces = [
    "a",
    "Zoë",
    "🙂",
    '"',
    "\\",
    "\n",
    "\u0000",
    "\u001f",
    "\uD800",
    "\uDC00",
    "7",
    " ",
  ];
  const text = (max: number) => {
    let s = "";
    for (let n = random(max); n > 0; n--) s += pieces[random(pieces.length)];
    return s;
  };
  const names = ["id", "2024", "0", "__proto__", "constructor", "toJSON", "x y", "-1", "1.5"];
  const reference = (header: readonly string[], values: readonly string[]) =>
    "{" + header.map((name, i) =>
      JSON.stringify(name) + ":" + JSON.stringify(values[i])
    ).join(",") +
    "}";
  for (let i = 0; i < 500; i++) {
    const header = [...new Set([text(3), ...names.filter(() => random(3) === 0), text(6)])];
    for (let k = 0; k < 10; k++) {
      const values = header.map(() => text(8));
      const row = new CsvRow(header, values, 2);
      assert.equal(row.toJsonText(), reference(header, values));
    }
  }
});
