/**
 * Rows → one Parquet file (bytes) plus the Delta `stats` of that file.
 *
 * Column arrays are built once per file; string payloads given as bytes stay bytes (no per-row
 * string conversion); statistics come from the Parquet writer's own column-chunk statistics, so
 * values are compared once.
 */
import type { RowGroup, SchemaElement, Statistics } from 'hyparquet';
import { parquetRead } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { snappyCompress } from 'hyparquet-writer/src/snappy.js';
import { FlatParquetWriter } from './flatParquet.ts';
import { defaultCompressors } from './snappy.ts';
import type { ColumnSpec, DeltaType } from './schema.ts';
import { parquetSchema } from './schema.ts';
import { DeltaError } from './retry.ts';

/** A value the sink could not convert to its column's type: bad input, not retriable. */
export class InvalidValueError extends DeltaError {
  constructor(message: string) {
    super(message, { retriable: false, code: 'INVALID_VALUE' });
    this.name = 'InvalidValueError';
  }
}

export interface EncodedFile {
  bytes: Uint8Array;
  numRecords: number;
  /** Delta `add.stats` JSON: numRecords, minValues, maxValues, nullCount. */
  stats: string;
}

export interface ParquetOptions {
  /** Rows per row group (default 131 072). */
  rowGroupSize?: number;
  /**
   * Uncompressed bytes per data page (default 64 KiB). The writer grows a buffer per page by
   * doubling: 1 MiB pages left ~100 MB more garbage buffers around in the bronze benchmark, at
   * the same speed and (SNAPPY works in 64 KiB blocks anyway) the same file size.
   */
  pageSize?: number;
  /** Characters kept of string min/max in the Delta stats (default 32). */
  statsStringLength?: number;
  /** A SNAPPY compressor of your own; default the native `snappy` package when it loads, else JavaScript. */
  compressors?: { SNAPPY?: (input: Uint8Array) => Uint8Array };
  /**
   * Which Parquet writer encodes data files: `'flat'` (default) writes flat columns straight
   * into reused page buffers (DataPage V1, PLAIN, nothing allocated per value);
   * `'hyparquet'` is hyparquet-writer (DataPage V2, dictionary where it pays). Same schema,
   * same statistics; bench/encoding.bench.ts compares them.
   */
  writer?: 'flat' | 'hyparquet';
}

const DAY_MS = 86_400_000;
const textEncoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

type Getter<Row> = (row: Row) => unknown;

function getter<Row>(c: ColumnSpec<Row>): Getter<Row> {
  if (c.get) return c.get;
  const name = c.name;
  return (row) => (row as Record<string, unknown>)[name];
}

/** Throws `InvalidValueError` for a value its column cannot take (naming column and row). */
export function badValue(column: string, index: number, value: unknown, want: string): never {
  const shown = typeof value === 'bigint' ? `${value}n` : typeof value === 'object' ? Object.prototype.toString.call(value) : JSON.stringify(value);
  return fail(`column ${column}, row ${index}: expected ${want}, got ${shown}`);
}

function fail(message: string): never {
  throw new InvalidValueError(message);
}

const dateCache = new Map<string, number>();
/** `'YYYY-MM-DD'` → days since 1970-01-01. */
export function parseDate(s: string): number | undefined {
  const cached = dateCache.get(s);
  if (cached !== undefined) return cached;
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return undefined;
  const days = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS;
  if (!Number.isInteger(days)) return undefined;
  if (dateCache.size > 10_000) dateCache.clear();
  dateCache.set(s, days);
  return days;
}

