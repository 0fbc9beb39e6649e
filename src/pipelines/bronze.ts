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
import { byKey } from '../operators/internal/byKey.ts';
import type { BatchChunk, BufferTimeOptions } from '../operators/bufferTime.ts';
import { commitOffsets } from '../operators/commitOffsets.ts';
import type { CommitEvent } from '../operators/commitOffsets.ts';
import { deltaSink } from '../operators/deltaSink.ts';
import { enrichMetadata } from '../operators/enrichMetadata.ts';
import { partitionByDate } from '../operators/partitionByDate.ts';
import { DeadLetterError, routeErrors } from '../operators/routeErrors.ts';
import { withDeadLetters } from '../operators/withDeadLetters.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { DeltaTable } from '../sinks/delta/table.ts';
import type { KafkaSource } from '../sources/fromKafka.ts';
import { loadBronzeConfig } from './bronze/config.ts';
import type { BronzeConfig } from './bronze/config.ts';
import { runIfEntry, runJobCli } from '../runtime/cli.ts';
import { checkJobStorage, jobSource, jobStorage, requireJobTopics, startupRetry, storageFailureHint, storageStartupError, updateSourceGauges } from '../runtime/jobParts.ts';
import { createLogger } from '../runtime/log.ts';
import type { Logger } from '../runtime/log.ts';
import { PipelineMonitor } from '../runtime/monitor.ts';
import type { DeadLetterRow, KafkaRecord, SinkAck } from '../types.ts';
import { bronzeBytesGuards, bronzeCodecs } from './rideshare/codecs.ts';
import type { BronzeTopic } from './rideshare/topics.ts';
import { TableTopicMismatchError, checkTablesAgainstTopics } from './bronze/checkTables.ts';
import { bronzeTableSpec, deadLetterTableSpec } from './bronze/tables.ts';
import type { BronzeRow } from './bronze/tables.ts';

/** The two tables of one topic. */
export interface TopicTables {
  readonly topic: BronzeTopic;
  readonly kafkaTopic: string;
  readonly bronze: DeltaTable<BronzeRow>;
  readonly deadLetters: DeltaTable<DeadLetterRow>;
}

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

/** Opens (creating when missing) the bronze and dead-letter tables of every configured topic. */
export async function openBronzeTables(config: BronzeConfig, storage: Storage, log: Logger): Promise<TopicTables[]> {
  const deltaLogger = { warn: (m: string, e?: unknown) => log.warn(m, e === undefined ? {} : { error: e }) };
  const opts = { logger: deltaLogger, encoder: config.parquetEncoder };
  // Storage may be down at start: retriable failures are retried (STORAGE_STARTUP_TIMEOUT_SECONDS).
  const retried = <T>(topic: string, fn: () => Promise<T>): Promise<T> => startupRetry(log, `open ${topic} tables`, fn, config.storageStartupTimeoutMs);
  return Promise.all(
    config.topics.map(async (topic) => {
      const [bronze, deadLetters] = await Promise.all([
        retried(topic, () => DeltaTable.openOrCreate(storage.sub(`bronze_${topic}`), bronzeTableSpec(topic), opts)),
        retried(topic, () => DeltaTable.openOrCreate(storage.sub(`dlq_bronze_${topic}`), deadLetterTableSpec(topic), opts)),
      ]);
      return { topic, kafkaTopic: `${config.kafka.topicPrefix}${topic}`, bronze, deadLetters };
    }),
  );
}

export interface BronzeRunOptions {
  readonly config: BronzeConfig;
  /** Ingest everything available at start, then exit. */
  readonly untilCaughtUp?: boolean;
  readonly log?: Logger;
  readonly monitor?: PipelineMonitor;
  /** Storage override (tests); default from `config.deltaBasePath`. */
  readonly storage?: Storage;
  /** Serve /health, /ready, /metrics; default true. */
  readonly http?: boolean;
}

export interface BronzeRun {
  /** Resolves when the pipeline has ended (caught up, or stopped and flushed). */
  readonly done: Promise<BronzeSummary>;
  /** Stop fetching, flush open batches, commit, disconnect. */
  stop(): void;
  readonly monitor: PipelineMonitor;
  readonly source: KafkaSource;
  readonly httpPort: number | undefined;
}

export interface BronzeSummary {
  readonly recordsWritten: number;
  readonly deadLetters: number;
  readonly commits: number;
  readonly tables: Record<string, { version: number | null; rows: number }>;
}

