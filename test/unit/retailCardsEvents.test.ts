import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { CardEvent, cardTimestampSpellings, corruptCardEvent, createCardGenerator, silverRow } from '../../src/pipelines/cards/events.ts';
import { RetailRefund, RetailTransaction, corruptRetailEvent, createRetailGenerator, saleRow } from '../../src/pipelines/retail/events.ts';
import { CORRUPTION_KINDS } from '../../src/pipelines/rideshare/events.ts';
import { parseIsoTimestampMicros } from '../../src/validation/isoTimestamp.ts';
import { enriched } from '../marbles/records.ts';

const json = (b: Uint8Array | null): unknown => (b === null ? null : JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b)));
const routed = <A>(decoded: A) => ({ ...enriched(7, 'x'), decoded });

describe('card events', () => {
  it('spells one instant every way producers do, with and without a zone, all parsed alike', () => {
    const ms = Date.UTC(2026, 2, 1, 23, 59, 58, 123);
    const spellings = cardTimestampSpellings(ms, 456);
    expect(spellings.some((s) => s.includes(' '))).toBe(true);
    expect(spellings.some((s) => /\+\d{4}$/.test(s))).toBe(true);
    expect(spellings.some((s) => /\d$/.test(s) && !/[+-]\d{2}:?\d{2}$/.test(s))).toBe(true);
    for (const s of spellings) expect(Number((parseIsoTimestampMicros(s) ?? 0n) / 1000n), s).toBe(Math.floor(ms / 1000) * 1000 + (s.includes('.') ? 123 : 0));
  });

  it('accepts an object with txn_id, a parseable event_ts and card_id; takes the other fields as they come', () => {
    const gen = createCardGenerator({ seed: 9 });
    const e = json(gen.next().value) as Record<string, unknown>;
    expect(isRight(CardEvent.decode(e))).toBe(true);
    for (const bad of [{ ...e, txn_id: undefined }, { ...e, txn_id: '' }, { ...e, event_ts: 'yesterday' }, { ...e, event_ts: 1767225600000 }, { ...e, card_id: null }, { ...e, card_id: 'a\u0000b' }, [e], 'txn']) {
      expect(isLeft(CardEvent.decode(bad))).toBe(true);
    }
    const row = silverRow(routed({ ...e, amount: '12.50', lat: null, lon: 'east', status: 7, event_ts: '2026-03-01 12:00:00.123456-0100' } as unknown as CardEvent));
    expect(row).toMatchObject({ amount: null, lat: null, lon: null, status: null, card_id: e.card_id, txn_id: e.txn_id, event_time: BigInt(Date.UTC(2026, 2, 1, 13)) * 1000n + 123_456n, event_ms: Date.UTC(2026, 2, 1, 13, 0, 0, 123) });
    expect(row.merchant).toBe(e.merchant);
  });

  it('generates the same events from the same seed, keyed by card_id; corrupt ones are not card events', () => {
    const a = createCardGenerator({ seed: 3, startTime: 0 });
    const b = createCardGenerator({ seed: 3, startTime: 0 });
    for (let i = 0; i < 50; i++) {
      const x = a.next();
      expect(x).toEqual(b.next());
      expect(x.key).toBe((json(x.value) as { card_id: string }).card_id);
    }
    const e = a.next();
    for (const [i, kind] of CORRUPTION_KINDS.entries()) {
      for (const variant of [i, i + 1]) {
        const bytes = corruptCardEvent(kind, e, variant);
        let decoded: unknown;
        try {
          decoded = json(bytes);
        } catch {
          continue; // not JSON (or not UTF-8): quarantined before the codec
        }
        expect(isLeft(CardEvent.decode(decoded)), `${kind}/${variant}`).toBe(true);
      }
    }
  });
});

describe('retail events', () => {
  it('types transactions and refunds; the rows carry the event time and where they came from', () => {
    const gen = createRetailGenerator({ seed: 2, refundFraction: 0.5, startTime: Date.UTC(2026, 0, 1) });
    const events = Array.from({ length: 40 }, () => gen.next());
    expect(new Set(events.map((e) => e.kind))).toEqual(new Set(['transactions', 'refunds']));
    for (const e of events) {
      const value = json(e.value);
      expect(e.kind === 'transactions' ? isRight(RetailTransaction.decode(value)) : isRight(RetailRefund.decode(value))).toBe(true);
    }
    const sale = events.find((e) => e.kind === 'transactions');
    const row = saleRow(routed(json(sale?.value ?? null) as RetailTransaction));
    expect(row.event_ms).toBe(sale?.eventTimeMs);
    expect(row).toMatchObject({ product_id: sale?.product_id, amount: sale?.amount, kafka_offset: 7n, topic: 't' });
  });

  it('refuses what PostgreSQL could not store or the windows could not use', () => {
    const ok = { transaction_id: 'tx-1', product_id: 'p-1', amount: 3.5, timestamp: '2026-01-01 00:00:00' };
    expect(isRight(RetailTransaction.decode(ok))).toBe(true);
    for (const bad of [
      { ...ok, amount: -1 },
      { ...ok, amount: '3.5' },
      { ...ok, product_id: '' },
      { ...ok, product_id: 'x'.repeat(257) },
      { ...ok, transaction_id: 'a\u0000' },
      { ...ok, customer_id: 'c\u0000' },
      { ...ok, quantity: 1.5 },
      { ...ok, timestamp: '0000-12-31T00:00:00Z' },
      { ...ok, timestamp: '2026-01-01' },
    ]) {
      expect(isLeft(RetailTransaction.decode(bad)), JSON.stringify(bad)).toBe(true);
    }
    const gen = createRetailGenerator({ seed: 1 });
    const e = gen.next();
    expect(json(corruptRetailEvent('missing_field', e, 0))).not.toHaveProperty('timestamp');
    expect((json(corruptRetailEvent('wrong_type', e, 0)) as { amount: unknown }).amount).toBe('twelve');
  });
});
