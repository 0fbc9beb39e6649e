/**
 * Lightweight io-ts codecs for the eight rideshare topics.
 *
 * Each codec checks only what downstream needs: ids, the `event_type` (a literal union taken
 * from the schema's enum), a parseable ISO-8601 `timestamp`, coordinates and the amounts that
 * later stages aggregate, plus the optional nullable tracing envelope (`session_id`,
 * `correlation_id`, `causation_id`). Extra fields are allowed (`t.type`, not `t.strict`), and
 * every check is a type test, a `keyof` lookup or one regular expression: decoding runs once
 * per record.
 */
import * as t from 'io-ts';
import { compileBytesGuard } from '../../validation/bytesGuard.ts';
import type { BytesGuard, FieldCheck } from '../../validation/bytesGuard.ts';
import { KIND_ARRAY, KIND_NUMBER, KIND_STRING } from '../../validation/jsonBytes.ts';
import { IsoTimestamp } from '../../validation/isoTimestamp.ts';
import type { BronzeTopic } from './topics.ts';

// The timestamp parser and codec live in the library (rxlake/validation); re-exported for the jobs.
export { IsoTimestamp, parseIsoTimestampMicros } from '../../validation/isoTimestamp.ts';
export type { IsoTimestampBrand } from '../../validation/isoTimestamp.ts';

// ---------------------------------------------------------------------------------------------
// Small building blocks
// ---------------------------------------------------------------------------------------------

/** `[latitude, longitude]`: exactly two finite numbers within range. */
function isLatLon(u: unknown): u is readonly [number, number] {
  return (
    Array.isArray(u) &&
    u.length === 2 &&
    typeof u[0] === 'number' &&
    typeof u[1] === 'number' &&
    u[0] >= -90 &&
    u[0] <= 90 &&
    u[1] >= -180 &&
    u[1] <= 180
  );
}
export const LatLon = new t.Type<readonly [number, number], readonly [number, number], unknown>(
  'LatLon',
  isLatLon,
  (u, c) => (isLatLon(u) ? t.success(u) : t.failure(u, c, 'expected [latitude, longitude]')),
  t.identity,
);
export type LatLon = t.TypeOf<typeof LatLon>;

const NullableString = t.union([t.string, t.null]);

/** A non-negative finite number (amounts, accuracies). */
export interface NonNegativeBrand {
  readonly NonNegative: unique symbol;
}
export const NonNegative = t.brand(
  t.number,
  (n): n is t.Branded<number, NonNegativeBrand> => n >= 0 && Number.isFinite(n),
  'NonNegative',
);
export type NonNegative = t.TypeOf<typeof NonNegative>;

/** A star rating: integer 1–5. */
export interface StarRatingBrand {
  readonly StarRating: unique symbol;
}
export const StarRating = t.brand(
  t.number,
  (n): n is t.Branded<number, StarRatingBrand> => Number.isInteger(n) && n >= 1 && n <= 5,
  'StarRating',
);
export type StarRating = t.TypeOf<typeof StarRating>;

/** The tracing envelope every rideshare event may carry. */
export const TracingEnvelope = t.partial({
  session_id: NullableString,
  correlation_id: NullableString,
  causation_id: NullableString,
});
export type TracingEnvelope = t.TypeOf<typeof TracingEnvelope>;

// ---------------------------------------------------------------------------------------------
// Event-type literal unions (from the schemas' enums)
// ---------------------------------------------------------------------------------------------

export const TripEventType = t.keyof({
  'trip.requested': null,
  'trip.offer_sent': null,
  'trip.driver_assigned': null,
  'trip.en_route_pickup': null,
  'trip.at_pickup': null,
  'trip.in_transit': null,
  'trip.completed': null,
  'trip.cancelled': null,
  'trip.offer_expired': null,
  'trip.offer_rejected': null,
  'trip.no_drivers_available': null,
});
export type TripEventType = t.TypeOf<typeof TripEventType>;

export const EntityType = t.keyof({ driver: null, rider: null });
export type EntityType = t.TypeOf<typeof EntityType>;

export const DriverStatus = t.keyof({ available: null, offline: null, en_route_pickup: null, on_trip: null });
export type DriverStatus = t.TypeOf<typeof DriverStatus>;

export const PaymentMethodType = t.keyof({ credit_card: null, digital_wallet: null });
export type PaymentMethodType = t.TypeOf<typeof PaymentMethodType>;

