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
import type { TransactionsConfig } from './config.ts';
import type { TransactionTopic, TypedRowBase } from './events.ts';
import { quarantineTableSpec, refundsTableSpec, transactionsTableSpec } from './tables.ts';
import { restartWatermark, windowDeltaSpec, windowPgSpec, windowTableName, windowsAppId } from './windows.ts';
import type { AccountWindow, DeltaWindow } from './windows.ts';

/** Everything one topic's query writes to. */
export interface QueryTables {
  readonly topic: TransactionTopic;
  readonly kafkaTopic: string;
  readonly typed: DeltaTable<TypedRowBase>;
  readonly quarantine: DeltaTable<DeadLetterRow>;
  readonly windowsDelta: DeltaTable<DeltaWindow>;
  readonly windowsPg: PgTable<AccountWindow>;
  /** Where the watermark starts (see `restartWatermark`). */
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
  const pool = new pg.Pool({ connectionString: config.postgresUrl, max: 4 });
  pool.on('error', (err) => log.warn('postgres: idle connection failed', { error: err.message }));
  let lock: pg.PoolClient | undefined;
  try {
    lock = await singleInstanceLock(pool, config.pipelineId);
    // The lock lives as long as its connection: a PostgreSQL restart ends both (the job goes on).
    lock.on('error', (err) => log.warn('postgres: the single-instance lock connection failed; the lock is released', { error: err.message }));
    log.info('opening tables', { base: storage.uri, topics: config.transactionTopics.join(',') });
    const tables = await openQueryTables(config, storage, pool, log);
    const held = lock;
    return {
      tables,
      close: async () => {
        held.release();
        await pool.end();
      },
    };
  } catch (err) {
    lock?.release();
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
      open(windowDeltaSpec(windows)),
      PgTable.openOrCreate(pool, { ...windowPgSpec(windows), schema: config.postgresSchema }),
    ]);
    const initialWatermark = await restartWatermark(windowsDelta, windowsPg, windowsAppId(config.pipelineId, windows));
    if (Number.isFinite(initialWatermark)) {
      log.info('windows resume', { query: windows, watermark: new Date(initialWatermark).toISOString() });
    }
    tables.push({ topic, kafkaTopic: kafkaTopicOf(config, topic), typed, quarantine, windowsDelta, windowsPg, initialWatermark });
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

/**
 * Holds a session-level advisory lock named after the pipeline id for as long as the job runs
 * (released with the connection, so a crashed job frees it at once): window state lives in the
 * process, and two instances of one consumer group would each see part of the records.
 */
async function singleInstanceLock(pool: pg.Pool, pipelineId: string): Promise<pg.PoolClient> {
  const client = await pool.connect();
  try {
    const key = createHash('sha256').update(`rxlake-transactions:${pipelineId}`).digest().readBigInt64BE(0);
    const res = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key.toString()]);
    if (res.rows[0]?.ok !== true) throw new InstanceRunningError(pipelineId);
    return client;
  } catch (err) {
    client.release();
    throw err;
  }
}
