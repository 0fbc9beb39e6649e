/**
 * Reading a topic at the Kafka wire level: what reading costs in Node without a Kafka client.
 * Fetch responses are decoded straight from the buffers they arrive in; record keys and values
 * are `Uint8Array` views of those buffers, offsets and timestamps are numbers.
 *
 *   node [--import tsx] bench/clients/wire.ts --topic <topic> [--mode views|objects]
 *        [--expected <N>] [--isolation read_committed|read_uncommitted] [--buffers reuse|fresh]
 *
 * Like `kcat -C -e`: no consumer group, every partition of the topic assigned statically, read
 * from its earliest offset to the end offset it had at the start (the high-water mark, or the
 * last stable offset under read_committed), then exit. One TCP connection per partition leader;
 * ApiVersions v0, Metadata v7, ListOffsets v4 (earliest and latest), then Fetch v11 with the
 * job's fetch sizes and wait (as bench/clients/consume.ts). Fetches are pipelined: as soon as a
 * response is in, its batch headers give every partition's next offset, the next Fetch goes out,
 * and the records are decoded while the broker prepares it.
 *
 * Modes:
 *   views    counts records and sums their value lengths while walking the records' varints; no
 *            object per record (the floor)
 *   objects  one small object per record ({ offset, timestamp, key, value, headers }: numbers and
 *            views), pushed into an array per batch, as the source's `ClientMessage` would cost
 *
 * Buffers: `--buffers reuse` (the default in views mode) takes a response's buffer back for the
 * next responses once its records are decoded; `--buffers fresh` (the default in objects mode)
 * allocates every response afresh, as a client must when the views it hands out outlive the
 * fetch. Objects mode with `reuse` is a measurement only: this command drops the records at once.
 *
 * RecordBatch v2 (magic 2) only. Control batches (transaction markers) are skipped; under
 * read_committed, aborted transactions' batches are skipped too. A batch cut by the fetch's size
 * limits is read again by the next fetch. Compression: none and gzip (node:zlib), and zstd where
 * node:zlib has it (Node 22.15+); snappy and lz4 batches fail with an error naming the codec.
 * CRCs are not checked (librdkafka's default, `check.crcs=false`).
 *
 * Prints one JSON line in the shape of consume.ts's: records, bytes, seconds from the start to
 * the last record (`seconds`), to the first record (`firstRecordSeconds`), CPU seconds of the
 * whole process over that span and peak RSS (VmHWM); plus the topic's offset ranges, control
 * and aborted records. Exits 1 when the records read, control and aborted records do not add up
 * to the offset ranges, or do not match `--expected`.
 * Brokers: `KAFKA_BOOTSTRAP_SERVERS` (default 127.0.0.1:9092).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { cpuMeter, peakRssMb } from '../measure.ts';

// ---------------------------------------------------------------------------------------------
// Protocol: APIs, versions, error codes
// ---------------------------------------------------------------------------------------------

const API_FETCH = 1;
const API_LIST_OFFSETS = 2;
const API_METADATA = 3;
const API_VERSIONS = 18;
/** The versions spoken here: the newest non-flexible ones (no tagged fields) of each API. */
const VERSIONS: ReadonlyArray<readonly [key: number, name: string, version: number]> = [
  [API_FETCH, 'Fetch', 11],
  [API_LIST_OFFSETS, 'ListOffsets', 4],
  [API_METADATA, 'Metadata', 7],
];

const ERRORS: Readonly<Record<number, string>> = {
  1: 'OFFSET_OUT_OF_RANGE',
  3: 'UNKNOWN_TOPIC_OR_PARTITION',
  5: 'LEADER_NOT_AVAILABLE',
  6: 'NOT_LEADER_OR_FOLLOWER',
  7: 'REQUEST_TIMED_OUT',
  29: 'TOPIC_AUTHORIZATION_FAILED',
  35: 'UNSUPPORTED_VERSION',
  74: 'FENCED_LEADER_EPOCH',
  75: 'UNKNOWN_LEADER_EPOCH',
};

function kafkaError(code: number, what: string): Error {
  return new Error(`${what}: broker error ${code} (${ERRORS[code] ?? 'see the Kafka protocol error codes'}); this reader does not retry: run it again once the topic is healthy`);
}

