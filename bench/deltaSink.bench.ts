/**
 * Delta sink throughput: 1M bronze rows (~400-byte JSON payloads as Uint8Array, as Kafka hands
 * them over) in 10 batches appended to a table on local disk, against the same rows written by
 * hyparquet-writer alone (columns extracted, one Parquet buffer per batch, nothing else).
 *
 * Run: npx tsx bench/deltaSink.bench.ts [rows] [batches]
 * Env: BENCH_FSYNC=0 skips fsync on local disk; BENCH_S3=1 writes to the local stack's S3
 * server instead (bucket rxlake, a fresh prefix); BENCH_ENCODER=inline encodes Parquet on the
 * calling thread instead of a worker thread (the default).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { defaultCompressors } from '../src/sinks/delta/snappy.ts';
import { lastValueFrom, of } from 'rxjs';
import { deltaSink } from '../src/operators/deltaSink.ts';
import { bronzeTableSpec } from '../src/pipelines/bronze/tables.ts';
import { parquetSchema } from '../src/sinks/delta/schema.ts';
import type { TableSpec } from '../src/sinks/delta/schema.ts';
import { localStorage, s3Storage } from '../src/sinks/delta/storage.ts';
import type { Storage } from '../src/sinks/delta/storage.ts';
import { stack, uniqueName } from '../test/support/stack.ts';
import { DeltaTable } from '../src/sinks/delta/table.ts';
import type { EnrichedRecord } from '../src/types.ts';

const TOTAL = Number(process.argv[2] ?? 1_000_000);
const BATCHES = Number(process.argv[3] ?? 10);
const PER_BATCH = Math.ceil(TOTAL / BATCHES);

// The bronze table layout, exactly as the bronze pipeline writes it.
const spec: TableSpec<EnrichedRecord> = bronzeTableSpec('bench');

const cities = ['São Paulo', 'Rio de Janeiro', 'Belo Horizonte', 'Curitiba', 'Recife', 'Porto Alegre'];
const statuses = ['requested', 'accepted', 'in_progress', 'completed', 'cancelled'];

/** One batch of rows whose payloads are slices of one buffer, like a Kafka fetch. */
function makeBatch(batch: number): { rows: EnrichedRecord[]; payloadBytes: number } {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (let i = 0; i < PER_BATCH; i++) {
    const n = batch * PER_BATCH + i;
    const json = JSON.stringify({
      event_id: `evt-${n.toString(16).padStart(12, '0')}-${(n * 2654435761) % 1e9}`,
      event_type: 'trip.status_changed',
      trip_id: `trip-${(n % 50_000).toString(36)}`,
      rider_id: `rider-${(n * 7919) % 100_000}`,
      driver_id: `driver-${(n * 104729) % 20_000}`,
      status: statuses[n % statuses.length],
      city: cities[n % cities.length],
      pickup: { lat: -23.5 + ((n * 37) % 1000) / 10_000, lon: -46.6 + ((n * 91) % 1000) / 10_000 },
      fare: { amount: ((n * 131) % 10_000) / 100, currency: 'BRL' },
      timestamp: new Date(1_795_000_000_000 + n * 13).toISOString(),
      session_id: `sess-${(n * 31) % 1_000_000}`,
      correlation_id: `corr-${n.toString(36)}`,
      pad: 'x'.repeat(40 + (n % 20)),
    });
    const b = enc.encode(json);
    parts.push(b);
    size += b.byteLength;
  }
  const all = Buffer.allocUnsafe(size);
  let at = 0;
  const rows: EnrichedRecord[] = parts.map((p, i) => {
    all.set(p, at);
    const value = all.subarray(at, at + p.byteLength);
    at += p.byteLength;
    const n = batch * PER_BATCH + i;
    const ts = 1_795_000_000_000_000n + BigInt(n) * 13_000n;
    return {
      topic: 'trips',
      partition: n % 6,
      offset: BigInt(n),
      timestamp: Number(ts / 1000n),
      key: null,
      value,
      headers: {},
      size: value.byteLength,
      _kafka_partition: n % 6,
      _kafka_offset: BigInt(n),
      _kafka_timestamp: ts,
      _ingested_at: ts + 1234n,
      _ingestion_date: '2026-11-18',
    };
  });
  return { rows, payloadBytes: size };
}

