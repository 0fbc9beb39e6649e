/**
 * Shared by the Delta integration tests: the bronze table layout, row builders and a Storage
 * wrapper that counts or fails calls.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TableSpec } from '../../src/sinks/delta/schema.ts';
import type { Storage } from '../../src/sinks/delta/storage.ts';
import { localStorage, s3Storage } from '../../src/sinks/delta/storage.ts';
import type { EnrichedRecord } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';

export type BronzeRow = EnrichedRecord;

export const bronzeSpec = (name: string): TableSpec<BronzeRow> => ({
  name,
  columns: [
    { name: '_raw_value', type: 'string', get: (r) => r.value },
    { name: '_kafka_partition', type: 'integer', nullable: false },
    { name: '_kafka_offset', type: 'long', nullable: false },
    { name: '_kafka_timestamp', type: 'timestamp' },
    { name: '_ingested_at', type: 'timestamp' },
    { name: '_ingestion_date', type: 'string' },
  ],
  partitionColumns: ['_ingestion_date'],
});

export const BRONZE_COLUMNS = ['_kafka_offset', '_kafka_partition', '_raw_value', '_kafka_timestamp', '_ingested_at', '_ingestion_date'];

const enc = new TextEncoder();

/** Offsets start beyond 2^53 so any float rounding shows. */
export const BIG_OFFSET = 2n ** 53n + 1n;

export interface RowOptions {
  topic?: string;
  partition?: number;
  firstOffset?: bigint;
  count: number;
  /** UTC dates to spread rows over (round robin). */
  dates?: string[];
  payload?: (i: number) => string;
}

/** Bronze rows with non-ASCII payloads, µs timestamps and offsets beyond 2^53. */
export function bronzeRows(o: RowOptions): BronzeRow[] {
  const { topic = 'trips', partition = 0, firstOffset = BIG_OFFSET, count, dates = ['2026-11-21', '2026-11-22'] } = o;
  const payload = o.payload ?? ((i: number) => `{"trip_id":"t-${i}","city":"São Paulo","note":"naïve café ✓ 🚕","n":${i}}`);
  return Array.from({ length: count }, (_, i): BronzeRow => {
    const offset = firstOffset + BigInt(i);
    const date = dates[i % dates.length] as string;
    const dayMicros = BigInt(Date.parse(`${date}T00:00:00Z`)) * 1000n;
    const value = Buffer.from(enc.encode(payload(i)));
    return {
      topic,
      partition,
      offset,
      timestamp: Number(dayMicros / 1000n) + i,
      key: null,
      value,
      headers: {},
      size: value.byteLength,
      _kafka_partition: partition,
      _kafka_offset: offset,
      _kafka_timestamp: dayMicros + 3_723_000_001n + BigInt(i) * 7n,
      _ingested_at: dayMicros + 3_723_456_789n + BigInt(i),
      _ingestion_date: date,
    };
  });
}

/** What delta-rs should print for a row (see scripts/delta_verify.py). */
export function expectedRow(r: BronzeRow): Record<string, unknown> {
  const big = (v: bigint): string | number => (v > 2n ** 53n - 1n || v < -(2n ** 53n - 1n) ? v.toString() : Number(v));
  return {
    _kafka_offset: big(r._kafka_offset),
    _kafka_partition: r._kafka_partition,
    _raw_value: new TextDecoder().decode(r.value ?? new Uint8Array(0)),
    _kafka_timestamp: isoMicros(r._kafka_timestamp),
    _ingested_at: isoMicros(r._ingested_at),
    _ingestion_date: r._ingestion_date,
  };
}

/** Epoch µs → `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
export function isoMicros(micros: bigint): string {
  const ms = micros / 1000n;
  const iso = new Date(Number(ms)).toISOString(); // ...SS.mmmZ
  return `${iso.slice(0, 19)}.${String(micros % 1_000_000n).padStart(6, '0')}Z`;
}

export interface Target {
  kind: 'local' | 's3';
  storage: Storage;
  /** URI delta-rs opens. */
  uri: string;
}

/** A fresh, empty table location on local disk or in the S3 bucket. */
export function freshTarget(kind: 'local' | 's3', prefix = 'delta'): Target {
  const name = uniqueName(prefix);
  if (kind === 'local') {
    const root = join(mkdtempSync(join(tmpdir(), 'rxlake-delta-')), name);
    return { kind, storage: localStorage(root), uri: root };
  }
  const storage = s3Storage({
    bucket: stack.s3.bucket,
    prefix: `tests/${name}`,
    endpoint: stack.s3.endpoint,
    region: stack.s3.region,
    credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
  });
  return { kind, storage, uri: storage.uri };
}

export type StorageOp = 'read' | 'write' | 'putIfAbsent' | 'list' | 'delete';

/** Wraps a Storage: records every call, and can make the first `failures` calls of `failOps` throw. */
export function instrumented(inner: Storage, opts: { failures?: number; failOps?: StorageOp[]; failPaths?: RegExp; error?: () => Error } = {}): Storage & { calls: Array<{ op: StorageOp; path: string }>; failed: number } {
  let left = opts.failures ?? 0;
  const failOps = new Set(opts.failOps ?? ['write', 'putIfAbsent']);
  const makeError = opts.error ?? (() => Object.assign(new Error('injected: connection reset'), { code: 'ECONNRESET', retriable: true }));
  const w = {
    uri: inner.uri,
    calls: [] as Array<{ op: StorageOp; path: string }>,
    failed: 0,
    sub: (p: string) => inner.sub(p),
    read: (p: string) => call('read', p, () => inner.read(p)),
    write: (p: string, d: Uint8Array) => call('write', p, () => inner.write(p, d)),
    putIfAbsent: (p: string, d: Uint8Array) => call('putIfAbsent', p, () => inner.putIfAbsent(p, d)),
    list: (p: string, s?: string) => call('list', p, () => inner.list(p, s)),
    delete: (p: string) => call('delete', p, () => inner.delete(p)),
  };
  async function call<T>(op: StorageOp, path: string, fn: () => Promise<T>): Promise<T> {
    w.calls.push({ op, path });
    if (left > 0 && failOps.has(op) && (!opts.failPaths || opts.failPaths.test(path))) {
      left--;
      w.failed++;
      throw makeError();
    }
    return fn();
  }
  return w;
}

/** Concurrency test (deltaWriterChild.ts): rows per commit of a writer's own partition. */
export const OWN_ROWS = 10;
/** Rows per commit of the partition every writer offers identically. */
export const SHARED_ROWS = 5;
export const SHARED_PARTITION = 99;
