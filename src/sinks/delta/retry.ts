/**
 * Error classes and the retrier shared by the Delta storage, table and sink.
 *
 * Errors carry `retriable` and `cause` (like kafkajs errors): a retriable error is worth trying
 * again (network trouble, 5xx, throttling, a full disk, a lost commit race); a non-retriable one
 * is not (schema mismatch, protocol change, bad input).
 */

/** Base error of the Delta sink: `retriable` tells whether trying again can help. */
export class DeltaError extends Error {
  readonly retriable: boolean;
  readonly code: string | undefined;

  constructor(message: string, opts: { retriable?: boolean; cause?: unknown; code?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DeltaError';
    this.retriable = opts.retriable ?? false;
    this.code = opts.code;
  }
}

/** A storage operation failed (network, 5xx, throttling, disk). */
export class StorageError extends DeltaError {
  constructor(message: string, opts: { retriable?: boolean; cause?: unknown; code?: string } = {}) {
    super(message, opts);
    this.name = 'StorageError';
  }
}

/** The commit lost too many races in a row; retriable (the next attempt re-reads the log). */
export class CommitConflictError extends DeltaError {
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: true, cause, code: 'COMMIT_CONFLICT' });
    this.name = 'CommitConflictError';
  }
}

/** The table's schema, partitioning or protocol is not what this writer expects: not retriable. */
export class SchemaMismatchError extends DeltaError {
  constructor(message: string) {
    super(message, { retriable: false, code: 'SCHEMA_MISMATCH' });
    this.name = 'SchemaMismatchError';
  }
}

/** Another writer changed the table's metadata or protocol while we committed: not retriable. */
export class ConcurrentMetadataChangeError extends DeltaError {
  constructor(message: string) {
    super(message, { retriable: false, code: 'METADATA_CHANGED' });
    this.name = 'ConcurrentMetadataChangeError';
  }
}

const RETRIABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ENOSPC', 'EMFILE', 'ENFILE', 'EBUSY', 'EAGAIN', 'EIO',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT',
]);

const RETRIABLE_NAMES = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed',
  'InternalError', 'ServiceUnavailable', 'TimeoutError', 'RequestTimeoutException', 'AbortError',
]);

/** Whether an error (ours, Node's or the AWS SDK's) is worth retrying. */
export function isRetriable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as {
    retriable?: unknown; code?: unknown; name?: unknown; $retryable?: unknown;
    $metadata?: { httpStatusCode?: number }; cause?: unknown;
  };
  if (typeof e.retriable === 'boolean') return e.retriable;
  if (typeof e.code === 'string' && RETRIABLE_CODES.has(e.code)) return true;
  if (typeof e.name === 'string' && RETRIABLE_NAMES.has(e.name)) return true;
  if (e.$retryable !== undefined && e.$retryable !== null) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429 || status === 408)) return true;
  if (e.cause !== undefined && e.cause !== err) return isRetriable(e.cause);
  return false;
}

/** Wraps any error as a `StorageError` with `retriable` classified and the original as `cause`. */
export function storageError(op: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as { message?: unknown; code?: unknown; name?: unknown };
  const detail = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : undefined;
  return new StorageError(`${op}: ${detail}`, {
    retriable: isRetriable(err),
    cause: err,
    ...(code === undefined ? {} : { code }),
  });
}

export interface BackoffOptions {
  /** First delay, ms (default 100). */
  initialMs?: number;
  /** Largest delay, ms (default 30 000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
}

/** Jittered exponential delay for the given 1-based attempt ("full jitter" over the upper half). */
export function backoffDelay(attempt: number, { initialMs = 100, maxMs = 30_000, factor = 2 }: BackoffOptions = {}): number {
  const ceiling = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** Resolves after `ms`; rejects early with `signal.reason` when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, including the first (default Infinity). */
  maxAttempts?: number;
  /** Called before each wait with the error and the 1-based attempt that failed. */
  onRetry?: (err: Error, attempt: number) => void;
  signal?: AbortSignal;
}

/**
 * Runs `fn` until it succeeds, retrying retriable errors with jittered exponential backoff.
 * A non-retriable error, or the last attempt's error, is thrown as is.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const { maxAttempts = Infinity, onRetry, signal, ...backoff } = opts;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (!isRetriable(error) || attempt >= maxAttempts || signal?.aborted) throw error;
      onRetry?.(error, attempt);
      await sleep(backoffDelay(attempt, backoff), signal);
    }
  }
}
