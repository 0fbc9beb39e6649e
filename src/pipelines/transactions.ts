/**
 * The transactions pipeline: `transactions` and `refunds` topics typed into Delta tables (bad
 * events quarantined), and per-account tumbling-window aggregates (count, sum, avg, max of
 * `amount`, event time, with a watermark) into Delta and PostgreSQL — one query per topic, all
 * in one process, each exactly once.
 *
 * Run: `node src/pipelines/transactions.ts [--until-caught-up]` (Node 22.18+), or
 * `npm run transactions -- [--until-caught-up]`. Configuration: environment variables, see README.
 */
import { map, pipe } from 'rxjs';
import type { Observable, OperatorFunction } from 'rxjs';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { Counter } from 'prom-client';
import { bufferTime } from '../operators/bufferTime.ts';
import { byKey } from '../operators/internal/byKey.ts';
import { commitOffsets } from '../operators/commitOffsets.ts';
import type { CommitEvent } from '../operators/commitOffsets.ts';
import { deltaSink } from '../operators/deltaSink.ts';
import { enrichMetadata } from '../operators/enrichMetadata.ts';
import { fanOut } from '../operators/fanOut.ts';
import { DeadLetterError, routeErrors } from '../operators/routeErrors.ts';
import { withDeadLetters } from '../operators/withDeadLetters.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { DeltaTable } from '../sinks/delta/table.ts';
import type { TableSpec } from '../sinks/delta/schema.ts';
import { PgTable } from '../sinks/postgres.ts';
import type { KafkaSource } from '../sources/fromKafka.ts';
import { runIfEntry, runJobCli } from '../runtime/cli.ts';
import { checkJobStorage, jobSource, jobStorage, requireJobTopics, storageFailureHint, storageStartupError, updateSourceGauges } from '../runtime/jobParts.ts';
import { createLogger } from '../runtime/log.ts';
import type { Logger } from '../runtime/log.ts';
import { PipelineMonitor } from '../runtime/monitor.ts';
import { loadTransactionsConfig } from './transactions/config.ts';
import type { TransactionsConfig } from './transactions/config.ts';
import type { DeadLetterRow, EnrichedRecord, KafkaRecord, SinkAck } from '../types.ts';
import { RefundEvent, TransactionEvent, refundRow, transactionRow } from './transactions/events.ts';
import type { TransactionTopic, TypedRowBase } from './transactions/events.ts';
import { quarantineTableSpec, refundsTableSpec, transactionsTableSpec } from './transactions/tables.ts';
import { accountWindows, restartWatermark, windowDeltaSpec, windowPgSpec, windowTableName, windowsAppId } from './transactions/windows.ts';
import type { WindowRow } from './transactions/windows.ts';

/** Everything one topic's query writes to. */
export interface QueryTables {
  readonly topic: TransactionTopic;
  readonly kafkaTopic: string;
  readonly typed: DeltaTable<TypedRowBase>;
  readonly quarantine: DeltaTable<DeadLetterRow>;
  readonly windowsDelta: DeltaTable<WindowRow>;
  readonly windowsPg: PgTable<WindowRow>;
  /** Where the watermark starts (see `restartWatermark`). */
  readonly initialWatermark: number;
}

/** Typed rows of a topic, from records `routeErrors` accepted. */
function typedRows(topic: TransactionTopic): OperatorFunction<EnrichedRecord & { readonly decoded: unknown }, TypedRowBase> {
  return topic === 'transactions'
    ? map((r) => transactionRow(r as EnrichedRecord & { decoded: TransactionEvent | undefined }))
    : map((r) => refundRow(r as EnrichedRecord & { decoded: RefundEvent | undefined }));
}

const CODECS = { transactions: TransactionEvent, refunds: RefundEvent } as const;

/**
 * One topic's query: raw records in, acknowledgements out. A record is acknowledged once it is
 * in the quarantine table, or in the typed table **and** (its window in both window tables, or
 * counted late).
 */
