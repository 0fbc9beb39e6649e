import avsc from 'avsc';
import { EMPTY, NEVER, Subject, map, throwError } from 'rxjs';
import type { Observable } from 'rxjs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SchemaRegistryError, SchemaRegistryUnavailableError, decodeWithRegistry, loadRegistryCodecs } from '../../src/operators/decodeWithRegistry.ts';
import type { RegisteredSchema, RegistryRetry, SchemaSource } from '../../src/operators/decodeWithRegistry.ts';
import type { DeadLetterRow, EnrichedRecord } from '../../src/types.ts';
import { enriched, testScheduler } from './records.ts';

const TRIP = { type: 'record', name: 'Trip', fields: [{ name: 'id', type: 'string' }, { name: 'n', type: 'long' }] } as const;
const tripType = avsc.Type.forSchema(TRIP as unknown as avsc.Schema);
const avroSchema: RegisteredSchema = { schemaType: 'AVRO', schema: JSON.stringify(TRIP), references: [] };
const jsonSchema: RegisteredSchema = { schemaType: 'JSON', schema: JSON.stringify({ type: 'object', required: ['id'] }), references: [] };

function framed(id: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.byteLength);
  new DataView(out.buffer).setUint32(1, id);
  out.set(body, 5);
  return out;
}
const avro = (offset: number, id: string, schemaId = 1) => enriched(offset, framed(schemaId, tripType.toBuffer({ id, n: 5 })));
const json = (offset: number, text: string, schemaId = 2) => enriched(offset, framed(schemaId, new TextEncoder().encode(text)));

/** A schema source whose answers are the observables `answers` gives, per call; counts the calls. */
function fakeRegistry(answers: (id: number, call: number) => Observable<RegisteredSchema | undefined>): SchemaSource & { calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    schemaById: (id) => {
      calls.push(id);
      return answers(id, calls.filter((c) => c === id).length);
    },
    schemaByVersion: () => throwError(() => new Error('no references here')),
  };
}

