/**
 * Canonical text of primary key values, per SQL type. The engine compares keys as text, but a
 * table compares its primary key by the column's type: `1` and `01` are one `integer`, a uuid in
 * upper and in lower case is one `uuid`. The table target keys its declared states by the
 * canonical text, so two spellings of one row are one key (a duplicate in a file, the owner rule
 * across files), never two keys of which one deletes the row the other wrote.
 *
 * | declared type                                  | canonical text                                  |
 * | ---------------------------------------------- | ----------------------------------------------- |
 * | `smallint`, `integer`, `bigint`, `serial`, ... | the decimal integer (`+007` → `7`); else refused |
 * | `numeric(p,s)`, `decimal`                      | the value rounded to `s` as PostgreSQL does, without trailing zeros (`1.50` → `1.5`) |
 * | `uuid`                                         | lower case with hyphens; else refused           |
 * | `boolean`                                      | `true` / `false` from any form PostgreSQL reads (`t`, `yes`, `on`, `1`...); else refused |
 * | `char(n)`, `character(n)`                      | trailing spaces removed                         |
 * | `varchar(n)`                                   | spaces past `n` characters removed (PostgreSQL truncates them) |
 * | `citext`                                       | lower case (JavaScript's Unicode lower case)    |
 * | `text`, `varchar` and every other type         | unchanged: give such keys in one canonical form |
 *
 * @module
 */

/** Canonical text of one key value of a column, or a `RangeError` saying what was expected. */
export type KeyForm = (text: string) => string;

const INTEGER_TYPES = new Set([
  "smallint",
  "integer",
  "int",
  "bigint",
  "int2",
  "int4",
  "int8",
  "smallserial",
  "serial",
  "bigserial",
  "serial2",
  "serial4",
  "serial8",
]);

/** `type` as declared (`"int not null"`, `"numeric(10, 2)"`): its name and modifier, or none. */
function parseType(type: string): { name: string; modifier: string | undefined } | undefined {
  const m =
    /^(?:[a-z_][a-z0-9_]*\.)?(character varying|[a-z_][a-z0-9_]*)(?: ?\(([^)]*)\))?( ?\[| array\b)?/
      .exec(type.trim().toLowerCase().replace(/\s+/g, " "));
  if (m === null || m[3] !== undefined) return undefined; // arrays: unchanged
  return { name: m[1]!, modifier: m[2]?.replace(/ /g, "") };
}

/**
 * The canonical form of key values of a column declared as `type`, or undefined when values are
 * kept as given (text, and types statecast does not know).
 */
export function keyForm(type: string): KeyForm | undefined {
  const parsed = parseType(type);
  if (parsed === undefined) return undefined;
  const { name, modifier } = parsed;
  if (INTEGER_TYPES.has(name)) return canonicalInteger;
  switch (name) {
    case "numeric":
    case "decimal": {
      const [, scale] = (modifier ?? "").split(",");
      const s = modifier === undefined ? undefined : Number(scale ?? 0);
      return (text) => canonicalNumeric(text, s);
    }
    case "uuid":
      return canonicalUuid;
    case "boolean":
    case "bool":
      return canonicalBoolean;
    case "character":
    case "char":
    case "bpchar":
      return (text) => text.replace(/ +$/, "");
    case "character varying":
    case "varchar": {
      const n = Number(modifier);
      return Number.isInteger(n) && n > 0 ? (text) => withoutExcessSpaces(text, n) : undefined;
    }
    case "citext":
      return (text) => text.toLowerCase();
    default:
      return undefined;
  }
}

/** `text` as a decimal integer, as PostgreSQL reads one (spaces around, a sign, digits). */
export function canonicalInteger(text: string): string {
  if (!/^\s*[+-]?\d+\s*$/.test(text)) throw new RangeError("expected an integer");
  return BigInt(text.trim()).toString();
}

/**
 * `text` as a numeric value: rounded half away from zero to `scale` digits after the point when
 * the column has one (as the server stores it), then without leading or trailing zeros.
 */
export function canonicalNumeric(text: string, scale?: number): string {
  const special = /^\s*([+-]?)(nan|inf|infinity)\s*$/i.exec(text);
  if (special !== null) {
    if (special[2]!.toLowerCase() === "nan") {
      if (special[1] !== "") throw new RangeError("expected a number");
      return "NaN";
    }
    return `${special[1] === "-" ? "-" : ""}Infinity`;
  }
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?\s*$/i.exec(text);
  if (m === null || (m[2] === "" && (m[3] ?? "") === "")) throw new RangeError("expected a number");
  const fraction = m[3] ?? "";
  let digits = (m[2]! + fraction).replace(/^0+/, "");
  let exponent = Number(m[4] ?? 0) - fraction.length; // the value is digits × 10^exponent
  if (!Number.isSafeInteger(exponent)) throw new RangeError("expected a number");
  if (scale !== undefined && exponent < -scale) {
    const keep = digits.length - (-scale - exponent);
    const roundUp = keep >= 0 && keep < digits.length && digits[keep]! >= "5";
    digits = keep <= 0 ? "" : digits.slice(0, keep);
    if (roundUp) digits = (BigInt(digits || "0") + 1n).toString();
    exponent = -scale;
  }
  digits = digits.replace(/^0+/, "");
  if (digits === "") return "0";
  const trailing = digits.length - digits.replace(/0+$/, "").length;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  const sign = m[1] === "-" ? "-" : "";
  // Far from the point, scientific notation (which the server reads too) instead of zeros.
  if (exponent > 100 || exponent < -100 - digits.length) return `${sign}${digits}e${exponent}`;
  if (exponent >= 0) return sign + digits + "0".repeat(exponent);
  const point = digits.length + exponent;
  return point > 0
    ? `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
    : `${sign}0.${"0".repeat(-point)}${digits}`;
}

/** `text` as a uuid in lower case with hyphens, from any form PostgreSQL reads. */
export function canonicalUuid(text: string): string {
  const m = /^(\{?)([0-9a-f]{4}(?:-?[0-9a-f]{4}){7})(\}?)$/i.exec(text);
  if (m === null || m[1]!.length !== m[3]!.length) throw new RangeError("expected a uuid");
  const hex = m[2]!.replaceAll("-", "").toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/**
 * `text` as `true` or `false`, from the forms PostgreSQL reads: any prefix of `true`, `false`,
 * `yes` or `no`, `on`, `of(f)`, `1` and `0`, in any case, spaces around.
 */
export function canonicalBoolean(text: string): string {
  const t = text.trim().toLowerCase();
  if (t !== "") {
    if ("true".startsWith(t) || "yes".startsWith(t) || t === "on" || t === "1") return "true";
    if ("false".startsWith(t) || "no".startsWith(t) || "off".startsWith(t) && t.length >= 2) {
      return "false";
    }
    if (t === "0") return "false";
  }
  throw new RangeError("expected a boolean (true, false, yes, no, on, off, 1, 0)");
}

/** `text` without the spaces past `n` characters, which `varchar(n)` drops. */
function withoutExcessSpaces(text: string, n: number): string {
  if (text.length <= n || !text.endsWith(" ")) return text;
  const chars = [...text];
  if (chars.length <= n || chars.slice(n).some((c) => c !== " ")) return text;
  return chars.slice(0, n).join("");
}