export const DriverProfileEventType = t.keyof({ 'driver.created': null, 'driver.updated': null });
export type DriverProfileEventType = t.TypeOf<typeof DriverProfileEventType>;

export const RiderProfileEventType = t.keyof({ 'rider.created': null, 'rider.updated': null });
export type RiderProfileEventType = t.TypeOf<typeof RiderProfileEventType>;

// ---------------------------------------------------------------------------------------------
// Per-topic events
// ---------------------------------------------------------------------------------------------

/** `gps_pings`: a location ping from a driver or a rider. */
export const GpsPingEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      entity_type: EntityType,
      entity_id: t.string,
      timestamp: IsoTimestamp,
      location: LatLon,
      accuracy: NonNegative,
    }),
    t.partial({ trip_id: NullableString }),
    TracingEnvelope,
  ],
  'GpsPingEvent',
);
export type GpsPingEvent = t.TypeOf<typeof GpsPingEvent>;

/** `trips`: a trip state transition. */
export const TripEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      event_type: TripEventType,
      timestamp: IsoTimestamp,
      trip_id: t.string,
      rider_id: t.string,
      pickup_location: LatLon,
      dropoff_location: LatLon,
      pickup_zone_id: t.string,
      dropoff_zone_id: t.string,
      surge_multiplier: NonNegative,
      fare: NonNegative,
    }),
    t.partial({ driver_id: NullableString }),
    TracingEnvelope,
  ],
  'TripEvent',
);
export type TripEvent = t.TypeOf<typeof TripEvent>;

/** `driver_status`: a driver's status change. */
export const DriverStatusEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      driver_id: t.string,
      timestamp: IsoTimestamp,
      new_status: DriverStatus,
      trigger: t.string,
      location: LatLon,
    }),
    t.partial({ previous_status: NullableString }),
    TracingEnvelope,
  ],
  'DriverStatusEvent',
);
export type DriverStatusEvent = t.TypeOf<typeof DriverStatusEvent>;

/** `surge_updates`: a zone's surge multiplier changed. */
export const SurgeUpdateEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      zone_id: t.string,
      timestamp: IsoTimestamp,
      previous_multiplier: t.number,
      new_multiplier: t.number,
      available_drivers: t.Int,
      pending_requests: t.Int,
    }),
    TracingEnvelope,
  ],
  'SurgeUpdateEvent',
);
export type SurgeUpdateEvent = t.TypeOf<typeof SurgeUpdateEvent>;

/** `ratings`: a rating given after a trip. */
export const RatingEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      trip_id: t.string,
      timestamp: IsoTimestamp,
      rater_type: EntityType,
      rater_id: t.string,
      ratee_type: EntityType,
      ratee_id: t.string,
      rating: StarRating,
    }),
    TracingEnvelope,
  ],
  'RatingEvent',
);
export type RatingEvent = t.TypeOf<typeof RatingEvent>;

/** `payments`: a trip's payment with the platform fee split. */
export const PaymentEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      payment_id: t.string,
      trip_id: t.string,
      timestamp: IsoTimestamp,
      rider_id: t.string,
      driver_id: t.string,
      payment_method_type: PaymentMethodType,
      fare_amount: NonNegative,
      platform_fee_percentage: t.number,
      platform_fee_amount: NonNegative,
      driver_payout_amount: NonNegative,
    }),
    TracingEnvelope,
  ],
  'PaymentEvent',
);
export type PaymentEvent = t.TypeOf<typeof PaymentEvent>;

/** `driver_profiles`: a driver profile was created or updated. */
export const DriverProfileEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      event_type: DriverProfileEventType,
      driver_id: t.string,
      timestamp: IsoTimestamp,
    }),
    TracingEnvelope,
  ],
  'DriverProfileEvent',
);
export type DriverProfileEvent = t.TypeOf<typeof DriverProfileEvent>;

/** `rider_profiles`: a rider profile was created or updated. */
export const RiderProfileEvent = t.intersection(
  [
    t.type({
      event_id: t.string,
      event_type: RiderProfileEventType,
      rider_id: t.string,
      timestamp: IsoTimestamp,
    }),
    TracingEnvelope,
  ],
  'RiderProfileEvent',
);
export type RiderProfileEvent = t.TypeOf<typeof RiderProfileEvent>;

