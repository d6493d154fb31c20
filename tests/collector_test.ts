// The collector of a running component (lib/_collector.ts): what it keeps when a key comes twice.
import assert from "node:assert/strict";
import { Collector } from "../lib/_collector.ts";
import { StatecastError } from "../lib/errors.ts";

const target = { id: "t", fingerprint: (s: { key: string; v: number }) => String(s.v) };

Deno.test("a duplicate key fails with both lines and leaves the first declaration standing", () => {
  const c = new Collector("a.csv", "error");
  c.line = 2;
  c.declare(target, { key: "k", v: 1 });
  c.line = 4;
  assert.throws(
    () => c.declare(target, { key: "k", v: 2 }),
    (e: unknown) =>
      e instanceof StatecastError && /declared at line 2 and again at line 4/.test(e.message),
  );
  // A function that catches the error and goes on keeps the first state, as before the table.
  assert.equal(c.byTarget.get("t")!.get("k")!.fingerprint, "1");
  assert.equal(c.count, 1);
});

Deno.test("with onDuplicateKey last, the later declaration wins in the first one's place", () => {
  const c = new Collector("a.csv", "last");
  c.declare(target, { key: "k", v: 1 });
  c.declare(target, { key: "j", v: 5 });
  c.declare(target, { key: "k", v: 2 });
  assert.deepEqual([...c.byTarget.get("t")!].map(([id, x]) => [id, x.fingerprint]), [["k", "2"], [
    "j",
    "5",
  ]]);
  assert.equal(c.count, 2);
});
