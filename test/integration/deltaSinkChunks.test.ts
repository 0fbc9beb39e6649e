/**
 * deltaSink fed chunks (`bufferTime({ chunkRecords })`): each chunk is encoded into the batch's
 * files on arrival (`DeltaTable.stage`), the batch is committed at its last chunk — one file per
 * partition value, one commit per batch — exactly once, judged by delta-rs.
 */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { lastValueFrom, Subject, from, tap, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { BatchChunk } from '../../src/operators/bufferTime.ts';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import { bronzeTableSpec } from '../../src/pipelines/bronze/tables.ts';
import type { Storage } from '../../src/sinks/delta/storage.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { SinkAck } from '../../src/types.ts';
import { stack, verifyDelta } from '../support/stack.ts';
import type { BronzeRow } from './deltaFixtures.ts';
import { BIG_OFFSET, bronzeRows, bronzeSpec, expectedRow, freshTarget, instrumented } from './deltaFixtures.ts';

// Chunks are encoded on the calling thread whatever the table's encoder (checked by the first test).
const inline = { encoder: 'inline' as const };

const chunk = (records: BronzeRow[], last: boolean): BatchChunk<BronzeRow> => ({ records, last });

async function parquetFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.parquet')).sort();
}

/** Row groups per file, as pyarrow reads them. */
async function rowGroups(root: string): Promise<number[]> {
  const files = (await parquetFiles(root)).map((f) => join(root, f));
  const script = 'import sys, pyarrow.parquet as pq; print(" ".join(str(pq.ParquetFile(f).num_row_groups) for f in sys.argv[1:]))';
  const { stdout } = await promisify(execFile)(stack.python, ['-c', script, ...files]);
  return stdout.trim().split(' ').map(Number);
}

/** Per file, the encodings of each column chunk of `column`, as pyarrow reads them. */
async function encodingsOf(root: string, column: string): Promise<string[][]> {
  const files = (await parquetFiles(root)).map((f) => join(root, f));
  const script = [
    'import json, sys, pyarrow.parquet as pq',
    'out = []',
    'for f in sys.argv[2:]:',
    '    md = pq.ParquetFile(f).metadata',
    '    i = [md.schema.column(j).name for j in range(md.num_columns)].index(sys.argv[1])',
    '    out.append(sorted({e for g in range(md.num_row_groups) for e in md.row_group(g).column(i).encodings}))',
    'print(json.dumps(out))',
  ].join('\n');
  const { stdout } = await promisify(execFile)(stack.python, ['-c', script, column, ...files]);
  return JSON.parse(stdout) as string[][];
}

