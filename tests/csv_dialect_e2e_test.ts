// CSV_DELIMITER in main.ts, end to end: a semicolon file read with the default delimiter is one
// column and a warning names ";"; setting CSV_DELIMITER runs the file again (the delimiter is
// part of the logic fingerprint) and sends the rows as they are meant. Read back with kcat.
import assert from "node:assert/strict";
import { pipeline } from "./_pipeline.ts";

Deno.test("main.ts warns about a ; file read with , and reads it right once CSV_DELIMITER=;", async () => {
  await using p = await pipeline("semicolon");
  await p.write("a.csv", "id;name;qty\n1;apple;3\n2;pear;5\n");
  const first = await p.ok();
  assert.match(
    first.stderr,
    /warning: "a\.csv": the header "id;name;qty" is one column with the delimiter ",", but looks delimited by ";" \(3 columns\): set CSV_DELIMITER=;/,
  );
  assert.deepEqual(await p.fresh(), [
    '1;apple;3={"id;name;qty":"1;apple;3"}',
    '2;pear;5={"id;name;qty":"2;pear;5"}',
  ]);

  const fixed = await p.ok({ env: { CSV_DELIMITER: ";" } });
  assert.doesNotMatch(fixed.stderr, /warning/);
  assert.match(fixed.stderr, /1 files scanned, 0 unchanged/, "the same file runs again");
  assert.deepEqual(await p.fresh(), [
    "1;apple;3=null",
    '1={"id":"1","name":"apple","qty":"3"}',
    "2;pear;5=null",
    '2={"id":"2","name":"pear","qty":"5"}',
  ]);

  const again = await p.ok({ env: { CSV_DELIMITER: ";" } });
  assert.match(again.stderr, /1 files scanned, 1 unchanged/);
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts reads a tab-separated file with CSV_DELIMITER=tab, under Deno and Bun", async () => {
  await using p = await pipeline("tab");
  await p.write("a.tsv.csv", "id\tname\n1\tapple, red\n");
  await p.ok({ env: { CSV_DELIMITER: "tab" } });
  assert.deepEqual(await p.fresh(), ['1={"id":"1","name":"apple, red"}']);
  await p.write("a.tsv.csv", "id\tname\n1\tapple, green\n");
  await p.ok({ env: { CSV_DELIMITER: "tab" }, runtime: "bun" });
  assert.deepEqual(await p.fresh(), ['1={"id":"1","name":"apple, green"}']);
});
