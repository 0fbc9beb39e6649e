/**
 * The Delta transaction log: actions, commit files, snapshot replay and checkpoints.
 *
 * A snapshot keeps what an append-only writer needs: version, protocol, metadata and the
 * latest `txn` version per appId. The add-file list is only built when a checkpoint is written.
 * Opening reads `_last_checkpoint`, the checkpoint Parquet (only the txn/metaData/protocol
 * columns), then the later JSON commits found by listing from the checkpoint on.
 *
 * Tombstones (`remove` actions) expire: a checkpoint leaves out those whose `deletionTimestamp`
 * is older than the table's `delta.deletedFileRetentionDuration` (default one week), as the Delta
 * protocol allows and delta-rs and Spark do, so checkpoints stay bounded on tables that are
 * compacted often. A remove without a `deletionTimestamp` counts as deleted at time 0 (expired),
 * as in delta-rs and Spark.
 */
import type { SchemaElement } from 'hyparquet';
import { parquetReadObjects } from 'hyparquet';
import { ByteWriter, parquetWrite } from 'hyparquet-writer';
import { DeltaError } from './retry.ts';
import type { Storage } from './storage.ts';

export interface ProtocolAction {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface MetaDataAction {
  id: string;
  name?: string | null;
  description?: string | null;
  format: { provider: string; options: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  configuration: Record<string, string>;
  createdTime?: number | null;
}

export interface AddAction {
  /** URI-encoded path relative to the table root. */
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string | null;
  tags?: Record<string, string | null> | null;
}

export interface RemoveAction {
  path: string;
  deletionTimestamp?: number | null;
  dataChange: boolean;
  extendedFileMetadata?: boolean | null;
  partitionValues?: Record<string, string | null> | null;
  size?: number | null;
}

export interface TxnAction {
  appId: string;
  /** Exact, even beyond 2^53 (Kafka offsets). */
  version: bigint;
  lastUpdated?: number | null;
}

/** One parsed commit file. */
export interface Commit {
  version: number;
  protocol?: ProtocolAction;
  metaData?: MetaDataAction;
  txns: TxnAction[];
  adds: AddAction[];
  removes: RemoveAction[];
  commitInfo?: Record<string, unknown>;
}

/** What an append-only writer needs to know about a table. */
export interface Snapshot {
  version: number;
  protocol: ProtocolAction;
  metaData: MetaDataAction;
  txns: Map<string, bigint>;
  /** Version of the checkpoint this snapshot started from, if any. */
  checkpointVersion: number | undefined;
}

/** A snapshot plus the live files and tombstones (what a checkpoint holds). */
export interface FullState extends Snapshot {
  adds: Map<string, AddAction>;
  removes: Map<string, RemoveAction>;
  txnUpdated: Map<string, number | null>;
}

export const LOG_DIR = '_delta_log';
const COMMIT_RE = /^(\d{20})\.json$/;
const CHECKPOINT_RE = /^(\d{20})\.checkpoint\.parquet$/;

export const pad = (v: number): string => String(v).padStart(20, '0');
export const commitPath = (v: number): string => `${LOG_DIR}/${pad(v)}.json`;
export const checkpointPath = (v: number): string => `${LOG_DIR}/${pad(v)}.checkpoint.parquet`;
export const LAST_CHECKPOINT = `${LOG_DIR}/_last_checkpoint`;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Thrown when the log cannot be read as a Delta table (corrupt, or a gap). */
export class CorruptLogError extends DeltaError {
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: false, cause, code: 'CORRUPT_LOG' });
    this.name = 'CorruptLogError';
  }
}

const TXN_VERSION_RE = /"version"\s*:\s*(-?\d+)/;

/** Parses one commit file. `txn.version` is read exactly (JSON.parse would round it). */
export function parseCommit(version: number, bytes: Uint8Array): Commit {
  const commit: Commit = { version, txns: [], adds: [], removes: [] };
  const text = decoder.decode(bytes);
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let action: Record<string, unknown>;
    try {
      action = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw new CorruptLogError(`commit ${version}: bad JSON line`, err);
    }
    if (action.add) commit.adds.push(action.add as AddAction);
    else if (action.txn) {
      const t = action.txn as { appId: string; version: number; lastUpdated?: number | null };
      const exact = TXN_VERSION_RE.exec(line.slice(line.indexOf('"txn"')));
      commit.txns.push({ appId: t.appId, version: exact ? BigInt(exact[1] as string) : BigInt(t.version), lastUpdated: t.lastUpdated ?? null });
    } else if (action.remove) commit.removes.push(action.remove as RemoveAction);
    else if (action.metaData) commit.metaData = action.metaData as MetaDataAction;
    else if (action.protocol) commit.protocol = action.protocol as ProtocolAction;
    else if (action.commitInfo) commit.commitInfo = action.commitInfo as Record<string, unknown>;
  }
  return commit;
}

