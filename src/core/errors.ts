/**
 * The error model of the library: every error rxlake throws is an `RxlakeError` with a stable
 * `code`, a `retriable` flag (whether trying the same thing again can succeed) and the
 * underlying failure as `cause`. `isRetriable` answers the same question for any error — ours,
 * or what Node, the AWS SDK, `pg` and kafkajs throw — looking along the `cause` chain.
 */

/** What an `RxlakeError` is made with, besides its message. */
export interface RxlakeErrorOptions extends ErrorOptions {
  /** Stable machine-readable code; default the class's own (`RXLAKE_ERROR` for the base). */
  readonly code?: string;
  /** Whether trying the same operation again can succeed; default false. */
  readonly retriable?: boolean;
}

/**
 * Base class of every error rxlake throws.
 *
 * ## Example
 * ```ts
 * try {
 *   await table.append(rows);
 * } catch (err) {
 *   if (err instanceof RxlakeError && err.code === 'SCHEMA_MISMATCH') process.exit(2);
 *   if (isRetriable(err)) scheduleAgain();
 *   else throw err;
 * }
 * ```
 */
export class RxlakeError extends Error {
  /** Stable machine-readable code of the failure (`STORAGE_ERROR`, `COMMIT_CONFLICT`, …). */
  readonly code: string;
  /** Whether trying the same operation again can succeed. */
  readonly retriable: boolean;

  constructor(message: string, options: RxlakeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RxlakeError';
    this.code = options.code ?? 'RXLAKE_ERROR';
    this.retriable = options.retriable ?? false;
  }
}

/**
 * An optional peer dependency that a feature needs is not installed (`@aws-sdk/client-s3` for
 * `s3://` tables, `pg` for PostgreSQL sinks). Code `MISSING_DEPENDENCY`; not retriable.
 */
export class MissingDependencyError extends RxlakeError {
  /** The npm package to install. */
  readonly packageName: string;

  constructor(packageName: string, feature: string, options: ErrorOptions = {}) {
    super(`${feature} needs the package ${packageName}: install ${packageName} (optional peer dependency), e.g. npm install ${packageName}`, {
      ...options,
      code: 'MISSING_DEPENDENCY',
    });
    this.name = 'MissingDependencyError';
    this.packageName = packageName;
  }
}

/** `err` as an `Error` (anything else thrown becomes an `Error` with its text). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The error and its causes, outermost first (at most `maxDepth`; a cycle ends it).
 *
 * @param err Anything thrown.
 * @param maxDepth Most entries returned; default 10.
 * @return The objects along the `cause` chain (empty when `err` is not an object).
 */
export function causeChain(err: unknown, maxDepth = 10): readonly object[] {
  const out: object[] = [];
  for (let e: unknown = err; typeof e === 'object' && e !== null && out.length < maxDepth && !out.includes(e); ) {
    out.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

// ---- foreign errors --------------------------------------------------------------------------

/** Node and undici codes of a connection that failed or broke, and of resources that come back. */
const RETRIABLE_NODE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ENOSPC', 'EMFILE', 'ENFILE', 'EBUSY', 'EAGAIN', 'EIO',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
]);

/** AWS SDK error names of throttling, timeouts and server trouble. */
const RETRIABLE_AWS_NAMES = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded',
  'RequestThrottled', 'RequestThrottledException', 'ProvisionedThroughputExceededException', 'RequestTimeout',
  'RequestTimeoutException', 'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'TimeoutError', 'AbortError',
]);

/** kafkajs errors of a broker outage, worth waiting out whatever their `retriable` says. */
const KAFKA_OUTAGE_NAMES = new Set([
  'KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError', 'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound', 'KafkaJSGroupCoordinatorNotFound', 'KafkaJSLockTimeout', 'KafkaJSTimeout',
  'KafkaJSMetadataNotLoaded', 'KafkaJSTopicMetadataNotLoaded', 'KafkaJSStaleTopicMetadataAssignment',
]);

/** kafkajs errors no new attempt fixes (refused credentials, a protocol the broker lacks, a bug). */
const KAFKA_FATAL_NAMES = new Set([
  'KafkaJSSASLAuthenticationError', 'KafkaJSNotImplemented', 'KafkaJSServerDoesNotSupportApiKey',
  'KafkaJSInvariantViolation', 'KafkaJSUnsupportedMagicByteInMessageSet',
]);

/** kafkajs errors that only wrap another one (kafkajs gave up after its own retries): the cause tells. */
const KAFKA_WRAPPER_NAMES = new Set(['KafkaJSNumberOfRetriesExceeded', 'KafkaJSNonRetriableError', 'KafkaJSError']);

