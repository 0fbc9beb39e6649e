/**
 * windowSink: closed windows into a Delta table (a real `DeltaTable` on `memoryStorage`) and a
 * PostgreSQL table (in memory, keeping `PgTable`'s upsert contract), in virtual time
 * (`runWithPromises`). What is pinned: one commit and one transaction per array of windows,
 * acknowledgements of the windows' records once every table holds them, the `txn` version as
 * the largest window end, a replay skipped by Delta and replaced in PostgreSQL, the layouts, and
 * the resume watermark.
 */
import { map, timer } from 'rxjs';
import type { Observable, SchedulerLike } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { WindowResult } from '../../src/operators/tumblingWindow.ts';
import { countOf, maxOf, sumOf, windowAggregate } from '../../src/operators/windowAggregate.ts';
import { windowDeltaSpec, windowPgSpec, windowResumeWatermark, windowSink } from '../../src/operators/windowSink.ts';
import type { WindowRow } from '../../src/operators/windowSink.ts';
import { memoryStorage } from '../../src/sinks/delta/memoryStorage.ts';
import type { MemoryStorage } from '../../src/sinks/delta/memoryStorage.ts';
import { readColumns } from '../../src/sinks/delta/parquet.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { PgSinkTarget, PgTable, PgWriteResult } from '../../src/sinks/postgres.ts';
import type { RecordRef, SinkAck } from '../../src/types.ts';
import { runWithPromises } from './promiseMarbles.ts';
import type { PromiseMarbles } from './promiseMarbles.ts';

interface Sale extends RecordRef {
  readonly product: string;
  readonly amount: number;
}

const aggregate = windowAggregate({ revenue: sumOf((s: Sale) => s.amount), sales: countOf(), top: maxOf((s: Sale) => s.amount) });
type W = WindowResult<ReturnType<typeof aggregate.init>>;
const layout = { name: 'sales_1m', keyColumn: 'product_id', aggregate, dateColumn: 'window_date' };

const ref = (offset: number): RecordRef => ({ topic: 'sales', partition: 0, offset: BigInt(offset) });

/** A closed window of `product` starting at `start` (60 s long) over records at these offsets, each of amount = offset. */
function win(product: string, start: number, ...offsets: number[]): W {
  let value = aggregate.init();
  for (const o of offsets) value = aggregate.add(value, { ...ref(o), product, amount: o });
  return { key: product, start, end: start + 60_000, value, count: offsets.length, refs: offsets.map(ref), watermark: start + 60_000, lateDropped: 0 };
}

