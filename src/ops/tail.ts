/**
 * The last rows of a table, readable: the newest by an ordering column (default `_ingested_at`
 * when the table has it, else its first timestamp column), reading only the files whose stats
 * say they may hold one of them; optionally filtered (`column op value`).
 */
import type { AddAction } from '../sinks/delta/log.ts';
import type { DeltaType } from '../sinks/delta/schema.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { DeltaError } from '../sinks/delta/retry.ts';
import type { TableColumn } from './common.ts';
import { filePath, isAbsolutePath, loadTable, readDataColumns, statsOf, tableColumns } from './common.ts';

/** One condition of `--where`: `column op value`. */
export interface RowFilter {
  readonly column: string;
  readonly op: '=' | '!=' | '<' | '<=' | '>' | '>=' | '~';
  /** As typed: parsed by the column's type (`~`: the value contains this text). */
  readonly value: string;
}

/** A bad `--where` or `--order-by`. */
export class TailUsageError extends DeltaError {
  constructor(message: string) {
    super(message, { code: 'TAIL_USAGE' });
    this.name = 'TailUsageError';
  }
}

/** Parses `col=value`, `col>=value`, `col~text`, … */
export function parseFilter(text: string): RowFilter {
  const m = /^\s*([^=!<>~\s]+)\s*(!=|<=|>=|=|<|>|~)\s*(.*)$/.exec(text);
  if (!m) throw new TailUsageError(`--where ${JSON.stringify(text)}: expected COLUMN OP VALUE with OP one of = != < <= > >= ~ (contains), e.g. error_type=JSON_PARSE_ERROR`);
  return { column: m[1] as string, op: m[2] as RowFilter['op'], value: (m[3] as string).trim() };
}

export interface TailOptions {
  /** Rows (default 10). */
  readonly limit?: number;
  readonly where?: readonly RowFilter[];
  /** Ordering column; default `_ingested_at`, else the first timestamp column, else log order. */
  readonly orderBy?: string;
  /** Columns to show (default all). */
  readonly columns?: readonly string[];
  readonly onWarning?: (message: string, err?: unknown) => void;
}

/** A value as shown: strings as text, timestamps ISO-8601 (µs, UTC), longs exact, binaries base64. */
export type ShownValue = string | number | boolean | null | { readonly base64: string };

export interface TailResult {
  readonly uri: string;
  readonly version: number;
  readonly orderBy: string | null;
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: DeltaType }>;
  /** Oldest first, the newest last (as `tail` shows lines). */
  readonly rows: ReadonlyArray<Record<string, ShownValue>>;
  /** Files read, of the table's. */
  readonly filesRead: number;
  readonly files: number;
}

const utf8 = new TextDecoder('utf-8');

/** A value read by `readDataColumns` (or a partition value) as comparable: bigint, number, string, boolean. */
type Cmp = bigint | number | string | boolean | null;

function comparable(type: DeltaType, v: unknown): Cmp {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return type === 'binary' ? Buffer.from(v).toString('base64') : utf8.decode(v);
  return v as Cmp;
}

function isoMicros(micros: bigint): string {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return micros.toString();
  const frac = String(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n).padStart(6, '0');
  return `${d.toISOString().slice(0, 19)}.${frac}Z`;
}

function shown(type: DeltaType, value: unknown): ShownValue {
  if (value === null || value === undefined) return null;
  // What `readDataColumns` gives: bytes, bigint, number, boolean, or text.
  const v = value as Uint8Array | bigint | number | boolean | string;
  switch (type) {
    case 'timestamp':
      return typeof v === 'bigint' ? isoMicros(v) : String(v);
    case 'date':
      return typeof v === 'number' ? new Date(v * 86_400_000).toISOString().slice(0, 10) : String(v);
    case 'long':
      return typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v);
    case 'binary':
      return v instanceof Uint8Array ? { base64: Buffer.from(v).toString('base64') } : String(v);
    case 'string':
      return v instanceof Uint8Array ? utf8.decode(v) : String(v);
    default:
      return v instanceof Uint8Array ? utf8.decode(v) : typeof v === 'bigint' ? v.toString() : v;
  }
}

