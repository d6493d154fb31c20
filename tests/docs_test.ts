// The public API can be learnt from its docs: `deno doc --lint lib/mod.ts` is clean, and every
// symbol lib/mod.ts exports (namespace members too) has a summary and an @example. The examples
// themselves run in `deno task test` (`deno test --doc lib/`), so an example that stops passing
// fails the gate there.
import assert from "node:assert/strict";
import { ROOT } from "./_pipeline.ts";

/**
 * Examples that cannot run without a server (marked `ts ignore`), each with the test that runs
 * the same code instead.
 */
const NOT_RUN: Record<string, string> = {
  "kafka.connectProducer": "tests/kafka_client_e2e_test.ts (main.ts connects with it)",
  "postgres.mountTableTarget": "tests/postgres_e2e_test.ts (examples/csv_to_postgres/main.ts)",
};

/** Exports still without an @example: none now. Keep it that way. */
const NO_EXAMPLE_YET = new Set<string>();

interface DocTag {
  kind: string;
  doc?: string;
}
interface DocDeclaration {
  kind: string;
  location: { filename: string; line: number };
  jsDoc?: { doc?: string; tags?: DocTag[] };
  def?: { elements?: DocSymbol[] };
}
interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}

async function deno(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Every exported symbol, namespace members as `ns.name`, with where it is declared. */
async function exportedSymbols(): Promise<Array<{ name: string; declaration: DocDeclaration }>> {
  const { code, stdout, stderr } = await deno("doc", "--json", "lib/mod.ts");
  assert.equal(code, 0, stderr);
  const nodes = JSON.parse(stdout).nodes as Record<string, { symbols: DocSymbol[] }>;
  const mod = Object.values(nodes)[0]!;
  const found: Array<{ name: string; declaration: DocDeclaration }> = [];
  const walk = (symbols: DocSymbol[], prefix: string) => {
    for (const symbol of symbols) {
      for (const declaration of symbol.declarations) {
        if (declaration.kind === "namespace") {
          walk(declaration.def?.elements ?? [], `${prefix}${symbol.name}.`);
        } else if (declaration.kind !== "reference") {
          found.push({ name: prefix + symbol.name, declaration });
        }
      }
    }
  };
  walk(mod.symbols, "");
  return found;
}

Deno.test("deno doc --lint lib/mod.ts reports no error", async () => {
  const { code, stderr } = await deno("doc", "--lint", "lib/mod.ts");
  const errors = stderr.split("\n").filter((line) => line.startsWith("error"));
  assert.equal(code, 0, errors.join("\n"));
});

Deno.test("every export of lib/mod.ts has a summary and an @example that runs", async () => {
  const symbols = await exportedSymbols();
  assert.ok(symbols.length > 50, `only ${symbols.length} symbols: did deno doc --json change?`);
  const problems: string[] = [];
  for (const { name, declaration } of symbols) {
    const where = `${declaration.location.filename.replace(/^.*\/lib\//, "lib/")}:` +
      declaration.location.line;
    const summary = declaration.jsDoc?.doc?.trim() ?? "";
    const examples = (declaration.jsDoc?.tags ?? []).filter((t) => t.kind === "example");
    if (summary === "") problems.push(`${name} (${where}) has no summary`);
    if (examples.length === 0) {
      if (!NO_EXAMPLE_YET.has(name)) problems.push(`${name} (${where}) has no @example`);
    } else if (NO_EXAMPLE_YET.has(name)) {
      problems.push(`${name} has an @example now: remove it from NO_EXAMPLE_YET`);
    }
    const ignored = examples.some((t) => /^```ts\s+ignore/.test(t.doc ?? ""));
    if (ignored && NOT_RUN[name] === undefined) {
      problems.push(`${name} (${where}): its @example is \`ts ignore\`; make it run`);
    }
  }
  for (const name of Object.keys(NOT_RUN)) {
    if (!symbols.some((s) => s.name === name)) problems.push(`NOT_RUN names ${name}: not exported`);
  }
  assert.deepEqual(problems, []);
});