/** Builds the column array of one column, converting values to what the Parquet writer takes. */
export function columnArray<Row>(rows: readonly Row[], c: ColumnSpec<Row>, indices?: readonly number[]): unknown[] {
  const get = getter(c);
  const n = indices ? indices.length : rows.length;
  const out = new Array<unknown>(n);
  const name = c.name;
  const nullable = c.nullable ?? true;
  const type: DeltaType = c.type;
  let sawBytes = false;
  let sawText = false;
  for (let i = 0; i < n; i++) {
    const at = indices ? (indices[i] as number) : i;
    const v = get(rows[at] as Row);
    if (v === null || v === undefined) {
      if (!nullable) fail(`column ${name}, row ${at}: null in a NOT NULL column`);
      out[i] = null;
      continue;
    }
    switch (type) {
      case 'string':
        if (v instanceof Uint8Array) {
          out[i] = v;
          sawBytes = true;
        } else if (typeof v === 'string') {
          out[i] = v;
          sawText = true;
        } else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') {
          out[i] = String(v);
          sawText = true;
        } else {
          badValue(name, at, v, 'string or Uint8Array');
        }
        break;
      case 'long':
        if (typeof v === 'bigint') out[i] = v;
        else if (typeof v === 'number' && Number.isSafeInteger(v)) out[i] = BigInt(v);
        else badValue(name, at, v, 'bigint');
        break;
      case 'timestamp':
        if (typeof v === 'bigint') out[i] = v;
        else if (v instanceof Date) out[i] = BigInt(v.getTime()) * 1000n;
        else if (typeof v === 'number' && Number.isFinite(v)) out[i] = BigInt(Math.trunc(v));
        else badValue(name, at, v, 'bigint epoch microseconds');
        break;
      case 'integer':
        if (typeof v === 'number' && (v | 0) === v) out[i] = v;
        else if (typeof v === 'bigint' && v >= -2147483648n && v <= 2147483647n) out[i] = Number(v);
        else badValue(name, at, v, 'int32 number');
        break;
      case 'double':
        if (typeof v === 'number') out[i] = v;
        else if (typeof v === 'bigint') out[i] = Number(v);
        else badValue(name, at, v, 'number');
        break;
      case 'boolean':
        if (typeof v === 'boolean') out[i] = v;
        else badValue(name, at, v, 'boolean');
        break;
      case 'date': {
        const d = typeof v === 'string' ? parseDate(v) : v instanceof Date ? Math.floor(v.getTime() / DAY_MS) : undefined;
        if (d === undefined) badValue(name, at, v, "'YYYY-MM-DD'");
        out[i] = d;
        break;
      }
      case 'binary':
        if (v instanceof Uint8Array) out[i] = v;
        else if (typeof v === 'string') out[i] = textEncoder.encode(v);
        else badValue(name, at, v, 'Uint8Array');
        break;
    }
  }
  // Bytes and strings mixed in one column: statistics compare like with like, so use bytes.
  if (sawBytes && sawText) {
    for (let i = 0; i < n; i++) if (typeof out[i] === 'string') out[i] = textEncoder.encode(out[i] as string);
  }
  return out;
}

/**
 * Encodes `rows` (or the rows at `indices`) with the given data columns (partition columns
 * excluded) as one SNAPPY Parquet file.
 */
export function encodeParquet<Row>(
  rows: readonly Row[],
  columns: readonly ColumnSpec<Row>[],
  indices?: readonly number[],
  opts: ParquetOptions = {},
  schema: SchemaElement[] = parquetSchema(columns as readonly ColumnSpec<unknown>[]),
): EncodedFile {
  const numRecords = indices ? indices.length : rows.length;
  const data = columns.map((c) => columnArray(rows, c, indices));
  return encodeColumnData(data, columns, numRecords, opts, schema);
}

/** The name and type of a column: all that encoding needs once values are converted. */
export interface ColumnType {
  readonly name: string;
  readonly type: DeltaType;
  /** `false`: no min/max for this column (see `ColumnSpec.stats`). */
  readonly stats?: boolean;
  /** `false`: PLAIN, no dictionary (see `ColumnSpec.dictionary`). */
  readonly dictionary?: boolean;
}

/** What hyparquet-writer takes for one column. */
function columnSource(c: ColumnType, data: unknown[]): { name: string; data: unknown[]; statistics: boolean; encoding?: 'PLAIN' } {
  return { name: c.name, data, statistics: c.stats !== false, ...(c.dictionary === false ? { encoding: 'PLAIN' as const } : {}) };
}

/**
 * Encodes already converted column arrays (as `columnArray` builds them) as one SNAPPY Parquet
 * file with its Delta stats. Shared by the in-thread and the worker-thread encoders.
 */
export function encodeColumnData(
  data: readonly unknown[][],
  columns: readonly ColumnType[],
  numRecords: number,
  opts: ParquetOptions,
  schema: SchemaElement[],
): EncodedFile {
  const builder = new ParquetFileBuilder(columns, opts, schema, Math.max(1024, numRecords * 64));
  builder.writeColumns(data, numRecords);
  return builder.finish();
}

/**
 * One Parquet file built a row group at a time: `writeColumns()` encodes (and compresses) rows
 * at once, so they need not be kept until the file is complete; `finish()` adds the footer and
 * returns the file with its Delta stats. What it holds meanwhile is the encoded bytes.
 */
