/**
 * Vacuum and log cleanup.
 *
 * Data files: a file is deleted when the latest version does not reference it, no version
 * within the retention period does (it is not a tombstone removed after the cut-off), and it
 * was last modified before the cut-off (so files a writer has written but not committed yet,
 * and compactions in progress, are left alone). Time travel to any version committed within the
 * retention period keeps working.
 *
 * Checkpoints leave out tombstones older than the table's `delta.deletedFileRetentionDuration`
 * at the time they are written. A vacuum with a longer retention than that (or run on a clock
 * behind the checkpoint writer's) still needs the tombstones those checkpoints dropped: it reads
 * them back from the commit files written in that gap (see `droppedTombstoneCommits`).
 *
 * The log: commit files and checkpoints older than `delta.logRetentionDuration` (default 30
 * days) go, up to (not including) the newest checkpoint at or before the last expired commit,
 * so every version from that checkpoint on stays readable.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FullState } from '../sinks/delta/log.ts';
import { LAST_CHECKPOINT, LOG_DIR, checkpointPath, commitPath, readCommit, refreshSnapshot, serializeCommit, tombstoneRetentionMs } from '../sinks/delta/log.ts';
import { backoffDelay, sleep } from '../core/retry.ts';
import { DeltaError } from '../sinks/delta/retry.ts';
import { escapePartition } from '../sinks/delta/table.ts';
import type { Storage, StoredFile } from '../sinks/delta/storage.ts';
import { CHECKPOINT_FILE, COMMIT_FILE, CRC_FILE, filePath, formatDuration, isAbsolutePath, loadTable, parseDuration } from './common.ts';

/** Default retention of removed data files (Delta's `delta.deletedFileRetentionDuration`): 7 days. */
export const DEFAULT_RETENTION_MS = 7 * 86_400_000;
/** Default retention of log files (Delta's `delta.logRetentionDuration`): 30 days. */
export const DEFAULT_LOG_RETENTION_MS = 30 * 86_400_000;

export interface VacuumOptions {
  /**
   * How long removed files stay (time travel reaches this far back). Default: the table property
   * `delta.deletedFileRetentionDuration`, else 7 days. Shorter than that is refused unless `force`.
   */
  readonly retentionMs?: number;
  /**
   * How long log files stay. Default: the table property `delta.logRetentionDuration`, else 30
   * days. Shorter than the file retention is refused unless `force`.
   */
  readonly logRetentionMs?: number;
  /** Allow retentions below the safety bounds (files a writer has not committed yet may go). */
  readonly force?: boolean;
  /** List what would be deleted; delete nothing. */
  readonly dryRun?: boolean;
  /** Clean the log too (default true). */
  readonly cleanLog?: boolean;
  /** Deletes in flight at once (default 16). */
  readonly concurrency?: number;
  /** The present, epoch ms (default `Date.now()`). */
  readonly now?: number;
  readonly onWarning?: (message: string, err?: unknown) => void;
}

export interface VacuumResult {
  readonly uri: string;
  /** The version whose state was vacuumed (and the version of the `VACUUM END` commit, if any). */
  readonly version: number;
  readonly commitVersion: number | null;
  readonly dryRun: boolean;
  readonly retentionMs: number;
  readonly logRetentionMs: number;
  /** Files last modified or removed before this (epoch ms) may go. */
  readonly cutoff: number;
  /** Data files deleted (or, dry run, to delete), paths relative to the table root. */
  readonly deleted: readonly string[];
  readonly bytesDeleted: number;
  /** Data files kept: live in the latest version, removed within the retention, or recent and not committed (yet). */
  readonly live: number;
  readonly tombstonesKept: number;
  readonly recentUntracked: number;
  /** Log files deleted (or, dry run, to delete). */
  readonly logDeleted: readonly string[];
  /** Oldest version still readable after the log cleanup. */
  readonly oldestVersion: number;
  readonly durationMs: number;
}

