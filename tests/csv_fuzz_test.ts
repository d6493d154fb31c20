// lib/csv.ts against 20,000 generated files (seeded): every record and its start line round-trip,
// csv-parse agrees on the rows, and damaged input only ever raises the parser's SyntaxError.
import assert from "node:assert/strict";

Deno.test("parseCsvRecords() round-trips 20,000 generated files (bench/csv_parsers/fuzz.ts)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "bench/csv_parsers/fuzz.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(
    text,
    /ok: 20000 random files, \d+ records round-tripped \(rows \+ start lines\), csv-parse agrees/,
  );
});
