/**
 * The error model: every error class of the library is an `RxlakeError` with a stable code, and
 * `isRetriable` classifies ours and foreign errors (Node, AWS SDK, pg, kafkajs) along the cause chain.
 */
import {
  KafkaJSConnectionError,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSRequestTimeoutError,
  KafkaJSSASLAuthenticationError,
} from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { MissingDependencyError, RxlakeError, causeChain, isRetriable } from '../../src/core/errors.ts';
import * as root from '../../src/index.ts';
import { CorruptLogError } from '../../src/sinks/delta/log.ts';
import { InvalidValueError } from '../../src/sinks/delta/parquet.ts';
import { ParquetWorkerError } from '../../src/sinks/delta/parquetPool.ts';
import { CommitConflictError, ConcurrentMetadataChangeError, DeltaError, SchemaMismatchError, StorageError, storageError } from '../../src/sinks/delta/retry.ts';
import { PgSinkError } from '../../src/sinks/postgres.ts';
import { DeadLetterError, SystematicProcessingError } from '../../src/operators/routeErrors.ts';
import { ConfigError } from '../../src/runtime/env.ts';
import { StartupError } from '../../src/runtime/cli.ts';
import type { DeadLetterRow } from '../../src/types.ts';

const withCode = (code: string, message = code): Error => Object.assign(new Error(message), { code });
/** An error as `pg` reports one from the server: a severity and a SQLSTATE. */
const pgError = (sqlState: string): Error => Object.assign(new Error(`server said ${sqlState}`), { severity: 'ERROR', code: sqlState });
/** An AWS SDK v3 service error. */
const awsError = (name: string, status: number, extra: object = {}): Error => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status }, ...extra });

const row: DeadLetterRow = {
  topic: 't',
  partition: 0,
  offset: 7n,
  size: 4,
  error_type: 'PROCESSING_ERROR',
  error_message: 'boom',
  original_payload: 'abcd',
  original_payload_bytes: new TextEncoder().encode('abcd'),
  kafka_topic: 't',
  _kafka_partition: 0,
  _kafka_offset: 7n,
  _kafka_timestamp: -1000n,
  _ingested_at: 0n,
  session_id: null,
  correlation_id: null,
  causation_id: null,
};

describe('RxlakeError', () => {
  it('carries code, retriable and cause; every error class of the library is one, with its own stable code', () => {
    const cause = withCode('ECONNRESET');
    const base = new RxlakeError('x', { cause, retriable: true, code: 'SOMETHING' });
    expect(base).toBeInstanceOf(Error);
    expect([base.name, base.code, base.retriable, base.cause]).toEqual(['RxlakeError', 'SOMETHING', true, cause]);
    expect([new RxlakeError('y').code, new RxlakeError('y').retriable, 'cause' in new RxlakeError('y')]).toEqual(['RXLAKE_ERROR', false, false]);

    const all: Array<[RxlakeError, string, string, boolean]> = [
      [new DeltaError('d'), 'DeltaError', 'DELTA_ERROR', false],
      [new StorageError('s', { retriable: true }), 'StorageError', 'STORAGE_ERROR', true],
      [new CommitConflictError('c'), 'CommitConflictError', 'COMMIT_CONFLICT', true],
      [new SchemaMismatchError('m'), 'SchemaMismatchError', 'SCHEMA_MISMATCH', false],
      [new ConcurrentMetadataChangeError('m'), 'ConcurrentMetadataChangeError', 'METADATA_CHANGED', false],
      [new CorruptLogError('l'), 'CorruptLogError', 'CORRUPT_LOG', false],
      [new InvalidValueError('v'), 'InvalidValueError', 'INVALID_VALUE', false],
      [new ParquetWorkerError('w'), 'ParquetWorkerError', 'PARQUET_WORKER', true],
      [new PgSinkError('p'), 'PgSinkError', 'PG_SINK_ERROR', false],
      [new DeadLetterError(row), 'DeadLetterError', 'DEAD_LETTER', false],
      [new SystematicProcessingError(row, 1000), 'SystematicProcessingError', 'SYSTEMATIC_PROCESSING_ERROR', false],
      [new ConfigError(['A is bad']), 'ConfigError', 'CONFIG_ERROR', false],
      [new StartupError('topic missing'), 'StartupError', 'STARTUP_ERROR', false],
      [new MissingDependencyError('pg', 'PostgreSQL sinks'), 'MissingDependencyError', 'MISSING_DEPENDENCY', false],
    ];
    for (const [err, name, code, retriable] of all) {
      expect(err, name).toBeInstanceOf(RxlakeError);
      expect([err.name, err.code, err.retriable, isRetriable(err)], name).toEqual([name, code, retriable, retriable]);
      // exported from the package root, by class name
      expect((root as Record<string, unknown>)[name], name).toBe(err.constructor);
    }
  });

  it('keeps the SQLSTATE of a PostgreSQL failure apart from its code', () => {
    const err = new PgSinkError('PostgreSQL table t: terminated [57P01]', { retriable: true, sqlState: '57P01', cause: pgError('57P01') });
    expect([err.code, err.sqlState, err.retriable]).toEqual(['PG_SINK_ERROR', '57P01', true]);
  });

  it('says what to install for a missing optional peer dependency', () => {
    expect(new MissingDependencyError('@aws-sdk/client-s3', 'S3 storage (s3://b/p)').message).toBe(
      'S3 storage (s3://b/p) needs the package @aws-sdk/client-s3: install @aws-sdk/client-s3 (optional peer dependency), e.g. npm install @aws-sdk/client-s3',
    );
  });

  it('wraps storage failures with the classification of their cause', () => {
    expect(storageError('read x', withCode('ECONNREFUSED', 'connect ECONNREFUSED'))).toMatchObject({ code: 'STORAGE_ERROR', retriable: true, message: 'read x: connect ECONNREFUSED' });
    expect(storageError('read x', awsError('AccessDenied', 403))).toMatchObject({ code: 'STORAGE_ERROR', retriable: false });
  });
});

