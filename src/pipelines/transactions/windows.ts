/**
 * Per-account tumbling-window aggregates of a typed topic (count, sum, avg, max of `amount`),
 * written to a Delta table and a PostgreSQL table, exactly once in both:
 *
 * - A window is final when the watermark passes its end; the windows one record closes are
 *   written together (one Delta commit, one PostgreSQL transaction), in order of their end.
 * - Its source records are acknowledged only when both tables hold it (`fanOut`), so offsets
 *   are never committed past a record whose window is not durable in both. A record whose
 *   window was already closed (late) is dropped, counted and acknowledged at once.
 * - Each Delta commit records the largest window end it holds as the `txn` version of
 *   `<pipelineId>-<query>-windows`; PostgreSQL holds it as `max(window_end)`. After a restart the
 *   watermark starts at the smaller of the two: replayed records of windows both tables hold are
 *   late (a partial replay never overwrites a complete window), windows one table lacks are
 *   complete again (none of their records was acknowledged) and the other skips them (Delta:
 *   windows at or below its recorded end; PostgreSQL: an idempotent upsert of equal values).
 * - Windows still open when the source ends (a stop, or the end of a bounded run) are not
 *   written: their records stay unacknowledged and are read again next time.
 * - The watermark is kept per Kafka partition (`topic/partition`) and is the minimum over the
 *   partitions not idle, so a consumer catching up, which reads a batch of one partition then
 *   one of the next, does not drop the other partitions' records as late. A partition silent
 *   for `idleTimeoutMs` stops holding it back; windows it then passes are closed by a timer and
 *   written as one group per check.
 */
import { Observable, Subject, map, merge, pipe } from 'rxjs';
import type { Observer, OperatorFunction } from 'rxjs';
import { bufferTime } from '../../operators/bufferTime.ts';
import { deltaSink } from '../../operators/deltaSink.ts';
import type { DeltaSinkOptions } from '../../operators/deltaSink.ts';
import { fanOut } from '../../operators/fanOut.ts';
import { pgSink } from '../../operators/pgSink.ts';
import type { PgSinkOptions } from '../../operators/pgSink.ts';
import { amountStats, tumblingWindow } from '../../operators/tumblingWindow.ts';
import type { AmountStats, WindowResult } from '../../operators/tumblingWindow.ts';
import type { TableSpec } from '../../sinks/delta/schema.ts';
import type { DeltaTable } from '../../sinks/delta/table.ts';
import type { PgTable, PgTableSpec } from '../../sinks/postgres.ts';
import type { RecordRef, SinkAck } from '../../types.ts';
import { eventTimeMs } from './events.ts';
import type { TypedRowBase } from './events.ts';

/**
 * One closed window of one account. It is also a `RecordRef` that names the window: `topic` is
 * `<query>/<account>`, `offset` the window end (ms) — what the Delta sink's exactly-once
 * bookkeeping compares (under one appId per query) and what `fanOut` tells windows apart by;
 * `sources` are the records it aggregates (what its acknowledgement finally covers).
 */
export interface WindowRow extends RecordRef {
  readonly account_id: string;
  /** Epoch µs. */
  readonly window_start: bigint;
  /** Epoch µs (exclusive). */
  readonly window_end: bigint;
  /** UTC `YYYY-MM-DD` of `window_start` (Delta partition column). */
  readonly window_date: string;
  readonly event_count: bigint;
  readonly amount_sum: number;
  readonly amount_avg: number;
  readonly amount_max: number;
  readonly sources: readonly RecordRef[];
}

export function windowTableName(topic: string, windowMs: number): string {
  return `${topic}_by_account_${windowMs % 60_000 === 0 ? `${windowMs / 60_000}m` : `${windowMs / 1000}s`}`;
}

export function windowDeltaSpec(name: string): TableSpec<WindowRow> {
  return {
    name,
    columns: [
      { name: 'account_id', type: 'string' },
      { name: 'window_start', type: 'timestamp' },
      { name: 'window_end', type: 'timestamp' },
      { name: 'event_count', type: 'long' },
      { name: 'amount_sum', type: 'double' },
      { name: 'amount_avg', type: 'double' },
      { name: 'amount_max', type: 'double' },
      { name: 'window_date', type: 'string' },
    ],
    partitionColumns: ['window_date'],
  };
}

