import assert from "node:assert/strict";
import { parseEnvFile } from "../lib/_env_file.ts";

Deno.test("parseEnvFile() reads NAME=value lines, quotes, export and comments", () => {
  const env = parseEnvFile(
    [
      "# a comment",
      "A=1",
      "export B = two words # trailing comment",
      'C="quoted # not a comment\\nnext"',
      "D='single $literal'",
      "E=",
      'F="quoted" # a comment after quotes',
      "G='single' # too",
      "not a line",
      "",
    ].join("\n"),
  );
  assert.deepEqual(Object.fromEntries(env), {
    A: "1",
    B: "two words",
    C: "quoted # not a comment\nnext",
    D: "single $literal",
    E: "",
    F: "quoted",
    G: "single",
  });
});
