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
import { Counter } from 'prom-client';
import { bufferTime } from '../operators/bufferTime.ts';
import { deltaSink } from '../operators/deltaSink.ts';
import { enrichMetadata } from '../operators/enrichMetadata.ts';
import { fanOut } from '../operators/fanOut.ts';
import { DeadLetterError, routeErrors } from '../operators/routeErrors.ts';
import { withDeadLetters } from '../operators/withDeadLetters.ts';
import { runIfEntry } from '../runtime/cli.ts';
import { storageFailureHint } from '../runtime/jobParts.ts';
import type { PipelineMonitor } from '../runtime/monitor.ts';
import { runJob, startJob } from '../runtime/runJob.ts';
import type { Job, JobRun, JobRunOptions } from '../runtime/runJob.ts';
import type { DeadLetterRow, EnrichedRecord, KafkaRecord, SinkAck } from '../types.ts';
import { loadTransactionsConfig } from './transactions/config.ts';
import type { TransactionsConfig } from './transactions/config.ts';
import { RefundEvent, TransactionEvent, refundRow, transactionRow } from './transactions/events.ts';
import type { TransactionTopic, TypedRowBase } from './transactions/events.ts';
import { InstanceRunningError, openTransactionsStore } from './transactions/store.ts';
import type { QueryTables } from './transactions/store.ts';
import { accountWindows, windowTableName } from './transactions/windows.ts';

export interface TransactionsSummary {
  readonly recordsWritten: number;
  readonly quarantined: number;
  readonly late: number;
  readonly commits: number;
}

export type TransactionsRun = JobRun<TransactionsSummary>;

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

const USAGE = `Usage: transactions [--until-caught-up] [--help]

Types the transactions and refunds topics into Delta tables (bad events → quarantine_<topic>)
and writes per-account tumbling-window aggregates (<topic>_by_account_1m) to Delta and PostgreSQL.
  --until-caught-up   ingest everything available at start, then exit 0 (open windows are
                      written by a later run, once the watermark closes them)
Configuration comes from environment variables (see README): KAFKA_BOOTSTRAP_SERVERS,
DELTA_BASE_PATH, POSTGRES_URL, WINDOW_SECONDS, WATERMARK_DELAY_SECONDS, …
`;

/** The transactions job: its configuration, and one query per topic into its tables. */
export const transactionsJob: Job<TransactionsConfig, TransactionsSummary> = {
  name: 'transactions',
  usage: USAGE,
  loadConfig: () => loadTransactionsConfig(),
  topicsVariable: 'TRANSACTION_TOPICS',
  topics: (config) => config.transactionTopics,
  async open({ config, log, monitor, storage }) {
    const late = new Counter({ name: 'rxlake_late_records_total', help: 'Records dropped because the watermark had closed their window', labelNames: ['topic'], registers: [monitor.registry] });
    const lateTotal = async (): Promise<number> => (await late.get()).values.reduce((n, v) => n + v.value, 0);
    const store = await openTransactionsStore(config, storage, log);
    return {
      topics: store.tables.map((t) => ({
        kafkaTopic: t.kafkaTopic,
        tables: [t.typed, t.quarantine, t.windowsDelta],
        chain: ({ flush$, assigned }) => transactionsQuery(t, config, monitor, late, assigned, flush$),
      })),
      progress: async ({ rate, lag, inFlight, health }) => ({
        rows_per_s: rate,
        written: health.recordsWritten,
        quarantined: health.dlqRecords,
        late: await lateTotal(),
        lag,
        in_flight: inFlight,
        status: health.status,
      }),
      summary: async (totals) => ({ recordsWritten: totals.recordsWritten, quarantined: totals.deadLetters, late: await lateTotal(), commits: totals.commits }),
      close: () => store.close(),
    };
  },
  finished: (s) => ({ written: s.recordsWritten, quarantined: s.quarantined, late: s.late, commits: s.commits }),
  isStartupProblem: (err) => err instanceof InstanceRunningError,
  failedHint: (err) => (err instanceof DeadLetterError ? 'DLQ_ENABLED=false stops the job at the first bad event. Set DLQ_ENABLED=true to quarantine bad events.' : storageFailureHint(err)),
};

/** Starts the transactions pipeline; every table exists before the first record is read. */
export function startTransactions(options: JobRunOptions<TransactionsConfig>): Promise<TransactionsRun> {
  return startJob(transactionsJob, options);
}

/** CLI entry point. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runJob(transactionsJob, argv);
}

runIfEntry(import.meta.url, 'transactions', main);