export function transactionsQuery(
  tables: QueryTables,
  config: TransactionsConfig,
  monitor: PipelineMonitor,
  late: Counter<'topic'>,
  assigned?: () => Iterable<string>,
  flush$?: Observable<unknown>,
): OperatorFunction<KafkaRecord, SinkAck> {
  const { topic } = tables;
  // A full in-flight budget (`flush$`, the source's `saturated$`) writes open batches at once.
  const batch = { timeSpan: config.batch.timeSpanMs, maxRecords: config.batch.maxRecords, maxBytes: config.batch.maxBytes, ...(flush$ === undefined ? {} : { flush: flush$ }) };
  const sinkOptions = (table: string, deadLetter: boolean) => ({
    pipelineId: config.pipelineId,
    onWriteError: (err: Error) => monitor.writeFailed(table, err),
    onWrite: (ack: SinkAck) => monitor.writeSucceeded(ack, deadLetter),
  });
  return pipe(
    enrichMetadata(),
    withDeadLetters(
      (quarantine) =>
        pipe(
          routeErrors(CODECS[topic], quarantine, {
            maxPayloadBytes: config.maxPayloadBytes,
            enabled: config.dlq.enabled,
            // The codecs do not transform: a value `is` accepts passes as parsed, without a decode.
            accepts: (value) => CODECS[topic].is(value),
          }),
          typedRows(topic),
          fanOut(
            pipe(
              bufferTime<TypedRowBase>(batch),
              map((rows) => {
                monitor.recordsIn.inc({ topic }, rows.length);
                return rows;
              }),
              deltaSink(tables.typed, sinkOptions(tables.typed.name, false)),
            ),
            accountWindows({
              query: windowTableName(topic, config.windowMs),
              pipelineId: config.pipelineId,
              windowMs: config.windowMs,
              watermarkDelayMs: config.watermarkDelayMs,
              initialWatermark: tables.initialWatermark,
              delta: tables.windowsDelta,
              pg: tables.windowsPg,
              deltaOptions: sinkOptions(tables.windowsDelta.name, false),
              pgOptions: sinkOptions(tables.windowsPg.qualifiedName, false),
              onLate: () => late.inc({ topic }),
              idleTimeoutMs: config.watermarkIdleMs,
              batchMs: config.batch.timeSpanMs,
              ...(assigned === undefined ? {} : { watermarkSources: assigned }),
            }),
          ),
        ),
      pipe(
        bufferTime<DeadLetterRow>(batch),
        map((rows) => {
          for (const r of rows) monitor.dlqRecords.inc({ topic, error_type: r.error_type });
          monitor.recordsIn.inc({ topic }, rows.length);
          return rows;
        }),
        deltaSink(tables.quarantine, sinkOptions(tables.quarantine.name, true)),
      ),
    ),
  );
}

/** Opens (creating when missing) every table of the configured topics, and the restart watermarks. */
export async function openQueryTables(config: TransactionsConfig, storage: Storage, pool: pg.Pool, log: Logger): Promise<QueryTables[]> {
  const deltaLogger = { warn: (m: string, e?: unknown) => log.warn(m, e === undefined ? {} : { error: e }) };
  const opts = { logger: deltaLogger, encoder: config.parquetEncoder };
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
    tables.push({ topic, kafkaTopic: `${config.kafka.topicPrefix}${topic}`, typed, quarantine, windowsDelta, windowsPg, initialWatermark });
  }
  return tables;
}

export interface TransactionsRunOptions {
  readonly config: TransactionsConfig;
  /** Ingest everything available at start, then exit (windows still open stay for the next run). */
  readonly untilCaughtUp?: boolean;
  readonly log?: Logger;
  /** Storage override (tests); default from `config.deltaBasePath`. */
  readonly storage?: Storage;
  /** Serve /health, /ready, /metrics; default true. */
  readonly http?: boolean;
}

export interface TransactionsRun {
  readonly done: Promise<TransactionsSummary>;
  stop(): void;
  readonly monitor: PipelineMonitor;
  readonly source: KafkaSource;
  readonly httpPort: number | undefined;
}

export interface TransactionsSummary {
  readonly recordsWritten: number;
  readonly quarantined: number;
  readonly late: number;
  readonly commits: number;
}