/** The codec each bronze topic's records must pass (schema validation in the bronze pipeline). */
export const bronzeCodecs: Record<BronzeTopic, t.Mixed> = {
  gps_pings: GpsPingEvent,
  trips: TripEvent,
  driver_status: DriverStatusEvent,
  surge_updates: SurgeUpdateEvent,
  ratings: RatingEvent,
  payments: PaymentEvent,
  driver_profiles: DriverProfileEvent,
  rider_profiles: RiderProfileEvent,
};

/** Event type per topic, for code that switches on the topic. */
export interface BronzeEventMap {
  gps_pings: GpsPingEvent;
  trips: TripEvent;
  driver_status: DriverStatusEvent;
  surge_updates: SurgeUpdateEvent;
  ratings: RatingEvent;
  payments: PaymentEvent;
  driver_profiles: DriverProfileEvent;
  rider_profiles: RiderProfileEvent;
}

// ---------------------------------------------------------------------------------------------
// Byte-level checks (the fast accept path of `routeErrors`' `acceptsBytes`)
// ---------------------------------------------------------------------------------------------

const B_SPACE = 0x20;
const B_PLUS = 0x2b;
const B_COMMA = 0x2c;
const B_MINUS = 0x2d;
const B_DOT = 0x2e;
const B_ZERO = 0x30;
const B_NINE = 0x39;
const B_COLON = 0x3a;
const B_UPPER_E = 0x45;
const B_UPPER_T = 0x54;
const B_UPPER_Z = 0x5a;
const B_RBRACKET = 0x5d;
const B_LOWER_E = 0x65;
const B_LOWER_T = 0x74;
const B_LOWER_Z = 0x7a;

