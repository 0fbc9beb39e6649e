/**
 * Synthetic rideshare events: pure, deterministic factories (same seed, same events) for the
 * eight bronze topics, and `corrupt()`, which turns a valid event's bytes into each kind of bad
 * input the bronze pipeline must send to its dead-letter tables.
 *
 * The generator keeps a small world: a pool of drivers and riders in São Paulo, surge zones,
 * and trips that move through a plausible lifecycle (requested → offer → assigned → pickup →
 * in transit → completed, with rejections, expiries and cancellations). Driver status changes,
 * payments and ratings follow the trips they belong to, GPS pings follow the entities, and the
 * tracing envelope links events of one trip (`correlation_id` = trip id, `causation_id` = the
 * trip's previous event).
 */
import type { DeadLetterErrorType } from '../../types.ts';
import type { BronzeTopic } from './topics.ts';

// ---------------------------------------------------------------------------------------------
// Public shapes
// ---------------------------------------------------------------------------------------------

export interface EventGeneratorOptions {
  /** PRNG seed; the same seed and options give the same events. Default 1. */
  readonly seed?: number;
  /** Size of the driver pool. Default 50. */
  readonly drivers?: number;
  /** Size of the rider pool. Default 200. */
  readonly riders?: number;
  /** Simulated clock start, epoch ms or a Date. Default 2025-01-06T08:00:00Z (fixed, for determinism). */
  readonly startTime?: number | Date;
  /** Mean simulated milliseconds between two generated events. Default 20. */
  readonly meanStepMs?: number;
  /** The envelope's `session_id`; default a seed-derived id. `null` leaves it null. */
  readonly sessionId?: string | null;
}

/** One event ready to produce: the Kafka key (entity id) and the JSON value. */
export interface GeneratedEvent {
  readonly key: string;
  readonly value: Record<string, unknown>;
}

export interface EventGenerator {
  /** The next event for `topic`; advances the simulated clock. */
  next(topic: BronzeTopic): GeneratedEvent;
  /** Current simulated time, epoch ms. */
  readonly now: number;
  readonly driverIds: readonly string[];
  readonly riderIds: readonly string[];
  readonly zoneIds: readonly string[];
}

export const CORRUPTION_KINDS = ['invalid_utf8', 'truncated_json', 'missing_field', 'wrong_type', 'null_value'] as const;
export type CorruptionKind = (typeof CORRUPTION_KINDS)[number];