/** hyparquet-writer alone: extract the same five data columns, write one Parquet buffer (in memory). */
function rawWrite(rows: readonly EnrichedRecord[]): number {
  const dataColumns = spec.columns.filter((c) => c.name !== '_ingestion_date');
  const buf = parquetWriteBuffer({
    schema: parquetSchema(dataColumns as TableSpec<unknown>['columns']),
    columnData: [
      // The sink's settings: no min/max for the payload column (its spec says `stats: false`),
      // 64 KiB pages — so only the sink's own work differs.
      { name: '_raw_value', data: rows.map((r) => r.value), statistics: false },
      { name: '_kafka_partition', data: rows.map((r) => r._kafka_partition) },
      { name: '_kafka_offset', data: rows.map((r) => r._kafka_offset) },
      { name: '_kafka_timestamp', data: rows.map((r) => r._kafka_timestamp) },
      { name: '_ingested_at', data: rows.map((r) => r._ingested_at) },
    ],
    rowGroupSize: 131_072,
    pageSize: 65_536,
    // The same SNAPPY implementation the sink uses (native when it loads), so only the work differs.
    compressors: defaultCompressors,
  });
  return buf.byteLength;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rxlake-bench-'));
  const fsync = process.env.BENCH_FSYNC !== '0';
  const onS3 = process.env.BENCH_S3 === '1';
  const storage: Storage = onS3
    ? s3Storage({
      bucket: stack.s3.bucket,
      prefix: `bench/${uniqueName('bronze_bench')}`,
      endpoint: stack.s3.endpoint,
      region: stack.s3.region,
      credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
    })
    : localStorage(join(dir, 'bronze_bench'), { fsync });
  const table = await DeltaTable.openOrCreate(storage, spec, { encoder: process.env.BENCH_ENCODER === 'inline' ? 'inline' : 'worker' });
  const sink = deltaSink(table, { pipelineId: 'bench' });
  let sinkMs = 0;
  let rawMs = 0;
  let rows = 0;
  let payload = 0;
  let sinkBytes = 0;
  let rawBytes = 0;
  for (let b = 0; b < BATCHES; b++) {
    const batch = makeBatch(b);
    rows += batch.rows.length;
    payload += batch.payloadBytes;
    const runSink = async (): Promise<void> => {
      const t0 = performance.now();
      const r = await lastValueFrom(of(batch.rows).pipe(sink));
      sinkMs += performance.now() - t0;
      sinkBytes += r.bytes;
      if (r.rows !== batch.rows.length) throw new Error(`sink wrote ${r.rows} of ${batch.rows.length}`);
    };
    const runRaw = (): void => {
      const t0 = performance.now();
      rawBytes += rawWrite(batch.rows);
      rawMs += performance.now() - t0;
    };
    // Alternate the order so neither side always pays for the other's garbage.
    if (b % 2 === 0) {
      await runSink();
      runRaw();
    } else {
      runRaw();
      await runSink();
    }
  }
  const mb = payload / 1e6;
  const line = (name: string, ms: number, out: number): string =>
    `${name.padEnd(22)} ${(rows / (ms / 1000)).toFixed(0).padStart(9)} rows/s  ${(mb / (ms / 1000)).toFixed(1).padStart(7)} MB/s payload  ${(ms / 1000).toFixed(2).padStart(6)} s  ${(out / 1e6).toFixed(1)} MB Parquet`;
  console.log(`${rows} rows, ${BATCHES} batches, ${(payload / rows).toFixed(0)} B/payload avg, ${mb.toFixed(0)} MB payload; table version ${table.version}`);
  console.log(line(onS3 ? 'deltaSink (S3 server)' : 'deltaSink (local disk)', sinkMs, sinkBytes));
  console.log(line('hyparquet-writer alone', rawMs, rawBytes));
  console.log(`ratio sink/raw throughput: ${((rawMs / sinkMs) * 100).toFixed(1)}%`);
  rmSync(dir, { recursive: true, force: true });
}

await main();
