import assert from "node:assert/strict";
import { type Declared, reconcile } from "../lib/reconcile.ts";

const A = "00000000000000aa", B = "00000000000000bb";
const declared = (fp: string): Declared<{ key: string }> => ({
  state: { key: "k" },
  fingerprint: fp,
});

const table: Array<
  [string, Declared<{ key: string }> | undefined, string | undefined, string | null]
> = [
  ["a new key is an upsert", declared(A), undefined, "upsert"],
  ["a changed value is an upsert", declared(B), A, "upsert"],
  ["an unchanged value is nothing", declared(A), A, null],
  ["a key nobody declares any more is a delete", undefined, A, "delete"],
  ["a key never declared and not declared is nothing", undefined, undefined, null],
];

for (const [name, decl, previous, expected] of table) {
  Deno.test(`reconcile(): ${name}`, () => {
    const action = reconcile(decl, previous);
    assert.equal(action === null ? null : action.kind, expected);
    if (action?.kind === "upsert") assert.equal(action.state, decl!.state);
  });
}
