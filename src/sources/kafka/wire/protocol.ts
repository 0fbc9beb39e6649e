/**
 * The Kafka protocol at the wire level, for what the wire fetcher speaks: framed requests on one
 * socket per broker, responses assembled into one buffer each (so that a Fetch response's
 * records stay contiguous and can be handed out as views), request encoding, response reading,
 * and the broker's error codes as `RxlakeError`s. Only non-flexible API versions (no tagged
 * fields): ApiVersions v0, Metadata v7, ListOffsets v4, Fetch v11 (Kafka 2.3 to 4.x).
 */
import { connect as connectTcp, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { RxlakeError } from '../../../core/errors.ts';

export const API_FETCH = 1;
export const API_LIST_OFFSETS = 2;
export const API_METADATA = 3;
export const API_SASL_HANDSHAKE = 17;
export const API_VERSIONS = 18;
export const API_SASL_AUTHENTICATE = 36;

/** The versions spoken here: the newest non-flexible ones (no tagged fields) of each API. */
export const VERSIONS: ReadonlyArray<readonly [key: number, name: string, version: number]> = [
  [API_FETCH, 'Fetch', 11],
  [API_LIST_OFFSETS, 'ListOffsets', 4],
  [API_METADATA, 'Metadata', 7],
];

/** Broker error codes this module names, and whether the same request can succeed later. */
const ERRORS: Readonly<Record<number, readonly [name: string, retriable: boolean]>> = {
  1: ['OFFSET_OUT_OF_RANGE', false],
  2: ['CORRUPT_MESSAGE', true],
  3: ['UNKNOWN_TOPIC_OR_PARTITION', true],
  5: ['LEADER_NOT_AVAILABLE', true],
  6: ['NOT_LEADER_OR_FOLLOWER', true],
  7: ['REQUEST_TIMED_OUT', true],
  8: ['BROKER_NOT_AVAILABLE', true],
  9: ['REPLICA_NOT_AVAILABLE', true],
  13: ['NETWORK_EXCEPTION', true],
  29: ['TOPIC_AUTHORIZATION_FAILED', false],
  31: ['CLUSTER_AUTHORIZATION_FAILED', false],
  33: ['UNSUPPORTED_SASL_MECHANISM', false],
  34: ['ILLEGAL_SASL_STATE', false],
  35: ['UNSUPPORTED_VERSION', false],
  56: ['KAFKA_STORAGE_ERROR', true],
  58: ['SASL_AUTHENTICATION_FAILED', false],
  74: ['FENCED_LEADER_EPOCH', true],
  75: ['UNKNOWN_LEADER_EPOCH', true],
  100: ['UNKNOWN_TOPIC_ID', true],
};

export const OFFSET_OUT_OF_RANGE = 1;

/** A broker's error answer: `code` is `KAFKA_<NAME>`, `brokerCode` the protocol's number. */
export class KafkaBrokerError extends RxlakeError {
  readonly brokerCode: number;
  constructor(brokerCode: number, what: string) {
    const [name, retriable] = ERRORS[brokerCode] ?? [`ERROR_${brokerCode}`, false];
    super(`${what}: the broker answered ${name} (error ${brokerCode})`, { code: `KAFKA_${name}`, retriable });
    this.name = 'KafkaBrokerError';
    this.brokerCode = brokerCode;
  }
}

/** The connection to a broker failed or closed, or a request timed out: retriable. */
export class KafkaConnectionError extends RxlakeError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'KAFKA_CONNECTION', retriable: true, ...(cause === undefined ? {} : { cause }) });
    this.name = 'KafkaConnectionError';
  }
}

// ---------------------------------------------------------------------------------------------
// Request encoding and response reading (requests are small; the hot path is records.ts)
// ---------------------------------------------------------------------------------------------

