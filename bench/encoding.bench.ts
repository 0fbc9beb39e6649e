/**
 * Parquet encoders for the sinks' two table shapes, same rows, same machine, one process:
 *
 *   flat        the sinks' default: values straight from the column arrays (payloads as the
 *               fetched bytes) into reused pages (src/sinks/delta/flatParquet.ts)
 *   hyparquet   hyparquet-writer (`ParquetOptions.writer: 'hyparquet'`), native SNAPPY
 *   wasm        parquet-wasm (arrow-rs in WebAssembly): columns packed (`packColumns`), made an
 *               Arrow table (apache-arrow), handed over as Arrow IPC, written with SNAPPY
 *   pool        the flat writer on a worker thread (`ParquetWorkerPool`, one worker): the
 *               calling thread packs and transfers the columns; main-thread CPU is what it saves
 *
 * Shapes: `main` is the bronze table (400-byte JSON payloads as slices of one fetch-sized
 * buffer, partition, offset, two timestamps; files of 50,000 rows written in chunks of 5,000 as
 * the staged sink does), `dlq` the dead-letter table (error texts, the payload as text and
 * bytes, tracing ids; files of 10,000 rows). Every file is read back by hyparquet and its row
 * count checked.
 *
 *   node bench/encoding.bench.ts [--rows 500000] [--rounds 3]         (Node 22.18+)
 *   npx tsx bench/encoding.bench.ts                                    (Node 20)
 *
 * Prints rows/s (median round), CPU seconds per 1M rows (whole process and main thread) and
 * MB written, per shape and encoder. Rounds alternate the encoders.
 */
import { parquetMetadata } from 'hyparquet';
import { Binary, Int32, Int64, Table, TimeUnit, Timestamp, Utf8, makeData, makeVector, tableToIPC } from 'apache-arrow';
import type { Data, DataType } from 'apache-arrow';
import * as wasm from 'parquet-wasm/node';
import { bronzeTableSpec } from '../src/pipelines/bronze/tables.ts';
import { createEventGenerator, padJson } from '../src/pipelines/rideshare/events.ts';
import { deadLetterTableSpec } from '../src/sinks/deadLetterTable.ts';
import { packColumns } from '../src/sinks/delta/columnar.ts';
import type { PackedColumn } from '../src/sinks/delta/columnar.ts';
import { ParquetFileBuilder, columnArray } from '../src/sinks/delta/parquet.ts';
import { ParquetWorkerPool } from '../src/sinks/delta/parquetPool.ts';
import type { ColumnSpec } from '../src/sinks/delta/schema.ts';
import { parquetSchema } from '../src/sinks/delta/schema.ts';
import type { DeadLetterRow, EnrichedRecord } from '../src/types.ts';
import { arg, cpuMeter } from './measure.ts';

const totalRows = arg('rows', 500_000);
const rounds = arg('rounds', 3);

interface Shape<Row> {
  readonly name: string;
  readonly columns: readonly ColumnSpec<Row>[];
  readonly fileRows: number;
  readonly chunkRows: number;
  readonly files: Row[][];
}

function mainShape(): Shape<EnrichedRecord> {
  const gen = createEventGenerator({ seed: 5 });
  const spec = bronzeTableSpec('gps_pings');
  const columns = spec.columns.filter((c) => c.name !== '_ingestion_date');
  const fileRows = 50_000;
  const files: EnrichedRecord[][] = [];
  const t0 = 1_795_000_000_000;
  for (let f = 0; f * fileRows < totalRows; f++) {
    const n = Math.min(fileRows, totalRows - f * fileRows);
    const parts = Array.from({ length: n }, () => Buffer.from(padJson(JSON.stringify(gen.next('gps_pings').value), 400)));
    const all = Buffer.concat(parts);
    let at = 0;
    files.push(
      parts.map((p, i) => {
        const value = all.subarray(at, at + p.length);
        at += p.length;
        const offset = BigInt(f * fileRows + i);
        const ts = BigInt(t0 + Math.floor(i / 40)) * 1000n;
        return { topic: 'gps_pings', partition: i % 6, offset, timestamp: 0, key: null, value, headers: {}, size: p.length, _kafka_partition: i % 6, _kafka_offset: offset, _kafka_timestamp: ts, _ingested_at: ts + 5_000n, _ingestion_date: '2026-11-18' };
      }),
    );
  }
  return { name: 'main', columns, fileRows, chunkRows: 5_000, files };
}

