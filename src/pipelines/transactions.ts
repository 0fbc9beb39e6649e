/**
 * The transactions pipeline: `transactions` and `refunds` topics typed into Delta tables (bad
 * events quarantined), and per-account tumbling-window aggregates (count, sum, avg, max of
 * `amount`, event time, with a watermark) into Delta and PostgreSQL — one query per topic, all
 * in one process, each exactly once.
 *
 * Run: `node src/pipelines/transactions.ts [--until-caught-up]` (Node 22.18+), or
 * `npm run transactions -- [--until-caught-up]`. Configuration: environment variables, see README.
 */
import type { OperatorFunction } from 'rxjs';
import type { Counter } from 'prom-client';
import { DeadLetterError } from '../operators/routeErrors.ts';
import { windowSink } from '../operators/windowSink.ts';
import { runIfEntry } from '../runtime/cli.ts';
import { jobFailureHint } from '../runtime/jobParts.ts';
import type { PipelineMonitor } from '../runtime/monitor.ts';
import { runJob, startJob } from '../runtime/runJob.ts';
import type { ChainSource, Job, JobRun, JobRunOptions } from '../runtime/runJob.ts';
import type { KafkaRecord, SinkAck } from '../types.ts';
import { loadTransactionsConfig } from './transactions/config.ts';
import type { TransactionsConfig } from './transactions/config.ts';
import { TOPIC_CODECS, eventTimeMs, typedRowOf } from './transactions/events.ts';
import { eventCounts, eventFinished, intoDelta, reported, typedQuery, windowed } from './transactions/query.ts';
import type { EventSummary } from './transactions/query.ts';
import { InstanceRunningError, openTransactionsStore } from './transactions/store.ts';
import type { QueryTables } from './transactions/store.ts';
import { accountAggregate } from './transactions/windows.ts';

export type TransactionsSummary = EventSummary;
export type TransactionsRun = JobRun<TransactionsSummary>;

/**
 * One topic's query: raw records in, acknowledgements out. A record is acknowledged once it is
 * in the quarantine table (bad, or dated more than `MAX_EVENT_TIME_LEAD_SECONDS` ahead), or in
 * the typed table **and** (its window in both window tables, or counted late). `source` (the running Kafka source, absent in tests) cuts batches early under
 * pressure and names the partitions the watermark waits for.
 */
export function transactionsQuery(
  t: QueryTables,
  config: TransactionsConfig,
  monitor: PipelineMonitor,
  late: Counter<'topic'>,
  source?: ChainSource,
): OperatorFunction<KafkaRecord, SinkAck> {
  const q = { config, monitor, late, source, topic: t.topic };
  return typedQuery(q, {
    codec: TOPIC_CODECS[t.topic],
    row: typedRowOf(t.topic),
    eventTime: eventTimeMs,
    quarantine: intoDelta(q, t.quarantine, true),
    outputs: [
      intoDelta(q, t.typed),
      windowed(q, {
        key: (r) => r.account_id,
        eventTime: eventTimeMs,
        aggregate: accountAggregate,
        initialWatermark: t.initialWatermark,
        sink: windowSink({
          delta: { table: t.windowsDelta, appId: t.windowsAppId, options: reported(q, t.windowsDelta.name) },
          pg: { table: t.windowsPg, options: reported(q, t.windowsPg.qualifiedName) },
        }),
      }),
    ],
  });
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
    const { late, progress, summary } = eventCounts(monitor);
    const store = await openTransactionsStore(config, storage, log);
    return {
      topics: store.tables.map((t) => ({
        kafkaTopic: t.kafkaTopic,
        tables: [t.typed, t.quarantine, t.windowsDelta],
        chain: ({ source }) => transactionsQuery(t, config, monitor, late, source),
      })),
      progress,
      summary,
      close: () => store.close(),
    };
  },
  finished: eventFinished,
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
