import assert from "node:assert/strict";
import { parseCsvRecords, parseCsvRows } from "../lib/csv.ts";
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

Deno.test("parseCsvRows() keys rows by the header, in header order", () => {
  const rows = [...parseCsvRows("sku,name,price\nA1,Desk,10\n", "p.csv")];
  assert.deepEqual(rows, [{ sku: "A1", name: "Desk", price: "10" }]);
  assert.deepEqual(Object.keys(rows[0]!), ["sku", "name", "price"]);
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

Deno.test("parseCsvRows() rejects a header that names a field twice", () => {
  assert.throws(
    () => [...parseCsvRows("a,a\n1,2\n", "x.csv")],
    /"x.csv" line 1: the header names the field "a" twice/,
  );
});
