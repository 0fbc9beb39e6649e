/**
 * What the jobs that type events and window them (transactions, retail, cards) build their
 * queries from, so that each job is its tables and one `pipe` per topic:
 *
 * - `typedQuery`: raw records → typed rows into their outputs, bad ones into quarantine (and
 *   optionally every raw record into a table of its own), acknowledged once every output holds
 *   them; with the rows' `eventTime`, events dated too far ahead of the clock
 *   (`MAX_EVENT_TIME_LEAD_SECONDS`) into quarantine as well;
 * - `windowed`: typed rows into event-time windows per key, written through `windowSink` once
 *   the watermark (per Kafka partition, over the partitions assigned) passes them;
 * - `intoDelta` / `intoPg`: batches into a table, reported to the job's monitor;
 * - `eventCounts`: the late counter, progress line and summary every such job shows.
 */
import { Observable, map, pipe, tap } from 'rxjs';
import type { Observer, OperatorFunction } from 'rxjs';
import type * as t from 'io-ts';
import { Counter } from 'prom-client';
import { batchInto } from '../../operators/batchInto.ts';
import { deltaSink } from '../../operators/deltaSink.ts';
import { enrichMetadata } from '../../operators/enrichMetadata.ts';
import { fanOut } from '../../operators/fanOut.ts';
import { pgSink } from '../../operators/pgSink.ts';
import { DeadLetterError, deadLetterRowOf, routeErrors } from '../../operators/routeErrors.ts';
import type { Routed } from '../../operators/routeErrors.ts';
import { kafkaPartition, tumblingWindow } from '../../operators/tumblingWindow.ts';
import type { WindowAggregate, WindowResult } from '../../operators/tumblingWindow.ts';
import { withDeadLetters } from '../../operators/withDeadLetters.ts';
import { jobFailureHint } from '../../runtime/jobParts.ts';
import type { PipelineMonitor } from '../../runtime/monitor.ts';
import type { ChainSource, JobSummary, OpenJob } from '../../runtime/runJob.ts';
import type { DeltaTable } from '../../sinks/delta/table.ts';
import type { PgSinkTarget } from '../../sinks/postgres.ts';
import type { DeadLetterErrorType, DeadLetterRow, EnrichedRecord, KafkaRecord, RecordRef, SinkAck } from '../../types.ts';
import { EVENT_TIME_TOO_FAR_AHEAD } from './config.ts';
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
  /**
   * The event time of a row (epoch ms), when an output windows the rows by it: a row dated more
   * than `MAX_EVENT_TIME_LEAD_SECONDS` ahead of the clock is quarantined (see `typedQuery`).
   */
  readonly eventTime?: ((row: Row) => number) | undefined;
}

/**
 * A topic's query: raw records in, acknowledgements out. A record is acknowledged once it is in
 * quarantine, or in every output (and, with `raw`, in the raw table too).
 *
 * With `eventTime` and `MAX_EVENT_TIME_LEAD_SECONDS` (not 0): a valid event dated more than that
 * far ahead of the clock (a producer with a wrong clock, a year 2099) is quarantined as
 * `EVENT_TIME_TOO_FAR_AHEAD` — in no output, so in exactly one table — rather than moving its
 * partition's watermark past every open window, which would make every later event of the
 * partition late. This is `tumblingWindow`'s `maxEventTimeLead` rule, applied before the outputs
 * rather than in the windowing branch: under `fanOut` a record is acknowledged once every branch
 * has acknowledged it, so a record the windows alone sent to quarantine would be acknowledged
 * twice or never; here the quarantine's ack is its one acknowledgement.
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
        spec.eventTime === undefined || config.maxEventTimeLeadMs === undefined ? map(spec.row) : typedWithinLead(spec.row, spec.eventTime, config.maxEventTimeLeadMs, quarantine, config.dlq.enabled),
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

/** `EVENT_TIME_TOO_FAR_AHEAD`, the quarantine error type of `MAX_EVENT_TIME_LEAD_SECONDS`. */
const TOO_FAR_AHEAD: DeadLetterErrorType = EVENT_TIME_TOO_FAR_AHEAD;

/**
 * Typed rows of the valid records whose event time is at most `maxLeadMs` ahead of the clock
 * (`Date.now()`, read per record); the others go to `quarantine` as `EVENT_TIME_TOO_FAR_AHEAD`,
 * the event time and the limit in the message (with dead letters off, `DLQ_ENABLED=false`, the
 * stream errors with a `DeadLetterError` instead, as for any bad event).
 */
function typedWithinLead<R extends Routed<EnrichedRecord, unknown>, Row>(
  rowOf: (record: R) => Row,
  eventTime: (row: Row) => number,
  maxLeadMs: number,
  quarantine: Observer<DeadLetterRow>,
  enabled: boolean,
): OperatorFunction<R, Row> {
  return (source) =>
    new Observable<Row>((subscriber) =>
      source.subscribe({
        next: (record) => {
          let row: Row;
          let t: number;
          try {
            row = rowOf(record);
            t = eventTime(row);
          } catch (err) {
            subscriber.error(err);
            return;
          }
          const now = Date.now();
          if (t - now <= maxLeadMs) {
            subscriber.next(row);
            return;
          }
          const message =
            `event time ${isoOrNumber(t)} is ${((t - now) / 1000).toFixed(0)} s ahead of the clock (${new Date(now).toISOString()}), ` +
            `more than MAX_EVENT_TIME_LEAD_SECONDS=${maxLeadMs / 1000} allows: kept out of the windows, whose watermark it would move past every open window. ` +
            'Fix the producer\'s clock or the event, then replay it; or raise MAX_EVENT_TIME_LEAD_SECONDS (0 turns the check off).';
          const dead = { ...deadLetterRowOf(record, TOO_FAR_AHEAD, message), ...tracingOf(record.decoded) };
          if (enabled) quarantine.next(dead);
          else subscriber.error(new DeadLetterError(dead));
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      }),
    );
}

function isoOrNumber(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** The tracing fields of a decoded event, as a dead-letter row holds them. */
function tracingOf(decoded: unknown): Pick<DeadLetterRow, 'session_id' | 'correlation_id' | 'causation_id'> {
  const o = typeof decoded === 'object' && decoded !== null ? (decoded as Readonly<Record<string, unknown>>) : {};
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return { session_id: text(o.session_id), correlation_id: text(o.correlation_id), causation_id: text(o.causation_id) };
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
