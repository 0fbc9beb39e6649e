/**
 * Errors of the Delta storage, table and sink, on the library's error model (`RxlakeError`):
 * each has a stable `code`, `retriable` and `cause`. A retriable error is worth trying again
 * (network trouble, 5xx, throttling, a full disk, a lost commit race); a non-retriable one is not
 * (schema mismatch, protocol change, bad input). Retrying itself is `src/core/retry.ts`.
 */
import { RxlakeError, isRetriable } from '../../core/errors.ts';
import type { RxlakeErrorOptions } from '../../core/errors.ts';

/** Base error of the Delta sink (code `DELTA_ERROR` unless a subclass says otherwise). */
export class DeltaError extends RxlakeError {
  constructor(message: string, options: RxlakeErrorOptions = {}) {
    super(message, { code: 'DELTA_ERROR', ...options });
    this.name = 'DeltaError';
  }
}

/** A storage operation failed (network, 5xx, throttling, disk, refused access): code `STORAGE_ERROR`. */
export class StorageError extends DeltaError {
  constructor(message: string, options: Omit<RxlakeErrorOptions, 'code'> = {}) {
    super(message, { ...options, code: 'STORAGE_ERROR' });
    this.name = 'StorageError';
  }
}

/** The commit lost too many races in a row: code `COMMIT_CONFLICT`, retriable (the next attempt re-reads the log). */
export class CommitConflictError extends DeltaError {
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: true, code: 'COMMIT_CONFLICT', ...(cause === undefined ? {} : { cause }) });
    this.name = 'CommitConflictError';
  }
}

/** The table's schema, partitioning or protocol is not what this writer expects: code `SCHEMA_MISMATCH`, not retriable. */
export class SchemaMismatchError extends DeltaError {
  constructor(message: string) {
    super(message, { code: 'SCHEMA_MISMATCH' });
    this.name = 'SchemaMismatchError';
  }
}

/** Another writer changed the table's metadata or protocol while we committed: code `METADATA_CHANGED`, not retriable. */
export class ConcurrentMetadataChangeError extends DeltaError {
  constructor(message: string) {
    super(message, { code: 'METADATA_CHANGED' });
    this.name = 'ConcurrentMetadataChangeError';
  }
}

/** Wraps any error as a `StorageError` naming the operation, with `retriable` classified and the original as `cause`. */
export function storageError(op: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as { message?: unknown; code?: unknown; name?: unknown } | null;
  const detail = typeof e?.message === 'string' && e.message !== '' ? e.message : typeof e?.name === 'string' ? e.name : String(err);
  return new StorageError(`${op}: ${detail}`, { retriable: isRetriable(err), cause: err });
}
