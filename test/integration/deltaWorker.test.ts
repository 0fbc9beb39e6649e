/**
 * Parquet encoding on worker threads: files a worker encodes are read back by delta-rs exactly
 * like inline-encoded ones; a worker that dies rejects the append (retriable) and the sink's
 * retry lands the batch; a worker that cannot start falls back to inline encoding.
 */
import { readdir } from 'node:fs/promises';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import { encodePacked, packColumns } from '../../src/sinks/delta/columnar.ts';
import { encodeParquet } from '../../src/sinks/delta/parquet.ts';
import { ParquetWorkerError, ParquetWorkerPool } from '../../src/sinks/delta/parquetPool.ts';
import type { ColumnSpec } from '../../src/sinks/delta/schema.ts';
import { parquetSchema } from '../../src/sinks/delta/schema.ts';
import { isRetriable } from '../../src/core/errors.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { TableSpec } from '../../src/sinks/delta/schema.ts';
import { verifyDelta } from '../support/stack.ts';
import type { BronzeRow } from './deltaFixtures.ts';
import { BIG_OFFSET, BRONZE_COLUMNS, bronzeRows, bronzeSpec, expectedRow, freshTarget } from './deltaFixtures.ts';

const dedupe = {
  appId: (r: BronzeRow) => `bronze-${r.topic}-${r.partition}`,
  offset: (r: BronzeRow) => r.offset,
};

/** Data files on disk, referenced by the log or not. */
async function parquetFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.parquet') && !f.includes('_delta_log'));
}

const pools: ParquetWorkerPool[] = [];
function pool(opts: ConstructorParameters<typeof ParquetWorkerPool>[0] = {}): ParquetWorkerPool {
  const p = new ParquetWorkerPool({ logger: { warn: () => undefined }, ...opts });
  pools.push(p);
  return p;
}
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

describe('packed columns (what crosses to a worker)', () => {
  it('encode to the same bytes and stats as the in-thread encoder, for every column type and nulls', async () => {
    type R = Record<string, unknown>;
    const columns: ColumnSpec<R>[] = [
      { name: 's', type: 'string' },
      { name: 'b', type: 'binary' },
      { name: 'l', type: 'long', nullable: false },
      { name: 't', type: 'timestamp' },
      { name: 'i', type: 'integer' },
      { name: 'd', type: 'date' },
      { name: 'x', type: 'double' },
      { name: 'o', type: 'boolean' },
    ];
    const enc = new TextEncoder();
    const rows: R[] = Array.from({ length: 2000 }, (_, k) => ({
      s: k % 11 === 0 ? null : enc.encode(`v-${k % 97}-ü`),
      b: k % 13 === 0 ? null : enc.encode(`\u0000${k}`),
      l: k % 2 ? 2n ** 62n + BigInt(k) : -BigInt(k) * 1000n,
      t: k % 17 === 0 ? null : k % 3 ? 1_795_000_000_000_000n + BigInt(k) : new Date(1_795_000_000_000 + k),
      i: k % 19 === 0 ? null : (k * 7919) % 100_000 - 50_000,
      d: k % 23 === 0 ? null : `2026-11-${String((k % 28) + 1).padStart(2, '0')}`,
      x: k % 29 === 0 ? null : k / 7,
      o: k % 31 === 0 ? null : k % 2 === 0,
    }));
    const schema = parquetSchema(columns as ColumnSpec<unknown>[]);
    const indices = rows.map((_, k) => k).filter((k) => k % 5 !== 1);
    for (const at of [undefined, indices]) {
      const inThread = encodeParquet(rows, columns, at);
      const packed = encodePacked(packColumns(rows, columns, at), schema);
      expect(packed.numRecords).toBe(at ? at.length : rows.length);
      expect(packed.stats).toBe(inThread.stats);
      expect(Buffer.compare(Buffer.from(packed.bytes), Buffer.from(inThread.bytes))).toBe(0);
    }
    // And through a worker.
    const workers = pool({ size: 1 });
    const viaWorker = await workers.encode(packColumns(rows, columns, indices), schema);
    expect(workers.mode).toBe('worker');
    expect(viaWorker.stats).toBe(encodeParquet(rows, columns, indices).stats);
    expect(Buffer.compare(Buffer.from(viaWorker.bytes), Buffer.from(encodeParquet(rows, columns, indices).bytes))).toBe(0);
  });
});