/** Starts the transactions pipeline; every table exists before the first record is read. */
export async function startTransactions(options: TransactionsRunOptions): Promise<TransactionsRun> {
  const { config } = options;
  const log = options.log ?? createLogger(config.logLevel);
  const monitor = new PipelineMonitor();
  const late = new Counter({ name: 'rxlake_late_records_total', help: 'Records dropped because the watermark had closed their window', labelNames: ['topic'], registers: [monitor.registry] });
  const httpServer = options.http === false ? undefined : await monitor.listen(config.http.port, config.http.host);
  if (httpServer) log.info('health and metrics', { url: `http://${config.http.host}:${httpServer.port}/health`, metrics: '/metrics' });
  const storage = options.storage ?? jobStorage(config);
  try {
    await requireJobTopics(config, config.transactionTopics.map((t) => `${config.kafka.topicPrefix}${t}`), log, 'TRANSACTION_TOPICS');
    await checkJobStorage(config, storage, log);
  } catch (err) {
    httpServer?.server.close();
    throw err;
  }
  const pool = new pg.Pool({ connectionString: config.postgresUrl, max: 4 });
  pool.on('error', (err) => log.warn('postgres: idle connection failed', { error: err.message }));
  let lock: pg.PoolClient | undefined;
  let tables: QueryTables[];
  try {
    lock = await singleInstanceLock(pool, config.pipelineId);
    // The lock lives as long as its connection: a PostgreSQL restart ends both (the job goes on).
    lock.on('error', (err) => log.warn('postgres: the single-instance lock connection failed; the lock is released', { error: err.message }));
    log.info('opening tables', { base: storage.uri, topics: config.transactionTopics.join(',') });
    tables = await openQueryTables(config, storage, pool, log);
  } catch (err) {
    lock?.release();
    await pool.end();
    httpServer?.server.close();
    throw storageStartupError(err, config, storage.uri) ?? err;
  }
  for (const t of tables) {
    for (const d of [t.typed, t.quarantine, t.windowsDelta] as DeltaTable<unknown>[]) monitor.registerTable(d.name, d.version);
  }

  const source = jobSource(config, tables.map((t) => t.kafkaTopic), options.untilCaughtUp === true, log, monitor);

  // The partitions assigned to this consumer, per Kafka topic (`topic/partition`, as the
  // windows' watermark sources): each holds its query's watermark back until it has sent records
  // or gone idle. Asked per record: looked up at most twice a second.
  const assignedOf = (kafkaTopic: string): (() => Iterable<string>) => {
    let at = Number.NEGATIVE_INFINITY;
    let cached: string[] = [];
    return () => {
      const now = Date.now();
      if (now - at >= 500) {
        at = now;
        cached = source.stats().partitions.filter((p) => p.topic === kafkaTopic).map((p) => `${p.topic}/${p.partition}`);
      }
      return cached;
    };
  };
  const commits$: Observable<CommitEvent> = source.records$.pipe(
    byKey((r) => r.topic, new Map(tables.map((t) => [t.kafkaTopic, transactionsQuery(t, config, monitor, late, assignedOf(t.kafkaTopic), source.saturated$)]))),
    commitOffsets(source),
  );

  const lateTotal = async (): Promise<number> => (await late.get()).values.reduce((n, v) => n + v.value, 0);
  let last = { t: Date.now(), done: 0 };
  const progress = setInterval(() => {
    const { lag, inFlightRecords } = updateSourceGauges(monitor, source);
    void lateTotal().then((lateNow) => {
      const snap = monitor.snapshot();
      const now = Date.now();
      const done = snap.recordsWritten + snap.dlqRecords;
      const rate = Math.round((done - last.done) / Math.max(0.001, (now - last.t) / 1000));
      last = { t: now, done };
      if (config.progressIntervalMs > 0) {
        log.info('progress', { rows_per_s: rate, written: snap.recordsWritten, quarantined: snap.dlqRecords, late: lateNow, lag: lag.toString(), in_flight: inFlightRecords, status: snap.status });
      }
    });
  }, Math.max(1000, config.progressIntervalMs || 5000));
  progress.unref();

  let commits = 0;
  const finish = async (): Promise<void> => {
    clearInterval(progress);
    httpServer?.server.close();
    await Promise.resolve();
    await source.closed();
    lock?.release();
    await pool.end();
  };
  const done = new Promise<TransactionsSummary>((resolve, reject) => {
    commits$.subscribe({
      next: () => (commits += 1),
      error: (err: unknown) => {
        void finish().then(() => reject(err instanceof Error ? err : new Error(String(err))));
      },
      complete: () => {
        void finish().then(async () => {
          const snap = monitor.snapshot();
          resolve({ recordsWritten: snap.recordsWritten, quarantined: snap.dlqRecords, late: await lateTotal(), commits });
        });
      },
    });
  });
  monitor.setReady(true);
  return { done, stop: () => source.drain(), monitor, source, httpPort: httpServer?.port };
}

/** Thrown at start when another instance of the same pipeline id is running. */
export class InstanceRunningError extends Error {
  constructor(pipelineId: string) {
    super(
      `another transactions job with PIPELINE_ID=${pipelineId} is running (it holds its lock in PostgreSQL): ` +
        'windows are kept in the process, so one instance per pipeline id runs at a time. Stop the other one, or give this one another PIPELINE_ID.',
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

function usage(): string {
  return `Usage: transactions [--until-caught-up] [--help]

Types the transactions and refunds topics into Delta tables (bad events → quarantine_<topic>)
and writes per-account tumbling-window aggregates (<topic>_by_account_1m) to Delta and PostgreSQL.
  --until-caught-up   ingest everything available at start, then exit 0 (open windows are
                      written by a later run, once the watermark closes them)
Configuration comes from environment variables (see README): KAFKA_BOOTSTRAP_SERVERS,
DELTA_BASE_PATH, POSTGRES_URL, WINDOW_SECONDS, WATERMARK_DELAY_SECONDS, …
`;
}

/** CLI entry point. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runJobCli<TransactionsConfig, TransactionsSummary>(
    {
      name: 'transactions',
      usage: usage(),
      loadConfig: () => loadTransactionsConfig(),
      start: (config, log, untilCaughtUp) => startTransactions({ config, untilCaughtUp, log }),
      isStartupProblem: (err) => err instanceof InstanceRunningError,
      finished: (log, s) => log.info('transactions pipeline finished', { written: s.recordsWritten, quarantined: s.quarantined, late: s.late, commits: s.commits }),
      failedHint: (err) => (err instanceof DeadLetterError ? 'DLQ_ENABLED=false stops the job at the first bad event. Set DLQ_ENABLED=true to quarantine bad events.' : storageFailureHint(err)),
    },
    argv,
  );
}

runIfEntry(import.meta.url, 'transactions', main);