/** A partition value (Delta's string form) as the column's comparable value. */
function partitionComparable(type: DeltaType, v: string | null | undefined): Cmp {
  if (v === null || v === undefined || v === '') return null;
  switch (type) {
    case 'integer':
    case 'double':
      return Number(v);
    case 'long':
      return BigInt(v);
    case 'boolean':
      return v === 'true';
    case 'timestamp':
      return BigInt(Date.parse(v.includes('T') || v.endsWith('Z') ? v : `${v.replace(' ', 'T')}Z`)) * 1000n;
    case 'date':
      return Math.floor(Date.parse(`${v}T00:00:00Z`) / 86_400_000);
    default:
      return v;
  }
}

/** The filter's value parsed for a column of `type`. */
function filterValue(f: RowFilter, type: DeltaType): Cmp {
  const v = f.value;
  if (f.op === '~') return v;
  if (v.toLowerCase() === 'null') return null;
  try {
    switch (type) {
      case 'integer':
      case 'double': {
        const n = Number(v);
        if (Number.isNaN(n)) break;
        return n;
      }
      case 'long':
        return BigInt(v);
      case 'boolean':
        if (v === 'true' || v === 'false') return v === 'true';
        break;
      case 'timestamp': {
        const ms = Date.parse(v);
        if (Number.isNaN(ms)) break;
        return BigInt(ms) * 1000n;
      }
      case 'date': {
        const ms = Date.parse(`${v}T00:00:00Z`);
        if (Number.isNaN(ms)) break;
        return Math.floor(ms / 86_400_000);
      }
      default:
        return v;
    }
  } catch {
    // fall through to the error
  }
  throw new TailUsageError(`--where ${f.column}${f.op}${v}: ${JSON.stringify(v)} is not a ${type} value`);
}

