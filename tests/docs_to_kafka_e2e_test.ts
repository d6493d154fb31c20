// examples/docs_to_kafka/main.ts end to end, run as a user runs it, on the real broker, read back
// with kcat: one message per Markdown section keyed "path#slug", one message per edited section,
// a tombstone per section of a deleted file, a tombstone and an upsert for a renamed heading, and
// nothing for a run with nothing changed.
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Pipeline, pipeline, ROOT } from "./_pipeline.ts";

const MAIN = join(ROOT, "examples", "docs_to_kafka", "main.ts");

const GUIDE = `Read this first.

# Guide

Welcome.

## Install

\`\`\`sh
# a shell comment, not a heading
npm i widget
\`\`\`

## Example

one

## Example

two
`;

const FAQ = "# FAQ\n\n## Why?\n\nBecause.\n";

/** "key=value" as `fresh()` shows a section's message. */
const msg = (path: string, slug: string, title: string, text: string) =>
  `${path}#${slug}=${JSON.stringify({ path, title, text })}`;

function docs(p: Pipeline) {
  return {
    run: () => p.ok({ main: MAIN, env: { DOCS_DIR: p.data } }),
    write: async (path: string, text: string) => {
      await mkdir(join(p.data, path, ".."), { recursive: true });
      await writeFile(join(p.data, path), text);
    },
  };
}

Deno.test("docs_to_kafka sends every section, then one message per edit, and tombstones a deleted file's sections", async () => {
  await using p = await pipeline("docs");
  const d = docs(p);
  await d.write("guide.md", GUIDE);
  await d.write("sub/faq.md", FAQ);

  const first = await d.run();
  assert.match(first.stderr, /2 files scanned, 0 unchanged, 0 failed; 7 upserts, 0 deletes/);
  assert.deepEqual(
    await p.fresh(),
    [
      msg("guide.md", "", "", "Read this first."),
      msg("guide.md", "example", "Example", "one"),
      msg("guide.md", "example-1", "Example", "two"),
      msg("guide.md", "guide", "Guide", "Welcome."),
      msg(
        "guide.md",
        "install",
        "Install",
        "```sh\n# a shell comment, not a heading\nnpm i widget\n```",
      ),
      msg("sub/faq.md", "faq", "FAQ", ""),
      msg("sub/faq.md", "why", "Why?", "Because."),
    ].sort(),
  );

  const again = await d.run();
  assert.match(again.stderr, /2 files scanned, 2 unchanged, 0 failed; 0 upserts, 0 deletes/);
  assert.deepEqual(await p.fresh(), [], "a second run sends nothing");

  await d.write("guide.md", GUIDE.replace("Welcome.", "Welcome, reader."));
  await d.run();
  assert.deepEqual(await p.fresh(), [msg("guide.md", "guide", "Guide", "Welcome, reader.")]);

  await d.write(
    "guide.md",
    GUIDE.replace("Welcome.", "Welcome, reader.").replace("## Install", "## Setup"),
  );
  await d.run();
  assert.deepEqual(await p.fresh(), [
    "guide.md#install=null",
    msg("guide.md", "setup", "Setup", "```sh\n# a shell comment, not a heading\nnpm i widget\n```"),
  ], "a renamed heading: the old key's tombstone and the new key");

  await rm(join(p.data, "sub", "faq.md"));
  const removed = await d.run();
  assert.match(removed.stderr, /0 upserts, 2 deletes/);
  assert.deepEqual(await p.fresh(), ["sub/faq.md#faq=null", "sub/faq.md#why=null"]);

  await d.run();
  assert.deepEqual(await p.fresh(), [], "nothing changed: nothing sent");
});

Deno.test("docs_to_kafka reads its sample docs/ folder when DOCS_DIR is unset, under Bun too", async () => {
  await using p = await pipeline("docs-sample");
  await p.ok({ main: MAIN, unset: ["DOCS_DIR", "DATA_DIR"], runtime: "bun" });
  const landed = await p.fresh();
  assert.deepEqual(landed.map((m) => m.slice(0, m.indexOf("="))).sort(), [
    "getting-started.md#",
    "getting-started.md#configuration",
    "getting-started.md#example",
    "getting-started.md#example-1",
    "getting-started.md#first-run",
    "getting-started.md#getting-started",
    "getting-started.md#install",
    "guides/live-mode.md#live-mode",
    "guides/live-mode.md#what-it-does-not-do",
    "guides/live-mode.md#when-to-use-it",
  ]);
  assert.ok(
    landed.includes(
      msg(
        "guides/live-mode.md",
        "what-it-does-not-do",
        "What it does not do",
        "It never creates topics; create the topic first.",
      ),
    ),
    landed.join("\n"),
  );
});
