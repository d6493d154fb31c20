// Where a keyed message lands is Kafka's murmur2 of the key bytes: ours must agree with the Java
// client's own test vectors and with @platformatic/kafka's (BigInt) implementation, which the
// adapter used before and which the partition end-to-end tests check against kcat.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { compatibilityPartitioner } from "@platformatic/kafka";
import { murmur2, murmur2Partition } from "../lib/_kafka_murmur2.ts";

Deno.test("murmur2() gives the Java client's values (Kafka's UtilsTest)", () => {
  const vectors: Array<[string, number]> = [
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ];
  for (const [text, want] of vectors) assert.equal(murmur2(Buffer.from(text)), want, text);
});

Deno.test("murmur2Partition() agrees with platformatic's compatibilityPartitioner", () => {
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 5000; i++) {
    // every length 0-40 (each tail case), high bytes (sign bits), and multi-byte UTF-8 text
    const key = i % 3 === 2
      ? Buffer.from(`Zoë-🙂-${i}`.repeat(1 + (i % 4)))
      : Buffer.from(Array.from({ length: i % 41 }, () => Math.floor(random() * 256)));
    const want = compatibilityPartitioner(undefined as never, key);
    assert.equal(murmur2Partition(key), want, key.toString("hex"));
    assert.ok(want >= 0);
  }
});