export class ParquetFileBuilder {
  readonly #columns: readonly ColumnType[];
  readonly #opts: ParquetOptions;
  readonly #writer: ByteWriter | undefined;
  readonly #pq: ParquetWriter | undefined;
  readonly #flat: FlatParquetWriter | undefined;
  readonly #nulls: bigint[];
  #numRecords = 0;
  #finished = false;

  /** `initialBytes`: the output buffer's first size (it grows by doubling; hyparquet-writer only). */
  constructor(columns: readonly ColumnType[], opts: ParquetOptions, schema: SchemaElement[], initialBytes = 1 << 20) {
    this.#columns = columns;
    this.#opts = opts;
    const compressors = opts.compressors ?? defaultCompressors;
    if ((opts.writer ?? 'flat') === 'flat') {
      this.#flat = new FlatParquetWriter(columns, schema, { compress: compressors.SNAPPY ?? snappyCompress, ...(opts.pageSize === undefined ? {} : { pageSize: opts.pageSize }) });
    } else {
      this.#writer = new ByteWriter(initialBytes);
      this.#pq = new ParquetWriter({ writer: this.#writer, schema, codec: 'SNAPPY', createdBy: 'rxlake', compressors });
    }
    this.#nulls = columns.map(() => 0n);
  }

  /** Rows written so far. */
  get numRecords(): number {
    return this.#numRecords;
  }

  /** Encoded bytes so far (the footer not included). */
  get byteLength(): number {
    return this.#flat ? this.#flat.byteLength : (this.#writer as ByteWriter).offset;
  }

  /** Encodes `n` rows given as converted column arrays (as `columnArray` builds them) as one or more row groups. */
  writeColumns(data: readonly unknown[][], n: number): void {
    if (this.#finished) throw new Error('ParquetFileBuilder: write after finish');
    if (n === 0) return;
    const rowGroupSize = this.#opts.rowGroupSize ?? 131_072;
    if (this.#flat) {
      for (let start = 0; start < n; start += rowGroupSize) this.#flat.writeRowGroup(data, start, Math.min(rowGroupSize, n - start));
      this.#numRecords += n;
      return;
    }
    const columnData = this.#columns.map((c, j) => columnSource(c, data[j] as unknown[]));
    // ByteWriter has no flush(): write() and finish() are synchronous.
    void (this.#pq as ParquetWriter).write({ columnData, rowGroupSize, pageSize: this.#opts.pageSize ?? 65_536 });
    // Without Parquet statistics (`stats: false`) the writer counts no nulls either: count them here.
    this.#columns.forEach((c, j) => {
      if (c.stats === false) this.#nulls[j] = (this.#nulls[j] as bigint) + countNulls(data[j] ?? []);
    });
    this.#numRecords += n;
  }