/** One commit file's bytes: commitInfo first, then the other actions, one per line. */
export function serializeCommit(actions: {
  commitInfo?: Record<string, unknown>;
  protocol?: ProtocolAction;
  metaData?: MetaDataAction;
  txns?: readonly TxnAction[];
  adds?: readonly AddAction[];
}): Uint8Array {
  const lines: string[] = [];
  if (actions.commitInfo) lines.push(JSON.stringify({ commitInfo: actions.commitInfo }));
  if (actions.protocol) lines.push(JSON.stringify({ protocol: actions.protocol }));
  if (actions.metaData) lines.push(JSON.stringify({ metaData: actions.metaData }));
  for (const t of actions.txns ?? []) {
    lines.push(`{"txn":{"appId":${JSON.stringify(t.appId)},"version":${t.version.toString()},"lastUpdated":${t.lastUpdated ?? Date.now()}}}`);
  }
  for (const a of actions.adds ?? []) lines.push(JSON.stringify({ add: a }));
  return encoder.encode(lines.join('\n') + '\n');
}

/** Applies a commit to a snapshot (and to the file lists of a full state). */
export function applyCommit(s: Snapshot | FullState, c: Commit): void {
  if (c.version !== s.version + 1) throw new CorruptLogError(`commit ${c.version} after version ${s.version}`);
  if (c.protocol) s.protocol = c.protocol;
  if (c.metaData) s.metaData = c.metaData;
  for (const t of c.txns) s.txns.set(t.appId, t.version);
  if ('adds' in s) {
    for (const t of c.txns) s.txnUpdated.set(t.appId, t.lastUpdated ?? null);
    for (const r of c.removes) {
      s.adds.delete(r.path);
      s.removes.set(r.path, r);
    }
    for (const a of c.adds) {
      s.removes.delete(a.path);
      s.adds.set(a.path, a);
    }
  }
  s.version = c.version;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Reads and parses commit `v`; `undefined` if the file does not exist. */
export async function readCommit(storage: Storage, v: number): Promise<Commit | undefined> {
  const bytes = await storage.read(commitPath(v));
  return bytes === undefined ? undefined : parseCommit(v, bytes);
}

interface Listing {
  commits: number[];
  checkpoints: number[];
}

async function listLog(storage: Storage, startAfter?: string): Promise<Listing> {
  const names = await storage.list(LOG_DIR, startAfter);
  const commits: number[] = [];
  const checkpoints: number[] = [];
  for (const n of names) {
    let m = COMMIT_RE.exec(n);
    if (m) commits.push(Number(m[1]));
    else if ((m = CHECKPOINT_RE.exec(n))) checkpoints.push(Number(m[1]));
  }
  commits.sort((a, b) => a - b);
  checkpoints.sort((a, b) => a - b);
  return { commits, checkpoints };
}

/** Reads and applies the commits after `s.version` (contiguous ones only, up to `upTo`). */
async function replay(storage: Storage, s: Snapshot | FullState, versions: number[], upTo = Infinity): Promise<Commit[]> {
  const wanted: number[] = [];
  let expect = s.version + 1;
  for (const v of versions) {
    if (v < expect) continue;
    if (v !== expect || v > upTo) break;
    wanted.push(v);
    expect++;
  }
  const commits = await mapLimit(wanted, 16, (v) => readCommit(storage, v));
  const applied: Commit[] = [];
  for (const c of commits) {
    if (!c) break; // vanished between list and read: stop at the gap
    if (c.version <= s.version) continue; // a concurrent refresh of the same snapshot got there first
    if (c.version !== s.version + 1) break;
    applyCommit(s, c);
    applied.push(c);
  }
  return applied;
}

/** Reads new commits into `s` (incremental refresh). Returns the commits applied, in order. */
export async function refreshSnapshot(storage: Storage, s: Snapshot): Promise<Commit[]> {
  const { commits } = await listLog(storage, s.version >= 0 ? `${pad(s.version)}.json` : undefined);
  return replay(storage, s, commits);
}

interface CheckpointContent {
  protocol?: ProtocolAction;
  metaData?: MetaDataAction;
  txns: TxnAction[];
  adds: AddAction[];
  removes: RemoveAction[];
}

const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : (v as number));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

