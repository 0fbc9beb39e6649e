/**
 * A Delta table an append-only writer can create, open and append to, safely alongside other
 * writers: commits are created put-if-absent, a lost race re-reads the winner's `txn` actions
 * and retries at the next version, and rows already recorded in the table are skipped
 * (exactly-once replay).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AddAction, Commit, MetaDataAction, ProtocolAction, Snapshot, TxnAction } from './log.ts';
import { applyCommit, commitPath, loadSnapshot, refreshSnapshot, serializeCommit, writeCheckpoint } from './log.ts';
import { packColumns } from './columnar.ts';
import type { PackedFile } from './columnar.ts';
import type { EncodedFile, ParquetOptions } from './parquet.ts';
import { columnArray, encodeColumnData, encodeParquet, InvalidValueError, ParquetFileBuilder, readColumns } from './parquet.ts';
import type { ParquetWorkerPool } from './parquetPool.ts';
import { sharedParquetPool } from './parquetPool.ts';
import { defaultLogger } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import { withRetry } from '../../core/retry.ts';
import type { RetryPolicy } from '../../core/retry.ts';
import { CommitConflictError, ConcurrentMetadataChangeError, SchemaMismatchError } from './retry.ts';
import type { ColumnSpec, DeltaType, TableSpec } from './schema.ts';
import { checkCompatible, parquetSchema, schemaString, validateSpec } from './schema.ts';
import type { Storage } from './storage.ts';

export interface DeltaTableOptions {
  /** Write a checkpoint after every commit whose version is a multiple of this (default 10). */
  checkpointInterval?: number;
  /**
   * The present for checkpoints, epoch ms (default `Date.now`): tombstones older than the table's
   * `delta.deletedFileRetentionDuration` (default one week) at this time are left out of them.
   */
  clock?: () => number;
  /** Commit attempts per append before giving up with a retriable `CommitConflictError` (default 100). */
  maxCommitAttempts?: number;
  /** Backoff between lost commit races (default 10 ms growing to 1 s, jittered); attempts are `maxCommitAttempts`. */
  conflictBackoff?: Omit<RetryPolicy, 'maxAttempts' | 'giveUpAfterMs'>;
  parquet?: ParquetOptions;
  /**
   * Where Parquet files are encoded. `'worker'` (default): on a worker thread of the process-wide
   * pool, so the calling thread keeps consuming meanwhile (columns are handed over as a few
   * transferred buffers); falls back to the calling thread when no worker can start.
   * `'inline'`: on the calling thread. Or a `ParquetWorkerPool` of your own. With
   * `parquet.compressors` set, encoding is inline (functions cannot move to another thread).
   * Measured (bench/README.md): with the native SNAPPY compressor a worker gains the bronze
   * job 0–10 % throughput for ~220 MB more peak memory, and costs a lone `deltaSink` about 40 %
   * (packing and transfer with nothing to overlap); the bronze job therefore encodes inline.
   * Applies to `append`: rows staged chunk by chunk (`stage`) are encoded on the calling thread.
   */
  encoder?: 'worker' | 'inline' | ParquetWorkerPool;
  /**
   * Where non-fatal problems (a failed checkpoint, an unreadable checkpoint) are reported: any
   * `Logger` (only `warn` is used). Default `defaultLogger()`: pino JSON lines on stderr.
   */
  logger?: Pick<Logger, 'warn'>;
}

/** Exactly-once: how to tell which source record a row is, to skip rows the table already has. */
export interface Dedupe<Row> {
  appId(row: Row): string;
  offset(row: Row): bigint;
}

export interface AppendOptions<Row> {
  /** Extra `txn` versions to record (merged with the dedupe-derived ones; the larger wins). */
  txns?: ReadonlyMap<string, bigint> | Readonly<Record<string, bigint>>;
  /**
   * Drop rows already in the table: a row whose offset is at or below the table's `txn` version
   * of its appId is skipped — checked before writing and again after every lost commit race.
   * The commit records, per appId, the largest offset written.
   */
  dedupe?: Dedupe<Row>;
}

export interface AppendResult {
  /** Version committed; `null` when nothing new had to be written. */
  version: number | null;
  rows: number;
  skipped: number;
  bytes: number;
  files: number;
  durationMs: number;
  /** Commit attempts made (1 = no lost race; 0 = nothing to commit). */
  attempts: number;
}

interface Kept {
  /** Row indices to write; `undefined`: every row. */
  indices: number[] | undefined;
  /** Largest offset per appId among the rows to write (dedupe only). */
  max: Map<string, bigint>;
  /** Smallest offset per appId among the rows to write (dedupe only). */
  min: Map<string, bigint>;
}