/** A retention below the safety bound without `force`. */
export class RetentionTooShortError extends DeltaError {
  constructor(message: string) {
    super(message, { code: 'RETENTION_TOO_SHORT' });
    this.name = 'RetentionTooShortError';
  }
}

/** The storage cannot list files with their times (a `Storage` of your own without `walk`). */
export class StorageListingError extends DeltaError {
  constructor(uri: string) {
    super(`${uri}: this storage cannot list files recursively (Storage.walk); vacuum needs it`, { code: 'NO_WALK' });
    this.name = 'StorageListingError';
  }
}

function tableDuration(state: FullState, key: string, fallback: number): number {
  const raw = state.metaData.configuration[key];
  if (raw === undefined) return fallback;
  return parseDuration(raw) ?? fallback;
}

/** Whether a data-file path is hidden from vacuum: `_delta_log`, `_…`/`.…` files and folders other than partition folders. */
function hidden(path: string, partitionPrefixes: readonly string[]): boolean {
  const parts = path.split('/');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as string;
    if (!p.startsWith('_') && !p.startsWith('.')) continue;
    if (i < parts.length - 1 && partitionPrefixes.some((prefix) => p.startsWith(prefix))) continue;
    return true;
  }
  return false;
}

async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Log files (versions and names) expired by `cutoff`; see the module comment. @internal (exported for tests) */
export function expiredLog(files: readonly StoredFile[], cutoff: number, lastCheckpoint: number | undefined): { names: string[]; oldest: number } {
  const commits = new Map<number, number>();
  const checkpoints = new Set<number>();
  const byVersion: Array<{ name: string; version: number }> = [];
  for (const f of files) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    let m = COMMIT_FILE.exec(name);
    if (m) {
      const v = Number(m[1]);
      commits.set(v, f.modified);
      byVersion.push({ name, version: v });
      continue;
    }
    m = CHECKPOINT_FILE.exec(name) ?? CRC_FILE.exec(name);
    if (m) {
      const v = Number(m[1]);
      if (CHECKPOINT_FILE.test(name)) checkpoints.add(v);
      byVersion.push({ name, version: v });
    }
  }
  const versions = [...commits.keys()].sort((a, b) => a - b);
  let lastExpired = -1;
  for (const v of versions) {
    if ((commits.get(v) as number) > cutoff) break;
    lastExpired = v;
  }
  const oldestCommit = versions[0] ?? 0;
  // Never the checkpoint `_last_checkpoint` names (readers start there).
  const limit = lastCheckpoint === undefined ? lastExpired : Math.min(lastExpired, lastCheckpoint);
  const keepFrom = Math.max(-1, ...[...checkpoints].filter((v) => v <= limit));
  if (keepFrom <= 0) return { names: [], oldest: Math.min(oldestCommit, ...checkpoints) };
  const names = byVersion.filter((f) => f.version < keepFrom).map((f) => f.name).sort();
  return { names, oldest: keepFrom };
}

/**
 * Deletes the data files no version within the retention period references, and the log
 * files older than the log retention that the newest expired checkpoint makes unnecessary (see
 * the module comment). Refuses (`RetentionTooShortError`) a retention shorter than the table's
 * (default 7 days) unless `force`. Records a `VACUUM END` commit (operation metrics only).
 *
 * ## Example
 * ```ts
 * const r = await vacuum(storageFromUri('s3://lake/bronze/bronze_trips'), { dryRun: true });
 * console.log(r.deleted.length, 'files would go');
 * ```
 *
 * @param storage The table root (its `walk` lists the files).
 * @param options `retentionMs`, `logRetentionMs`, `force`, `dryRun`, …
 * @return What was (or would be) deleted.
 */