// ---------------------------------------------------------------------------------------------
// Request encoding and response parsing (requests are small; the hot path is decodeBatch below)
// ---------------------------------------------------------------------------------------------

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private n = 0;
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(b, 0, 0, this.n);
    this.buf = b;
  }
  i8(v: number): this {
    this.room(1);
    this.n = this.buf.writeInt8(v, this.n);
    return this;
  }
  i16(v: number): this {
    this.room(2);
    this.n = this.buf.writeInt16BE(v, this.n);
    return this;
  }
  i32(v: number): this {
    this.room(4);
    this.n = this.buf.writeInt32BE(v, this.n);
    return this;
  }
  i64(v: number): this {
    this.room(8);
    this.n = this.buf.writeBigInt64BE(BigInt(v), this.n);
    return this;
  }
  string(s: string | null): this {
    if (s === null) return this.i16(-1);
    const len = Buffer.byteLength(s);
    this.i16(len);
    this.room(len);
    this.n += this.buf.write(s, this.n);
    return this;
  }
  array<T>(items: readonly T[], each: (w: this, item: T) => void): this {
    this.i32(items.length);
    for (const item of items) each(this, item);
    return this;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.n);
  }
}

class Reader {
  pos: number;
  readonly buf: Buffer;
  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }
  i8(): number {
    return this.buf.readInt8(this.pos++);
  }
  i16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** An int64 as a number (offsets, timestamps, producer ids: below 2^53). */
  i64(): number {
    const v = int64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }
  string(): string {
    const s = this.nullableString();
    if (s === null) throw new Error(`malformed response: null string at byte ${this.pos}`);
    return s;
  }
  nullableString(): string | null {
    const len = this.i16();
    if (len < 0) return null;
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  array<T>(each: (r: this) => T): T[] {
    const n = this.i32();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(each(this));
    return out;
  }
}

function int64(b: Buffer, p: number): number {
  return b.readInt32BE(p) * 4294967296 + b.readUInt32BE(p + 4);
}

// ---------------------------------------------------------------------------------------------
// A connection: framed requests, responses assembled into one buffer each
// ---------------------------------------------------------------------------------------------

interface Waiting {
  readonly correlationId: number;
  readonly what: string;
  readonly resolve: (body: Buffer) => void;
  readonly reject: (err: Error) => void;
}

/**
 * One TCP connection to a broker. Responses come back in request order; each is assembled into
 * a buffer of its own (its size is its first 4 bytes), so the records of a Fetch response stay
 * contiguous and can be handed out as views. The socket reads into one reused buffer (`onread`):
 * no buffer allocated per read, one copy into the response.
 */
class Connection {
  private readonly waiting: Waiting[] = [];
  private nextId = 1;
  private readonly sizeBytes = Buffer.alloc(4);
  private sizeFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private failure: Error | undefined;
  /** Responses handed back once read (nothing kept a view of them), reused for the next ones. */
  private readonly spare: Buffer[] = [];
  private readonly socket: Socket;
  readonly address: string;
  private readonly clientId: string;

  private constructor(address: string, clientId: string, socket: (conn: Connection) => Socket) {
    this.address = address;
    this.clientId = clientId;
    this.socket = socket(this);
  }

  static open(address: string, clientId: string): Promise<Connection> {
    const [host = '127.0.0.1', port = '9092'] = address.split(/:(?=\d+$)/);
    const readBuffer = Buffer.allocUnsafe(256 * 1024);
    return new Promise((resolve, reject) => {
      const conn = new Connection(address, clientId, (c) =>
        connect({
          host,
          port: Number(port),
          noDelay: true,
          onread: {
            buffer: readBuffer,
            callback: (n) => {
              c.feed(readBuffer, n);
              return true;
            },
          },
        }),
      );
      conn.socket.once('connect', () => resolve(conn));
      conn.socket.on('error', (err) => {
        conn.fail(new Error(`connection to ${address}: ${err.message}`));
        reject(err);
      });
      conn.socket.on('close', () => conn.fail(new Error(`connection to ${address} closed`)));
    });
  }

