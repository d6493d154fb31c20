/**
 * Markdown sections for the docs_to_kafka example: a file is cut at every heading (of any level),
 * and each section gets a GitHub-style anchor slug that is unique in its file.
 *
 * A small line scanner, not a full CommonMark parser (see README.md beside this file for why and
 * for what it does not see): it knows ATX headings (`## Title`), setext headings (`Title` over
 * `===` or `---`), fenced code blocks (a `# comment` inside one is not a heading), HTML comments
 * and YAML front matter (neither is part of any section).
 *
 * @module
 */

/** One section of a Markdown file. */
export interface Section {
  /** GitHub-style anchor, unique in the file; `""` for the text before the first heading. */
  slug: string;
  /** The heading's text as written (Markdown source); `""` for the text before the first heading. */
  title: string;
  /** The body: every line after the heading up to the next heading of any level, trimmed. */
  text: string;
  /** 1-based line of the heading (of the file's first line for the text before it). */
  line: number;
}

/**
 * Bump when {@linkcode markdownSections} or {@linkcode githubSlug} changes what they return:
 * `main.ts` passes it as the function's `version`, so every file is read again.
 */
export const SECTIONS_VERSION = "1";

interface Heading {
  title: string;
  /** Index of the heading's first line. */
  first: number;
  /** Index of the line after the heading (after a setext underline). */
  next: number;
}

/**
 * Cuts a Markdown text into sections: the text before the first heading (only when it is not
 * blank, with slug `""`), then one section per heading, in file order. Slugs follow GitHub:
 * the second `## Usage` of a file is `usage-1`, the third `usage-2`.
 *
 * @example
 * ```ts
 * import { markdownSections } from "./sections.ts";
 * const md = "Intro\n\n# Setup\n\n~~~sh\n# not a heading\n~~~\n\n## Setup\nAgain";
 * const got = markdownSections(md).map((s) => [s.slug, s.title, s.text]);
 * if (JSON.stringify(got) !== JSON.stringify([
 *   ["", "", "Intro"],
 *   ["setup", "Setup", "~~~sh\n# not a heading\n~~~"],
 *   ["setup-1", "Setup", "Again"],
 * ])) throw new Error(JSON.stringify(got));
 * ```
 */
export function markdownSections(markdown: string): Section[] {
  const lines = markdown.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  const start = frontMatterEnd(lines);
  const headings = findHeadings(lines, start);
  const unique = uniqueSlugs();
  const body = (from: number, to: number) => lines.slice(from, to).join("\n").trim();
  const sections: Section[] = [];
  const preamble = body(start, headings[0]?.first ?? lines.length);
  const preambleSlug = unique(""); // reserved even when there is no text before the first heading
  if (preamble !== "") sections.push({ slug: preambleSlug, title: "", text: preamble, line: 1 });
  headings.forEach((h, i) => {
    const text = body(h.next, headings[i + 1]?.first ?? lines.length);
    sections.push({ slug: unique(githubSlug(h.title)), title: h.title, text, line: h.first + 1 });
  });
  return sections;
}

/**
 * The anchor GitHub gives a heading, before de-duplication: inline Markdown removed (code spans,
 * emphasis, links keep their text, images and HTML tags go) and trimmed, lower case, every character that is
 * not a letter, mark, digit, `_`, space or `-` dropped, spaces turned to `-`.
 *
 * @example
 * ```ts
 * import { githubSlug } from "./sections.ts";
 * if (githubSlug("The `run()` API: *why*?") !== "the-run-api-why") throw new Error();
 * if (githubSlug("Foo & Bar") !== "foo--bar") throw new Error();
 * ```
 */
export function githubSlug(title: string): string {
  return title
    .replace(/!\[[^\]]*\]\([^)]*\)/g, "") // images: no text
    .replace(/\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])/g, "$1") // links: their text
    .replace(/<[^>]*>/g, "") // HTML tags
    .replace(/(?<![\p{L}\p{N}])_+|_+(?![\p{L}\p{N}])/gu, "") // _emphasis_, not snake_case
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** GitHub's de-duplication: `a`, `a-1`, `a-2`; a literal `a-1` heading after them is `a-1-1`. */
function uniqueSlugs(): (slug: string) => string {
  const counts = new Map<string, number>();
  return (slug) => {
    let result = slug;
    while (counts.has(result)) {
      const n = counts.get(slug)! + 1;
      counts.set(slug, n);
      result = `${slug}-${n}`;
    }
    counts.set(result, 0);
    return result;
  };
}

/** Index of the first line after a YAML front matter block (`---` ... `---`), else 0. */
function frontMatterEnd(lines: string[]): number {
  if (lines[0]?.trimEnd() !== "---") return 0;
  for (let i = 1; i < lines.length; i++) {
    if (/^(---|\.\.\.)[ \t]*$/.test(lines[i]!)) return i + 1;
  }
  return 0; // never closed: not front matter (a thematic break)
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$/;
const SETEXT_UNDERLINE = /^ {0,3}(=+|-+)[ \t]*$/;
const THEMATIC_BREAK = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
/** A list item or a block quote: ends a paragraph, and what follows it up to a blank line is its. */
const CONTAINER = /^ {0,3}(?:[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|>)/;
/** Indented code, a table row, an HTML block: cannot start a paragraph. */
const NOT_PARAGRAPH = /^(?: {4}|\t| {0,3}[<|])/;

/** The headings of `lines` from `start`, outside fenced code blocks and HTML comments. */
function findHeadings(lines: string[], start: number): Heading[] {
  const headings: Heading[] = [];
  let fence: string | undefined; // the opening fence's characters while inside a fenced block
  let inComment = false;
  let paragraph = -1; // first line of the paragraph a setext underline would make a heading
  let inOther = false; // in a list item, block quote, table or HTML block, until a blank line
  for (let i = start; i < lines.length; i++) {
    const line = lines[i]!;
    if (fence !== undefined) {
      if (closesFence(line, fence)) fence = undefined;
      continue;
    }
    if (inComment) {
      inComment = !line.includes("-->");
      continue;
    }
    const open = FENCE.exec(line);
    const atx = ATX.exec(line);
    let inParagraph = false; // this line is (or continues) a paragraph
    if (open && !(open[1]![0] === "`" && open[2]!.includes("`"))) {
      fence = open[1]!;
    } else if (/^ {0,3}<!--/.test(line) && !line.includes("-->", line.indexOf("<!--") + 4)) {
      inComment = true;
    } else if (atx) {
      const title = (atx[2] ?? "").replace(/(?:^|[ \t]+)#+$/, "").trim();
      headings.push({ title, first: i, next: i + 1 });
      inOther = false;
    } else if (paragraph >= 0 && SETEXT_UNDERLINE.test(line)) {
      const title = lines.slice(paragraph, i).map((l) => l.trim()).join(" ");
      headings.push({ title, first: paragraph, next: i + 1 });
    } else if (line.trim() === "" || THEMATIC_BREAK.test(line)) {
      inOther = false;
    } else if (CONTAINER.test(line) || (paragraph < 0 && NOT_PARAGRAPH.test(line))) {
      inOther = true;
    } else {
      if (paragraph < 0 && !inOther) paragraph = i;
      inParagraph = true;
    }
    if (!inParagraph) paragraph = -1;
  }
  return headings;
}

/** A closing fence: the same character, at least as long, nothing after it but spaces. */
function closesFence(line: string, fence: string): boolean {
  const m = /^ {0,3}(`+|~+)[ \t]*$/.exec(line);
  return m !== null && m[1]![0] === fence[0] && m[1]!.length >= fence.length;
}
