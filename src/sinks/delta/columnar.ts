/**
 * Rows → compact column payloads that can be handed to another thread without copying per row
 * (typed arrays over transferable `ArrayBuffer`s), and back to the column arrays the Parquet
 * writer takes.
 *
 * Layout per column: strings and binaries are one contiguous UTF-8 buffer plus `n + 1` offsets;
 * longs and timestamps a `BigInt64Array`; integers and dates an `Int32Array`; doubles a
 * `Float64Array`; booleans a `Uint8Array` of 0/1; nulls (when there are any) a `Uint8Array` of
 * 1 = null. Values are checked while packing, with the same rules and messages as the in-thread
 * encoder, so bad input is reported on the calling thread before any work is handed off.
 */
import type { SchemaElement } from 'hyparquet';
import type { ColumnSpec, DeltaType } from './schema.ts';
import type { EncodedFile, ParquetOptions } from './parquet.ts';
import { InvalidValueError, badValue, encodeColumnData, parseDate } from './parquet.ts';

export interface PackedColumn {
  readonly name: string;
  readonly type: DeltaType;
  /** `false`: no min/max for this column (see `ColumnSpec.stats`). */
  readonly stats?: boolean;
  /** `false`: PLAIN, no dictionary (see `ColumnSpec.dictionary`). */
  readonly dictionary?: boolean;
  /** 1 = null, per row; absent when the column has no null. */
  readonly nulls?: Uint8Array;
  /** string, binary: every value's bytes back to back. */
  readonly bytes?: Uint8Array;
  /** string, binary: value `i` is `bytes[offsets[i] .. offsets[i + 1])`. */
  readonly offsets?: Int32Array;
  /** long, timestamp. */
  readonly longs?: BigInt64Array;
  /** integer, date. */
  readonly ints?: Int32Array;
  /** double. */
  readonly doubles?: Float64Array;
  /** boolean: 0 or 1. */
  readonly bools?: Uint8Array;
}

/** One file's rows, column by column. */
export interface PackedFile {
  readonly numRecords: number;
  readonly columns: readonly PackedColumn[];
}

const DAY_MS = 86_400_000;
const MIN_LONG = -(2n ** 63n);
const MAX_LONG = 2n ** 63n - 1n;
/** Offsets are int32: a file's string column cannot hold more bytes than this. */
const MAX_COLUMN_BYTES = 2 ** 31 - 1;

function fail(message: string): never {
  throw new InvalidValueError(message);
}

function getter<Row>(c: ColumnSpec<Row>): (row: Row) => unknown {
  if (c.get) return c.get;
  const name = c.name;
  return (row) => (row as Record<string, unknown>)[name];
}

/**
 * Packs the rows (or the rows at `indices`) of the given columns. Throws `InvalidValueError`
 * (naming column and row) for a value its column cannot take.
 */
export function packColumns<Row>(
  rows: readonly Row[],
  columns: readonly ColumnSpec<Row>[],
  indices?: readonly number[],
  allocate: ByteAllocator = newBytes,
): PackedFile {
  const n = indices ? indices.length : rows.length;
  return { numRecords: n, columns: columns.map((c) => packColumn(rows, c, indices, n, allocate)) };
}

/**
 * Gives a byte buffer of at least `size` bytes that owns its whole `ArrayBuffer` (it is
 * transferred as a whole); its content does not matter. Lets a caller recycle buffers.
 */
export type ByteAllocator = (size: number) => Uint8Array;

/** Not from Buffer's shared pool: the buffer is transferred to another thread as a whole. */
const newBytes: ByteAllocator = (size) => Buffer.allocUnsafeSlow(size);

function packColumn<Row>(
  rows: readonly Row[],
  c: ColumnSpec<Row>,
  indices: readonly number[] | undefined,
  n: number,
  allocate: ByteAllocator,
): PackedColumn {
  const packed = packValues(rows, c, indices, n, allocate);
  if (c.stats !== false && c.dictionary !== false) return packed;
  return { ...packed, ...(c.stats === false ? { stats: false } : {}), ...(c.dictionary === false ? { dictionary: false } : {}) };
}

