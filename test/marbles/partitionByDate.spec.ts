import { Subject, map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { partitionByDate } from '../../src/operators/partitionByDate.ts';
import type { DeadLetterRow } from '../../src/types.ts';
import { enriched, testScheduler } from './records.ts';

const day = (y: number, m: number, d: number, h = 0) => Date.UTC(y, m - 1, d, h);

describe('partitionByDate', () => {
  it('sets _ingestion_date from _ingested_at (µs) by default', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = {
        a: { id: 1, _ingested_at: BigInt(day(2024, 2, 29, 23)) * 1000n },
        b: { id: 2, _ingested_at: BigInt(day(2024, 3, 1)) * 1000n },
      };
      const e1 = hot('  -a-b-|', values);
      expectObservable(e1.pipe(partitionByDate(), map((r) => [r.id, r._ingestion_date]))).toBe('-a-b-|', {
        a: [1, '2024-02-29'],
        b: [2, '2024-03-01'],
      });
      expectSubscriptions(e1.subscriptions).toBe('^----!');
    });
  });

  it('takes any column and timestamps as µs bigint, ms number or Date (UTC)', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      type Row = { id: number; t: bigint | number | Date };
      const values: Record<string, Row> = {
        a: { id: 1, t: BigInt(day(2023, 12, 31, 23)) * 1000n + 999n },
        b: { id: 2, t: day(2024, 1, 1) },
        c: { id: 3, t: new Date(day(2024, 1, 1) - 1) },
        d: { id: 4, t: -1n },
      };
      const e1 = cold(' -abcd|', values);
      const op = partitionByDate({ column: 'event_date', from: (r: Row) => r.t });
      expectObservable(e1.pipe(op, map((r) => `${r.id}:${r.event_date}`))).toBe('-abcd|', {
        a: '1:2023-12-31',
        b: '2:2024-01-01',
        c: '3:2023-12-31',
        d: '4:1969-12-31',
      });
    });
  });

  it('errors on an invalid timestamp from a custom getter', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold(' -a-b|', { a: { t: 0 }, b: { t: Number.NaN } });
      const op = partitionByDate({ column: 'd', from: (r: { t: number }) => r.t });
      expectObservable(e1.pipe(op, map((r) => r.d)), undefined).toBe(
        '-a-#',
        { a: '1970-01-01' },
        new RangeError('partitionByDate: invalid timestamp for column d'),
      );
    });
  });

  it('errors on instants without a YYYY-MM-DD date (outside years 0001-9999) and on a throwing getter', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const op = () =>
        partitionByDate({
          column: 'd',
          from: (r: { t: number }) => {
            if (r.t === 42) throw new Error('no time here');
            return r.t;
          },
        });
      const err = (m: string) => new RangeError(`partitionByDate: invalid timestamp for column d${m}`);
      expectObservable(cold(' -a|', { a: { t: Date.UTC(10000, 0, 1) } }).pipe(op(), map((r) => r.d))).toBe('-#', undefined, err(''));
      expectObservable(cold(' -a|', { a: { t: -62_135_596_800_001 } }).pipe(op(), map((r) => r.d))).toBe('-#', undefined, err(''));
      expectObservable(cold(' -a|', { a: { t: 9e18 } }).pipe(op(), map((r) => r.d))).toBe('-#', undefined, err(''));
      expectObservable(cold(' -a|', { a: { t: 42 } }).pipe(op(), map((r) => r.d))).toBe('-#', undefined, err(': Error: no time here'));
      // The first and last instants that have one.
      expectObservable(cold(' -ab|', { a: { t: -62_135_596_800_000 }, b: { t: 253_402_300_799_999 } }).pipe(op(), map((r) => r.d))).toBe('-ab|', {
        a: '0001-01-01',
        b: '9999-12-31',
      });
    });
  });

  it('with deadLetters: a record whose timestamp gives no date is a PROCESSING_ERROR and the stream goes on', () => {
    const rows: DeadLetterRow[] = [];
    let dlqCompleted = false;
    const dlq = new Subject<DeadLetterRow>();
    dlq.subscribe({ next: (r) => rows.push(r), complete: () => (dlqCompleted = true) });
    const at = (offset: number, event: unknown) => ({ ...enriched(offset, JSON.stringify({ event })), event });
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold(' -abcde|', {
        a: at(0, Date.UTC(2024, 4, 1)),
        b: at(1, 'not a time'),
        c: at(2, 1e300),
        d: at(3, null),
        e: at(4, Date.UTC(2024, 4, 2)),
      });
      const op = partitionByDate({
        column: 'event_date',
        deadLetters: dlq,
        from: (r: ReturnType<typeof at>) => {
          if (r.event === null) throw new TypeError('event is null');
          return r.event as number;
        },
      });
      expectObservable(e1.pipe(op, map((r) => `${r.offset}:${r.event_date}`))).toBe('-a---e|', { a: '0:2024-05-01', e: '4:2024-05-02' });
    });
    expect(rows.map((r) => [r.offset, r.error_type, r.error_message])).toEqual([
      [1n, 'PROCESSING_ERROR', 'partitionByDate: invalid timestamp for column event_date'],
      [2n, 'PROCESSING_ERROR', 'partitionByDate: invalid timestamp for column event_date'],
      [3n, 'PROCESSING_ERROR', 'partitionByDate: invalid timestamp for column event_date: TypeError: event is null'],
    ]);
    expect(rows[0]?.original_payload).toBe(JSON.stringify({ event: 'not a time' }));
    expect(rows[0]?._kafka_timestamp).toBe(enriched(1, '')._kafka_timestamp);
    expect(dlqCompleted).toBe(true);
  });

  it('passes empty, never, errors and early unsubscribe through', () => {
    testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      type R = { _ingested_at: bigint };
      expectObservable(cold<R>('|').pipe(partitionByDate())).toBe('|');
      expectObservable(cold<R>('-').pipe(partitionByDate())).toBe('-');
      expectObservable(cold<R>('--#').pipe(partitionByDate())).toBe('--#');
      const e1 = hot('-a-b-|', { a: { _ingested_at: 0n }, b: { _ingested_at: 0n } });
      expectObservable(e1.pipe(partitionByDate(), map((r) => r._ingestion_date)), '--!').toBe('-a', { a: '1970-01-01' });
      expectSubscriptions(e1.subscriptions).toBe('^-!');
    });
  });
});