/**
 * Rows staged for one commit, encoded into Parquet row groups as they are added (see
 * `DeltaTable.stage`): only the encoded bytes are held until `commit()`.
 */
export interface StagedAppend<Row> {
  /**
   * Encodes `rows` now (one row group per partition value), skipping rows the table already
   * holds (dedupe, as of the table's last refresh or commit) and rows an open staged append of
   * the same handle holds. Throws `InvalidValueError` for a value its column cannot take; the
   * staged append is then discarded.
   */
  add(rows: readonly Row[]): { readonly rows: number; readonly skipped: number };
  /** Rows given to `add` (skipped ones included). */
  readonly received: number;
  /** Rows staged to be written. */
  readonly rows: number;
  /** Encoded bytes held. */
  readonly bytes: number;
  /**
   * Writes the files and commits them in one Delta commit with their `txn` actions, like
   * `append`: rows another writer committed meanwhile are dropped first (the files that held
   * some are read back and encoded again without them). May be called again after a retriable
   * failure.
   */
  commit(): Promise<AppendResult>;
  /**
   * Drops what was staged (a commit in progress may still land: its rows are then in the table,
   * and skipped when read again). Call it whenever the staged rows will not be committed, so
   * this handle stops counting them as staged.
   */
  discard(): void;
}

/** What `#keep` also does for a staged append (see there). */
interface KeepForStage {
  floor(appId: string): bigint | undefined;
  appIndex(appId: string): number;
  /** By row index: the kept rows' appId index and offset (at least as long as the rows). */
  readonly apps: Int32Array;
  readonly offsets: BigInt64Array;
}

/** An `AppendResult` of `received` rows of which `written` landed in `files`. */
function appendResult(t0: number, received: number, version: number | null, written: number, files: WrittenFiles | undefined, attempts: number): AppendResult {
  return {
    version,
    rows: written,
    skipped: received - written,
    bytes: files?.bytes ?? 0,
    files: files?.adds.length ?? 0,
    durationMs: performance.now() - t0,
    attempts,
  };
}

/** Widens `kept`'s offset range of `app` to take in `lo`…`hi`. */
function widen(kept: Kept, app: string, lo: bigint, hi: bigint): void {
  const max = kept.max.get(app);
  if (max === undefined || hi > max) kept.max.set(app, hi);
  const min = kept.min.get(app);
  if (min === undefined || lo < min) kept.min.set(app, lo);
}

/** Who the rows of a staged file are, in file order: appId (an index into the staged append's list) and offset. */
class RowIds {
  apps = new Int32Array(1024);
  offsets = new BigInt64Array(1024);
  length = 0;

  push(app: number, offset: bigint): void {
    if (this.length === this.apps.length) {
      const apps = new Int32Array(this.length * 2);
      apps.set(this.apps);
      this.apps = apps;
      const offsets = new BigInt64Array(this.length * 2);
      offsets.set(this.offsets);
      this.offsets = offsets;
    }
    this.apps[this.length] = app;
    this.offsets[this.length] = offset;
    this.length += 1;
  }
}

/** A staged file, complete: its partition values, bytes and rows. */
interface StagedFile {
  values: (string | null)[];
  file: EncodedFile;
  ids: RowIds;
}

interface WrittenFiles {
  adds: AddAction[];
  bytes: number;
}

const HIVE_NULL = '__HIVE_DEFAULT_PARTITION__';
const textDecoder = new TextDecoder();