/** PostgreSQL SQLSTATEs of classes 08/40/53/57 that a new attempt cannot fix. */
const FINAL_SQLSTATES = new Set(['40002', '57P04']);

/** Messages of the `pg` client's own connection failures, which carry no code. */
const PG_CLIENT_RETRIABLE = /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Query read timeout/i;

interface Foreign {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
  readonly retriable?: unknown;
  readonly severity?: unknown;
  readonly errors?: unknown;
  readonly cause?: unknown;
  readonly $retryable?: unknown;
  readonly $fault?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

/** What one error object says by itself: retry, do not, or nothing (ask its cause). */
function verdictOf(e: Foreign, depth: number): boolean | undefined {
  if (e instanceof RxlakeError) return e.retriable;
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.code === 'string' ? e.code : '';

  // kafkajs: `retriable` on every error, but wrappers defer to what they wrap.
  if (name.startsWith('KafkaJS')) {
    if (KAFKA_OUTAGE_NAMES.has(name)) return true;
    if (KAFKA_WRAPPER_NAMES.has(name) && e.cause !== undefined && e.cause !== null) return undefined;
    if (typeof e.retriable === 'boolean') return e.retriable;
  }

  // PostgreSQL: the server's errors carry a severity and a SQLSTATE.
  if (typeof e.severity === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    return /^(08|40|53|57)/.test(code) && !FINAL_SQLSTATES.has(code);
  }

  // Node, undici: system error codes.
  if (RETRIABLE_NODE_CODES.has(code)) return true;

  // AWS SDK v3: `$retryable` is set on throttling and transient errors; 5xx, 429 and 408 are worth another try.
  if (e.$retryable !== undefined && e.$retryable !== null) return true;
  if (RETRIABLE_AWS_NAMES.has(name)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number') return status >= 500 || status === 429 || status === 408;
  if (e.$fault === 'server') return true;

  // Anything else that says so itself (the Parquet worker's replies, other clients).
  if (typeof e.retriable === 'boolean') return e.retriable;

  // pg's connection failures have no code; several addresses all refused come as an AggregateError.
  if (typeof e.message === 'string' && PG_CLIENT_RETRIABLE.test(e.message)) return true;
  if (Array.isArray(e.errors) && depth < 10) {
    return e.errors.some((x) => isRetriableAt(x, depth + 1)) ? true : undefined;
  }
  return undefined;
}

function isRetriableAt(err: unknown, depth: number): boolean {
  const chain = causeChain(err, 10) as readonly Foreign[];
  // A fatal kafkajs error anywhere (e.g. refused credentials that kafkajs retried) is final.
  if (chain.some((e) => typeof e.name === 'string' && KAFKA_FATAL_NAMES.has(e.name))) return false;
  for (const e of chain) {
    const verdict = verdictOf(e, depth);
    if (verdict !== undefined) return verdict;
  }
  return false;
}

/**
 * Whether trying again can succeed after `err`. The first error along the `cause` chain that
 * tells decides:
 * - an `RxlakeError`: its `retriable`;
 * - kafkajs: broker outages (connection refused or closed, request timeouts, no broker or
 *   coordinator) are; `KafkaJSNumberOfRetriesExceeded` and other wrappers go by their cause;
 *   authentication failures and unsupported protocols are not, wherever in the chain; otherwise
 *   the error's own `retriable`;
 * - PostgreSQL (an error with `severity` and a SQLSTATE `code`): classes 08 (connection), 40
 *   (serialization failure, deadlock), 53 (insufficient resources) and 57 (shutdown, restart),
 *   except 40002 and 57P04; any other SQLSTATE is not; the `pg` client's "Connection
 *   terminated" and similar are;
 * - Node and undici codes of network trouble and passing resource shortage (`ECONNRESET`,
 *   `ECONNREFUSED`, `ETIMEDOUT`, `ENOSPC`, `EMFILE`, …);
 * - AWS SDK: `$retryable`, throttling and timeout names, HTTP 5xx, 429 and 408 (other statuses
 *   are not);
 * - any other object with a boolean `retriable`; an `AggregateError` whose errors include a
 *   retriable one.
 * An error that tells nothing (a `TypeError` from a bug) is not retriable.
 *
 * ## Example
 * ```ts
 * const policy: RetryOptions = { retryIf: isRetriable, maxAttempts: 5 };
 * ```
 *
 * @param err Anything thrown.
 * @return True when a new attempt can succeed.
 */
export function isRetriable(err: unknown): boolean {
  return isRetriableAt(err, 0);
}
