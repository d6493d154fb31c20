// README's "Customising the job" is true: each ```ts snippet under that heading is put into
// main.ts in place of the part it replaces (the processCsv function or the app.main() block),
// type-checked, and run as a job against the real broker; what landed is read back with kcat.
// The expected messages are written here, not taken from README, so a snippet that changes
// what it sends breaks its test.
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline, ROOT } from "./_pipeline.ts";

const HEADING = "## Customising the job";

/** What one snippet's job is given and what it must send. */
interface Scenario {
  /** Data files (path under DATA_DIR → content) of the first run. */
  files: Record<string, string>;
  /** The messages of the first run, as "key=value" ("key=null" for a tombstone), sorted. */
  sends: string[];
  /** The first run's exit code and what its stderr says. @default 0 */
  exitCode?: number;
  stderr?: RegExp;
  /** A second run after these changes (null deletes the file), and what it sends. */
  then?: { files: Record<string, string | null>; sends: string[] };
}

const SCENARIOS: Record<string, Scenario> = {
  "Metadata": {
    files: { "a.csv": "id,v\nk1,1\nk2,2\n" },
    sends: ['k1={"id":"k1","v":"1"}', 'k2={"id":"k2","v":"2"}'],
    // k1 moves to another file, k2 to another line: neither is sent again.
    then: { files: { "a.csv": "id,v\nk2,2\n", "b.csv": "id,v\nk1,1\n" }, sends: [] },
  },
  "A key of several columns": {
    files: { "stock.csv": "region,sku,qty\nEU,A1,3\nUS,A1,5\n" },
    sends: [
      'EU/A1={"region":"EU","sku":"A1","qty":"3"}',
      'US/A1={"region":"US","sku":"A1","qty":"5"}',
    ],
  },
  "Typed values": {
    files: {
      "a.csv": "sku,qty,price,active\nA1,3,9.5,true\nB2,0,,false\n",
      "b.csv": "sku,qty,price,active\nC3,1,2,true\nD4,many,1,true\n",
    },
    sends: [
      'A1={"sku":"A1","qty":3,"price":9.5,"active":true}',
      'B2={"sku":"B2","qty":0,"price":null,"active":false}',
    ],
    exitCode: 1,
    stderr: /"b\.csv": line 3: qty is not a whole number/,
  },
  "Delimiter": {
    files: { "eu/a.csv": "sku;name\nA1;Desk, oak\n", "us/b.csv": "sku,name\nB2,Chair\n" },
    sends: ['A1={"sku":"A1","name":"Desk, oak"}', 'B2={"sku":"B2","name":"Chair"}'],
  },
  "Files without a header row": {
    files: { "a.csv": "A1,Desk,3\nB2,Chair,5\n" },
    sends: [
      'A1={"sku":"A1","name":"Desk","qty":"3"}',
      'B2={"sku":"B2","name":"Chair","qty":"5"}',
    ],
  },
  "Which files: include and exclude": {
    files: {
      "a.csv": "id,v\na,1\n",
      "notes/b.txt": "id,v\nb,2\n",
      "archive/old.csv": "id,v\nc,3\n",
      "c_draft.csv": "id,v\nd,4\n",
      "e.json": "id,v\ne,5\n",
    },
    sends: ['a={"id":"a","v":"1"}', 'b={"id":"b","v":"2"}'],
  },
  "Duplicate keys": {
    files: { "a.csv": "id,v\nA1,old\nB2,x\nA1,new\n" },
    sends: ['A1={"id":"A1","v":"new"}', 'B2={"id":"B2","v":"x"}'],
  },
  "A deletion value instead of a tombstone": {
    files: { "a.csv": "id,v\nA1,1\nB2,2\n" },
    sends: ['A1={"id":"A1","v":"1"}', 'B2={"id":"B2","v":"2"}'],
    then: { files: { "a.csv": "id,v\nA1,1\n" }, sends: ['B2={"id":"B2","deleted":true}'] },
  },
};

