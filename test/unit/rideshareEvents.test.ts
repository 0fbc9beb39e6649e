import { readFileSync } from 'node:fs';
import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { bronzeCodecs } from '../../src/pipelines/rideshare/codecs.ts';
import { BRONZE_TOPICS, BRONZE_TOPIC_INFO } from '../../src/pipelines/rideshare/topics.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import { CORRUPTION_KINDS, EXPECTED_ERROR_TYPE, corrupt, createEventGenerator, padJson } from '../../src/pipelines/rideshare/events.ts';
import { classify } from '../support/classify.ts';

const SCHEMA_DIR = process.env.RIDESHARE_SCHEMA_DIR ?? '/work/shared/reference/rideshare-kafka-schemas';

// -------------------------------------------------------------------------------------------
// A small checker for the subset of JSON Schema the rideshare contracts use.
// -------------------------------------------------------------------------------------------

interface PropSchema {
  type?: string | string[];
  enum?: unknown[];
  format?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: PropSchema;
}
interface ObjectSchema {
  required: string[];
  properties: Record<string, PropSchema>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/; // RFC 3339

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function checkValue(path: string, v: unknown, s: PropSchema, errors: string[]): void {
  const types = s.type === undefined ? undefined : Array.isArray(s.type) ? s.type : [s.type];
  const actual = jsonType(v);
  if (types !== undefined && !types.includes(actual) && !(actual === 'integer' && types.includes('number'))) {
    errors.push(`${path}: ${actual} is not ${types.join('|')}`);
    return;
  }
  if (s.enum !== undefined && !s.enum.includes(v)) errors.push(`${path}: ${JSON.stringify(v)} not in enum`);
  if (v === null) return;
  if (typeof v === 'string') {
    if (s.format === 'uuid' && !UUID.test(v)) errors.push(`${path}: ${v} is not a uuid`);
    if (s.format === 'date-time' && (!DATE_TIME.test(v) || Number.isNaN(Date.parse(v)))) errors.push(`${path}: ${v} is not a date-time`);
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) errors.push(`${path}: ${v} < ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) errors.push(`${path}: ${v} > ${s.maximum}`);
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) errors.push(`${path}: fewer than ${s.minItems} items`);
    if (s.maxItems !== undefined && v.length > s.maxItems) errors.push(`${path}: more than ${s.maxItems} items`);
    if (s.items !== undefined) v.forEach((item, i) => checkValue(`${path}[${i}]`, item, s.items as PropSchema, errors));
  }
}

function schemaErrors(value: Record<string, unknown>, schema: ObjectSchema): string[] {
  const errors: string[] = [];
  for (const key of schema.required) if (!(key in value)) errors.push(`missing required ${key}`);
  for (const [key, v] of Object.entries(value)) {
    const prop = schema.properties[key];
    if (prop !== undefined) checkValue(key, v, prop, errors);
  }
  return errors;
}

function loadSchema(topic: BronzeTopic): ObjectSchema {
  return JSON.parse(readFileSync(`${SCHEMA_DIR}/${BRONZE_TOPIC_INFO[topic].schemaFile}`, 'utf8')) as ObjectSchema;
}

// -------------------------------------------------------------------------------------------
// The bronze pipeline's error classification, step by step, as the dead-letter routing does it.
// -------------------------------------------------------------------------------------------

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

/** Round-robin over all topics, like the producer does. */
function interleaved(seed: number, rounds: number): Array<{ topic: BronzeTopic; key: string; value: Record<string, unknown> }> {
  const gen = createEventGenerator({ seed });
  const out: Array<{ topic: BronzeTopic; key: string; value: Record<string, unknown> }> = [];
  for (let r = 0; r < rounds; r++) for (const topic of BRONZE_TOPICS) out.push({ topic, ...gen.next(topic) });
  return out;
}

// -------------------------------------------------------------------------------------------

describe('createEventGenerator', () => {
  const events = interleaved(11, 600);
  const byTopic = (topic: BronzeTopic) => events.filter((e) => e.topic === topic);

  it.each(BRONZE_TOPICS)('%s: every event passes its JSON schema and its codec', (topic) => {
    const schema = loadSchema(topic);
    expect(schema.required.length).toBeGreaterThan(3);
    for (const { value } of byTopic(topic)) {
      expect(schemaErrors(value, schema)).toEqual([]);
      expect(isRight(bronzeCodecs[topic].decode(value))).toBe(true);
      // And after a round trip through bytes, as the pipeline sees it.
      expect(classify(topic, encode(value))).toBe('OK');
    }
  });

  it('the schema checker itself rejects what it should (so the test above can fail)', () => {
    const schema = loadSchema('gps_pings');
    const value = byTopic('gps_pings')[0]?.value ?? {};
    expect(schemaErrors({ ...value, location: [1] }, schema)).toHaveLength(1);
    expect(schemaErrors({ ...value, accuracy: '3' }, schema)).toHaveLength(1);
    expect(schemaErrors({ ...value, entity_type: 'cat' }, schema)).toHaveLength(1);
    expect(schemaErrors({ ...value, event_id: 'x' }, schema)).toHaveLength(1);
    const noTimestamp: Record<string, unknown> = { ...value };
    delete noTimestamp.timestamp;
    expect(schemaErrors(noTimestamp, schema)).toEqual(['missing required timestamp']);
  });

  it('is deterministic for a seed, and seeds differ', () => {
    const a = interleaved(5, 50);
    const b = interleaved(5, 50);
    const c = interleaved(6, 50);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).not.toBe(JSON.stringify(c));
  });

  it('keys every record by its entity id', () => {
    for (const { topic, key, value } of events) expect(key, topic).toBe(value[BRONZE_TOPIC_INFO[topic].keyField]);
  });

  it('uses ids from its driver and rider pools', () => {
    const gen = createEventGenerator({ seed: 2, drivers: 7, riders: 13 });
    expect(gen.driverIds).toHaveLength(7);
    expect(gen.riderIds).toHaveLength(13);
    const drivers = new Set(gen.driverIds);
    const riders = new Set(gen.riderIds);
    for (let i = 0; i < 300; i++) {
      for (const topic of BRONZE_TOPICS) {
        const v = gen.next(topic).value;
        if (topic === 'gps_pings') expect((v.entity_type === 'driver' ? drivers : riders).has(v.entity_id as string)).toBe(true);
        if ('rider_id' in v) expect(riders.has(v.rider_id as string)).toBe(true);
        if ('driver_id' in v && v.driver_id !== null) expect(drivers.has(v.driver_id as string)).toBe(true);
        if (topic === 'ratings') {
          expect((v.rater_type === 'driver' ? drivers : riders).has(v.rater_id as string)).toBe(true);
          expect((v.ratee_type === 'driver' ? drivers : riders).has(v.ratee_id as string)).toBe(true);
          expect(v.rater_type).not.toBe(v.ratee_type);
        }
      }
    }
  });

  it('moves trips through a plausible lifecycle', () => {
    const next: Record<string, string[]> = {
      'trip.requested': ['trip.offer_sent', 'trip.no_drivers_available'],
      'trip.offer_sent': ['trip.driver_assigned', 'trip.offer_rejected', 'trip.offer_expired'],
      'trip.offer_rejected': ['trip.offer_sent', 'trip.no_drivers_available'],
      'trip.offer_expired': ['trip.offer_sent', 'trip.no_drivers_available'],
      'trip.driver_assigned': ['trip.en_route_pickup', 'trip.cancelled'],
      'trip.en_route_pickup': ['trip.at_pickup', 'trip.cancelled'],
      'trip.at_pickup': ['trip.in_transit'],
      'trip.in_transit': ['trip.completed'],
      'trip.completed': [],
      'trip.cancelled': [],
      'trip.no_drivers_available': [],
    };
    const seq = new Map<string, Array<Record<string, unknown>>>();
    for (const { value } of byTopic('trips')) {
      const id = value.trip_id as string;
      seq.set(id, [...(seq.get(id) ?? []), value]);
    }
    const seen = new Set<string>();
    for (const [id, evs] of seq) {
      const first = evs[0];
      expect(['trip.requested', 'trip.no_drivers_available'], id).toContain(first?.event_type);
      for (let i = 1; i < evs.length; i++) {
        const prev = evs[i - 1] as Record<string, unknown>;
        const cur = evs[i] as Record<string, unknown>;
        expect(next[prev.event_type as string], `${id}: ${String(prev.event_type)} → ${String(cur.event_type)}`).toContain(cur.event_type);
        // The envelope chains a trip's events.
        expect(cur.correlation_id).toBe(id);
        expect(cur.causation_id).toBe(prev.event_id);
        // Fixed facts of a trip do not change along the way.
        expect(cur.rider_id).toBe(prev.rider_id);
        expect(cur.fare).toBe(prev.fare);
        expect(cur.pickup_location).toEqual(prev.pickup_location);
        expect(Date.parse(cur.timestamp as string)).toBeGreaterThanOrEqual(Date.parse(prev.timestamp as string));
      }
      for (const e of evs) seen.add(e.event_type as string);
      const assigned = evs.find((e) => e.event_type === 'trip.driver_assigned');
      if (assigned !== undefined) {
        for (const e of evs.slice(evs.indexOf(assigned))) expect(e.driver_id).toBe(assigned.driver_id);
      }
    }
    // The run is long enough to see the whole lifecycle, including the unhappy paths.
    for (const t of ['trip.requested', 'trip.offer_sent', 'trip.driver_assigned', 'trip.at_pickup', 'trip.in_transit', 'trip.completed', 'trip.offer_rejected', 'trip.cancelled']) {
      expect(seen, t).toContain(t);
    }
  });

  it('pays and rates completed trips only (or trips from before the run)', () => {
    const tripStates = new Map<string, string>();
    let linked = 0;
    for (const { topic, value } of events) {
      if (topic === 'trips') tripStates.set(value.trip_id as string, value.event_type as string);
      if (topic === 'payments' || topic === 'ratings') {
        const state = tripStates.get(value.trip_id as string);
        // Either a trip this run completed, or a historic one it never saw.
        expect([undefined, 'trip.completed']).toContain(state);
        if (state === 'trip.completed') linked++;
      }
      if (topic === 'payments') {
        const fare = value.fare_amount as number;
        expect(fare).toBeGreaterThan(0);
        expect(Math.abs((value.platform_fee_amount as number) + (value.driver_payout_amount as number) - fare)).toBeLessThan(0.011);
        // Rounded to cents.
        expect(Math.abs((value.platform_fee_amount as number) - fare * (value.platform_fee_percentage as number))).toBeLessThanOrEqual(0.0051);
      }
    }
    expect(linked).toBeGreaterThan(100);
  });

  it('makes realistic values: São Paulo coordinates, ratings 1–5, surge ≥ 1, ~400-byte gps pings', () => {
    const inSaoPaulo = (p: unknown): boolean => {
      const [lat, lon] = p as [number, number];
      return lat > -24.0 && lat < -23.2 && lon > -47.0 && lon < -46.3;
    };
    let gpsBytes = 0;
    const stars = new Set<number>();
    for (const { topic, value } of events) {
      for (const f of ['location', 'pickup_location', 'dropoff_location', 'home_location']) {
        if (f in value) expect(inSaoPaulo(value[f]), `${topic}.${f}`).toBe(true);
      }
      if (topic === 'gps_pings') gpsBytes += encode(value).length;
      if (topic === 'ratings') stars.add(value.rating as number);
      if (topic === 'surge_updates') {
        expect(value.new_multiplier).toBeGreaterThanOrEqual(1);
        expect(value.previous_multiplier).toBeGreaterThanOrEqual(1);
      }
    }
    expect([...stars].sort()).toEqual([1, 2, 3, 4, 5]);
    const avg = gpsBytes / byTopic('gps_pings').length;
    expect(avg).toBeGreaterThan(330);
    expect(avg).toBeLessThan(470);
  });

  it('creates each profile once, then updates', () => {
    const gen = createEventGenerator({ seed: 4, drivers: 5, riders: 5 });
    const types = Array.from({ length: 8 }, () => gen.next('driver_profiles').value.event_type);
    expect(types).toEqual(['driver.created', 'driver.created', 'driver.created', 'driver.created', 'driver.created', 'driver.updated', 'driver.updated', 'driver.updated']);
    const riders = Array.from({ length: 5 }, () => gen.next('rider_profiles').value.rider_id);
    expect(new Set(riders)).toEqual(new Set(gen.riderIds));
  });

  it('advances a clock: timestamps never go backwards', () => {
    let last = -Infinity;
    for (const { value } of events) {
      const ms = Date.parse(value.timestamp as string);
      expect(ms).toBeGreaterThanOrEqual(last);
      last = ms;
    }
    const gen = createEventGenerator({ seed: 1, startTime: Date.UTC(2030, 5, 1) });
    expect(gen.next('ratings').value.timestamp).toMatch(/^2030-06-01T00:00:0\d\.\d{6}\+00:00$/);
  });
});

describe('padJson', () => {
  it('pads to the target size and stays valid', () => {
    const gen = createEventGenerator({ seed: 8 });
    for (const target of [500, 1024, 4096]) {
      const json = padJson(JSON.stringify(gen.next('gps_pings').value), target);
      expect(Buffer.byteLength(json)).toBe(target);
      expect(classify('gps_pings', Buffer.from(json))).toBe('OK');
    }
    const small = JSON.stringify({ a: 1 });
    expect(padJson(small, 5)).toBe(small);
  });
});

describe('corrupt', () => {
  const events = interleaved(21, 40);

  it('maps each kind to the dead-letter error type', () => {
    expect(EXPECTED_ERROR_TYPE).toEqual({
      invalid_utf8: 'ENCODING_ERROR',
      truncated_json: 'JSON_PARSE_ERROR',
      missing_field: 'SCHEMA_VALIDATION_ERROR',
      wrong_type: 'SCHEMA_VALIDATION_ERROR',
      null_value: 'NULL_VALUE',
    });
    expect(Object.keys(EXPECTED_ERROR_TYPE).sort()).toEqual([...CORRUPTION_KINDS].sort());
  });

  it.each(CORRUPTION_KINDS)('%s: fails the pipeline path with the expected error type, for every topic and variant', (kind) => {
    for (const { topic, value } of events) {
      const bytes = encode(value);
      for (let variant = 0; variant < 6; variant++) {
        const bad = corrupt(kind, bytes, variant);
        expect(classify(topic, bad), `${topic} ${kind} v${variant}`).toBe(EXPECTED_ERROR_TYPE[kind]);
      }
    }
  });

  it('invalid_utf8 really is invalid UTF-8 (and only that: the bytes were JSON)', () => {
    const bytes = encode(events[0]?.value);
    for (let variant = 0; variant < 3; variant++) {
      const bad = corrupt('invalid_utf8', bytes, variant);
      expect(bad).not.toBeNull();
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bad as Uint8Array)).toThrow(TypeError);
      expect(bad?.length).toBe(bytes.length);
    }
  });

  it('truncated_json is valid UTF-8 that JSON.parse rejects, even when cut inside multi-byte characters', () => {
    // Names such as "Conceição" put multi-byte characters in the payload; many variants spread
    // the cut points over the whole text, so some land inside those characters.
    const value = { event_id: 'e', first_name: 'Conceição', last_name: 'Araújo Gonçalves', note: 'çãéíóú'.repeat(20) };
    const bytes = encode(value);
    let insideChar = 0;
    const cuts = new Set<number>();
    for (let variant = 0; variant < 400; variant++) {
      const bad = corrupt('truncated_json', bytes, variant) as Uint8Array;
      expect(bad.length).toBeLessThan(bytes.length);
      expect(bad.length).toBeGreaterThan(0);
      cuts.add(bad.length);
      // Would a cut at the naive position have split a character? (Then the boundary logic mattered.)
      const naive = bytes[bad.length] ?? 0;
      if (bad.length < bytes.length && ((bytes[bad.length + 1] ?? 0) & 0xc0) === 0x80 && naive >= 0xc0) insideChar++;
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bad);
      expect(() => JSON.parse(text) as unknown).toThrow(SyntaxError);
    }
    expect(cuts.size).toBeGreaterThan(100);
    expect(insideChar).toBeGreaterThan(10);
    // Generated profiles too.
    const gen = createEventGenerator({ seed: 13 });
    for (let i = 0; i < 100; i++) {
      const topic = i % 2 === 0 ? 'driver_profiles' : 'rider_profiles';
      const b = encode(gen.next(topic).value);
      for (let variant = 0; variant < 20; variant++) expect(classify(topic, corrupt('truncated_json', b, variant))).toBe('JSON_PARSE_ERROR');
    }
  });

  it('missing_field and wrong_type keep JSON valid and break a field the codec checks', () => {
    for (const { topic, value } of events.slice(0, 16)) {
      const bytes = encode(value);
      const missing = JSON.parse(new TextDecoder().decode(corrupt('missing_field', bytes, 0))) as Record<string, unknown>;
      expect(missing).not.toHaveProperty('timestamp');
      const missing2 = JSON.parse(new TextDecoder().decode(corrupt('missing_field', bytes, 1))) as Record<string, unknown>;
      expect(missing2).not.toHaveProperty('event_id');
      const wrong = JSON.parse(new TextDecoder().decode(corrupt('wrong_type', bytes, 0))) as Record<string, unknown>;
      expect(typeof wrong.timestamp).toBe('number');
      expect(wrong.timestamp).toBe(Date.parse(value.timestamp as string));
      const wrong2 = JSON.parse(new TextDecoder().decode(corrupt('wrong_type', bytes, 1))) as Record<string, unknown>;
      expect(typeof wrong2.event_id).toBe('number');
      // Everything else is untouched.
      expect({ ...wrong, timestamp: value.timestamp }).toEqual(value);
      expect(isLeft(bronzeCodecs[topic].decode(wrong))).toBe(true);
    }
  });

  it('null_value is a tombstone', () => {
    expect(corrupt('null_value', encode({ a: 1 }))).toBeNull();
  });

  it('does not modify its input', () => {
    const bytes = encode(events[3]?.value);
    const copy = Uint8Array.from(bytes);
    for (const kind of CORRUPTION_KINDS) corrupt(kind, bytes, 1);
    expect(bytes).toEqual(copy);
  });
});
