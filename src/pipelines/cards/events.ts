/**
 * The card medallion job's event contract, its silver rows and a seeded generator of its events.
 *
 * Topic `transactions`: `{ txn_id, event_ts, user_id, card_id, merchant, category, amount,
 * currency, status, city, country, lat, lon }`. What makes an event valid (else quarantined):
 * a JSON object with `txn_id` (a non-empty string), `event_ts` (ISO-8601: `T` or a space, with
 * or without a zone and its colon, up to microseconds; no zone = UTC; years 0001–9999) and
 * `card_id` (1–256 characters without NUL or lone surrogates: the gold key). The other fields are
 * taken as they come: a missing one, or one of another type (`amount` as a string, say), is null
 * in silver, as a schema applied to JSON reads it.
 */
import * as t from 'io-ts';
import type { Routed } from '../../operators/routeErrors.ts';
import type { EnrichedRecord, RecordRef } from '../../types.ts';
import { parseIsoTimestampMicros } from '../../validation/isoTimestamp.ts';
import { mulberry32 } from '../rideshare/events.ts';
import type { CorruptionKind } from '../rideshare/events.ts';
import { EventTimestamp, KeyText, isoSpellings } from '../transactions/events.ts';
import { corruptEvent } from '../transactions/produce.ts';
import type { GeneratedEvent } from '../transactions/produce.ts';

const TxnId = t.refinement(t.string, (s) => s.length > 0, 'TxnId');

/** What a card event must have; the codec does not transform (its `is` stands in for `decode`). */
export const CardEvent = t.type({ txn_id: TxnId, event_ts: EventTimestamp, card_id: KeyText }, 'CardEvent');
export type CardEvent = t.TypeOf<typeof CardEvent>;