  /** The complete file; the builder takes no more rows. */
  finish(): EncodedFile {
    if (this.#finished) throw new Error('ParquetFileBuilder: finished twice');
    this.#finished = true;
    const maxChars = this.#opts.statsStringLength ?? 32;
    if (this.#flat) {
      const rowGroups = this.#flat.rowGroups;
      const bytes = this.#flat.finish();
      // The flat writer counts nulls of every column in its statistics.
      return { bytes, numRecords: this.#numRecords, stats: deltaStats(rowGroups, this.#columns, this.#columns.map(() => 0n), this.#numRecords, maxChars) };
    }
    const pq = this.#pq as ParquetWriter;
    void pq.finish();
    const bytes = (this.#writer as ByteWriter).getBytes();
    return { bytes, numRecords: this.#numRecords, stats: deltaStats(pq.row_groups, this.#columns, this.#nulls, this.#numRecords, maxChars) };
  }
}

interface ColumnStat {
  min: MinMaxType | undefined;
  max: MinMaxType | undefined;
  nulls: bigint;
}

function compare(a: MinMaxType, b: MinMaxType): number {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    const x = a instanceof Uint8Array ? a : textEncoder.encode(String(a));
    const y = b instanceof Uint8Array ? b : textEncoder.encode(String(b));
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
    return x.length - y.length;
  }
  if (typeof a === 'string' && typeof b === 'string') {
    return compare(textEncoder.encode(a), textEncoder.encode(b));
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

type MinMaxType = NonNullable<Statistics['min_value']>;

const BIG = '\u0000rxlake-bigint:';

/** Epoch µs → Spark-style ISO string with milliseconds; `up` rounds up to the next ms. */
function isoMillis(micros: bigint, up: boolean): string | undefined {
  let ms = micros / 1000n;
  const rem = micros % 1000n;
  if (rem < 0n) ms -= 1n; // floor for negatives
  if (up && rem !== 0n) ms += 1n;
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

function stringBound(v: MinMaxType, isMax: boolean, maxChars: number): string | undefined {
  let s: string;
  if (v instanceof Uint8Array) {
    try {
      s = utf8.decode(v);
    } catch {
      return undefined;
    }
  } else if (typeof v === 'string') {
    s = v;
  } else {
    return undefined;
  }
  // Cut on code points; a cut max gets U+10FFFF appended so it stays an upper bound.
  let chars = 0;
  let end = 0;
  while (end < s.length && chars < maxChars) {
    const cp = s.codePointAt(end) as number;
    end += cp > 0xffff ? 2 : 1;
    chars++;
  }
  if (end >= s.length) return s;
  return isMax ? `${s.slice(0, end)}\u{10FFFF}` : s.slice(0, end);
}

function jsonBound(type: DeltaType, v: MinMaxType, isMax: boolean, maxChars: number): unknown {
  switch (type) {
    case 'string':
      return stringBound(v, isMax, maxChars);
    case 'long':
      return typeof v === 'bigint' ? `${BIG}${v}` : typeof v === 'number' ? v : undefined;
    case 'integer':
      return typeof v === 'number' ? v : undefined;
    case 'double':
      return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
    case 'timestamp':
      return typeof v === 'bigint' ? isoMillis(v, isMax) : undefined;
    case 'date':
      return typeof v === 'number' ? new Date(v * DAY_MS).toISOString().slice(0, 10) : undefined;
    default:
      return undefined; // binary, boolean: no min/max
  }
}

/** `nulls`: null counts of the columns without Parquet statistics (the writer counts none for those). */
function deltaStats(rowGroups: readonly RowGroup[], columns: readonly ColumnType[], nulls: readonly bigint[], numRecords: number, maxChars: number): string {
  const acc: ColumnStat[] = columns.map((c, j) => ({ min: undefined, max: undefined, nulls: nulls[j] ?? 0n }));
  for (const rg of rowGroups) {
    rg.columns.forEach((chunk, j) => {
      const s = chunk.meta_data?.statistics;
      const a = acc[j];
      if (!s || !a) return;
      a.nulls += s.null_count ?? 0n;
      const mn = s.min_value ?? s.min;
      const mx = s.max_value ?? s.max;
      if (mn !== undefined && (a.min === undefined || compare(mn, a.min) < 0)) a.min = mn;
      if (mx !== undefined && (a.max === undefined || compare(mx, a.max) > 0)) a.max = mx;
    });
  }
  const minValues: Record<string, unknown> = {};
  const maxValues: Record<string, unknown> = {};
  const nullCount: Record<string, number> = {};
  columns.forEach((c, j) => {
    const a = acc[j] as ColumnStat;
    nullCount[c.name] = Number(a.nulls);
    if (a.min !== undefined) {
      const v = jsonBound(c.type, a.min, false, maxChars);
      if (v !== undefined) minValues[c.name] = v;
    }
    if (a.max !== undefined) {
      const v = jsonBound(c.type, a.max, true, maxChars);
      if (v !== undefined) maxValues[c.name] = v;
    }
  });
  return jsonWithBigints({ numRecords, minValues, maxValues, nullCount });
}

function countNulls(values: readonly unknown[]): bigint {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === null || values[i] === undefined) n++;
  return BigInt(n);
}

/** JSON.stringify where bigints (marked by `jsonBound`) become exact JSON numbers. */
function jsonWithBigints(value: unknown): string {
  const json = JSON.stringify(value);
  if (!json.includes('rxlake-bigint:')) return json;
  return json.replace(/"\\u0000rxlake-bigint:(-?\d+)"/g, '$1');
}

/**
 * Reads the columns of a file this module wrote back as `encodeColumnData` takes them: strings
 * and binaries as bytes, timestamps as epoch µs (`bigint`), dates as days, longs as `bigint`.
 */
export async function readColumns(bytes: Uint8Array, names: readonly string[]): Promise<unknown[][]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: unknown[][] = [];
  await parquetRead({
    file,
    columns: [...names],
    rowFormat: 'array',
    utf8: false,
    parsers: {
      timestampFromMicroseconds: (micros: bigint) => micros,
      dateFromDays: (days: number) => days,
      stringFromBytes: (b: Uint8Array | undefined) => b,
    },
    onComplete: (r: unknown[][]) => {
      rows = r;
    },
  });
  return names.map((_, j) => rows.map((row) => row[j] ?? null));
}
