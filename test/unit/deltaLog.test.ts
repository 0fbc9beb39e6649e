/**
 * Pure parts of the Delta sink: commit (de)serialization with exact txn versions, partition
 * path escaping, Parquet encoding + Delta stats (read back with hyparquet), error
 * classification and backoff.
 */
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { parseCommit, serializeCommit } from '../../src/sinks/delta/log.ts';
import { encodePacked, packColumns } from '../../src/sinks/delta/columnar.ts';
import { encodeParquet, InvalidValueError } from '../../src/sinks/delta/parquet.ts';
import { parquetSchema } from '../../src/sinks/delta/schema.ts';
import { isRetriable } from '../../src/core/errors.ts';
import { backoffDelay } from '../../src/core/retry.ts';
import { storageError } from '../../src/sinks/delta/retry.ts';
import { checkCompatible, schemaString } from '../../src/sinks/delta/schema.ts';
import { escapePartition } from '../../src/sinks/delta/table.ts';

describe('commit files', () => {
  it('keeps txn versions exact beyond 2^53, in any key order', () => {
    const big = 2n ** 63n - 2n;
    const bytes = serializeCommit({ txns: [{ appId: 'a-"quoted"', version: big, lastUpdated: 5 }] });
    const text = new TextDecoder().decode(bytes);
    expect(text).toContain(`"version":${big}`);
    expect(parseCommit(3, bytes).txns).toEqual([{ appId: 'a-"quoted"', version: big, lastUpdated: 5 }]);
    const other = new TextEncoder().encode(`{"txn":{"lastUpdated":1,"version":9007199254740993,"appId":"x"}}\n{"add":{"path":"p","partitionValues":{},"size":1,"modificationTime":1,"dataChange":true}}\n`);
    const c = parseCommit(7, other);
    expect(c.txns[0]?.version).toBe(9007199254740993n);
    expect(c.adds).toHaveLength(1);
    expect(c.version).toBe(7);
  });
});

describe('partition paths', () => {
  it('escapes like Hive/Spark and leaves ordinary values alone', () => {
    expect(escapePartition('2026-11-22')).toBe('2026-11-22');
    expect(escapePartition('a/b:c=d%e')).toBe('a%2Fb%3Ac%3Dd%25e');
    expect(escapePartition('sp ace é')).toBe('sp ace é');
    expect(escapePartition('\n#?')).toBe('%0A%23%3F');
  });
});

