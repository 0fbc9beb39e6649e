/**
 * What the jobs that type events and window them (transactions, retail, cards) build their
 * queries from, so that each job is its tables and one `pipe` per topic:
 *
 * - `typedQuery`: raw records → typed rows into their outputs, bad ones into quarantine (and
 *   optionally every raw record into a table of its own), acknowledged once every output holds
 *   them;
 * - `windowed`: typed rows into event-time windows per key, written through `windowSink` once
 *   the watermark (per Kafka partition, over the partitions assigned) passes them;
 * - `intoDelta` / `intoPg`: batches into a table, reported to the job's monitor;
 * - `eventCounts`: the late counter, progress line and summary every such job shows.
 */
import { map, pipe, tap } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import type * as t from 'io-ts';
import { Counter } from 'prom-client';
import { batchInto } from '../../operators/batchInto.ts';
import { deltaSink } from '../../operators/deltaSink.ts';
import { enrichMetadata } from '../../operators/enrichMetadata.ts';
import { fanOut } from '../../operators/fanOut.ts';
import { pgSink } from '../../operators/pgSink.ts';
import { DeadLetterError, routeErrors } from '../../operators/routeErrors.ts';
import type { Routed } from '../../operators/routeErrors.ts';
import { kafkaPartition, tumblingWindow } from '../../operators/tumblingWindow.ts';
import type { WindowAggregate, WindowResult } from '../../operators/tumblingWindow.ts';
import { withDeadLetters } from '../../operators/withDeadLetters.ts';
import { jobFailureHint } from '../../runtime/jobParts.ts';
import type { PipelineMonitor } from '../../runtime/monitor.ts';
import type { ChainSource, JobSummary, OpenJob } from '../../runtime/runJob.ts';
import type { DeltaTable } from '../../sinks/delta/table.ts';
import type { PgSinkTarget } from '../../sinks/postgres.ts';
import type { DeadLetterRow, EnrichedRecord, KafkaRecord, RecordRef, SinkAck } from '../../types.ts';
import type { WindowedConfig } from './config.ts';

/** One query of a job: its configuration, monitor and late counter, and the source of its topic. */
export interface Query {
  readonly config: WindowedConfig;
  readonly monitor: PipelineMonitor;
  /** The metrics label of the query (its topic). */
  readonly topic: string;
  readonly late: Counter<'topic'>;
  /** The running source (absent in tests): cuts batches early under pressure, names the partitions the watermark waits for. */
  readonly source?: ChainSource | undefined;
}

/** The options every sink of a query takes: the pipeline id, and writes reported to the monitor. */
export function reported(q: Query, table: string, deadLetters = false) {
  return {
    pipelineId: q.config.pipelineId,
    onWriteError: (err: Error) => q.monitor.writeFailed(table, err),
    onWrite: (ack: SinkAck) => q.monitor.writeSucceeded(ack, deadLetters),
  };
}

/** Batches (`BATCH_*`, cut early when the source waits for acknowledgements) into a sink. */
export function batched<T>(q: Query, sink: OperatorFunction<T[], SinkAck>): OperatorFunction<T, SinkAck> {
  const { batch } = q.config;
  return batchInto(sink, { timeSpan: batch.timeSpanMs, maxRecords: batch.maxRecords, maxBytes: batch.maxBytes, pressure: q.source });
}

/**
 * Rows into a Delta table, in batches, exactly once (`txn` per partition). A batch reaches the
 * table in chunks (`BATCH_CHUNK_RECORDS`), each encoded on arrival, so rows do not live until
 * their batch is complete (and so are not copied out of V8's young generation).
 */
export function intoDelta<Row extends RecordRef>(q: Query, table: DeltaTable<Row>, deadLetters = false): OperatorFunction<Row, SinkAck> {
  const { batch } = q.config;
  return batchInto(deltaSink(table, reported(q, table.name, deadLetters)), {
    timeSpan: batch.timeSpanMs,
    maxRecords: batch.maxRecords,
    maxBytes: batch.maxBytes,
    chunkRecords: batch.chunkRecords,
    pressure: q.source,
  });
}

/** Rows into a PostgreSQL table, in batches, exactly once (offsets in the same transaction). */
export function intoPg<Row extends RecordRef>(q: Query, table: PgSinkTarget<Row>, deadLetters = false): OperatorFunction<Row, SinkAck> {
  return batched(q, pgSink(table, reported(q, table.qualifiedName, deadLetters)));
}

export interface TypedQuery<A, Row> {
  /** The event contract: records it rejects are quarantined. It must not transform (its `is` stands in for `decode`). */
  readonly codec: t.Decoder<unknown, A> & { readonly is: (value: unknown) => boolean };
  /** The typed row of a valid record. */
  readonly row: (record: Routed<EnrichedRecord, A>) => Row;
  /** Where typed rows go: each branch acknowledges every row (`intoDelta`, `intoPg`, `windowed`). */
  readonly outputs: readonly OperatorFunction<Row, SinkAck>[];
  /** Where the dead-letter rows of rejected records go (`intoDelta(q, table, true)`, …). */
  readonly quarantine: OperatorFunction<DeadLetterRow, SinkAck>;
  /** Every record as read, valid or not (a bronze table), besides the above. */
  readonly raw?: OperatorFunction<EnrichedRecord, SinkAck> | undefined;
}