export async function vacuum(storage: Storage, options: VacuumOptions = {}): Promise<VacuumResult> {
  const t0 = performance.now();
  if (!storage.walk) throw new StorageListingError(storage.uri);
  const state = await loadTable(storage, options.onWarning);
  const now = options.now ?? Date.now();
  const bound = tableDuration(state, 'delta.deletedFileRetentionDuration', DEFAULT_RETENTION_MS);
  const retentionMs = options.retentionMs ?? bound;
  if (retentionMs < bound && options.force !== true) {
    throw new RetentionTooShortError(
      `${storage.uri}: a retention of ${formatDuration(retentionMs)} is shorter than the table's ${formatDuration(bound)} (delta.deletedFileRetentionDuration): files a writer has written but not committed yet, and versions readers still use, could be deleted. Use a longer retention, or force it (--force) when no writer runs and no reader needs older versions`,
    );
  }
  const logBound = tableDuration(state, 'delta.logRetentionDuration', DEFAULT_LOG_RETENTION_MS);
  const logRetentionMs = options.logRetentionMs ?? Math.max(logBound, retentionMs);
  if (logRetentionMs < retentionMs && options.force !== true) {
    throw new RetentionTooShortError(
      `${storage.uri}: a log retention of ${formatDuration(logRetentionMs)} is shorter than the file retention of ${formatDuration(retentionMs)}: versions whose files are kept could no longer be read. Use a log retention at least as long, or --force`,
    );
  }
  const cutoff = now - retentionMs;

  const keep = new Set<string>();
  for (const a of state.adds.values()) if (!isAbsolutePath(a.path)) keep.add(filePath(a.path));
  const live = keep.size;
  let tombstonesKept = 0;
  for (const r of state.removes.values()) {
    if (isAbsolutePath(r.path)) continue;
    const at = r.deletionTimestamp ?? undefined;
    if (at !== undefined && at >= cutoff) {
      const p = filePath(r.path);
      if (!keep.has(p)) tombstonesKept++;
      keep.add(p);
    }
  }
  const partitionPrefixes = state.metaData.partitionColumns.map((c) => `${escapePartition(c)}=`);
  const files = await storage.walk('');
  const gap = droppedTombstoneCommits(files, state, cutoff);
  const gapCommits = await mapCommits(storage, gap, options.concurrency ?? 16);
  for (const c of gapCommits) {
    for (const r of c.removes) {
      if (isAbsolutePath(r.path) || (r.deletionTimestamp ?? 0) < cutoff) continue;
      const p = filePath(r.path);
      if (!keep.has(p)) tombstonesKept++;
      keep.add(p);
    }
  }
  const deleted: string[] = [];
  let bytesDeleted = 0;
  let recentUntracked = 0;
  for (const f of files) {
    if (hidden(f.path, partitionPrefixes) || keep.has(f.path)) continue;
    if (f.modified >= cutoff) {
      recentUntracked++;
      continue;
    }
    deleted.push(f.path);
    bytesDeleted += f.size;
  }
  deleted.sort();

  let logDeleted: string[] = [];
  let oldestVersion = 0;
  if (options.cleanLog !== false) {
    const logFiles = files.filter((f) => f.path.startsWith(`${LOG_DIR}/`) && !f.path.slice(LOG_DIR.length + 1).includes('/'));
    const expired = expiredLog(logFiles, now - logRetentionMs, await lastCheckpointVersion(storage));
    logDeleted = expired.names.map((n) => `${LOG_DIR}/${n}`);
    oldestVersion = expired.oldest;
  }

  let commitVersion: number | null = null;
  if (options.dryRun !== true) {
    const concurrency = options.concurrency ?? 16;
    await eachLimit(deleted, concurrency, (p) => storage.delete(p));
    // Readers start at the kept checkpoint: an interrupted cleanup leaves gaps only before it.
    await eachLimit(logDeleted, concurrency, (p) => storage.delete(p));
    commitVersion = await commitVacuumEnd(storage, state, {
      numDeletedFiles: String(deleted.length),
      numDeletedBytes: String(bytesDeleted),
      numDeletedLogFiles: String(logDeleted.length),
      retentionMs: String(retentionMs),
    });
  }
  return {
    uri: storage.uri,
    version: state.version,
    commitVersion,
    dryRun: options.dryRun === true,
    retentionMs,
    logRetentionMs,
    cutoff,
    deleted,
    bytesDeleted,
    live,
    tombstonesKept,
    recentUntracked,
    logDeleted,
    oldestVersion,
    durationMs: performance.now() - t0,
  };
}

