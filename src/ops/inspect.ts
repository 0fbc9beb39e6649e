/**
 * A table at a glance: version, protocol, partitioning, files and sizes (small files flagged),
 * rows (from the files' stats), the last commits with their operation, and the `txn` versions
 * the writers recorded per source partition; with Kafka, the lag of each partition behind its
 * topic's end.
 */
import type { FullState } from '../sinks/delta/log.ts';
import { COMMIT_FILE } from './common.ts';
import { LOG_DIR, readCommit } from '../sinks/delta/log.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { loadTable, statsOf, tableColumns } from './common.ts';
import { DEFAULT_TARGET_SIZE } from './optimize.ts';

export interface InspectOptions {
  /** How many of the last commits to describe (default 10). */
  readonly commits?: number;
  /** Files smaller than this are "small" (default three quarters of 128 MiB, what `optimize` compacts). */
  readonly smallFileSize?: number;
  readonly onWarning?: (message: string, err?: unknown) => void;
}

export interface PartitionReport {
  readonly values: Readonly<Record<string, string | null>>;
  readonly files: number;
  readonly bytes: number;
  readonly smallFiles: number;
  readonly rows: number | null;
}

export interface CommitReport {
  readonly version: number;
  /** Epoch ms, from the commit's `commitInfo`. */
  readonly timestamp: number | null;
  readonly operation: string | null;
  readonly filesAdded: number;
  readonly filesRemoved: number;
  /** Rows the commit added (`stats` of its adds; `null` when one has none). */
  readonly rowsAdded: number | null;
  readonly txns: number;
  readonly engine: string | null;
}

export interface TxnReport {
  readonly appId: string;
  /** Exact (Kafka offsets may exceed 2^53). */
  readonly version: string;
  /** Epoch ms. */
  readonly lastUpdated: number | null;
}

export interface TableReport {
  readonly uri: string;
  readonly name: string | null;
  readonly version: number;
  /** Epoch ms of the latest commit, when its file still holds a `commitInfo`. */
  readonly timestamp: number | null;
  readonly protocol: { readonly minReaderVersion: number; readonly minWriterVersion: number };
  readonly partitionColumns: readonly string[];
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: string }>;
  readonly configuration: Readonly<Record<string, string>>;
  readonly checkpointVersion: number | null;
  readonly files: {
    readonly count: number;
    readonly bytes: number;
    readonly smallFileSize: number;
    readonly small: number;
    readonly smallBytes: number;
    readonly minSize: number | null;
    readonly maxSize: number | null;
  };
  /** Rows of the latest version (from the files' stats). */
  readonly rows: number;
  /** Files without a row count in their stats (their rows are not in `rows`). */
  readonly filesWithoutStats: number;
  readonly tombstones: number;
  readonly partitions: readonly PartitionReport[];
  readonly commits: readonly CommitReport[];
  readonly txns: readonly TxnReport[];
}

/**
 * Describes the table at `storage` (see `TableReport`).
 *
 * ## Example
 * ```ts
 * const report = await inspectTable(storageFromUri('./data/bronze/bronze_trips'));
 * console.log(report.version, report.files.count, report.rows);
 * ```
 *
 * @param storage The table root.
 * @param options `commits`, `smallFileSize`.
 * @return The report.
 */
export async function inspectTable(storage: Storage, options: InspectOptions = {}): Promise<TableReport> {
  const state = await loadTable(storage, options.onWarning);
  return reportOf(storage, state, options);
}