/** Hive-style escaping of a partition folder name or value (as Spark and delta-rs do). */
export function escapePartition(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x20 || c === 0x7f || '"#%\'*/:=?\\{[]^'.includes(ch)) {
      out += `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  return out;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** A row's partition value as the string Delta records in `partitionValues`. */
function partitionString(v: unknown, type: DeltaType, column: string): string | null {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'string':
      if (typeof v === 'string') return v;
      if (v instanceof Uint8Array) return textDecoder.decode(v);
      break;
    case 'date':
      if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v)) return v;
      if (v instanceof Date) return v.toISOString().slice(0, 10);
      break;
    case 'integer':
    case 'long':
    case 'double':
      if (typeof v === 'number' || typeof v === 'bigint') return String(v);
      break;
    case 'boolean':
      if (typeof v === 'boolean') return String(v);
      break;
    case 'timestamp': {
      const micros = typeof v === 'bigint' ? v : v instanceof Date ? BigInt(v.getTime()) * 1000n : undefined;
      if (micros === undefined) break;
      const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
      const d = new Date(Number(ms));
      const frac = String(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n).padStart(6, '0');
      return `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}.${frac}`;
    }
    case 'binary':
      break;
  }
  throw new InvalidValueError(`partition column ${column}: cannot use ${typeof v} as a ${type} partition value`);
}

function getterOf<Row>(c: ColumnSpec<Row>): (row: Row) => unknown {
  if (c.get) return c.get;
  const name = c.name;
  return (row) => (row as Record<string, unknown>)[name];
}

/** A Delta table opened for appending. */
export class DeltaTable<Row> {
  readonly storage: Storage;
  readonly spec: TableSpec<Row>;
  #snapshot: Snapshot;
  readonly #opts: DeltaTableOptions;
  readonly #logger: Pick<Logger, 'warn'>;
  readonly #dataColumns: readonly ColumnSpec<Row>[];
  readonly #partitionColumns: readonly ColumnSpec<Row>[];
  readonly #parquetSchema: ReturnType<typeof parquetSchema>;
  readonly #pool: ParquetWorkerPool | undefined;
  /** What open staged appends of this handle hold: a record delivered again is not staged twice. */
  readonly #staging = new Set<{ kept: Kept }>();

  private constructor(storage: Storage, spec: TableSpec<Row>, snapshot: Snapshot, opts: DeltaTableOptions) {
    this.storage = storage;
    this.spec = spec;
    this.#snapshot = snapshot;
    this.#opts = opts;
    this.#logger = opts.logger ?? defaultLogger();
    const parts = spec.partitionColumns ?? [];
    this.#dataColumns = spec.columns.filter((c) => !parts.includes(c.name));
    this.#partitionColumns = parts.map((p) => spec.columns.find((c) => c.name === p) as ColumnSpec<Row>);
    this.#parquetSchema = parquetSchema(this.#dataColumns as readonly ColumnSpec<unknown>[]);
    const encoder = opts.encoder ?? (opts.parquet?.compressors ? 'inline' : 'worker');
    this.#pool = encoder === 'inline' ? undefined : encoder === 'worker' ? sharedParquetPool() : encoder;
  }

  /**
   * Opens the table at `storage` (its root), creating it (version 0) when it does not exist.
   * Safe when several processes create it at once; throws `SchemaMismatchError` when the
   * existing table's columns or partitioning differ from `spec`.
   */
  static async openOrCreate<Row>(storage: Storage, spec: TableSpec<Row>, opts: DeltaTableOptions = {}): Promise<DeltaTable<Row>> {
    validateSpec(spec as TableSpec<unknown>);
    const logger = opts.logger ?? defaultLogger();
    const warn = (m: string, e?: unknown): void => logger.warn(m, { table: storage.uri, error: e });
    let snapshot = await loadSnapshot(storage, { onWarning: warn });
    if (!snapshot) {
      const protocol: ProtocolAction = { minReaderVersion: 1, minWriterVersion: 2 };
      const now = Date.now();
      const metaData: MetaDataAction = {
        id: randomUUID(),
        name: spec.name,
        description: null,
        format: { provider: 'parquet', options: {} },
        schemaString: schemaString(spec.columns as readonly ColumnSpec<unknown>[]),
        partitionColumns: [...(spec.partitionColumns ?? [])],
        configuration: { ...(spec.configuration ?? {}) },
        createdTime: now,
      };
      const commitInfo = {
        timestamp: now,
        operation: 'CREATE TABLE',
        operationParameters: {
          mode: 'ErrorIfExists',
          location: storage.uri,
          protocol: JSON.stringify(protocol),
          metadata: JSON.stringify(metaData),
        },
        isBlindAppend: true,
        engineInfo: 'rxlake',
        txnId: randomUUID(),
      };
      const created = await storage.putIfAbsent(commitPath(0), serializeCommit({ commitInfo, protocol, metaData }));
      if (created) {
        snapshot = { version: 0, protocol, metaData, txns: new Map(), checkpointVersion: undefined };
      } else {
        snapshot = await loadSnapshot(storage, { onWarning: warn });
        if (!snapshot) throw new SchemaMismatchError(`${storage.uri}: lost the race to create the table but cannot read it`);
      }
    }
    checkCompatible(spec as TableSpec<unknown>, snapshot.metaData.schemaString, snapshot.metaData.partitionColumns);
    checkProtocol(storage.uri, snapshot.protocol);
    return new DeltaTable(storage, spec, snapshot, opts);
  }

  /** Table name (from the spec). */
  get name(): string {
    return this.spec.name;
  }

  /** Where the table lives (`Storage.uri`). */
  get uri(): string {
    return this.storage.uri;
  }

  /** Latest version known to this handle. */
  get version(): number {
    return this.#snapshot.version;
  }

  /** The table's `metaData` as of `version`. */
  get metadata(): Readonly<MetaDataAction> {
    return this.#snapshot.metaData;
  }

  /** The latest `txn` version recorded for `appId` (as of the last refresh or commit). */
  txnVersion(appId: string): bigint | undefined {
    return this.#snapshot.txns.get(appId);
  }

  /** Reads commits made since `version` (incremental). */
  async refresh(): Promise<void> {
    await this.#refresh();
  }

  async #refresh(): Promise<Commit[]> {
    const applied = await refreshSnapshot(this.storage, this.#snapshot);
    for (const c of applied) {
      if (c.protocol || c.metaData) {
        checkCompatible(this.spec as TableSpec<unknown>, this.#snapshot.metaData.schemaString, this.#snapshot.metaData.partitionColumns);
        checkProtocol(this.uri, this.#snapshot.protocol);
      }
    }
    return applied;
  }

  /** Writes a checkpoint of `version` now (normally automatic every `checkpointInterval`). */
  async checkpoint(version = this.version): Promise<void> {
    await writeCheckpoint(this.storage, version, (m, e) => this.#logger.warn(m, { table: this.uri, error: e }), this.#opts.clock ?? Date.now);
  }

  /**
   * Appends rows in one commit: one Parquet file per partition, `txn` actions for the source
   * positions covered, then `_delta_log/%020d.json` created put-if-absent, retried at the next
   * version after a lost race. Retriable failures throw errors with `retriable: true`.
   */
  async append(rows: readonly Row[], opts: AppendOptions<Row> = {}): Promise<AppendResult> {
    const t0 = performance.now();
    const result = (version: number | null, written: number, files: WrittenFiles | undefined, attempts: number): AppendResult =>
      appendResult(t0, rows.length, version, written, files, attempts);
    if (!rows.length) return result(null, 0, undefined, 0);
    await this.#refresh();

    const { dedupe } = opts;
    let kept = this.#keep(rows, undefined, dedupe);
    const count = (k: Kept): number => (k.indices ? k.indices.length : rows.length);
    if (!count(kept)) return result(null, 0, undefined, 0);
    let files = await this.#writeFiles(rows, kept.indices);
    const c = await this.#commitFiles({ files, kept, rows: count(kept) }, opts.txns, async () => {
      if (!dedupe) return { files, kept, rows: count(kept) };
      const again = this.#keep(rows, kept.indices, dedupe);
      if (!count(again)) {
        await this.#discard(files);
        return undefined; // someone else already wrote all of it
      }
      if (count(again) !== count(kept)) {
        await this.#discard(files);
        kept = again;
        files = await this.#writeFiles(rows, kept.indices);
      }
      return { files, kept, rows: count(kept) };
    });
    return c.version === null ? result(null, 0, undefined, c.attempts) : result(c.version, c.rows, c.files, c.attempts);
  }

  /**
   * Stages rows for one commit: each `add` encodes its rows into Parquet row groups right away
   * (one file per partition value, growing with every `add`), so only encoded bytes are held
   * until `commit()` writes the files and commits them like `append` (`txn` actions from
   * `dedupe`, put-if-absent, lost races re-read). Rows the table already holds are skipped when
   * added, as of the table's last refresh or commit, and checked again before the commit and
   * after every lost race: rows another writer committed meanwhile (a process that took over a
   * partition) are dropped then, by reading back the files that hold some and encoding them
   * again without those rows — rare, and the price of not keeping the rows themselves.
   *
   * Chunks are encoded on the calling thread whatever `encoder` says (it applies to `append`):
   * a chunk is small, and the rows can go as soon as it is encoded.
   */
  stage(opts: AppendOptions<Row> = {}): StagedAppend<Row> {
    const { dedupe } = opts;
    const parquet = this.#opts.parquet ?? {};
    const builders = new Map<string, { values: (string | null)[]; builder: ParquetFileBuilder; ids: RowIds }>();
    /** appIds of the staged rows, indexed by `RowIds.apps`. */
    const appNames: string[] = [];
    const appIndex = new Map<string, number>();
    let kept: Kept = { indices: undefined, max: new Map(), min: new Map() };
    let finished: StagedFile[] | undefined;
    let received = 0;
    let staged = 0;
    let state: 'open' | 'finished' | 'committed' | 'discarded' = 'open';
    const reserved = { kept };
    this.#staging.add(reserved);
    const floor = (app: string): bigint | undefined => {
      let f: bigint | undefined;
      for (const r of this.#staging) {
        const v = r.kept.max.get(app);
        if (v !== undefined && (f === undefined || v > f)) f = v;
      }
      return f;
    };
    const close = (to: 'committed' | 'discarded'): void => {
      state = to;
      this.#staging.delete(reserved);
    };
    /** Per chunk, reused: which appId and offset each kept row has, so rows can be dropped after a race. */
    let seen: KeepForStage | undefined;
    const seenFor = (n: number): KeepForStage => {
      if (!seen || seen.apps.length < n) {
        const size = Math.max(n, 2 * (seen?.apps.length ?? 0));
        seen = {
          floor,
          appIndex: (app) => {
            let i = appIndex.get(app);
            if (i === undefined) {
              i = appNames.length;
              appNames.push(app);
              appIndex.set(app, i);
            }
            return i;
          },
          apps: new Int32Array(size),
          offsets: new BigInt64Array(size),
        };
      }
      return seen;
    };
    /** Drops staged rows another writer committed meanwhile (re-encoding the files that had some). */
    const dropCommitted = async (): Promise<void> => {
      const r = await this.#dropCommitted(finished ?? [], appNames);
      finished = r.files;
      kept = r.kept;
      reserved.kept = kept;
      staged = r.rows;
    };
    return {
      get received() {
        return received;
      },
      get rows() {
        return staged;
      },
      get bytes() {
        let b = 0;
        for (const { builder } of builders.values()) b += builder.byteLength;
        for (const f of finished ?? []) b += f.file.bytes.byteLength;
        return b;
      },
      add: (rows: readonly Row[]) => {
        if (state !== 'open') throw new Error(`StagedAppend: add after ${state === 'discarded' ? 'discard' : 'commit'}`);
        if (!rows.length) return { rows: 0, skipped: 0 };
        // Offsets at or below what the table or an open staged append of this handle holds are
        // skipped: a record delivered again (a rebalance back to this member) is not written twice.
        const chunkIds = dedupe ? seenFor(rows.length) : undefined;
        const k = this.#keep(rows, undefined, dedupe, chunkIds);
        const n = k.indices ? k.indices.length : rows.length;
        if (n > 0) {
          try {
            for (const g of this.#group(rows, k.indices)) {
              const key = g.values.map((v) => (v === null ? '\u0000' : v)).join('\u0001');
              let open = builders.get(key);
              if (!open) {
                open = { values: g.values, builder: new ParquetFileBuilder(this.#dataColumns, parquet, this.#parquetSchema), ids: new RowIds() };
                builders.set(key, open);
              }
              const rowsOfGroup = g.indices ? g.indices.length : rows.length;
              // Every column is converted (and checked) before anything of the group is written.
              open.builder.writeColumns(this.#dataColumns.map((c) => columnArray(rows, c, g.indices)), rowsOfGroup);
              if (chunkIds) {
                for (let j = 0; j < rowsOfGroup; j++) {
                  const i = g.indices ? (g.indices[j] as number) : j;
                  open.ids.push(chunkIds.apps[i] as number, chunkIds.offsets[i] as bigint);
                }
              }
            }
          } catch (err) {
            // Some groups may be in their files already: this staged append is unusable.
            close('discarded');
            builders.clear();
            throw err;
          }
          for (const [app, hi] of k.max) widen(kept, app, k.min.get(app) as bigint, hi);
        }
        received += rows.length;
        staged += n;
        return { rows: n, skipped: rows.length - n };
      },
      commit: async () => {
        if (state === 'discarded') throw new Error('StagedAppend: commit after discard');
        if (state === 'committed') throw new Error('StagedAppend: committed already');
        const t0 = performance.now();
        const result = (version: number | null, rows: number, files: WrittenFiles | undefined, attempts: number): AppendResult =>
          appendResult(t0, received, version, rows, files, attempts);
        if (state === 'open') {
          state = 'finished';
          finished = [...builders.values()]
            .filter((b) => b.builder.numRecords > 0)
            .map((b) => ({ values: b.values, file: b.builder.finish(), ids: b.ids }));
          builders.clear();
        }
        // A retry after an error: our previous attempt may have landed (its files stay either
        // way); then its rows are the table's now, and dropped here like another writer's.
        await this.#refresh();
        if (this.#overlap(kept)) await dropCommitted();
        if (staged === 0 || !finished?.length) {
          close('committed');
          finished = undefined;
          return result(null, 0, undefined, 0);
        }
        let written = await this.#land(finished);
        const c = await this.#commitFiles({ files: written, kept, rows: staged }, opts.txns, async () => {
          if (!this.#overlap(kept)) return { files: written, kept, rows: staged };
          await this.#discard(written); // none of our attempts landed
          await dropCommitted();
          if (staged === 0 || !finished?.length) return undefined;
          written = await this.#land(finished);
          return { files: written, kept, rows: staged };
        });
        close('committed');
        finished = undefined;
        return c.version === null ? result(null, 0, undefined, c.attempts) : result(c.version, c.rows, c.files, c.attempts);
      },
      discard: () => {
        if (state !== 'committed') close('discarded');
        builders.clear();
        finished = undefined;
      },
    };
  }

  /**
   * Staged files without the rows the table now holds (a `txn` version at or above their
   * offset): files that keep every row are kept as they are, files that keep none are dropped,
   * the others are read back (hyparquet) and encoded again with the rows that remain.
   */
  async #dropCommitted(files: readonly StagedFile[], appNames: readonly string[]): Promise<{ files: StagedFile[]; kept: Kept; rows: number }> {
    const floors = appNames.map((a) => this.#snapshot.txns.get(a));
    const out: StagedFile[] = [];
    const kept: Kept = { indices: undefined, max: new Map(), min: new Map() };
    let rows = 0;
    for (const f of files) {
      const keep: number[] = [];
      const n = f.ids.length;
      for (let r = 0; r < n; r++) {
        const v = floors[f.ids.apps[r] as number];
        if (v === undefined || (f.ids.offsets[r] as bigint) > v) keep.push(r);
      }
      if (keep.length === 0) continue;
      const ids = new RowIds();
      for (const r of keep) {
        const app = f.ids.apps[r] as number;
        const off = f.ids.offsets[r] as bigint;
        ids.push(app, off);
        widen(kept, appNames[app] as string, off, off);
      }
      rows += keep.length;
      if (keep.length === n) {
        out.push(f);
        continue;
      }
      const data = await readColumns(f.file.bytes, this.#dataColumns.map((c) => c.name));
      const picked = data.map((col) => keep.map((r) => col[r]));
      const file = encodeColumnData(picked, this.#dataColumns, keep.length, this.#opts.parquet ?? {}, this.#parquetSchema);
      out.push({ values: f.values, file, ids });
    }
    return { files: out, kept, rows };
  }

  /** After a refresh: whether the table now holds some staged rows (a `txn` version at or above the smallest staged offset of its appId). */
  #overlap(kept: Kept): boolean {
    for (const [app, min] of kept.min) {
      const v = this.#snapshot.txns.get(app);
      if (v !== undefined && v >= min) return true;
    }
    return false;
  }

  /**
   * Commits written `files` at the next version, put-if-absent. After a lost race it re-reads
   * the winners: our own commit found among them ends it; a protocol or metadata change removes
   * the files and throws; else `recheck` decides what to commit at the next attempt (`undefined`:
   * nothing, its files removed).
   */
  async #commitFiles(
    first: { files: WrittenFiles; kept: Kept; rows: number },
    extraTxns: AppendOptions<Row>['txns'],
    recheck: () => Promise<{ files: WrittenFiles; kept: Kept; rows: number } | undefined>,
  ): Promise<{ version: number | null; rows: number; files: WrittenFiles | undefined; attempts: number }> {
    let cur = first;
    const txnId = randomUUID();
    const maxAttempts = this.#opts.maxCommitAttempts ?? 100;
    const lostRace = (attempt: number, version: number): CommitConflictError =>
      new CommitConflictError(`${this.uri}: lost ${attempt} commit races in a row (at version ${version})`);
    try {
      return await withRetry(
        async (attempt) => {
          const version = this.#snapshot.version + 1;
          const now = Date.now();
          const txns = this.#txns(cur.kept, extraTxns, now);
          const commitInfo = {
            timestamp: now,
            operation: 'WRITE',
            operationParameters: { mode: 'Append', partitionBy: JSON.stringify(this.spec.partitionColumns ?? []) },
            isBlindAppend: true,
            engineInfo: 'rxlake',
            txnId,
            operationMetrics: {
              numFiles: String(cur.files.adds.length),
              numOutputRows: String(cur.rows),
              numOutputBytes: String(cur.files.bytes),
            },
          };
          const body = serializeCommit({ commitInfo, txns, adds: cur.files.adds });
          if (await this.storage.putIfAbsent(commitPath(version), body)) {
            if (this.#snapshot.version === version - 1) applyCommit(this.#snapshot, { version, txns, adds: [], removes: [] });
            else await this.#refresh(); // another append on this handle moved the snapshot meanwhile
            await this.#maybeCheckpoint(version);
            return { version, rows: cur.rows, files: cur.files, attempts: attempt };
          }

          // Lost the race: read the winners, then decide.
          let applied: Commit[];
          try {
            applied = await this.#refresh();
          } catch (err) {
            if (!(err instanceof SchemaMismatchError)) throw err;
            await this.#discard(cur.files);
            throw new ConcurrentMetadataChangeError(`${this.uri}: another writer changed the table while committing: ${err.message}`);
          }
          const ours = applied.find((c) => c.commitInfo?.txnId === txnId);
          if (ours) return { version: ours.version, rows: cur.rows, files: cur.files, attempts: attempt }; // our write landed after all
          if (applied.some((c) => c.protocol || c.metaData)) {
            await this.#discard(cur.files);
            throw new ConcurrentMetadataChangeError(`${this.uri}: another writer changed the table's protocol or metadata`);
          }
          const next = await recheck();
          if (!next) return { version: null, rows: 0, files: undefined, attempts: attempt };
          cur = next;
          throw lostRace(attempt, version); // retried at the next version, after a backoff
        },
        { initialMs: 10, maxMs: 1000, ...this.#opts.conflictBackoff, maxAttempts, retryIf: (err) => err instanceof CommitConflictError },
      );
    } catch (err) {
      if (err instanceof CommitConflictError) await this.#discard(cur.files);
      throw err;
    }
  }

  /**
   * Rows not yet in the table (`indices` undefined: all rows, no dedupe) and, per appId, the
   * largest offset among them — one pass, one `appId()` call per row. `stage`: also skip offsets
   * at or below `floor(appId)`, and note each kept row's appId index and offset at its index.
   */
  #keep(rows: readonly Row[], from: readonly number[] | undefined, dedupe: Dedupe<Row> | undefined, stage?: KeepForStage): Kept {
    if (!dedupe) return { indices: undefined, max: new Map(), min: new Map() };
    const txns = this.#snapshot.txns;
    const out: number[] = [];
    const max = new Map<string, bigint>();
    const min = new Map<string, bigint>();
    const n = from ? from.length : rows.length;
    let lastApp: string | undefined;
    let lastVersion: bigint | undefined;
    let lastMax: bigint | undefined;
    let lastMin: bigint | undefined;
    let lastIndex = -1;
    const save = (): void => {
      if (lastApp === undefined || lastMax === undefined || lastMin === undefined) return;
      max.set(lastApp, lastMax);
      min.set(lastApp, lastMin);
    };
    for (let k = 0; k < n; k++) {
      const i = from ? (from[k] as number) : k;
      const row = rows[i] as Row;
      const app = dedupe.appId(row);
      if (app !== lastApp) {
        save();
        lastApp = app;
        lastVersion = txns.get(app);
        if (stage) {
          const f = stage.floor(app);
          if (f !== undefined && (lastVersion === undefined || f > lastVersion)) lastVersion = f;
          lastIndex = stage.appIndex(app);
        }
        lastMax = max.get(app);
        lastMin = min.get(app);
      }
      const off = dedupe.offset(row);
      if (lastVersion === undefined || off > lastVersion) {
        out.push(i);
        if (stage) {
          stage.apps[i] = lastIndex;
          stage.offsets[i] = off;
        }
        if (lastMax === undefined || off > lastMax) lastMax = off;
        if (lastMin === undefined || off < lastMin) lastMin = off;
      }
    }
    save();
    // All rows kept: no index indirection needed when writing.
    return { indices: out.length === rows.length ? undefined : out, max, min };
  }

  #txns(kept: Kept, txns: AppendOptions<Row>['txns'], now: number): TxnAction[] {
    const max = new Map(kept.max);
    if (txns) {
      const entries: Array<[string, bigint]> = txns instanceof Map
        ? [...(txns as ReadonlyMap<string, bigint>).entries()]
        : Object.entries(txns as Readonly<Record<string, bigint>>);
      for (const [app, v] of entries) {
        const cur = max.get(app);
        if (cur === undefined || v > cur) max.set(app, v);
      }
    }
    return [...max].map(([appId, version]) => ({ appId, version, lastUpdated: now }));
  }

  async #writeFiles(rows: readonly Row[], kept: readonly number[] | undefined): Promise<WrittenFiles> {
    const groups = this.#group(rows, kept);
    const pool = this.#opts.parquet?.compressors ? undefined : this.#pool;
    const parquet = this.#opts.parquet ?? {};
    if (pool) {
      // Every value is checked (and copied into transferable buffers) here, before any file is
      // handed over; encoding runs on the pool's workers, each file landing when it is ready.
      const encodeOpts = {
        ...(parquet.rowGroupSize === undefined ? {} : { rowGroupSize: parquet.rowGroupSize }),
        ...(parquet.statsStringLength === undefined ? {} : { statsStringLength: parquet.statsStringLength }),
      };
      const packed = groups.map((g) => packColumns(rows, this.#dataColumns, g.indices, pool.allocate));
      return this.#land(groups.map((g, at) => ({ values: g.values, file: pool.encode(packed[at] as PackedFile, this.#parquetSchema, encodeOpts) })));
    }
    // Every file is encoded (and every value checked) before any is written.
    return this.#land(groups.map((g) => ({ values: g.values, file: encodeParquet(rows, this.#dataColumns, g.indices, parquet, this.#parquetSchema) })));
  }

  /**
   * Writes each file as soon as it is encoded (part numbers follow the list's order, whatever
   * order the encodings finish in). When an encoding or a write fails, waits for the others,
   * removes what was written and throws.
   */
  async #land(files: ReadonlyArray<{ readonly values: readonly (string | null)[]; readonly file: EncodedFile | Promise<EncodedFile> }>): Promise<WrittenFiles> {
    const adds: AddAction[] = [];
    let bytes = 0;
    const writes = files.map(async ({ values, file }, part) => {
      const encoded = await file;
      const { add, fsPath } = this.#addAction(values, part, encoded);
      adds[part] = add;
      bytes += encoded.bytes.byteLength;
      await this.storage.write(fsPath, encoded.bytes);
    });
    // Wait for every started encoding and write, even after a failure, so none is left running.
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const written = adds.filter((a): a is AddAction => a !== undefined);
    if (failed) {
      await this.#discard({ adds: written, bytes });
      throw failed.reason;
    }
    return { adds: written, bytes };
  }

  /** The `add` action of a data file of the partition `values`, and its path in the table. */
  #addAction(values: readonly (string | null)[], part: number, file: EncodedFile): { add: AddAction; fsPath: string } {
    const dir = this.#partitionColumns
      .map((c, i) => `${escapePartition(c.name)}=${escapePartition(values[i] ?? HIVE_NULL)}`)
      .join('/');
    const name = `part-${String(part).padStart(5, '0')}-${randomUUID()}.c000.snappy.parquet`;
    const fsPath = dir ? `${dir}/${name}` : name;
    const partitionValues: Record<string, string | null> = {};
    this.#partitionColumns.forEach((c, i) => {
      partitionValues[c.name] = values[i] ?? null;
    });
    const add: AddAction = {
      path: encodeURI(fsPath),
      partitionValues,
      size: file.bytes.byteLength,
      modificationTime: Date.now(),
      dataChange: true,
      stats: file.stats,
    };
    return { add, fsPath };
  }

  #group(rows: readonly Row[], kept: readonly number[] | undefined): Array<{ values: (string | null)[]; indices: readonly number[] | undefined }> {
    const parts = this.#partitionColumns;
    if (!parts.length) return [{ values: [], indices: kept }];
    const getters = parts.map(getterOf);
    const one = parts.length === 1 ? (parts[0] as ColumnSpec<Row>) : undefined;
    const getOne = getters[0] as (r: Row) => unknown;
    const groups = new Map<string, { values: (string | null)[]; indices: number[] }>();
    const n = kept ? kept.length : rows.length;
    // Rows before `k` all in the first group: its indices are only listed once a second group
    // shows up (a batch usually holds one partition), and no array is built per row.
    let first: { key: string; values: (string | null)[] } | undefined;
    for (let k = 0; k < n; k++) {
      const i = kept ? (kept[k] as number) : k;
      const row = rows[i] as Row;
      let key: string;
      let values: (string | null)[] | undefined;
      let single: string | null = null;
      if (one) {
        single = partitionString(getOne(row), one.type, one.name);
        key = single === null ? '\u0000' : single;
      } else {
        values = parts.map((c, j) => partitionString((getters[j] as (r: Row) => unknown)(row), c.type, c.name));
        key = values.map((v) => (v === null ? '\u0000' : v)).join('\u0001');
      }
      if (first === undefined) {
        first = { key, values: values ?? [single] };
        continue;
      }
      if (groups.size === 0) {
        if (key === first.key) continue;
        const before = kept ? kept.slice(0, k) : Array.from({ length: k }, (_, j) => j);
        groups.set(first.key, { values: first.values, indices: before });
      }
      const g = groups.get(key);
      if (g) g.indices.push(i);
      else groups.set(key, { values: values ?? [single], indices: [i] });
    }
    // One partition: write straight from `rows` (or the kept rows), no grouping needed.
    if (groups.size === 0) return first === undefined ? [] : [{ values: first.values, indices: kept }];
    return [...groups.values()];
  }

  async #discard(files: WrittenFiles): Promise<void> {
    await Promise.allSettled(files.adds.map((a) => this.storage.delete(decodeURI(a.path))));
  }

  async #maybeCheckpoint(version: number): Promise<void> {
    const every = this.#opts.checkpointInterval ?? 10;
    if (every <= 0 || version === 0 || version % every !== 0) return;
    try {
      await this.checkpoint(version);
    } catch (err) {
      this.#logger.warn(`checkpoint of ${this.uri} at version ${version} failed (the commit itself succeeded)`, { table: this.uri, version, error: err });
    }
  }
}

function checkProtocol(uri: string, p: ProtocolAction): void {
  if (p.minWriterVersion > 2 || p.minReaderVersion > 1) {
    throw new SchemaMismatchError(
      `${uri}: protocol (reader ${p.minReaderVersion}, writer ${p.minWriterVersion}) needs features this writer does not implement (max reader 1, writer 2)`,
    );
  }
}
