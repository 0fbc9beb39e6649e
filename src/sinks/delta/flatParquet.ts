/**
 * A Parquet writer for flat tables (one primitive column per field, what Delta data files of the
 * sinks hold): values go straight from the column arrays into one reused page buffer — payload
 * bytes copied as they are, integers and timestamps written as little-endian words (from a
 * `bigint` or an exact `number`, no conversion per value) — and each page is compressed into the
 * file. Nothing is allocated per value; per page, a header and the compressed bytes.
 *
 * Layout: DataPage V1 pages (read by every Parquet reader), PLAIN values, RLE/bit-packed
 * definition levels for nullable columns, SNAPPY, column-chunk statistics (null count, and
 * min/max unless a column turns them off), and the footer written by hyparquet-writer's own
 * metadata serializer. Measured against hyparquet-writer and parquet-wasm in
 * bench/encoding.bench.ts.
 */
import type { ColumnChunk, RowGroup, SchemaElement, Statistics } from 'hyparquet';
import { ByteWriter } from 'hyparquet-writer';
import { writeMetadata } from 'hyparquet-writer/src/metadata.js';
import type { DeltaType } from './schema.ts';

/** What the writer needs of a column once its values are converted (see `columnArray`). */
export interface FlatColumn {
  readonly name: string;
  readonly type: DeltaType;
  /** `false`: no min/max (null count only). */
  readonly stats?: boolean;
}

export interface FlatParquetOptions {
  /** Uncompressed bytes per data page (default 64 KiB). */
  readonly pageSize?: number;
  /** Page compressor (raw SNAPPY block format). */
  readonly compress: (page: Uint8Array) => Uint8Array;
  /** Characters kept of string min/max in the footer (default hyparquet-writer's). */
  readonly createdBy?: string;
}

const TWO_32 = 4_294_967_296;
const PAGE_PLAIN = 0;
const ENC_RLE = 3;

/**
 * Column values as the writer takes them: `unknown[]` whose entries are, per type, `Uint8Array`
 * or string (string), `Uint8Array` (binary), number (integer, date as days, double), `bigint` or
 * safe-integer number (long, timestamp in µs), boolean; `null`/`undefined` for null.
 */
export type ColumnValues = readonly unknown[];

/** Per-column accumulated state of the current file. */
interface ColumnState {
  min: unknown;
  max: unknown;
}

/** One Parquet file written row group by row group; holds only the compressed pages. */
export class FlatParquetWriter {
  readonly #columns: readonly FlatColumn[];
  readonly #elements: readonly SchemaElement[];
  readonly #schema: SchemaElement[];
  readonly #pageSize: number;
  readonly #compress: (page: Uint8Array) => Uint8Array;
  readonly #createdBy: string;
  /** Compressed pages and headers, in file order. */
  readonly #pieces: Uint8Array[] = [];
  #offset = 0;
  readonly #rowGroups: RowGroup[] = [];
  #numRows = 0;
  /** The page being built (reused). */
  #page: Buffer = Buffer.allocUnsafeSlow(1 << 16);
  #view = new DataView(this.#page.buffer, this.#page.byteOffset, this.#page.byteLength);
  /** Page header scratch. */
  readonly #header = new Uint8Array(64);
  #headerLength = 0;
  #finished = false;

