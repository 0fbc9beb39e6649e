/**
 * The retail metrics job's event contracts (io-ts), the typed rows valid events become, and a
 * seeded generator of such events for the tests, the demo and `rxlake generate-retail`.
 *
 * `transactions`: `{ transaction_id, product_id, amount, timestamp, customer_id?, store_id?,
 * quantity?, currency?, payment_method? }`; `refunds`: `{ refund_id, transaction_id, amount,
 * timestamp, reason?, product_id?, customer_id? }`. Ids 1–256 characters without NUL or lone
 * surrogates (they key PostgreSQL rows), `amount` a number ≥ 0, `quantity` a whole number
 * 0–2147483647, the other texts without NUL (PostgreSQL `text`), `timestamp` ISO-8601 (`T` or a
 * space, with or without a zone and its colon, up to microseconds; no zone = UTC) from 0001-01-02
 * to before 9999-12-30. Optional fields may be `null`; extra fields are allowed.
 */
import * as t from 'io-ts';
import type { Routed } from '../../operators/routeErrors.ts';
import type { EnrichedRecord, RecordRef } from '../../types.ts';
import { parseIsoTimestampMicros } from '../../validation/isoTimestamp.ts';
import { mulberry32 } from '../rideshare/events.ts';
import type { CorruptionKind } from '../rideshare/events.ts';
import { NonNegative } from '../rideshare/codecs.ts';
import { EventTimestamp, KeyText, OptionalPgText, isoSpellings } from '../transactions/events.ts';
import { corruptEvent } from '../transactions/produce.ts';
import type { GeneratedEvent } from '../transactions/produce.ts';

const Quantity = t.refinement(t.number, (n) => Number.isInteger(n) && n >= 0 && n <= 2_147_483_647, 'Quantity');

export const RetailTransaction = t.intersection(
  [
    t.type({ transaction_id: KeyText, product_id: KeyText, amount: NonNegative, timestamp: EventTimestamp }),
    t.partial({ customer_id: OptionalPgText, store_id: OptionalPgText, quantity: t.union([Quantity, t.null, t.undefined]), currency: OptionalPgText, payment_method: OptionalPgText }),
  ],
  'RetailTransaction',
);
export type RetailTransaction = t.TypeOf<typeof RetailTransaction>;

export const RetailRefund = t.intersection(
  [
    t.type({ refund_id: KeyText, transaction_id: KeyText, amount: NonNegative, timestamp: EventTimestamp }),
    t.partial({ reason: OptionalPgText, product_id: OptionalPgText, customer_id: OptionalPgText }),
  ],
  'RetailRefund',
);
export type RetailRefund = t.TypeOf<typeof RetailRefund>;

/** What every typed row carries: where it came from, its amount and event time. */
interface RowBase extends RecordRef {
  readonly amount: number;
  /** Event time, epoch µs (UTC). */
  readonly event_time: bigint;
  readonly kafka_partition: number;
  readonly kafka_offset: bigint;
  /** Epoch µs. */
  readonly ingested_at: bigint;
}

export interface SaleRow extends RowBase {
  readonly transaction_id: string;
  readonly product_id: string;
  readonly customer_id: string | null;
  readonly store_id: string | null;
  readonly quantity: number | null;
  readonly currency: string | null;
  readonly payment_method: string | null;
  /** Event time, epoch ms (what the windows use). */
  readonly event_ms: number;
}

export interface RefundRow extends RowBase {
  readonly refund_id: string;
  readonly transaction_id: string;
  readonly reason: string | null;
  readonly product_id: string | null;
  readonly customer_id: string | null;
}

function base(r: EnrichedRecord, amount: number, timestamp: string): RowBase {
  // The codec accepted the timestamp, so it parses.
  const micros = parseIsoTimestampMicros(timestamp) ?? 0n;
  return { topic: r.topic, partition: r.partition, offset: r.offset, amount, event_time: micros, kafka_partition: r.partition, kafka_offset: r.offset, ingested_at: r._ingested_at };
}

function decoded<A>(r: Routed<EnrichedRecord, A>): A {
  if (r.decoded === undefined) throw new TypeError(`${r.topic}/${r.partition}@${r.offset}: no decoded event`);
  return r.decoded;
}

export function saleRow(r: Routed<EnrichedRecord, RetailTransaction>): SaleRow {
  const e = decoded(r);
  const row = base(r, e.amount, e.timestamp);
  return {
    ...row,
    transaction_id: e.transaction_id,
    product_id: e.product_id,
    customer_id: e.customer_id ?? null,
    store_id: e.store_id ?? null,
    quantity: e.quantity ?? null,
    currency: e.currency ?? null,
    payment_method: e.payment_method ?? null,
    event_ms: Number(row.event_time / 1000n) - (row.event_time % 1000n < 0n ? 1 : 0),
  };
}

