// The record batches statecast writes itself (lib/_kafka_record_batch.ts): read back by the client's
// own reader, field by field, with the CRC checked by an independent (table) CRC32C.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { crc32c, jsCRC32C, Reader, readRecordsBatch } from "@platformatic/kafka";
import {
  type BatchRecord,
  type PartitionRecords,
  RecordBatchWriter,
} from "../lib/_kafka_record_batch.ts";

Deno.test("RecordBatchWriter writes batches the client reads back, CRC and all", () => {
  const writer = new RecordBatchWriter();
  const h = [[Buffer.from("statecast-source"), Buffer.from("data/ö.csv")]] as const;
  // Lengths around the varint edges (63/64, 8191/8192 bytes), text of 1-4 byte characters,
  // bytes, null keys and values, and a batch past the writer's first 1 MiB.
  const sizes = [0, 1, 63, 64, 65, 8191, 8192, 8193, 70_000];
  const records: BatchRecord[] = [];
  for (const n of sizes) {
    records.push({ key: `k${n}`, value: "a".repeat(n), headers: h });
    records.push({ key: Buffer.from(`b${n}`), value: Buffer.alloc(n, 7) });
    records.push({ key: "é🙂".repeat(n % 97), value: "Zoë".repeat(n % 50), headers: [] });
  }
  // Text that is ASCII up to its last unit, around the length below which ASCII is copied unit
  // by unit (512): the copy starts, stops, and the runtime encodes it all again.
  for (const n of [1, 2, 63, 64, 65, 511, 512, 513, 514]) {
    records.push({ key: "x".repeat(n - 1) + "\u0080", value: "a".repeat(n - 1) + "🙂" });
    records.push({ key: "é" + "x".repeat(n - 1), value: "a".repeat(n) });
  }
  records.push({ key: null, value: null });
  for (let i = 0; i < 2000; i++) records.push({ key: `k${i}`, value: "v".repeat(600), headers: h });
  for (
    const header of [
      {
        producerId: 4321n,
        producerEpoch: 3,
        baseSequence: 2 ** 31 - 5,
        timestamp: 1_764_000_000_123,
      },
      { producerId: 0n, producerEpoch: 0, baseSequence: 0, timestamp: 0 },
    ]
  ) {
    const bytes = writer.write(records, header, crc32c);
    assert.ok(bytes.length > 1 << 20);
    const batch = readRecordsBatch(Reader.from(bytes));
    assert.equal(batch.magic, 2);
    assert.equal(batch.length, bytes.length - 12);
    assert.equal(batch.crc, jsCRC32C(bytes.subarray(21)), "the CRC covers attributes to the end");
    assert.equal(batch.attributes, 0);
    assert.equal(batch.producerId, header.producerId);
    assert.equal(batch.producerEpoch, header.producerEpoch);
    assert.equal(batch.firstSequence, header.baseSequence);
    assert.equal(batch.firstTimestamp, BigInt(header.timestamp));
    assert.equal(batch.lastOffsetDelta, records.length - 1);
    assert.equal(batch.records.length, records.length);
    const bytesOf = (x: string | Uint8Array | null) =>
      x === null ? null : typeof x === "string" ? Buffer.from(x, "utf8") : Buffer.from(x);
    batch.records.forEach((r, i) => {
      const want = records[i]!;
      assert.equal(r.offsetDelta, i);
      assert.equal(r.timestampDelta, 0n);
      assert.deepEqual(r.key === null ? null : Buffer.from(r.key), bytesOf(want.key), `key ${i}`);
      assert.deepEqual(
        r.value === null ? null : Buffer.from(r.value),
        bytesOf(want.value),
        `value ${i}`,
      );
      assert.deepEqual(
        r.headers.map(([k, v]) => [String(k), String(v)]),
        (want.headers ?? []).map((
          [k, v],
        ) => [Buffer.from(k).toString(), Buffer.from(v).toString()]),
      );
    });
  }
});

