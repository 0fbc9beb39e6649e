import { map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { enrichMetadata } from '../../src/operators/enrichMetadata.ts';
import type { EnrichedRecord, KafkaRecord } from '../../src/types.ts';
import { rec, testScheduler } from './records.ts';

const meta = (r: EnrichedRecord) => ({
  p: r._kafka_partition,
  o: r._kafka_offset,
  ts: r._kafka_timestamp,
  at: r._ingested_at,
  day: r._ingestion_date,
});

describe('enrichMetadata', () => {
  it('adds Kafka metadata and the ingestion time from the scheduler clock', () => {
    const ts = testScheduler();
    ts.run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a--b-|', { a: rec(7, 'x', 2), b: rec(8, 'y', 2) });
      const expected = '-a--b-|';
      expectObservable(e1.pipe(enrichMetadata(ts), map(meta))).toBe(expected, {
        a: { p: 2, o: 7n, ts: 1_700_000_000_007_000n, at: 1_000n, day: '1970-01-01' },
        b: { p: 2, o: 8n, ts: 1_700_000_000_008_000n, at: 4_000n, day: '1970-01-01' },
      });
      expectSubscriptions(e1.subscriptions).toBe('^-----!');
    });
  });

  it('keeps the record fields (bytes untouched) and switches the date at UTC midnight', () => {
    const ts = testScheduler();
    const midnight = Date.UTC(2024, 0, 1);
    const value = new Uint8Array([0xff, 0x00, 0x41]);
    ts.run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-b-c-|', { a: rec(1, value), b: rec(2, 'b'), c: rec(3, 'c') });
      const now = () => midnight - 3 + ts.now();
      expectObservable(e1.pipe(enrichMetadata({ now }), map((r) => [r._ingestion_date, r._ingested_at]))).toBe('-a-b-c-|', {
        a: ['2023-12-31', BigInt(midnight - 2) * 1000n],
        b: ['2024-01-01', BigInt(midnight) * 1000n],
        c: ['2024-01-01', BigInt(midnight + 2) * 1000n],
      });
      expectObservable(e1.pipe(enrichMetadata({ now }), map((r) => r.value === value && r.offset === 1n))).toBe('-a-b-c-|', {
        a: true,
        b: false,
        c: false,
      });
    });
  });

  it('never throws on a hostile Kafka timestamp: one no int64 of µs holds reads as "no timestamp" (-1 ms)', () => {
    const ts = testScheduler();
    const at = (timestamp: number) => ({ ...rec(0, 'v'), timestamp });
    ts.run(({ cold, expectObservable }) => {
      const e1 = cold('-abcdefgh|', {
        a: at(9e18), // a producer may set any int64 timestamp
        b: at(Number.NaN),
        c: at(Number.POSITIVE_INFINITY),
        d: at(-9e18),
        e: at(8.64e15),
        f: at(-1),
        g: at(1_700_000_000_000.5),
        h: at(1_700_000_000_000),
      });
      expectObservable(e1.pipe(enrichMetadata(ts), map((r) => r._kafka_timestamp))).toBe('-abcdefgh|', {
        a: -1000n,
        b: -1000n,
        c: -1000n,
        d: -1000n,
        e: 8_640_000_000_000_000_000n,
        f: -1000n,
        g: 1_700_000_000_000_500n,
        h: 1_700_000_000_000_000n,
      });
    });
  });

  it('keeps extra fields of records that carry more than the source fields', () => {
    const ts = testScheduler();
    ts.run(({ cold, expectObservable }) => {
      const plain = rec(5, 'v');
      const e1 = cold('-a-b|', { a: { ...plain, tenant: 'x' }, b: plain });
      expectObservable(
        e1.pipe(
          enrichMetadata(ts),
          map((r) => ['tenant' in r ? r.tenant : null, r.offset, r.value === plain.value, r._kafka_offset, Object.keys(r).length]),
        ),
      ).toBe('-a-b|', { a: ['x', 5n, true, 5n, 14], b: [null, 5n, true, 5n, 13] });
    });
  });

  it('passes empty, never and errors through', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const empty = cold<KafkaRecord>('|');
      expectObservable(empty.pipe(enrichMetadata())).toBe('|');
      const never = cold<KafkaRecord>('-');
      expectObservable(never.pipe(enrichMetadata())).toBe('-');
      expectSubscriptions(never.subscriptions).toBe('^');
      const err = cold('-a-#', { a: rec(1, 'x') });
      expectObservable(err.pipe(enrichMetadata(), map((r) => r.offset))).toBe('-a-#', { a: 1n });
    });
  });

  it('stops on early unsubscribe', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('-a-b-c-|', { a: rec(1, 'a'), b: rec(2, 'b'), c: rec(3, 'c') });
      expectObservable(e1.pipe(enrichMetadata(), map((r) => r.offset)), '--!').toBe('-a', { a: 1n });
      expectSubscriptions(e1.subscriptions).toBe('^-!');
    });
  });

  it('defaults to the wall clock', async () => {
    const { firstValueFrom, of } = await import('rxjs');
    const before = Date.now();
    const r = await firstValueFrom(of(rec(1, 'x')).pipe(enrichMetadata()));
    const after = Date.now();
    expect(r._ingested_at).toBeGreaterThanOrEqual(BigInt(before) * 1000n);
    expect(r._ingested_at).toBeLessThanOrEqual(BigInt(after) * 1000n);
    expect(r._ingestion_date).toBe(new Date(Number(r._ingested_at / 1000n)).toISOString().slice(0, 10));
  });
});
