/**
 * Kafka's murmur2, the hash by which the Java client (and librdkafka's `murmur2_random`) puts a
 * keyed message on a partition, in 32-bit integer arithmetic. `@platformatic/kafka`'s own does
 * the same with BigInt: about 700 bytes of garbage and a microsecond per key, a tenth of a
 * first publish's allocations (bench/RESULTS.md).
 *
 * @module
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's `Utils.murmur2(bytes)` of `data`'s first `length` bytes: a signed 32-bit hash. */
export function murmur2(data: Uint8Array, length = data.length): number {
  let h = SEED ^ length;
  const body = length & ~3;
  for (let i = 0; i < body; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  switch (length & 3) {
    case 3:
      h ^= data[body + 2]! << 16;
    // falls through
    case 2:
      h ^= data[body + 1]! << 8;
    // falls through
    case 1:
      h ^= data[body]!;
      h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h;
}

/**
 * The partition number before the modulo, as Kafka's `Utils.toPositive(murmur2(key))`: the
 * client takes it modulo the topic's partition count.
 */
export function murmur2Partition(key: Uint8Array, length = key.length): number {
  return murmur2(key, length) & 0x7fffffff;
}
