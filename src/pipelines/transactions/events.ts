/**
 * The transactions pipeline's two topics: their event contracts (io-ts codecs), the typed rows
 * valid events become, and a seeded generator of realistic events (keyed by account, with
 * timestamps in the ISO-8601 spellings producers really send, a share of out-of-order events
 * and optionally corrupt ones) for the tests, the demo and benchmarks.
 *
 * `transactions`: `{ transaction_id, account_id, merchant_id?, amount, currency, timestamp }`
 * `refunds`:      `{ refund_id, transaction_id, account_id, amount, currency, reason?, timestamp }`
 * Amounts are non-negative numbers, `currency` three capital letters, `timestamp` ISO-8601
 * with or without the zone colon, up to nanoseconds, `T` or a space (no zone = UTC), from
 * 0001-01-02 up to 9999-12-30; `account_id` 1–256 characters without NUL or lone surrogates
 * (it keys PostgreSQL rows). Extra fields are allowed.
 */
import * as t from 'io-ts';
import { IsoTimestamp, NonNegative, TracingEnvelope, parseIsoTimestampMicros } from '../rideshare/codecs.ts';
import type { EnrichedRecord } from '../../types.ts';
import { utcDateFormatter } from '../../operators/internal/utcDate.ts';
import { corrupt, mulberry32 } from '../rideshare/events.ts';
import type { CorruptionKind } from '../rideshare/events.ts';

export const TRANSACTION_TOPICS = ['transactions', 'refunds'] as const;
export type TransactionTopic = (typeof TRANSACTION_TOPICS)[number];

export function isTransactionTopic(s: string): s is TransactionTopic {
  return (TRANSACTION_TOPICS as readonly string[]).includes(s);
}

const NonEmptyString = t.refinement(t.string, (s) => s.length > 0, 'NonEmptyString');
const Currency = t.refinement(t.string, (s) => /^[A-Z]{3}$/.test(s), 'Currency');
const OptionalText = t.union([t.string, t.null, t.undefined]);

// What a valid event is must include what every sink can store: a record the codec accepts
// never fails a write (which would stop the job for every record behind it).

/**
 * 1–256 characters, no NUL, no lone surrogate: the account is the key of the window tables'
 * PostgreSQL primary key. PostgreSQL `text` takes no NUL; lone surrogates would all become
 * U+FFFD there (two distinct accounts, one key: the upsert fails); a btree key holds ~2.7 kB
 * at most (256 characters are at most 1 kB of UTF-8).
 */
// eslint-disable-next-line no-control-regex -- NUL is the one character PostgreSQL text refuses
export const ACCOUNT_ID = /^[^\u0000\p{Cs}]{1,256}$/u;
const AccountId = t.refinement(t.string, (s) => ACCOUNT_ID.test(s), 'AccountId');

/** A value that keys a PostgreSQL row (an event id, a product, a card): the rule of `ACCOUNT_ID`. */
export const KeyText = t.refinement(t.string, (s) => ACCOUNT_ID.test(s), 'KeyText');
/** Text PostgreSQL stores: no NUL (a lone surrogate becomes U+FFFD there). */
export const PgText = t.refinement(t.string, (s) => !s.includes('\u0000'), 'PgText');
/** `PgText`, `null` or absent. */
export const OptionalPgText = t.union([PgText, t.null, t.undefined]);

/** 0001-01-02T00:00:00Z in epoch µs: the first event time accepted. */
export const MIN_EVENT_MICROS = -62_135_510_400_000_000n;
/** 9999-12-30T00:00:00Z in epoch µs: event times must lie before it. */
export const MAX_EVENT_MICROS = 253_402_128_000_000_000n;

export interface EventTimestampBrand {
  readonly EventTimestamp: unique symbol;
}

/**
 * An `IsoTimestamp` from 0001-01-02 up to (not including) 9999-12-30 UTC: any window of up to a
 * day (`WINDOW_SECONDS` ≤ 86,400) around it starts and ends within years 0001–9999 — what
 * PostgreSQL's `timestamptz` and a `YYYY-MM-DD` partition value take (PostgreSQL refuses year
 * 0000 and `+010000`). Years 0002–9998 are told from the text alone; only the first and last
 * years are parsed.
 */
export const EventTimestamp = t.brand(
  IsoTimestamp,
  (s): s is t.Branded<IsoTimestamp, EventTimestampBrand> => {
    const year = s.charCodeAt(0) * 1000 + s.charCodeAt(1) * 100 + s.charCodeAt(2) * 10 + s.charCodeAt(3) - 0x30 * 1111;
    if (year >= 2 && year <= 9998) return true;
    const us = parseIsoTimestampMicros(s);
    return us !== null && us >= MIN_EVENT_MICROS && us < MAX_EVENT_MICROS;
  },
  'EventTimestamp',
);
export type EventTimestamp = t.TypeOf<typeof EventTimestamp>;