export class Writer {
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
  i64(v: number | bigint): this {
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
  /** Bytes with an int32 length. */
  bytes32(b: Uint8Array): this {
    this.i32(b.byteLength);
    this.room(b.byteLength);
    this.buf.set(b, this.n);
    this.n += b.byteLength;
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

export class Reader {
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
  /** Bytes with an int32 length (null when negative), as a view. */
  bytes32(): Buffer | null {
    const len = this.i32();
    if (len < 0) return null;
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  array<T>(each: (r: this) => T): T[] {
    const n = this.i32();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(each(this));
    return out;
  }
}

/** An int64 as a number (exact below 2^53). */
export function int64(b: Uint8Array & { readInt32BE(p: number): number; readUInt32BE(p: number): number }, p: number): number {
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
  readonly cancelTimer: () => void;
}

/** How to reach a broker. */
export interface BrokerConnectionOptions {
  readonly clientId: string;
  /** Node's TLS options, or undefined for plain TCP. */
  readonly tls?: ConnectionOptions | undefined;
  /** Milliseconds to connect (and finish the TLS handshake). Default 10,000. */
  readonly connectTimeoutMs?: number;
  /** Called once when the connection fails or closes (not after `close()`). */
  readonly onClose?: (err: Error) => void;
}

/**
 * One connection to a broker. Responses come back in request order; each is assembled into a
 * buffer of its own (its size is its first 4 bytes), so the records of a Fetch response stay
 * contiguous and can be handed out as views. A plain TCP socket reads into one reused buffer
 * (`onread`): no buffer allocated per read, one copy into the response.
 */
export class Connection {
  private readonly waiting: Waiting[] = [];
  private nextId = 1;
  private readonly sizeBytes = Buffer.alloc(4);
  private sizeFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private failure: Error | undefined;
  /** Responses handed back once read (nothing kept a view of them), reused for the next ones. */
  private readonly spare: Buffer[] = [];
  private socket!: Socket;
  readonly address: string;
  private readonly clientId: string;
  private readonly onClose: ((err: Error) => void) | undefined;

  private constructor(address: string, clientId: string, onClose: ((err: Error) => void) | undefined) {
    this.address = address;
    this.clientId = clientId;
    this.onClose = onClose;
  }

  /** Opens a connection to `host:port`; rejects with a retriable `KafkaConnectionError`. */
  static open(address: string, options: BrokerConnectionOptions): Promise<Connection> {
    const [host = '127.0.0.1', port = '9092'] = address.split(/:(?=\d+$)/);
    const conn = new Connection(address, options.clientId, options.onClose);
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        conn.fail(err);
        if (!settled) {
          settled = true;
          reject(err);
        }
      };
      if (options.tls === undefined) {
        const readBuffer = Buffer.allocUnsafe(256 * 1024);
        conn.socket = connectTcp({
          host,
          port: Number(port),
          noDelay: true,
          onread: {
            buffer: readBuffer,
            callback: (n) => {
              conn.feed(readBuffer, n);
              return true;
            },
          },
        });
      } else {
        // SNI carries host names only (RFC 6066): none for an IP address; an explicit `servername` wins.
        conn.socket = connectTls({ host, port: Number(port), ...(isIP(host) === 0 ? { servername: host } : {}), ...options.tls });
        conn.socket.setNoDelay(true);
        conn.socket.on('data', (chunk: Buffer) => conn.feed(chunk, chunk.length));
      }
      conn.socket.setTimeout(timeoutMs, () => fail(new KafkaConnectionError(`connection to ${address}: no answer within ${timeoutMs} ms`)));
      conn.socket.once(options.tls === undefined ? 'connect' : 'secureConnect', () => {
        conn.socket.setTimeout(0);
        settled = true;
        resolve(conn);
      });
      conn.socket.on('error', (err) => fail(new KafkaConnectionError(`connection to ${address}: ${err.message}`, err)));
      conn.socket.on('close', () => fail(new KafkaConnectionError(`connection to ${address} closed`)));
    });
  }

  /** Whether the connection failed or was closed. */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  /**
   * Sends one request; resolves with its response (from the correlation id on). `timeoutMs`:
   * the connection is closed (every request on it fails) when the answer takes longer.
   */
  request(apiKey: number, apiVersion: number, payload: Buffer, what: string, timeoutMs = 30_000): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const correlationId = this.nextId++;
    const header = new Writer().i32(0).i16(apiKey).i16(apiVersion).i32(correlationId).string(this.clientId).bytes();
    header.writeInt32BE(header.length - 4 + payload.length, 0);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new KafkaConnectionError(`${what} to ${this.address}: no answer within ${timeoutMs} ms`));
        this.socket.destroy();
      }, timeoutMs);
      this.waiting.push({ correlationId, what, resolve, reject, cancelTimer: () => clearTimeout(timer) });
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
      const b = this.spare.splice(i, 1)[0] as Buffer;
      return Buffer.from(b.buffer, 0, size);
    }
    // Its own ArrayBuffer (not the pool): views into it keep only this response alive. Large
    // ones are rounded up to the MiB, so that a recycled one fits the next response.
    return Buffer.allocUnsafeSlow(size < 2 ** 20 ? size : Math.ceil(size / 2 ** 20) * 2 ** 20).subarray(0, size);
  }

  close(): void {
    this.failure ??= new KafkaConnectionError(`connection to ${this.address} closed`);
    for (const w of this.waiting.splice(0)) {
      w.cancelTimer();
      w.reject(this.failure);
    }
    this.socket?.destroy();
  }

  private fail(err: Error): void {
    const first = this.failure === undefined;
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) {
      w.cancelTimer();
      w.reject(this.failure);
    }
    if (first) this.onClose?.(this.failure);
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
      this.fail(new KafkaConnectionError(`connection to ${this.address}: response ${id} does not answer the oldest request ${w?.correlationId ?? '(none)'}`));
      this.socket.destroy();
      return;
    }
    w.cancelTimer();
    w.resolve(body);
  }
}

