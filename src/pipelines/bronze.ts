/**
 * The bronze pipeline: eight rideshare topics into bronze Delta tables, exactly once, with
 * dead-letter tables for bad records, health/metrics over HTTP and graceful shutdown.
 *
 * Run: `node src/pipelines/bronze.ts [--until-caught-up]` (Node 22.18+), or
 * `npm run bronze -- [--until-caught-up]`. Configuration: environment variables, see README.
 */
import { pipe, tap } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { batchInto } from '../operators/batchInto.ts';
import { deltaSink } from '../operators/deltaSink.ts';
import { enrichMetadata } from '../operators/enrichMetadata.ts';
import { partitionByDate } from '../operators/partitionByDate.ts';
import { DeadLetterError, routeErrors } from '../operators/routeErrors.ts';
import { withDeadLetters } from '../operators/withDeadLetters.ts';
import { runIfEntry } from '../runtime/cli.ts';
import { jobFailureHint } from '../runtime/jobParts.ts';
import type { PipelineMonitor } from '../runtime/monitor.ts';
import { runJob, startJob } from '../runtime/runJob.ts';
import type { ChainSource, Job, JobRun, JobRunOptions, JobSummary } from '../runtime/runJob.ts';
import type { KafkaRecord, SinkAck } from '../types.ts';
import { loadBronzeConfig } from './bronze/config.ts';
import type { BronzeConfig } from './bronze/config.ts';
import { TableTopicMismatchError, checkTablesAgainstTopics } from './bronze/checkTables.ts';
import { openBronzeTables } from './bronze/tables.ts';
import type { TopicTables } from './bronze/tables.ts';
import { bronzeBytesGuards, bronzeCodecs } from './rideshare/codecs.ts';

export type BronzeSummary = JobSummary;
export type BronzeRun = JobRun<BronzeSummary>;

/**
 * One topic's chain: raw records in, sink acknowledgements out (bronze table and dead-letter
 * table alike), ready for `commitOffsets`. `source` (the running Kafka source, absent in tests)
 * writes a table's open batch at once when the consumer waits for acknowledgements.
 */
export function bronzeTopicPipeline(tables: TopicTables, config: BronzeConfig, monitor: PipelineMonitor, source?: ChainSource): OperatorFunction<KafkaRecord, SinkAck> {
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
      (deadLetters) =>
        pipe(
          routeErrors(bronzeCodecs[topic], deadLetters, {
            validateJson: config.dlq.validateJson,
            validateSchema: config.dlq.validateSchema,
            maxPayloadBytes: config.maxPayloadBytes,
            enabled: config.dlq.enabled,
            attachDecoded: false, // bronze stores the raw bytes
            accepts: (value) => bronzeCodecs[topic].is(value), // non-transforming codecs: a guard suffices
            // Valid events are accepted from their bytes (no string, no JSON.parse); anything the
            // byte check is not sure of takes the full path above, which also names the error.
            acceptsBytes: bronzeBytesGuards[topic],
          }),
          partitionByDate(),
          // In chunks of BATCH_CHUNK_RECORDS, encoded as they come; the batch commits at its last.
          batchInto(deltaSink(tables.bronze, reported(tables.bronze.name)), { ...batch, chunkRecords: config.batch.chunkRecords }),
        ),
      pipe(
        tap((row) => monitor.dlqRecords.inc({ topic, error_type: row.error_type })),
        batchInto(deltaSink(tables.deadLetters, reported(tables.deadLetters.name, true)), batch),
      ),
    ),
    tap((ack) => monitor.recordsIn.inc({ topic }, ack.refs.length)),
  );
}

/** `trips=12/3,…`: the latest bronze/dead-letter table version per topic. */
function tableVersions(tables: Record<string, { version: number | null }>): string {
  const out: string[] = [];
  for (const [name, t] of Object.entries(tables)) {
    if (!name.startsWith('bronze_')) continue;
    const topic = name.slice('bronze_'.length);
    out.push(`${topic}=${t.version ?? '-'}/${tables[`dlq_bronze_${topic}`]?.version ?? '-'}`);
  }
  return out.join(',');
}

const USAGE = `Usage: bronze [--until-caught-up] [--help]

Ingests the rideshare topics into bronze Delta tables (bronze_<topic>, dlq_bronze_<topic>).
  --until-caught-up   ingest everything available at start, then exit 0
Configuration comes from environment variables (see README): KAFKA_BOOTSTRAP_SERVERS,
KAFKA_CONSUMER_GROUP, DELTA_BASE_PATH, BATCH_INTERVAL_SECONDS, S3_ENDPOINT_URL, DLQ_ENABLED, …
`;

/** The bronze job: its configuration, and one chain per topic into its two tables. */
export const bronzeJob: Job<BronzeConfig, BronzeSummary> = {
  name: 'bronze',
  usage: USAGE,
  loadConfig: () => loadBronzeConfig(),
  topicsVariable: 'BRONZE_TOPICS',
  topics: (config) => config.topics,
  async open({ config, log, monitor, storage }) {
    log.info('opening tables', { base: storage.uri, topics: config.topics.length });
    const tables = await openBronzeTables(config, storage, log);
    await checkTablesAgainstTopics(config, tables.map((t) => ({ kafkaTopic: t.kafkaTopic, tables: [t.bronze, t.deadLetters] })));
    return {
      topics: tables.map((t) => ({ kafkaTopic: t.kafkaTopic, tables: [t.bronze, t.deadLetters], chain: ({ source }) => bronzeTopicPipeline(t, config, monitor, source) })),
      progress: ({ rate, lag, inFlight, health }) => ({
        records_per_s: rate,
        written: health.recordsWritten,
        dlq: health.dlqRecords,
        lag,
        in_flight: inFlight,
        status: health.status,
        versions: tableVersions(health.tables),
      }),
      summary: (totals) => totals,
    };
  },
  finished: (s) => ({ written: s.recordsWritten, dlq: s.deadLetters, commits: s.commits }),
  isStartupProblem: (err) => err instanceof TableTopicMismatchError,
  failedHint: (err) =>
    err instanceof DeadLetterError
      ? 'DLQ_ENABLED=false stops the job at the first bad record; nothing past it is committed. Set DLQ_ENABLED=true to route bad records to the dead-letter tables.'
      : jobFailureHint(err),
};

/** Starts the bronze pipeline; tables exist (created if missing) before the first record is read. */
export function startBronze(options: JobRunOptions<BronzeConfig>): Promise<BronzeRun> {
  return startJob(bronzeJob, options);
}

/** CLI entry point. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runJob(bronzeJob, argv);
}

runIfEntry(import.meta.url, 'bronze', main);
