import * as t from 'io-ts';
import { Subject, map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { DeadLetterError, routeErrors } from '../../src/operators/routeErrors.ts';
import { compileBytesGuard } from '../../src/validation/bytesGuard.ts';
import type { DeadLetterRow, EnrichedRecord } from '../../src/types.ts';
import { enriched, testScheduler } from './records.ts';

const Trip = t.type({ trip_id: t.string, fare: t.number });
type Trip = t.TypeOf<typeof Trip>;

const good = (o: number, id: string) => enriched(o, JSON.stringify({ trip_id: id, fare: 10, extra: true }));
const values = {
  a: good(0, 'A'),
  b: enriched(1, 'not json'),
  c: enriched(2, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
  d: enriched(3, JSON.stringify({ trip_id: 42, session_id: 's1', correlation_id: 'c1', causation_id: 7 })),
  e: enriched(4, null),
  f: enriched(5, JSON.stringify({ trip_id: 'F', fare: 1, pad: 'x'.repeat(300) })),
  g: good(6, 'G'),
};

describe('routeErrors', () => {
  it('splits valid records from dead letters by error type, in order', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const dlq = new Subject<DeadLetterRow>();
      const e1 = hot('  -abcdefg-|', values);
      const main = '    -a-----g-|';
      const dead = '    --bcdef--|';
      const out = e1.pipe(routeErrors(Trip, dlq, { maxPayloadBytes: 200 }), map((r) => (r.decoded as Trip).trip_id));
      expectObservable(dlq.pipe(map((r) => `${r.offset}:${r.error_type}`))).toBe(dead, {
        b: '1:JSON_PARSE_ERROR',
        c: '2:ENCODING_ERROR',
        d: '3:SCHEMA_VALIDATION_ERROR',
        e: '4:NULL_VALUE',
        f: '5:OVERSIZED_PAYLOAD',
      });
      expectObservable(out).toBe(main, { a: 'A', g: 'G' });
      expectSubscriptions(e1.subscriptions).toBe('^--------!');
    });
  });

  it('builds dead-letter rows with the original payload, metadata and tracing ids', () => {
    const rows: DeadLetterRow[] = [];
    const dlq = new Subject<DeadLetterRow>();
    dlq.subscribe((r) => rows.push(r));
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold('-cd|', values);
      expectObservable(e1.pipe(routeErrors(Trip, dlq))).toBe('---|');
    });
    const [enc, schema] = rows;
    expect(enc).toMatchObject({
      topic: 't',
      partition: 0,
      offset: 2n,
      error_type: 'ENCODING_ERROR',
      original_payload: '{\uFFFD\uFFFD}',
      kafka_topic: 't',
      _kafka_partition: 0,
      _kafka_offset: 2n,
      _kafka_timestamp: values.c._kafka_timestamp,
      _ingested_at: values.c._ingested_at,
      session_id: null,
      correlation_id: null,
      causation_id: null,
      size: 4,
    });
    expect(enc?.original_payload_bytes).toEqual(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
    expect(schema?.error_type).toBe('SCHEMA_VALIDATION_ERROR');
    expect(schema?.error_message).toContain('trip_id');
    expect(schema?.error_message).toContain('fare');
    expect(schema).toMatchObject({ session_id: 's1', correlation_id: 'c1', causation_id: null });
  });

  it('checks only JSON without a codec, and nothing at all with both validations off', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const dlq1 = new Subject<DeadLetterRow>();
      const e1 = hot('  -abcdefg-|', values);
      expectObservable(dlq1.pipe(map((r) => r.error_type))).toBe('--bc-e---|', {
        b: 'JSON_PARSE_ERROR',
        c: 'ENCODING_ERROR',
        e: 'NULL_VALUE',
      });
      expectObservable(e1.pipe(routeErrors(null, dlq1), map((r) => Number(r.offset)))).toBe('-a--d-fg-|', {
        a: 0,
        d: 3,
        f: 5,
        g: 6,
      });

      const dlq2 = new Subject<DeadLetterRow>();
      const fast = e1.pipe(
        routeErrors(Trip, dlq2, { validateJson: false, validateSchema: false, nullValue: 'pass' }),
        map((r) => `${r.offset}:${r.decoded === undefined ? 'undefined' : 'decoded'}`),
      );
      expectObservable(dlq2).toBe('---------|');
      expectObservable(fast).toBe('-abcdefg-|', {
        a: '0:undefined',
        b: '1:undefined',
        c: '2:undefined',
        d: '3:undefined',
        e: '4:undefined',
        f: '5:undefined',
        g: '6:undefined',
      });
    });
  });

  it('passes the bytes untouched on the fast path', () => {
    const got: unknown[] = [];
    const dlq = new Subject<DeadLetterRow>();
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold('-c|', values);
      expectObservable(
        e1.pipe(
          routeErrors(null, dlq, { validateJson: false, validateSchema: false }),
          map((r) => {
            got.push(r.value);
            return 1;
          }),
        ),
      ).toBe('-x|', { x: 1 });
    });
    expect(got[0]).toBe(values.c.value);
  });

  it('passes valid records as the same objects with attachDecoded: false', () => {
    const got: unknown[] = [];
    const dlq = new Subject<DeadLetterRow>();
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold('-abg|', values);
      expectObservable(
        e1.pipe(
          routeErrors(Trip, dlq, { attachDecoded: false }),
          map((r) => {
            got.push(r);
            return 'decoded' in r;
          }),
        ),
      ).toBe('-a-g|', { a: false, g: false });
    });
    expect(got).toEqual([values.a, values.g]);
    expect(got[0]).toBe(values.a);
  });

  it('lets a guard accept without decoding; what it rejects is still decoded and explained', () => {
    const decodedCalls: unknown[] = [];
    const Counting = new t.Type<Trip, Trip, unknown>(
      'Trip',
      Trip.is,
      (u, c) => {
        decodedCalls.push(u);
        return Trip.validate(u, c);
      },
      t.identity,
    );
    testScheduler().run(({ hot, expectObservable }) => {
      const dlq = new Subject<DeadLetterRow>();
      const e1 = hot('  -adg-|', values);
      expectObservable(dlq.pipe(map((r) => `${r.offset}:${r.error_type}:${r.error_message.includes('trip_id')}`))).toBe('--d--|', {
        d: '3:SCHEMA_VALIDATION_ERROR:true',
      });
      expectObservable(e1.pipe(routeErrors(Counting, dlq, { accepts: Trip.is }), map((r) => r.offset))).toBe('-a-g-|', { a: 0n, g: 6n });
    });
    // Only the rejected value went through decode.
    expect(decodedCalls).toHaveLength(1);
    expect(decodedCalls[0]).toMatchObject({ trip_id: 42 });
  });

  it('lets a bytes guard pass records before any decoding (attachDecoded: false)', () => {
    // A codec that rejects everything and counts its work: whatever passes went by the guard.
    let decodeCalls = 0;
    const Nothing = new t.Type<Trip, Trip, unknown>(
      'Nothing',
      (_u): _u is Trip => false,
      (u, c) => {
        decodeCalls++;
        return t.failure(u, c, 'rejected by Nothing');
      },
      t.identity,
    );
    const guardSaw: bigint[] = [];
    const firstOnly = (bytes: Uint8Array): boolean => {
      guardSaw.push(bytes === values.a.value ? 0n : -1n);
      return bytes === values.a.value; // accepts record a, rejects everything else
    };
    const fast: EnrichedRecord[] = [];
    const fastRows: DeadLetterRow[] = [];
    const slowRows: DeadLetterRow[] = [];
    testScheduler().run(({ hot, expectObservable }) => {
      const dlq = new Subject<DeadLetterRow>();
      dlq.subscribe((r) => fastRows.push(r));
      const e1 = hot('  -abcdefg-|', values);
      expectObservable(dlq.pipe(map((r) => `${r.offset}:${r.error_type}`))).toBe('--bcdefg-|', {
        b: '1:JSON_PARSE_ERROR',
        c: '2:ENCODING_ERROR',
        d: '3:SCHEMA_VALIDATION_ERROR',
        e: '4:NULL_VALUE',
        f: '5:OVERSIZED_PAYLOAD',
        g: '6:SCHEMA_VALIDATION_ERROR',
      });
      const out = e1.pipe(
        routeErrors(Nothing, dlq, { attachDecoded: false, maxPayloadBytes: 200, acceptsBytes: firstOnly }),
        map((r) => {
          fast.push(r);
          return r.offset;
        }),
      );
      expectObservable(out).toBe('-a-------|', { a: 0n });
    });
    expect(fast[0]).toBe(values.a); // the same object, nothing attached
    // The guard ran after the null and size checks only: a, b, c, d, g (not e: null, f: too big).
    expect(guardSaw).toEqual([0n, -1n, -1n, -1n, -1n]);
    // The guard short-circuited a; the codec decoded only d and g (b, c failed before it).
    expect(decodeCalls).toBe(2);
    // What the guard rejects gets exactly the slow path's rows.
    testScheduler().run(({ hot, expectObservable }) => {
      const dlq = new Subject<DeadLetterRow>();
      dlq.subscribe((r) => slowRows.push(r));
      const e1 = hot('  -abcdefg-|', values);
      expectObservable(e1.pipe(routeErrors(Nothing, dlq, { attachDecoded: false, maxPayloadBytes: 200 }), map((r) => r.offset))).toBe(
        '---------|',
      );
    });
    expect(fastRows).toEqual(slowRows.filter((r) => r.offset !== 0n));
    expect(fastRows.find((r) => r.offset === 3n)?.error_message).toBe('rejected by Nothing');
  });

  it('ignores the bytes guard when decoded values are attached or nothing is validated', () => {
    let calls = 0;
    const yes = (_b: Uint8Array): boolean => {
      calls++;
      return true;
    };
    testScheduler().run(({ hot, expectObservable }) => {
      const dlq1 = new Subject<DeadLetterRow>();
      const e1 = hot('  -abd-|', values);
      expectObservable(dlq1.pipe(map((r) => r.error_type))).toBe('--bd-|', { b: 'JSON_PARSE_ERROR', d: 'SCHEMA_VALIDATION_ERROR' });
      expectObservable(e1.pipe(routeErrors(Trip, dlq1, { acceptsBytes: yes }), map((r) => (r.decoded as Trip).trip_id))).toBe('-a---|', {
        a: 'A',
      });
      const dlq2 = new Subject<DeadLetterRow>();
      const e2 = hot('  -abd-|', values);
      expectObservable(e2.pipe(routeErrors(null, dlq2, { attachDecoded: false, validateJson: false, acceptsBytes: yes }), map((r) => r.offset))).toBe(
        '-abd-|',
        { a: 0n, b: 1n, d: 3n },
      );
    });
    expect(calls).toBe(0);
  });

  it('with a compiled guard: same outputs and dead letters as the slow path, valid ones never decoded', () => {
    const guard = compileBytesGuard(Trip);
    expect(guard).toBeDefined();
    let decodeCalls = 0;
    const Counting = new t.Type<Trip, Trip, unknown>(
      'Trip',
      Trip.is,
      (u, c) => {
        decodeCalls++;
        return Trip.validate(u, c);
      },
      t.identity,
    );
    const run = (acceptsBytes: ((b: Uint8Array) => boolean) | undefined): { out: bigint[]; rows: DeadLetterRow[] } => {
      const out: bigint[] = [];
      const rows: DeadLetterRow[] = [];
      const dlq = new Subject<DeadLetterRow>();
      dlq.subscribe((r) => rows.push(r));
      const opts = acceptsBytes === undefined ? { attachDecoded: false } : { attachDecoded: false, acceptsBytes };
      testScheduler().run(({ cold, expectObservable }) => {
        const e1 = cold('-abcdefg|', values);
        expectObservable(e1.pipe(routeErrors(Counting, dlq, opts), map((r) => out.push(r.offset)))).toBe('-a----bc|', { a: 1, b: 2, c: 3 });
      });
      return { out, rows };
    };
    const slow = run(undefined);
    const slowDecodes = decodeCalls;
    decodeCalls = 0;
    const fast = run(guard);
    expect(fast).toEqual(slow);
    expect(slow.out).toEqual([0n, 5n, 6n]);
    // Slow: a, d, f, g decoded. Fast: only d (a, f and g are valid Trips the guard accepts).
    expect(slowDecodes).toBe(4);
    expect(decodeCalls).toBe(1);
  });

  it('fails loudly when disabled: errors both outputs with a DeadLetterError', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const dlq = new Subject<DeadLetterRow>();
      const e1 = hot('  -ab-g-|', values);
      const err: unknown = expect.any(DeadLetterError);
      expectObservable(dlq.pipe(map(() => 'x'))).toBe('--#', undefined, err);
      expectObservable(e1.pipe(routeErrors(Trip, dlq, { enabled: false }), map((r) => r.offset))).toBe('-a#', { a: 0n }, err);
      expectSubscriptions(e1.subscriptions).toBe('^-!');
    });
    // The error carries the row.
    const dlq = new Subject<DeadLetterRow>();
    let caught: unknown;
    testScheduler().run(({ cold }) => {
      cold('-b|', values).pipe(routeErrors(Trip, dlq, { enabled: false })).subscribe({ error: (e: unknown) => (caught = e) });
    });
    expect(caught).toBeInstanceOf(DeadLetterError);
    expect((caught as DeadLetterError).row).toMatchObject({ error_type: 'JSON_PARSE_ERROR', offset: 1n });
  });

  it('completes and errors the dead-letter observer with the source', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const dlq1 = new Subject<DeadLetterRow>();
      const empty = cold<EnrichedRecord>('|');
      expectObservable(dlq1).toBe('|');
      expectObservable(empty.pipe(routeErrors(Trip, dlq1))).toBe('|');

      const dlq2 = new Subject<DeadLetterRow>();
      const failing = cold('-b-#', values);
      expectObservable(dlq2.pipe(map((r) => r.error_type))).toBe('-b-#', { b: 'JSON_PARSE_ERROR' });
      expectObservable(failing.pipe(routeErrors(Trip, dlq2))).toBe('---#');
    });
  });

  it('never emits on never; early unsubscribe leaves the dead-letter observer open', () => {
    testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const dlq1 = new Subject<DeadLetterRow>();
      const never = cold<EnrichedRecord>('-');
      expectObservable(never.pipe(routeErrors(Trip, dlq1))).toBe('-');
      expectSubscriptions(never.subscriptions).toBe('^');

      const dlq2 = new Subject<DeadLetterRow>();
      const e1 = hot('-ab-b-|', values);
      expectObservable(dlq2.pipe(map((r) => Number(r.offset)))).toBe('--b----', { b: 1 });
      expectObservable(e1.pipe(routeErrors(Trip, dlq2), map((r) => Number(r.offset))), '---!').toBe('-a-', { a: 0 });
      expectSubscriptions(e1.subscriptions).toBe('^--!');
    });
  });
});
