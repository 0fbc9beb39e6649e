/**
 * The retail metrics job: three queries in one process, each exactly once into PostgreSQL —
 * typed transactions (`ON CONFLICT DO NOTHING` on the transaction id), per-product 1-minute
 * revenue and transaction counts (event time, 2-minute watermark, upserted), typed refunds —
 * and invalid records into a quarantine table, with the reason.
 *
 * Run: `node src/pipelines/retail.ts [--until-caught-up]` (Node 22.18+), `npm run retail`, or
 * `rxlake retail`. Configuration: environment variables (`KAFKA_BOOTSTRAP`, `KAFKA_TOPIC`,
 * `KAFKA_TOPIC_REFUNDS`, `PG_HOST`, `PG_PORT`, `PG_DB`, …), see README.
 */
import { windowResumeWatermark, windowSink } from '../operators/windowSink.ts';
import { runIfEntry } from '../runtime/cli.ts';
import { kafkaTopicOf } from '../runtime/config.ts';
import { runJob, startJob } from '../runtime/runJob.ts';
import type { Job, JobRun, JobRunOptions } from '../runtime/runJob.ts';
import { loadRetailConfig } from './retail/config.ts';
import type { RetailConfig } from './retail/config.ts';
import { RetailRefund, RetailTransaction, refundRow, saleRow } from './retail/events.ts';
import { openRetailTables, productMinute } from './retail/tables.ts';
import { eventCounts, eventFailedHint, eventFinished, intoPg, reported, typedQuery, windowed } from './transactions/query.ts';
import type { EventSummary, Query } from './transactions/query.ts';
import { InstanceRunningError, openLockedPool } from './transactions/store.ts';

const USAGE = `Usage: retail [--until-caught-up] [--help]

Reads the transactions and refunds topics into PostgreSQL: transactions, refunds,
product_metrics_minute (per product and minute: total_revenue, transaction_count) and quarantine.
  --until-caught-up   ingest everything available at start, then exit 0 (open windows are
                      written by a later run, once the watermark closes them)
Configuration comes from environment variables (see README): KAFKA_BOOTSTRAP, KAFKA_TOPIC,
KAFKA_TOPIC_REFUNDS, PG_HOST, PG_PORT, PG_DB, PG_USER, PG_PASSWORD, WATERMARK_DELAY_SECONDS, …
`;

/** The retail job: its configuration, and the query of each topic into its PostgreSQL tables. */
export const retailJob: Job<RetailConfig, EventSummary> = {
  name: 'retail',
  usage: USAGE,
  loadConfig: () => loadRetailConfig(),
  topicsVariable: 'KAFKA_TOPIC',
  topics: (config) => [config.topics.transactions, config.topics.refunds],
  async open({ config, log, monitor }) {
    const { late, progress, summary } = eventCounts(monitor);
    const postgres = await openLockedPool(config.postgres, 'retail', config.pipelineId, log);
    try {
      const t = await openRetailTables(postgres.pool, config.postgresSchema);
      const initialWatermark = await windowResumeWatermark({ pg: { table: t.metrics } });
      const names = (...tables: { qualifiedName: string }[]) => tables.map((table) => ({ name: table.qualifiedName, version: null }));
      const query = (topic: string): Omit<Query, 'source'> => ({ config, monitor, late, topic });
      return {
        topics: [
          {
            kafkaTopic: kafkaTopicOf(config, config.topics.transactions),
            tables: names(t.sales, t.metrics, t.quarantine),
            chain: ({ source }) => {
              const q = { ...query(config.topics.transactions), source };
              return typedQuery(q, {
                codec: RetailTransaction,
                row: saleRow,
                eventTime: (r) => r.event_ms,
                quarantine: intoPg(q, t.quarantine, true),
                outputs: [
                  intoPg(q, t.sales),
                  windowed(q, {
                    key: (r) => r.product_id,
                    eventTime: (r) => r.event_ms,
                    aggregate: productMinute,
                    initialWatermark,
                    sink: windowSink({ pg: { table: t.metrics, options: reported(q, t.metrics.qualifiedName) } }),
                  }),
                ],
              });
            },
          },
          {
            kafkaTopic: kafkaTopicOf(config, config.topics.refunds),
            tables: names(t.refunds),
            chain: ({ source }) => {
              const q = { ...query(config.topics.refunds), source };
              return typedQuery(q, { codec: RetailRefund, row: refundRow, quarantine: intoPg(q, t.quarantine, true), outputs: [intoPg(q, t.refunds)] });
            },
          },
        ],
        progress,
        summary,
        close: () => postgres.close(),
      };
    } catch (err) {
      await postgres.close();
      throw err;
    }
  },
  finished: eventFinished,
  isStartupProblem: (err) => err instanceof InstanceRunningError,
  failedHint: eventFailedHint,
};

/** Starts the retail job; every table exists before the first record is read. */
export function startRetail(options: JobRunOptions<RetailConfig>): Promise<JobRun<EventSummary>> {
  return startJob(retailJob, options);
}

/** CLI entry point. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runJob(retailJob, argv);
}

runIfEntry(import.meta.url, 'retail', main);
