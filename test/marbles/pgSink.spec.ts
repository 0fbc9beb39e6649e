/**
 * pgSink over an in-memory `PgSinkTarget` whose writes are Observables on the test scheduler:
 * fully virtual, so these specs run in `TestScheduler.run`. The table keeps `PgTable.write`'s
 * contract: one atomic transaction per write (applied when the write ends; nothing when it
 * fails or is unsubscribed), upserts on the primary key (the last row of a key wins), and with
 * `appId` exactly-once Kafka records through its offsets (rows at or below the recorded offset
 * are skipped, the new last offset recorded).
 */
import { map, timer } from 'rxjs';
import type { Observable, SchedulerLike } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pgSink } from '../../src/operators/pgSink.ts';
import type { PgSinkOptions } from '../../src/operators/pgSink.ts';
import type { BatchChunk } from '../../src/operators/bufferTime.ts';
import { PgSinkError } from '../../src/sinks/postgres.ts';
import type { PgSinkTarget, PgWriteOptions, PgWriteResult } from '../../src/sinks/postgres.ts';
import type { RecordRef, SinkAck } from '../../src/types.ts';
import { testScheduler } from './records.ts';

interface Txn extends RecordRef {
  readonly id: string;
  readonly amount: number;
}

type Input = readonly Txn[] | BatchChunk<Txn>;

interface Step {
  readonly frames: number;
  readonly error?: Error;
}

/**
 * A PostgreSQL table in memory: a write takes `latency` frames (or, for the next writes, what
 * `plan` says, failing with its error) and then lands all at once. `starts`: the frames writes
 * started at.
 */
class MemoryPgTable<Row extends { readonly id: string } = Txn> implements PgSinkTarget<Row> {
  readonly qualifiedName = 'sales.txns';
  readonly rows = new Map<string, Row>();
  /** Last offset written, by `${appId}/${topic}/${partition}`. */
  readonly offsets = new Map<string, bigint>();
  readonly starts: number[] = [];
  readonly plan: Step[];
  readonly #scheduler: SchedulerLike;
  readonly #latency: number;

  constructor(scheduler: SchedulerLike, latency: number, plan: Step[] = []) {
    this.#scheduler = scheduler;
    this.#latency = latency;
    this.plan = plan;
  }