/** Slack for clocks (writers' `deletionTimestamp` against the storage's modification times). */
const CLOCK_SLACK_MS = 300_000;

/**
 * Versions of the commit files that may hold tombstones the state's checkpoint left out (expired
 * when it was written) but that a vacuum with this `cutoff` must honour: commits at or before the
 * checkpoint, written from `cutoff` on, up to when the checkpoint's expiry began (its file's
 * time − the tombstone retention), each with five minutes of slack. Empty when the state did not start
 * from a checkpoint, or the vacuum's retention does not reach past the checkpoint's.
 * @internal (exported for tests)
 */
export function droppedTombstoneCommits(files: readonly StoredFile[], state: FullState, cutoff: number): number[] {
  const cp = state.checkpointVersion;
  if (cp === undefined) return [];
  const retention = tombstoneRetentionMs(state.metaData);
  if (retention === undefined) return []; // an unreadable property: checkpoints expire nothing
  const cpFile = files.find((f) => f.path === checkpointPath(cp));
  // The checkpoint file is gone (deleted under us): assume it was written just now.
  const expiredBefore = (cpFile?.modified ?? Number.MAX_SAFE_INTEGER) - retention;
  const from = cutoff - CLOCK_SLACK_MS;
  const to = Math.min(expiredBefore, Number.MAX_SAFE_INTEGER - CLOCK_SLACK_MS) + CLOCK_SLACK_MS;
  if (to < from) return [];
  const out: number[] = [];
  for (const f of files) {
    if (!f.path.startsWith(`${LOG_DIR}/`)) continue;
    const m = COMMIT_FILE.exec(f.path.slice(LOG_DIR.length + 1));
    if (!m) continue;
    const v = Number(m[1]);
    if (v <= cp && f.modified >= from && f.modified <= to) out.push(v);
  }
  return out.sort((a, b) => a - b);
}

async function mapCommits(storage: Storage, versions: readonly number[], limit: number): Promise<Array<NonNullable<Awaited<ReturnType<typeof readCommit>>>>> {
  const out: Array<NonNullable<Awaited<ReturnType<typeof readCommit>>>> = [];
  await eachLimit(versions, limit, async (v) => {
    const c = await readCommit(storage, v);
    if (c) out.push(c); // a commit the log cleanup removed: older than the log retention
  });
  return out;
}

async function lastCheckpointVersion(storage: Storage): Promise<number | undefined> {
  const bytes = await storage.read(LAST_CHECKPOINT);
  if (!bytes) return undefined;
  try {
    const v = (JSON.parse(new TextDecoder().decode(bytes)) as { version?: unknown }).version;
    return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Commits a `VACUUM END` commitInfo (no other action) at the next free version. */
async function commitVacuumEnd(storage: Storage, state: FullState, metrics: Record<string, string>): Promise<number> {
  const txnId = randomUUID();
  for (let attempt = 1; ; attempt++) {
    await refreshSnapshot(storage, state);
    const version = state.version + 1;
    const commitInfo = {
      timestamp: Date.now(),
      operation: 'VACUUM END',
      operationParameters: { status: 'COMPLETED' },
      readVersion: state.version,
      isBlindAppend: true,
      engineInfo: 'rxlake',
      txnId,
      operationMetrics: metrics,
    };
    if (await storage.putIfAbsent(commitPath(version), serializeCommit({ commitInfo }))) return version;
    if (attempt >= 100) throw new DeltaError(`${storage.uri}: could not record the vacuum after 100 lost commit races (the files are deleted)`, { retriable: true });
    await sleep(backoffDelay(attempt, { initialMs: 10, maxMs: 400, jitter: 1 }));
  }
}