function dlqShape(): Shape<DeadLetterRow> {
  const gen = createEventGenerator({ seed: 9 });
  const columns = deadLetterTableSpec('dlq').columns;
  const fileRows = 10_000;
  const files: DeadLetterRow[][] = [];
  const types = ['JSON_PARSE_ERROR', 'SCHEMA_VALIDATION_ERROR', 'ENCODING_ERROR', 'NULL_VALUE'] as const;
  for (let f = 0; f * fileRows < totalRows; f++) {
    const n = Math.min(fileRows, totalRows - f * fileRows);
    files.push(
      Array.from({ length: n }, (_, i): DeadLetterRow => {
        const text = padJson(JSON.stringify(gen.next('trips').value), 400);
        const offset = BigInt(f * fileRows + i);
        return {
          topic: 'trips',
          partition: i % 6,
          offset,
          size: text.length,
          error_type: types[i % types.length] as DeadLetterRow['error_type'],
          error_message: `Invalid value ${i % 97} supplied to : TripEvent/fare_amount: number (at offset ${i})`,
          original_payload: text,
          original_payload_bytes: Buffer.from(text),
          kafka_topic: 'trips',
          _kafka_partition: i % 6,
          _kafka_offset: offset,
          _kafka_timestamp: 1_795_000_000_000_000n + BigInt(i) * 1000n,
          _ingested_at: 1_795_000_000_500_000n + BigInt(i) * 1000n,
          session_id: i % 3 === 0 ? null : `sess-${i % 1000}`,
          correlation_id: `corr-${i}`,
          causation_id: null,
        };
      }),
    );
  }
  return { name: 'dlq', columns, fileRows, chunkRows: fileRows, files };
}

type Encoder = <Row>(shape: Shape<Row>, rows: Row[]) => Promise<Uint8Array> | Uint8Array;

function builderEncoder(writer: 'flat' | 'hyparquet'): Encoder {
  return (shape, rows) => {
    const b = new ParquetFileBuilder(shape.columns, { writer }, parquetSchema(shape.columns as readonly ColumnSpec<unknown>[]));
    for (let start = 0; start < rows.length; start += shape.chunkRows) {
      const indices = Array.from({ length: Math.min(shape.chunkRows, rows.length - start) }, (_, i) => start + i);
      b.writeColumns(shape.columns.map((c) => columnArray(rows, c, indices)), indices.length);
    }
    return b.finish().bytes;
  };
}

/** Arrow validity bitmap (1 = valid) from packed nulls (1 = null). */
function validity(nulls: Uint8Array | undefined, n: number): Uint8Array | undefined {
  if (!nulls) return undefined;
  const out = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (nulls[i] === 0) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  return out;
}

function arrowData(c: PackedColumn, n: number): Data<DataType> {
  const nullBitmap = validity(c.nulls, n);
  const nullCount = c.nulls ? c.nulls.reduce((a, b) => a + b, 0) : 0;
  const common = { length: n, nullCount, ...(nullBitmap ? { nullBitmap } : {}) };
  switch (c.type) {
    case 'string':
      return makeData({ type: new Utf8(), valueOffsets: c.offsets as Int32Array, data: c.bytes as Uint8Array, ...common }) as Data<DataType>;
    case 'binary':
      return makeData({ type: new Binary(), valueOffsets: c.offsets as Int32Array, data: c.bytes as Uint8Array, ...common }) as Data<DataType>;
    case 'integer':
      return makeData({ type: new Int32(), data: c.ints as Int32Array, ...common }) as Data<DataType>;
    default:
      throw new Error(`no Arrow mapping for ${c.type}`);
  }
}

