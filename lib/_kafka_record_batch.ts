/**
 * Kafka record batches (magic 2) written straight into one buffer: the bytes a produce request
 * carries for one partition. `@platformatic/kafka` builds each record from a dozen small
 * buffers and BigInt timestamps (about 4 KB of garbage per message in a first publish); this
 * writes a batch of 1,000 messages into one growing buffer and computes its CRC32C once.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** One record: key and value as text (UTF-8) or bytes (null: none, a tombstone's value). */
export interface BatchRecord {
  key: string | Uint8Array | null;
  value: string | Uint8Array | null;
  /** Header names and values, in order (the same array may serve many records). */
  headers?: ReadonlyArray<readonly [Uint8Array, Uint8Array]> | undefined;
}

/** What the batch header says besides its records. */
export interface BatchHeader {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** Milliseconds since the epoch, the same for every record of the batch. */
  timestamp: number;
}

/** One partition's part of a Produce request: its number, its records, their first sequence. */
export type PartitionRecords = readonly [
  partition: number,
  records: ReadonlyArray<BatchRecord>,
  baseSequence: number,
];

/** Writes record batches and Produce requests, reusing one buffer from one to the next. */
export class RecordBatchWriter {
  #buf = Buffer.allocUnsafe(1 << 20);
  #at = 0;

