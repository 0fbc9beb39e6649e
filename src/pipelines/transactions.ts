/**
 * The transactions pipeline: `transactions` and `refunds` topics typed into Delta tables (bad
 * events quarantined), and per-account tumbling-window aggregates (count, sum, avg, max of
 * `amount`, event time, with a watermark) into Delta and PostgreSQL — one query per topic, all
 * in one process, each exactly once.
 *
 * Run: `node src/pipelines/transactions.ts [--until-caught-up]` (Node 22.18+), or
 * `npm run transactions -- [--until-caught-up]`. Configuration: environment variables, see README.
 */
import { map, pipe, tap } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { Counter } from 'prom-client';
import { batchInto } from '../operators/batchInto.ts';
import { deltaSink } from '../operators/deltaSink.ts';
import { enrichMetadata } from '../operators/enrichMetadata.ts';
import { fanOut } from '../operators/fanOut.ts';
import { DeadLetterError, routeErrors } from '../operators/routeErrors.ts';
import { amountStats, kafkaPartition, tumblingWindow } from '../operators/tumblingWindow.ts';
import { withDeadLetters } from '../operators/withDeadLetters.ts';
import { runIfEntry } from '../runtime/cli.ts';
import { jobFailureHint } from '../runtime/jobParts.ts';
import type { PipelineMonitor } from '../runtime/monitor.ts';
import { runJob, startJob } from '../runtime/runJob.ts';
import type { ChainSource, Job, JobRun, JobRunOptions } from '../runtime/runJob.ts';
import type { KafkaRecord, SinkAck } from '../types.ts';
import { loadTransactionsConfig } from './transactions/config.ts';
import type { TransactionsConfig } from './transactions/config.ts';
import { TOPIC_CODECS, eventTimeMs, typedRowOf } from './transactions/events.ts';
import { InstanceRunningError, openTransactionsStore } from './transactions/store.ts';
import type { QueryTables } from './transactions/store.ts';
import { windowTables } from './transactions/windows.ts';

export interface TransactionsSummary {
  readonly recordsWritten: number;
  readonly quarantined: number;
  readonly late: number;
  readonly commits: number;
}

export type TransactionsRun = JobRun<TransactionsSummary>;

/**
 * One topic's query: raw records in, acknowledgements out. A record is acknowledged once it is
 * in the quarantine table, or in the typed table **and** (its window in both window tables, or
 * counted late). `source` (the running Kafka source, absent in tests) cuts batches early under
 * pressure and names the partitions the watermark waits for.
 */
export function transactionsQuery(
  tables: QueryTables,
  config: TransactionsConfig,
  monitor: PipelineMonitor,
  late: Counter<'topic'>,
  source?: ChainSource,
): OperatorFunction<KafkaRecord, SinkAck> {
  const { topic } = tables;
  const batch = { timeSpan: config.batch.timeSpanMs, maxRecords: config.batch.maxRecords, maxBytes: config.batch.maxBytes, pressure: source };
  const reported = (table: string, deadLetters = false) => ({
    pipelineId: config.pipelineId,
    onWriteError: (err: Error) => monitor.writeFailed(table, err),
    onWrite: (ack: SinkAck) => monitor.writeSucceeded(ack, deadLetters),
  });
  return pipe(
    enrichMetadata(),
    withDeadLetters(
      (quarantine) =>
        pipe(
          routeErrors(TOPIC_CODECS[topic], quarantine, {
            maxPayloadBytes: config.maxPayloadBytes,
            enabled: config.dlq.enabled,
            // The codecs do not transform: a value `is` accepts passes as parsed, without a decode.
            accepts: (value) => TOPIC_CODECS[topic].is(value),
          }),
          map(typedRowOf(topic)),
          fanOut(
            batchInto(deltaSink(tables.typed, reported(tables.typed.name)), batch),
            tumblingWindow({
              size: config.windowMs,
              watermarkDelay: config.watermarkDelayMs,
              initialWatermark: tables.initialWatermark,
              key: (r) => r.account_id,
              eventTime: eventTimeMs,
              aggregate: amountStats((r) => r.amount),
              watermarkBy: kafkaPartition(),
              watermarkSources: source?.assignment$,
              idleTimeout: config.watermarkIdleMs,
              late: { next: () => late.inc({ topic }) },
              sinkTimeSpan: config.batch.timeSpanMs,
              sink: windowTables({
                query: tables.windowsDelta.name,
                pipelineId: config.pipelineId,
                delta: tables.windowsDelta,
                pg: tables.windowsPg,
                deltaOptions: reported(tables.windowsDelta.name),
                pgOptions: reported(tables.windowsPg.qualifiedName),
              }),
            }),
          ),
        ),
      pipe(
        tap((row) => monitor.dlqRecords.inc({ topic, error_type: row.error_type })),
        batchInto(deltaSink(tables.quarantine, reported(tables.quarantine.name, true)), batch),
      ),
    ),
    tap((ack) => monitor.recordsIn.inc({ topic }, ack.refs.length)),
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
        chain: ({ source }) => transactionsQuery(t, config, monitor, late, source),
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
  failedHint: (err) => (err instanceof DeadLetterError ? 'DLQ_ENABLED=false stops the job at the first bad event. Set DLQ_ENABLED=true to quarantine bad events.' : jobFailureHint(err)),
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