function compare(a: Cmp, b: Cmp): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function matches(value: Cmp, op: RowFilter['op'], want: Cmp): boolean {
  if (op === '~') return value !== null && String(value).includes(String(want));
  if (want === null) return op === '=' ? value === null : op === '!=' ? value !== null : false;
  if (value === null) return op === '!=';
  const c = compare(value, want);
  switch (op) {
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
}

/** The upper bound of `column` in a file, from its stats, as a comparable; `undefined`: unknown. */
function fileMax(a: AddAction, column: TableColumn): Cmp | undefined {
  if (column.partition) return partitionComparable(column.type, a.partitionValues[column.name]);
  const max = statsOf(a.stats)?.maxValues?.[column.name];
  if (max === undefined || max === null) return undefined;
  if (column.type === 'timestamp' && typeof max === 'string') {
    const ms = Date.parse(max);
    return Number.isNaN(ms) ? undefined : BigInt(ms + 1) * 1000n; // stats are cut to milliseconds
  }
  if (column.type === 'long' && typeof max === 'number') return BigInt(Math.ceil(max));
  if (column.type === 'date' && typeof max === 'string') return partitionComparable('date', max);
  return typeof max === 'number' || typeof max === 'string' ? max : undefined;
}

/**
 * The last `limit` rows of the table at `storage` (see the module comment): oldest of them first.
 *
 * ## Example
 * ```ts
 * const { rows } = await tailTable(storageFromUri('./data/bronze/dlq_bronze_trips'), {
 *   limit: 5,
 *   where: [parseFilter('error_type=JSON_PARSE_ERROR')],
 * });
 * ```
 *
 * @param storage The table root.
 * @param options `limit`, `where`, `orderBy`, `columns`.
 * @return The rows, shown readably.
 */
export async function tailTable(storage: Storage, options: TailOptions = {}): Promise<TailResult> {
  const limit = options.limit ?? 10;
  const state = await loadTable(storage, options.onWarning);
  const all = tableColumns(storage.uri, state);
  const byName = new Map(all.map((c) => [c.name, c]));
  for (const name of [...(options.columns ?? []), ...(options.where ?? []).map((f) => f.column), ...(options.orderBy ? [options.orderBy] : [])]) {
    if (!byName.has(name)) throw new TailUsageError(`${storage.uri} has no column ${JSON.stringify(name)}; its columns: ${all.map((c) => c.name).join(', ')}`);
  }
  const orderName = options.orderBy ?? (byName.has('_ingested_at') ? '_ingested_at' : all.find((c) => c.type === 'timestamp')?.name);
  const order = orderName === undefined ? undefined : (byName.get(orderName) as TableColumn);
  const shownColumns = (options.columns ?? all.map((c) => c.name)).map((n) => byName.get(n) as TableColumn);
  const filters = (options.where ?? []).map((f) => ({ f, column: byName.get(f.column) as TableColumn, want: filterValue(f, (byName.get(f.column) as TableColumn).type) }));
  const dataColumns = all.filter((c) => !c.partition);

  // Files that cannot hold a match of a partition filter are skipped.
  let files = [...state.adds.values()].filter((a) => !isAbsolutePath(a.path));
  files = files.filter((a) =>
    filters.every(({ f, column, want }) => !column.partition || matches(partitionComparable(column.type, a.partitionValues[column.name]), f.op, want)),
  );
  // Newest first: by the ordering column's upper bound (unknown bounds first), else log order reversed.
  const bounds = new Map(files.map((a) => [a, order ? fileMax(a, order) : undefined]));
  if (order) {
    files.sort((x, y) => {
      const a = bounds.get(x);
      const b = bounds.get(y);
      if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? -1 : 1;
      return compare(b, a);
    });
  } else {
    files.reverse();
  }

  type Kept = { key: Cmp; seq: number; row: Record<string, ShownValue> };
  let kept: Kept[] = [];
  let seq = 0;
  let filesRead = 0;
  for (const a of files) {
    if (order && kept.length >= limit) {
      const bound = bounds.get(a);
      const lowest = (kept[kept.length - 1] as Kept).key;
      if (bound !== undefined && compare(bound, lowest) < 0) break; // no later file can hold a newer row
    } else if (!order && kept.length >= limit) {
      break;
    }
    const bytes = await storage.read(filePath(a.path));
    if (bytes === undefined) throw new DeltaError(`${storage.uri}: ${filePath(a.path)} is live but missing from storage`);
    filesRead++;
    const { data, rows } = await readDataColumns(bytes, dataColumns);
    const fileRows: Kept[] = [];
    for (let r = 0; r < rows; r++) {
      const value = (c: TableColumn): unknown => (c.partition ? partitionComparable(c.type, a.partitionValues[c.name]) : (data[dataColumns.indexOf(c)] as unknown[])[r]);
      if (!filters.every(({ f, column, want }) => matches(comparable(column.type, value(column)), f.op, want))) continue;
      const row: Record<string, ShownValue> = {};
      for (const c of shownColumns) {
        const v = value(c);
        row[c.name] = c.partition ? (a.partitionValues[c.name] ?? null) : shown(c.type, v);
      }
      // Without an ordering column, newer files (read first) rank higher, and later rows within a file.
      fileRows.push({ key: order ? comparable(order.type, value(order)) : -filesRead, seq: seq++, row });
    }
    kept = kept.concat(fileRows);
    // Newest first; ties keep the later-read (log order) last.
    kept.sort((x, y) => compare(y.key, x.key) || y.seq - x.seq);
    if (kept.length > limit) kept = kept.slice(0, limit);
  }
  return {
    uri: storage.uri,
    version: state.version,
    orderBy: order?.name ?? null,
    columns: shownColumns.map((c) => ({ name: c.name, type: c.type })),
    rows: kept.reverse().map((k) => k.row),
    filesRead,
    files: state.adds.size,
  };
}
