import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { parseIsoTimestampMicros } from '../../src/pipelines/rideshare/codecs.ts';
import {
  MAX_EVENT_MICROS,
  MIN_EVENT_MICROS,
  RefundEvent,
  TransactionEvent,
  corruptTransactionEvent,
  createTransactionGenerator,
  isoSpellings,
  refundRow,
  transactionRow,
} from '../../src/pipelines/transactions/events.ts';
import type { EnrichedRecord } from '../../src/types.ts';

const dec = new TextDecoder();
const parse = (b: Uint8Array): unknown => JSON.parse(dec.decode(b));

function enriched(value: Uint8Array, topic: string): EnrichedRecord {
  return {
    topic,
    partition: 2,
    offset: 7n,
    timestamp: 1_767_225_600_000,
    key: null,
    value,
    headers: {},
    size: value.length,
    _kafka_partition: 2,
    _kafka_offset: 7n,
    _kafka_timestamp: 1_767_225_600_000_000n,
    _ingested_at: 1_767_225_601_000_000n,
    _ingestion_date: '2026-01-01',
  };
}

describe('transaction events', () => {
  it('every ISO-8601 spelling names the same millisecond (zone with or without colon, T or space, µs)', () => {
    const ms = Date.UTC(2026, 0, 1, 23, 59, 59, 123);
    const spellings = isoSpellings(ms, 456);
    expect(new Set(spellings).size).toBe(6);
    for (const s of spellings) {
      const micros = parseIsoTimestampMicros(s);
      expect(micros, s).not.toBeNull();
      expect(Number((micros as bigint) / 1000n), s).toBe(ms);
    }
    expect(parseIsoTimestampMicros('2026-01-02 01:59:59.123456+02:00')).toBe(BigInt(ms) * 1000n + 456n);
    expect(parseIsoTimestampMicros('2026-01-02T01:59:59.123+0200')).toBe(BigInt(ms) * 1000n);
  });

  it('generated events pass their codecs and become typed rows with the event time', () => {
    const gen = createTransactionGenerator({ seed: 3, accounts: 5, outOfOrderFraction: 0.3 });
    let behind = 0;
    let last = 0;
    for (let i = 0; i < 300; i++) {
      const tx = gen.next('transactions');
      expect(isRight(TransactionEvent.decode(parse(tx.value)))).toBe(true);
      const decoded = TransactionEvent.decode(parse(tx.value));
      if (!isRight(decoded)) throw new Error('codec');
      const row = transactionRow({ ...enriched(tx.value, 'transactions'), decoded: decoded.right });
      expect(Number(row.event_time / 1000n)).toBe(tx.eventTimeMs);
      expect(row.event_date).toBe(new Date(tx.eventTimeMs).toISOString().slice(0, 10));
      expect(row.account_id).toBe(tx.key);
      expect(row.amount).toBe(tx.amount);
      if (tx.eventTimeMs < last) behind++;
      last = Math.max(last, tx.eventTimeMs);

      const rf = gen.next('refunds');
      const r = RefundEvent.decode(parse(rf.value));
      if (!isRight(r)) throw new Error('refund codec');
      const rrow = refundRow({ ...enriched(rf.value, 'refunds'), decoded: r.right });
      expect(rrow.refund_id).toMatch(/^rf-\d{8}$/);
      expect(Number(rrow.event_time / 1000n)).toBe(rf.eventTimeMs);
    }
    // Some events lie behind the clock (what the watermark is for).
    expect(behind).toBeGreaterThan(30);
  });

  it('rejects what the contract forbids', () => {
    const ok = { transaction_id: 'tx-1', account_id: 'a', amount: 1.5, currency: 'USD', timestamp: '2026-01-01T00:00:00Z' };
    expect(isRight(TransactionEvent.decode(ok))).toBe(true);
    for (const bad of [
      { ...ok, amount: -1 },
      { ...ok, amount: '1.5' },
      { ...ok, currency: 'usd' },
      { ...ok, timestamp: '2026-02-30T00:00:00Z' },
      { ...ok, timestamp: 1767225600000 },
      { ...ok, account_id: '' },
      { ...ok, merchant_id: 5 },
    ]) {
      expect(isLeft(TransactionEvent.decode(bad)), JSON.stringify(bad)).toBe(true);
    }
  });

  it('accepts only what every sink stores: event times within years 0001-9999 with room for a window, PostgreSQL-safe account ids', () => {
    const ok = { transaction_id: 'tx-1', account_id: 'a', amount: 1.5, currency: 'USD', timestamp: '2026-01-01T00:00:00Z' };
    const refund = { ...ok, refund_id: 'rf-1' };
    const accepted = [
      '0001-01-02T00:00:00Z',
      '0001-01-01T23:00:00-01:00',
      '0002-01-01T00:00:00Z',
      '9998-12-31T23:59:59.999999Z',
      '9999-12-29T23:59:59.999999Z',
      '9999-12-30T01:00:00+02:00',
    ];
    const rejected = [
      '0000-01-01T00:00:00Z', // PostgreSQL has no year 0
      '0001-01-01T00:00:00Z', // a window around it may start in year 0
      '0001-01-02T00:00:00+00:01',
      '9999-12-30T00:00:00Z', // a day-long window around it would end in year 10000
      '9999-12-31T23:59:59Z',
      '9999-12-29T23:00:00-01:00',
    ];
    for (const timestamp of accepted) {
      expect(TransactionEvent.is({ ...ok, timestamp }), timestamp).toBe(true);
      expect(isRight(RefundEvent.decode({ ...refund, timestamp })), timestamp).toBe(true);
    }
    for (const timestamp of rejected) {
      expect(TransactionEvent.is({ ...ok, timestamp }), timestamp).toBe(false);
      expect(isLeft(RefundEvent.decode({ ...refund, timestamp })), timestamp).toBe(true);
    }
    for (const account_id of ['a\u0000b', '\ud800', 'x\udc00y', 'x'.repeat(257), '']) {
      expect(TransactionEvent.is({ ...ok, account_id }), JSON.stringify(account_id)).toBe(false);
      expect(isLeft(RefundEvent.decode({ ...refund, account_id })), JSON.stringify(account_id)).toBe(true);
    }
    for (const account_id of ['😀', 'é'.repeat(256), 'acct-0001']) expect(TransactionEvent.is({ ...ok, account_id })).toBe(true);
    // Every accepted event becomes a typed row whose date is a YYYY-MM-DD.
    for (const timestamp of accepted) {
      const bytes = new TextEncoder().encode(JSON.stringify({ ...ok, timestamp }));
      const row = transactionRow({ ...enriched(bytes, 'transactions'), decoded: { ...ok, timestamp } as TransactionEvent });
      expect(row.event_date, timestamp).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(row.event_time >= MIN_EVENT_MICROS && row.event_time < MAX_EVENT_MICROS).toBe(true);
    }
  });

  it('`is` and `decode` agree (the job passes `is` as its fast path)', () => {
    const gen = createTransactionGenerator({ seed: 5 });
    const ok = { transaction_id: 'tx-1', account_id: 'a', amount: 1.5, currency: 'USD', timestamp: '2026-01-01T00:00:00Z' };
    const values: unknown[] = [
      ...Array.from({ length: 50 }, () => parse(gen.next('transactions').value)),
      ...Array.from({ length: 50 }, () => parse(gen.next('refunds').value)),
      ok,
      { ...ok, amount: -1 },
      { ...ok, currency: 'usd' },
      { ...ok, timestamp: '2026-02-30T00:00:00Z' },
      { ...ok, merchant_id: null },
      { ...ok, merchant_id: 5 },
      { ...ok, session_id: 3 },
      null,
      [],
    ];
    for (const v of values) {
      expect(TransactionEvent.is(v), JSON.stringify(v)).toBe(isRight(TransactionEvent.decode(v)));
      expect(RefundEvent.is(v), JSON.stringify(v)).toBe(isRight(RefundEvent.decode(v)));
    }
  });

  it('corrupt events are rejected by the codec or are not JSON', () => {
    const gen = createTransactionGenerator({ seed: 9 });
    for (let v = 0; v < 6; v++) {
      const e = gen.next('transactions');
      for (const kind of ['missing_field', 'wrong_type'] as const) {
        const bad = corruptTransactionEvent(kind, e, v);
        expect(bad).not.toBeNull();
        expect(isLeft(TransactionEvent.decode(parse(bad as Uint8Array))), `${kind} ${v}`).toBe(true);
      }
      expect(() => parse(corruptTransactionEvent('truncated_json', e, v) as Uint8Array)).toThrow();
      expect(corruptTransactionEvent('null_value', e, v)).toBeNull();
    }
  });
});