  /**
   * The batch of `records` as a fresh `Buffer` (a copy: the writer's own buffer is reused), CRC
   * filled in by `crc32c` (Castagnoli, of the bytes from the attributes on).
   */
  write(
    records: ReadonlyArray<BatchRecord>,
    header: BatchHeader,
    crc32c: (bytes: Uint8Array) => number,
  ): Buffer {
    this.#at = 0;
    this.#batch(records, header, header.baseSequence, crc32c);
    return Buffer.from(this.#buf.subarray(0, this.#at));
  }

  /**
   * The body of a Produce request (versions 9 to 12, the flexible ones: compact strings and
   * arrays, tagged fields) for one topic, `acks=all`: per partition its record batch, written in
   * place, so the body is the one copy made (a batch written apart and copied into the body made
   * two more, ~70 KB per 1,000 messages, each an array buffer outside the heap until collected).
   */
  request(
    topic: Uint8Array,
    partitions: ReadonlyArray<PartitionRecords>,
    header: Omit<BatchHeader, "baseSequence">,
    crc32c: (bytes: Uint8Array) => number,
    timeoutMs: number,
  ): Buffer {
    this.#at = 0;
    this.#ensure(16 + topic.length);
    this.#uvarint(0); // transactional id: null
    this.#at = this.#buf.writeInt16BE(-1, this.#at); // acks: all
    this.#at = this.#buf.writeInt32BE(timeoutMs, this.#at);
    this.#uvarint(2); // one topic
    this.#uvarint(topic.length + 1);
    this.#buf.set(topic, this.#at);
    this.#at += topic.length;
    this.#uvarint(partitions.length + 1);
    for (const [partition, records, baseSequence] of partitions) {
      this.#ensure(4 + 5);
      this.#at = this.#buf.writeInt32BE(partition, this.#at);
      // The batch goes 5 bytes in (room for its length as a varint), then moves back if shorter.
      const lengthAt = this.#at;
      this.#at += 5;
      this.#batch(records, header, baseSequence, crc32c);
      const length = this.#at - lengthAt - 5;
      this.#at = lengthAt;
      this.#uvarint(length + 1);
      if (this.#at < lengthAt + 5) {
        this.#buf.copyWithin(this.#at, lengthAt + 5, lengthAt + 5 + length);
      }
      this.#at += length;
      this.#uvarint(0); // partition's tagged fields
    }
    this.#uvarint(0); // topic's tagged fields
    this.#uvarint(0); // request's tagged fields
    return Buffer.from(this.#buf.subarray(0, this.#at));
  }

  /** Writes the batch of `records` from `#at` on, CRC filled in; `#at` ends after it. */
  #batch(
    records: ReadonlyArray<BatchRecord>,
    header: Omit<BatchHeader, "baseSequence">,
    baseSequence: number,
    crc32c: (bytes: Uint8Array) => number,
  ): void {
    const start = this.#at;
    this.#ensure(61);
    this.#at = start + 61; // the batch header, written below once the length is known
    for (let i = 0; i < records.length; i++) this.#record(records[i]!, i);
    const end = this.#at;
    const b = this.#buf; // after the records: they may have grown it
    b.writeBigInt64BE(0n, start); // base offset
    b.writeInt32BE(end - start - 12, start + 8); // batch length: from the partition leader epoch on
    b.writeInt32BE(-1, start + 12); // partition leader epoch
    b.writeInt8(2, start + 16); // magic
    b.writeInt16BE(0, start + 21); // attributes: no compression, create time, not transactional
    b.writeInt32BE(records.length - 1, start + 23); // last offset delta
    const ts = BigInt(header.timestamp);
    b.writeBigInt64BE(ts, start + 27); // base timestamp
    b.writeBigInt64BE(ts, start + 35); // max timestamp
    b.writeBigInt64BE(header.producerId, start + 43);
    b.writeInt16BE(header.producerEpoch, start + 51);
    b.writeInt32BE(baseSequence, start + 53);
    b.writeInt32BE(records.length, start + 57);
    b.writeUInt32BE(crc32c(b.subarray(start + 21, end)) >>> 0, start + 17);
  }

  #record(r: BatchRecord, offsetDelta: number): void {
    // The body goes 5 bytes in (room for its length as a varint), then moves back if shorter.
    const start = this.#at;
    this.#at = start + 5;
    this.#ensure(16);
    const b = this.#buf;
    b[this.#at++] = 0; // attributes
    b[this.#at++] = 0; // timestamp delta 0 (zigzag)
    this.#varint(offsetDelta);
    this.#bytes(r.key);
    this.#bytes(r.value);
    const headers = r.headers;
    this.#varint(headers === undefined ? 0 : headers.length);
    if (headers !== undefined) {
      for (const [name, value] of headers) {
        this.#bytes(name);
        this.#bytes(value);
      }
    }
    const body = this.#at - start - 5;
    const size = varintSize(body);
    this.#at = start;
    this.#varint(body);
    if (size < 5) this.#buf.copyWithin(start + size, start + 5, start + 5 + body);
    this.#at = start + size + body;
  }

  /** A length-prefixed field: text as UTF-8, bytes as they are, null as length -1. */
  #bytes(data: string | Uint8Array | null): void {
    if (data === null) {
      this.#varint(-1);
      return;
    }
    if (typeof data !== "string") {
      this.#varint(data.length);
      this.#ensure(data.length);
      this.#buf.set(data, this.#at);
      this.#at += data.length;
      return;
    }
    // ASCII (keys, JSON of plain text) is copied unit by unit: `Buffer.write` made a view and a
    // result object per field, ~370 MB of garbage per 1M messages under Deno, and took longer for
    // strings this short. Anything else, or a long text, is encoded by the runtime.
    const n = data.length;
    if (n <= ASCII_COPY_MAX) {
      this.#ensure(5 + n);
      if (copyAscii(data, this.#buf, this.#at + varintSize(n))) {
        this.#varint(n);
        this.#at += n;
        return;
      }
    }
    // At most 3 bytes per UTF-16 unit: reserve the varint for that, move back if shorter. The
    // room ensured covers the 5 bytes `#varint` asks for, else it would grow the buffer after
    // the text was written past `#at` and lose it.
    const most = n * 3;
    const room = varintSize(most);
    this.#ensure(5 + most);
    const written = this.#buf.write(data, this.#at + room, most, "utf8");
    const size = varintSize(written);
    this.#varint(written);
    if (size < room) {
      this.#buf.copyWithin(this.#at, this.#at + room - size, this.#at + room - size + written);
    }
    this.#at += written;
  }

  /** An unsigned varint (lengths and counts of the request's compact fields). */
  #uvarint(n: number): void {
    this.#ensure(5);
    const b = this.#buf;
    while (n >= 0x80) {
      b[this.#at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    b[this.#at++] = n;
  }

  /** A signed varint, zigzag encoded (values fit in 32 bits here). */
  #varint(n: number): void {
    this.#ensure(5);
    let v = (n << 1) ^ (n >> 31);
    const b = this.#buf;
    while ((v & ~0x7f) !== 0) {
      b[this.#at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[this.#at++] = v;
  }

  #ensure(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n));
    this.#buf.copy(bigger, 0, 0, this.#at);
    this.#buf = bigger;
  }
}

/** The longest text copied unit by unit when it is ASCII (longer: `Buffer.write`). */
export const ASCII_COPY_MAX = 512;

/**
 * Copies `text` into `to` from `at` if it is all ASCII (its UTF-8 bytes are then its UTF-16
 * units); false, with some bytes written, if it is not. `to` must have room for `text.length`.
 */
export function copyAscii(text: string, to: Uint8Array, at: number): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return false;
    to[at + i] = c;
  }
  return true;
}

/** Bytes of `n`'s zigzag varint. */
function varintSize(n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  let size = 1;
  while (v >= 0x80) {
    v >>>= 7;
    size++;
  }
  return size;
}