describe('causeChain', () => {
  it('lists the error and its causes, and stops at a cycle or the depth', () => {
    const inner = new Error('inner');
    const outer = new Error('outer', { cause: inner });
    expect(causeChain(outer)).toEqual([outer, inner]);
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(causeChain(b)).toEqual([b, a]);
    let deep = new Error('0');
    for (let i = 1; i < 50; i++) deep = new Error(String(i), { cause: deep });
    expect(causeChain(deep, 5)).toHaveLength(5);
    expect(causeChain('text')).toEqual([]);
  });
});

describe('isRetriable', () => {
  it('trusts our own errors, whatever they wrap', () => {
    expect(isRetriable(new StorageError('s', { retriable: false, cause: withCode('ECONNRESET') }))).toBe(false);
    expect(isRetriable(new CommitConflictError('lost', new TypeError('x')))).toBe(true);
  });

  it('walks the cause chain to the first error that tells', () => {
    expect(isRetriable(new Error('fetch failed', { cause: withCode('ECONNREFUSED') }))).toBe(true);
    expect(isRetriable(new Error('a', { cause: new Error('b', { cause: withCode('ETIMEDOUT') }) }))).toBe(true);
    expect(isRetriable(new Error('a', { cause: new Error('b', { cause: new TypeError('bug') }) }))).toBe(false);
    expect(isRetriable(new Error('wrapped', { cause: new StorageError('s', { retriable: true }) }))).toBe(true);
    expect(isRetriable(new Error('wrapped', { cause: awsError('AccessDenied', 403, { cause: withCode('ECONNRESET') }) }))).toBe(false);
  });

  it('knows Node network and resource codes', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENOSPC', 'EMFILE', 'UND_ERR_SOCKET']) {
      expect(isRetriable(withCode(code)), code).toBe(true);
    }
    for (const code of ['ENOENT', 'EACCES', 'ERR_INVALID_ARG_TYPE']) expect(isRetriable(withCode(code)), code).toBe(false);
  });

  it('knows the AWS SDK: $retryable, throttling, 5xx, 429 and 408, not other 4xx', () => {
    expect(isRetriable(awsError('SlowDown', 503))).toBe(true);
    expect(isRetriable(awsError('InternalError', 500))).toBe(true);
    expect(isRetriable(awsError('ThrottlingException', 400))).toBe(true);
    expect(isRetriable(awsError('Whatever', 400, { $retryable: { throttling: true } }))).toBe(true);
    expect(isRetriable(awsError('TooManyRequests', 429))).toBe(true);
    expect(isRetriable(awsError('RequestTimeout', 408))).toBe(true);
    expect(isRetriable(awsError('Unknown', 502))).toBe(true);
    expect(isRetriable(Object.assign(new Error('x'), { $fault: 'server' }))).toBe(true);
    expect(isRetriable(awsError('AccessDenied', 403))).toBe(false);
    expect(isRetriable(awsError('NoSuchBucket', 404))).toBe(false);
    expect(isRetriable(awsError('PreconditionFailed', 412))).toBe(false);
  });

  it('knows PostgreSQL SQLSTATE classes 08, 40, 53 and 57, and the pg client connection failures', () => {
    for (const s of ['08000', '08006', '08001', '40001', '40P01', '53300', '53100', '57P01', '57P02', '57P03', '57014']) expect(isRetriable(pgError(s)), s).toBe(true);
    for (const s of ['23505', '22P02', '42P01', '42703', '40002', '57P04', '28P01']) expect(isRetriable(pgError(s)), s).toBe(false);
    expect(isRetriable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isRetriable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    // a host that resolved to several addresses, all refused
    expect(isRetriable(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], ''))).toBe(true);
    expect(isRetriable(new AggregateError([new TypeError('x')], ''))).toBe(false);
  });

  it('knows kafkajs: outages are, its retries giving up on them too; authentication and non-retriable protocol errors are not', () => {
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092', { code: 'ECONNREFUSED' });
    expect(isRetriable(refused)).toBe(true);
    expect(isRetriable(new KafkaJSNumberOfRetriesExceeded(refused, { retryCount: 5, retryTime: 1000 }))).toBe(true);
    expect(isRetriable(new KafkaJSNonRetriableError(refused))).toBe(false);
    expect(isRetriable(new KafkaJSRequestTimeoutError('Request Fetch(key: 1, version: 11) timed out'))).toBe(true);
    expect(isRetriable(new (KafkaJSGroupCoordinatorNotFound as unknown as new (m: string) => Error)('Failed to find group coordinator'))).toBe(true);
    const protocol = (type: string, retriable: boolean): Error => new KafkaJSProtocolError({ type, code: 1, retriable, message: type } as unknown as Error);
    expect(isRetriable(protocol('COORDINATOR_LOAD_IN_PROGRESS', true))).toBe(true);
    expect(isRetriable(protocol('TOPIC_AUTHORIZATION_FAILED', false))).toBe(false);
    const auth = new (KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)('SASL PLAIN authentication failed');
    expect(isRetriable(auth)).toBe(false);
    expect(isRetriable(new KafkaJSNumberOfRetriesExceeded(auth, { retryCount: 1, retryTime: 50 }))).toBe(false);
  });

  it('says no to what tells nothing', () => {
    for (const x of [new Error('plain'), new TypeError('x is undefined'), 'ECONNREFUSED', undefined, null, 42, {}]) expect(isRetriable(x)).toBe(false);
    expect(isRetriable({ retriable: true })).toBe(true);
  });
});