/**
 * A topic's query: raw records in, acknowledgements out. A record is acknowledged once it is in
 * quarantine, or in every output (and, with `raw`, in the raw table too).
 */
export function typedQuery<A, Row>(q: Query, spec: TypedQuery<A, Row>): OperatorFunction<KafkaRecord, SinkAck> {
  const { codec } = spec;
  const { config } = q;
  const [first, ...more] = spec.outputs;
  if (first === undefined) throw new TypeError('typedQuery: give at least one output');
  const typed = withDeadLetters(
    (quarantine) =>
      pipe(
        routeErrors(codec, quarantine, { maxPayloadBytes: config.maxPayloadBytes, enabled: config.dlq.enabled, accepts: (value) => codec.is(value) }),
        map(spec.row),
        more.length === 0 ? first : fanOut(first, ...more),
      ),
    pipe(
      tap((row: DeadLetterRow) => q.monitor.dlqRecords.inc({ topic: q.topic, error_type: row.error_type })),
      spec.quarantine,
    ),
  );
  return pipe(
    enrichMetadata(),
    spec.raw === undefined ? typed : fanOut(spec.raw, typed),
    tap((ack) => q.monitor.recordsIn.inc({ topic: q.topic }, ack.refs.length)),
  );
}

export interface Windowed<Row, A> {
  readonly key: (row: Row) => string;
  /** Event time, epoch ms. */
  readonly eventTime: (row: Row) => number;
  readonly aggregate: WindowAggregate<Row, A>;
  /** Where the watermark starts (`windowResumeWatermark` of the tables `sink` writes). */
  readonly initialWatermark: number;
  /** `windowSink(…)` of the window tables. */
  readonly sink: OperatorFunction<readonly WindowResult<A>[], SinkAck>;
}

/**
 * Tumbling windows (`WINDOW_SECONDS`) of typed rows per key, closed by a watermark per Kafka
 * partition (`WATERMARK_DELAY_SECONDS`, `WATERMARK_IDLE_SECONDS`) over the partitions assigned,
 * written through `sink`; late rows are counted and acknowledged.
 */
export function windowed<Row extends RecordRef, A>(q: Query, w: Windowed<Row, A>): OperatorFunction<Row, SinkAck> {
  const { config, topic, late } = q;
  return tumblingWindow({
    size: config.windowMs,
    watermarkDelay: config.watermarkDelayMs,
    idleTimeout: config.watermarkIdleMs,
    initialWatermark: w.initialWatermark,
    key: w.key,
    eventTime: w.eventTime,
    aggregate: w.aggregate,
    watermarkBy: kafkaPartition(),
    watermarkSources: q.source?.assignment$,
    late: { next: () => late.inc({ topic }) },
    sinkTimeSpan: config.batch.timeSpanMs,
    sink: w.sink,
  });
}

/** What such a job counts and tells at the end of a run. */
export interface EventSummary {
  readonly recordsWritten: number;
  readonly quarantined: number;
  readonly late: number;
  readonly commits: number;
}

/**
 * The late counter of a job's run (`rxlake_late_records_total`), and its progress line and
 * summary (written, quarantined, late, lag, …).
 */
export function eventCounts(monitor: PipelineMonitor): { readonly late: Counter<'topic'> } & Pick<OpenJob<EventSummary>, 'progress' | 'summary'> {
  const late = new Counter({ name: 'rxlake_late_records_total', help: 'Records dropped because the watermark had closed their window', labelNames: ['topic'], registers: [monitor.registry] });
  const lateTotal = async (): Promise<number> => (await late.get()).values.reduce((n, v) => n + v.value, 0);
  return {
    late,
    progress: async ({ rate, lag, inFlight, health }) => ({
      rows_per_s: rate,
      written: health.recordsWritten,
      quarantined: health.dlqRecords,
      late: await lateTotal(),
      lag,
      in_flight: inFlight,
      status: health.status,
    }),
    summary: async (totals: JobSummary) => ({ recordsWritten: totals.recordsWritten, quarantined: totals.deadLetters, late: await lateTotal(), commits: totals.commits }),
  };
}

/** What to do after such a job failed: `DLQ_ENABLED=false` stopped it, or the hint every job gives. */
export function eventFailedHint(err: unknown): string | undefined {
  return err instanceof DeadLetterError ? 'DLQ_ENABLED=false stops the job at the first bad event. Set DLQ_ENABLED=true to quarantine bad events.' : jobFailureHint(err);
}

/** The fields of the line a job logs when it ended well. */
export function eventFinished(s: EventSummary): Record<string, unknown> {
  return { written: s.recordsWritten, quarantined: s.quarantined, late: s.late, commits: s.commits };
}