describe.each(['local', 's3'] as const)('worker-encoded Parquet on %s storage', (kind) => {
  it('is read back by delta-rs with the same values and stats as inline encoding', async () => {
    const workers = pool({ size: 2 });
    const viaWorker = freshTarget(kind, 'delta-worker');
    const inline = freshTarget(kind, 'delta-inline');
    const a = await DeltaTable.openOrCreate(viaWorker.storage, bronzeSpec('bronze_worker'), { encoder: workers });
    const b = await DeltaTable.openOrCreate(inline.storage, bronzeSpec('bronze_inline'), { encoder: 'inline' });
    // Three dates → three files per commit, encoded concurrently on two workers.
    const rows = [
      ...bronzeRows({ partition: 0, count: 900, dates: ['2026-11-20', '2026-11-21', '2026-11-22'] }),
      ...bronzeRows({ partition: 4, count: 300, firstOffset: 5n, payload: (i) => (i % 7 === 0 ? '' : `{"i":${i},"s":"${'é'.repeat(i % 40)}"}`) }),
    ];
    const r1 = await a.append(rows.slice(0, 600), { dedupe });
    const r2 = await a.append(rows, { dedupe }); // replays the first 600: skipped
    await b.append(rows.slice(0, 600), { dedupe });
    await b.append(rows, { dedupe });
    expect(workers.mode).toBe('worker');
    expect(workers.workersStarted).toBeGreaterThanOrEqual(1);
    expect(r1).toMatchObject({ version: 1, rows: 600, skipped: 0, files: 3 });
    expect(r2).toMatchObject({ version: 2, rows: 600, skipped: 600, files: 3 });

    const [va, vb] = await Promise.all([
      verifyDelta(viaWorker.uri, { rows: true, columns: BRONZE_COLUMNS, appIds: ['bronze-trips-0', 'bronze-trips-4'] }),
      verifyDelta(inline.uri, { rows: true, columns: BRONZE_COLUMNS }),
    ]);
    expect(va.num_rows).toBe(1200);
    expect(va.rows).toEqual([...rows.slice(900), ...rows.slice(0, 900)].map(expectedRow));
    expect(va.txn_exact).toEqual({ 'bronze-trips-0': (BIG_OFFSET + 899n).toString(), 'bronze-trips-4': '304' });
    // Same file contents, stats and sizes as the inline encoder wrote (file names differ).
    const shape = (v: typeof va) =>
      v.files
        .map((f) => ({ partition: f.partition_values, records: f.num_records, size: f.size, stats: f.stats }))
        .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    expect(shape(va)).toEqual(shape(vb));
    expect(va.files).toHaveLength(6);
  });
});

describe('worker failures', () => {
  it('a worker that dies while encoding rejects the append with a retriable error; the sink retries and lands the batch', async () => {
    // A worker whose heap cannot hold the batch dies of it (a real crash, not a thrown error);
    // after one death the pool encodes on the calling thread, so the retry succeeds.
    const fragile = pool({ size: 1, resourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 }, maxCrashes: 1 });
    const t = freshTarget('local', 'delta-worker-crash');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_worker_crash'), { encoder: fragile });
    // Warm up: a small file encodes fine on the limited worker.
    await table.append(bronzeRows({ partition: 1, count: 10, firstOffset: 0n, dates: ['2026-11-22'] }), { dedupe });
    expect(fragile.mode).toBe('worker');

    const big = bronzeRows({ partition: 1, count: 400_000, firstOffset: 10n, dates: ['2026-11-22'], payload: (i) => `{"n":${i},"pad":"${'x'.repeat(40)}"}` });
    const errors: Error[] = [];
    const acks = await lastValueFrom(
      from([big]).pipe(deltaSink(table, { pipelineId: 'bronze', retry: { initialMs: 10, maxMs: 50 }, onWriteError: (e) => errors.push(e) }), toArray()),
    );
    expect(errors.length).toBe(1);
    expect(errors[0]).toBeInstanceOf(ParquetWorkerError);
    expect(isRetriable(errors[0])).toBe(true);
    expect(fragile.mode).toBe('inline');
    expect(acks.map((a) => [a.version, a.rows, a.skipped])).toEqual([[2, 400_000, 0]]);

    const v = await verifyDelta(t.uri, { columns: ['_kafka_offset'], appIds: ['bronze-trips-1'] });
    expect(v.num_rows).toBe(400_010);
    expect(v.version).toBe(2);
    expect(v.txn_exact).toEqual({ 'bronze-trips-1': '400009' });
    // The failed attempt left no data file behind: exactly one file per commit.
    expect(v.files).toHaveLength(2);
    expect(await parquetFiles(t.uri)).toHaveLength(2);
  });

  it('a worker that cannot start: the pool encodes inline and the append succeeds', async () => {
    const missing = pool({ workerUrl: new URL('./no-such-worker.js', import.meta.url) });
    const t = freshTarget('local', 'delta-worker-missing');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_worker_missing'), { encoder: missing });
    const r = await table.append(bronzeRows({ count: 50 }), { dedupe });
    expect(r).toMatchObject({ version: 1, rows: 50 });
    expect(missing.mode).toBe('inline');
    expect((await verifyDelta(t.uri)).num_rows).toBe(50);
  });

  it('bad values are rejected on the calling thread, before any file is handed to a worker', async () => {
    const workers = pool({ size: 1 });
    const t = freshTarget('local', 'delta-worker-bad');
    const spec: TableSpec<{ id: unknown; d: string }> = {
      name: 'bad_values',
      columns: [
        { name: 'id', type: 'long', nullable: false },
        { name: 'd', type: 'string' },
      ],
      partitionColumns: ['d'],
    };
    const table = await DeltaTable.openOrCreate(t.storage, spec, { encoder: workers });
    await expect(table.append([{ id: 1n, d: 'a' }, { id: 2n ** 63n, d: 'b' }])).rejects.toThrow(/column id, row 1: .*64-bit range/);
    await expect(table.append([{ id: 1n, d: 'a' }, { id: null, d: 'b' }])).rejects.toThrow(/column id, row 1: null in a NOT NULL column/);
    await expect(table.append([{ id: 1.5, d: 'a' }])).rejects.toMatchObject({ name: 'InvalidValueError', retriable: false });
    expect(workers.workersStarted).toBe(0);
    const ok = await table.append([{ id: 3n, d: 'a' }, { id: -(2n ** 63n), d: 'b' }]);
    expect(ok).toMatchObject({ version: 1, rows: 2, files: 2 });
    expect(workers.workersStarted).toBe(1);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['id', 'd'] });
    expect(v.version).toBe(1); // the rejected appends committed nothing
    expect(v.num_rows).toBe(2);
    expect(v.files).toHaveLength(2);
    expect(await parquetFiles(t.uri)).toHaveLength(2); // the rejected appends left no files behind
  });
});