export function refundRow(r: Routed<EnrichedRecord, RetailRefund>): RefundRow {
  const e = decoded(r);
  return { ...base(r, e.amount, e.timestamp), refund_id: e.refund_id, transaction_id: e.transaction_id, reason: e.reason ?? null, product_id: e.product_id ?? null, customer_id: e.customer_id ?? null };
}

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

export const RETAIL_TOPICS = ['transactions', 'refunds'] as const;
export type RetailTopic = (typeof RETAIL_TOPICS)[number];

export interface RetailGeneratorOptions {
  readonly seed?: number;
  /** Distinct products (the Kafka key of transactions); default 40. */
  readonly products?: number;
  /** Event clock start, epoch ms; default now. */
  readonly startTime?: number;
  /** Mean event-clock step between consecutive events of a topic, ms; default 250. */
  readonly stepMs?: number;
  /** Share (0..1) of events whose timestamp lies behind the clock by up to `maxDelayMs`; default 0.05. */
  readonly outOfOrderFraction?: number;
  /** Largest delay of an out-of-order event, ms; default 180 000 (beyond the 2-minute watermark now and then). */
  readonly maxDelayMs?: number;
  /** Share (0..1) of the events that are refunds (the rest are transactions); default 0.2. */
  readonly refundFraction?: number;
  /** Topic names, if not `transactions` and `refunds`. */
  readonly topics?: { readonly transactions: string; readonly refunds: string };
}

/** A generated event, with what the test needs to compute the expected tables. */
export interface GeneratedRetailEvent extends GeneratedEvent {
  readonly kind: RetailTopic;
  /** Event time the payload names, epoch ms. */
  readonly eventTimeMs: number;
  readonly id: string;
  readonly product_id: string | null;
  readonly amount: number;
}

const encoder = new TextEncoder();
const REASONS = ['damaged', 'wrong_size', 'not_as_described', 'changed_mind', null] as const;
const STORES = ['s-001', 's-002', 's-003', 'online'] as const;

/**
 * A deterministic stream of retail transactions (keyed by product) and refunds of earlier ones
 * (keyed by transaction): amounts 1–300 with cents, timestamps in the spellings of
 * `isoSpellings`, `outOfOrderFraction` of them behind the clock.
 */
export function createRetailGenerator(options: RetailGeneratorOptions = {}): { next(): GeneratedRetailEvent } {
  const random = mulberry32(options.seed ?? 1);
  const products = options.products ?? 40;
  const stepMs = options.stepMs ?? 250;
  const outOfOrder = options.outOfOrderFraction ?? 0.05;
  const maxDelay = options.maxDelayMs ?? 180_000;
  const refunds = options.refundFraction ?? 0.2;
  const names = options.topics ?? { transactions: 'transactions', refunds: 'refunds' };
  let clock = options.startTime ?? Date.now();
  let sales = 0;
  let refunded = 0;
  const pick = <A>(xs: readonly A[]): A => xs[Math.floor(random() * xs.length)] as A;
  return {
    next() {
      clock += Math.max(1, Math.round(random() * 2 * stepMs));
      const eventTimeMs = random() < outOfOrder ? clock - 1 - Math.floor(random() * maxDelay) : clock;
      const timestamp = pick(isoSpellings(eventTimeMs, Math.floor(random() * 1000)));
      const amount = Math.round((1 + random() * 299) * 100) / 100;
      if (sales > 0 && random() < refunds) {
        const id = `rf-${String(++refunded).padStart(8, '0')}`;
        const of = `tx-${String(1 + Math.floor(random() * sales)).padStart(8, '0')}`;
        const value = encoder.encode(JSON.stringify({ refund_id: id, transaction_id: of, amount, reason: pick(REASONS), timestamp }));
        return { topic: names.refunds, kind: 'refunds', key: of, value, eventTimeMs, id, product_id: null, amount };
      }
      const id = `tx-${String(++sales).padStart(8, '0')}`;
      const product = `p-${String(1 + Math.floor(random() * products)).padStart(4, '0')}`;
      const event = {
        transaction_id: id,
        product_id: product,
        customer_id: `c-${String(1 + Math.floor(random() * 5000)).padStart(5, '0')}`,
        store_id: pick(STORES),
        quantity: 1 + Math.floor(random() * 4),
        amount,
        currency: 'USD',
        timestamp,
      };
      return { topic: names.transactions, kind: 'transactions', key: product, value: encoder.encode(JSON.stringify(event)), eventTimeMs, id, product_id: product, amount };
    },
  };
}

/** A corrupt version of a generated retail event: a required field missing or mistyped, bad bytes, a tombstone. */
export function corruptRetailEvent(kind: CorruptionKind, event: GeneratedEvent, variant: number): Uint8Array | null {
  return corruptEvent(kind, event.value, variant, {
    required: ['timestamp', 'amount'],
    wrong: { amount: 'twelve', timestamp: 1_767_225_600_000 },
  });
}