export const TransactionEvent = t.intersection(
  [
    t.type({
      transaction_id: NonEmptyString,
      account_id: AccountId,
      amount: NonNegative,
      currency: Currency,
      timestamp: EventTimestamp,
    }),
    t.partial({ merchant_id: OptionalText }),
    TracingEnvelope,
  ],
  'TransactionEvent',
);
export type TransactionEvent = t.TypeOf<typeof TransactionEvent>;

export const RefundEvent = t.intersection(
  [
    t.type({
      refund_id: NonEmptyString,
      transaction_id: NonEmptyString,
      account_id: AccountId,
      amount: NonNegative,
      currency: Currency,
      timestamp: EventTimestamp,
    }),
    t.partial({ reason: OptionalText }),
    TracingEnvelope,
  ],
  'RefundEvent',
);
export type RefundEvent = t.TypeOf<typeof RefundEvent>;

/** What every typed row carries besides its own fields: where it came from and when. */
export interface TypedRowBase {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly size: number;
  readonly account_id: string;
  readonly amount: number;
  readonly currency: string;
  /** Event time, epoch µs (UTC). */
  readonly event_time: bigint;
  /** UTC `YYYY-MM-DD` of `event_time` (partition column). */
  readonly event_date: string;
  readonly _kafka_partition: number;
  readonly _kafka_offset: bigint;
  readonly _kafka_timestamp: bigint;
  readonly _ingested_at: bigint;
}

export interface TransactionRow extends TypedRowBase {
  readonly transaction_id: string;
  readonly merchant_id: string | null;
}

export interface RefundRow extends TypedRowBase {
  readonly refund_id: string;
  readonly transaction_id: string;
  readonly reason: string | null;
}

/** Event time in epoch milliseconds of a typed row (what windows use). */
export function eventTimeMs(row: TypedRowBase): number {
  return Number(row.event_time / 1000n);
}

function base(record: EnrichedRecord, event: { account_id: string; amount: number; currency: string; timestamp: string }): TypedRowBase {
  const micros = parseIsoTimestampMicros(event.timestamp);
  // The codec accepted the timestamp, so it parses.
  if (micros === null) throw new TypeError(`unparseable timestamp ${JSON.stringify(event.timestamp)}`);
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    size: record.size,
    account_id: event.account_id,
    amount: event.amount,
    currency: event.currency,
    event_time: micros,
    event_date: utcDate(Number(micros / 1000n)),
    _kafka_partition: record._kafka_partition,
    _kafka_offset: record._kafka_offset,
    _kafka_timestamp: record._kafka_timestamp,
    _ingested_at: record._ingested_at,
  };
}

export function transactionRow(record: EnrichedRecord & { readonly decoded: TransactionEvent | undefined }): TransactionRow {
  const e = decodedOf(record);
  // Object.assign adds the two fields to the base row (a spread would copy all of them again).
  return Object.assign(base(record, e), { transaction_id: e.transaction_id, merchant_id: e.merchant_id ?? null });
}

export function refundRow(record: EnrichedRecord & { readonly decoded: RefundEvent | undefined }): RefundRow {
  const e = decodedOf(record);
  return Object.assign(base(record, e), { refund_id: e.refund_id, transaction_id: e.transaction_id, reason: e.reason ?? null });
}

/** The codec of each topic's events. */
export const TOPIC_CODECS = { transactions: TransactionEvent, refunds: RefundEvent } as const;

/** The typed row of a record that `routeErrors` accepted with its topic's codec (`TOPIC_CODECS`). */
export function typedRowOf(topic: TransactionTopic): (record: EnrichedRecord & { readonly decoded: unknown }) => TypedRowBase {
  return topic === 'transactions'
    ? (r) => transactionRow(r as EnrichedRecord & { decoded: TransactionEvent | undefined })
    : (r) => refundRow(r as EnrichedRecord & { decoded: RefundEvent | undefined });
}

function decodedOf<A>(record: EnrichedRecord & { readonly decoded: A | undefined }): A {
  if (record.decoded === undefined) {
    throw new TypeError(`${record.topic}/${record.partition}@${record.offset}: no decoded event (schema validation must stay on for typed rows)`);
  }
  return record.decoded;
}

/** UTC `YYYY-MM-DD` of epoch ms (the current day's string is kept: events of a stream share days). */
const utcDate = utcDateFormatter();

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

export interface TransactionGeneratorOptions {
  /** Seed of the pseudo-random sequence; default 1. */
  readonly seed?: number;
  /** Distinct accounts (the Kafka key); default 50. */
  readonly accounts?: number;
  /** Event clock start, epoch ms; default 2026-01-01T00:00:00Z. */
  readonly startTime?: number;
  /** Mean event-clock step between consecutive events of a topic, ms; default 250. */
  readonly stepMs?: number;
  /** Share (0..1) of events whose timestamp lies behind the clock by up to `maxDelayMs`; default 0.05. */
  readonly outOfOrderFraction?: number;
  /** Largest delay of an out-of-order event, ms; default 20 000. */
  readonly maxDelayMs?: number;
}