async function reportOf(storage: Storage, state: FullState, options: InspectOptions): Promise<TableReport> {
  const smallFileSize = options.smallFileSize ?? Math.floor(DEFAULT_TARGET_SIZE * 0.75);
  const partitionColumns = state.metaData.partitionColumns;
  const parts = new Map<string, { values: Record<string, string | null>; files: number; bytes: number; smallFiles: number; rows: number | null }>();
  let bytes = 0;
  let small = 0;
  let smallBytes = 0;
  let rows = 0;
  let noStats = 0;
  let minSize: number | null = null;
  let maxSize: number | null = null;
  for (const a of state.adds.values()) {
    bytes += a.size;
    const isSmall = a.size < smallFileSize;
    if (isSmall) {
      small++;
      smallBytes += a.size;
    }
    minSize = minSize === null ? a.size : Math.min(minSize, a.size);
    maxSize = maxSize === null ? a.size : Math.max(maxSize, a.size);
    const n = statsOf(a.stats)?.numRecords;
    if (n === undefined) noStats++;
    else rows += n;
    const values = Object.fromEntries(partitionColumns.map((c) => [c, a.partitionValues[c] ?? null]));
    const key = JSON.stringify(partitionColumns.map((c) => values[c]));
    let p = parts.get(key);
    if (!p) {
      p = { values, files: 0, bytes: 0, smallFiles: 0, rows: 0 };
      parts.set(key, p);
    }
    p.files++;
    p.bytes += a.size;
    if (isSmall) p.smallFiles++;
    p.rows = n === undefined || p.rows === null ? null : p.rows + n;
  }

  const wanted = options.commits ?? 10;
  const names = await storage.list(LOG_DIR);
  const versions = names.map((n) => COMMIT_FILE.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
  versions.sort((a, b) => b - a);
  const recent = versions.filter((v) => v <= state.version).slice(0, wanted);
  const commits: CommitReport[] = [];
  for (const c of await Promise.all(recent.map((v) => readCommit(storage, v)))) {
    if (!c) continue;
    let rowsAdded: number | null = 0;
    for (const a of c.adds) {
      const n = statsOf(a.stats)?.numRecords;
      rowsAdded = n === undefined || rowsAdded === null ? null : rowsAdded + n;
    }
    const ts = c.commitInfo?.timestamp;
    const op = c.commitInfo?.operation;
    const engine = c.commitInfo?.engineInfo ?? c.commitInfo?.clientVersion;
    commits.push({
      version: c.version,
      timestamp: typeof ts === 'number' ? ts : null,
      operation: typeof op === 'string' ? op : null,
      filesAdded: c.adds.length,
      filesRemoved: c.removes.length,
      rowsAdded,
      txns: c.txns.length,
      engine: typeof engine === 'string' ? engine : null,
    });
  }

  const txns = [...state.txns]
    .map(([appId, v]): TxnReport => ({ appId, version: v.toString(), lastUpdated: state.txnUpdated.get(appId) ?? null }))
    .sort((a, b) => (a.appId < b.appId ? -1 : a.appId > b.appId ? 1 : 0));
  const partitionList = [...parts.values()].sort((a, b) => {
    const x = JSON.stringify(partitionColumns.map((c) => a.values[c]));
    const y = JSON.stringify(partitionColumns.map((c) => b.values[c]));
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return {
    uri: storage.uri,
    name: state.metaData.name ?? null,
    version: state.version,
    timestamp: commits[0]?.version === state.version ? commits[0].timestamp : null,
    protocol: { minReaderVersion: state.protocol.minReaderVersion, minWriterVersion: state.protocol.minWriterVersion },
    partitionColumns: [...partitionColumns],
    columns: tableColumnsLoose(storage, state),
    configuration: { ...state.metaData.configuration },
    checkpointVersion: state.checkpointVersion ?? null,
    files: { count: state.adds.size, bytes, smallFileSize, small, smallBytes, minSize, maxSize },
    rows,
    filesWithoutStats: noStats,
    tombstones: state.removes.size,
    partitions: partitionList,
    commits,
    txns,
  };
}

/** The schema's columns with their types (nested types as their JSON), for the report. */
function tableColumnsLoose(storage: Storage, state: FullState): Array<{ name: string; type: string }> {
  try {
    return tableColumns(storage.uri, state).map((c) => ({ name: c.name, type: c.type }));
  } catch {
    return (JSON.parse(state.metaData.schemaString) as { fields?: Array<{ name: string; type: unknown }> }).fields?.map((f) => ({
      name: f.name,
      type: typeof f.type === 'string' ? f.type : JSON.stringify(f.type),
    })) ?? [];
  }
}
