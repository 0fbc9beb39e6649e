/**
 * Fetch v11 at the wire level: the request, the response's partitions and their complete record
 * batches, and RecordBatch v2 decoded in the response buffer — one object per record; keys,
 * values and header values are `Buffer` views of it (as kafkajs hands them out: `toString()`
 * decodes UTF-8), offsets and timestamps numbers (exact below 2^53). Control batches
 * (transaction markers) are skipped; under read_committed, aborted transactions' batches too.
 * Compression: gzip (node:zlib), snappy (the `snappy` package, raw or in the xerial framing of
 * Java producers) and zstd where node:zlib has it (Node 22.15+); an lz4 batch fails with an
 * error naming the codec and the fix. CRCs are not checked (kafkajs and librdkafka by default do
 * not either).
 */
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import { RxlakeError } from '../../../core/errors.ts';
import type { ClientMessage } from '../client.ts';
import { KafkaBrokerError, Reader, Writer, int64 } from './protocol.ts';

// RecordBatch v2 header fields (byte offsets from the batch start).
export const B_LENGTH = 8;
export const B_MAGIC = 16;
export const B_ATTRIBUTES = 21;
export const B_LAST_OFFSET_DELTA = 23;
export const B_BASE_TIMESTAMP = 27;
export const B_MAX_TIMESTAMP = 35;
export const B_PRODUCER_ID = 43;
export const B_COUNT = 57;
export const B_RECORDS = 61;

/** One partition of a Fetch request. */
export interface FetchPartition {
  readonly partition: number;
  readonly offset: number;
}

/** The fetch sizes and wait. */
export interface FetchSizes {
  readonly maxWaitMs: number;
  readonly minBytes: number;
  readonly maxBytes: number;
  readonly maxBytesPerPartition: number;
  readonly readCommitted: boolean;
}

/** A Fetch v11 request body (no fetch session). */
export function fetchRequest(sizes: FetchSizes, topics: ReadonlyMap<string, readonly FetchPartition[]>): Buffer {
  return new Writer()
    .i32(-1) // replica_id
    .i32(sizes.maxWaitMs)
    .i32(sizes.minBytes)
    .i32(sizes.maxBytes)
    .i8(sizes.readCommitted ? 1 : 0)
    .i32(0) // session_id: no fetch session
    .i32(-1) // session_epoch: no fetch session
    .array([...topics], (w, [topic, parts]) =>
      w.string(topic).array(parts, (v, p) =>
        v
          .i32(p.partition)
          .i32(-1) // current_leader_epoch: not checked
          .i64(p.offset)
          .i64(-1) // log_start_offset (followers only)
          .i32(sizes.maxBytesPerPartition),
      ),
    )
    .array([], () => undefined) // forgotten_topics_data
    .string('') // rack_id
    .bytes();
}

/** One partition's part of a Fetch response. */
export interface FetchedPartition {
  readonly topic: string;
  readonly partition: number;
  /** The broker's error code (0: none). */
  readonly error: number;
  readonly highWatermark: number;
  /** Complete batches' start positions in the response, in offset order. */
  readonly batches: number[];
  /** The offset after the last complete batch (the next fetch offset), or -1 if none. */
  readonly next: number;
  /** The part ended in a batch cut by the size limits. */
  readonly cut: boolean;
  /** Aborted transactions overlapping the fetched range, by first offset; null if none. */
  readonly aborted: Array<{ producerId: number; firstOffset: number }> | null;
}

/** Parses a Fetch v11 response (the whole body, from the correlation id on). */
export function parseFetch(body: Buffer): FetchedPartition[] {
  const r = new Reader(body, 4);
  r.i32(); // throttle_time_ms
  const error = r.i16();
  if (error !== 0) throw new KafkaBrokerError(error, 'Fetch');
  r.i32(); // session_id
  const out: FetchedPartition[] = [];
  r.array((x) => {
    const topic = x.string();
    x.array((y) => {
      const partition = y.i32();
      const pe = y.i16();
      const highWatermark = y.i64();
      y.i64(); // last_stable_offset
      y.i64(); // log_start_offset
      const naborted = y.i32();
      let aborted: FetchedPartition['aborted'] = null;
      if (naborted > 0) {
        aborted = [];
        for (let i = 0; i < naborted; i++) aborted.push({ producerId: y.i64(), firstOffset: y.i64() });
        aborted.sort((a, b) => a.firstOffset - b.firstOffset);
      }
      y.i32(); // preferred_read_replica
      const size = y.i32();
      const start = y.pos;
      const end = start + Math.max(0, size);
      y.pos = end;
      const batches: number[] = [];
      let next = -1;
      let p = start;
      // A batch cut by the size limits is left for the next fetch.
      while (end - p >= B_RECORDS && end - p >= 12 + body.readInt32BE(p + B_LENGTH)) {
        const magic = body.readInt8(p + B_MAGIC);
        if (magic !== 2) {
          throw new RxlakeError(`${topic} partition ${partition} offset ${int64(body, p)}: message format v${magic}; the wire fetcher decodes RecordBatch v2 (Kafka 0.11+) only: use the kafkajs client (KAFKA_CLIENT=kafkajs)`, { code: 'KAFKA_MESSAGE_FORMAT' });
        }
        batches.push(p);
        next = int64(body, p) + body.readInt32BE(p + B_LAST_OFFSET_DELTA) + 1;
        p += 12 + body.readInt32BE(p + B_LENGTH);
      }
      out.push({ topic, partition, error: pe, highWatermark, batches, next, cut: p < end, aborted });
    });
  });
  return out;
}