Deno.test("RecordBatchWriter keeps a one-character text value that ends where its buffer must grow", () => {
  // A 1-character string reserves 4 bytes (its length varint and 3 bytes of text) but its varint
  // asks for 5: when those 4 bytes end the buffer, the buffer grows after the text was written
  // and must keep it. A bytes key ends exactly where the writer reserved room, so some first
  // record size puts the value there; try every offset around the writer's first 1 MiB.
  const bytesOf = (x: string | Uint8Array | null) =>
    x === null ? null : typeof x === "string" ? Buffer.from(x, "utf8") : Buffer.from(x);
  for (let n = (1 << 20) - 140; n < (1 << 20) - 100; n++) {
    const records: BatchRecord[] = [
      { key: null, value: Buffer.alloc(n, 1) },
      { key: Buffer.alloc(32, 2), value: "é" },
      { key: "k", value: "1" },
    ];
    const bytes = new RecordBatchWriter().write(
      records,
      { producerId: 1n, producerEpoch: 0, baseSequence: 0, timestamp: 0 },
      crc32c,
    );
    const batch = readRecordsBatch(Reader.from(bytes));
    batch.records.forEach((r, i) => {
      const want = records[i]!;
      assert.deepEqual(r.key === null ? null : Buffer.from(r.key), bytesOf(want.key), `key ${i}`);
      assert.deepEqual(Buffer.from(r.value!), bytesOf(want.value), `value ${i} (n = ${n})`);
    });
  }
});

Deno.test("RecordBatchWriter.request writes a Produce body the client's reader takes apart", () => {
  // The batches are written in place, 5 bytes after their partition number, then moved back to
  // their length's varint: sizes around its edges (127/128 and 16383/16384 bytes with the +1 of
  // a compact length) and one past the writer's first 1 MiB.
  const writer = new RecordBatchWriter();
  const topic = Buffer.from("orders-ö", "utf8");
  const header = { producerId: 77n, producerEpoch: 2, timestamp: 1_764_000_000_000 };
  const recordsOf = (n: number, size: number): BatchRecord[] =>
    Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: "v".repeat(size) }));
  const lengthOf = (records: BatchRecord[]) =>
    writer.write(records, { ...header, baseSequence: 0 }, crc32c).length;
  // One-record batches whose lengths run across the edges, each its own partition.
  const sized = [...Array(60).keys()].flatMap((
    i,
  ) => [recordsOf(1, 40 + i), recordsOf(1, 16290 + i)]);
  const lengths = new Set(sized.map(lengthOf));
  for (const edge of [127, 16383]) {
    assert.ok(
      lengths.has(edge) && lengths.has(edge + 1),
      `batches of ${edge} and ${edge + 1} bytes`,
    );
  }
  const partitions = [
    ...sized.map((records, i) => [i, records, 10 * i] as const),
    [999, recordsOf(3000, 400), 2 ** 31 - 2] as const, // ~1.3 MB
  ];
  const body = writer.request(topic, partitions, header, crc32c, 30_000);
  const r = Reader.from(body);
  assert.equal(r.readUnsignedVarInt(), 0, "transactional id: null");
  assert.equal(r.readInt16(), -1, "acks: all");
  assert.equal(r.readInt32(), 30_000);
  const topics = r.readArray((t) => {
    const name = t.readString();
    const parts = t.readArray((p) => {
      const index = p.readInt32();
      const batch = readRecordsBatch(Reader.from(p.readBytes()));
      return { index, batch };
    });
    return { name, parts };
  });
  r.readTaggedFields();
  assert.equal(r.remaining, 0, "nothing after the request's tagged fields");
  assert.equal(topics.length, 1);
  assert.equal(topics[0]!.name, "orders-ö");
  assert.deepEqual(topics[0]!.parts.map((p) => p.index), partitions.map(([p]) => p));
  topics[0]!.parts.forEach(({ batch }, i) => {
    const [, records, baseSequence] = partitions[i]!;
    assert.equal(batch.firstSequence, baseSequence);
    assert.equal(batch.producerId, 77n);
    assert.equal(batch.records.length, records.length);
    assert.equal(String(batch.records.at(-1)!.key), records.at(-1)!.key);
    assert.equal(String(batch.records.at(-1)!.value), records.at(-1)!.value);
  });
});

