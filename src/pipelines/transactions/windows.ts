/**
 * Per-account tumbling-window aggregates of a typed topic (count, sum, avg, max of `amount`),
 * written to a Delta table and a PostgreSQL table, exactly once in both:
 *
 * - A window is final when the watermark passes its end; the windows one watermark advance
 *   closes are written together (one Delta commit, one PostgreSQL transaction), in order of their
 *   end (`tumblingWindow` with a `sink`).
 * - Its source records are acknowledged only when both tables hold it (`fanOut` of the two
 *   sinks, each acknowledging the windows' records), so offsets are never committed past a
 *   record whose window is not durable in both. A record whose window was already closed (late)
 *   is dropped, counted and acknowledged at once by `tumblingWindow`.
 * - Each Delta commit records the largest window end it holds as the `txn` version of
 *   `<pipelineId>-<query>-windows`; PostgreSQL holds it as `max(window_end)`. After a restart the
 *   watermark starts at the smaller of the two: replayed records of windows both tables hold are
 *   late (a partial replay never overwrites a complete window), windows one table lacks are
 *   complete again (none of their records was acknowledged) and the other skips them (Delta:
 *   windows at or below its recorded end; PostgreSQL: an idempotent upsert of equal values).
 * - Windows still open when the source ends (a stop, or the end of a bounded run) are not
 *   written: their records stay unacknowledged and are read again next time.
 * - The watermark is kept per Kafka partition (`topic/partition`) and is the minimum over the
 *   partitions assigned and not idle, so a consumer catching up, which reads a batch of one
 *   partition then one of the next, does not drop the other partitions' records as late.
 */
import { map, pipe } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { ackSources } from '../../operators/ackSources.ts';
import { deltaSink } from '../../operators/deltaSink.ts';
import type { DeltaSinkOptions } from '../../operators/deltaSink.ts';
import { fanOut } from '../../operators/fanOut.ts';
import { pgSink } from '../../operators/pgSink.ts';
import type { PgSinkOptions } from '../../operators/pgSink.ts';
import type { AmountStats, WindowResult } from '../../operators/tumblingWindow.ts';
import type { TableSpec } from '../../sinks/delta/schema.ts';
import type { DeltaTable } from '../../sinks/delta/table.ts';
import type { PgTable, PgTableSpec } from '../../sinks/postgres.ts';
import type { RecordRef, SinkAck } from '../../types.ts';

/** One closed window of one account, as `tumblingWindow` gives it: `refs` are its records. */
export type AccountWindow = WindowResult<AmountStats>;

/**
 * A window as `deltaSink` takes it, which keeps exactly-once by (appId, offset) of a row: under
 * one appId per query (`windowsAppId`), `offset` is the window's end (ms), so a commit's `txn`
 * version is the largest window end it holds; `topic` is the account, so no two windows of a
 * batch share a key. Nothing else reads them: the acknowledgements list the windows' records.
 */
export type DeltaWindow = AccountWindow & RecordRef;

export function windowTableName(topic: string, windowMs: number): string {
  return `${topic}_by_account_${windowMs % 60_000 === 0 ? `${windowMs / 60_000}m` : `${windowMs / 1000}s`}`;
}

const micros = (ms: number): bigint => BigInt(ms) * 1000n;

export function windowDeltaSpec(name: string): TableSpec<DeltaWindow> {
  return {
    name,
    columns: [
      { name: 'account_id', type: 'string', get: (w) => w.key },
      { name: 'window_start', type: 'timestamp', get: (w) => micros(w.start) },
      { name: 'window_end', type: 'timestamp', get: (w) => micros(w.end) },
      { name: 'event_count', type: 'long', get: (w) => BigInt(w.value.count) },
      { name: 'amount_sum', type: 'double', get: (w) => w.value.sum },
      { name: 'amount_avg', type: 'double', get: (w) => w.value.avg },
      { name: 'amount_max', type: 'double', get: (w) => w.value.max },
      // UTC `YYYY-MM-DD` of the window start.
      { name: 'window_date', type: 'string', get: (w) => new Date(w.start).toISOString().slice(0, 10) },
    ],
    partitionColumns: ['window_date'],
  };
}

export function windowPgSpec(name: string): PgTableSpec<AccountWindow> {
  return {
    name,
    columns: [
      { name: 'account_id', type: 'text', nullable: false, get: (w) => w.key },
      { name: 'window_start', type: 'timestamptz', nullable: false, get: (w) => micros(w.start) },
      { name: 'window_end', type: 'timestamptz', nullable: false, get: (w) => micros(w.end) },
      { name: 'event_count', type: 'bigint', nullable: false, get: (w) => BigInt(w.value.count) },
      { name: 'amount_sum', type: 'double precision', nullable: false, get: (w) => w.value.sum },
      { name: 'amount_avg', type: 'double precision', nullable: false, get: (w) => w.value.avg },
      { name: 'amount_max', type: 'double precision', nullable: false, get: (w) => w.value.max },
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
export async function restartWatermark(delta: DeltaTable<DeltaWindow>, pg: PgTable<AccountWindow>, appId: string): Promise<number> {
  await delta.refresh();
  const inDelta = delta.txnVersion(appId);
  const res = await pg.pool.query<{ end_ms: string | null }>(`SELECT (extract(epoch FROM max(window_end)) * 1000)::bigint::text AS end_ms FROM ${pg.sqlName}`);
  const inPg = res.rows[0]?.end_ms;
  if (inDelta === undefined || inPg === undefined || inPg === null) return Number.NEGATIVE_INFINITY;
  return Math.min(Number(inDelta), Number(inPg));
}

export interface WindowTables {
  /** The window tables' name (`windowTableName`), and their query's name in the `txn` appId. */
  readonly query: string;
  readonly pipelineId: string;
  readonly delta: DeltaTable<DeltaWindow>;
  readonly pg: PgTable<AccountWindow>;
  readonly deltaOptions?: Omit<DeltaSinkOptions, 'appId' | 'pipelineId'>;
  readonly pgOptions?: Omit<PgSinkOptions<AccountWindow>, 'refsOf' | 'exactlyOnce' | 'appId' | 'pipelineId'>;
}

/**
 * Writes closed windows to both tables, each batch as one Delta commit and one PostgreSQL
 * transaction: the `sink` of `tumblingWindow`. A window's records are acknowledged once both
 * tables hold it.
 */
export function windowTables(tables: WindowTables): OperatorFunction<readonly AccountWindow[], SinkAck> {
  const appId = windowsAppId(tables.pipelineId, tables.query);
  const keyed = (w: AccountWindow): DeltaWindow => ({ ...w, topic: w.key, partition: 0, offset: BigInt(w.end) });
  return fanOut<readonly AccountWindow[]>(
    ackSources(pipe(map((ws) => ws.map(keyed)), deltaSink(tables.delta, { ...tables.deltaOptions, appId: () => appId })), (w) => w.refs),
    // The upsert of a window is idempotent: no offsets table.
    pgSink(tables.pg, { ...tables.pgOptions, refsOf: (w) => w.refs }),
  );
}