  constructor(columns: readonly FlatColumn[], schema: SchemaElement[], options: FlatParquetOptions) {
    this.#columns = columns;
    this.#schema = schema;
    this.#elements = columns.map((c) => {
      const e = schema.find((s) => s.name === c.name && s.type !== undefined);
      if (!e) throw new Error(`flat Parquet writer: no schema element for column ${c.name}`);
      return e;
    });
    this.#pageSize = options.pageSize ?? 65_536;
    this.#compress = options.compress;
    this.#createdBy = options.createdBy ?? 'rxlake';
    this.#append(new Uint8Array([0x50, 0x41, 0x52, 0x31])); // PAR1
  }

  /** Bytes written so far (footer not included). */
  get byteLength(): number {
    return this.#offset;
  }

  /** Row groups written so far (with each column chunk's statistics as JavaScript values). */
  get rowGroups(): readonly RowGroup[] {
    return this.#rowGroups;
  }

  /** Writes rows `[start, start + count)` of every column as one row group. */
  writeRowGroup(data: readonly ColumnValues[], start: number, count: number): void {
    if (this.#finished) throw new Error('flat Parquet writer: write after finish');
    if (count <= 0) return;
    const groupStart = this.#offset;
    let uncompressed = 0;
    const chunks: ColumnChunk[] = [];
    for (let j = 0; j < this.#columns.length; j++) {
      const column = this.#columns[j] as FlatColumn;
      const element = this.#elements[j] as SchemaElement;
      const values = data[j] as ColumnValues;
      const chunkStart = this.#offset;
      const stats: ColumnState = { min: undefined, max: undefined };
      const r = this.#writeChunk(column, element, values, start, start + count, stats);
      uncompressed += r.uncompressed;
      const statistics: Statistics = { null_count: BigInt(r.nulls) };
      if (column.stats !== false && stats.min !== undefined) {
        statistics.min_value = statValue(column.type, stats.min, false);
        statistics.max_value = statValue(column.type, stats.max, true);
      }
      chunks.push({
        file_offset: BigInt(chunkStart),
        meta_data: {
          type: element.type as NonNullable<SchemaElement['type']>,
          encodings: element.repetition_type === 'REQUIRED' ? ['PLAIN'] : ['PLAIN', 'RLE'],
          path_in_schema: [column.name],
          codec: 'SNAPPY',
          num_values: BigInt(count),
          total_uncompressed_size: BigInt(r.uncompressed),
          total_compressed_size: BigInt(this.#offset - chunkStart),
          data_page_offset: BigInt(chunkStart),
          statistics,
        },
      });
    }
    this.#rowGroups.push({
      columns: chunks,
      total_byte_size: BigInt(uncompressed),
      num_rows: BigInt(count),
      file_offset: BigInt(groupStart),
      total_compressed_size: BigInt(this.#offset - groupStart),
    });
    this.#numRows += count;
  }

  /** The whole file: pages, footer. The writer takes nothing more. */
  finish(): Uint8Array {
    if (this.#finished) throw new Error('flat Parquet writer: finished twice');
    this.#finished = true;
    const footer = new ByteWriter(4096);
    writeMetadata(footer, {
      version: 2,
      created_by: this.#createdBy,
      schema: this.#schema,
      num_rows: BigInt(this.#numRows),
      row_groups: this.#rowGroups,
      metadata_length: 0,
    });
    footer.appendUint32(0x31524150); // PAR1
    this.#append(footer.getBytes());
    const out = Buffer.allocUnsafeSlow(this.#offset);
    let at = 0;
    for (const p of this.#pieces) {
      out.set(p, at);
      at += p.byteLength;
    }
    this.#pieces.length = 0;
    this.#page = Buffer.alloc(0);
    return new Uint8Array(out.buffer, out.byteOffset, at);
  }

  #append(bytes: Uint8Array): void {
    this.#pieces.push(bytes);
    this.#offset += bytes.byteLength;
  }

  #ensure(size: number): void {
    if (size <= this.#page.byteLength) return;
    const next = Buffer.allocUnsafeSlow(Math.max(size, this.#page.byteLength * 2));
    next.set(this.#page);
    this.#page = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** Writes one column chunk as pages; returns its null count and uncompressed size (with headers). */
  #writeChunk(column: FlatColumn, element: SchemaElement, values: ColumnValues, from: number, to: number, stats: ColumnState): { nulls: number; uncompressed: number } {
    const optional = element.repetition_type !== 'REQUIRED';
    const track = column.stats !== false;
    const { type } = column;
    let nulls = 0;
    let uncompressed = 0;
    let start = from;
    while (start < to) {
      // A page's rows: as many as fit pageSize (at least one), nulls counted.
      let end = start;
      let size = 0;
      let pageNulls = 0;
      if (type === 'string' || type === 'binary') {
        while (end < to && (end === start || size < this.#pageSize)) {
          const v = values[end];
          if (v === null || v === undefined) pageNulls += 1;
          else size += 4 + (v instanceof Uint8Array ? v.byteLength : Buffer.byteLength(v as string, 'utf8'));
          end += 1;
        }
      } else {
        const width = type === 'long' || type === 'timestamp' || type === 'double' ? 8 : type === 'boolean' ? 0.125 : 4;
        end = Math.min(to, start + Math.max(8, Math.floor(this.#pageSize / width)));
        for (let i = start; i < end; i++) {
          const v = values[i];
          if (v === null || v === undefined) pageNulls += 1;
        }
        size = Math.ceil((end - start - pageNulls) * width);
      }
      const n = end - start;
      if (pageNulls > 0 && !optional) throw new Error(`column ${column.name}: null in a REQUIRED column`);
      // Levels (nullable columns): 4-byte length, then one RLE run or bit-packed groups.
      const levelBytes = optional ? 4 + (pageNulls === 0 ? varintLength(n << 1) + 1 : varintLength(((n + 7) >> 3) * 2 + 1) + ((n + 7) >> 3)) : 0;
      this.#ensure(levelBytes + size + 8);
      const page = this.#page;
      let at = 0;
      if (optional) at = this.#writeLevels(values, start, end, pageNulls);
      at = this.#writeValues(type, values, start, end, at, track, stats);
      nulls += pageNulls;
      const body = page.subarray(0, at);
      const compressed = this.#compress(body);
      this.#pageHeader(at, compressed.byteLength, n);
      const header = this.#header.slice(0, this.#headerLength);
      this.#append(header);
      this.#append(compressed === body ? body.slice() : compressed);
      uncompressed += header.byteLength + at;
      start = end;
    }
    return { nulls, uncompressed };
  }

  /** Definition levels of rows `[start, end)` (1 = present) at the page's start; returns the bytes used. */
  #writeLevels(values: ColumnValues, start: number, end: number, nulls: number): number {
    const page = this.#page;
    const n = end - start;
    let at = 4;
    if (nulls === 0) {
      at = writeVarint(page, at, n << 1);
      page[at++] = 1;
    } else {
      const groups = (n + 7) >> 3;
      at = writeVarint(page, at, (groups << 1) | 1);
      for (let g = 0; g < groups; g++) {
        let byte = 0;
        for (let b = 0; b < 8; b++) {
          const i = start + g * 8 + b;
          if (i < end) {
            const v = values[i];
            if (v !== null && v !== undefined) byte |= 1 << b;
          }
        }
        page[at++] = byte;
      }
    }
    this.#view.setInt32(0, at - 4, true);
    return at;
  }

  /** PLAIN values of the non-null rows of `[start, end)` at `at`; returns the end. Tracks min/max. */
  #writeValues(type: DeltaType, values: ColumnValues, start: number, end: number, at: number, track: boolean, stats: ColumnState): number {
    const page = this.#page;
    const view = this.#view;
    let { min, max } = stats;
    switch (type) {
      case 'string':
      case 'binary': {
        for (let i = start; i < end; i++) {
          const v = values[i];
          if (v === null || v === undefined) continue;
          if (v instanceof Uint8Array) {
            view.setUint32(at, v.byteLength, true);
            page.set(v, at + 4);
            at += 4 + v.byteLength;
            if (track) {
              if (min === undefined || compareBytes(v, min as Uint8Array | string) < 0) min = v;
              if (max === undefined || compareBytes(v, max as Uint8Array | string) > 0) max = v;
            }
          } else {
            const len = page.write(v as string, at + 4, 'utf8');
            view.setUint32(at, len, true);
            at += 4 + len;
            if (track) {
              if (min === undefined || compareBytes(v as string, min as Uint8Array | string) < 0) min = v;
              if (max === undefined || compareBytes(v as string, max as Uint8Array | string) > 0) max = v;
            }
          }
        }
        break;
      }
      case 'long':
      case 'timestamp': {
        for (let i = start; i < end; i++) {
          const v = values[i] as bigint | number | null | undefined;
          if (v === null || v === undefined) continue;
          if (typeof v === 'bigint') {
            view.setBigInt64(at, v, true);
          } else {
            const hi = Math.floor(v / TWO_32);
            view.setUint32(at, v - hi * TWO_32, true);
            view.setInt32(at + 4, hi, true);
          }
          at += 8;
          if (track) {
            if (min === undefined || v < (min as bigint | number)) min = v;
            if (max === undefined || v > (max as bigint | number)) max = v;
          }
        }
        break;
      }
      case 'integer':
      case 'date': {
        for (let i = start; i < end; i++) {
          const v = values[i] as number | null | undefined;
          if (v === null || v === undefined) continue;
          view.setInt32(at, v, true);
          at += 4;
          if (track) {
            if (min === undefined || v < (min as number)) min = v;
            if (max === undefined || v > (max as number)) max = v;
          }
        }
        break;
      }
      case 'double': {
        for (let i = start; i < end; i++) {
          const v = values[i] as number | null | undefined;
          if (v === null || v === undefined) continue;
          view.setFloat64(at, v, true);
          at += 8;
          // NaN takes no part in min/max (Parquet's rule).
          if (track && v === v) {
            if (min === undefined || v < (min as number)) min = v;
            if (max === undefined || v > (max as number)) max = v;
          }
        }
        break;
      }
      case 'boolean': {
        let bit = 0;
        let byte = 0;
        for (let i = start; i < end; i++) {
          const v = values[i] as boolean | null | undefined;
          if (v === null || v === undefined) continue;
          if (v) byte |= 1 << bit;
          if (++bit === 8) {
            page[at++] = byte;
            bit = 0;
            byte = 0;
          }
          if (track) {
            if (min === undefined || (!v && min === true)) min = v;
            if (max === undefined || (v && max === false)) max = v;
          }
        }
        if (bit > 0) page[at++] = byte;
        break;
      }
    }
    stats.min = min;
    stats.max = max;
    return at;
  }

  /** Thrift compact PageHeader of a DATA_PAGE (V1, PLAIN values, RLE levels) into the header scratch. */
  #pageHeader(uncompressed: number, compressed: number, numValues: number): void {
    const h = this.#header;
    let at = 0;
    h[at++] = 0x15; // field 1 (type), i32
    at = writeVarint(h, at, zigzag(PAGE_PLAIN));
    h[at++] = 0x15; // field 2 (uncompressed_page_size), i32
    at = writeVarint(h, at, zigzag(uncompressed));
    h[at++] = 0x15; // field 3 (compressed_page_size), i32
    at = writeVarint(h, at, zigzag(compressed));
    h[at++] = 0x2c; // field 5 (data_page_header), struct
    h[at++] = 0x15; // num_values
    at = writeVarint(h, at, zigzag(numValues));
    h[at++] = 0x15; // encoding: PLAIN
    at = writeVarint(h, at, zigzag(0));
    h[at++] = 0x15; // definition_level_encoding: RLE
    at = writeVarint(h, at, zigzag(ENC_RLE));
    h[at++] = 0x15; // repetition_level_encoding: RLE
    at = writeVarint(h, at, zigzag(ENC_RLE));
    h[at++] = 0; // end of data_page_header
    h[at++] = 0; // end of PageHeader
    this.#headerLength = at;
  }
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len += 1;
  }
  return len;
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** Unsigned byte order of UTF-8 (Parquet's order for strings); a string compares as its UTF-8. */
export function compareBytes(a: Uint8Array | string, b: Uint8Array | string): number {
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8Strings(a, b);
  const x = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
  const y = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/** Two strings in the order of their UTF-8 bytes, without encoding them. */
function compareUtf8Strings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order equals code point (= UTF-8) order except that surrogates (U+D800–DFFF, code
    // points past U+FFFF) sort below U+E000–U+FFFF in UTF-16 and above them in UTF-8.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (xs ? y : x) >= 0xe000) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** A min/max as the footer's statistics take it (int64 as bigint, doubles with Parquet's signed zeros). */
function statValue(type: DeltaType, v: unknown, isMax: boolean): NonNullable<Statistics['min_value']> {
  if ((type === 'long' || type === 'timestamp') && typeof v === 'number') return BigInt(v);
  if (type === 'double' && v === 0) return isMax ? 0 : -0;
  return v as NonNullable<Statistics['min_value']>;
}
