import assert from "node:assert/strict";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeUtf8, walkDir } from "../lib/localfs.ts";
import { StatecastError } from "../lib/errors.ts";

async function tree(files: string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "statecast-localfs-"));
  for (const f of files) {
    await mkdir(join(root, f, ".."), { recursive: true });
    await writeFile(join(root, f), "x");
  }
  return root;
}

const paths = async (root: string, options: Parameters<typeof walkDir>[1]) =>
  (await walkDir(root, options).scan()).map((i) => i.path);

Deno.test("walkDir() lists matching files at every depth, top level too, sorted", async () => {
  const root = await tree(["b.csv", "a/x.csv", "a/b/y.csv", "notes.txt", "a/z.CSV"]);
  try {
    assert.deepEqual(await paths(root, { include: ["**/*.csv"] }), [
      "a/b/y.csv",
      "a/x.csv",
      "b.csv",
    ]);
    assert.deepEqual(await paths(root, { include: ["**/*.csv"], recursive: false }), ["b.csv"]);
    assert.deepEqual(await paths(root, { include: ["**/*.csv"], exclude: ["a/b/**"] }), [
      "a/x.csv",
      "b.csv",
    ]);
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("walkDir() never lists hidden files, hidden folders or editor temp files", async () => {
  const root = await tree([
    "ok.csv",
    ".hidden.csv",
    ".git/x.csv",
    "sub/.a.csv.swp",
    "sub/b.csv~",
    "sub/#c.csv#",
    "sub/4913",
    "sub/d.csv.tmp",
  ]);
  try {
    assert.deepEqual(await paths(root, {}), ["ok.csv"]);
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("walkDir().scan() names a missing folder", async () => {
  await assert.rejects(
    walkDir("/nonexistent/statecast-data").scan(),
    (e: unknown) =>
      e instanceof StatecastError &&
      /"\/nonexistent\/statecast-data": it does not exist/.test(e.message),
  );
});

Deno.test("decodeUtf8() names the file and line of invalid UTF-8", () => {
  const bytes = new Uint8Array([...new TextEncoder().encode("a,b\n1,2\n3,"), 0xff, 0x0a]);
  assert.throws(() => decodeUtf8(bytes, "data/x.csv"), (e: unknown) => {
    assert.ok(e instanceof StatecastError);
    assert.equal(
      e.message,
      'Cannot decode "data/x.csv" line 3: invalid UTF-8 at byte 10; a file saved as Windows-1252 ' +
        'or Latin-1 must be saved as UTF-8 (Excel: "CSV UTF-8") or converted ' +
        "(iconv -f WINDOWS-1252 -t UTF-8)",
    );
    assert.equal(e.line, 3);
    return true;
  });
  // Excel's "Unicode Text" is UTF-16 with a byte order mark: say so, not "invalid at byte 0".
  const utf16 = new Uint8Array([0xff, 0xfe, 0x69, 0x00, 0x64, 0x00, 0x0a, 0x00]);
  assert.throws(
    () => decodeUtf8(utf16, "u.csv"),
    /^StatecastError: Cannot decode "u.csv" line 1: it is UTF-16 \(its byte order mark says so\)/,
  );
  assert.equal(decodeUtf8(new TextEncoder().encode("héllo ✓ 😀"), "y.csv"), "héllo ✓ 😀");
});

Deno.test("walkDir() lists an unreadable file as an item that fails when read, naming it", async () => {
  const root = await tree(["ok.csv"]);
  try {
    await symlink(join(root, "loop.csv"), join(root, "loop.csv")); // a symlink to itself
    const items = await walkDir(root, { include: ["**/*.csv"] }).scan();
    assert.deepEqual(items.map((i) => i.path), ["loop.csv", "ok.csv"]);
    await assert.rejects(items[0]!.bytes(), /Cannot read "loop.csv": .*(loop|ELOOP)/i);
    assert.equal(new TextDecoder().decode(await items[1]!.bytes()), "x");
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("FileItem.bytes() reads the file once, however often it is called", async () => {
  const root = await tree(["a.csv"]);
  try {
    const [item] = await walkDir(root).scan();
    assert.equal(new TextDecoder().decode(await item!.bytes()), "x");
    await rm(join(root, "a.csv")); // a second read from disk would fail now
    assert.equal(new TextDecoder().decode(await item!.bytes()), "x");
    assert.equal(await item!.text(), "x");
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("walkDir() skips a symbolic link that leads outside the root, warning once", async () => {
  const root = await tree(["ok.csv", "sub/x.csv"]);
  const outside = await tree(["secret.csv", "dir/y.csv"]);
  try {
    await symlink(join(outside, "secret.csv"), join(root, "out.csv"));
    await symlink(join(outside, "dir"), join(root, "linked")); // a folder link, seen in live mode
    const source = walkDir(root, { include: ["**/*.csv"] });
    assert.deepEqual((await source.scan()).map((i) => i.path), ["ok.csv", "sub/x.csv"]);
    assert.equal(await source.item("linked/y.csv"), undefined);
    const target = await realpath(join(outside, "secret.csv"));
    assert.deepEqual(source.takeWarnings(), [
      `"out.csv" is a symbolic link to "${target}", outside "${root}": skipped, as if the file ` +
      "were not there (walkDir option followExternalSymlinks: true follows it)",
      `"linked/y.csv" is a symbolic link to "${await realpath(join(outside, "dir", "y.csv"))}", ` +
      `outside "${root}": skipped, as if the file were not there (walkDir option ` +
      "followExternalSymlinks: true follows it)",
    ]);
    await source.scan();
    assert.deepEqual(source.takeWarnings(), [], "each warning is given once");

    const following = walkDir(root, { include: ["**/*.csv"], followExternalSymlinks: true });
    const items = await following.scan();
    assert.deepEqual(items.map((i) => i.path), ["ok.csv", "out.csv", "sub/x.csv"]);
    assert.equal(new TextDecoder().decode(await items[1]!.bytes()), "x");
    assert.deepEqual(following.takeWarnings(), []);
  } finally {
    await rm(root, { recursive: true });
    await rm(outside, { recursive: true });
  }
});

Deno.test("walkDir() follows a symbolic link to a file inside the root", async () => {
  const root = await tree(["raw/export.txt"]);
  try {
    await symlink(join(root, "raw", "export.txt"), join(root, "absolute.csv"));
    await mkdir(join(root, "sub"));
    await symlink(join("..", "raw", "export.txt"), join(root, "sub", "relative.csv"));
    const source = walkDir(root, { include: ["**/*.csv"] });
    const items = await source.scan();
    assert.deepEqual(items.map((i) => i.path), ["absolute.csv", "sub/relative.csv"]);
    for (const item of items) assert.equal(new TextDecoder().decode(await item.bytes()), "x");
    assert.deepEqual(source.takeWarnings(), []);
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("FileItem.csvRows() reads at the first next(), rejects a bad line once, and stops on break", async () => {
  const root = await mkdtemp(join(tmpdir(), "statecast-localfs-"));
  try {
    await writeFile(join(root, "a.csv"), "id,v\n1,x\n2,y\n3,z\n");
    await writeFile(join(root, "bad.csv"), 'id,v\n1,x\n2,"y\n');
    const [a, bad] = await walkDir(root).scan();
    const rows = a!.csvRows();
    await rm(join(root, "a.csv")); // not read yet: csvRows() itself reads nothing
    await assert.rejects(
      rows.next(),
      (e) => e instanceof StatecastError && /a\.csv/.test(e.message),
    );

    await writeFile(join(root, "a.csv"), "id,v\n1,x\n2,y\n3,z\n");
    const [again] = await walkDir(root).scan();
    const seen: string[] = [];
    for await (const row of again!.csvRows()) {
      seen.push(`${row.line}:${row.toJsonText()}`);
      if (row.values[0] === "2") break;
    }
    assert.deepEqual(seen, ['2:{"id":"1","v":"x"}', '3:{"id":"2","v":"y"}']);
    const all = again!.csvRows();
    assert.equal(all[Symbol.asyncIterator](), all);
    assert.deepEqual((await all.return(undefined)).done, true);
    assert.deepEqual(await all.next(), { value: undefined, done: true }, "after return(): done");

    const badRows = bad!.csvRows();
    assert.equal((await badRows.next()).value?.line, 2);
    await assert.rejects(
      badRows.next(),
      (e) => e instanceof StatecastError && e.path === "bad.csv" && e.line === 3,
    );
    assert.deepEqual(
      await badRows.next(),
      { value: undefined, done: true },
      "after an error: done",
    );
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("walkDir() warns once about a file that include skips only for its letter case", async () => {
  const root = await tree(["ORDERS.CSV", "b.csv", "notes.txt", ".hidden.CSV", "sub/Stock.Csv"]);
  try {
    const source = walkDir(root, { include: ["**/*.csv"] });
    assert.deepEqual((await source.scan()).map((i) => i.path), ["b.csv"]);
    const warnings = source.takeWarnings();
    assert.deepEqual(warnings.map((w) => /^"([^"]+)" is not read/.exec(w)?.[1]), [
      "ORDERS.CSV",
      "sub/Stock.Csv",
    ]);
    assert.match(warnings[0]!, /include globs \(\*\*\/\*\.csv\) match letter case exactly/);
    await source.scan();
    assert.deepEqual(source.takeWarnings(), [], "each file is named once");
    // Excluded on purpose, or matched: nothing to say.
    const excluded = walkDir(root, { include: ["**/*.csv"], exclude: ["ORDERS.CSV", "sub/**"] });
    await excluded.scan();
    assert.deepEqual(excluded.takeWarnings(), []);
    const both = walkDir(root, { include: ["**/*.csv", "**/*.CSV", "**/*.Csv"] });
    assert.equal((await both.scan()).length, 3);
    assert.deepEqual(both.takeWarnings(), []);
  } finally {
    await rm(root, { recursive: true });
  }
});
