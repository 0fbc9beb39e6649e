/**
 * DeltaTable against real storage (local disk and the S3 server), judged by delta-rs.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { pinoLogger } from '../../src/core/logger.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import { SchemaMismatchError } from '../../src/sinks/delta/retry.ts';
import { storageFromUri } from '../../src/sinks/delta/storage.ts';
import type { S3ClientLike } from '../../src/sinks/delta/storage.ts';
import { appendWithDeltaRs, stack, uniqueName, verifyDelta } from '../support/stack.ts';
import type { BronzeRow } from './deltaFixtures.ts';
import { BIG_OFFSET, BRONZE_COLUMNS, bronzeRows, bronzeSpec, expectedRow, freshTarget, isoMicros } from './deltaFixtures.ts';

const dedupe = {
  appId: (r: BronzeRow) => `bronze-${r.topic}-${r.partition}`,
  offset: (r: BronzeRow) => r.offset,
};

describe.each(['local', 's3'] as const)('DeltaTable on %s storage', (kind) => {
  it('writes bronze rows that delta-rs reads back exactly', async () => {
    const t = freshTarget(kind);
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_trips'));
    expect(table.version).toBe(0);

    const p0 = bronzeRows({ partition: 0, count: 300 });
    const p3 = bronzeRows({ partition: 3, count: 200, firstOffset: 17n, dates: ['2026-11-22'], payload: (i) => `{"k":"日本語 ${i}","e":"\\u00e9"}` });
    const r1 = await table.append(p0.slice(0, 150), { dedupe });
    const r2 = await table.append([...p0.slice(150), ...p3], { dedupe });
    expect(r1).toMatchObject({ version: 1, rows: 150, skipped: 0, files: 2 });
    expect(r2).toMatchObject({ version: 2, rows: 350, skipped: 0, files: 2 });
    expect(r1.bytes).toBeGreaterThan(0);
    expect(table.txnVersion('bronze-trips-0')).toBe(BIG_OFFSET + 299n);

    const v = await verifyDelta(t.uri, { rows: true, columns: BRONZE_COLUMNS, appIds: ['bronze-trips-0', 'bronze-trips-3', 'nobody'] });
    expect(v.version).toBe(2);
    expect(v.protocol).toEqual({ min_reader_version: 1, min_writer_version: 2 });
    expect(v.partition_columns).toEqual(['_ingestion_date']);
    expect(v.schema).toEqual([
      { name: '_raw_value', type: 'string', nullable: true },
      { name: '_kafka_partition', type: 'integer', nullable: false },
      { name: '_kafka_offset', type: 'long', nullable: false },
      { name: '_kafka_timestamp', type: 'timestamp', nullable: true },
      { name: '_ingested_at', type: 'timestamp', nullable: true },
      { name: '_ingestion_date', type: 'string', nullable: true },
    ]);
    expect(v.txn_exact).toEqual({ 'bronze-trips-0': (BIG_OFFSET + 299n).toString(), 'bronze-trips-3': '216', nobody: null });
    expect(v.num_rows).toBe(500);
    expect(v.history_len).toBe(3);

    // Every value, sorted by offset like the verifier sorts (p3's small offsets first).
    const all = [...p3, ...p0].map(expectedRow);
    expect(v.rows).toEqual(all);

    // Files: one per partition per commit, Hive folders, exact sizes, stats delta-rs parses.
    expect(v.files).toHaveLength(4);
    for (const f of v.files) {
      const date = f.partition_values._ingestion_date as string;
      expect(f.path.startsWith(`_ingestion_date=${date}/part-`)).toBe(true);
      expect(f.path.endsWith('.c000.snappy.parquet')).toBe(true);
      expect(f.stats[`null_count._raw_value`]).toBe(0);
    }
    expect(v.files.reduce((n, f) => n + f.num_records, 0)).toBe(500);
    // commit 1's 2026-11-21 file holds rows 0,2,..,148 of p0 (offset stats exact beyond 2^53)
    const first = v.files.find((f) => f.stats['min._kafka_offset'] === BIG_OFFSET.toString());
    expect(first).toMatchObject({ num_records: 75, partition_values: { _ingestion_date: '2026-11-21' } });
    expect(first?.stats['max._kafka_offset']).toBe((BIG_OFFSET + 148n).toString());
    const minTs = p0[0]?._kafka_timestamp as bigint;
    // timestamps in stats are truncated to milliseconds (min rounded down)
    expect(first?.stats['min._kafka_timestamp']).toBe(isoMicros((minTs / 1000n) * 1000n));
  });

  it('skips a replayed batch: second append returns version null and the table is unchanged', async () => {
    const t = freshTarget(kind);
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_replay'));
    const rows = bronzeRows({ count: 120, partition: 1 });
    const a = await table.append(rows, { dedupe });
    const b = await table.append(rows, { dedupe });
    expect(a).toMatchObject({ version: 1, rows: 120, skipped: 0 });
    expect(b).toMatchObject({ version: null, rows: 0, skipped: 120, files: 0, bytes: 0 });

    // Overlapping replay: only the new tail is written.
    const more = bronzeRows({ count: 150, partition: 1 });
    const c = await table.append(more, { dedupe });
    expect(c).toMatchObject({ version: 2, rows: 30, skipped: 120 });

    // A second handle (another process after a restart) sees the txn and skips too.
    const again = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_replay'));
    expect(again.txnVersion('bronze-trips-1')).toBe(BIG_OFFSET + 149n);
    expect(await again.append(more, { dedupe })).toMatchObject({ version: null, skipped: 150 });

    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_offset'], appIds: ['bronze-trips-1'] });
    expect(v.version).toBe(2);
    expect(v.num_rows).toBe(150);
    expect(new Set(v.rows?.map((r) => r._kafka_offset)).size).toBe(150);
    expect(v.txn_exact['bronze-trips-1']).toBe((BIG_OFFSET + 149n).toString());
  });
});

describe('DeltaTable on local storage', () => {
  it('refuses to open a table whose schema differs, and opens a matching one', async () => {
    const t = freshTarget('local');
    await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_x'));
    const other = bronzeSpec('bronze_x');
    const changed = { ...other, columns: other.columns.map((c) => (c.name === '_kafka_offset' ? { ...c, type: 'integer' as const } : c)) };
    await expect(DeltaTable.openOrCreate(t.storage, changed)).rejects.toBeInstanceOf(SchemaMismatchError);
    await expect(DeltaTable.openOrCreate(t.storage, { ...other, partitionColumns: [] })).rejects.toThrow(/partition columns/);
    const same = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_x'));
    expect(same.version).toBe(0);
  });

  it('interoperates with delta-rs: it appends to our table, we append after it, delta-rs reads all', async () => {
    const t = freshTarget('local');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_interop'));
    const ours1 = bronzeRows({ count: 40, partition: 0 });
    await table.append(ours1, { dedupe });
    const theirs = bronzeRows({ count: 10, partition: 9, firstOffset: 500n, dates: ['2026-11-23'] }).map(expectedRow);
    const theirVersion = await appendWithDeltaRs(t.uri, theirs.map((r) => ({ ...r, _kafka_offset: Number(r._kafka_offset) })));
    expect(theirVersion).toBe(2);
    const ours2 = bronzeRows({ count: 25, partition: 0, firstOffset: BIG_OFFSET + 40n });
    const r = await table.append(ours2, { dedupe });
    expect(r.version).toBe(3); // refreshed past delta-rs's commit
    const v = await verifyDelta(t.uri, { rows: true, columns: BRONZE_COLUMNS, appIds: ['bronze-trips-0'] });
    expect(v.version).toBe(3);
    expect(v.num_rows).toBe(75);
    expect(v.rows).toEqual([...theirs, ...[...ours1, ...ours2].map(expectedRow)]);
    expect(v.txn_exact['bronze-trips-0']).toBe((BIG_OFFSET + 64n).toString());
  });

  it('writes nullable values and other column types that delta-rs reads back', async () => {
    const t = freshTarget('local');
    interface R { id: bigint; s: string | null; b: Uint8Array | null; d: string | null; x: number | null; ok: boolean | null; n: number | null; k: string }
    const table = await DeltaTable.openOrCreate<R>(t.storage, {
      name: 'types',
      columns: [
        { name: 'id', type: 'long', nullable: false },
        { name: 's', type: 'string' },
        { name: 'b', type: 'binary' },
        { name: 'd', type: 'date' },
        { name: 'x', type: 'double' },
        { name: 'ok', type: 'boolean' },
        { name: 'n', type: 'integer' },
        { name: 'k', type: 'string' },
      ],
      partitionColumns: ['k'],
      configuration: { 'delta.appendOnly': 'true' },
    });
    const rows: R[] = [
      { id: 1n, s: 'a'.repeat(40) + 'é', b: new Uint8Array([0, 255, 7]), d: '2026-11-22', x: 1.5, ok: true, n: -7, k: 'a/b c' },
      { id: 2n, s: null, b: null, d: null, x: null, ok: null, n: null, k: 'a/b c' },
      { id: 3n, s: 'zz', b: new Uint8Array(0), d: '1999-12-31', x: -0.25, ok: false, n: 2147483647, k: 'plain' },
    ];
    expect((await table.append(rows)).version).toBe(1);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['id', 's', 'b', 'd', 'x', 'ok', 'n', 'k'] });
    expect(v.rows).toEqual([
      { id: 1, s: 'a'.repeat(40) + 'é', b: { base64: 'AP8H' }, d: '2026-11-22', x: 1.5, ok: true, n: -7, k: 'a/b c' },
      { id: 2, s: null, b: null, d: null, x: null, ok: null, n: null, k: 'a/b c' },
      { id: 3, s: 'zz', b: { base64: '' }, d: '1999-12-31', x: -0.25, ok: false, n: 2147483647, k: 'plain' },
    ]);
    const f = v.files.find((x) => x.partition_values.k === 'a/b c');
    expect(f?.stats['null_count.s']).toBe(1);
    // a long string's min is cut to 32 characters
    expect(f?.stats['min.s']).toBe('a'.repeat(32));
  });

  it('takes concurrent appends on one handle and on two handles of the same process', async () => {
    const t = freshTarget('local');
    const a = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_same_proc'));
    const b = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_same_proc'));
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, p) => (p % 2 ? a : b).append(bronzeRows({ count: 10, partition: p }), { dedupe })),
    );
    expect(results.map((r) => r.version).sort((x, y) => (x as number) - (y as number))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await a.refresh();
    expect(a.version).toBe(8);
    for (let p = 0; p < 8; p++) expect(a.txnVersion(`bronze-trips-${p}`)).toBe(BIG_OFFSET + 9n);
    const v = await verifyDelta(t.uri);
    expect(v.version).toBe(8);
    expect(v.num_rows).toBe(80);
  });
});

describe('S3 storage with a client of the application', () => {
  it("takes an AWS SDK S3Client as its S3ClientLike, and logs a table's warnings through any Logger", async () => {
    const client = new S3Client({
      endpoint: stack.s3.endpoint,
      region: stack.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
    });
    const asLike: S3ClientLike = client; // the SDK's client fits the package's own structural type
    const storage = storageFromUri(`s3://${stack.s3.bucket}/tests/${uniqueName('own-client')}`, { client: asLike });
    const lines: string[] = [];
    const table = await DeltaTable.openOrCreate(storage, bronzeSpec('bronze_own_client'), {
      logger: pinoLogger({ destination: (l) => lines.push(l) }),
      checkpointInterval: 1,
    });
    await table.append(bronzeRows({ count: 5 }), { dedupe });
    const v = await verifyDelta(storage.uri);
    expect([v.version, v.num_rows]).toEqual([1, 5]);
    expect(lines).toEqual([]); // nothing went wrong, nothing logged
    client.destroy();
  });
});