export interface GeneratedTransactionEvent {
  readonly topic: TransactionTopic;
  /** The account id: the Kafka key, so one account's events stay in one partition, in order. */
  readonly key: string;
  readonly value: Uint8Array;
  /** Event time the payload's timestamp names, epoch ms (before any corruption). */
  readonly eventTimeMs: number;
  readonly account_id: string;
  readonly amount: number;
}

const encoder = new TextEncoder();
const CURRENCIES = ['USD', 'EUR', 'GBP'] as const;
const REASONS = ['customer_request', 'duplicate', 'fraud', null] as const;

/** The ISO-8601 spellings producers send, all naming the same millisecond (`extraMicros` µs into it, where micro-seconds are spelled). */
export function isoSpellings(ms: number, extraMicros = 0): string[] {
  const iso = new Date(ms).toISOString(); // 2026-01-01T00:00:00.123Z
  const date = iso.slice(0, 10);
  const time = iso.slice(11, 19);
  const millis = iso.slice(20, 23);
  const micros = `${millis}${String(extraMicros).padStart(3, '0')}`;
  return [
    `${date}T${time}.${millis}Z`,
    `${date}T${time}.${micros}Z`,
    `${date} ${time}.${micros}+00:00`,
    `${date}T${time}.${millis}+0000`,
    // Same instant two hours ahead, with and without the colon.
    `${shifted(ms, 2)}.${micros}+02:00`,
    `${shifted(ms, 2)}.${millis}+0200`,
  ];
}

function shifted(ms: number, hours: number): string {
  const s = new Date(ms + hours * 3_600_000).toISOString();
  return `${s.slice(0, 10)}T${s.slice(11, 19)}`;
}

/**
 * A deterministic stream of transaction and refund events for `accounts` accounts: amounts
 * 1–500 with cents, refunds of earlier transactions of the same account, timestamps in the
 * spellings of `isoSpellings` (whole microseconds), `outOfOrderFraction` of them behind the
 * clock.
 */
export function createTransactionGenerator(options: TransactionGeneratorOptions = {}): {
  next(topic: TransactionTopic): GeneratedTransactionEvent;
} {
  const random = mulberry32(options.seed ?? 1);
  const accounts = options.accounts ?? 50;
  const stepMs = options.stepMs ?? 250;
  const outOfOrder = options.outOfOrderFraction ?? 0.05;
  const maxDelay = options.maxDelayMs ?? 20_000;
  const clocks: Record<TransactionTopic, number> = {
    transactions: options.startTime ?? Date.UTC(2026, 0, 1),
    refunds: options.startTime ?? Date.UTC(2026, 0, 1),
  };
  const counters: Record<TransactionTopic, number> = { transactions: 0, refunds: 0 };
  const pick = <A>(xs: readonly A[]): A => xs[Math.floor(random() * xs.length)] as A;
  return {
    next(topic) {
      clocks[topic] += Math.max(1, Math.round(random() * 2 * stepMs));
      const late = random() < outOfOrder;
      const eventTimeMs = late ? clocks[topic] - 1 - Math.floor(random() * maxDelay) : clocks[topic];
      const n = ++counters[topic];
      const account = `acct-${String(1 + Math.floor(random() * accounts)).padStart(4, '0')}`;
      const amount = Math.round((1 + random() * 499) * 100) / 100;
      const timestamp = pick(isoSpellings(eventTimeMs, Math.floor(random() * 1000)));
      const event =
        topic === 'transactions'
          ? {
              transaction_id: `tx-${String(n).padStart(8, '0')}`,
              account_id: account,
              merchant_id: `m-${String(1 + Math.floor(random() * 200)).padStart(3, '0')}`,
              amount,
              currency: pick(CURRENCIES),
              timestamp,
            }
          : {
              refund_id: `rf-${String(n).padStart(8, '0')}`,
              transaction_id: `tx-${String(1 + Math.floor(random() * Math.max(1, n * 4))).padStart(8, '0')}`,
              account_id: account,
              amount,
              currency: pick(CURRENCIES),
              reason: pick(REASONS),
              timestamp,
            };
      return { topic, key: account, value: encoder.encode(JSON.stringify(event)), eventTimeMs, account_id: account, amount };
    },
  };
}

/**
 * A corrupt version of a generated event (see `corrupt` of the rideshare generator); a missing
 * or mistyped field is always `timestamp` (these events have no `event_id`).
 */
export function corruptTransactionEvent(kind: CorruptionKind, event: GeneratedTransactionEvent, variant = 0): Uint8Array | null {
  const timestampOnly = kind === 'missing_field' || kind === 'wrong_type';
  return corrupt(kind, event.value, timestampOnly ? 2 * Math.abs(Math.trunc(variant)) : variant);
}