/** The ```ts blocks under {@linkcode HEADING}, by the `###` heading above each. */
async function snippets(): Promise<Map<string, string>> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf(`\n${HEADING}\n`);
  assert.ok(start >= 0, `README.md has no "${HEADING}" section`);
  const end = readme.indexOf("\n## ", start + HEADING.length + 2);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const found = new Map<string, string>();
  for (const part of section.split(/\n### /).slice(1)) {
    const title = part.slice(0, part.indexOf("\n")).trim();
    const blocks = [...part.matchAll(/\n```ts\n([\s\S]*?)\n```\n/g)].map((m) => m[1]!);
    assert.ok(blocks.length <= 1, `"${title}" has ${blocks.length} ts snippets; give each its own`);
    if (blocks.length === 1) found.set(title, blocks[0]!);
  }
  return found;
}

/**
 * main.ts with the top-level statement that starts like `snippet` (`const processCsv = app.fn(`
 * or `app.main(`) replaced by it: from that line to the next line that starts with `)` or `}`.
 */
function intoMain(main: string, snippet: string): string {
  const start = ["const processCsv = app.fn(", "app.main("].find((s) => snippet.startsWith(s));
  assert.ok(
    start !== undefined,
    `a snippet must start with "const processCsv" or "app.main(":\n${snippet}`,
  );
  const from = main.indexOf(`\n${start}`);
  assert.ok(from >= 0, `main.ts has no line starting with "${start}": it changed shape`);
  const close = /\n[)}][^\n]*;\n/g;
  close.lastIndex = from + 1;
  const to = close.exec(main);
  assert.ok(to !== null, `main.ts: no end for the statement starting with "${start}"`);
  return main.slice(0, from + 1) + snippet + main.slice(to.index + to[0].length - 1);
}

/** Writes main.ts with `snippet` in it at the checkout's root (so that it resolves statecast). */
async function jobWith(title: string, snippet: string): Promise<string> {
  const main = await readFile(join(ROOT, "main.ts"), "utf8");
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, "_");
  const path = join(ROOT, `.readme_snippet_${slug}_${crypto.randomUUID().slice(0, 8)}.ts`);
  await writeFile(path, intoMain(main, snippet));
  return path;
}

async function writeFiles(data: string, files: Record<string, string | null>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    const full = join(data, path);
    if (text === null) await rm(full);
    else {
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, text);
    }
  }
}

const found = await snippets();

Deno.test("README's Customising the job: every snippet has a scenario here, and every scenario a snippet", () => {
  assert.deepEqual([...found.keys()].sort(), Object.keys(SCENARIOS).sort());
});

Deno.test("README's Customising the job: every snippet type-checks in main.ts", async () => {
  const paths = await Promise.all([...found].map(([title, code]) => jobWith(title, code)));
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", ...paths],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(
      out.code,
      0,
      stderr.split("\n").filter((l) => !/^(Warning| {4}at )/.test(l)).join("\n"),
    );
  } finally {
    await Promise.all(paths.map((path) => rm(path, { force: true })));
  }
});

for (const [title, scenario] of Object.entries(SCENARIOS)) {
  Deno.test(`README's Customising the job: "${title}" sends what it says`, async () => {
    const code = found.get(title);
    assert.ok(code !== undefined, `README.md has no ts snippet under "### ${title}"`);
    const main = await jobWith(title, code);
    await using p = await pipeline("readme");
    try {
      await writeFiles(p.data, scenario.files);
      const first = await p.run({ main });
      assert.equal(first.code, scenario.exitCode ?? 0, first.stderr);
      if (scenario.stderr) assert.match(first.stderr, scenario.stderr);
      assert.deepEqual(await p.fresh(), scenario.sends);
      if (scenario.then) {
        await writeFiles(p.data, scenario.then.files);
        const second = await p.run({ main });
        assert.equal(second.code, 0, second.stderr);
        assert.deepEqual(await p.fresh(), scenario.then.sends);
      }
    } finally {
      await rm(main, { force: true });
    }
  });
}
