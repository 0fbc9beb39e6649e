/**
 * The bronze pipeline: eight rideshare topics into bronze Delta tables, exactly once, with
 * dead-letter tables for bad records, health/metrics over HTTP and graceful shutdown.
 *
 * Run: `node src/pipelines/bronze.ts [--until-caught-up]` (Node 22.18+), or
 * `npm run bronze -- [--until-caught-up]`. Configuration: environment variables, see README.
 */
import { filter, pipe, tap } from 'rxjs';
import type { Observable, OperatorFunction } from 'rxjs';
import { bufferTime, isBatchChunk } from '../operators/bufferTime.ts';
import type { BatchChunk, BufferTimeOptions } from '../operators/bufferTime.ts';
import { deltaSink } from '../operators/deltaSink.ts';
import { enrichMetadata } from '../operators/enrichMetadata.ts';
import { partitionByDate } from '../operators/partitionByDate.ts';
import { DeadLetterError, routeErrors } from '../operators/routeErrors.ts';
import { withDeadLetters } from '../operators/withDeadLetters.ts';
import { runIfEntry } from '../runtime/cli.ts';
import { storageFailureHint } from '../runtime/jobParts.ts';
import type { PipelineMonitor } from '../runtime/monitor.ts';
import { runJob, startJob } from '../runtime/runJob.ts';
import type { Job, JobRun, JobRunOptions, JobSummary } from '../runtime/runJob.ts';
import type { DeadLetterRow, KafkaRecord, SinkAck } from '../types.ts';
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
 * table alike), ready for `commitOffsets`. `flush$` (the source's `saturated$`) makes the
 * open batch of a table with no write in progress write at once when the consumer has run out
 * of in-flight budget.
 */
export function bronzeTopicPipeline(
  tables: TopicTables,
  config: BronzeConfig,
  monitor: PipelineMonitor,
  flush$?: Observable<unknown>,
): OperatorFunction<KafkaRecord, SinkAck> {
  // A batch flushed on saturation only helps when its table has no write in progress: a write
  // in progress acknowledges records when it lands, and flushing behind it would queue a small
  // file after it (measured: hundreds of tiny commits per table when sinks are slow).
  const idleSink = (): { readonly started: () => void; readonly landed: () => void; readonly flush?: Observable<unknown> } => {
    let writing = 0;
    return {
      started: () => (writing += 1),
      landed: () => (writing -= 1),
      ...(flush$ === undefined ? {} : { flush: flush$.pipe(filter(() => writing === 0)) }),
    };
  };
  const main = idleSink();
  const dead = idleSink();
  const batchOf = (sink: { readonly flush?: Observable<unknown> }) => ({
    timeSpan: config.batch.timeSpanMs,
    maxRecords: config.batch.maxRecords,
    maxBytes: config.batch.maxBytes,
    ...(sink.flush === undefined ? {} : { flush: sink.flush }),
  });
  const sinkOptions = (table: string, deadLetter: boolean) => ({
    pipelineId: config.pipelineId,
    onWriteError: (err: Error) => monitor.writeFailed(table, err),
    onWrite: (ack: SinkAck) => monitor.writeSucceeded(ack, deadLetter),
  });
  const { topic } = tables;
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
          // Chunks are encoded as they come; the batch is committed at its last one.
          mainBatches(config, batchOf(main)),
          tap((b) => {
            if (!isBatchChunk(b) || b.last) main.started();
            monitor.recordsIn.inc({ topic }, isBatchChunk(b) ? b.records.length : b.length);
          }),
          deltaSink(tables.bronze, sinkOptions(tables.bronze.name, false)),
          tap(main.landed),
        ),
      pipe(
        bufferTime(batchOf(dead)),
        tap((rows) => {
          dead.started();
          countDeadLetters(monitor, topic, rows);
        }),
        deltaSink(tables.deadLetters, sinkOptions(tables.deadLetters.name, true)),
        tap(dead.landed),
      ),
    ),
  );
}

/** The main table's batches: in chunks of `BATCH_CHUNK_RECORDS`, or whole when it is 0. */
function mainBatches<T>(config: BronzeConfig, options: Omit<BufferTimeOptions<T>, 'chunkRecords'>): OperatorFunction<T, T[] | BatchChunk<T>> {
  const { chunkRecords } = config.batch;
  return chunkRecords > 0 ? bufferTime({ ...options, chunkRecords }) : bufferTime(options);
}

function countDeadLetters(monitor: PipelineMonitor, topic: string, rows: readonly DeadLetterRow[]): void {
  const byType = new Map<string, number>();
  for (const r of rows) byType.set(r.error_type, (byType.get(r.error_type) ?? 0) + 1);
  for (const [errorType, n] of byType) monitor.dlqRecords.inc({ topic, error_type: errorType }, n);
  monitor.recordsIn.inc({ topic }, rows.length);
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
      topics: tables.map((t) => ({ kafkaTopic: t.kafkaTopic, tables: [t.bronze, t.deadLetters], chain: ({ flush$ }) => bronzeTopicPipeline(t, config, monitor, flush$) })),
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
      : storageFailureHint(err),
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
