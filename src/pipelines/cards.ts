/**
 * The card medallion job: the `transactions` topic into bronze (every record as read),
 * quarantine (not a card event: unparseable JSON, no `txn_id`, `event_ts` or `card_id`), silver
 * (typed, `event_time` parsed from `event_ts`) and gold (per card and 1-minute window, 5-minute
 * watermark: count, sum, average and maximum amount) Delta tables, gold also into PostgreSQL when
 * `POSTGRES_URL` is set — each exactly once.
 *
 * Run: `node src/pipelines/cards.ts [--until-caught-up]` (Node 22.18+), `npm run cards`, or
 * `rxlake cards`. Configuration: environment variables (`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_TOPIC`,
 * `OUTPUT_PATH`, `TRIGGER_INTERVAL`, `MAX_OFFSETS_PER_TRIGGER`, `STARTING_OFFSETS`, …), see README.
 */
import { windowSink } from '../operators/windowSink.ts';
import { runIfEntry } from '../runtime/cli.ts';
import { kafkaTopicOf } from '../runtime/config.ts';
import { runJob, startJob } from '../runtime/runJob.ts';
import type { Job, JobRun, JobRunOptions } from '../runtime/runJob.ts';
import { loadCardsConfig } from './cards/config.ts';
import type { CardsConfig } from './cards/config.ts';
import { checkDataLoss } from './cards/dataLoss.ts';
import { CardEvent, silverRow } from './cards/events.ts';
import { cardMinute, openCardTables } from './cards/tables.ts';
import { eventCounts, eventFailedHint, eventFinished, intoDelta, reported, typedQuery, windowed } from './transactions/query.ts';
import type { EventSummary } from './transactions/query.ts';
import { InstanceRunningError, openLockedPool } from './transactions/store.ts';

const USAGE = `Usage: cards [--until-caught-up] [--help]

Reads card transactions into the Delta tables bronze, quarantine, silver and gold (per card and
minute: txn_count, sum_amount, avg_amount, max_amount) under OUTPUT_PATH, gold also into
PostgreSQL (gold_card_1m) when POSTGRES_URL is set.
  --until-caught-up   ingest everything available at start, then exit 0 (open windows are
                      written by a later run, once the watermark closes them)
Configuration comes from environment variables (see README): KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC,
OUTPUT_PATH, TRIGGER_INTERVAL, MAX_OFFSETS_PER_TRIGGER, STARTING_OFFSETS, FAIL_ON_DATA_LOSS, …
`;

/** The cards job: its configuration, and the one query of its topic into the medallion tables. */
export const cardsJob: Job<CardsConfig, EventSummary> = {
  name: 'cards',
  usage: USAGE,
  loadConfig: () => loadCardsConfig(),
  topicsVariable: 'KAFKA_TOPIC',
  topics: (config) => [config.topic],
  async open({ config, log, monitor, storage }) {
    const { late, progress, summary } = eventCounts(monitor);
    const kafkaTopic = kafkaTopicOf(config, config.topic);
    await checkDataLoss(config, kafkaTopic, config.failOnDataLoss, log);
    // Windows live in the process: with PostgreSQL, a lock there keeps it to one instance.
    const postgres = config.postgresUrl === undefined ? undefined : await openLockedPool(config.postgresUrl, 'cards', config.pipelineId, log);
    try {
      const logger = { warn: (m: string, e?: unknown) => log.warn(m, e === undefined ? {} : { error: e }) };
      const pg = postgres === undefined ? undefined : { pool: postgres.pool, schema: config.postgresSchema };
      const t = await openCardTables(storage, { logger, encoder: config.parquetEncoder }, config.pipelineId, pg);
      return {
        topics: [
          {
            kafkaTopic,
            tables: [t.bronze, t.quarantine, t.silver, t.gold],
            chain: ({ source }) => {
              const q = { config, monitor, late, source, topic: config.topic };
              return typedQuery(q, {
                raw: intoDelta(q, t.bronze),
                codec: CardEvent,
                row: silverRow,
                eventTime: (r) => r.event_ms,
                quarantine: intoDelta(q, t.quarantine, true),
                outputs: [
                  intoDelta(q, t.silver),
                  windowed(q, {
                    key: (r) => r.card_id,
                    eventTime: (r) => r.event_ms,
                    aggregate: cardMinute,
                    initialWatermark: t.initialWatermark,
                    sink: windowSink({
                      delta: { table: t.gold, appId: t.goldAppId, options: reported(q, t.gold.name) },
                      pg: t.goldPg === undefined ? undefined : { table: t.goldPg, options: reported(q, t.goldPg.qualifiedName) },
                    }),
                  }),
                ],
              });
            },
          },
        ],
        progress,
        summary,
        close: async () => postgres?.close(),
      };
    } catch (err) {
      await postgres?.close();
      throw err;
    }
  },
  finished: eventFinished,
  isStartupProblem: (err) => err instanceof InstanceRunningError,
  failedHint: eventFailedHint,
};

/** Starts the cards job; every table exists before the first record is read. */
export function startCards(options: JobRunOptions<CardsConfig>): Promise<JobRun<EventSummary>> {
  return startJob(cardsJob, options);
}

/** CLI entry point. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runJob(cardsJob, argv);
}

runIfEntry(import.meta.url, 'cards', main);