function packValues<Row>(
  rows: readonly Row[],
  c: ColumnSpec<Row>,
  indices: readonly number[] | undefined,
  n: number,
  allocate: ByteAllocator,
): PackedColumn {
  switch (c.type) {
    case 'string':
    case 'binary':
      return packBytes(rows, c, indices, n, allocate);
    case 'long':
    case 'timestamp':
      return packLongs(rows, c, indices, n);
    default:
      return packNumbers(rows, c, indices, n);
  }
}

/** Strings and bytes: every value copied (strings encoded) straight into one buffer. */
function packBytes<Row>(
  rows: readonly Row[],
  c: ColumnSpec<Row>,
  indices: readonly number[] | undefined,
  n: number,
  allocate: ByteAllocator,
): PackedColumn {
  const get = getter(c);
  const { name, type } = c;
  const nullable = c.nullable ?? true;
  const values = new Array<Uint8Array | string | null>(n);
  let nulls: Uint8Array | undefined;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const at = indices ? (indices[i] as number) : i;
    const v = get(rows[at] as Row);
    if (v === null || v === undefined) {
      if (!nullable) fail(`column ${name}, row ${at}: null in a NOT NULL column`);
      nulls ??= new Uint8Array(n);
      nulls[i] = 1;
      values[i] = null;
    } else if (v instanceof Uint8Array) {
      values[i] = v;
      total += v.byteLength;
    } else if (typeof v === 'string') {
      values[i] = v;
      total += Buffer.byteLength(v, 'utf8');
    } else if (type === 'string' && (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean')) {
      const s = String(v);
      values[i] = s;
      total += s.length;
    } else {
      badValue(name, at, v, type === 'string' ? 'string or Uint8Array' : 'Uint8Array');
    }
  }
  if (total > MAX_COLUMN_BYTES) fail(`column ${name}: ${total} bytes in one file, more than a file can take (${MAX_COLUMN_BYTES})`);
  const given = allocate(total);
  const bytes = Buffer.from(given.buffer, given.byteOffset, given.byteLength);
  const offsets = new Int32Array(n + 1);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v instanceof Uint8Array) {
      bytes.set(v, pos);
      pos += v.byteLength;
    } else if (typeof v === 'string') {
      pos += bytes.write(v, pos, 'utf8');
    }
    offsets[i + 1] = pos;
  }
  const out = new Uint8Array(bytes.buffer, bytes.byteOffset, pos);
  return nulls ? { name, type, nulls, bytes: out, offsets } : { name, type, bytes: out, offsets };
}

function packLongs<Row>(rows: readonly Row[], c: ColumnSpec<Row>, indices: readonly number[] | undefined, n: number): PackedColumn {
  const get = getter(c);
  const { name, type } = c;
  const nullable = c.nullable ?? true;
  const longs = new BigInt64Array(n);
  let nulls: Uint8Array | undefined;
  const isTimestamp = type === 'timestamp';
  for (let i = 0; i < n; i++) {
    const at = indices ? (indices[i] as number) : i;
    const v = get(rows[at] as Row);
    let b: bigint;
    if (typeof v === 'bigint') {
      b = v;
    } else if (v === null || v === undefined) {
      if (!nullable) fail(`column ${name}, row ${at}: null in a NOT NULL column`);
      nulls ??= new Uint8Array(n);
      nulls[i] = 1;
      continue;
    } else if (isTimestamp) {
      if (v instanceof Date && !Number.isNaN(v.getTime())) b = BigInt(v.getTime()) * 1000n;
      else if (typeof v === 'number' && Number.isFinite(v)) b = BigInt(Math.trunc(v));
      else return badValue(name, at, v, 'bigint epoch microseconds');
    } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
      b = BigInt(v);
    } else {
      return badValue(name, at, v, 'bigint');
    }
    if (b < MIN_LONG || b > MAX_LONG) fail(`column ${name}, row ${at}: ${b} is out of the 64-bit range`);
    longs[i] = b;
  }
  return nulls ? { name, type, nulls, longs } : { name, type, longs };
}

