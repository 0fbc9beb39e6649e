/**
 * What the table maintenance commands share: opening a table's full state (live files,
 * tombstones, `txn` versions), the data columns of its schema, reading a data file's columns
 * back in the form the Parquet encoder takes, durations, and the log's file names.
 */
import { parquetMetadata, parquetRead } from 'hyparquet';
import type { FullState } from '../sinks/delta/log.ts';
import { LOG_DIR, loadSnapshot, parseInterval } from '../sinks/delta/log.ts';
import type { ColumnType } from '../sinks/delta/parquet.ts';
import { DeltaError } from '../sinks/delta/retry.ts';
import type { DeltaType } from '../sinks/delta/schema.ts';
import { parseSchemaString } from '../sinks/delta/schema.ts';
import type { Storage } from '../sinks/delta/storage.ts';

/** There is no Delta table at the given place (no `_delta_log` commits). */
export class TableNotFoundError extends DeltaError {
  constructor(uri: string) {
    super(`no Delta table at ${uri}: ${LOG_DIR}/ holds no commits (check the path; an S3 table needs S3_ENDPOINT_URL and credentials)`, {
      code: 'TABLE_NOT_FOUND',
    });
    this.name = 'TableNotFoundError';
  }
}

/** The table uses something these commands cannot handle (a newer protocol, a nested column type). */
export class UnsupportedTableError extends DeltaError {
  constructor(message: string) {
    super(message, { code: 'UNSUPPORTED_TABLE' });
    this.name = 'UnsupportedTableError';
  }
}

/** The table's latest state with its live files and tombstones; throws `TableNotFoundError`. */
export async function loadTable(storage: Storage, onWarning?: (message: string, err?: unknown) => void): Promise<FullState> {
  const state = await loadSnapshot(storage, { full: true, ...(onWarning ? { onWarning } : {}) });
  if (!state) throw new TableNotFoundError(storage.uri);
  return state;
}

/** Throws `UnsupportedTableError` unless a reader 1 / writer 2 client may rewrite this table. */
export function checkWritable(uri: string, state: FullState): void {
  const p = state.protocol;
  if (p.minReaderVersion > 1 || p.minWriterVersion > 2) {
    throw new UnsupportedTableError(
      `${uri}: protocol (reader ${p.minReaderVersion}, writer ${p.minWriterVersion}) needs features rxlake does not implement (max reader 1, writer 2); use a Delta engine that supports them`,
    );
  }
}

const TYPES = new Set<string>(['string', 'binary', 'integer', 'long', 'timestamp', 'date', 'double', 'boolean']);

/** A column of the table's schema. */
export interface TableColumn {
  readonly name: string;
  readonly type: DeltaType;
  readonly partition: boolean;
}

/** The table's columns (partition columns marked); throws `UnsupportedTableError` for types rxlake cannot write. */
export function tableColumns(uri: string, state: FullState): TableColumn[] {
  const parts = new Set(state.metaData.partitionColumns);
  return parseSchemaString(state.metaData.schemaString).map((f) => {
    if (!TYPES.has(f.type)) {
      throw new UnsupportedTableError(`${uri}: column ${f.name} has type ${f.type}; rxlake rewrites only ${[...TYPES].join(', ')} columns`);
    }
    return { name: f.name, type: f.type as DeltaType, partition: parts.has(f.name) };
  });
}

/** The file path of an `add`/`remove` path (URI-decoded), relative to the table root. */
export function filePath(actionPath: string): string {
  return decodeURIComponent(actionPath);
}

/** Whether an action path names a file outside the table root (an absolute URI). */
export function isAbsolutePath(actionPath: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(actionPath) || actionPath.startsWith('/');
}

/** `add.stats` parsed; `undefined` when absent or not JSON. */
export function statsOf(stats: string | null | undefined): { numRecords?: number; minValues?: Record<string, unknown>; maxValues?: Record<string, unknown> } | undefined {
  if (!stats) return undefined;
  try {
    return JSON.parse(stats) as { numRecords?: number; minValues?: Record<string, unknown>; maxValues?: Record<string, unknown> };
  } catch {
    return undefined;
  }
}

