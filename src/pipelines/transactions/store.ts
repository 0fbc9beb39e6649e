/**
 * Where the transactions job writes, opened for one run: per topic its typed and quarantine Delta
 * tables and its window tables in Delta and PostgreSQL, with the watermark the windows restart
 * from; and the PostgreSQL single-instance lock the job holds while it runs.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { RxlakeError } from '../../core/errors.ts';
import { kafkaTopicOf } from '../../runtime/config.ts';
import type { Logger } from '../../runtime/log.ts';
import type { TableSpec } from '../../sinks/delta/schema.ts';
import type { Storage } from '../../sinks/delta/storage.ts';
import { DeltaTable } from '../../sinks/delta/table.ts';
import { PgTable } from '../../sinks/postgres.ts';
import type { DeadLetterRow } from '../../types.ts';
import { windowDeltaSpec, windowPgSpec, windowResumeWatermark } from '../../operators/windowSink.ts';
import type { TransactionsConfig } from './config.ts';
import type { TransactionTopic, TypedRowBase } from './events.ts';
import { quarantineTableSpec, refundsTableSpec, transactionsTableSpec } from './tables.ts';
import { accountWindowLayout, windowTableName, windowsAppId } from './windows.ts';
import type { AccountValues, AccountWindow, DeltaWindow } from './windows.ts';

/** Everything one topic's query writes to. */
export interface QueryTables {
  readonly topic: TransactionTopic;
  readonly kafkaTopic: string;
  readonly typed: DeltaTable<TypedRowBase>;
  readonly quarantine: DeltaTable<DeadLetterRow>;
  readonly windowsDelta: DeltaTable<DeltaWindow>;
  readonly windowsPg: PgTable<AccountWindow>;
  /** The `txn` appId of the Delta window table. */
  readonly windowsAppId: string;
  /** Where the watermark starts (see `windowResumeWatermark`). */
  readonly initialWatermark: number;
}

/** The tables of every configured topic, and how to let go of PostgreSQL (lock and pool) at the end. */
export interface TransactionsStore {
  readonly tables: readonly QueryTables[];
  close(): Promise<void>;
}

/**
 * Takes the single-instance lock, then opens (creating when missing) every table of the
 * configured topics and their restart watermarks. A failure releases what was taken.
 */
export async function openTransactionsStore(config: TransactionsConfig, storage: Storage, log: Logger): Promise<TransactionsStore> {
  const postgres = await openLockedPool(config.postgresUrl, 'transactions', config.pipelineId, log);
  try {
    log.info('opening tables', { base: storage.uri, topics: config.transactionTopics.join(',') });
    const tables = await openQueryTables(config, storage, postgres.pool, log);
    return { tables, close: () => postgres.close() };
  } catch (err) {
    await postgres.close();
    throw err;
  }
}

/** A PostgreSQL pool and the job's single-instance lock, released together by `close`. */
export interface LockedPool {
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * Connects to PostgreSQL and takes the single-instance lock of `job` and `pipelineId` (windows
 * live in the process, so one instance runs at a time): rejects with an `InstanceRunningError`
 * when another instance holds it. A failure releases what was taken.
 */
export async function openLockedPool(connection: string | pg.PoolConfig, job: string, pipelineId: string, log: Logger): Promise<LockedPool> {
  const pool = new pg.Pool({ ...(typeof connection === 'string' ? { connectionString: connection } : connection), max: 4 });
  pool.on('error', (err) => log.warn('postgres: idle connection failed', { error: err.message }));
  try {
    const lock = await singleInstanceLock(pool, job, pipelineId);
    // The lock lives as long as its connection: a PostgreSQL restart ends both (the job goes on).
    lock.on('error', (err) => log.warn('postgres: the single-instance lock connection failed; the lock is released', { error: err.message }));
    return {
      pool,
      close: async () => {
        lock.release();
        await pool.end();
      },
    };
  } catch (err) {
    await pool.end();
    throw err;
  }
}

/** Opens (creating when missing) every table of the configured topics, and the restart watermarks. */
async function openQueryTables(config: TransactionsConfig, storage: Storage, pool: pg.Pool, log: Logger): Promise<QueryTables[]> {
  const opts = { logger: log, encoder: config.parquetEncoder };
  const open = <Row>(spec: TableSpec<Row>): Promise<DeltaTable<Row>> => DeltaTable.openOrCreate(storage.sub(spec.name), spec, opts);
  const tables: QueryTables[] = [];
  for (const topic of config.transactionTopics) {
    const windows = windowTableName(topic, config.windowMs);
    const typedSpec = (topic === 'transactions' ? transactionsTableSpec() : refundsTableSpec()) as TableSpec<TypedRowBase>;
    const [typed, quarantine, windowsDelta, windowsPg] = await Promise.all([
      open(typedSpec),
      open(quarantineTableSpec(topic)),
      open(windowDeltaSpec<AccountValues>(accountWindowLayout(windows))),
      PgTable.openOrCreate(pool, windowPgSpec<AccountValues>(accountWindowLayout(windows, config.postgresSchema))),
    ]);
    const appId = windowsAppId(config.pipelineId, windows);
    const initialWatermark = await windowResumeWatermark({ delta: { table: windowsDelta, appId }, pg: { table: windowsPg } });
    if (Number.isFinite(initialWatermark)) {
      log.info('windows resume', { query: windows, watermark: new Date(initialWatermark).toISOString() });
    }
    tables.push({ topic, kafkaTopic: kafkaTopicOf(config, topic), typed, quarantine, windowsDelta, windowsPg, windowsAppId: appId, initialWatermark });
  }
  return tables;
}

/** Thrown at start when another instance of the same pipeline id is running. Code `INSTANCE_RUNNING`; not retriable. */
export class InstanceRunningError extends RxlakeError {
  constructor(pipelineId: string) {
    super(
      `another transactions job with PIPELINE_ID=${pipelineId} is running (it holds its lock in PostgreSQL): ` +
        'windows are kept in the process, so one instance per pipeline id runs at a time. Stop the other one, or give this one another PIPELINE_ID.',
      { code: 'INSTANCE_RUNNING' },
    );
    this.name = 'InstanceRunningError';
  }
}

/** `InstanceRunningError` for another job of the family (retail, cards): the message names it. */
export class JobInstanceRunningError extends InstanceRunningError {
  constructor(job: string, pipelineId: string) {
    super(pipelineId);
    this.message =
      `another ${job} job with PIPELINE_ID=${pipelineId} is running (it holds its lock in PostgreSQL): ` +
      'windows are kept in the process, so one instance per pipeline id runs at a time. Stop the other one, or give this one another PIPELINE_ID.';
  }
}

/**
 * Holds a session-level advisory lock named after the job and pipeline id for as long as the job
 * runs (released with the connection, so a crashed job frees it at once): window state lives in
 * the process, and two instances of one consumer group would each see part of the records.
 */
async function singleInstanceLock(pool: pg.Pool, job: string, pipelineId: string): Promise<pg.PoolClient> {
  const client = await pool.connect();
  try {
    const key = createHash('sha256').update(`rxlake-${job}:${pipelineId}`).digest().readBigInt64BE(0);
    const res = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key.toString()]);
    if (res.rows[0]?.ok !== true) throw job === 'transactions' ? new InstanceRunningError(pipelineId) : new JobInstanceRunningError(job, pipelineId);
    return client;
  } catch (err) {
    client.release();
    throw err;
  }
}
