import { Observable, Subject, map, merge, pipe } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import type { TableSpec } from '../sinks/delta/schema.ts';
import type { DeltaTable } from '../sinks/delta/table.ts';
import type { PgSinkTarget, PgTable, PgTableSpec } from '../sinks/postgres.ts';
import type { RecordRef, SinkAck } from '../types.ts';
import { ackSources } from './ackSources.ts';
import { deltaSink } from './deltaSink.ts';
import type { DeltaSinkOptions } from './deltaSink.ts';
import { pgSink } from './pgSink.ts';
import type { PgSinkOptions } from './pgSink.ts';
import type { WindowResult } from './tumblingWindow.ts';
import type { AggregateKind } from './windowAggregate.ts';

/**
 * A window as a Delta row. `deltaSink` keeps exactly-once by (appId, offset) of a row: under the
 * one appId of a window table, `offset` is the window's end (ms), so a commit's `txn` version is
 * the largest window end it holds; `topic` is the window's key, so no two windows of a batch
 * share a (topic, partition, offset).
 */
export type WindowRow<A> = WindowResult<A> & RecordRef;

/** Where `windowSink` writes: a Delta table, a PostgreSQL table, or both. */
export interface WindowSinkTargets<A> {
  /** The Delta table, and the `txn` appId under which its commits record the largest window end they hold. */
  readonly delta?: { readonly table: DeltaTable<WindowRow<A>>; readonly appId: string; readonly options?: Omit<DeltaSinkOptions, 'appId' | 'pipelineId'> } | undefined;
  /** The PostgreSQL table (upserted on its key: a window written again is replaced). */
  readonly pg?: { readonly table: PgSinkTarget<WindowResult<A>>; readonly options?: Omit<PgSinkOptions<WindowResult<A>>, 'refsOf' | 'exactlyOnce' | 'appId' | 'pipelineId'> } | undefined;
}

/**
 * Writes closed windows to a Delta table, a PostgreSQL table or both, exactly once, and
 * acknowledges their records: the `sink` of `tumblingWindow`.
 *
 * Each array of windows (what one watermark advance closes, or `sinkTimeSpan` gathers) is one
 * Delta commit and one PostgreSQL transaction; a window's records are acknowledged once every
 * table holds it (bookkept per array of windows, not per record). Delta: each commit records
 * the largest window end it holds as the `txn` version of `delta.appId`, and windows at or below
 * the recorded version are skipped.
 * PostgreSQL: an upsert on the table's key (`windowPgSpec`: key and window start), so a window
 * written again replaces itself.
 *
 * What makes a restart exact: start `tumblingWindow`'s watermark at `windowResumeWatermark(…)`
 * of the same tables, the smaller of their largest window ends. Windows at or below it are in
 * every table, and their records read again are late (acknowledged, never written: a partial
 * re-read cannot overwrite a complete window); windows above it are complete again (none of
 * their records was acknowledged, so all are read again) and a table that already holds one
 * skips it (Delta) or replaces it with the same values (PostgreSQL; `windowAggregate`'s sums do
 * not depend on the order the records come back in).
 *
 * ## Example
 * ```ts
 * const aggregate = windowAggregate({ txn_count: countOf(), sum_amount: sumOf((t: Txn) => t.amount) });
 * const layout = { name: 'card_1m', keyColumn: 'card_id', aggregate };
 * const delta = { table: await DeltaTable.openOrCreate(storage.sub('card_1m'), windowDeltaSpec(layout)), appId: 'cards-card_1m' };
 * const pg = { table: await PgTable.openOrCreate(pool, windowPgSpec(layout)) };
 * txns$.pipe(
 *   tumblingWindow({
 *     size: 60_000, watermarkDelay: 300_000, key: (t) => t.card_id, eventTime: (t) => t.ts, aggregate,
 *     initialWatermark: await windowResumeWatermark({ delta, pg }),
 *     sink: windowSink({ delta, pg }),
 *   }),
 *   commitOffsets(source),
 * );
 * ```
 *
 * @param targets `delta` (table, `txn` appId, `deltaSink` options) and/or `pg` (table, `pgSink` options).
 * @return A function from arrays of closed windows to acknowledgements of their records.
 */