/** An in-memory PostgreSQL window table: writes take `latency` frames and land whole; upserts on (key, start). */
class MemoryPg implements PgSinkTarget<W> {
  readonly qualifiedName = 'shop.sales_1m';
  readonly rows = new Map<string, { revenue: number | null; sales: number }>();
  readonly starts: number[] = [];
  readonly #scheduler: SchedulerLike;
  readonly #latency: number;
  constructor(scheduler: SchedulerLike, latency: number) {
    this.#scheduler = scheduler;
    this.#latency = latency;
  }
  write(rows: readonly W[]): Observable<PgWriteResult> {
    this.starts.push(this.#scheduler.now());
    return timer(this.#latency, this.#scheduler).pipe(
      map(() => {
        for (const w of rows) this.rows.set(`${w.key}@${w.start}`, { revenue: w.value.revenue, sales: w.value.sales });
        return { rows: rows.length, skipped: 0, replayed: 0 };
      }),
    );
  }
}

/** A Delta window table on a memory store whose commits take `latency` frames. */
async function deltaTable(m: PromiseMarbles, latency: number): Promise<{ table: DeltaTable<WindowRow<W['value']>>; storage: MemoryStorage; commits: number[] }> {
  let armed = false;
  const commits: number[] = [];
  const storage = memoryStorage({
    before: ({ op, path }) => {
      if (!armed || op !== 'putIfAbsent' || !path.startsWith('_delta_log/')) return undefined;
      commits.push(m.scheduler.frame);
      return m.delay(latency);
    },
  });
  const table = await DeltaTable.openOrCreate(storage, windowDeltaSpec<W['value']>(layout), { encoder: 'inline' });
  armed = true;
  return { table, storage, commits };
}

/** `product@startMs:sales` of each window row in the store's committed files. */
async function rowsIn(storage: MemoryStorage): Promise<string[]> {
  const out: string[] = [];
  for (const [path, bytes] of storage.files) {
    if (!path.startsWith('_delta_log/') || !path.endsWith('.json')) continue;
    for (const line of new TextDecoder().decode(bytes).split('\n')) {
      const add = line ? (JSON.parse(line) as { add?: { path: string } }).add : undefined;
      if (!add) continue;
      const [products, starts, sales] = await readColumns(storage.files.get(decodeURI(add.path)) as Uint8Array, ['product_id', 'window_start', 'sales']);
      (products ?? []).forEach((p, i) => out.push(`${new TextDecoder().decode(p as Uint8Array)}@${Number(starts?.[i]) / 1000}:${String(sales?.[i])}`));
    }
  }
  return out.sort();
}

const acked = (acks: readonly SinkAck[]): number[] => acks.flatMap((a) => a.refs.map((r) => Number(r.offset))).sort((a, b) => a - b);

describe('windowSink', () => {
  it('writes each array of windows as one Delta commit and one PostgreSQL transaction, acknowledging records once both hold them', async () => {
    const acks: SinkAck[] = [];
    let storage: MemoryStorage | undefined;
    let pg: MemoryPg | undefined;
    let delta: DeltaTable<WindowRow<W['value']>> | undefined;
    await runWithPromises(async (m) => {
      const d = await deltaTable(m, 3);
      storage = d.storage;
      delta = d.table;
      pg = new MemoryPg(m.scheduler, 5);
      const e1 = m.hot<readonly W[]>('-a---b-|', { a: [win('p', 0, 0, 2), win('q', 0, 1)], b: [win('p', 60_000, 3, 4)] });
      const out = e1.pipe(windowSink({ delta: { table: d.table, appId: 'shop-sales_1m' }, pg: { table: pg } }));
      // Delta acks at 4 and 8; PostgreSQL at 6 and 11: a record is acknowledged with its window's second table.
      m.expectObservable(out.pipe(map((a) => `${a.table}:${a.refs.map((r) => r.offset).join(',')}`))).toBe('----a-b-c--(d|)', {
        a: 'sales_1m:',
        b: 'shop.sales_1m:0,2,1',
        c: 'sales_1m:',
        d: 'shop.sales_1m:3,4',
      });
      out.subscribe((a) => acks.push(a));
      expect(d.commits).toEqual([]);
    });
    expect(acked(acks)).toEqual([0, 1, 2, 3, 4]);
    expect(await rowsIn(storage as MemoryStorage)).toEqual(['p@0:2', 'p@60000:2', 'q@0:1']);
    expect([...(pg as MemoryPg).rows.keys()].sort()).toEqual(['p@0', 'p@60000', 'q@0']);
    expect((pg as MemoryPg).rows.get('p@0')).toEqual({ revenue: 2, sales: 2 });
    // The txn version is the largest window end committed.
    expect(delta?.txnVersion('shop-sales_1m')).toBe(120_000n);
  });

  it('releases an array\'s records with its first table\'s ack and acknowledges them with its second, per array', async () => {
    await runWithPromises(async (m) => {
      const d = await deltaTable(m, 1);
      const pg = new MemoryPg(m.scheduler, 4);
      const e1 = m.hot<readonly W[]>('-a-b-c---|', { a: [win('p', 0, 0, 2), win('q', 0, 1)], b: [], c: [win('p', 60_000, 3)] });
      const out = e1.pipe(windowSink({ delta: { table: d.table, appId: 'a' }, pg: { table: pg } }));
      // Delta acks at 2 and 6; PostgreSQL at 5 and 9; the empty array is no write and no ack.
      const offsets = (refs: readonly RecordRef[] | undefined): string => (refs ?? []).map((r) => r.offset).join(',');
      m.expectObservable(out.pipe(map((a) => `${a.rows}:${offsets(a.refs)}/${offsets(a.released)}`))).toBe('--a--bc--(d|)', {
        a: '2:/0,2,1',
        b: '2:0,2,1/',
        c: '1:/3',
        d: '1:3/',
      });
    });
  });

  it('a replayed window is skipped by Delta and replaced in PostgreSQL, and its records are acknowledged again', async () => {
    let storage: MemoryStorage | undefined;
    let pg: MemoryPg | undefined;
    await runWithPromises(async (m) => {
      const d = await deltaTable(m, 1);
      storage = d.storage;
      pg = new MemoryPg(m.scheduler, 1);
      const target = { delta: { table: d.table, appId: 'a' }, pg: { table: pg } };
      const e1 = m.hot<readonly W[]>('-a-----|', { a: [win('p', 0, 0, 1)] });
      m.expectObservable(e1.pipe(windowSink(target), map((a) => `${a.rows}/${a.skipped}:${a.refs.length}`))).toBe('--(xy)-|', { x: '1/0:0', y: '1/0:2' });
      // Delta has it: nothing to commit, acknowledged at once.
      const e2 = m.hot<readonly W[]>('-----a-----|', { a: [win('p', 0, 0, 1)] });
      m.expectObservable(e2.pipe(windowSink(target), map((a) => `${a.rows}/${a.skipped}:${a.refs.length}`))).toBe('-----xy----|', { x: '0/1:0', y: '1/0:2' });
    });
    expect(await rowsIn(storage as MemoryStorage)).toEqual(['p@0:2']);
    expect((pg as MemoryPg).starts).toEqual([1, 5]);
  });

  it('writes to one table alone when given one; refuses none', async () => {
    await runWithPromises(async (m) => {
      const d = await deltaTable(m, 2);
      const e1 = m.hot<readonly W[]>('-a-|', { a: [win('p', 0, 7)] });
      m.expectObservable(e1.pipe(windowSink({ delta: { table: d.table, appId: 'a' } }), map((a) => a.refs.map((r) => r.offset)))).toBe('---(x|)', { x: [7n] });
      const pg = new MemoryPg(m.scheduler, 2);
      const e2 = m.hot<readonly W[]>('-a-|', { a: [win('p', 0, 8)] });
      m.expectObservable(e2.pipe(windowSink({ pg: { table: pg } }), map((a) => a.refs.map((r) => r.offset)))).toBe('---(x|)', { x: [8n] });
    });
    expect(() => windowSink({})).toThrow(/give a delta table, a pg table or both/);
  });

  it('completes on empty, stays silent on never, passes errors on, and stops on unsubscribe', async () => {
    const err = new Error('upstream failed');
    let pg: MemoryPg | undefined;
    await runWithPromises(async (m) => {
      const d = await deltaTable(m, 2);
      pg = new MemoryPg(m.scheduler, 4);
      const target = { delta: { table: d.table, appId: 'a' }, pg: { table: pg } };
      m.expectObservable(m.cold<readonly W[]>('|').pipe(windowSink(target))).toBe('|');
      m.expectObservable(m.cold<readonly W[]>('-').pipe(windowSink(target))).toBe('-');
      m.expectObservable(m.cold<readonly W[]>('-#', undefined, err).pipe(windowSink(target))).toBe('-#', undefined, err);
      const e1 = m.hot<readonly W[]>('-a-------|', { a: [win('p', 0, 1)] });
      // Unsubscribed before PostgreSQL answers: no acknowledgement of the window's record.
      m.expectObservable(e1.pipe(windowSink(target), map((a) => a.refs.length)), '^---!').toBe('---a', { a: 0 });
      m.expectSubscriptions(e1.subscriptions).toBe('^---!');
    });
  });

  it('lays window tables out as window_start, window_end, the key, one column per aggregate', () => {
    const deltaSpec = windowDeltaSpec(layout);
    expect(deltaSpec.columns.map((c) => `${c.name}:${c.type}${c.nullable === false ? '!' : ''}`)).toEqual([
      'window_start:timestamp!',
      'window_end:timestamp!',
      'product_id:string!',
      'revenue:double',
      'sales:long!',
      'top:double',
      'window_date:string',
    ]);
    expect(deltaSpec.partitionColumns).toEqual(['window_date']);
    const w = win('p', Date.UTC(2026, 0, 1, 23, 59), 2, 3);
    const row = { ...w, topic: 'p', partition: 0, offset: BigInt(w.end) };
    expect(deltaSpec.columns.map((c) => c.get?.(row))).toEqual([BigInt(w.start) * 1000n, BigInt(w.end) * 1000n, 'p', 5, 2, 3, '2026-01-01']);

    const pgSpec = windowPgSpec({ ...layout, schema: 'shop' });
    expect(pgSpec.columns.map((c) => `${c.name}:${c.type}${c.nullable === false ? '!' : ''}`)).toEqual([
      'window_start:timestamptz!',
      'window_end:timestamptz!',
      'product_id:text!',
      'revenue:double precision',
      'sales:bigint!',
      'top:double precision',
    ]);
    expect(pgSpec.primaryKey).toEqual(['product_id', 'window_start']);
    expect(pgSpec.onConflict).toBe('update');
    expect(pgSpec.schema).toBe('shop');
  });

  it('resumes at the smaller of the tables\' largest window ends, -Infinity while one holds none', async () => {
    const storage = memoryStorage();
    const table = await DeltaTable.openOrCreate(storage, windowDeltaSpec<W['value']>(layout), { encoder: 'inline' });
    const pgAt = (end: string | null) => ({ table: { pool: { query: () => Promise.resolve({ rows: [{ end_ms: end }] }) }, sqlName: '"t"' } as unknown as PgTable<W> });
    expect(await windowResumeWatermark({ delta: { table, appId: 'a' } })).toBe(Number.NEGATIVE_INFINITY);
    await table.append([{ ...win('p', 60_000, 1), topic: 'p', partition: 0, offset: 120_000n }], { dedupe: { appId: () => 'a', offset: (r) => r.offset } });
    expect(await windowResumeWatermark({ delta: { table, appId: 'a' } })).toBe(120_000);
    expect(await windowResumeWatermark({ delta: { table, appId: 'a' }, pg: pgAt('60000') })).toBe(60_000);
    expect(await windowResumeWatermark({ delta: { table, appId: 'a' }, pg: pgAt('180000') })).toBe(120_000);
    expect(await windowResumeWatermark({ delta: { table, appId: 'a' }, pg: pgAt(null) })).toBe(Number.NEGATIVE_INFINITY);
    expect(await windowResumeWatermark({ pg: pgAt('60000') })).toBe(60_000);
    expect(await windowResumeWatermark({ delta: { table, appId: 'other' }, pg: pgAt('60000') })).toBe(Number.NEGATIVE_INFINITY);
  });
});