// ---------------------------------------------------------------------------------------------
// Versions, metadata, offsets
// ---------------------------------------------------------------------------------------------

/** Checks that the broker speaks the versions used here; fails naming the ones it needs. */
export async function checkVersions(conn: Connection): Promise<void> {
  const body = await conn.request(API_VERSIONS, 0, Buffer.alloc(0), 'ApiVersions');
  const r = new Reader(body, 4);
  const error = r.i16();
  if (error !== 0) throw new KafkaBrokerError(error, 'ApiVersions');
  const ranges = new Map(r.array((x) => [x.i16(), [x.i16(), x.i16()] as const] as const));
  for (const [key, name, version] of VERSIONS) {
    const [min, max] = ranges.get(key) ?? [-1, -1];
    if (version < min || version > max) {
      throw new RxlakeError(`the broker at ${conn.address} speaks ${name} v${min}–v${max}; the wire fetcher needs ${name} v${version} (Kafka 2.3 to 4.x): use the kafkajs client (KAFKA_CLIENT=kafkajs)`, { code: 'KAFKA_UNSUPPORTED_VERSION' });
    }
  }
}

/** Partition leaders of some topics, and the brokers' addresses. */
export interface Metadata {
  readonly brokers: ReadonlyMap<number, string>;
  /** `topic` → partition → leader's node id (partitions without a leader are left out). */
  readonly leaders: ReadonlyMap<string, ReadonlyMap<number, number>>;
}

/** Metadata v7 of these topics (never creates a topic). */
export async function fetchMetadata(conn: Connection, topics: readonly string[], timeoutMs?: number): Promise<Metadata> {
  const req = new Writer()
    .array(topics, (w, t) => w.string(t))
    .i8(0) // allow_auto_topic_creation
    .bytes();
  const r = new Reader(await conn.request(API_METADATA, 7, req, 'Metadata', timeoutMs), 4);
  r.i32(); // throttle_time_ms
  const brokers = new Map(
    r.array((x) => {
      const id = x.i32();
      const host = x.string();
      const port = x.i32();
      x.nullableString(); // rack
      return [id, `${host}:${port}`] as const;
    }),
  );
  r.nullableString(); // cluster_id
  r.i32(); // controller_id
  const leaders = new Map<string, Map<number, number>>();
  r.array((x) => {
    x.i16(); // topic error: its partitions are then missing, and looked up again
    const name = x.string();
    x.i8(); // is_internal
    const byPartition = new Map<number, number>();
    x.array((y) => {
      const pe = y.i16();
      const partition = y.i32();
      const leader = y.i32();
      y.i32(); // leader_epoch
      for (let k = 0; k < 3; k++) y.array((z) => z.i32()); // replicas, isr, offline replicas
      if (pe === 0 && leader >= 0) byPartition.set(partition, leader);
    });
    leaders.set(name, byPartition);
  });
  return { brokers, leaders };
}

/** ListOffsets v4 timestamps: the log's start and end. */
export const EARLIEST = -2;
export const LATEST = -1;

/** Per partition, the offset ListOffsets v4 gives for `timestamp` (EARLIEST, LATEST or epoch ms; -1: none). */
export async function listOffsets(conn: Connection, topic: string, partitions: readonly number[], readCommitted: boolean, timestamp: number, timeoutMs?: number): Promise<Map<number, number>> {
  const req = new Writer()
    .i32(-1) // replica_id
    .i8(readCommitted ? 1 : 0)
    .array([topic], (w, t) => w.string(t).array(partitions, (v, p) => v.i32(p).i32(-1).i64(timestamp))) // partition, current_leader_epoch, timestamp
    .bytes();
  const r = new Reader(await conn.request(API_LIST_OFFSETS, 4, req, 'ListOffsets', timeoutMs), 4);
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
      if (error !== 0) throw new KafkaBrokerError(error, `ListOffsets of ${topic} partition ${partition}`);
      out.set(partition, offset);
    });
  });
  return out;
}