export function windowSink<A>(targets: WindowSinkTargets<A>): OperatorFunction<readonly WindowResult<A>[], SinkAck>;
export function windowSink<A>(targets: WindowSinkTargets<A>): OperatorFunction<readonly WindowResult<A>[], SinkAck> {
  const { delta, pg } = targets;
  if (delta === undefined && pg === undefined) throw new TypeError('windowSink: give a delta table, a pg table or both');
  const { appId } = delta ?? { appId: '' };
  const row = (w: WindowResult<A>): WindowRow<A> => ({ ...w, topic: w.key, partition: 0, offset: BigInt(w.end) });
  const intoDelta = delta && pipe(map((ws: readonly WindowResult<A>[]) => ws.map(row)), deltaSink(delta.table, { ...delta.options, appId: () => appId }));
  if (pg === undefined) return ackSources(intoDelta as OperatorFunction<readonly WindowResult<A>[], SinkAck>, (w) => w.refs);
  if (intoDelta === undefined) return pgSink(pg.table, { ...pg.options, refsOf: (w) => w.refs });
  // Both: the windows' refs are gathered by `everyTable`, once per array, not by each sink.
  return everyTable([intoDelta, pgSink(pg.table, { ...pg.options, refsOf: () => NO_REFS })]);
}

const NO_REFS: readonly RecordRef[] = [];

/**
 * The sinks side by side on the same arrays of windows, each acknowledging every non-empty array
 * with one ack, in order (`deltaSink`, `pgSink`): a sink's ack of an array carries the refs of
 * the array's windows once every sink has acknowledged it, as `released` when it is the array's
 * first (their memory is no longer held), and none otherwise. What `fanOut` gives, with the
 * bookkeeping per array rather than per record.
 */
function everyTable<A>(sinks: readonly OperatorFunction<readonly WindowResult<A>[], SinkAck>[]): OperatorFunction<readonly WindowResult<A>[], SinkAck> {
  const all = (1 << sinks.length) - 1;
  return (source) =>
    new Observable<SinkAck>((subscriber) => {
      /** Arrays written and not yet acknowledged by every sink, oldest first (they complete in order). */
      const pending: { readonly windows: readonly WindowResult<A>[]; refs: RecordRef[] | undefined; acked: number }[] = [];
      /** Arrays acknowledged by every sink so far: `pending[0]` is the array of that number. */
      let done = 0;
      const shared = new Subject<readonly WindowResult<A>[]>();
      const outputs = sinks.map((sink, i) => {
        const bit = 1 << i;
        /** Number of the next array this sink acknowledges. */
        let next = 0;
        return new Observable<SinkAck>((inner) =>
          shared.pipe(sink).subscribe({
            next: (ack) => {
              const batch = pending[next - done];
              if (batch === undefined || ack.rows + ack.skipped !== batch.windows.length) {
                const what = batch === undefined ? 'more arrays than it was given' : `an array of ${batch.windows.length} windows with an ack of ${ack.rows + ack.skipped} (rows + skipped)`;
                inner.error(new Error(`windowSink: table ${ack.table} acknowledged ${what}; a sink must emit one ack per non-empty array, in order`));
                return;
              }
              next += 1;
              const first = batch.acked === 0;
              batch.acked |= bit;
              const refs = (batch.refs ??= refsOf(batch.windows));
              const { released: _ignored, ...rest } = ack;
              if (batch.acked === all) {
                pending.shift();
                done += 1;
                inner.next({ ...rest, refs });
              } else {
                inner.next(first ? { ...rest, refs: NO_REFS, released: refs } : { ...rest, refs: NO_REFS });
              }
            },
            error: (err: unknown) => inner.error(err),
            complete: () => inner.complete(),
          }),
        );
      });
      const out = merge(...outputs).subscribe(subscriber);
      const input = source.subscribe({
        next: (windows) => {
          if (windows.length === 0) return;
          pending.push({ windows, refs: undefined, acked: 0 });
          shared.next(windows);
        },
        error: (err: unknown) => shared.error(err),
        complete: () => shared.complete(),
      });
      return () => {
        input.unsubscribe();
        out.unsubscribe();
      };
    });
}

/** The refs of an array's windows, in order. */
function refsOf<A>(windows: readonly WindowResult<A>[]): RecordRef[] {
  const refs: RecordRef[] = [];
  for (const w of windows) for (const r of w.refs) refs.push(r);
  return refs;
}

/**
 * Where a restarted `tumblingWindow` writing through `windowSink` starts its watermark: the
 * smaller of the tables' largest window ends (ms) — Delta's from its `txn` version, PostgreSQL's
 * `max(window_end)` — or `-Infinity` while any of them holds none.
 *
 * ## Example
 * ```ts
 * tumblingWindow({ ..., initialWatermark: await windowResumeWatermark({ delta, pg }), sink: windowSink({ delta, pg }) });
 * ```
 *
 * @param targets The tables `windowSink` writes: `delta` (table and appId) and/or `pg` (a
 * `PgTable`, and the column of window ends if not `window_end`).
 * @return The watermark to start from, epoch ms.
 */