  request(apiKey: number, apiVersion: number, payload: Buffer, what: string): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const correlationId = this.nextId++;
    const header = new Writer().i32(0).i16(apiKey).i16(apiVersion).i32(correlationId).string(this.clientId).bytes();
    header.writeInt32BE(header.length - 4 + payload.length, 0);
    return new Promise<Buffer>((resolve, reject) => {
      this.waiting.push({ correlationId, what, resolve, reject });
      this.socket.write(Buffer.concat([header, payload]));
    });
  }

  /** Takes back a response buffer that nothing holds a view of any more. */
  recycle(body: Buffer): void {
    if (this.spare.length < 2) this.spare.push(body);
  }

  private allocate(size: number): Buffer {
    const i = this.spare.findIndex((b) => b.buffer.byteLength >= size);
    if (i >= 0) {
      const b = this.spare.splice(i, 1)[0]!;
      return Buffer.from(b.buffer, 0, size);
    }
    // Its own ArrayBuffer (not the pool): views into it keep only this response alive. Large
    // ones are rounded up to the MiB, so that a recycled one fits the next response.
    return Buffer.allocUnsafeSlow(size < 2 ** 20 ? size : Math.ceil(size / 2 ** 20) * 2 ** 20).subarray(0, size);
  }

  close(): void {
    this.failure ??= new Error(`connection to ${this.address} closed`);
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }

  private feed(chunk: Buffer, n: number): void {
    let p = 0;
    while (p < n) {
      let body = this.body;
      if (body === undefined) {
        const k = Math.min(4 - this.sizeFill, n - p);
        chunk.copy(this.sizeBytes, this.sizeFill, p, p + k);
        p += k;
        this.sizeFill += k;
        if (this.sizeFill < 4) return;
        this.sizeFill = 0;
        body = this.body = this.allocate(this.sizeBytes.readInt32BE(0));
        this.bodyFill = 0;
      }
      const k = Math.min(body.length - this.bodyFill, n - p);
      chunk.copy(body, this.bodyFill, p, p + k);
      p += k;
      this.bodyFill += k;
      if (this.bodyFill === body.length) {
        this.body = undefined;
        this.deliver(body);
      }
    }
  }

  private deliver(body: Buffer): void {
    const w = this.waiting.shift();
    const id = body.readInt32BE(0);
    if (w === undefined || w.correlationId !== id) {
      this.fail(new Error(`connection to ${this.address}: response ${id} does not answer the oldest request ${w?.correlationId ?? '(none)'}`));
      this.socket.destroy();
      return;
    }
    w.resolve(body);
  }
}

// ---------------------------------------------------------------------------------------------
// Set-up: versions, leaders, offset ranges
// ---------------------------------------------------------------------------------------------

async function checkVersions(conn: Connection): Promise<void> {
  const body = await conn.request(API_VERSIONS, 0, Buffer.alloc(0), 'ApiVersions');
  const r = new Reader(body, 4);
  const error = r.i16();
  if (error !== 0) throw kafkaError(error, 'ApiVersions');
  const ranges = new Map(r.array((x) => [x.i16(), [x.i16(), x.i16()] as const] as const));
  for (const [key, name, version] of VERSIONS) {
    const [min, max] = ranges.get(key) ?? [-1, -1];
    if (version < min || version > max) throw new Error(`the broker at ${conn.address} speaks ${name} v${min}–v${max}; this reader needs ${name} v${version} (Kafka 2.3 to 4.x)`);
  }
}

interface Leaders {
  readonly brokers: ReadonlyMap<number, string>;
  /** Partition → leader's node id. */
  readonly partitions: ReadonlyMap<number, number>;
}

async function leaders(conn: Connection, topic: string): Promise<Leaders> {
  const req = new Writer()
    .array([topic], (w, t) => w.string(t))
    .i8(0) // allow_auto_topic_creation
    .bytes();
  const r = new Reader(await conn.request(API_METADATA, 7, req, 'Metadata'), 4);
  r.i32(); // throttle_time_ms
  const brokers = new Map(r.array((x) => {
    const id = x.i32();
    const host = x.string();
    const port = x.i32();
    x.nullableString(); // rack
    return [id, `${host}:${port}`] as const;
  }));
  r.nullableString(); // cluster_id
  r.i32(); // controller_id
  const partitions = new Map<number, number>();
  r.array((x) => {
    const error = x.i16();
    const name = x.string();
    x.i8(); // is_internal
    const parts = x.array((y) => {
      const pe = y.i16();
      const partition = y.i32();
      const leader = y.i32();
      y.i32(); // leader_epoch
      for (let k = 0; k < 3; k++) y.array((z) => z.i32()); // replicas, isr, offline replicas
      return { pe, partition, leader };
    });
    if (name !== topic) return;
    if (error !== 0) throw kafkaError(error, `Metadata of topic ${topic}`);
    for (const p of parts) {
      if (p.pe !== 0 || p.leader < 0) throw kafkaError(p.pe || 5, `leader of ${topic} partition ${p.partition}`);
      partitions.set(p.partition, p.leader);
    }
  });
  if (partitions.size === 0) throw new Error(`the broker knows no topic ${topic}: check --topic and KAFKA_BOOTSTRAP_SERVERS`);
  return { brokers, partitions };
}