/** A typed card transaction (silver). */
export interface SilverRow extends RecordRef {
  readonly txn_id: string;
  /** The timestamp as sent. */
  readonly event_ts: string;
  /** `event_ts` parsed, epoch µs (UTC). */
  readonly event_time: bigint;
  /** Epoch ms, for the windows. */
  readonly event_ms: number;
  readonly user_id: string | null;
  readonly card_id: string;
  readonly merchant: string | null;
  readonly category: string | null;
  readonly amount: number | null;
  readonly currency: string | null;
  readonly status: string | null;
  readonly city: string | null;
  readonly country: string | null;
  readonly lat: number | null;
  readonly lon: number | null;
  readonly _kafka_partition: number;
  readonly _kafka_offset: bigint;
  readonly _ingested_at: bigint;
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const number = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The silver row of a record `routeErrors` accepted with `CardEvent` (its decoded value is the whole JSON object). */
export function silverRow(r: Routed<EnrichedRecord, CardEvent>): SilverRow {
  const e = r.decoded as (CardEvent & Readonly<Record<string, unknown>>) | undefined;
  if (e === undefined) throw new TypeError(`${r.topic}/${r.partition}@${r.offset}: no decoded event`);
  // The codec accepted the timestamp, so it parses.
  const micros = parseIsoTimestampMicros(e.event_ts) ?? 0n;
  return {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    txn_id: e.txn_id,
    event_ts: e.event_ts,
    event_time: micros,
    event_ms: Number((micros - (((micros % 1000n) + 1000n) % 1000n)) / 1000n),
    user_id: text(e.user_id),
    card_id: e.card_id,
    merchant: text(e.merchant),
    category: text(e.category),
    amount: number(e.amount),
    currency: text(e.currency),
    status: text(e.status),
    city: text(e.city),
    country: text(e.country),
    lat: number(e.lat),
    lon: number(e.lon),
    _kafka_partition: r.partition,
    _kafka_offset: r.offset,
    _ingested_at: r._ingested_at,
  };
}

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

export interface CardGeneratorOptions {
  readonly seed?: number;
  /** Distinct cards (the Kafka key); default 100. */
  readonly cards?: number;
  /** Event clock start, epoch ms; default now. */
  readonly startTime?: number;
  /** Mean event-clock step between events, ms; default 100. */
  readonly stepMs?: number;
  /** Share (0..1) of events whose timestamp lies behind the clock by up to `maxDelayMs`; default 0.05. */
  readonly outOfOrderFraction?: number;
  /** Largest delay of an out-of-order event, ms; default 600 000 (beyond the 5-minute watermark now and then). */
  readonly maxDelayMs?: number;
  /** The topic events go to; default `transactions`. */
  readonly topic?: string;
}

/** A generated card event, with what a test needs to compute the expected tables. */
export interface GeneratedCardEvent extends GeneratedEvent {
  /** Event time `event_ts` names, epoch µs. */
  readonly eventTimeMicros: bigint;
  readonly card_id: string;
  readonly amount: number;
}

const encoder = new TextEncoder();
const MERCHANTS = [
  ['Corner Grocery', 'grocery'],
  ['FuelMax', 'fuel'],
  ['Bistro 21', 'restaurants'],
  ['ShopOnline', 'ecommerce'],
  ['City Transit', 'transport'],
  ['Pharma+', 'health'],
] as const;
const PLACES = [
  ['Lisbon', 'PT', 38.72, -9.14],
  ['Madrid', 'ES', 40.42, -3.7],
  ['Paris', 'FR', 48.86, 2.35],
  ['Berlin', 'DE', 52.52, 13.4],
] as const;
const STATUSES = ['approved', 'approved', 'approved', 'declined', 'pending'] as const;

/** The ISO-8601 spellings of one instant producers send, with and without a zone (`extraMicros` µs into the millisecond). */
export function cardTimestampSpellings(ms: number, extraMicros: number): string[] {
  const iso = new Date(ms).toISOString();
  const micros = `${iso.slice(20, 23)}${String(extraMicros).padStart(3, '0')}`;
  return [...isoSpellings(ms, extraMicros), `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros}`, `${iso.slice(0, 19)}.${micros}`, `${iso.slice(0, 19)}`];
}

/**
 * A deterministic stream of card transactions keyed by `card_id` (one card's events stay in one
 * partition, in order): amounts 0.50–800 with cents, `event_ts` in every spelling of
 * `cardTimestampSpellings`, `outOfOrderFraction` of them behind the clock.
 */
export function createCardGenerator(options: CardGeneratorOptions = {}): { next(): GeneratedCardEvent } {
  const random = mulberry32(options.seed ?? 1);
  const cards = options.cards ?? 100;
  const stepMs = options.stepMs ?? 100;
  const outOfOrder = options.outOfOrderFraction ?? 0.05;
  const maxDelay = options.maxDelayMs ?? 600_000;
  const topic = options.topic ?? 'transactions';
  let clock = options.startTime ?? Date.now();
  let n = 0;
  const pick = <A>(xs: readonly A[]): A => xs[Math.floor(random() * xs.length)] as A;
  return {
    next() {
      clock += Math.max(1, Math.round(random() * 2 * stepMs));
      const ms = random() < outOfOrder ? clock - 1 - Math.floor(random() * maxDelay) : clock;
      const spellings = cardTimestampSpellings(ms, Math.floor(random() * 1000));
      const eventTs = pick(spellings);
      const card = Math.floor(random() * cards);
      const cardId = `card-${String(card).padStart(5, '0')}`;
      const [merchant, category] = pick(MERCHANTS);
      const [city, country, lat, lon] = pick(PLACES);
      const amount = Math.round((0.5 + random() * 799.5) * 100) / 100;
      const event = {
        txn_id: `txn-${String(++n).padStart(9, '0')}`,
        event_ts: eventTs,
        user_id: `user-${String(card % 70).padStart(4, '0')}`,
        card_id: cardId,
        merchant,
        category,
        amount,
        currency: 'EUR',
        status: pick(STATUSES),
        city,
        country,
        lat: Math.round((lat + (random() - 0.5) / 10) * 1e5) / 1e5,
        lon: Math.round((lon + (random() - 0.5) / 10) * 1e5) / 1e5,
      };
      return { topic, key: cardId, value: encoder.encode(JSON.stringify(event)), eventTimeMicros: parseIsoTimestampMicros(eventTs) ?? 0n, card_id: cardId, amount };
    },
  };
}

/**
 * A corrupt version of a generated card event, as that job's producer makes them: bytes that are
 * not UTF-8, truncated JSON, `txn_id` or `event_ts` missing, `event_ts` unparseable or `txn_id`
 * a number, a tombstone — all quarantined.
 */
export function corruptCardEvent(kind: CorruptionKind, event: GeneratedEvent, variant: number): Uint8Array | null {
  return corruptEvent(kind, event.value, variant, { required: ['txn_id', 'event_ts'], wrong: { event_ts: '31/12/2025 23:59', txn_id: 123456 } });
}