function arrowColumn(c: PackedColumn, n: number): Data<DataType> {
  if (c.type === 'long' || c.type === 'timestamp') {
    const type = c.type === 'long' ? new Int64() : new Timestamp(TimeUnit.MICROSECOND, 'UTC');
    const nullBitmap = validity(c.nulls, n);
    const nullCount = c.nulls ? c.nulls.reduce((a, b) => a + b, 0) : 0;
    return makeData({ type, data: c.longs as BigInt64Array, length: n, nullCount, ...(nullBitmap ? { nullBitmap } : {}) } as never) as Data<DataType>;
  }
  return arrowData(c, n);
}

const wasmProps = (): wasm.WriterProperties =>
  new wasm.WriterPropertiesBuilder().setCompression(wasm.Compression.SNAPPY).setDictionaryEnabled(false).setMaxRowGroupSize(131_072).setCreatedBy('rxlake').build();

const wasmEncoder: Encoder = (shape, rows) => {
  const packed = packColumns(rows, shape.columns);
  const vectors: Record<string, ReturnType<typeof makeVector>> = {};
  for (const c of packed.columns) vectors[c.name] = makeVector(arrowColumn(c, packed.numRecords));
  const ipc = tableToIPC(new Table(vectors), 'stream');
  return wasm.writeParquet(wasm.Table.fromIPCStream(ipc), wasmProps());
};

const pool = new ParquetWorkerPool({ size: 1 });
const poolEncoder: Encoder = async (shape, rows) => {
  const file = packColumns(rows, shape.columns, undefined, pool.allocate);
  return (await pool.encode(file, parquetSchema(shape.columns as readonly ColumnSpec<unknown>[]))).bytes;
};

const encoders: Array<[string, Encoder]> = [
  ['flat', builderEncoder('flat')],
  ['hyparquet', builderEncoder('hyparquet')],
  ['wasm', wasmEncoder],
  ['pool', poolEncoder],
];

interface Result {
  seconds: number;
  cpu: number;
  main: number | undefined;
  bytes: number;
}

async function runOnce<Row>(shape: Shape<Row>, enc: Encoder): Promise<Result> {
  const cpu = cpuMeter();
  const t0 = performance.now();
  let bytes = 0;
  for (const rows of shape.files) {
    const out = await enc(shape, rows);
    bytes += out.byteLength;
    const meta = parquetMetadata(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer);
    if (meta.num_rows !== BigInt(rows.length)) throw new Error(`wrote ${meta.num_rows} rows of ${rows.length}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu();
  return { seconds, cpu: used.cpuSeconds, main: used.mainCpuSeconds, bytes };
}

const shapes = [mainShape(), dlqShape()] as Array<Shape<unknown>>;
process.stdout.write(`${totalRows} rows per shape, ${rounds} rounds, node ${process.version}\n`);
const summary: Array<Record<string, unknown>> = [];
for (const shape of shapes) {
  const results = new Map<string, Result[]>();
  // Warm-up: one file each.
  for (const [, enc] of encoders) await enc(shape, shape.files[0] as unknown[]);
  for (let r = 0; r < rounds; r++) {
    for (const [name, enc] of r % 2 === 0 ? encoders : [...encoders].reverse()) {
      const list = results.get(name) ?? [];
      list.push(await runOnce(shape, enc));
      results.set(name, list);
    }
  }
  for (const [name, list] of results) {
    const m = [...list].sort((a, b) => a.seconds - b.seconds)[Math.floor((list.length - 1) / 2)] as Result;
    const per1M = (s: number | undefined): string => (s === undefined ? '?' : ((s * 1e6) / totalRows).toFixed(2));
    const row = {
      shape: shape.name,
      encoder: name,
      'rows/s': Math.round(totalRows / m.seconds),
      'CPU s/1M': per1M(m.cpu),
      'main CPU s/1M': per1M(m.main),
      MB: Number((m.bytes / 2 ** 20).toFixed(1)),
    };
    summary.push(row);
  }
}
console.table(summary);
await pool.close();
process.exit(0);