function mapOf(v: unknown): Record<string, string | null> {
  if (v === null || v === undefined) return {};
  if (v instanceof Map) return Object.fromEntries(v) as Record<string, string | null>;
  if (Array.isArray(v)) {
    return Object.fromEntries(v.map((e: { key: string; value: string | null }) => [e.key, e.value]));
  }
  return v as Record<string, string | null>;
}

/** Reads a (single-part) checkpoint. `full` also reads add/remove. */
export async function readCheckpoint(storage: Storage, v: number, full: boolean): Promise<CheckpointContent> {
  const bytes = await storage.read(checkpointPath(v));
  if (!bytes) throw new CorruptLogError(`checkpoint ${v} is missing`);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const rows = await parquetReadObjects({ file, columns: full ? ['txn', 'metaData', 'protocol', 'add', 'remove'] : ['txn', 'metaData', 'protocol'] });
  const out: CheckpointContent = { txns: [], adds: [], removes: [] };
  for (const r of rows) {
    const p = r.protocol as Record<string, unknown> | null | undefined;
    if (p && p.minReaderVersion !== null && p.minReaderVersion !== undefined) {
      out.protocol = {
        minReaderVersion: num(p.minReaderVersion),
        minWriterVersion: num(p.minWriterVersion),
        ...(Array.isArray(p.readerFeatures) ? { readerFeatures: p.readerFeatures as string[] } : {}),
        ...(Array.isArray(p.writerFeatures) ? { writerFeatures: p.writerFeatures as string[] } : {}),
      };
    }
    const m = r.metaData as Record<string, unknown> | null | undefined;
    if (m && m.id !== null && m.id !== undefined) {
      const format = (m.format ?? {}) as { provider?: string; options?: unknown };
      out.metaData = {
        id: m.id as string,
        name: (m.name as string | null | undefined) ?? null,
        description: (m.description as string | null | undefined) ?? null,
        format: { provider: format.provider ?? 'parquet', options: mapOf(format.options) as Record<string, string> },
        schemaString: m.schemaString as string,
        partitionColumns: (m.partitionColumns as string[] | null | undefined) ?? [],
        configuration: mapOf(m.configuration) as Record<string, string>,
        createdTime: numOrNull(m.createdTime),
      };
    }
    const t = r.txn as Record<string, unknown> | null | undefined;
    if (t && t.appId !== null && t.appId !== undefined) {
      const version = typeof t.version === 'bigint' ? t.version : BigInt(t.version as number);
      out.txns.push({ appId: t.appId as string, version, lastUpdated: numOrNull(t.lastUpdated) });
    }
    if (!full) continue;
    const a = r.add as Record<string, unknown> | null | undefined;
    if (a && a.path !== null && a.path !== undefined) {
      out.adds.push({
        path: a.path as string,
        partitionValues: mapOf(a.partitionValues),
        size: num(a.size),
        modificationTime: num(a.modificationTime),
        dataChange: Boolean(a.dataChange),
        stats: (a.stats as string | null | undefined) ?? null,
        tags: a.tags === null || a.tags === undefined ? null : mapOf(a.tags),
      });
    }
    const d = r.remove as Record<string, unknown> | null | undefined;
    if (d && d.path !== null && d.path !== undefined) {
      out.removes.push({
        path: d.path as string,
        deletionTimestamp: numOrNull(d.deletionTimestamp),
        dataChange: Boolean(d.dataChange),
        extendedFileMetadata: (d.extendedFileMetadata as boolean | null | undefined) ?? null,
        partitionValues: d.partitionValues === null || d.partitionValues === undefined ? null : mapOf(d.partitionValues),
        size: numOrNull(d.size),
      });
    }
  }
  return out;
}

async function readLastCheckpoint(storage: Storage): Promise<number | undefined> {
  const bytes = await storage.read(LAST_CHECKPOINT);
  if (!bytes) return undefined;
  try {
    const v = (JSON.parse(decoder.decode(bytes)) as { version?: unknown }).version;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  } catch {
    return undefined; // a torn or foreign file: fall back to listing
  }
}