function packNumbers<Row>(rows: readonly Row[], c: ColumnSpec<Row>, indices: readonly number[] | undefined, n: number): PackedColumn {
  const get = getter(c);
  const { name, type } = c;
  const nullable = c.nullable ?? true;
  let nulls: Uint8Array | undefined;
  const ints = type === 'integer' || type === 'date' ? new Int32Array(n) : undefined;
  const doubles = type === 'double' ? new Float64Array(n) : undefined;
  const bools = type === 'boolean' ? new Uint8Array(n) : undefined;
  for (let i = 0; i < n; i++) {
    const at = indices ? (indices[i] as number) : i;
    const v = get(rows[at] as Row);
    if (v === null || v === undefined) {
      if (!nullable) fail(`column ${name}, row ${at}: null in a NOT NULL column`);
      nulls ??= new Uint8Array(n);
      nulls[i] = 1;
      continue;
    }
    switch (type) {
      case 'integer':
        if (typeof v === 'number' && (v | 0) === v) (ints as Int32Array)[i] = v;
        else if (typeof v === 'bigint' && v >= -2147483648n && v <= 2147483647n) (ints as Int32Array)[i] = Number(v);
        else badValue(name, at, v, 'int32 number');
        break;
      case 'date': {
        const d = typeof v === 'string' ? parseDate(v) : v instanceof Date ? Math.floor(v.getTime() / DAY_MS) : undefined;
        if (d === undefined || (d | 0) !== d) return badValue(name, at, v, "'YYYY-MM-DD'");
        (ints as Int32Array)[i] = d;
        break;
      }
      case 'double':
        if (typeof v === 'number') (doubles as Float64Array)[i] = v;
        else if (typeof v === 'bigint') (doubles as Float64Array)[i] = Number(v);
        else badValue(name, at, v, 'number');
        break;
      case 'boolean':
        if (typeof v === 'boolean') (bools as Uint8Array)[i] = v ? 1 : 0;
        else badValue(name, at, v, 'boolean');
        break;
      default:
        fail(`column ${name}: unsupported type ${String(type)}`);
    }
  }
  const base = nulls ? { name, type, nulls } : { name, type };
  if (ints) return { ...base, ints };
  if (doubles) return { ...base, doubles };
  return { ...base, bools: bools as Uint8Array };
}

/** The `ArrayBuffer`s of a packed file, to transfer instead of copy. */
export function transferList(file: PackedFile): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const c of file.columns) {
    for (const a of [c.nulls, c.bytes, c.offsets, c.longs, c.ints, c.doubles, c.bools]) {
      if (a && a.buffer instanceof ArrayBuffer) out.add(a.buffer);
    }
  }
  return [...out];
}

/** A packed column as the array the Parquet writer takes (bytes as views, no copies). */
export function unpackColumn(c: PackedColumn, n: number): unknown[] {
  const out = new Array<unknown>(n);
  const { nulls } = c;
  if (c.bytes && c.offsets) {
    const { bytes, offsets } = c;
    for (let i = 0; i < n; i++) out[i] = nulls?.[i] ? null : bytes.subarray(offsets[i], offsets[i + 1]);
  } else if (c.longs) {
    const { longs } = c;
    for (let i = 0; i < n; i++) out[i] = nulls?.[i] ? null : longs[i];
  } else if (c.ints) {
    const { ints } = c;
    for (let i = 0; i < n; i++) out[i] = nulls?.[i] ? null : ints[i];
  } else if (c.doubles) {
    const { doubles } = c;
    for (let i = 0; i < n; i++) out[i] = nulls?.[i] ? null : doubles[i];
  } else if (c.bools) {
    const { bools } = c;
    for (let i = 0; i < n; i++) out[i] = nulls?.[i] ? null : bools[i] === 1;
  } else {
    out.fill(null);
  }
  return out;
}

/** Encodes a packed file (on whatever thread calls it): the same bytes and stats as `encodeParquet`. */
export function encodePacked(file: PackedFile, schema: SchemaElement[], opts: ParquetOptions = {}): EncodedFile {
  const data = file.columns.map((c) => unpackColumn(c, file.numRecords));
  return encodeColumnData(data, file.columns, file.numRecords, opts, schema);
}