describe('deltaSink with chunks', () => {
  it.each([
    ['local', 'inline'],
    ['s3', 'inline'],
    ['local', 'worker'],
  ] as const)('commits each batch once at its last chunk, one file per date (%s, %s encoder)', async (kind, encoder) => {
    const t = freshTarget(kind, 'delta-chunks');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks'), { encoder });
    // Two partitions, two dates, 1,000 rows in chunks of 64: two batches of 600 and 400.
    const rows = [...bronzeRows({ count: 500, partition: 0 }), ...bronzeRows({ count: 500, partition: 3, firstOffset: 11n })];
    const seen: number[] = [];
    const acks = await lastValueFrom(
      from(rows).pipe(
        bufferTime({ timeSpan: 60_000, maxRecords: 600, chunkRecords: 64 }),
        tap((c) => seen.push(c.records.length)),
        deltaSink(table, { pipelineId: 'bronze' }),
        toArray(),
      ),
    );
    expect(seen.filter((n) => n > 0).length).toBeGreaterThan(10);
    expect(acks.map((a) => [a.version, a.rows, a.skipped, a.refs.length])).toEqual([
      [1, 600, 0, 600],
      [2, 400, 0, 400],
    ]);
    // The ack lists every record by reference, in order.
    expect(acks.flatMap((a) => a.refs.map((r) => `${r.topic}/${r.partition}/${r.offset}`))).toEqual(rows.map((r) => `${r.topic}/${r.partition}/${r.offset}`));
    const v = await verifyDelta(t.uri, { rows: true, appIds: ['bronze-trips-0', 'bronze-trips-3'] });
    expect(v.version).toBe(2);
    expect(v.num_rows).toBe(1000);
    // One file per date per commit, however many chunks.
    expect(v.files).toHaveLength(4);
    expect(v.files.map((f) => f.num_records).reduce((a, b) => a + b, 0)).toBe(1000);
    expect(v.txn_exact).toEqual({ 'bronze-trips-0': (BIG_OFFSET + 499n).toString(), 'bronze-trips-3': '510' });
    if (kind === 'local') {
      // Every chunk became a row group of its date's file as it arrived (whatever the encoder).
      const groups = await rowGroups(t.uri);
      expect(groups).toHaveLength(4);
      expect(groups.every((g) => g >= 5)).toBe(true);
    }
    const key = (r: Record<string, unknown>): string => `${String(r['_kafka_partition'])}/${String(r['_kafka_offset'])}`;
    const got = [...(v.rows ?? [])].sort((a, b) => key(a).localeCompare(key(b)));
    const want = rows.map(expectedRow).sort((a, b) => key(a).localeCompare(key(b)));
    expect(got).toEqual(want);
  });

  it('a file built chunk by chunk carries the same Delta stats as the same rows written whole', async () => {
    const whole = freshTarget('local', 'delta-chunks-stats-whole');
    const chunked = freshTarget('local', 'delta-chunks-stats-chunked');
    const a = await DeltaTable.openOrCreate(whole.storage, bronzeSpec('bronze_stats'), inline);
    const b = await DeltaTable.openOrCreate(chunked.storage, bronzeSpec('bronze_stats'), inline);
    // Nulls in some rows, two dates, two partitions: min, max and null counts over many row groups.
    const rows = [...bronzeRows({ count: 700, partition: 0 }), ...bronzeRows({ count: 300, partition: 9, firstOffset: 5n })].map((r, i) =>
      i % 97 === 0 ? { ...r, value: null, _kafka_timestamp: null as unknown as bigint } : r,
    );
    await lastValueFrom(from([rows]).pipe(deltaSink(a), toArray()));
    const chunks = Array.from({ length: 16 }, (_, k) => chunk(rows.slice(k * 64, (k + 1) * 64), k === 15));
    await lastValueFrom(from(chunks).pipe(deltaSink(b), toArray()));
    const statsOf = async (uri: string): Promise<unknown[]> =>
      (await verifyDelta(uri)).files
        .map((f) => ({ date: f.partition_values['_ingestion_date'], records: f.num_records, stats: f.stats }))
        .sort((x, y) => String(x.date).localeCompare(String(y.date)));
    const want = await statsOf(whole.uri);
    expect(want).toHaveLength(2);
    // As delta-rs reads the stats: flattened `min.`, `max.`, `null_count.` per column.
    const first = want[0] as { stats: Record<string, unknown> };
    expect(first.stats['null_count._kafka_timestamp']).toBeGreaterThan(0);
    expect(first.stats['min._kafka_timestamp']).toBeTruthy();
    expect(first.stats['max._kafka_offset']).toBeTruthy();
    expect(await statsOf(chunked.uri)).toEqual(want);
    expect((await rowGroups(chunked.uri)).every((g) => g >= 8)).toBe(true);
  });

  it('bronze tables: every column PLAIN (no dictionary), definition levels RLE, as the flat writer writes them', async () => {
    const t = freshTarget('local', 'delta-chunks-plain');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeTableSpec('trips'), inline);
    // Payloads repeat (a dictionary would win on them): PLAIN all the same, as configured.
    const rows = bronzeRows({ count: 3000, partition: 0, dates: ['2026-11-22'], payload: (i) => `{"n":${i % 3}}` });
    await lastValueFrom(from([chunk(rows.slice(0, 1500), false), chunk(rows.slice(1500), true)]).pipe(deltaSink(table), toArray()));
    expect(await encodingsOf(t.uri, '_raw_value')).toEqual([['PLAIN', 'RLE']]);
    // Small repeated values too: SNAPPY over PLAIN pages made files of the same size as
    // dictionaries did (bench/encoding.bench.ts), without the per-value hashing.
    expect(await encodingsOf(t.uri, '_kafka_partition')).toEqual([['PLAIN', 'RLE']]);
    expect((await verifyDelta(t.uri)).num_rows).toBe(3000);
  });

  it('skips staged rows the table already holds (replay), by row', async () => {
    const t = freshTarget('local', 'delta-chunks-replay');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_replay'), inline);
    const b = bronzeRows({ count: 100, partition: 5 });
    await table.append(b.slice(0, 60), { dedupe: { appId: (r) => `rxlake-${r.topic}-${r.partition}`, offset: (r) => r.offset } });
    const acks = await lastValueFrom(
      from([chunk(b.slice(0, 40), false), chunk(b.slice(40, 80), false), chunk(b.slice(80), true), chunk(b.slice(0, 10), true)]).pipe(deltaSink(table), toArray()),
    );
    expect(acks.map((a) => [a.version, a.rows, a.skipped, a.refs.length])).toEqual([
      [2, 40, 60, 100],
      [null, 0, 10, 10],
    ]);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_offset'] });
    expect(v.num_rows).toBe(100);
    expect(new Set(v.rows?.map((r) => String(r['_kafka_offset']))).size).toBe(100);
  });

  it('a record delivered again is staged once: within a batch, and while the previous batch commits', async () => {
    const t = freshTarget('local', 'delta-chunks-again');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_again'), inline);
    const b = bronzeRows({ count: 120, partition: 4, firstOffset: 0n });
    // Batch 1: offsets 0–49, then 30–79 again (a rebalance back to this member re-reads from
    // the committed offset). Batch 2, staged while batch 1 commits: 70–119.
    const acks = await lastValueFrom(
      from([chunk(b.slice(0, 50), false), chunk(b.slice(30, 80), true), chunk(b.slice(70, 120), true)]).pipe(deltaSink(table), toArray()),
    );
    expect(acks.map((a) => [a.version, a.rows, a.skipped, a.refs.length])).toEqual([
      [1, 80, 20, 80],
      [2, 40, 10, 50],
    ]);
    // Each ack names every record of its batch once (a second copy is the same record).
    const offsets = (from: number, to: number): bigint[] => Array.from({ length: to - from }, (_, i) => BigInt(from + i));
    expect(acks.map((a) => a.refs.map((r) => r.offset))).toEqual([offsets(0, 80), offsets(70, 120)]);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_offset'] });
    expect(v.num_rows).toBe(120);
    expect(new Set(v.rows?.map((r) => String(r['_kafka_offset']))).size).toBe(120);
  });

  it('after an error, the same table handle stages the same offsets again (nothing left reserved)', async () => {
    const t = freshTarget('local', 'delta-chunks-again-err');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_again_err'), inline);
    const b = bronzeRows({ count: 60, partition: 1, firstOffset: 0n });
    const bad = { ...(b[55] as BronzeRow), _kafka_partition: null as unknown as number };
    await expect(lastValueFrom(from([chunk(b.slice(0, 50), false), chunk([bad], true)]).pipe(deltaSink(table)))).rejects.toThrow(/NOT NULL/);
    const acks = await lastValueFrom(from([chunk(b.slice(0, 30), false), chunk(b.slice(30), true)]).pipe(deltaSink(table), toArray()));
    expect(acks.map((a) => [a.version, a.rows, a.skipped])).toEqual([[1, 60, 0]]);
    expect((await verifyDelta(t.uri)).num_rows).toBe(60);
  });

  it('retries a failed commit with the encoded files, then acks once', async () => {
    const t = freshTarget('local', 'delta-chunks-retry');
    await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_retry'), inline);
    const flaky = instrumented(t.storage, { failures: 4, failOps: ['write', 'putIfAbsent'] });
    const table = await DeltaTable.openOrCreate(flaky, bronzeSpec('bronze_chunks_retry'), inline);
    const b = bronzeRows({ count: 90, partition: 1, dates: ['2026-11-22'] });
    const attempts: number[] = [];
    const acks = await lastValueFrom(
      from([chunk(b.slice(0, 30), false), chunk(b.slice(30, 60), false), chunk(b.slice(60), true)]).pipe(
        deltaSink(table, { retry: { initialMs: 5, maxMs: 20 }, onWriteError: (_e, a) => attempts.push(a) }),
        toArray(),
      ),
    );
    expect(flaky.failed).toBe(4);
    expect(attempts).toEqual([1, 2, 3, 4]);
    expect(acks.map((a) => [a.version, a.rows])).toEqual([[1, 90]]);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_offset'] });
    expect(v.num_rows).toBe(90);
    expect(v.files).toHaveLength(1);
  });

  it('a commit that landed although it reported a failure is not written twice', async () => {
    const t = freshTarget('local', 'delta-chunks-landed');
    await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_landed'), inline);
    // The first commit creation succeeds, then reports a connection reset.
    let lied = false;
    const inner = t.storage;
    const liar = {
      ...inner,
      uri: inner.uri,
      sub: (p: string) => inner.sub(p),
      read: (p: string) => inner.read(p),
      write: (p: string, d: Uint8Array) => inner.write(p, d),
      list: (p: string, s?: string) => inner.list(p, s),
      delete: (p: string) => inner.delete(p),
      putIfAbsent: async (p: string, d: Uint8Array) => {
        const ok = await inner.putIfAbsent(p, d);
        if (!lied && p.includes('_delta_log/00000000000000000001')) {
          lied = true;
          throw Object.assign(new Error('injected: reset after the write'), { retriable: true });
        }
        return ok;
      },
    };
    const table = await DeltaTable.openOrCreate(liar, bronzeSpec('bronze_chunks_landed'), inline);
    const b = bronzeRows({ count: 50, partition: 2, dates: ['2026-11-22'] });
    const acks = await lastValueFrom(
      from([chunk(b.slice(0, 25), false), chunk(b.slice(25), true)]).pipe(deltaSink(table, { retry: { initialMs: 5, maxMs: 20 } }), toArray()),
    );
    expect(lied).toBe(true);
    expect(acks.map((a) => [a.version, a.rows, a.skipped, a.refs.length])).toEqual([[null, 0, 50, 50]]);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_offset'] });
    expect(v.version).toBe(1);
    expect(v.num_rows).toBe(50);
  });

  it('drops staged rows another writer committed meanwhile (before the commit and after a lost race), keeps the rest', async () => {
    const t = freshTarget('local', 'delta-chunks-conflict');
    // Handle A's storage can let the other writer commit just before A's next commit creation.
    let before: (() => Promise<void>) | undefined;
    const inner = t.storage;
    const racy: Storage = {
      uri: inner.uri,
      sub: (p) => inner.sub(p),
      read: (p) => inner.read(p),
      write: (p, d) => inner.write(p, d),
      list: (p, x) => inner.list(p, x),
      delete: (p) => inner.delete(p),
      putIfAbsent: async (p, d) => {
        const hook = p.includes('_delta_log/') ? before : undefined;
        before = undefined;
        await hook?.();
        return inner.putIfAbsent(p, d);
      },
    };
    const a = await DeltaTable.openOrCreate(racy, bronzeSpec('bronze_chunks_conflict'), inline);
    const other = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_conflict'), inline);
    const dedupe = { appId: (r: BronzeRow) => `p-${r.partition}`, offset: (r: BronzeRow) => r.offset };
    const b = bronzeRows({ count: 200, partition: 1, firstOffset: 0n });
    const c = bronzeRows({ count: 10, partition: 7, firstOffset: 0n });

    // Another partition committed by the other writer: nothing to drop, A commits after it.
    const s1 = a.stage({ dedupe });
    s1.add(b.slice(0, 50));
    await other.append(c, { dedupe });
    expect(await s1.commit()).toMatchObject({ version: 2, rows: 50, skipped: 0 });

    // Offsets 50–69 of the 50–99 staged here committed by the other writer first: A writes 70–99.
    const s2 = a.stage({ dedupe });
    s2.add(b.slice(50, 75));
    s2.add(b.slice(75, 100));
    await other.append(b.slice(50, 70), { dedupe });
    expect(await s2.commit()).toMatchObject({ version: 4, rows: 30, skipped: 20 });

    // The other writer commits 100–129 between A's check and A's commit: A loses the race,
    // drops those and commits 130–149.
    const s3 = a.stage({ dedupe });
    s3.add(b.slice(100, 150));
    before = async () => {
      await other.append(b.slice(100, 130), { dedupe });
    };
    expect(await s3.commit()).toMatchObject({ version: 6, rows: 20, skipped: 30, attempts: 2 });

    // All of them committed by the other writer: nothing to do.
    const s4 = a.stage({ dedupe });
    s4.add(b.slice(150, 200));
    await other.append(b.slice(150, 200), { dedupe });
    expect(await s4.commit()).toMatchObject({ version: null, rows: 0, skipped: 50 });

    const v = await verifyDelta(t.uri, { rows: true });
    expect(v.num_rows).toBe(210);
    const key = (r: Record<string, unknown>): string => `${String(r['_kafka_partition'])}/${String(r['_kafka_offset'])}`;
    expect(new Set(v.rows?.map(key)).size).toBe(210);
    // Rows read back and encoded again are the same rows, to the byte and the microsecond.
    const want = [...b, ...c].map(expectedRow).sort((x, y) => key(x).localeCompare(key(y)));
    expect([...(v.rows ?? [])].sort((x, y) => key(x).localeCompare(key(y)))).toEqual(want);
  });

  it('a bad value errors the stream at once; nothing is written', async () => {
    const t = freshTarget('local', 'delta-chunks-bad');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_bad'), inline);
    const rows = bronzeRows({ count: 20 });
    const bad = rows.map((r, i) => (i === 15 ? { ...r, _kafka_partition: null as unknown as number } : r));
    const attempts: number[] = [];
    await expect(
      lastValueFrom(from([chunk(bad.slice(0, 10), false), chunk(bad.slice(10), true)]).pipe(deltaSink(table, { onWriteError: (_e, a) => attempts.push(a) }))),
    ).rejects.toThrow(/_kafka_partition.*NOT NULL/);
    expect(attempts).toEqual([1]);
    expect((await verifyDelta(t.uri)).version).toBe(0);
    expect(await parquetFiles(t.uri)).toEqual([]);
  });

  it('unsubscribing drops a batch being staged: no file, no commit', async () => {
    const t = freshTarget('local', 'delta-chunks-unsub');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_chunks_unsub'), inline);
    const input = new Subject<BatchChunk<BronzeRow>>();
    const acks: SinkAck[] = [];
    const rows = bronzeRows({ count: 30 });
    const sub = input.pipe(deltaSink(table)).subscribe((a) => acks.push(a));
    input.next(chunk(rows, false));
    sub.unsubscribe();
    // Dropped on the spot: the handle holds none of its rows any more (a batch still staged or
    // being committed would), so the same rows stage again in full.
    const again = table.stage({ dedupe: { appId: (r: BronzeRow) => `rxlake-${r.topic}-${r.partition}`, offset: (r: BronzeRow) => r.offset } });
    expect(again.add(rows)).toEqual({ rows: 30, skipped: 0 });
    again.discard();
    expect((await verifyDelta(t.uri)).version).toBe(0);
    expect(await parquetFiles(t.uri)).toEqual([]);
    // The next batch through the same handle is the table's first commit, and its files are the
    // only ones: nothing of the dropped batch was committed before it or left behind.
    const later = await lastValueFrom(from([chunk(rows, true)]).pipe(deltaSink(table), toArray()));
    expect(later.map((a) => [a.version, a.rows, a.skipped])).toEqual([[1, 30, 0]]);
    expect(acks).toEqual([]);
    const v = await verifyDelta(t.uri);
    expect(v.version).toBe(1);
    expect(v.num_rows).toBe(30);
    expect(await parquetFiles(t.uri)).toEqual(v.files.map((f) => decodeURIComponent(f.path)).sort());
  });
});