function fromCheckpoint(v: number, cp: CheckpointContent, full: true): FullState;
function fromCheckpoint(v: number, cp: CheckpointContent, full: false): Snapshot;
function fromCheckpoint(v: number, cp: CheckpointContent, full: boolean): Snapshot | FullState {
  if (!cp.protocol || !cp.metaData) throw new CorruptLogError(`checkpoint ${v} has no protocol or metaData`);
  const s: Snapshot = {
    version: v,
    protocol: cp.protocol,
    metaData: cp.metaData,
    txns: new Map(cp.txns.map((t) => [t.appId, t.version])),
    checkpointVersion: v,
  };
  if (!full) return s;
  return {
    ...s,
    adds: new Map(cp.adds.map((a) => [a.path, a])),
    removes: new Map(cp.removes.map((r) => [r.path, r])),
    txnUpdated: new Map(cp.txns.map((t) => [t.appId, t.lastUpdated ?? null])),
  };
}

export interface LoadOptions {
  /** Stop at this version (checkpoint writing). */
  upTo?: number;
  /** Also build the add/remove lists. */
  full?: boolean;
  /**
   * With `full`: drop the tombstones expired at this time (epoch ms) from the loaded state
   * (see `expireTombstones`). Default: keep every tombstone the log still has.
   */
  expireTombstonesAt?: number;
  onWarning?: (message: string, err?: unknown) => void;
}

/**
 * Loads the table state: from the newest usable checkpoint, then the JSON commits after it.
 * `undefined` when the table has no commits.
 */
export async function loadSnapshot(storage: Storage, opts: LoadOptions & { full: true }): Promise<FullState | undefined>;
export async function loadSnapshot(storage: Storage, opts?: LoadOptions): Promise<Snapshot | undefined>;
export async function loadSnapshot(storage: Storage, opts: LoadOptions = {}): Promise<Snapshot | FullState | undefined> {
  const upTo = opts.upTo ?? Infinity;
  const full = opts.full ?? false;
  const tryCheckpoint = async (v: number): Promise<Snapshot | FullState | undefined> => {
    try {
      const cp = await readCheckpoint(storage, v, full);
      return full ? fromCheckpoint(v, cp, true) : fromCheckpoint(v, cp, false);
    } catch (err) {
      if (err instanceof DeltaError && err.retriable) throw err;
      opts.onWarning?.(`checkpoint ${v} unreadable, replaying the log instead`, err);
      return undefined;
    }
  };

  let base: Snapshot | FullState | undefined;
  const last = await readLastCheckpoint(storage);
  if (last !== undefined && last <= upTo) base = await tryCheckpoint(last);
  let listing = await listLog(storage, base ? `${pad(base.version)}.checkpoint.parquet` : undefined);
  if (!base) {
    const candidates = listing.checkpoints.filter((v) => v <= upTo && v !== last).reverse();
    for (const v of candidates.slice(0, 2)) {
      base = await tryCheckpoint(v);
      if (base) break;
    }
    if (base) listing = { commits: listing.commits.filter((v) => v > (base as Snapshot).version), checkpoints: [] };
  }
  if (!base) {
    if (!listing.commits.length || listing.commits[0] !== 0) {
      if (listing.commits.length) throw new CorruptLogError(`${storage.uri}: commit 0 missing and no usable checkpoint`);
      return undefined;
    }
    const first = await readCommit(storage, 0);
    if (!first) return undefined;
    if (!first.protocol || !first.metaData) throw new CorruptLogError(`${storage.uri}: commit 0 has no protocol or metaData`);
    const s: Snapshot = { version: -1, protocol: first.protocol, metaData: first.metaData, txns: new Map(), checkpointVersion: undefined };
    base = full ? { ...s, adds: new Map(), removes: new Map(), txnUpdated: new Map() } : s;
    applyCommit(base, first);
  }
  await replay(storage, base, listing.commits, upTo);
  if (opts.expireTombstonesAt !== undefined && 'removes' in base) expireTombstones(base, opts.expireTombstonesAt, opts.onWarning);
  return base;
}

/** Delta's default `delta.deletedFileRetentionDuration` (`interval 1 week`), in ms. */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 604_800_000;
/** The table property that sets how long tombstones (and the files they name) are kept. */
export const TOMBSTONE_RETENTION_PROPERTY = 'delta.deletedFileRetentionDuration';

const INTERVAL_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6, nanosecond: 1e-6, nanoseconds: 1e-6,
  us: 1e-3, microsecond: 1e-3, microseconds: 1e-3,
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