Deno.test("RecordBatchWriter.request frames, byte for byte, the batches write() makes", () => {
  // The body as it was built before batches were written in place: each batch written apart,
  // then copied after its partition number and its length+1 as an unsigned varint. Lengths+1 on
  // both sides of each varint edge (127/128, 16383/16384, 2097151/2097152), on a fresh writer
  // (its first 1 MiB grows in the middle of a batch) and on one reused.
  const header = { producerId: 9_000_000_001n, producerEpoch: 3, timestamp: 1_764_000_000_000 };
  const h = [[Buffer.from("statecast-source"), Buffer.from("data/ö.csv")]] as const;
  const probe = new RecordBatchWriter();
  const recordsOf = (size: number, pad = 0): BatchRecord[] => [
    { key: "k1", value: "v".repeat(size >> 1) },
    { key: "k2", value: "v".repeat(size - (size >> 1)), headers: [] },
    { key: "g".repeat(1 + pad), value: null },
  ];
  const batchOf = (records: ReadonlyArray<BatchRecord>, baseSequence: number) =>
    probe.write(records, { ...header, baseSequence }, crc32c);
  const uvarint = (n: number) => {
    const out: number[] = [];
    for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
    return [...out, n];
  };
  const reference = (topic: Buffer, partitions: ReadonlyArray<PartitionRecords>) => {
    const head = Buffer.alloc(7);
    head.writeInt16BE(-1, 1); // after a null transactional id (0): acks
    head.writeInt32BE(30_000, 3);
    const parts = partitions.map(([p, records, sequence]) => {
      const batch = batchOf(records, sequence);
      const number = Buffer.alloc(4);
      number.writeInt32BE(p);
      return [number, Buffer.from(uvarint(batch.length + 1)), batch, Buffer.from([0])];
    });
    return Buffer.concat([
      head,
      Buffer.from([2, ...uvarint(topic.length + 1)]),
      topic,
      Buffer.from(uvarint(partitions.length + 1)),
      ...parts.flat(),
      Buffer.from([0, 0]),
    ]);
  };
  const base = batchOf(recordsOf(0), 0).length;
  // Varints' edges inside the batch skip some lengths: a longer tombstone key fills them in.
  const recordsSized = (length: number) => {
    for (let size = Math.max(0, length - base - 40); size <= length - base; size++) {
      for (let pad = 0; pad < 5; pad++) {
        const records = recordsOf(size, pad);
        if (batchOf(records, 0).length === length) return records;
      }
    }
  };
  const reused = new RecordBatchWriter();
  for (const edge of [127, 16383, 2097151]) {
    for (const delta of [-1, 0, 1, 2]) {
      const want = edge + delta - 1; // the batch length whose length+1 is edge + delta
      const sized = recordsSized(want);
      assert.ok(sized, `a batch of ${want} bytes`);
      const partitions: PartitionRecords[] = [
        [0, [{ key: "a", value: "ü", headers: h }, { key: "", value: "" }], 5],
        [7, sized, 2 ** 31 - 2],
        [2, [{ key: null, value: null }], 0],
      ];
      const topic = Buffer.from("orders-ö", "utf8");
      for (const writer of [new RecordBatchWriter(), reused]) {
        const body = writer.request(topic, partitions, header, crc32c, 30_000);
        assert.ok(body.equals(reference(topic, partitions)), `length+1 ${edge + delta}`);
      }
    }
  }
});