/** Starts the bronze pipeline; tables exist (created if missing) before the first record is read. */
export async function startBronze(options: BronzeRunOptions): Promise<BronzeRun> {
  const { config } = options;
  const log = options.log ?? createLogger(config.logLevel);
  const monitor = options.monitor ?? new PipelineMonitor();
  const httpServer = options.http === false ? undefined : await monitor.listen(config.http.port, config.http.host);
  if (httpServer) log.info('health and metrics', { url: `http://${config.http.host}:${httpServer.port}/health`, metrics: '/metrics' });

  const storage = options.storage ?? jobStorage(config);
  let tables: TopicTables[];
  try {
    await requireJobTopics(config, config.topics.map((t) => `${config.kafka.topicPrefix}${t}`), log, 'BRONZE_TOPICS');
    await checkJobStorage(config, storage, log);
    log.info('opening tables', { base: storage.uri, topics: config.topics.length });
    tables = await openBronzeTables(config, storage, log);
  } catch (err) {
    httpServer?.server.close();
    throw storageStartupError(err, config, storage.uri) ?? err;
  }
  for (const t of tables) {
    monitor.registerTable(t.bronze.name, t.bronze.version);
    monitor.registerTable(t.deadLetters.name, t.deadLetters.version);
  }
  await checkTablesAgainstTopics(
    config,
    tables.map((t) => ({ kafkaTopic: t.kafkaTopic, tables: [t.bronze, t.deadLetters] as DeltaTable<unknown>[] })),
  );

  const source = jobSource(config, tables.map((t) => t.kafkaTopic), options.untilCaughtUp === true, log, monitor);

  const commits$: Observable<CommitEvent> = source.records$.pipe(
    byKey(
      (r) => r.topic,
      new Map(tables.map((t) => [t.kafkaTopic, bronzeTopicPipeline(t, config, monitor, source.saturated$)])),
    ),
    commitOffsets(source),
  );

  const progress = startProgress(config, log, monitor, source);
  let commits = 0;
  const settled = async (): Promise<void> => {
    await Promise.resolve();
    await source.closed();
  };
  const done = new Promise<BronzeSummary>((resolve, reject) => {
    commits$.subscribe({
      next: (e) => {
        commits += 1;
        for (const o of e.offsets) monitor.committedOffset.set({ topic: o.topic, partition: String(o.partition) }, Number(o.offset));
      },
      // The chain's teardown (which disconnects the consumer) runs right after these
      // callbacks: wait for the disconnect, so the member has left its group on return.
      error: (err: unknown) => {
        clearInterval(progress);
        httpServer?.server.close();
        void settled().then(() => reject(err instanceof Error ? err : new Error(String(err))));
      },
      complete: () => {
        clearInterval(progress);
        httpServer?.server.close();
        const snap = monitor.snapshot();
        void settled().then(() => resolve({
          recordsWritten: snap.recordsWritten,
          deadLetters: snap.dlqRecords,
          commits,
          tables: Object.fromEntries(Object.entries(snap.tables).map(([k, v]) => [k, { version: v.version, rows: v.rows }])),
        }));
      },
    });
  });
  monitor.setReady(true);
  return { done, stop: () => source.drain(), monitor, source, httpPort: httpServer?.port };
}

/** One line on stderr every `progressIntervalMs`: rates, lag, in-flight, latest versions. */
function startProgress(config: BronzeConfig, log: Logger, monitor: PipelineMonitor, source: KafkaSource): NodeJS.Timeout {
  let last = { t: Date.now(), written: 0, dlq: 0 };
  const timer = setInterval(
    () => {
      const snap = monitor.snapshot();
      const { lag, inFlightRecords } = updateSourceGauges(monitor, source);
      const now = Date.now();
      const secs = Math.max(0.001, (now - last.t) / 1000);
      const rate = Math.round((snap.recordsWritten + snap.dlqRecords - last.written - last.dlq) / secs);
      last = { t: now, written: snap.recordsWritten, dlq: snap.dlqRecords };
      if (config.progressIntervalMs > 0) {
        log.info('progress', {
          records_per_s: rate,
          written: snap.recordsWritten,
          dlq: snap.dlqRecords,
          lag: lag.toString(),
          in_flight: inFlightRecords,
          status: snap.status,
          versions: tableVersions(snap.tables),
        });
      }
    },
    Math.max(1000, config.progressIntervalMs || 5000),
  );
  timer.unref();
  return timer;
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

function usage(): string {
  return `Usage: bronze [--until-caught-up] [--help]

Ingests the rideshare topics into bronze Delta tables (bronze_<topic>, dlq_bronze_<topic>).
  --until-caught-up   ingest everything available at start, then exit 0
Configuration comes from environment variables (see README): KAFKA_BOOTSTRAP_SERVERS,
KAFKA_CONSUMER_GROUP, DELTA_BASE_PATH, BATCH_INTERVAL_SECONDS, S3_ENDPOINT_URL, DLQ_ENABLED, …
`;
}

/** CLI entry point. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runJobCli<BronzeConfig, BronzeSummary>(
    {
      name: 'bronze',
      usage: usage(),
      loadConfig: () => loadBronzeConfig(),
      start: (config, log, untilCaughtUp) => startBronze({ config, untilCaughtUp, log }),
      isStartupProblem: (err) => err instanceof TableTopicMismatchError,
      finished: (log, summary) => log.info('bronze pipeline finished', { written: summary.recordsWritten, dlq: summary.deadLetters, commits: summary.commits }),
      failedHint: (err) =>
        err instanceof DeadLetterError
          ? 'DLQ_ENABLED=false stops the job at the first bad record; nothing past it is committed. Set DLQ_ENABLED=true to route bad records to the dead-letter tables.'
          : storageFailureHint(err),
    },
    argv,
  );
}

runIfEntry(import.meta.url, 'bronze', main);