  write(rows: readonly Row[], opts: PgWriteOptions = {}): Observable<PgWriteResult> {
    this.starts.push(this.#scheduler.now());
    const step = this.plan.shift() ?? { frames: this.#latency };
    return timer(step.frames, this.#scheduler).pipe(
      map(() => {
        if (step.error) throw step.error;
        return this.#commit(rows, opts);
      }),
    );
  }

  #commit(rows: readonly Row[], { appId }: PgWriteOptions): PgWriteResult {
    let keep = rows;
    let replayed = 0;
    if (appId) {
      // Exactly-once: the rows are Kafka records.
      const records = rows as unknown as ReadonlyArray<Row & RecordRef>;
      const last = new Map<string, bigint | undefined>();
      const keyOf = (r: RecordRef): string => `${appId(r)}/${r.topic}/${r.partition}`;
      for (const r of records) last.set(keyOf(r), this.offsets.get(keyOf(r)));
      const kept = records.filter((r) => {
        const done = last.get(keyOf(r));
        return done === undefined || r.offset > done;
      });
      keep = kept;
      replayed = rows.length - kept.length;
      for (const r of kept) {
        const k = keyOf(r);
        const cur = this.offsets.get(k);
        if (cur === undefined || r.offset > cur) this.offsets.set(k, r.offset);
      }
    }
    const byKey = new Map(keep.map((r) => [r.id, r]));
    for (const [id, r] of byKey) this.rows.set(id, r);
    return { rows: byKey.size, skipped: rows.length - byKey.size, replayed };
  }
}

/** Records of topic `payments`, partition 0, at these offsets (id from the offset). */
const txns = (...offsets: number[]): Txn[] => offsets.map((o) => ({ topic: 'payments', partition: 0, offset: BigInt(o), id: `p-${o}`, amount: o }));
const chunk = (last: boolean, ...records: Txn[]): BatchChunk<Txn> => ({ records, last });

function ack(written: number, skipped: number, refs: readonly RecordRef[], durationMs: number): SinkAck {
  return { table: 'sales.txns', version: null, rows: written, skipped, bytes: 0, durationMs, refs };
}

const ids = (table: MemoryPgTable<{ readonly id: string }>): string[] => [...table.rows.keys()].sort();

describe('pgSink', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('completes without emitting on empty', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 2);
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold<Input>('|');
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts }))).toBe('|');
      expectSubscriptions(e1.subscriptions).toBe('(^!)');
    });
  });

  it('never emits on never', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 2);
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold<Input>('-');
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts }))).toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^');
    });
  });

  it('passes an error on at once; the write under way is rolled back, the chunks received are dropped', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 5);
    const err = new Error('upstream failed');
    ts.run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot<Input>('    -a-b-#', { a: txns(0, 1), b: chunk(false, ...txns(2)) }, err);
      const subs = '             ^----!';
      const expected = '         -----#';
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts }))).toBe(expected, undefined, err);
      expectSubscriptions(e1.subscriptions).toBe(subs);
    });
    expect(table.starts).toEqual([1]);
    expect(ids(table)).toEqual([]);
  });

  it('emits nothing after an early unsubscribe, and the write under way is rolled back', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 5);
    ts.run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot<Input>('    -a-b-----c--', { a: txns(0, 1), b: chunk(false, ...txns(2)), c: chunk(true, ...txns(3)) });
      const unsub = '            ^---!';
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts })), unsub).toBe('-');
      expectSubscriptions(e1.subscriptions).toBe(unsub);
    });
    expect(ids(table)).toEqual([]);
    expect(table.offsets.size).toBe(0);
  });

  it('acks in batch order, one write at a time, when batches come while a write is under way', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 1, [{ frames: 4 }, { frames: 1 }, { frames: 1 }]);
    const written: SinkAck[] = [];
    ts.run(({ hot, expectObservable }) => {
      const values = { a: txns(0, 1), b: txns(2), c: txns(3, 4) };
      const e1 = hot<Input>('    -abc------|', values);
      const expected = '         -----xyz--|';
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts, onWrite: (a) => written.push(a) }))).toBe(expected, {
        x: ack(2, 0, values.a, 4),
        y: ack(1, 0, values.b, 1),
        z: ack(2, 0, values.c, 1),
      });
    });
    expect(table.starts).toEqual([1, 5, 6]);
    expect(written.map((a) => a.refs.length)).toEqual([2, 1, 2]);
  });

  it('collects chunks and writes their batch at its last chunk; a partial batch at completion', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 2);
    ts.run(({ hot, expectObservable }) => {
      const [t0, t1, t2, t3] = txns(0, 1, 2, 3) as [Txn, Txn, Txn, Txn];
      const values = { a: chunk(false, t0, t1), b: chunk(true, t2), e: chunk(true), c: chunk(false, t3) };
      const e1 = hot<Input>('    -a-b-e-c-|', values);
      const expected = '         -----x-----(y|)';
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts }))).toBe(expected, { x: ack(3, 0, [t0, t1, t2], 2), y: ack(1, 0, [t3], 2) });
    });
    expect(table.starts).toEqual([3, 9]);
    expect(ids(table)).toEqual(['p-0', 'p-1', 'p-2', 'p-3']);
  });

  it('retries a retriable failure after its backoff, then acks once', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // backoff = 3/4 of its ceiling
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 2, [{ frames: 1, error: new PgSinkError('Connection terminated', { retriable: true }) }]);
    const errors: Array<[string, number]> = [];
    ts.run(({ hot, expectObservable }) => {
      const e1 = hot<Input>('    -a---------|', { a: txns(0, 1) });
      // attempt 1 fails at 2; the backoff (ceiling 4) waits 3; attempt 2 writes from 5 to 7.
      const expected = '         -------x---|';
      const options: PgSinkOptions<Txn> = { scheduler: ts, retry: { initialMs: 4, maxMs: 4 }, onWriteError: (e, n) => errors.push([e.message, n]) };
      expectObservable(e1.pipe(pgSink(table, options))).toBe(expected, { x: ack(2, 0, txns(0, 1), 6) });
    });
    expect(errors).toEqual([['Connection terminated', 1]]);
    expect(table.starts).toEqual([1, 5]);
    expect(ids(table)).toEqual(['p-0', 'p-1']);
  });

  it('errors the stream on a non-retriable failure, and after the last allowed attempt', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const ts = testScheduler();
    const violation = new PgSinkError('PostgreSQL table sales.txns: value too long [22001]', { code: '22001' });
    const refused = new PgSinkError('connect ECONNREFUSED', { retriable: true });
    const t1 = new MemoryPgTable(ts, 2, [{ frames: 1, error: violation }]);
    const t2 = new MemoryPgTable(ts, 2, [{ frames: 1, error: refused }, { frames: 1, error: refused }]);
    const attempts: number[][] = [[], []];
    ts.run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot<Input>('    -a-b---|', { a: txns(0), b: txns(1) });
      expectObservable(e1.pipe(pgSink(t1, { scheduler: ts, onWriteError: (_e, n) => attempts[0]?.push(n) }))).toBe('--#', undefined, violation);
      expectSubscriptions(e1.subscriptions).toBe('^-!');

      const e2 = hot<Input>('    -a---------|', { a: txns(0) });
      // fails at 2, waits 3, fails again at 6: two attempts allowed
      const options: PgSinkOptions<Txn> = { scheduler: ts, retry: { initialMs: 4, maxMs: 4, maxAttempts: 2 }, onWriteError: (_e, n) => attempts[1]?.push(n) };
      expectObservable(e2.pipe(pgSink(t2, options))).toBe('------#', undefined, refused);
    });
    expect(attempts).toEqual([[1], [1, 2]]);
    expect(t1.starts).toEqual([1]);
    expect(ids(t1)).toEqual([]);
  });

  it('errors the stream at its first attempt when rows that are not records come without refsOf', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 2);
    ts.run(({ hot, expectObservable }) => {
      const notRecords = [{ id: 'w-1', amount: 3 }] as unknown as Txn[];
      const e1 = hot<Input>('    -a-|', { a: notRecords });
      const error = expect.objectContaining({ name: 'PgSinkError', message: 'PostgreSQL table sales.txns: rows that are not Kafka records need refsOf' }) as unknown;
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts, exactlyOnce: false }))).toBe('-#', undefined, error);
    });
    expect(table.starts).toEqual([]);
  });

  it('drops a second copy of a record inside a batch, whole or in chunks, counting it as skipped', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 2);
    ts.run(({ hot, expectObservable }) => {
      const [r0, r1, r2, r3, r4, r5] = txns(0, 1, 2, 3, 4, 5) as [Txn, Txn, Txn, Txn, Txn, Txn];
      const values = { a: [r0, r1, r0, r2], b: chunk(false, r3, r4), c: chunk(true, r4, r5, r3) };
      const e1 = hot<Input>('    -a--b-c---|', values);
      const expected = '         ---x----y-|';
      // The ack lists the batch's rows as they came (a repeat twice).
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts }))).toBe(expected, {
        x: ack(3, 1, [r0, r1, r0, r2], 2),
        y: ack(3, 2, [r3, r4, r4, r5, r3], 2),
      });
    });
    expect(ids(table)).toEqual(['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5']);
  });

  it('exactly-once: skips records at or below the recorded offset, acks them, records the new offset', () => {
    const ts = testScheduler();
    const table = new MemoryPgTable(ts, 2);
    // Offsets 0..4 were written before (another run of the same pipeline).
    table.offsets.set('rxlake-payments-0/payments/0', 4n);
    ts.run(({ hot, expectObservable }) => {
      const values = { a: txns(3, 4, 5, 6, 7), b: txns(5, 6, 7), c: chunk(true, ...txns(6, 7, 8, 9)) };
      const e1 = hot<Input>('    -a---b-c---|', values);
      const expected = '         ---x---y-z-|';
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts }))).toBe(expected, {
        x: ack(3, 2, values.a, 2),
        y: ack(0, 3, values.b, 2),
        z: ack(2, 2, txns(6, 7, 8, 9), 2),
      });
    });
    expect(table.offsets).toEqual(new Map([['rxlake-payments-0/payments/0', 9n]]));
    expect(ids(table)).toEqual(['p-5', 'p-6', 'p-7', 'p-8', 'p-9']);
  });

  it('without exactly-once (rows that are not records, refsOf): upserts the rows again on a replay, records no offsets', () => {
    interface Agg {
      readonly id: string;
      readonly amount: number;
      readonly covers: readonly RecordRef[];
    }
    const ts = testScheduler();
    const table = new MemoryPgTable<Agg>(ts, 1);
    ts.run(({ hot, expectObservable }) => {
      const w1: Agg = { id: 'w-1', amount: 10, covers: txns(0, 1) };
      const w1again: Agg = { id: 'w-1', amount: 10, covers: txns(0, 1) };
      const e1 = hot<readonly Agg[]>('  -a-b-|', { a: [w1], b: [w1again] });
      const expected = '                --x-y|';
      expectObservable(e1.pipe(pgSink(table, { scheduler: ts, refsOf: (row: Agg) => row.covers }))).toBe(expected, {
        x: ack(1, 0, txns(0, 1), 1),
        y: ack(1, 0, txns(0, 1), 1),
      });
    });
    expect(table.offsets.size).toBe(0);
    expect(ids(table)).toEqual(['w-1']);
  });
});