describe('encodeParquet', () => {
  const columns = [
    { name: 's', type: 'string' as const },
    { name: 'l', type: 'long' as const, nullable: false },
    { name: 't', type: 'timestamp' as const },
    { name: 'i', type: 'integer' as const },
  ];
  const enc = new TextEncoder();
  const rows = [
    { s: enc.encode('zeta'), l: 2n ** 60n, t: 1_795_000_000_123_456n, i: 3 },
    { s: 'alpha', l: -5n, t: null, i: null },
    { s: null, l: 7, t: 1_795_000_000_000_001n, i: -1 },
  ];

  it('writes values hyparquet reads back, with µs UTC timestamps and exact longs', async () => {
    const file = encodeParquet(rows, columns);
    const buf = file.bytes.buffer.slice(file.bytes.byteOffset, file.bytes.byteOffset + file.bytes.byteLength) as ArrayBuffer;
    const meta = parquetMetadata(buf);
    const t = meta.schema.find((e) => e.name === 't');
    expect(t?.logical_type).toEqual({ type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' });
    expect(meta.row_groups[0]?.columns[0]?.meta_data?.codec).toBe('SNAPPY');
    const back = await parquetReadObjects({ file: buf, utf8: true });
    expect(back.map((r) => r.l as bigint)).toEqual([2n ** 60n, -5n, 7n]);
    expect(back.map((r) => r.s as string | null)).toEqual(['zeta', 'alpha', null]);
    expect(back.map((r) => r.i as number | null)).toEqual([3, null, -1]);
  });

  it('computes Delta stats: min/max/nullCount, exact longs, ms timestamps rounded outwards', () => {
    const stats = encodeParquet(rows, columns).stats;
    expect(stats).toContain(`"l":${2n ** 60n}`); // exact JSON number, not rounded
    const parsed = JSON.parse(stats) as { numRecords: number; minValues: Record<string, unknown>; maxValues: Record<string, unknown>; nullCount: Record<string, number> };
    expect(parsed.numRecords).toBe(3);
    expect(parsed.minValues).toMatchObject({ s: 'alpha', l: -5, t: '2026-11-18T11:06:40.000Z', i: -1 });
    expect(parsed.maxValues).toMatchObject({ s: 'zeta', i: 3, t: '2026-11-18T11:06:40.124Z' });
    expect(parsed.nullCount).toEqual({ s: 1, l: 0, t: 1, i: 1 });
  });

  it('leaves out min/max of a column with stats: false (Parquet footer and Delta stats), keeps its null count', async () => {
    const noStats = columns.map((c) => (c.name === 's' ? { ...c, stats: false } : c));
    const file = encodeParquet(rows, noStats);
    const parsed = JSON.parse(file.stats) as { minValues: Record<string, unknown>; maxValues: Record<string, unknown>; nullCount: Record<string, number> };
    expect(parsed.minValues).not.toHaveProperty('s');
    expect(parsed.maxValues).not.toHaveProperty('s');
    expect(parsed.minValues).toMatchObject({ l: -5, i: -1 });
    expect(parsed.nullCount).toEqual({ s: 1, l: 0, t: 1, i: 1 });
    const buf = file.bytes.buffer.slice(file.bytes.byteOffset, file.bytes.byteOffset + file.bytes.byteLength) as ArrayBuffer;
    const chunks = parquetMetadata(buf).row_groups[0]?.columns ?? [];
    expect(chunks[0]?.meta_data?.statistics?.min_value).toBeUndefined();
    expect(chunks[0]?.meta_data?.statistics?.max_value).toBeUndefined();
    expect(chunks[0]?.meta_data?.statistics?.null_count).toBe(1n);
    expect(chunks[1]?.meta_data?.statistics?.min_value).toBe(-5n);
    expect((await parquetReadObjects({ file: buf, utf8: true })).map((r) => r.s as string | null)).toEqual(['zeta', 'alpha', null]);
    // The worker thread's path (packed columns) writes the same stats.
    expect(encodePacked(packColumns(rows, noStats), parquetSchema(noStats)).stats).toBe(file.stats);
  });

  it('rejects values of the wrong type and nulls in NOT NULL columns, naming the column', () => {
    expect(() => encodeParquet([{ s: 'x', l: 1.5, t: null, i: 1 }], columns)).toThrow(InvalidValueError);
    expect(() => encodeParquet([{ s: 'x', l: null, t: null, i: 1 }], columns)).toThrow(/column l.*NOT NULL/);
    expect(() => encodeParquet([{ s: {}, l: 1n, t: null, i: 1 }], columns)).toThrow(/column s/);
  });
});

describe('schema compatibility', () => {
  it('accepts the same columns and reports every difference otherwise', () => {
    const spec = { name: 't', columns: [{ name: 'a', type: 'long' as const }, { name: 'b', type: 'string' as const }], partitionColumns: ['b'] };
    expect(() => checkCompatible(spec, schemaString(spec.columns), ['b'])).not.toThrow();
    expect(() => checkCompatible(spec, schemaString([{ name: 'a', type: 'integer' }, { name: 'b', type: 'string' }]), ['b'])).toThrow(/column a: table type integer, spec long/);
    expect(() => checkCompatible(spec, schemaString(spec.columns), [])).toThrow(/partition columns/);
  });
});

describe('errors and backoff', () => {
  it('classifies network, 5xx, throttling and disk-full errors as retriable, 4xx as not', () => {
    expect(isRetriable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetriable(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe(true);
    expect(isRetriable(Object.assign(new Error('x'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }))).toBe(true);
    expect(isRetriable(Object.assign(new Error('x'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } }))).toBe(true);
    expect(isRetriable(Object.assign(new Error('x'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }))).toBe(false);
    expect(isRetriable(new Error('plain'))).toBe(false);
    const wrapped = storageError('write x', Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    expect(wrapped).toMatchObject({ retriable: true, code: 'STORAGE_ERROR', message: 'write x: reset' });
    expect((wrapped.cause as Error).message).toBe('reset');
  });

  it('grows the delay exponentially with jitter, capped', () => {
    for (let i = 0; i < 50; i++) {
      const d1 = backoffDelay(1, { initialMs: 100, maxMs: 1000 });
      const d4 = backoffDelay(4, { initialMs: 100, maxMs: 1000 });
      const d9 = backoffDelay(9, { initialMs: 100, maxMs: 1000 });
      expect(d1).toBeGreaterThanOrEqual(50);
      expect(d1).toBeLessThanOrEqual(100);
      expect(d4).toBeGreaterThanOrEqual(400);
      expect(d4).toBeLessThanOrEqual(800);
      expect(d9).toBeGreaterThanOrEqual(500);
      expect(d9).toBeLessThanOrEqual(1000);
    }
  });
});
