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
import type { BronzeTopic } from './topics.ts';

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/**
 * `YYYY-MM-DD`, `T` or a space, `hh:mm:ss`, optional fraction (1–9 digits), optional zone
 * (`Z`, `±hh:mm` or `±hhmm`; no zone = UTC).
 */
const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** Range checks on a regex match: real month/day (leap years included), time and zone. */
function validFields(m: RegExpExecArray): boolean {
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > (DAYS_IN_MONTH[month - 1] ?? 31)) return false;
  if (month === 2 && day === 29 && !((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0)) return false;
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 60) return false;
  return m[10] === undefined || (Number(m[10]) <= 23 && Number(m[11]) <= 59);
}

/**
 * Parses an ISO-8601 timestamp (with or without the zone colon, up to nanoseconds, `T` or a
 * space between date and time; no zone means UTC) to epoch microseconds. Fractions beyond
 * microseconds are truncated; a leap second (`:60`) reads as `:59.999999`. Returns `null` when
 * `s` is not such a timestamp or names an impossible date or time.
 */
export function parseIsoTimestampMicros(s: string): bigint | null {
  const m = ISO_TIMESTAMP.exec(s);
  if (m === null || !validFields(m)) return null;
  const second = Number(m[6]);
  const offsetMinutes = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Math.min(second, 59), 0);
  const epochMs = d.getTime() - offsetMinutes * 60_000;
  const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0').slice(0, 6));
  return BigInt(epochMs) * 1000n + BigInt(second === 60 ? 999_999 : fraction);
}

/** The codec's check: shape and ranges only, no date arithmetic. */
function isIsoTimestamp(s: string): boolean {
  const m = ISO_TIMESTAMP.exec(s);
  return m !== null && validFields(m);
}

export interface IsoTimestampBrand {
  readonly IsoTimestamp: unique symbol;
}

/** An ISO-8601 timestamp string that parses as a date (see {@link parseIsoTimestampMicros}). */
export const IsoTimestamp = t.brand(
  t.string,
  (s): s is t.Branded<string, IsoTimestampBrand> => isIsoTimestamp(s),
  'IsoTimestamp',
);
export type IsoTimestamp = t.TypeOf<typeof IsoTimestamp>;

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