/**
 * A Delta interval table property (`interval 1 week`, `interval 36 hours`; also `7d`, `0`) in
 * milliseconds; `undefined` when it is not one.
 */
export function parseInterval(text: string): number | undefined {
  const t = text.trim().toLowerCase().replace(/^interval\s+/, '');
  if (t === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/.exec(t);
  if (!m) return undefined;
  const unit = INTERVAL_UNITS[m[2] as string];
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit);
}

/**
 * How long the table keeps tombstones: its `delta.deletedFileRetentionDuration`, else one week.
 * `undefined` when the property is set but unreadable: then no tombstone expires (a guess could
 * drop tombstones that a longer intended retention still needs), and `onWarning` says so.
 */
export function tombstoneRetentionMs(metaData: MetaDataAction, onWarning?: LoadOptions['onWarning']): number | undefined {
  const raw = metaData.configuration[TOMBSTONE_RETENTION_PROPERTY] as string | null | undefined;
  if (raw === undefined || raw === null) return DEFAULT_TOMBSTONE_RETENTION_MS;
  const ms = parseInterval(raw);
  if (ms === undefined) {
    onWarning?.(
      `table property ${TOMBSTONE_RETENTION_PROPERTY} = ${JSON.stringify(raw)} is not an interval: tombstones are kept (none expire) until it is fixed. Set it like 'interval 7 days' (units: milliseconds, seconds, minutes, hours, days, weeks)`,
    );
  }
  return ms;
}

/**
 * Drops from `state` the tombstones expired at `now`: `deletionTimestamp` (missing = 0) before
 * `now` − the table's tombstone retention. Returns how many were dropped.
 */
export function expireTombstones(state: FullState, now: number, onWarning?: LoadOptions['onWarning']): number {
  const retention = tombstoneRetentionMs(state.metaData, onWarning);
  if (retention === undefined) return 0;
  const cutoff = now - retention;
  let dropped = 0;
  for (const [path, r] of state.removes) {
    if ((r.deletionTimestamp ?? 0) < cutoff) {
      state.removes.delete(path);
      dropped++;
    }
  }
  return dropped;
}