/** Where varint readers leave the position (one return value, no object per call). */
let at = 0;

/** A zigzag varint of up to 32 bits (lengths, offset deltas, counts). */
function varint(b: Uint8Array, p: number): number {
  let byte = b[p++] as number;
  let u = byte & 0x7f;
  let shift = 7;
  while (byte & 0x80) {
    if (shift > 28) throw new Error('malformed record: varint longer than 5 bytes');
    byte = b[p++] as number;
    u |= (byte & 0x7f) << shift;
    shift += 7;
  }
  at = p;
  return (u >>> 1) ^ -(u & 1);
}

/** A zigzag varlong (timestamp deltas) as a number. */
function varlong(b: Uint8Array, p: number): number {
  let byte: number;
  let r = 0;
  let mul = 1;
  do {
    byte = b[p++] as number;
    r += (byte & 0x7f) * mul;
    mul *= 128;
  } while (byte & 0x80);
  at = p;
  return r % 2 === 0 ? r / 2 : -(r + 1) / 2;
}

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const zstdDecompressSync = (zlib as { zstdDecompressSync?: (b: Uint8Array) => Buffer }).zstdDecompressSync;
let snappyUncompress: ((b: Uint8Array) => Buffer) | undefined;

/** The xerial framing of Java producers' snappy batches: a magic header, then length-prefixed blocks. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

function unsnappy(data: Buffer): Buffer {
  snappyUncompress ??= (() => {
    const { uncompressSync } = createRequire(import.meta.url)('snappy') as { uncompressSync: (b: Uint8Array, o: { asBuffer: true }) => Buffer };
    return (b: Uint8Array) => uncompressSync(b, { asBuffer: true });
  })();
  if (data.length < 16 || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return snappyUncompress(data);
  const parts: Buffer[] = [];
  for (let p = 16; p + 4 <= data.length; ) {
    const n = data.readInt32BE(p);
    parts.push(snappyUncompress(data.subarray(p + 4, p + 4 + n)));
    p += 4 + n;
  }
  return Buffer.concat(parts);
}

function decompress(codec: number, data: Buffer, where: string): Buffer {
  if (codec === 1) return zlib.gunzipSync(data);
  if (codec === 2) return unsnappy(data);
  if (codec === 4 && zstdDecompressSync) return zstdDecompressSync(data);
  const supported = `none, gzip, snappy${zstdDecompressSync ? ', zstd' : ' (zstd needs Node 22.15+)'}`;
  throw new RxlakeError(`${where}: a ${CODECS[codec] ?? `codec ${codec}`} compressed batch; the wire fetcher decodes ${supported}: use the kafkajs client (KAFKA_CLIENT=kafkajs) with a codec for it, or produce the topic with one of those`, { code: 'KAFKA_UNSUPPORTED_CODEC' });
}

/** A batch's records: `body` itself (from `pos + B_RECORDS`) or, compressed, their bytes decompressed (from 0). */
function recordBytes(body: Buffer, pos: number, attributes: number, part: FetchedPartition, baseOffset: number, counts: DecodeCounts): Buffer {
  const codec = attributes & 7;
  if (codec === 0) return body;
  counts.compressed++;
  return decompress(codec, body.subarray(pos + B_RECORDS, pos + 12 + body.readInt32BE(pos + B_LENGTH)), `${part.topic} partition ${part.partition} offset ${baseOffset}`);
}

/** What `decodeBatches` found besides the records (at or after `from`). */
export interface DecodeCounts {
  /** Control records (transaction markers). */
  control: number;
  /** Records of aborted transactions (read_committed). */
  aborted: number;
  /** Batches decompressed. */
  compressed: number;
}

/**
 * Decodes a partition's complete batches into `out` (records at or after `from` only): one
 * object per record, keys, values and header values as views of `body` (or of a batch's
 * decompressed bytes). `abortedPids` is scratch state, cleared here.
 */