const toMicros = (v: unknown, perUnit: bigint, up: boolean): bigint => {
  const n = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
  return up ? n * perUnit : n / perUnit;
};

/**
 * Reads columns of a data file as the Parquet encoder takes them (`encodeColumnData`): strings
 * and binaries as bytes, timestamps as epoch µs (`bigint`, whatever unit the file used), dates as
 * days, longs as `bigint`, integers as numbers. A column the file lacks reads as nulls.
 */
export async function readDataColumns(bytes: Uint8Array, columns: readonly ColumnType[]): Promise<{ data: unknown[][]; rows: number }> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const file = (whole ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) as ArrayBuffer;
  // Column chunks as they are decoded (no row objects are built), put in row order afterwards.
  const chunks = new Map<string, Array<{ rowStart: number; values: ArrayLike<unknown> }>>();
  const metadata = parquetMetadata(file);
  await parquetRead({
    file,
    metadata,
    columns: columns.map((c) => c.name),
    utf8: false,
    parsers: {
      timestampFromMilliseconds: (v: bigint | number) => toMicros(v, 1000n, true),
      timestampFromMicroseconds: (v: bigint | number) => toMicros(v, 1n, true),
      timestampFromNanoseconds: (v: bigint | number) => toMicros(v, 1000n, false),
      dateFromDays: (days: number) => days,
      stringFromBytes: (b: Uint8Array | undefined) => b,
    },
    onChunk: ({ columnName, columnData, rowStart }) => {
      const list = chunks.get(columnName) ?? [];
      list.push({ rowStart, values: columnData as ArrayLike<unknown> });
      chunks.set(columnName, list);
    },
  });
  const rows = Number(metadata.num_rows);
  const data = columns.map((c) => {
    const out = new Array<unknown>(rows).fill(null);
    for (const { rowStart, values } of chunks.get(c.name) ?? []) {
      for (let i = 0; i < values.length && rowStart + i < rows; i++) out[rowStart + i] = normalize(c.type, values[i]);
    }
    return out;
  });
  return { data, rows };
}

const textEncoder = new TextEncoder();

/** One value as `encodeColumnData` takes it for a column of `type`. */
function normalize(type: DeltaType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'long':
      return typeof v === 'bigint' ? v : BigInt(v as number);
    case 'integer':
      return typeof v === 'bigint' ? Number(v) : v;
    case 'timestamp':
      return v instanceof Date ? BigInt(v.getTime()) * 1000n : typeof v === 'bigint' ? v : BigInt(v as number);
    case 'date':
      return v instanceof Date ? Math.floor(v.getTime() / 86_400_000) : v;
    case 'string':
    case 'binary':
      return typeof v === 'string' ? textEncoder.encode(v) : v;
    case 'double':
      return typeof v === 'bigint' ? Number(v) : v;
    default:
      return v;
  }
}

/**
 * A duration in milliseconds from `7d`, `168h`, `90m`, `30s`, `500ms`, `0`, or a Delta table
 * property value such as `interval 7 days`; `undefined` when it is none of these. The same
 * reading as the Delta writer's checkpoints give the table's interval properties.
 */
export const parseDuration: (text: string) => number | undefined = parseInterval;

/** A duration as people read it: `7d`, `36h`, `90m`, `15s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)}s`;
  return `${ms}ms`;
}

/** Bytes as people read them (binary units). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '')} ${units[i] as string}`;
}

/** Commit and checkpoint files of `_delta_log`, by version. */
export const COMMIT_FILE = /^(\d{20})\.json$/;
export const CHECKPOINT_FILE = /^(\d{20})\.checkpoint(?:\.\d{10}\.\d{10})?\.parquet$/;
export const CRC_FILE = /^(\d{20})\.crc$/;
