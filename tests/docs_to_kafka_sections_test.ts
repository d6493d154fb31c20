import assert from "node:assert/strict";
import { githubSlug, markdownSections } from "../examples/docs_to_kafka/sections.ts";

/** [slug, title, text] of every section, the shape most tests compare. */
const cut = (md: string) => markdownSections(md).map((s) => [s.slug, s.title, s.text]);

Deno.test("markdownSections() cuts at every heading level and trims each body", () => {
  const md = "# Guide\n\nWelcome.\n\n## Install\n\n  npm i x  \n\n### Linux\n\napt-get\n";
  assert.deepEqual(cut(md), [
    ["guide", "Guide", "Welcome."],
    ["install", "Install", "npm i x"],
    ["linux", "Linux", "apt-get"],
  ]);
});

Deno.test("markdownSections() gives the text before the first heading the slug '' and no title", () => {
  assert.deepEqual(cut("Some intro.\n\n# A\nbody"), [["", "", "Some intro."], ["a", "A", "body"]]);
  assert.deepEqual(cut("\n  \n# A\nbody"), [["a", "A", "body"]], "a blank preamble is no section");
  assert.deepEqual(cut("just text\n"), [["", "", "just text"]]);
  assert.deepEqual(cut(""), []);
});

Deno.test("markdownSections() sees no heading inside fenced code blocks", () => {
  const md = [
    "# Run",
    "```sh",
    "# a shell comment",
    "## another",
    "```",
    "~~~~",
    "# tilde fence",
    "~~~", // too short to close a four-tilde fence
    "# still code",
    "~~~~",
    "# After",
    "x",
  ].join("\n");
  assert.deepEqual(cut(md).map(([slug]) => slug), ["run", "after"]);
  assert.equal(markdownSections(md)[0]!.text.split("\n").length, 9, "the code is the body");
});

Deno.test("markdownSections() runs an unclosed fence to the end of the file", () => {
  assert.deepEqual(cut("# A\n```\n# not\n").map(([slug]) => slug), ["a"]);
});

Deno.test("markdownSections() knows a backtick line with a backtick info string is no fence", () => {
  // ``` `x` is an inline code span, not a fence opener: the heading after it is real.
  assert.deepEqual(cut("``` `x`\n# Real\nbody").map(([slug]) => slug), ["", "real"]);
});

Deno.test("markdownSections() follows CommonMark's ATX rules", () => {
  const md = [
    "#no-space is text",
    "    # indented four: code",
    "   ### Closed ###",
    "## Hash# inside #",
    "#",
    "#### ####",
  ].join("\n");
  assert.deepEqual(cut(md).map(([, title]) => title), ["", "Closed", "Hash# inside", "", ""]);
});

Deno.test("markdownSections() reads setext headings, one or several lines", () => {
  const md = "Title\n=====\nintro\n\nTwo\nlines\n---\nbody\n";
  assert.deepEqual(cut(md), [["title", "Title", "intro"], ["two-lines", "Two lines", "body"]]);
});

Deno.test("markdownSections() takes no thematic break or list for a setext heading", () => {
  const md = [
    "# A",
    "",
    "---", // a thematic break: no paragraph above
    "- item",
    "lazy continuation",
    "---", // a thematic break after a list
    "> quote",
    "---",
    "    code",
    "---",
    "| a | b |",
    "| - | - |",
    "| 1 | 2 |",
    "---", // ends the table
    "text",
    "- - -", // spaces: a thematic break, not an underline
  ].join("\n");
  assert.deepEqual(cut(md).map(([slug]) => slug), ["a"]);
});

Deno.test("markdownSections() skips YAML front matter and HTML comments", () => {
  const md = "---\ntitle: x\n---\nIntro\n<!--\n# old heading\n-->\n# New\n<!-- # inline -->\nbody";
  assert.deepEqual(cut(md), [
    ["", "", "Intro\n<!--\n# old heading\n-->"],
    ["new", "New", "<!-- # inline -->\nbody"],
  ]);
});

Deno.test("markdownSections() numbers repeated slugs as GitHub does", () => {
  const md = "# Usage\n# Usage\n# Usage-1\n# Usage\n# !!!\n";
  assert.deepEqual(cut(md).map(([slug]) => slug), [
    "usage",
    "usage-1",
    "usage-1-1",
    "usage-2",
    "-1",
  ]);
});

Deno.test("markdownSections() reads CRLF and a BOM, and gives each heading's line", () => {
  const sections = markdownSections("\uFEFFintro\r\n\r\n# A\r\nx\r\ny\r\n\r\nB\r\n-\r\n");
  assert.deepEqual(sections.map((s) => [s.slug, s.text, s.line]), [
    ["", "intro", 1],
    ["a", "x\ny", 3],
    ["b", "", 7],
  ]);
});

Deno.test("githubSlug() lowers, drops punctuation and turns spaces into dashes", () => {
  const cases: Array<[string, string]> = [
    ["Getting Started", "getting-started"],
    ["What's new in v2.0?", "whats-new-in-v20"],
    ["Foo & Bar", "foo--bar"],
    ["snake_case and __init__", "snake_case-and-init"],
    ["The `run()` function", "the-run-function"],
    ["See [the docs](http://x.y/z) ![logo](l.png)", "see-the-docs"],
    ["<code>x</code> tag", "x-tag"],
    ["Ünïcödé Straße 東京", "ünïcödé-straße-東京"],
    ["emoji 🚀 here", "emoji--here"],
    ["a-b -- c", "a-b----c"],
  ];
  for (const [title, slug] of cases) assert.equal(githubSlug(title), slug, title);
});