export async function windowResumeWatermark<A>(targets: {
  readonly delta?: { readonly table: DeltaTable<WindowRow<A>>; readonly appId: string } | undefined;
  readonly pg?: { readonly table: PgTable<WindowResult<A>>; readonly endColumn?: string } | undefined;
}): Promise<number> {
  const ends: number[] = [];
  const { delta, pg } = targets;
  if (delta !== undefined) {
    await delta.table.refresh();
    const version = delta.table.txnVersion(delta.appId);
    if (version === undefined) return Number.NEGATIVE_INFINITY;
    ends.push(Number(version));
  }
  if (pg !== undefined) {
    const column = `"${(pg.endColumn ?? 'window_end').replaceAll('"', '""')}"`;
    const res = await pg.table.pool.query<{ end_ms: string | null }>(`SELECT (extract(epoch FROM max(${column})) * 1000)::bigint::text AS end_ms FROM ${pg.table.sqlName}`);
    const end = res.rows[0]?.end_ms;
    if (end === undefined || end === null) return Number.NEGATIVE_INFINITY;
    ends.push(Number(end));
  }
  return ends.length === 0 ? Number.NEGATIVE_INFINITY : Math.min(...ends);
}

/** What a window table holds: its name, the key's column and the named aggregates (their `fields`). */
export interface WindowLayout {
  readonly name: string;
  /** Column of the window's key (e.g. `product_id`). */
  readonly keyColumn: string;
  /** The aggregate (`windowAggregate`): one column per field — counts `long`/`bigint`, the others `double`/`double precision`. */
  readonly aggregate: { readonly fields: readonly { readonly name: string; readonly kind: AggregateKind }[] };
  /** Delta only: a partition column of this name holding the UTC `YYYY-MM-DD` of the window start. */
  readonly dateColumn?: string | undefined;
  /** PostgreSQL only: the table's schema (default the connection's `search_path`). */
  readonly schema?: string | undefined;
}

const micros = (ms: number): bigint => BigInt(ms) * 1000n;
const field = (name: string) => (w: WindowResult<unknown>): unknown => (w.value as Readonly<Record<string, unknown>>)[name];

/**
 * The Delta layout of a window table: `window_start`, `window_end` (timestamps), the key column,
 * one column per aggregate field (`windowAggregate`), and optionally a date partition column.
 *
 * ## Example
 * ```ts
 * const table = await DeltaTable.openOrCreate(storage.sub('card_1m'), windowDeltaSpec({ name: 'card_1m', keyColumn: 'card_id', aggregate }));
 * ```
 *
 * @param layout Name, key column, aggregate, and `dateColumn`.
 * @return The table spec, for `DeltaTable.openOrCreate`; rows are `WindowRow`s (`windowSink` makes them).
 */
export function windowDeltaSpec<A>(layout: WindowLayout): TableSpec<WindowRow<A>> {
  const { dateColumn } = layout;
  return {
    name: layout.name,
    columns: [
      { name: 'window_start', type: 'timestamp', nullable: false, get: (w) => micros(w.start) },
      { name: 'window_end', type: 'timestamp', nullable: false, get: (w) => micros(w.end) },
      { name: layout.keyColumn, type: 'string', nullable: false, get: (w) => w.key },
      ...layout.aggregate.fields.map((f) => ({ name: f.name, type: f.kind === 'count' ? ('long' as const) : ('double' as const), nullable: f.kind !== 'count', get: field(f.name) })),
      ...(dateColumn === undefined ? [] : [{ name: dateColumn, type: 'string' as const, get: (w: WindowRow<A>) => new Date(w.start).toISOString().slice(0, 10) }]),
    ],
    ...(dateColumn === undefined ? {} : { partitionColumns: [dateColumn] }),
  };
}

/**
 * The PostgreSQL layout of a window table: `window_start`, `window_end` (`timestamptz`), the key
 * column, one column per aggregate field; primary key (key, `window_start`), upserted with
 * `ON CONFLICT … DO UPDATE` (a window written again replaces itself).
 *
 * ## Example
 * ```ts
 * const table = await PgTable.openOrCreate(pool, windowPgSpec({ name: 'product_metrics_minute', keyColumn: 'product_id', aggregate }));
 * ```
 *
 * @param layout Name, key column, aggregate, and `schema`.
 * @return The table spec, for `PgTable.openOrCreate`.
 */
export function windowPgSpec<A>(layout: WindowLayout): PgTableSpec<WindowResult<A>> {
  return {
    name: layout.name,
    ...(layout.schema === undefined ? {} : { schema: layout.schema }),
    columns: [
      { name: 'window_start', type: 'timestamptz', nullable: false, get: (w) => micros(w.start) },
      { name: 'window_end', type: 'timestamptz', nullable: false, get: (w) => micros(w.end) },
      { name: layout.keyColumn, type: 'text', nullable: false, get: (w) => w.key },
      ...layout.aggregate.fields.map((f) => ({ name: f.name, type: f.kind === 'count' ? 'bigint' : 'double precision', nullable: f.kind !== 'count', get: field(f.name) })),
    ],
    primaryKey: [layout.keyColumn, 'window_start'],
    onConflict: 'update',
  };
}
