// Canonical key forms per SQL type: two spellings of one row of the table are one key.
import assert from "node:assert/strict";
import {
  canonicalBoolean,
  canonicalInteger,
  canonicalNumeric,
  canonicalUuid,
  keyForm,
} from "../lib/_postgres_keys.ts";

Deno.test("canonicalInteger() reads what PostgreSQL reads as an integer, and refuses the rest", () => {
  const cases: Array<[string, string]> = [
    ["1", "1"],
    ["01", "1"],
    ["+007", "7"],
    [" -0 ", "0"],
    ["-012", "-12"],
  ];
  for (const [text, want] of cases) assert.equal(canonicalInteger(text), want, text);
  assert.equal(
    canonicalInteger("123456789012345678901234567890"),
    "123456789012345678901234567890",
  );
  for (const text of ["", "1.5", "1e3", "0x10", "abc", "1 2", "١"]) {
    assert.throws(() => canonicalInteger(text), RangeError, text);
  }
});

Deno.test("canonicalNumeric() writes one form per value, rounded to the column's scale as the server stores it", () => {
  const cases: Array<[string, number | undefined, string]> = [
    ["1.50", undefined, "1.5"],
    ["001.000", undefined, "1"],
    ["1e2", undefined, "100"],
    [".5", undefined, "0.5"],
    ["5.", undefined, "5"],
    ["-0.0", undefined, "0"],
    ["-0.00120", undefined, "-0.0012"],
    ["1.5E-3", undefined, "0.0015"],
    [" +12.3400 ", undefined, "12.34"],
    ["1.005", 2, "1.01"],
    ["-1.005", 2, "-1.01"],
    ["1.004", 2, "1"],
    ["0.004", 2, "0"],
    ["9.995", 2, "10"],
    ["2.5", 0, "3"],
    ["1234", -2, "1200"],
    ["nan", undefined, "NaN"],
    ["-inf", undefined, "-Infinity"],
    ["Infinity", 2, "Infinity"],
    ["1e200", undefined, "1e200"],
  ];
  for (const [text, scale, want] of cases) assert.equal(canonicalNumeric(text, scale), want, text);
  for (const text of ["", ".", "1.2.3", "e5", "1e", "abc", "-nan"]) {
    assert.throws(() => canonicalNumeric(text), RangeError, text);
  }
});

Deno.test("canonicalUuid() is lower case with hyphens, from every form PostgreSQL reads", () => {
  const want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
  for (
    const text of [
      want,
      want.toUpperCase(),
      `{${want}}`,
      want.replaceAll("-", ""),
      "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
    ]
  ) assert.equal(canonicalUuid(text), want, text);
  for (const text of [`{${want}`, ` ${want}`, want.slice(1), want + "0", "a0eebc99-"]) {
    assert.throws(() => canonicalUuid(text), RangeError, text);
  }
});

Deno.test("canonicalBoolean() is true or false from every form PostgreSQL reads", () => {
  for (const text of ["t", "TRUE", "tr", "y", "Yes", "on", "1", " true "]) {
    assert.equal(canonicalBoolean(text), "true", text);
  }
  for (const text of ["f", "False", "n", "NO", "of", "off", "0"]) {
    assert.equal(canonicalBoolean(text), "false", text);
  }
  for (const text of ["", "o", "2", "truee", "yess", "nope"]) {
    assert.throws(() => canonicalBoolean(text), RangeError, text);
  }
});

Deno.test("keyForm() follows the declared type: spelling, modifiers and constraints aside", () => {
  const form = (type: string, text: string) => keyForm(type)?.(text) ?? `as given: ${text}`;
  assert.equal(form("int", "01"), "1");
  assert.equal(form("INTEGER NOT NULL", "01"), "1");
  assert.equal(form("bigserial", "01"), "1");
  assert.equal(form("pg_catalog.int8", "01"), "1");
  assert.equal(form("int[]", "{1}"), "as given: {1}");
  assert.equal(form("integer array", "{1}"), "as given: {1}");
  assert.equal(form("numeric(10, 2)", "1.005"), "1.01");
  assert.equal(form("decimal", "1.005"), "1.005");
  assert.equal(form("numeric(4)", "1.5"), "2");
  assert.equal(
    form("uuid", "A0EEBC999C0B4EF8BB6D6BB9BD380A11"),
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  );
  assert.equal(form("bool", "yes"), "true");
  assert.equal(form("char(5)", "ab   "), "ab");
  assert.equal(form("character(5)", " ab "), " ab");
  assert.equal(form("character varying(3)", "abc  "), "abc");
  assert.equal(form("varchar(3)", "ab "), "ab ");
  assert.equal(form("varchar(2)", "é🙂  "), "é🙂");
  assert.equal(form("varchar", "ab "), "as given: ab ");
  assert.equal(form("citext", "ÉTÉ"), "été");
  assert.equal(form("text", "ABC "), "as given: ABC ");
  assert.equal(form("timestamptz", "2024-01-01"), "as given: 2024-01-01");
});
