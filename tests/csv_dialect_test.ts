// CSV dialects: the delimiter, the quote, a header given in code, and the warning for a header
// that looks delimited by another character.
import assert from "node:assert/strict";
import { csvDelimiter, delimiterWarning, parseCsvRecords, parseCsvRows } from "../lib/csv.ts";
import { StatecastError } from "../lib/errors.ts";

const rows = (text: string, options = {}) =>
  [...parseCsvRows(text, "t.csv", options)].map((row) => [row.line, row.toJsonText()]);

Deno.test("parseCsvRows() reads ;, | and tab delimited files, tab spelled as tab or \\t", () => {
  const expected = [[2, '{"id":"1","name":"apple; red","qty":"3"}']];
  assert.deepEqual(rows('id;name;qty\n1;"apple; red";3\n', { delimiter: ";" }), expected);
  assert.deepEqual(rows('id|name|qty\n1|"apple; red"|3\n', { delimiter: "|" }), expected);
  for (const delimiter of ["\t", "tab", "TAB", "\\t"]) {
    assert.deepEqual(rows('id\tname\tqty\n1\t"apple; red"\t3\n', { delimiter }), expected);
  }
  assert.deepEqual(rows("id;v\n1;2\n", { separator: ";" }), [[2, '{"id":"1","v":"2"}']]);
});

Deno.test("parseCsvRows() takes another quote character, or none", () => {
  assert.deepEqual(rows("id,name\n1,'a, ''b'''\n", { quote: "'" }), [
    [2, `{"id":"1","name":"a, 'b'"}`],
  ]);
  // No quoting: a quote is data, and a delimiter always splits.
  assert.deepEqual(rows('id\tname\n1\t5" disk\n', { delimiter: "tab", quote: null }), [
    [2, '{"id":"1","name":"5\\" disk"}'],
  ]);
  assert.throws(
    () => [...parseCsvRecords("a\n'x\n", { quote: "'" })],
    /line 2: quoted field is never closed \(missing ''' before the end of the file\)/,
  );
});

Deno.test("parseCsvRows() with a header given in code reads every record as data, from line 1", () => {
  assert.deepEqual(rows("1,apple\n2,pear\n", { header: ["id", "name"] }), [
    [1, '{"id":"1","name":"apple"}'],
    [2, '{"id":"2","name":"pear"}'],
  ]);
  assert.throws(
    () => rows("1,apple,x\n", { header: ["id", "name"] }),
    (e: unknown) =>
      e instanceof StatecastError &&
      e.message === 'Cannot parse "t.csv" line 1: expected 2 fields (as in the header), got 3',
  );
  assert.throws(() => rows("1,2\n", { header: ["id", "id"] }), /names the field "id" twice/);
});

Deno.test("csvDelimiter() refuses a delimiter that is not one character, or is the quote", () => {
  assert.equal(csvDelimiter({ delimiter: ";" }), ";");
  assert.throws(
    () => csvDelimiter({ delimiter: ";;" }),
    /The CSV delimiter must be one character other than the quote and line breaks \(",", ";", "\|" or "tab"\), got ";;"/,
  );
  assert.throws(() => csvDelimiter({ delimiter: "'", quote: "'" }), RangeError);
  assert.throws(() => csvDelimiter({ quote: "''" }), /The CSV quote must be one character/);
  assert.equal(csvDelimiter({ delimiter: '"', quote: null }), '"');
});

Deno.test("parseCsvRows() warns when a one-column header looks delimited by ;, tab, | or ,", () => {
  const warned = (text: string, delimiter?: string) => {
    const warnings: string[] = [];
    rows(text, { ...(delimiter ? { delimiter } : {}), onWarning: (w: string) => warnings.push(w) });
    return warnings;
  };
  assert.deepEqual(warned("id;name;qty\n1;apple;3\n"), [
    'the header "id;name;qty" is one column with the delimiter ",", but looks delimited by ";" ' +
    '(3 columns): set CSV_DELIMITER=; (main.ts), or csvRows({ delimiter: ";" })',
  ]);
  assert.match(
    warned("id\tname\n1\tx\n")[0]!,
    /looks delimited by tab \(2 columns\): set CSV_DELIMITER=tab/,
  );
  assert.match(warned("id|name\n1|x\n")[0]!, /looks delimited by "\|"/);
  assert.match(
    warned("id,name\n1,x\n", ";")[0]!,
    /with the delimiter ";", but looks delimited by ","/,
  );
  assert.deepEqual(warned("id\n1\n2\n"), [], "a real one-column file");
  assert.deepEqual(warned("id,name\n1,x\n"), [], "a header of several columns");
  assert.equal(delimiterWarning(["a;b|c|d"], ","), delimiterWarning(["a;b|c|d"], ",")); // stable
  assert.match(
    delimiterWarning(["a;b|c|d"], ",")!,
    /delimited by "\|" \(3 columns\)/,
    "the best split",
  );
});