beforeAll(async () => {
  await loadRegistryCodecs();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const short = (r: DeadLetterRow): string => `${r.offset}:${r.error_type}`;

describe('decodeWithRegistry', () => {
  it('decodes Avro and JSON payloads in their order; records behind a lookup wait for it; one lookup per id', () => {
    let registryCalls: number[] = [];
    testScheduler().run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const registry = fakeRegistry((id) => cold('--(s|)', { s: id === 1 ? avroSchema : jsonSchema }));
      registryCalls = registry.calls;
      const dlq = new Subject<DeadLetterRow>();
      const e1 = hot('-abc----d|', { a: avro(0, 'A'), b: avro(1, 'B'), c: enriched(2, '{"id":"plain"}'), d: json(3, '{"id":"D"}') });
      const out = e1.pipe(
        decodeWithRegistry(registry, dlq),
        map((r) => `${(r.decoded as { id: string }).id}@${r.schemaId}`),
      );
      expectObservable(out).toBe('---(ab)---(d|)', { a: 'A@1', b: 'B@1', d: 'D@2' });
      expectObservable(dlq.pipe(map(short))).toBe('---c------|', { c: '2:WIRE_FORMAT_ERROR' });
      expectSubscriptions(e1.subscriptions).toBe('^--------!');
    });
    expect(registryCalls).toEqual([1, 2]);
  });

  it('decodes Avro longs to bigint and passes the record on with its schema id', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const registry = fakeRegistry(() => cold('(s|)', { s: avroSchema }));
      const out = cold('a|', { a: avro(0, 'A') }).pipe(decodeWithRegistry(registry, new Subject<DeadLetterRow>()));
      expectObservable(out).toBe('a|', { a: { ...avro(0, 'A'), decoded: { id: 'A', n: 5n }, schemaId: 1 } });
    });
  });

  it('an outage: the lookup is retried with backoff, records wait in order, nothing is dead-lettered', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0); // no jitter (backoffDelay takes up to `jitter` off the delay, by random()): waits of exactly 10, then 20 ms
    const retries: RegistryRetry[] = [];
    testScheduler().run(({ hot, cold, expectObservable }) => {
      const down = new SchemaRegistryUnavailableError('registry down');
      const registry = fakeRegistry((_id, call) => (call <= 2 ? cold<RegisteredSchema>('-#', undefined, down) : cold('-(s|)', { s: avroSchema })));
      const dlq = new Subject<DeadLetterRow>();
      const e1 = hot('-a-b|', { a: avro(0, 'A'), b: avro(1, 'B') });
      const out = e1.pipe(
        decodeWithRegistry(registry, dlq, { retryBackoff: { initialMs: 10, maxMs: 1000 }, onRetry: (r) => retries.push(r) }),
        map((r) => (r.decoded as { id: string }).id),
      );
      // Attempts at 1, 12 and 33 (waits of 10 and 20 after the failures at 2 and 13); the schema arrives at 34.
      expectObservable(out).toBe('34ms (ab|)', { a: 'A', b: 'B' });
      expectObservable(dlq).toBe('34ms |');
    });
    expect(retries.map((r) => [r.schemaId, r.attempt, r.retryInMs, r.error.name])).toEqual([
      [1, 1, 10, 'SchemaRegistryUnavailableError'],
      [1, 2, 20, 'SchemaRegistryUnavailableError'],
    ]);
  });

  it('gives up after maxRetryMs of outage: the stream and the dead letters error with the outage', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    testScheduler().run(({ hot, cold, expectObservable }) => {
      const down = new SchemaRegistryUnavailableError('registry down');
      const registry = fakeRegistry(() => cold<RegisteredSchema>('-#', undefined, down));
      const dlq = new Subject<DeadLetterRow>();
      const out = hot('-a|', { a: avro(0, 'A') }).pipe(decodeWithRegistry(registry, dlq, { retryBackoff: { initialMs: 10 }, maxRetryMs: 25 }));
      // Failures at 2, 13 and 27; waits of 10 and then 13 (what is left of the 25 ms); at 27 the 25 ms are up.
      expectObservable(out).toBe('27ms #', undefined, down);
      expectObservable(dlq).toBe('27ms #', undefined, down);
    });
  });

  it('dead-letters an unknown id, a wrong magic byte, a short payload, undecodable bytes, an invalid JSON value, a tombstone', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const registry = fakeRegistry((id) => cold('(s|)', { s: id === 1 ? avroSchema : id === 2 ? jsonSchema : undefined }));
      const dlq = new Subject<DeadLetterRow>();
      const truncated = avro(4, 'T');
      const e1 = cold('abcdefgh|', {
        a: avro(0, 'X', 99),
        b: enriched(1, new Uint8Array([1, 0, 0, 0, 1, 2])),
        c: enriched(2, new Uint8Array([0, 0, 1])),
        d: json(3, '{"nope":1}'),
        e: { ...truncated, value: truncated.value!.subarray(0, truncated.value!.byteLength - 1) },
        f: json(5, '{"id":'),
        g: enriched(6, null),
        h: avro(7, 'ok'),
      });
      expectObservable(e1.pipe(decodeWithRegistry(registry, dlq), map((r) => r.offset))).toBe('-------h|', { h: 7n });
      expectObservable(dlq.pipe(map(short))).toBe('abcdefg-|', {
        a: '0:SCHEMA_NOT_FOUND',
        b: '1:WIRE_FORMAT_ERROR',
        c: '2:WIRE_FORMAT_ERROR',
        d: '3:SCHEMA_VALIDATION_ERROR',
        e: '4:SCHEMA_DECODE_ERROR',
        f: '5:JSON_PARSE_ERROR',
        g: '6:NULL_VALUE',
      });
    });
  });

  it('a request the registry refuses errors the stream and the dead letters', () => {
    testScheduler().run(({ hot, cold, expectObservable }) => {
      const refused = new SchemaRegistryError('refused (HTTP 401)', 401);
      const registry = fakeRegistry(() => cold<RegisteredSchema>('-#', undefined, refused));
      const dlq = new Subject<DeadLetterRow>();
      const out = hot('-a-b|', { a: avro(0, 'A'), b: avro(1, 'B') }).pipe(decodeWithRegistry(registry, dlq));
      expectObservable(out).toBe('--#', undefined, refused);
      expectObservable(dlq).toBe('--#', undefined, refused);
    });
  });

  it('empty, never, error and early unsubscribe', () => {
    testScheduler().run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const registry = fakeRegistry(() => cold('--(s|)', { s: avroSchema }));
      expectObservable(EMPTY.pipe(decodeWithRegistry(registry, new Subject<DeadLetterRow>()))).toBe('|');
      expectObservable(NEVER.pipe(decodeWithRegistry(registry, new Subject<DeadLetterRow>()))).toBe('-');
      const boom = new Error('boom');
      expectObservable(cold<EnrichedRecord>('-#', undefined, boom).pipe(decodeWithRegistry(registry, new Subject<DeadLetterRow>()))).toBe('-#', undefined, boom);
      // Unsubscribed while the lookup for `a` is pending (it would answer at 3): nothing comes, the lookup is cancelled.
      const lookup = cold('--(s|)', { s: avroSchema });
      const pending = fakeRegistry(() => lookup);
      const e1 = hot('-a--b-', { a: avro(0, 'A'), b: avro(1, 'B') });
      expectObservable(e1.pipe(decodeWithRegistry(pending, new Subject<DeadLetterRow>()), map((r) => r.offset)), '^-!').toBe('---');
      expectSubscriptions(e1.subscriptions).toBe('^-!');
      expectSubscriptions(lookup.subscriptions).toBe('-^!');
    });
  });
});
