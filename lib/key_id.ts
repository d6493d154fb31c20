/**
 * Key ids: the string a key is compared and stored by. A key is `string` or `Uint8Array`, and a
 * string is its UTF-8 bytes, so `"x"` and the bytes of `"x"` are one key with one id.
 *
 * A string key is itself (made well-formed, as its UTF-8 bytes are); a byte key is its UTF-8
 * decoding when valid, else a marker plus one char per byte. A lone high surrogate cannot come
 * out of a valid decoding except as the first half of a pair, so the marker cannot collide.
 *
 * @module
 */

/**
 * A key as a user declares it: a string is its UTF-8 bytes, so `"x"` and the bytes of `"x"` are
 * one key ({@linkcode keyId}).
 *
 * @example
 * ```ts
 * import { type Key, keyId } from "./mod.ts";
 * const keys: Key[] = ["A1", new TextEncoder().encode("A1")];
 * if (new Set(keys.map(keyId)).size !== 1) throw new Error();
 * ```
 */
export type Key = string | Uint8Array;

const BINARY_MARKER = "\uD800";
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The string a key is compared by. Same bytes, same id.
 *
 * @example
 * ```ts
 * import { keyId } from "./key_id.ts";
 * if (keyId("x") !== keyId(new TextEncoder().encode("x"))) throw new Error();
 * ```
 */
export function keyId(key: Key): string {
  if (typeof key === "string") return key.isWellFormed() ? key : key.toWellFormed();
  try {
    return strictDecoder.decode(key);
  } catch {
    let s = BINARY_MARKER;
    for (const b of key) s += String.fromCharCode(b);
    return s;
  }
}

/**
 * Whether a key id stands for bytes that are not UTF-8. A valid decoding can also start with
 * U+D800, but only as the high half of a surrogate pair (U+10000 to U+103FF); a binary id's marker
 * is followed by a character below U+0100.
 */
function isBinaryId(id: string): boolean {
  if (!id.startsWith(BINARY_MARKER)) return false;
  const next = id.charCodeAt(1);
  return !(next >= 0xdc00 && next <= 0xdfff);
}

/**
 * The key to send for a key id: the string itself, or the original bytes.
 *
 * @example
 * ```ts
 * import { keyFromId, keyId } from "./key_id.ts";
 * const bytes = new Uint8Array([0xff, 0x00]);
 * if (String(keyFromId(keyId(bytes))) !== String(bytes)) throw new Error();
 * ```
 */
export function keyFromId(id: string): Key {
  if (!isBinaryId(id)) return id;
  const bytes = new Uint8Array(id.length - 1);
  for (let i = 1; i < id.length; i++) bytes[i - 1] = id.charCodeAt(i);
  return bytes;
}

/** A key id for messages: printable, at most 80 characters. */
export function showKey(id: string): string {
  const shown = isBinaryId(id) ? `<${id.length - 1} bytes>` : JSON.stringify(id);
  return shown.length > 80 ? shown.slice(0, 77) + "..." : shown;
}