async function listOffsets(conn: Connection, topic: string, partitions: readonly number[], isolation: number, timestamp: number): Promise<Map<number, number>> {
  const req = new Writer()
    .i32(-1) // replica_id
    .i8(isolation)
    .array([topic], (w, t) =>
      w.string(t).array(partitions, (v, p) => v.i32(p).i32(-1).i64(timestamp)), // partition, current_leader_epoch, timestamp
    )
    .bytes();
  const r = new Reader(await conn.request(API_LIST_OFFSETS, 4, req, 'ListOffsets'), 4);
  r.i32(); // throttle_time_ms
  const out = new Map<number, number>();
  r.array((x) => {
    x.string();
    x.array((y) => {
      const partition = y.i32();
      const error = y.i16();
      y.i64(); // timestamp
      const offset = y.i64();
      y.i32(); // leader_epoch
      if (error !== 0) throw kafkaError(error, `ListOffsets of ${topic} partition ${partition}`);
      out.set(partition, offset);
    });
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/** A record as the objects mode builds it: numbers and views of the fetched buffer. */
export interface WireRecord {
  readonly offset: number;
  /** Epoch milliseconds. */
  readonly timestamp: number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  /** Only when the record has headers; a repeated key keeps its last value. */
  readonly headers: Readonly<Record<string, Uint8Array | null>> | undefined;
}

/** Counters of one read. */
export interface WireCounts {
  /** Data records read (control records and aborted transactions' records not included). */
  records: number;
  /** Sum of the records' value lengths. */
  bytes: number;
  controlRecords: number;
  abortedRecords: number;
  batches: number;
  /** Batches decompressed (gzip, zstd). */
  compressedBatches: number;
  /** Partitions' parts of responses that ended in a batch cut by the size limits. */
  cutBatches: number;
  fetches: number;
  /** Responses' bytes, as received. */
  fetchedBytes: number;
  firstRecordAt: number | undefined;
  lastRecordAt: number;
}

/** Where varint readers leave the position (one return value, no object per call). */
let at = 0;

/** A zigzag varint of up to 32 bits (lengths, offset deltas, counts). */
function varint(b: Uint8Array, p: number): number {
  let byte = b[p++]!;
  let u = byte & 0x7f;
  let shift = 7;
  while (byte & 0x80) {
    if (shift > 28) throw new Error('malformed record: varint longer than 5 bytes');
    byte = b[p++]!;
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
    byte = b[p++]!;
    r += (byte & 0x7f) * mul;
    mul *= 128;
  } while (byte & 0x80);
  at = p;
  return r % 2 === 0 ? r / 2 : -(r + 1) / 2;
}

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const zstdDecompressSync = (zlib as { zstdDecompressSync?: (b: Uint8Array) => Buffer }).zstdDecompressSync;

function decompress(codec: number, data: Buffer, where: string): Buffer {
  if (codec === 1) return zlib.gunzipSync(data);
  if (codec === 4 && zstdDecompressSync) return zstdDecompressSync(data);
  throw new Error(`${where}: a ${CODECS[codec] ?? `codec ${codec}`} compressed batch; this reader decodes none and gzip${zstdDecompressSync ? ' and zstd' : ' (zstd needs Node 22.15+)'}: produce the topic with one of those`);
}

// RecordBatch v2 header fields (byte offsets from the batch start).
const B_LENGTH = 8;
const B_MAGIC = 16;
const B_ATTRIBUTES = 21;
const B_LAST_OFFSET_DELTA = 23;
const B_BASE_TIMESTAMP = 27;
const B_MAX_TIMESTAMP = 35;
const B_PRODUCER_ID = 43;
const B_COUNT = 57;
const B_RECORDS = 61;

/** A partition's fetch state. */
interface PartitionState {
  readonly partition: number;
  readonly low: number;
  /** The end offset at the start: read up to it (exclusive). */
  readonly end: number;
  next: number;
  records: number;
}

/** One partition's part of a Fetch response. */
interface PartitionData {
  readonly state: PartitionState;
  /** Offsets below it are not wanted (a batch can start before the fetch offset). */
  readonly from: number;
  /** Batches' start positions in the response, complete ones only. */
  readonly batches: number[];
  /** Aborted transactions overlapping the fetched range, by first offset. */
  readonly aborted: Array<{ producerId: number; firstOffset: number }> | null;
}

/**
 * Decodes one batch: counts its records (views mode) or builds their objects (objects mode).
 * Control batches and aborted batches are counted as such and skipped.
 */
function decodeBatch(
  b: Buffer,
  pos: number,
  from: number,
  to: number,
  abortedPids: Set<number>,
  counts: WireCounts,
  state: PartitionState,
  out: WireRecord[] | undefined,
): void {
  const baseOffset = int64(b, pos);
  const attributes = b.readInt16BE(pos + B_ATTRIBUTES);
  const lastOffset = baseOffset + b.readInt32BE(pos + B_LAST_OFFSET_DELTA);
  const count = b.readInt32BE(pos + B_COUNT);
  counts.batches++;
  const inRange = Math.min(lastOffset, to - 1) - Math.max(baseOffset, from) + 1;
  if (attributes & 0x20) {
    // Control batch: one marker record, key = version int16, type int16 (0 abort, 1 commit).
    if (inRange > 0) counts.controlRecords += inRange;
    if (count > 0) {
      varint(b, pos + B_RECORDS); // length
      varlong(b, at + 1); // after the attributes: timestampDelta
      varint(b, at); // offsetDelta
      const keyLen = varint(b, at);
      if (keyLen >= 4 && b.readInt16BE(at + 2) === 0) abortedPids.delete(int64(b, pos + B_PRODUCER_ID));
    }
    return;
  }
  if (attributes & 0x10 && abortedPids.size > 0 && abortedPids.has(int64(b, pos + B_PRODUCER_ID))) {
    if (inRange > 0) counts.abortedRecords += inRange;
    return;
  }
  const end = pos + 12 + b.readInt32BE(pos + B_LENGTH);
  let buf = b;
  let p = pos + B_RECORDS;
  const codec = attributes & 7;
  if (codec !== 0) {
    buf = decompress(codec, b.subarray(p, end), `partition ${state.partition} offset ${baseOffset}`);
    counts.compressedBatches++;
    p = 0;
  }
  let records = 0;
  let bytes = 0;
  if (out === undefined) {
    // Views: walk the varints, no object per record.
    for (let i = 0; i < count; i++) {
      const len = varint(buf, p);
      const start = at;
      let q = start + 1; // attributes
      while (buf[q++]! & 0x80); // timestampDelta, skipped
      const offset = baseOffset + varint(buf, q);
      const keyLen = varint(buf, at);
      const valueLen = varint(buf, keyLen > 0 ? at + keyLen : at);
      if (offset >= from && offset < to) {
        records++;
        if (valueLen > 0) bytes += valueLen;
      }
      p = start + len;
    }
  } else {
    const logAppendTime = (attributes & 0x08) !== 0;
    const baseTimestamp = int64(b, pos + B_BASE_TIMESTAMP);
    const maxTimestamp = int64(b, pos + B_MAX_TIMESTAMP);
    const ab = buf.buffer;
    const ab0 = buf.byteOffset;
    for (let i = 0; i < count; i++) {
      const len = varint(buf, p);
      const start = at;
      const tsDelta = varlong(buf, start + 1);
      const offset = baseOffset + varint(buf, at);
      const keyLen = varint(buf, at);
      const key = keyLen < 0 ? null : new Uint8Array(ab, ab0 + at, keyLen);
      const valueLen = varint(buf, keyLen > 0 ? at + keyLen : at);
      const value = valueLen < 0 ? null : new Uint8Array(ab, ab0 + at, valueLen);
      let q = valueLen > 0 ? at + valueLen : at;
      const nHeaders = varint(buf, q);
      let headers: Record<string, Uint8Array | null> | undefined;
      if (nHeaders > 0) {
        headers = {};
        q = at;
        for (let h = 0; h < nHeaders; h++) {
          const hk = varint(buf, q);
          const name = buf.toString('utf8', at, at + hk);
          const hv = varint(buf, at + hk);
          headers[name] = hv < 0 ? null : new Uint8Array(ab, ab0 + at, hv);
          q = hv > 0 ? at + hv : at;
        }
      }
      if (offset >= from && offset < to) {
        out.push({ offset, timestamp: logAppendTime ? maxTimestamp : baseTimestamp + tsDelta, key, value, headers });
        records++;
        if (valueLen > 0) bytes += valueLen;
      }
      p = start + len;
    }
  }
  if (records > 0) {
    counts.firstRecordAt ??= performance.now();
    counts.records += records;
    counts.bytes += bytes;
    state.records += records;
  }
}

// ---------------------------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------------------------

/** What `readTopic` needs. */
export interface ReadTopicOptions {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly mode: 'views' | 'objects';
  readonly maxWaitMs: number;
  readonly maxBytes: number;
  readonly maxBytesPerPartition: number;
  /** Default read_committed (the job's, kafkajs's default). */
  readonly isolation?: 'read_committed' | 'read_uncommitted';
  readonly clientId?: string;
  /** Objects mode: each batch's records, in offset order. */
  readonly onRecords?: (partition: number, records: WireRecord[]) => void;
  /**
   * Reuse a response's buffer once its records are decoded (default: in views mode only). Only
   * when nothing keeps a view of the records past `onRecords`.
   */
  readonly reuseBuffers?: boolean;
}

/** What `readTopic` read. */
export interface ReadTopicResult extends WireCounts {
  readonly partitions: ReadonlyArray<{ partition: number; low: number; end: number; records: number }>;
  readonly leaders: number;
}

/**
 * Reads every partition of a topic from its earliest offset to its end offset at the start, one
 * connection per leader, pipelined Fetch v11; resolves when every partition is read.
 */
export async function readTopic(o: ReadTopicOptions): Promise<ReadTopicResult> {
  const clientId = o.clientId ?? 'rxlake-bench-wire';
  const isolation = o.isolation === 'read_uncommitted' ? 0 : 1;
  const counts: WireCounts = { records: 0, bytes: 0, controlRecords: 0, abortedRecords: 0, batches: 0, compressedBatches: 0, cutBatches: 0, fetches: 0, fetchedBytes: 0, firstRecordAt: undefined, lastRecordAt: 0 };
  const bootstrap = await Connection.open(o.brokers[0] ?? '127.0.0.1:9092', clientId);
  const conns = new Map<string, Connection>([[bootstrap.address, bootstrap]]);
  try {
    await checkVersions(bootstrap);
    const md = await leaders(bootstrap, o.topic);
    const byLeader = new Map<number, number[]>();
    for (const [p, leader] of md.partitions) byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    const states: PartitionState[] = [];
    const loops: Array<Promise<void>> = [];
    const ready: Array<{ conn: Connection; parts: PartitionState[] }> = [];
    for (const [leader, parts] of byLeader) {
      const address = md.brokers.get(leader);
      if (address === undefined) throw new Error(`Metadata names leader ${leader} of ${o.topic} but not its address`);
      let conn = conns.get(address);
      if (conn === undefined) {
        conn = await Connection.open(address, clientId);
        conns.set(address, conn);
        await checkVersions(conn);
      }
      parts.sort((a, b) => a - b);
      const low = await listOffsets(conn, o.topic, parts, isolation, -2);
      const high = await listOffsets(conn, o.topic, parts, isolation, -1);
      const mine = parts.map((partition) => {
        const l = low.get(partition) ?? 0;
        return { partition, low: l, end: high.get(partition) ?? l, next: l, records: 0 };
      });
      states.push(...mine);
      ready.push({ conn, parts: mine });
    }
    for (const { conn, parts } of ready) loops.push(fetchLoop(conn, o, isolation, parts, counts));
    await Promise.all(loops);
    counts.lastRecordAt = performance.now();
    states.sort((a, b) => a.partition - b.partition);
    return { ...counts, partitions: states.map((s) => ({ partition: s.partition, low: s.low, end: s.end, records: s.records })), leaders: ready.length };
  } finally {
    for (const c of conns.values()) c.close();
  }
}

function fetchRequest(o: ReadTopicOptions, isolation: number, parts: readonly PartitionState[]): Buffer {
  return new Writer()
    .i32(-1) // replica_id
    .i32(o.maxWaitMs)
    .i32(1) // min_bytes
    .i32(o.maxBytes)
    .i8(isolation)
    .i32(0) // session_id: no fetch session
    .i32(-1) // session_epoch: no fetch session
    .array([o.topic], (w, t) =>
      w.string(t).array(parts, (v, s) =>
        v
          .i32(s.partition)
          .i32(-1) // current_leader_epoch: not checked
          .i64(s.next)
          .i64(-1) // log_start_offset (followers only)
          .i32(o.maxBytesPerPartition),
      ),
    )
    .array([], () => undefined) // forgotten_topics_data
    .string('') // rack_id
    .bytes();
}

/** Parses a Fetch v11 response and finds each partition's complete batches; advances `next`. */
function parseFetch(body: Buffer, o: ReadTopicOptions, byPartition: ReadonlyMap<number, PartitionState>, counts: WireCounts): PartitionData[] {
  const r = new Reader(body, 4);
  r.i32(); // throttle_time_ms
  const error = r.i16();
  if (error !== 0) throw kafkaError(error, 'Fetch');
  r.i32(); // session_id
  const out: PartitionData[] = [];
  r.array((x) => {
    const name = x.string();
    x.array((y) => {
      const partition = y.i32();
      const pe = y.i16();
      y.i64(); // high_watermark
      y.i64(); // last_stable_offset
      y.i64(); // log_start_offset
      const naborted = y.i32();
      let aborted: PartitionData['aborted'] = null;
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
      const state = byPartition.get(partition);
      if (name !== o.topic || state === undefined) return;
      if (pe !== 0) throw kafkaError(pe, `Fetch of ${o.topic} partition ${partition} at offset ${state.next}`);
      const from = state.next;
      const batches: number[] = [];
      let p = start;
      // A batch cut by the size limits is left for the next fetch.
      while (end - p >= B_RECORDS && end - p >= 12 + body.readInt32BE(p + B_LENGTH)) {
        const magic = body.readInt8(p + B_MAGIC);
        if (magic !== 2) throw new Error(`${o.topic} partition ${partition} offset ${int64(body, p)}: message format v${magic}; this reader decodes RecordBatch v2 (magic 2) only`);
        batches.push(p);
        state.next = Math.max(state.next, int64(body, p) + body.readInt32BE(p + B_LAST_OFFSET_DELTA) + 1);
        p += 12 + body.readInt32BE(p + B_LENGTH);
      }
      if (p < end) counts.cutBatches++;
      out.push({ state, from, batches, aborted });
    });
  });
  return out;
}

async function fetchLoop(conn: Connection, o: ReadTopicOptions, isolation: number, parts: PartitionState[], counts: WireCounts): Promise<void> {
  const byPartition = new Map(parts.map((s) => [s.partition, s]));
  let order = parts.filter((s) => s.next < s.end);
  const send = (): Promise<Buffer> | undefined => {
    if (order.length === 0) return undefined;
    counts.fetches++;
    return conn.request(API_FETCH, 11, fetchRequest(o, isolation, order), 'Fetch');
  };
  let pending = send();
  let stalled = 0;
  const abortedPids = new Set<number>();
  while (pending !== undefined) {
    const body = await pending;
    counts.fetchedBytes += body.length + 4;
    const before = order.map((s) => s.next);
    const data = parseFetch(body, o, byPartition, counts);
    // The next fetch goes out before this one's records are decoded; partitions in turn first,
    // so that a full response does not always favour the same ones.
    const moved = order.some((s, i) => s.next !== before[i]);
    stalled = moved ? 0 : stalled + 1;
    if (stalled > 50) throw new Error(`no progress in 50 fetches of ${o.topic} (next offsets ${order.map((s) => `${s.partition}:${s.next}`).join(', ')}): a batch larger than maxBytes (${o.maxBytes})?`);
    order = [...order.slice(1), ...order.slice(0, 1)].filter((s) => s.next < s.end);
    pending = send();
    // Awaited below; a failure meanwhile must not count as unhandled.
    pending?.catch(() => undefined);
    for (const d of data) {
      const aborted = d.aborted;
      abortedPids.clear();
      let a = 0;
      for (const pos of d.batches) {
        if (aborted !== null) {
          const last = int64(body, pos) + body.readInt32BE(pos + B_LAST_OFFSET_DELTA);
          for (; a < aborted.length && aborted[a]!.firstOffset <= last; a++) abortedPids.add(aborted[a]!.producerId);
        }
        const out: WireRecord[] | undefined = o.mode === 'objects' ? [] : undefined;
        decodeBatch(body, pos, d.from, d.state.end, abortedPids, counts, d.state, out);
        if (out !== undefined && out.length > 0) o.onRecords?.(d.state.partition, out);
      }
    }
    if (o.reuseBuffers ?? o.mode === 'views') conn.recycle(body);
  }
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

/** The job's fetch settings (env as the bronze job reads it), as consume.ts reads them. */
async function jobFetchSettings(): Promise<{ maxWaitMs: number; maxBytes: number; maxBytesPerPartition: number }> {
  const { jobConsumerSettings } = await import('../../src/runtime/config.ts');
  const { loadBronzeConfig } = await import('../../src/pipelines/bronze/config.ts');
  const s = jobConsumerSettings(loadBronzeConfig(process.env));
  return { maxWaitMs: s.maxWaitTimeInMs, maxBytes: s.maxBytes, maxBytesPerPartition: s.maxBytesPerPartition };
}

async function main(): Promise<void> {
  const { values: opts } = parseArgs({
    options: {
      topic: { type: 'string' },
      mode: { type: 'string', default: 'views' },
      expected: { type: 'string' },
      isolation: { type: 'string', default: 'read_committed' },
      buffers: { type: 'string' },
    },
  });
  const topic = opts.topic ?? '';
  const mode = opts.mode;
  const isolation = opts.isolation;
  const buffers = opts.buffers ?? (mode === 'views' ? 'reuse' : 'fresh');
  const expected = opts.expected === undefined ? undefined : Number(opts.expected);
  if (!topic || (mode !== 'views' && mode !== 'objects') || (isolation !== 'read_committed' && isolation !== 'read_uncommitted') || (buffers !== 'reuse' && buffers !== 'fresh') || (expected !== undefined && !Number.isInteger(expected))) {
    throw new Error('usage: wire.ts --topic <topic> [--mode views|objects] [--expected N] [--isolation read_committed|read_uncommitted] [--buffers reuse|fresh]');
  }
  const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(',');
  const settings = await jobFetchSettings();
  const cpu = cpuMeter();
  const t0 = performance.now();
  // Objects mode: what a consumer of the records would do with them (as consume.ts does).
  let seen = 0;
  let seenBytes = 0;
  const onRecords = (_partition: number, records: WireRecord[]): void => {
    seen += records.length;
    for (let i = 0; i < records.length; i++) seenBytes += records[i]?.value?.length ?? 0;
  };
  const r = await readTopic({ brokers, topic, mode, isolation, ...settings, onRecords, reuseBuffers: buffers === 'reuse' });
  const used = cpu();
  const range = r.partitions.reduce((a, p) => a + (p.end - p.low), 0);
  const problems: string[] = [];
  if (r.records + r.controlRecords + r.abortedRecords !== range) problems.push(`read ${r.records} records + ${r.controlRecords} control + ${r.abortedRecords} aborted of ${range} offsets (a compacted topic has gaps; else a bug)`);
  if (expected !== undefined && r.records !== expected) problems.push(`read ${r.records} records, expected ${expected}`);
  if (mode === 'objects' && (seen !== r.records || seenBytes !== r.bytes)) problems.push(`objects handed out: ${seen} (${seenBytes} B), decoded ${r.records} (${r.bytes} B)`);
  process.stdout.write(
    `${JSON.stringify({
      client: `wire-${mode}`,
      version: `Fetch v11, ${isolation}, response buffers ${buffers === 'reuse' ? 'reused' : 'fresh'}`,
      records: r.records,
      redelivered: 0,
      bytes: r.bytes,
      seconds: (r.lastRecordAt - t0) / 1000,
      firstRecordSeconds: ((r.firstRecordAt ?? t0) - t0) / 1000,
      node: process.version,
      peakRssMb: peakRssMb(),
      ...used,
      controlRecords: r.controlRecords,
      abortedRecords: r.abortedRecords,
      offsets: range,
      batches: r.batches,
      compressedBatches: r.compressedBatches,
      cutBatches: r.cutBatches,
      fetches: r.fetches,
      fetchedMb: r.fetchedBytes / 2 ** 20,
      leaders: r.leaders,
      partitions: r.partitions,
    })}\n`,
  );
  if (problems.length > 0) {
    console.error(`wire.ts: ${problems.join('; ')}`);
    process.exit(1);
  }
  process.exit(0);
}

if (process.argv[1] !== undefined && resolvePath(process.argv[1]) === import.meta.filename) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