export function windowPgSpec(name: string): PgTableSpec<WindowRow> {
  return {
    name,
    columns: [
      { name: 'account_id', type: 'text', nullable: false },
      { name: 'window_start', type: 'timestamptz', nullable: false },
      { name: 'window_end', type: 'timestamptz', nullable: false },
      { name: 'event_count', type: 'bigint', nullable: false },
      { name: 'amount_sum', type: 'double precision', nullable: false },
      { name: 'amount_avg', type: 'double precision', nullable: false },
      { name: 'amount_max', type: 'double precision', nullable: false },
    ],
    primaryKey: ['account_id', 'window_start'],
    onConflict: 'update',
  };
}

/** The `txn` appId under which a Delta window table records the largest window end it holds. */
export function windowsAppId(pipelineId: string, query: string): string {
  return `${pipelineId}-${query}-windows`;
}

/**
 * Where the watermark restarts: the smaller of the two tables' largest window ends (ms), or
 * `-Infinity` while either holds none.
 */
export async function restartWatermark(delta: DeltaTable<WindowRow>, pg: PgTable<WindowRow>, appId: string): Promise<number> {
  await delta.refresh();
  const inDelta = delta.txnVersion(appId);
  const res = await pg.pool.query<{ end_ms: string | null }>(`SELECT (extract(epoch FROM max(window_end)) * 1000)::bigint::text AS end_ms FROM ${pg.sqlName}`);
  const inPg = res.rows[0]?.end_ms;
  if (inDelta === undefined || inPg === undefined || inPg === null) return Number.NEGATIVE_INFINITY;
  return Math.min(Number(inDelta), Number(inPg));
}

export interface AccountWindowsOptions {
  readonly query: string;
  readonly pipelineId: string;
  readonly windowMs: number;
  readonly watermarkDelayMs: number;
  readonly initialWatermark: number;
  readonly delta: DeltaTable<WindowRow>;
  readonly pg: PgTable<WindowRow>;
  readonly deltaOptions?: Omit<DeltaSinkOptions, 'appId' | 'pipelineId'>;
  readonly pgOptions?: Omit<PgSinkOptions<WindowRow>, 'refsOf' | 'exactlyOnce'>;
  /** Hears of every late record dropped. */
  readonly onLate?: (row: TypedRowBase) => void;
  /**
   * Groups of closed windows are gathered for this long (ms) and written together, whole and in
   * order (one Delta commit and one PostgreSQL transaction per write); 0 or unset: each group
   * on its own.
   */
  readonly batchMs?: number;
  /** Hears of every group of windows closed (before they are written). */
  readonly onClosed?: (rows: readonly WindowRow[]) => void;
  /**
   * Watermark sources (`topic/partition`) expected before they send anything, e.g. the
   * partitions assigned to the consumer; asked on every record and idleness check, so it should
   * be cheap. Each holds the watermark back until it sends or goes idle.
   */
  readonly watermarkSources?: () => Iterable<string>;
  /** A partition with no record for this long (ms) no longer holds the watermark back; default 30_000. */
  readonly idleTimeoutMs?: number;
}

/**
 * Typed rows in, acknowledgements out: closed windows (both tables) and late records. See the
 * module comment for the guarantees.
 */
export function accountWindows<Row extends TypedRowBase>(options: AccountWindowsOptions): OperatorFunction<Row, SinkAck> {
  const { query, windowMs } = options;
  const appId = windowsAppId(options.pipelineId, query);
  /** A window ack once both tables hold the windows: it covers the windows' records. */
  const toSources = (ack: SinkAck): SinkAck => {
    const { released: _windows, ...rest } = ack;
    return { ...rest, refs: ack.refs.flatMap((w) => (w as WindowRow).sources) };
  };
  return (rows) =>
    new Observable<SinkAck>((subscriber) => {
      const late = new Subject<Row>();
      const lateAcks = late.pipe(
        map((row): SinkAck => {
          options.onLate?.(row);
          return { table: `${query} (late)`, version: null, rows: 0, skipped: 1, bytes: 0, durationMs: 0, refs: [{ topic: row.topic, partition: row.partition, offset: row.offset }] };
        }),
      );
      const windows = rows.pipe(
        closedWindowGroups<Row>({
          size: windowMs,
          watermarkDelay: options.watermarkDelayMs,
          initialWatermark: options.initialWatermark,
          key: (r) => r.account_id,
          eventTime: eventTimeMs,
          late,
          query,
          ...(options.watermarkSources === undefined ? {} : { watermarkSources: options.watermarkSources }),
          ...(options.idleTimeoutMs === undefined ? {} : { idleTimeout: options.idleTimeoutMs }),
        }),
        map((group) => {
          options.onClosed?.(group);
          return group;
        }),
        // Whole groups, in order, several to a write while catching up (one commit per group
        // would be one per minute of event time).
        options.batchMs !== undefined && options.batchMs > 0
          ? pipe(
              bufferTime<WindowRow[]>({ timeSpan: options.batchMs }),
              map((groups) => groups.flat()),
            )
          : (groups: Observable<WindowRow[]>) => groups,
        // Both tables, settled per window (not per record); then the windows' records.
        fanOut<readonly WindowRow[]>(
          deltaSink(options.delta, { ...options.deltaOptions, appId: () => appId }),
          // The rows name windows, not Kafka records: the upsert is the guarantee, no offsets table.
          pgSink(options.pg, { ...options.pgOptions, exactlyOnce: false }),
        ),
        map(toSources),
      );
      return merge(lateAcks, windows).subscribe(subscriber);
    });
}