/** Two ASCII digits at i (both before `end`) as a number, or -1. */
function twoDigits(b: Uint8Array, i: number, end: number): number {
  if (i + 1 >= end) return -1;
  const hi = (b[i] as number) - B_ZERO;
  const lo = (b[i + 1] as number) - B_ZERO;
  return hi >= 0 && hi <= 9 && lo >= 0 && lo <= 9 ? hi * 10 + lo : -1;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/**
 * The `IsoTimestamp` check on raw bytes: `bytes[start, end)` is the string's text (UTF-8, no
 * escapes). Accepts exactly what the codec's regular expression and range checks accept.
 */
export function isIsoTimestampBytes(b: Uint8Array, start: number, end: number): boolean {
  if (end - start < 19) return false;
  const y1 = twoDigits(b, start, end);
  const y2 = twoDigits(b, start + 2, end);
  const month = twoDigits(b, start + 5, end);
  const day = twoDigits(b, start + 8, end);
  const hour = twoDigits(b, start + 11, end);
  const minute = twoDigits(b, start + 14, end);
  const second = twoDigits(b, start + 17, end);
  if ((y1 | y2 | month | day | hour | minute | second) < 0) return false;
  if (b[start + 4] !== B_MINUS || b[start + 7] !== B_MINUS || b[start + 13] !== B_COLON || b[start + 16] !== B_COLON) return false;
  const sep = b[start + 10];
  if (sep !== B_UPPER_T && sep !== B_LOWER_T && sep !== B_SPACE) return false;
  let i = start + 19;
  if (i < end && (b[i] === B_DOT || b[i] === B_COMMA)) {
    const from = ++i;
    while (i < end && (b[i] as number) >= B_ZERO && (b[i] as number) <= B_NINE) i++;
    if (i === from || i - from > 9) return false;
  }
  if (i < end) {
    const z = b[i];
    if (z === B_UPPER_Z || z === B_LOWER_Z) {
      i++;
    } else if (z === B_PLUS || z === B_MINUS) {
      const zh = twoDigits(b, i + 1, end);
      if (zh < 0) return false;
      i += 3;
      if (i < end && b[i] === B_COLON) i++;
      const zm = twoDigits(b, i, end);
      if (zm < 0 || zh > 23 || zm > 59) return false;
      i += 2;
    } else {
      return false;
    }
  }
  if (i !== end) return false;
  const year = y1 * 100 + y2;
  if (month < 1 || month > 12 || day < 1 || day > (DAYS_IN_MONTH[month - 1] ?? 31)) return false;
  if (month === 2 && day === 29 && !((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0)) return false;
  return hour <= 23 && minute <= 59 && second <= 60;
}

/**
 * Scans a JSON number at i and tells whether it is a plain decimal (no exponent) within
 * [-limit, limit] (limit < 1000, an integer); returns the index after it, or -1 when it is not
 * such a number (or not a number).
 */
function decimalWithin(b: Uint8Array, i: number, end: number, limit: number): number {
  if (i < end && b[i] === B_MINUS) i++;
  let int = 0;
  const from = i;
  while (i < end && (b[i] as number) >= B_ZERO && (b[i] as number) <= B_NINE) {
    int = int * 10 + ((b[i] as number) - B_ZERO);
    i++;
    if (i - from > 3) return -1;
  }
  if (i === from) return -1;
  let fractionNonZero = false;
  if (i < end && b[i] === B_DOT) {
    i++;
    while (i < end && (b[i] as number) >= B_ZERO && (b[i] as number) <= B_NINE) {
      if (b[i] !== B_ZERO) fractionNonZero = true;
      i++;
    }
  }
  if (i < end && (b[i] === B_LOWER_E || b[i] === B_UPPER_E)) return -1;
  if (int > limit || (int === limit && fractionNonZero)) return -1;
  return i;
}

function skipJsonWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `LatLon` on bytes: `[lat, lon]`, two plain decimals within range (exponents → false). */
const latLonBytes: FieldCheck = (b, kind, start, end) => {
  if (kind !== KIND_ARRAY) return false;
  let i = skipJsonWs(b, start + 1, end);
  i = decimalWithin(b, i, end, 90);
  if (i < 0) return false;
  i = skipJsonWs(b, i, end);
  if (b[i] !== B_COMMA) return false;
  i = decimalWithin(b, skipJsonWs(b, i + 1, end), end, 180);
  if (i < 0) return false;
  i = skipJsonWs(b, i, end);
  return i === end - 1 && b[i] === B_RBRACKET;
};

/** `NonNegative` on bytes: no sign, no exponent, and few enough digits to be finite. */
const nonNegativeBytes: FieldCheck = (b, kind, start, end) => {
  if (kind !== KIND_NUMBER || b[start] === B_MINUS || end - start > 300) return false;
  for (let i = start; i < end; i++) if (b[i] === B_LOWER_E || b[i] === B_UPPER_E) return false;
  return true;
};

/** `StarRating` on bytes: the single digit 1–5 (`5.0` and the like go to the slow path). */
const starRatingBytes: FieldCheck = (b, kind, start, end) =>
  kind === KIND_NUMBER && end - start === 1 && (b[start] as number) >= 0x31 && (b[start] as number) <= 0x35;

/** `IsoTimestamp` on bytes: an unescaped string whose text passes {@link isIsoTimestampBytes}. */
const isoTimestampBytes: FieldCheck = (b, kind, start, end, escaped) =>
  kind === KIND_STRING && !escaped && isIsoTimestampBytes(b, start + 1, end - 1);

/** Byte-level checks of this module's custom codecs, for {@link compileBytesGuard}. */
export const rideshareByteChecks: ReadonlyMap<t.Mixed, FieldCheck> = new Map<t.Mixed, FieldCheck>([
  [IsoTimestamp, isoTimestampBytes],
  [LatLon, latLonBytes],
  [NonNegative, nonNegativeBytes],
  [StarRating, starRatingBytes],
]);

function mustCompile(topic: BronzeTopic): BytesGuard {
  const guard = compileBytesGuard(bronzeCodecs[topic], rideshareByteChecks);
  if (guard === undefined) throw new Error(`rideshare codecs: no byte-level guard for ${topic}`);
  return guard;
}

/**
 * A byte-level accept guard per bronze topic (see `compileBytesGuard`): `true` only when the
 * record's bytes are UTF-8 JSON that the topic's codec accepts; `false` means "ask the slow
 * path". For `routeErrors`' `acceptsBytes`.
 */
export const bronzeBytesGuards: Record<BronzeTopic, BytesGuard> = {
  gps_pings: mustCompile('gps_pings'),
  trips: mustCompile('trips'),
  driver_status: mustCompile('driver_status'),
  surge_updates: mustCompile('surge_updates'),
  ratings: mustCompile('ratings'),
  payments: mustCompile('payments'),
  driver_profiles: mustCompile('driver_profiles'),
  rider_profiles: mustCompile('rider_profiles'),
};