/** The dead-letter error type the bronze pipeline must report for each corruption kind. */
export const EXPECTED_ERROR_TYPE: Readonly<Record<CorruptionKind, DeadLetterErrorType>> = {
  invalid_utf8: 'ENCODING_ERROR',
  truncated_json: 'JSON_PARSE_ERROR',
  missing_field: 'SCHEMA_VALIDATION_ERROR',
  wrong_type: 'SCHEMA_VALIDATION_ERROR',
  null_value: 'NULL_VALUE',
};

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/** mulberry32: small, fast, good enough for synthetic data (and seeded tests). Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

class Random {
  readonly float: () => number;
  private readonly u32: () => number;

  constructor(seed: number) {
    this.float = mulberry32(seed);
    const f = this.float;
    this.u32 = () => Math.floor(f() * 4294967296) >>> 0;
  }

  int(min: number, maxInclusive: number): number {
    return min + Math.floor(this.float() * (maxInclusive - min + 1));
  }

  range(min: number, max: number): number {
    return min + this.float() * (max - min);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.float() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** Picks by weight: `weights[i]` for `items[i]`. */
  weighted<T>(items: readonly T[], weights: readonly number[]): T {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.float() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i] ?? 0;
      if (r < 0) return items[i] as T;
    }
    return items[items.length - 1] as T;
  }

  /** An RFC 4122 version-4 UUID drawn from this generator. */
  uuid(): string {
    const a = this.u32();
    const b = this.u32();
    const c = this.u32();
    const d = this.u32();
    const h = (n: number, shift: number): string => HEX[(n >>> shift) & 0xff] as string;
    return (
      h(a, 24) + h(a, 16) + h(a, 8) + h(a, 0) + '-' +
      h(b, 24) + h(b, 16) + '-' +
      HEX[0x40 | ((b >>> 8) & 0x0f)] + h(b, 0) + '-' +
      HEX[0x80 | ((c >>> 24) & 0x3f)] + h(c, 16) + '-' +
      h(c, 8) + h(c, 0) + h(d, 24) + h(d, 16) + h(d, 8) + h(d, 0)
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The world: São Paulo zones, drivers, riders, trips
// ---------------------------------------------------------------------------------------------

type LatLon = [number, number];

interface Zone {
  readonly id: string;
  readonly center: LatLon;
  multiplier: number;
}

const ZONES: ReadonlyArray<readonly [string, number, number]> = [
  ['se', -23.5503, -46.6339],
  ['republica', -23.5431, -46.6424],
  ['bela_vista', -23.5614, -46.6497],
  ['consolacao', -23.5524, -46.6596],
  ['pinheiros', -23.5663, -46.6917],
  ['vila_madalena', -23.5534, -46.6899],
  ['itaim_bibi', -23.5846, -46.6779],
  ['moema', -23.6009, -46.6650],
  ['vila_mariana', -23.5891, -46.6345],
  ['liberdade', -23.5587, -46.6350],
  ['mooca', -23.5603, -46.5993],
  ['tatuape', -23.5403, -46.5765],
  ['santana', -23.5022, -46.6249],
  ['lapa', -23.5229, -46.7034],
  ['butanta', -23.5719, -46.7083],
  ['brooklin', -23.6130, -46.6930],
];

const FIRST_NAMES = ['João', 'Maria', 'José', 'Ana', 'Lucas', 'Juliana', 'Pedro', 'Fernanda', 'Gabriel', 'Camila', 'Rafael', 'Beatriz', 'Mateus', 'Letícia', 'Thiago', 'Conceição', 'André', 'Patrícia', 'Bruno', 'Larissa'] as const;
const LAST_NAMES = ['Silva', 'Santos', 'Oliveira', 'Souza', 'Rodrigues', 'Ferreira', 'Alves', 'Pereira', 'Lima', 'Gomes', 'Ribeiro', 'Carvalho', 'Araújo', 'Gonçalves', 'Conceição', 'Barbosa'] as const;
const VEHICLES: ReadonlyArray<readonly [string, string]> = [
  ['Chevrolet', 'Onix'],
  ['Hyundai', 'HB20'],
  ['Fiat', 'Argo'],
  ['Volkswagen', 'Gol'],
  ['Volkswagen', 'Polo'],
  ['Toyota', 'Corolla'],
  ['Renault', 'Kwid'],
  ['Nissan', 'Versa'],
  ['Fiat', 'Cronos'],
];
const SHIFTS = ['morning', 'afternoon', 'evening', 'night', 'flexible'] as const;
type PaymentMethod = 'credit_card' | 'digital_wallet';
const CARD_BRANDS = ['VISA', 'MC', 'ELO', 'AMEX'] as const;
const WALLETS = ['PIX', 'PICPAY', 'MERCADOPAGO'] as const;
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

type DriverState = 'offline' | 'available' | 'en_route_pickup' | 'on_trip';

interface Driver {
  readonly id: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly home: LatLon;
  readonly make: string;
  readonly model: string;
  readonly year: number;
  readonly plate: string;
  readonly shift: (typeof SHIFTS)[number];
  readonly phone: string;
  location: LatLon;
  heading: number;
  status: DriverState;
  tripId: string | null;
}

interface Rider {
  readonly id: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly home: LatLon;
  readonly phone: string;
  readonly paymentType: PaymentMethod;
  readonly paymentMasked: string;
  readonly behavior: number;
  location: LatLon;
  tripId: string | null;
}

type TripStage = 'requested' | 'offer_sent' | 'driver_assigned' | 'en_route_pickup' | 'at_pickup' | 'in_transit';

interface Trip {
  readonly id: string;
  readonly rider: Rider;
  driver: Driver | null;
  candidate: Driver | null;
  stage: TripStage;
  offerSequence: number;
  readonly pickup: LatLon;
  readonly dropoff: LatLon;
  readonly pickupZone: Zone;
  readonly dropoffZone: Zone;
  readonly surge: number;
  readonly fare: number;
  readonly route: LatLon[];
  progress: number;
  lastEventId: string | null;
}

interface FinishedTrip {
  readonly id: string;
  readonly riderId: string;
  readonly driverId: string;
  readonly fare: number;
  readonly paymentType: PaymentMethod;
  readonly paymentMasked: string;
  readonly lastEventId: string | null;
}

interface PendingStatus {
  readonly driver: Driver;
  readonly previous: DriverState;
  readonly next: DriverState;
  readonly trigger: string;
  readonly tripId: string | null;
  readonly causationId: string | null;
}

const DEFAULT_START = Date.UTC(2025, 0, 6, 8, 0, 0);
const MAX_ACTIVE_TRIPS = 64;
const MAX_PENDING = 4096;

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function ascii(s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

/** Great-circle-ish distance in km (equirectangular; fine at city scale). */
function distanceKm(a: LatLon, b: LatLon): number {
  const dLat = (b[0] - a[0]) * 111.32;
  const dLon = (b[1] - a[1]) * 111.32 * Math.cos((a[0] * Math.PI) / 180);
  return Math.sqrt(dLat * dLat + dLon * dLon);
}

function bearing(a: LatLon, b: LatLon): number {
  const deg = (Math.atan2(b[1] - a[1], b[0] - a[0]) * 180) / Math.PI;
  return Math.round((deg + 360) % 360) % 360;
}

/**
 * Creates a deterministic generator of rideshare events.
 *
 * ## Example
 * ```ts
 * const gen = createEventGenerator({ seed: 42 });
 * const { key, value } = gen.next('gps_pings');
 * producer.send({ topic: 'gps_pings', messages: [{ key, value: JSON.stringify(value) }] });
 * ```
 */
export function createEventGenerator(options: EventGeneratorOptions = {}): EventGenerator {
  const { seed = 1, drivers: driverCount = 50, riders: riderCount = 200, startTime = DEFAULT_START, meanStepMs = 20 } = options;
  if (!Number.isInteger(driverCount) || driverCount < 1) throw new RangeError('drivers must be a positive integer');
  if (!Number.isInteger(riderCount) || riderCount < 1) throw new RangeError('riders must be a positive integer');
  const rnd = new Random(seed);
  const sessionId = options.sessionId === undefined ? `sim-${rnd.uuid().slice(0, 8)}` : options.sessionId;
  let clock = typeof startTime === 'number' ? startTime : startTime.getTime();
  let microTail = 0;

  const zones: Zone[] = ZONES.map(([id, lat, lon]) => ({ id, center: [lat, lon], multiplier: 1 }));
  const pointIn = (zone: Zone, radiusDeg = 0.012): LatLon => [
    round(zone.center[0] + rnd.range(-radiusDeg, radiusDeg), 6),
    round(zone.center[1] + rnd.range(-radiusDeg, radiusDeg), 6),
  ];
  const zoneOf = (p: LatLon): Zone => {
    let best = zones[0] as Zone;
    let bestD = Infinity;
    for (const z of zones) {
      const d = (z.center[0] - p[0]) ** 2 + (z.center[1] - p[1]) ** 2;
      if (d < bestD) {
        bestD = d;
        best = z;
      }
    }
    return best;
  };
  const phone = (): string => `+55 11 9${rnd.int(1000, 9999)}-${rnd.int(1000, 9999)}`;

  const drivers: Driver[] = [];
  for (let i = 0; i < driverCount; i++) {
    const home = pointIn(rnd.pick(zones), 0.03);
    const [make, model] = rnd.pick(VEHICLES);
    drivers.push({
      id: rnd.uuid(),
      firstName: rnd.pick(FIRST_NAMES),
      lastName: rnd.pick(LAST_NAMES),
      home,
      make,
      model,
      year: rnd.int(2012, 2024),
      plate: `${rnd.pick([...LETTERS])}${rnd.pick([...LETTERS])}${rnd.pick([...LETTERS])}${rnd.int(0, 9)}${rnd.pick([...LETTERS])}${rnd.int(10, 99)}`,
      shift: rnd.pick(SHIFTS),
      phone: phone(),
      location: [home[0], home[1]],
      heading: rnd.int(0, 359),
      status: rnd.chance(0.8) ? 'available' : 'offline',
      tripId: null,
    });
  }
  const riders: Rider[] = [];
  for (let i = 0; i < riderCount; i++) {
    const home = pointIn(rnd.pick(zones), 0.03);
    const paymentType: PaymentMethod = rnd.chance(0.7) ? 'credit_card' : 'digital_wallet';
    riders.push({
      id: rnd.uuid(),
      firstName: rnd.pick(FIRST_NAMES),
      lastName: rnd.pick(LAST_NAMES),
      home,
      phone: phone(),
      paymentType,
      paymentMasked: paymentType === 'credit_card' ? `${rnd.pick(CARD_BRANDS)} ****${rnd.int(1000, 9999)}` : `${rnd.pick(WALLETS)} ***${rnd.int(100, 999)}`,
      behavior: round(rnd.float(), 3),
      location: [home[0], home[1]],
      tripId: null,
    });
  }

  const activeTrips: Trip[] = [];
  const maxActiveTrips = Math.max(1, Math.min(MAX_ACTIVE_TRIPS, Math.floor(driverCount * 0.6)));
  const finishedForPayment: FinishedTrip[] = [];
  const finishedForRating: Array<{ trip: FinishedTrip; raterType: 'rider' | 'driver' }> = [];
  const pendingStatus: PendingStatus[] = [];
  let driverProfileCursor = 0;
  let riderProfileCursor = 0;

  // -------------------------------------------------------------------------------------------
  // Time
  // -------------------------------------------------------------------------------------------

  const tick = (): void => {
    clock += Math.floor(rnd.float() * 2 * meanStepMs);
    microTail = Math.floor(rnd.float() * 1000);
  };
  /** Python-style `isoformat()` in UTC with microseconds: `2025-01-06T08:00:00.123456+00:00`. */
  const timestamp = (): string => {
    const iso = new Date(clock).toISOString();
    return `${iso.slice(0, 23)}${String(microTail).padStart(3, '0')}+00:00`;
  };
  const envelope = (correlationId: string | null, causationId: string | null) => ({
    session_id: sessionId,
    correlation_id: correlationId,
    causation_id: causationId,
  });

  // -------------------------------------------------------------------------------------------
  // Trips
  // -------------------------------------------------------------------------------------------

  const availableDriver = (near: LatLon): Driver | null => {
    let best: Driver | null = null;
    let bestD = Infinity;
    // Sample a few drivers rather than scanning all: cheap and still plausible.
    for (let i = 0; i < 8; i++) {
      const d = rnd.pick(drivers);
      if (d.status !== 'available' || d.tripId !== null) continue;
      const dist = distanceKm(d.location, near);
      if (dist < bestD) {
        bestD = dist;
        best = d;
      }
    }
    return best;
  };

  const queueStatus = (driver: Driver, next: DriverState, trigger: string, tripId: string | null, causationId: string | null): void => {
    const previous = driver.status;
    driver.status = next;
    if (pendingStatus.length < MAX_PENDING) pendingStatus.push({ driver, previous, next, trigger, tripId, causationId });
  };

  const newTrip = (): Trip | null => {
    let rider: Rider | null = null;
    for (let i = 0; i < 8 && rider === null; i++) {
      const r = rnd.pick(riders);
      if (r.tripId === null) rider = r;
    }
    if (rider === null) return null;
    const pickupZone = zoneOf(rider.location);
    const pickup = pointIn(pickupZone, 0.004);
    const dropoffZone = rnd.pick(zones);
    const dropoff = pointIn(dropoffZone);
    const km = distanceKm(pickup, dropoff);
    const surge = pickupZone.multiplier;
    const fare = round((4.5 + 1.9 * km + 0.35 * (km / 0.4)) * surge, 2);
    const steps = Math.max(2, Math.min(12, Math.round(km)));
    const route: LatLon[] = [];
    for (let i = 0; i <= steps; i++) {
      const f = i / steps;
      route.push([round(pickup[0] + (dropoff[0] - pickup[0]) * f, 6), round(pickup[1] + (dropoff[1] - pickup[1]) * f, 6)]);
    }
    const trip: Trip = {
      id: rnd.uuid(),
      rider,
      driver: null,
      candidate: null,
      stage: 'requested',
      offerSequence: 0,
      pickup,
      dropoff,
      pickupZone,
      dropoffZone,
      surge,
      fare,
      route,
      progress: 0,
      lastEventId: null,
    };
    rider.tripId = trip.id;
    return trip;
  };

  const tripEvent = (trip: Trip, eventType: string, extra: Record<string, unknown> = {}): GeneratedEvent => {
    const eventId = rnd.uuid();
    const value = {
      event_id: eventId,
      event_type: eventType,
      timestamp: timestamp(),
      trip_id: trip.id,
      rider_id: trip.rider.id,
      driver_id: trip.driver?.id ?? trip.candidate?.id ?? null,
      pickup_location: trip.pickup,
      dropoff_location: trip.dropoff,
      pickup_zone_id: trip.pickupZone.id,
      dropoff_zone_id: trip.dropoffZone.id,
      surge_multiplier: trip.surge,
      fare: trip.fare,
      offer_sequence: trip.offerSequence > 0 ? trip.offerSequence : null,
      cancelled_by: null,
      cancellation_reason: null,
      cancellation_stage: null,
      route: null,
      pickup_route: null,
      route_progress_index: null,
      pickup_route_progress_index: null,
      ...envelope(trip.id, trip.lastEventId),
      ...extra,
    };
    trip.lastEventId = eventId;
    return { key: trip.id, value };
  };

  const endTrip = (trip: Trip): void => {
    const i = activeTrips.indexOf(trip);
    if (i >= 0) activeTrips.splice(i, 1);
    trip.rider.tripId = null;
    if (trip.driver !== null) trip.driver.tripId = null;
  };

  const completeTrip = (trip: Trip, driver: Driver): void => {
    endTrip(trip);
    const done: FinishedTrip = {
      id: trip.id,
      riderId: trip.rider.id,
      driverId: driver.id,
      fare: trip.fare,
      paymentType: trip.rider.paymentType,
      paymentMasked: trip.rider.paymentMasked,
      lastEventId: trip.lastEventId,
    };
    if (finishedForPayment.length < MAX_PENDING) finishedForPayment.push(done);
    if (finishedForRating.length < MAX_PENDING - 1) {
      finishedForRating.push({ trip: done, raterType: 'rider' });
      if (rnd.chance(0.6)) finishedForRating.push({ trip: done, raterType: 'driver' });
    }
  };

  const cancel = (trip: Trip, by: 'rider' | 'driver', reason: string): GeneratedEvent => {
    const ev = tripEvent(trip, 'trip.cancelled', { cancelled_by: by, cancellation_reason: reason, cancellation_stage: trip.stage });
    const driver = trip.driver;
    endTrip(trip);
    if (driver !== null) queueStatus(driver, 'available', 'trip_cancelled', trip.id, trip.lastEventId);
    return ev;
  };

  const advance = (trip: Trip): GeneratedEvent => {
    switch (trip.stage) {
      case 'requested': {
        const candidate = availableDriver(trip.pickup);
        if (candidate === null || trip.offerSequence >= 3) {
          endTrip(trip);
          return tripEvent(trip, 'trip.no_drivers_available');
        }
        trip.candidate = candidate;
        candidate.tripId = trip.id; // reserved while the offer is out
        trip.offerSequence += 1;
        trip.stage = 'offer_sent';
        return tripEvent(trip, 'trip.offer_sent');
      }
      case 'offer_sent': {
        const candidate = trip.candidate;
        const roll = rnd.float();
        if (candidate === null || roll < 0.18) {
          const eventType = roll < 0.1 ? 'trip.offer_rejected' : 'trip.offer_expired';
          const ev = tripEvent(trip, eventType);
          if (candidate !== null) candidate.tripId = null;
          trip.candidate = null;
          trip.stage = 'requested';
          return ev;
        }
        trip.driver = candidate;
        trip.candidate = null;
        trip.stage = 'driver_assigned';
        const ev = tripEvent(trip, 'trip.driver_assigned');
        queueStatus(candidate, 'en_route_pickup', 'trip_accepted', trip.id, trip.lastEventId);
        return ev;
      }
      case 'driver_assigned': {
        if (rnd.chance(0.04)) return cancel(trip, 'rider', 'changed_mind');
        trip.stage = 'en_route_pickup';
        const pickupRoute: LatLon[] = trip.driver === null ? [] : [trip.driver.location, trip.pickup];
        return tripEvent(trip, 'trip.en_route_pickup', { pickup_route: pickupRoute, pickup_route_progress_index: 0 });
      }
      case 'en_route_pickup': {
        if (rnd.chance(0.03)) return cancel(trip, rnd.chance(0.5) ? 'rider' : 'driver', rnd.pick(['wait_time_too_long', 'driver_too_far', 'rider_no_show']));
        trip.stage = 'at_pickup';
        if (trip.driver !== null) trip.driver.location = [trip.pickup[0], trip.pickup[1]];
        return tripEvent(trip, 'trip.at_pickup', { pickup_route_progress_index: 1 });
      }
      case 'at_pickup': {
        trip.stage = 'in_transit';
        const ev = tripEvent(trip, 'trip.in_transit', { route: trip.route, route_progress_index: 0 });
        if (trip.driver !== null) queueStatus(trip.driver, 'on_trip', 'rider_picked_up', trip.id, trip.lastEventId);
        return ev;
      }
      case 'in_transit': {
        const driver = trip.driver;
        const ev = tripEvent(trip, 'trip.completed', { route_progress_index: trip.route.length - 1 });
        if (driver !== null) {
          driver.location = [trip.dropoff[0], trip.dropoff[1]];
          completeTrip(trip, driver);
          queueStatus(driver, 'available', 'trip_completed', trip.id, trip.lastEventId);
        } else {
          endTrip(trip);
        }
        trip.rider.location = [trip.dropoff[0], trip.dropoff[1]];
        return ev;
      }
    }
  };

  const nextTrip = (): GeneratedEvent => {
    const wantNew = activeTrips.length === 0 || (activeTrips.length < maxActiveTrips && rnd.chance(0.2));
    if (wantNew) {
      const trip = newTrip();
      if (trip !== null) {
        activeTrips.push(trip);
        return tripEvent(trip, 'trip.requested');
      }
    }
    if (activeTrips.length === 0) {
      // Every sampled rider was busy and there is no trip to advance: a request that finds no one.
      const trip = newTrip() ?? newTripForAnyRider();
      endTrip(trip);
      return tripEvent(trip, 'trip.no_drivers_available');
    }
    return advance(rnd.pick(activeTrips));
  };

  const newTripForAnyRider = (): Trip => {
    const rider = rnd.pick(riders);
    const saved = rider.tripId;
    rider.tripId = null;
    const trip = newTrip();
    rider.tripId = saved;
    if (trip === null) throw new Error('unreachable: a free rider was prepared');
    return trip;
  };

  /** A trip that finished before this generator started (for payments/ratings with nothing queued). */
  const historicTrip = (): FinishedTrip => {
    const rider = rnd.pick(riders);
    return {
      id: rnd.uuid(),
      riderId: rider.id,
      driverId: rnd.pick(drivers).id,
      fare: round(rnd.range(8, 90), 2),
      paymentType: rider.paymentType,
      paymentMasked: rider.paymentMasked,
      lastEventId: null,
    };
  };

  // -------------------------------------------------------------------------------------------
  // Per-topic factories
  // -------------------------------------------------------------------------------------------

  const gpsPing = (): GeneratedEvent => {
    const fromDriver = rnd.chance(0.8);
    if (fromDriver) {
      const d = rnd.pick(drivers);
      const moving = d.status !== 'offline';
      const speed = moving ? round(rnd.range(0, 55), 1) : 0;
      if (moving) {
        const stepDeg = (speed / 3600) * 0.009 * 4; // ~4 s between pings
        const rad = (d.heading * Math.PI) / 180;
        d.location = [round(d.location[0] + Math.cos(rad) * stepDeg, 6), round(d.location[1] + Math.sin(rad) * stepDeg, 6)];
        if (distanceKm(d.location, d.home) > 15) d.heading = bearing(d.location, d.home);
        else d.heading = (d.heading + rnd.int(-25, 25) + 360) % 360;
      }
      const trip = d.tripId === null ? undefined : activeTrips.find((t) => t.id === d.tripId);
      const onTrip = trip !== undefined && (trip.stage === 'in_transit' || trip.stage === 'en_route_pickup' || trip.stage === 'at_pickup');
      return {
        key: d.id,
        value: {
          event_id: rnd.uuid(),
          entity_type: 'driver',
          entity_id: d.id,
          timestamp: timestamp(),
          location: d.location,
          heading: d.heading,
          speed,
          accuracy: round(rnd.range(2, 15), 1),
          trip_id: onTrip ? trip.id : null,
          ...envelope(onTrip ? trip.id : null, null),
          trip_state: onTrip ? trip.stage : null,
          route_progress_index: onTrip && trip.stage === 'in_transit' ? trip.progress : null,
          pickup_route_progress_index: onTrip && trip.stage === 'en_route_pickup' ? 0 : null,
        },
      };
    }
    // Riders ping mostly while on a trip.
    const trip = activeTrips.length > 0 && rnd.chance(0.7) ? rnd.pick(activeTrips) : undefined;
    const rider = trip?.rider ?? rnd.pick(riders);
    let tripState: string | null = null;
    let progress: number | null = null;
    if (trip !== undefined) {
      tripState = trip.stage;
      if (trip.stage === 'in_transit') {
        trip.progress = Math.min(trip.route.length - 1, trip.progress + (rnd.chance(0.5) ? 1 : 0));
        const p = trip.route[trip.progress];
        if (p !== undefined) rider.location = [p[0], p[1]];
        progress = trip.progress;
      }
    }
    return {
      key: rider.id,
      value: {
        event_id: rnd.uuid(),
        entity_type: 'rider',
        entity_id: rider.id,
        timestamp: timestamp(),
        location: rider.location,
        heading: null,
        speed: null,
        accuracy: round(rnd.range(3, 30), 1),
        trip_id: trip?.id ?? null,
        ...envelope(trip?.id ?? null, null),
        trip_state: tripState,
        route_progress_index: progress,
        pickup_route_progress_index: null,
      },
    };
  };

  const driverStatus = (): GeneratedEvent => {
    const pending = pendingStatus.shift();
    if (pending !== undefined) {
      return {
        key: pending.driver.id,
        value: {
          event_id: rnd.uuid(),
          driver_id: pending.driver.id,
          timestamp: timestamp(),
          previous_status: pending.previous,
          new_status: pending.next,
          trigger: pending.trigger,
          location: pending.driver.location,
          ...envelope(pending.tripId, pending.causationId),
        },
      };
    }
    // No trip-driven change queued: an idle driver goes online or offline.
    let d = rnd.pick(drivers);
    for (let i = 0; i < 8 && d.tripId !== null; i++) d = rnd.pick(drivers);
    const previous = d.status;
    let next: DriverState;
    let trigger: string;
    if (d.tripId !== null) {
      next = previous; // busy driver: a periodic status heartbeat
      trigger = 'heartbeat';
    } else if (previous === 'offline') {
      next = 'available';
      trigger = 'driver_went_online';
    } else {
      next = 'offline';
      trigger = 'driver_went_offline';
    }
    d.status = next;
    return {
      key: d.id,
      value: {
        event_id: rnd.uuid(),
        driver_id: d.id,
        timestamp: timestamp(),
        previous_status: previous,
        new_status: next,
        trigger,
        location: d.location,
        ...envelope(null, null),
      },
    };
  };

  const surgeUpdate = (): GeneratedEvent => {
    const zone = rnd.pick(zones);
    const previous = zone.multiplier;
    const next = Math.min(3.5, Math.max(1, round(previous + rnd.pick([-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3]), 1)));
    zone.multiplier = next;
    const pending = Math.max(0, Math.round((next - 1) * 12 + rnd.int(0, 6)));
    return {
      key: zone.id,
      value: {
        event_id: rnd.uuid(),
        zone_id: zone.id,
        timestamp: timestamp(),
        previous_multiplier: previous,
        new_multiplier: next,
        available_drivers: Math.max(0, rnd.int(2, 20) - Math.round((next - 1) * 5)),
        pending_requests: pending,
        calculation_window_seconds: 60,
        ...envelope(null, null),
      },
    };
  };

  const rating = (): GeneratedEvent => {
    const queued = finishedForRating.shift();
    const trip = queued?.trip ?? historicTrip();
    const raterType = queued?.raterType ?? (rnd.chance(0.6) ? 'rider' : 'driver');
    const stars = rnd.weighted([1, 2, 3, 4, 5], [2, 3, 10, 25, 60]);
    return {
      key: trip.id,
      value: {
        event_id: rnd.uuid(),
        trip_id: trip.id,
        timestamp: timestamp(),
        rater_type: raterType,
        rater_id: raterType === 'rider' ? trip.riderId : trip.driverId,
        ratee_type: raterType === 'rider' ? 'driver' : 'rider',
        ratee_id: raterType === 'rider' ? trip.driverId : trip.riderId,
        rating: stars,
        ...envelope(trip.id, trip.lastEventId),
      },
    };
  };

  const payment = (): GeneratedEvent => {
    const trip = finishedForPayment.shift() ?? historicTrip();
    const pct = 0.25;
    const fee = round(trip.fare * pct, 2);
    return {
      key: trip.id,
      value: {
        event_id: rnd.uuid(),
        payment_id: rnd.uuid(),
        trip_id: trip.id,
        timestamp: timestamp(),
        rider_id: trip.riderId,
        driver_id: trip.driverId,
        payment_method_type: trip.paymentType,
        payment_method_masked: trip.paymentMasked,
        fare_amount: trip.fare,
        platform_fee_percentage: pct,
        platform_fee_amount: fee,
        driver_payout_amount: round(trip.fare - fee, 2),
        ...envelope(trip.id, trip.lastEventId),
      },
    };
  };

  const driverProfile = (): GeneratedEvent => {
    const fresh = driverProfileCursor < drivers.length;
    const d = fresh ? (drivers[driverProfileCursor++] as Driver) : rnd.pick(drivers);
    return {
      key: d.id,
      value: {
        event_id: rnd.uuid(),
        event_type: fresh ? 'driver.created' : 'driver.updated',
        driver_id: d.id,
        timestamp: timestamp(),
        first_name: d.firstName,
        last_name: d.lastName,
        email: `${ascii(d.firstName)}.${ascii(d.lastName)}.${d.id.slice(0, 4)}@example.com`,
        phone: d.phone,
        home_location: d.home,
        shift_preference: d.shift,
        vehicle_make: d.make,
        vehicle_model: d.model,
        vehicle_year: d.year,
        license_plate: d.plate,
        ...envelope(null, null),
      },
    };
  };

  const riderProfile = (): GeneratedEvent => {
    const fresh = riderProfileCursor < riders.length;
    const r = fresh ? (riders[riderProfileCursor++] as Rider) : rnd.pick(riders);
    return {
      key: r.id,
      value: {
        event_id: rnd.uuid(),
        event_type: fresh ? 'rider.created' : 'rider.updated',
        rider_id: r.id,
        timestamp: timestamp(),
        first_name: r.firstName,
        last_name: r.lastName,
        email: `${ascii(r.firstName)}.${ascii(r.lastName)}.${r.id.slice(0, 4)}@example.com`,
        phone: r.phone,
        home_location: r.home,
        payment_method_type: r.paymentType,
        payment_method_masked: r.paymentMasked,
        behavior_factor: fresh ? r.behavior : null,
        ...envelope(null, null),
      },
    };
  };

  const factories: Record<BronzeTopic, () => GeneratedEvent> = {
    gps_pings: gpsPing,
    trips: nextTrip,
    driver_status: driverStatus,
    surge_updates: surgeUpdate,
    ratings: rating,
    payments: payment,
    driver_profiles: driverProfile,
    rider_profiles: riderProfile,
  };

  return {
    next(topic: BronzeTopic): GeneratedEvent {
      const factory = factories[topic];
      if (factory === undefined) throw new RangeError(`unknown topic: ${String(topic)}`);
      tick();
      return factory();
    },
    get now() {
      return clock;
    },
    driverIds: drivers.map((d) => d.id),
    riderIds: riders.map((r) => r.id),
    zoneIds: zones.map((z) => z.id),
  };
}

// ---------------------------------------------------------------------------------------------
// Padding and corruption
// ---------------------------------------------------------------------------------------------

/**
 * Pads a JSON object text to about `targetBytes` UTF-8 bytes by adding a `_padding` string
 * field (allowed: the schemas accept extra fields). Text already that long is returned as is.
 */
export function padJson(json: string, targetBytes: number, currentBytes = Buffer.byteLength(json)): string {
  const overhead = 14; // ,"_padding":""
  const missing = targetBytes - currentBytes - overhead;
  if (missing <= 0 || !json.endsWith('}')) return json;
  return `${json.slice(0, -1)},"_padding":"${'x'.repeat(missing)}"}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Fields every rideshare codec checks, in the order `missing_field`/`wrong_type` try them. */
const CHECKED_FIELDS = ['timestamp', 'event_id'] as const;

/**
 * Turns a valid event's bytes into the given kind of bad input. `variant` (any integer) picks
 * among a few ways of doing it, so a run of corruptions is not all alike.
 *
 * - `invalid_utf8`: a byte that can never appear in UTF-8 (0xFF, a lone continuation byte or an
 *   overlong sequence) inside the first string value → `ENCODING_ERROR`
 * - `truncated_json`: a strict prefix (10–90 % of the bytes) cut on a character boundary → `JSON_PARSE_ERROR`
 * - `missing_field`: `timestamp` or `event_id` removed → `SCHEMA_VALIDATION_ERROR`
 * - `wrong_type`: `timestamp` as epoch-millis number or `event_id` as a number → `SCHEMA_VALIDATION_ERROR`
 * - `null_value`: `null` (a Kafka tombstone) → `NULL_VALUE`
 */
export function corrupt(kind: CorruptionKind, validEventBytes: Uint8Array, variant = 0): Uint8Array | null {
  const v = Math.abs(Math.trunc(variant));
  switch (kind) {
    case 'null_value':
      return null;
    case 'invalid_utf8': {
      const out = Uint8Array.from(validEventBytes);
      // Inside the first string value (after `":"`), else the middle.
      let at = Math.floor(out.length / 2);
      for (let i = 0; i + 3 < out.length; i++) {
        if (out[i] === 0x22 && out[i + 1] === 0x3a && out[i + 2] === 0x22) {
          at = i + 3;
          break;
        }
      }
      if (out.length === 0) return Uint8Array.of(0xff);
      switch (v % 3) {
        case 0:
          out[at] = 0xff;
          break;
        case 1:
          out[at] = 0x80; // continuation byte with no lead byte
          break;
        default:
          if (at + 1 < out.length) {
            out[at] = 0xc0; // overlong encoding of U+0000/U+002F style
            out[at + 1] = 0xaf;
          } else {
            out[at] = 0xfe;
          }
      }
      return out;
    }
    case 'truncated_json': {
      const len = validEventBytes.length;
      if (len < 2) return validEventBytes.subarray(0, 0);
      // Cut between 10 % and 90 % of the length (variants spread the cut points evenly: golden
      // ratio steps), then back up to a character boundary so the prefix stays valid UTF-8.
      const fraction = 0.1 + 0.8 * ((0.5 + v * 0.6180339887) % 1);
      let cut = Math.max(1, Math.min(len - 1, Math.floor(len * fraction)));
      while (cut > 1 && ((validEventBytes[cut] ?? 0) & 0xc0) === 0x80) cut--;
      return Uint8Array.from(validEventBytes.subarray(0, cut));
    }
    case 'missing_field':
    case 'wrong_type': {
      const value = JSON.parse(utf8.decode(validEventBytes)) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new TypeError('corrupt: expected a JSON object');
      }
      const obj = value as Record<string, unknown>;
      const field = CHECKED_FIELDS[v % CHECKED_FIELDS.length] ?? 'timestamp';
      if (kind === 'missing_field') {
        delete obj[field];
      } else if (field === 'timestamp') {
        const ts = typeof obj.timestamp === 'string' ? Date.parse(obj.timestamp) : NaN;
        obj.timestamp = Number.isNaN(ts) ? 0 : ts;
      } else {
        obj[field] = 123456789;
      }
      return encoder.encode(JSON.stringify(obj));
    }
  }
}