/**
 * `tumblingWindow` + `amountStats` with one watermark per partition, emitting the windows each
 * record closes as one array of rows (in order of end, then account), and likewise the windows
 * one idleness check closes (flushed in a microtask, or with the next record if sooner).
 * Windows flushed because the source completed are dropped (see the module comment).
 */
function closedWindowGroups<Row extends TypedRowBase>(o: {
  size: number;
  watermarkDelay: number;
  initialWatermark: number;
  key: (r: Row) => string;
  eventTime: (r: Row) => number;
  late: Observer<Row>;
  query: string;
  watermarkSources?: () => Iterable<string>;
  idleTimeout?: number;
}): OperatorFunction<Row, WindowRow[]> {
  return (source) =>
    new Observable<WindowRow[]>((subscriber) => {
      const input = new Subject<Row>();
      let group: WindowRow[] = [];
      /** Whether a record is being processed (its windows are emitted right after). */
      let inRecord = false;
      let flushQueued = false;
      const emit = (): void => {
        if (group.length === 0 || subscriber.closed) return;
        const g = group;
        group = [];
        subscriber.next(g);
      };
      const windows = input
        .pipe(
          tumblingWindow<Row, AmountStats>({
            size: o.size,
            watermarkDelay: o.watermarkDelay,
            initialWatermark: o.initialWatermark,
            key: o.key,
            eventTime: o.eventTime,
            aggregate: amountStats((r: Row) => r.amount),
            late: o.late,
            watermarkBy: partitionKey(),
            ...(o.watermarkSources === undefined ? {} : { watermarkSources: o.watermarkSources }),
            ...(o.idleTimeout === undefined ? {} : { idleTimeout: o.idleTimeout }),
          }),
        )
        .subscribe({
          next: (w) => {
            // Closed by the watermark (final), not flushed by the source's completion.
            if (w.watermark < w.end) return;
            group.push(windowRow(o.query, w));
            // Closed by an idleness check: the windows it closes arrive together, synchronously.
            if (!inRecord && !flushQueued) {
              flushQueued = true;
              queueMicrotask(() => {
                flushQueued = false;
                emit();
              });
            }
          },
          error: (err: unknown) => subscriber.error(err),
          complete: () => {
            // Final windows an idleness check closed are still written; what the completion
            // flushed (open windows, partial) never is.
            emit();
            subscriber.complete();
          },
        });
      const input$ = source.subscribe({
        next: (row) => {
          inRecord = true;
          try {
            input.next(row);
          } finally {
            inRecord = false;
          }
          emit();
        },
        error: (err: unknown) => input.error(err),
        complete: () => input.complete(),
      });
      return () => {
        input$.unsubscribe();
        windows.unsubscribe();
      };
    });
}

/** `topic/partition` of a row, the string built once per run of rows of one partition. */
function partitionKey(): (row: TypedRowBase) => string {
  let topic: string | undefined;
  let partition = -1;
  let key = '';
  return (row) => {
    if (row.partition !== partition || row.topic !== topic) {
      topic = row.topic;
      partition = row.partition;
      key = `${topic}/${partition}`;
    }
    return key;
  };
}

function windowRow(query: string, w: WindowResult<AmountStats>): WindowRow {
  return {
    topic: `${query}/${w.key}`,
    partition: 0,
    offset: BigInt(w.end),
    account_id: w.key,
    window_start: BigInt(w.start) * 1000n,
    window_end: BigInt(w.end) * 1000n,
    window_date: new Date(w.start).toISOString().slice(0, 10),
    event_count: BigInt(w.value.count),
    amount_sum: w.value.sum,
    amount_avg: w.value.avg,
    amount_max: w.value.max,
    sources: w.refs,
  };
}