export function decodeBatches(body: Buffer, part: FetchedPartition, from: number, out: ClientMessage[], abortedPids: Set<number>, counts: DecodeCounts): void {
  const aborted = part.aborted;
  abortedPids.clear();
  let a = 0;
  for (const pos of part.batches) {
    const baseOffset = int64(body, pos);
    const lastOffset = baseOffset + body.readInt32BE(pos + B_LAST_OFFSET_DELTA);
    if (aborted !== null) {
      for (; a < aborted.length && (aborted[a] as { firstOffset: number }).firstOffset <= lastOffset; a++) abortedPids.add((aborted[a] as { producerId: number }).producerId);
    }
    const attributes = body.readInt16BE(pos + B_ATTRIBUTES);
    const count = body.readInt32BE(pos + B_COUNT);
    const inRange = lastOffset - Math.max(baseOffset, from) + 1;
    if (attributes & 0x20) {
      // Control batch: one marker record, key = version int16, type int16 (0 abort, 1 commit).
      if (inRange > 0) counts.control += inRange;
      if (count > 0) {
        varint(body, pos + B_RECORDS); // length
        varlong(body, at + 1); // after the attributes: timestampDelta
        varint(body, at); // offsetDelta
        const keyLen = varint(body, at);
        if (keyLen >= 4 && body.readInt16BE(at + 2) === 0) abortedPids.delete(int64(body, pos + B_PRODUCER_ID));
      }
      continue;
    }
    if (attributes & 0x10 && abortedPids.size > 0 && abortedPids.has(int64(body, pos + B_PRODUCER_ID))) {
      if (inRange > 0) counts.aborted += inRange;
      continue;
    }
    if (lastOffset < from) continue;
    const buf = recordBytes(body, pos, attributes, part, baseOffset, counts);
    let p = buf === body ? pos + B_RECORDS : 0;
    const logAppendTime = (attributes & 0x08) !== 0;
    const baseTimestamp = int64(body, pos + B_BASE_TIMESTAMP);
    const maxTimestamp = int64(body, pos + B_MAX_TIMESTAMP);
    for (let i = 0; i < count; i++) {
      const len = varint(buf, p);
      const start = at;
      const tsDelta = varlong(buf, start + 1);
      const offset = baseOffset + varint(buf, at);
      if (offset < from) {
        p = start + len;
        continue;
      }
      const keyLen = varint(buf, at);
      const key = keyLen < 0 ? null : buf.subarray(at, at + keyLen);
      const valueLen = varint(buf, keyLen > 0 ? at + keyLen : at);
      const value = valueLen < 0 ? null : buf.subarray(at, at + valueLen);
      let q = valueLen > 0 ? at + valueLen : at;
      const nHeaders = varint(buf, q);
      let headers: Record<string, Uint8Array | Uint8Array[]> | undefined;
      if (nHeaders > 0) {
        headers = {};
        q = at;
        for (let h = 0; h < nHeaders; h++) {
          const hk = varint(buf, q);
          const name = buf.toString('utf8', at, at + hk);
          const hv = varint(buf, at + hk);
          // A null header value is read as empty bytes (as kafkajs does).
          const v = hv < 0 ? Buffer.alloc(0) : buf.subarray(at, at + hv);
          const prev = headers[name];
          headers[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
          q = hv > 0 ? at + hv : at;
        }
      }
      out.push(headers === undefined ? { offset, timestamp: logAppendTime ? maxTimestamp : baseTimestamp + tsDelta, key, value } : { offset, timestamp: logAppendTime ? maxTimestamp : baseTimestamp + tsDelta, key, value, headers });
      p = start + len;
    }
  }
}

/**
 * Counts a partition's records at or after `from` and sums their value lengths without making
 * an object per record: what reading costs at least (bench/clients/wire.ts `--mode views`). A
 * part with transactional or control batches goes through `decodeBatches` (not the floor).
 */
export function countBatches(body: Buffer, part: FetchedPartition, from: number, abortedPids: Set<number>, counts: DecodeCounts): { records: number; bytes: number } {
  let records = 0;
  let bytes = 0;
  if (part.batches.some((pos) => body.readInt16BE(pos + B_ATTRIBUTES) & 0x30)) {
    const out: ClientMessage[] = [];
    decodeBatches(body, part, from, out, abortedPids, counts);
    for (const m of out) bytes += m.value?.byteLength ?? 0;
    return { records: out.length, bytes };
  }
  for (const pos of part.batches) {
    const baseOffset = int64(body, pos);
    const attributes = body.readInt16BE(pos + B_ATTRIBUTES);
    const count = body.readInt32BE(pos + B_COUNT);
    const buf = recordBytes(body, pos, attributes, part, baseOffset, counts);
    let p = buf === body ? pos + B_RECORDS : 0;
    for (let i = 0; i < count; i++) {
      const len = varint(buf, p);
      const start = at;
      let q = start + 1; // attributes
      while ((buf[q++] as number) & 0x80); // timestampDelta, skipped
      const offset = baseOffset + varint(buf, q);
      const keyLen = varint(buf, at);
      const valueLen = varint(buf, keyLen > 0 ? at + keyLen : at);
      if (offset >= from) {
        records++;
        if (valueLen > 0) bytes += valueLen;
      }
      p = start + len;
    }
  }
  return { records, bytes };
}
