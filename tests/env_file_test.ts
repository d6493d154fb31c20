import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { loadEnvFile, parseEnvFile } from "../lib/_env_file.ts";

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

const PEM = [
  "-----BEGIN CERTIFICATE-----",
  "MIIBfzCCASWgAwIBAgIUY2FmZWJhYmVjYWZlYmFiZWNhZmViYWJlMAoGCCqGSM49",
  "BAMCMBUxEzARBgNVBAMMCnRlc3QgY2EgMTAeFw0yNTAxMDEwMDAwMDBaFw0zNTAx",
  "-----END CERTIFICATE-----",
].join("\n");

Deno.test("parseEnvFile() keeps a quoted value over several lines whole (a PEM)", () => {
  const env = parseEnvFile(
    [`KAFKA_SSL_CA_PEM="${PEM}"`, `SINGLE='${PEM}'`, "AFTER=1", ""].join("\n"),
  );
  assert.equal(env.get("KAFKA_SSL_CA_PEM"), PEM);
  assert.equal(env.get("SINGLE"), PEM);
  assert.equal(env.get("AFTER"), "1");
});

Deno.test("parseEnvFile() reads CRLF lines", () => {
  const env = parseEnvFile(`A=1\r\nB="x\r\ny"\r\n`);
  assert.deepEqual(Object.fromEntries(env), { A: "1", B: "x\ny" });
});

Deno.test("loadEnvFile() sets what is unset, never overrides a set variable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "statecast-env-" });
  const names = ["STATECAST_T_SET", "STATECAST_T_PEM", "STATECAST_T_NEW"];
  try {
    const file = join(dir, "creds.env");
    await Deno.writeTextFile(
      file,
      `STATECAST_T_SET=from-file\nSTATECAST_T_PEM="${PEM}"\nexport STATECAST_T_NEW=new\n`,
    );
    process.env.STATECAST_T_SET = "from-environment";
    const set = loadEnvFile(file, false);
    assert.deepEqual(set.sort(), ["STATECAST_T_NEW", "STATECAST_T_PEM"]);
    assert.equal(process.env.STATECAST_T_SET, "from-environment");
    assert.equal(process.env.STATECAST_T_PEM, PEM);
    assert.equal(process.env.STATECAST_T_NEW, "new");
    assert.deepEqual(loadEnvFile(join(dir, "missing.env"), true), []);
    assert.throws(() => loadEnvFile(join(dir, "missing.env"), false), /missing\.env/);
  } finally {
    for (const name of names) delete process.env[name];
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseEnvFile() keeps a '#' inside an unquoted value, as systemd, Docker Compose and sh do: only '#' after a space starts a comment", () => {
  const env = parseEnvFile(
    [
      "KAFKA_SASL_PASSWORD=s3cr#t",
      "export URL=http://host/page#part # the anchor stays",
      "TAB=a\t# a comment after a tab",
      "TWICE=first#1",
      "TWICE=second",
      "LAST=one",
      "LAST=two#2\r",
      'PEM="-----BEGIN CERTIFICATE-----',
      "INSIDE=not#a-variable",
      '-----END CERTIFICATE-----"',
    ].join("\n"),
  );
  assert.equal(env.get("KAFKA_SASL_PASSWORD"), "s3cr#t");
  assert.equal(env.get("URL"), "http://host/page#part");
  assert.equal(env.get("TAB"), "a");
  assert.equal(env.get("TWICE"), "second");
  assert.equal(env.get("LAST"), "two#2");
  assert.equal(env.get("INSIDE"), undefined);
  assert.match(env.get("PEM")!, /INSIDE=not#a-variable/);
});