const STR: Omit<SchemaElement, 'name'> = { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' };
const I64: Omit<SchemaElement, 'name'> = { type: 'INT64', repetition_type: 'OPTIONAL' };
const I32: Omit<SchemaElement, 'name'> = { type: 'INT32', repetition_type: 'OPTIONAL' };
const BOOL: Omit<SchemaElement, 'name'> = { type: 'BOOLEAN', repetition_type: 'OPTIONAL' };
const group = (name: string, n: number): SchemaElement => ({ name, repetition_type: 'OPTIONAL', num_children: n });
const stringMap = (name: string): SchemaElement[] => [
  { name, repetition_type: 'OPTIONAL', converted_type: 'MAP', num_children: 1 },
  { name: 'key_value', repetition_type: 'REPEATED', num_children: 2 },
  { name: 'key', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'value', ...STR },
];
const stringList = (name: string): SchemaElement[] => [
  { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', ...STR },
];

/** Parquet schema of a checkpoint (the Delta spec's checkpoint schema, classic actions). */
export const CHECKPOINT_SCHEMA: SchemaElement[] = [
  { name: 'schema', num_children: 5 },
  group('txn', 3), { name: 'appId', ...STR }, { name: 'version', ...I64 }, { name: 'lastUpdated', ...I64 },
  group('add', 7), { name: 'path', ...STR }, ...stringMap('partitionValues'), { name: 'size', ...I64 },
  { name: 'modificationTime', ...I64 }, { name: 'dataChange', ...BOOL }, { name: 'stats', ...STR }, ...stringMap('tags'),
  group('remove', 6), { name: 'path', ...STR }, { name: 'deletionTimestamp', ...I64 }, { name: 'dataChange', ...BOOL },
  { name: 'extendedFileMetadata', ...BOOL }, ...stringMap('partitionValues'), { name: 'size', ...I64 },
  group('metaData', 8), { name: 'id', ...STR }, { name: 'name', ...STR }, { name: 'description', ...STR },
  group('format', 2), { name: 'provider', ...STR }, ...stringMap('options'),
  { name: 'schemaString', ...STR }, ...stringList('partitionColumns'), ...stringMap('configuration'), { name: 'createdTime', ...I64 },
  group('protocol', 2), { name: 'minReaderVersion', ...I32 }, { name: 'minWriterVersion', ...I32 },
];

const big = (v: number | null | undefined): bigint | null => (v === null || v === undefined ? null : BigInt(Math.trunc(v)));

/** Encodes the state as a checkpoint Parquet file; returns its bytes and number of actions. */
export function encodeCheckpoint(s: FullState): { bytes: Uint8Array; size: number } {
  const txn: unknown[] = [];
  const add: unknown[] = [];
  const remove: unknown[] = [];
  const metaData: unknown[] = [];
  const protocol: unknown[] = [];
  const row = (kind: 'txn' | 'add' | 'remove' | 'metaData' | 'protocol', value: unknown): void => {
    txn.push(kind === 'txn' ? value : null);
    add.push(kind === 'add' ? value : null);
    remove.push(kind === 'remove' ? value : null);
    metaData.push(kind === 'metaData' ? value : null);
    protocol.push(kind === 'protocol' ? value : null);
  };
  row('protocol', { minReaderVersion: s.protocol.minReaderVersion, minWriterVersion: s.protocol.minWriterVersion });
  const m = s.metaData;
  row('metaData', {
    id: m.id,
    name: m.name ?? null,
    description: m.description ?? null,
    format: { provider: m.format.provider, options: m.format.options },
    schemaString: m.schemaString,
    partitionColumns: m.partitionColumns,
    configuration: m.configuration,
    createdTime: big(m.createdTime),
  });
  for (const [appId, version] of s.txns) row('txn', { appId, version, lastUpdated: big(s.txnUpdated.get(appId)) });
  for (const a of s.adds.values()) {
    row('add', {
      path: a.path,
      partitionValues: a.partitionValues,
      size: BigInt(a.size),
      modificationTime: BigInt(a.modificationTime),
      dataChange: a.dataChange,
      stats: a.stats ?? null,
      tags: a.tags ?? null,
    });
  }
  for (const r of s.removes.values()) {
    row('remove', {
      path: r.path,
      deletionTimestamp: big(r.deletionTimestamp),
      dataChange: r.dataChange,
      extendedFileMetadata: r.extendedFileMetadata ?? null,
      partitionValues: r.partitionValues ?? null,
      size: big(r.size),
    });
  }
  const writer = new ByteWriter();
  void parquetWrite({
    writer,
    schema: CHECKPOINT_SCHEMA,
    statistics: false,
    columnData: [
      { name: 'txn', data: txn },
      { name: 'add', data: add },
      { name: 'remove', data: remove },
      { name: 'metaData', data: metaData },
      { name: 'protocol', data: protocol },
    ],
  });
  return { bytes: writer.getBytes(), size: txn.length };
}

/**
 * Writes the checkpoint of version `v` and then `_last_checkpoint`. Tombstones expired at
 * `clock()` (see `expireTombstones`) are left out.
 */
export async function writeCheckpoint(storage: Storage, v: number, onWarning?: LoadOptions['onWarning'], clock: () => number = Date.now): Promise<void> {
  const state = await loadSnapshot(storage, { upTo: v, full: true, expireTombstonesAt: clock(), ...(onWarning ? { onWarning } : {}) });
  if (!state || state.version !== v) throw new CorruptLogError(`cannot checkpoint version ${v}: log ends at ${state?.version ?? -1}`);
  const { bytes, size } = encodeCheckpoint(state);
  await storage.write(checkpointPath(v), bytes);
  const current = await readLastCheckpoint(storage);
  if (current !== undefined && current > v) return; // a newer checkpoint already exists
  await storage.write(LAST_CHECKPOINT, encoder.encode(JSON.stringify({ version: v, size, sizeInBytes: bytes.byteLength, numOfAddFiles: state.adds.size })));
}

/**
 * One commit file's bytes for a commit that also removes files (a compaction): the lines of
 * `serializeCommit`, then one `remove` action per line.
 */
export function serializeCommitWithRemoves(actions: Parameters<typeof serializeCommit>[0] & { removes?: readonly RemoveAction[] }): Uint8Array {
  const head = serializeCommit(actions);
  if (!actions.removes?.length) return head;
  const tail = encoder.encode(actions.removes.map((r) => JSON.stringify({ remove: r })).join('\n') + '\n');
  const out = new Uint8Array(head.byteLength + tail.byteLength);
  out.set(head, 0);
  out.set(tail, head.byteLength);
  return out;
}
