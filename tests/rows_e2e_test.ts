// Rows as the file has them, end to end: main.ts (under Deno and under Bun) keys each row by the
// header's first column and sends the row as JSON in header order, whatever the column names are
// (years, `__proto__`, `constructor`). Read back with kcat. The expected values are written out
// literally: a JavaScript object would put the year columns first.
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline, ROOT } from "./_pipeline.ts";

for (const runtime of ["deno", "bun"] as const) {
  Deno.test(`main.ts under ${runtime} keys by the first column and keeps the header's order and names`, async () => {
    await using p = await pipeline(`rows-${runtime}`);
    await p.write("years.csv", "id,2024,2025\nb1,x,y\n");
    await p.write("sku.csv", "sku,2023,2024\nA,1,1\nB,1,2\n");
    await p.write("odd.csv", "k,__proto__,constructor,toString\nz,p,c,t\n");
    const first = await p.ok({ runtime });
    assert.deepEqual(await p.fresh(), [
      'A={"sku":"A","2023":"1","2024":"1"}',
      'B={"sku":"B","2023":"1","2024":"2"}',
      'b1={"id":"b1","2024":"x","2025":"y"}',
      'z={"k":"z","__proto__":"p","constructor":"c","toString":"t"}',
    ], first.stderr);
    assert.match(first.stderr, /3 files scanned, 0 unchanged, 0 failed; 4 upserts/);

    await p.write("years.csv", "id,2024,2025\nb1,x,y2\n");
    const second = await p.ok({ runtime });
    assert.deepEqual(await p.fresh(), ['b1={"id":"b1","2024":"x","2025":"y2"}'], second.stderr);
  });
}

Deno.test("main.ts re-sends nothing to a user whose rows were sent as plain objects before", async () => {
  // main.ts as it was before rows kept their order: the row as a plain object, JSON.stringify'd.
  const source = await readFile(join(ROOT, "main.ts"), "utf8");
  const before = source.replace(
    "row.toJsonText()",
    "JSON.stringify(Object.fromEntries(row.header.map((name, i) => [name, row.values[i]])))",
  );
  assert.notEqual(before, source, "main.ts serialises rows with row.toJsonText()");
  // Beside main.ts, so that its imports resolve the same way.
  const oldMain = join(ROOT, `.main_before_rows_${crypto.randomUUID().slice(0, 8)}.ts`);
  await writeFile(oldMain, before);
  try {
    await using p = await pipeline("rows-upgrade");
    await p.write("products.csv", 'sku,name,price\nA1,"Desk ""XL""",10\nA2,Zoë,20\n');
    await p.ok({ main: oldMain });
    assert.equal((await p.fresh()).length, 2);
    const upgraded = await p.ok();
    assert.match(upgraded.stderr, /0 upserts, 0 deletes, 2 unchanged rows/, "re-parsed, not sent");
    assert.deepEqual(await p.fresh(), []);
  } finally {
    await rm(oldMain);
  }
});
