import * as t from 'io-ts';
import { Subject, from, map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { DeadLetterError, SystematicProcessingError, deadLetterRowOf, routeErrors } from '../../src/operators/routeErrors.ts';
import { compileBytesGuard } from '../../src/validation/bytesGuard.ts';
import { MAX_ERROR_MESSAGE_CHARS, MAX_JSON_DEPTH } from '../../src/validation/limits.ts';
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

  it('checks only JSON without a codec, and only UTF-8 (or nothing) with both validations off', () => {
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

      // Bytes land in string columns: invalid UTF-8 is still an ENCODING_ERROR …
      const dlq2 = new Subject<DeadLetterRow>();
      const fast = e1.pipe(
        routeErrors(Trip, dlq2, { validateJson: false, validateSchema: false, nullValue: 'pass' }),
        map((r) => `${r.offset}:${r.decoded === undefined ? 'undefined' : 'decoded'}`),
      );
      expectObservable(dlq2.pipe(map((r) => r.error_type))).toBe('---c-----|', { c: 'ENCODING_ERROR' });
      expectObservable(fast).toBe('-ab-defg-|', {
        a: '0:undefined',
        b: '1:undefined',
        d: '3:undefined',
        e: '4:undefined',
        f: '5:undefined',
        g: '6:undefined',
      });

      // … unless that check is off too (binary payloads).
      const dlq3 = new Subject<DeadLetterRow>();
      const raw = e1.pipe(
        routeErrors(Trip, dlq3, { validateJson: false, validateSchema: false, validateUtf8: false, nullValue: 'pass' }),
        map((r) => Number(r.offset)),
      );
      expectObservable(dlq3).toBe('---------|');
      expectObservable(raw).toBe('-abcdefg-|', { a: 0, b: 1, c: 2, d: 3, e: 4, f: 5, g: 6 });
    });
  });

  it('passes the bytes untouched on the fast path', () => {
    const got: unknown[] = [];
    const dlq = new Subject<DeadLetterRow>();
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold('-c|', values);
      expectObservable(
        e1.pipe(
          routeErrors(null, dlq, { validateJson: false, validateSchema: false, validateUtf8: false }),
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

describe('routeErrors: hostile records never stop the stream', () => {
  const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  /** Runs `records` through routeErrors: what passed (offsets) and the dead-letter rows. */
  const route = <A>(codec: t.Decoder<unknown, A> | null, records: EnrichedRecord[], options = {}) => {
    const rows: DeadLetterRow[] = [];
    const passed: bigint[] = [];
    let error: unknown;
    let completed = false;
    const dlq = new Subject<DeadLetterRow>();
    dlq.subscribe({ next: (r) => rows.push(r), error: () => undefined });
    from(records)
      .pipe(codec === null ? routeErrors(null, dlq, options) : routeErrors(codec, dlq, options))
      .subscribe({ next: (r) => passed.push(r.offset), error: (e: unknown) => (error = e), complete: () => (completed = true) });
    return { rows, passed, error, completed };
  };

  it('dead-letters JSON nested 50,000 and 100,000 deep as NESTING_TOO_DEEP and goes on with the records behind', () => {
    const Ping = t.type({ event_id: t.string, location: t.tuple([t.number, t.number]) });
    const records = [
      enriched(0, deepArray(50_000)),
      enriched(1, deepObject(100_000)),
      enriched(2, `{"event_id":"e","location":${deepArray(50_000)}}`),
      enriched(3, `{"event_id":${deepObject(20_000)},"session_id":"s"}`),
      enriched(4, JSON.stringify({ event_id: 'ok', location: [1, 2] })),
    ];
    const guard = compileBytesGuard(Ping);
    for (const options of [{}, { attachDecoded: false, accepts: (v: unknown) => Ping.is(v), acceptsBytes: guard }]) {
      const { rows, passed, error, completed } = route(Ping, records, options);
      expect(error).toBeUndefined();
      expect(completed).toBe(true);
      expect(passed).toEqual([4n]);
      expect(rows.map((r) => [r.offset, r.error_type])).toEqual([0n, 1n, 2n, 3n].map((o) => [o, 'NESTING_TOO_DEEP']));
      expect(rows[0]?.error_message).toBe(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
      expect(rows[0]?.original_payload_bytes).toBe(records[0]?.value);
      expect(rows[3]?.session_id).toBe('s');
    }
  });

  it('puts the limit at maxDepth: depth 512 is decoded (and explained briefly), 513 is too deep', () => {
    const List = t.array(t.string);
    const { rows } = route(List, [enriched(0, deepArray(MAX_JSON_DEPTH)), enriched(1, deepArray(MAX_JSON_DEPTH + 1))]);
    expect(rows.map((r) => r.error_type)).toEqual(['SCHEMA_VALIDATION_ERROR', 'NESTING_TOO_DEEP']);
    expect(rows[0]?.error_message).toBe('Invalid value [[[…]]] supplied to : Array<string>/0: string');
    const small = route(null, [enriched(0, deepArray(3)), enriched(1, deepArray(4)), enriched(2, `[${'"x",'.repeat(10)}1]`)], { maxDepth: 3 });
    expect(small.rows.map((r) => [r.offset, r.error_type])).toEqual([[1n, 'NESTING_TOO_DEEP']]);
    expect(small.passed).toEqual([0n, 2n]);
    // Invalid JSON is a parse error at any depth.
    expect(route(null, [enriched(0, '['.repeat(100_000))]).rows[0]?.error_type).toBe('JSON_PARSE_ERROR');
  });

  it('keeps schema messages short whatever the value: huge strings, wide arrays, many errors', () => {
    const Doc = t.type({ id: t.number, tags: t.array(t.string), nested: t.type({ x: t.number }) });
    const huge = 'x'.repeat(400_000);
    const records = [
      enriched(0, JSON.stringify({ id: huge, tags: [], nested: { x: 1 } })),
      enriched(1, JSON.stringify({ id: 1, tags: Array.from({ length: 50_000 }, (_, i) => i), nested: { x: 1 } })),
      enriched(2, JSON.stringify({ id: 1, tags: [], nested: { x: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, [[[[i]]]]])) } })),
      enriched(3, JSON.stringify({ [huge]: 1, id: 1, tags: [], nested: { x: '\ud800'.repeat(1000) } })),
    ];
    const { rows, error } = route(Doc, records);
    expect(error).toBeUndefined();
    expect(rows.map((r) => r.error_type)).toEqual(Array(4).fill('SCHEMA_VALIDATION_ERROR'));
    for (const r of rows) expect(r.error_message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS);
    expect(rows[0]?.error_message).toMatch(/^Invalid value "x{100,}… supplied to : \{.*\}\/id: number$/);
    expect(rows[1]?.error_message).toContain('… and 49992 more');
    expect(rows[2]?.error_message).toContain('Invalid value {"k0":[[…]],"k1":[[…]],"k2":[[…]],"k3":[[…]],"k4":[[…]],"k5":[[…]],…} supplied to');
  });

  it('dead-letters a record whose codec, accepts or acceptsBytes throws as PROCESSING_ERROR, and goes on', () => {
    const boom = new t.Type<string, string, unknown>(
      'Boom',
      t.string.is,
      (u, c) => {
        if (u === 'throw') throw new RangeError('Maximum call stack size exceeded');
        if (u === 'throw-string') throw 'x'.repeat(100_000); // eslint-disable-line @typescript-eslint/only-throw-error
        if (u === 'throw-long') throw new Error('y'.repeat(100_000));
        return t.string.validate(u, c);
      },
      t.identity,
    );
    const Doc = t.type({ v: boom });
    const records = ['throw', 'ok', 'throw-string', 'throw-long', 'fine'].map((v, i) => enriched(i, JSON.stringify({ v, session_id: 'sess' })));
    const { rows, passed, error } = route(Doc, records);
    expect(error).toBeUndefined();
    expect(passed).toEqual([1n, 4n]);
    expect(rows.map((r) => [r.offset, r.error_type])).toEqual([
      [0n, 'PROCESSING_ERROR'],
      [2n, 'PROCESSING_ERROR'],
      [3n, 'PROCESSING_ERROR'],
    ]);
    expect(rows[0]?.error_message).toBe('RangeError: Maximum call stack size exceeded');
    expect(rows[0]?.original_payload).toBe(JSON.stringify({ v: 'throw', session_id: 'sess' }));
    for (const r of rows) expect(r.error_message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS);

    const throwing = (v: unknown): boolean => {
      if ((v as { v?: string }).v === 'throw') throw new TypeError('accepts failed');
      return false;
    };
    const a = route(t.type({ v: t.string }), records.slice(0, 2), { accepts: throwing });
    expect(a.rows.map((r) => [r.offset, r.error_type, r.error_message])).toEqual([[0n, 'PROCESSING_ERROR', 'TypeError: accepts failed']]);
    expect(a.passed).toEqual([1n]);
    const bytesThrow = (b: Uint8Array): boolean => {
      if (b.length % 2 === 0) throw new Error('guard failed');
      return false;
    };
    const b = route(null, [enriched(0, '[1]'), enriched(1, '[12]')], { attachDecoded: false, acceptsBytes: bytesThrow });
    expect(b.rows.map((r) => [r.offset, r.error_type])).toEqual([[1n, 'PROCESSING_ERROR']]);
    expect(b.passed).toEqual([0n]);
  });

  it('stops with a SystematicProcessingError when maxConsecutiveProcessingErrors records in a row throw', () => {
    const Broken = new t.Type<unknown, unknown, unknown>('Broken', (u): u is unknown => u === 1, (u, _c) => (u === 1 ? t.success(u) : (null as unknown as t.Validation<unknown>)), t.identity);
    const ok = () => enriched(0, '1');
    const bad = () => enriched(0, '2'); // decode returns null: reading ._tag throws
    const records = [bad(), bad(), ok(), bad(), bad(), bad(), ok()].map((r, i) => ({ ...r, offset: BigInt(i), _kafka_offset: BigInt(i) }));
    const { rows, passed, error } = route(Broken, records, { maxConsecutiveProcessingErrors: 3 });
    expect(passed).toEqual([2n]);
    expect(rows.map((r) => r.offset)).toEqual([0n, 1n, 3n, 4n]);
    expect(error).toBeInstanceOf(SystematicProcessingError);
    expect((error as SystematicProcessingError).count).toBe(3);
    expect((error as SystematicProcessingError).row.offset).toBe(5n);
    expect((error as Error).message).toMatch(/^3 records in a row failed while being handled, the last at t\/0@5: TypeError: .*not about one record/);
    // The default tolerates a long run of bad records (1,000 in a row).
    const many = Array.from({ length: 999 }, (_, i) => ({ ...bad(), offset: BigInt(i) }));
    expect(route(Broken, many).error).toBeUndefined();
  });

  it('fails loudly on a processing error when disabled', () => {
    const Throws = new t.Type<unknown>('Throws', (_u): _u is unknown => false, () => {
      throw new Error('codec bug');
    }, t.identity);
    const { error, passed } = route(Throws, [enriched(0, '{}')], { enabled: false });
    expect(passed).toEqual([]);
    expect(error).toBeInstanceOf(DeadLetterError);
    expect((error as DeadLetterError).row).toMatchObject({ error_type: 'PROCESSING_ERROR', error_message: 'Error: codec bug' });
  });

  it('deadLetterRowOf builds a row from any record reference, deriving missing metadata', () => {
    const row = deadLetterRowOf({ topic: 'x', partition: 2, offset: 7n, timestamp: 1_700_000_000_000 }, 'PROCESSING_ERROR', 'z'.repeat(10_000));
    expect(row).toMatchObject({
      topic: 'x',
      kafka_topic: 'x',
      _kafka_partition: 2,
      _kafka_offset: 7n,
      _kafka_timestamp: 1_700_000_000_000_000n,
      original_payload: null,
      original_payload_bytes: null,
      size: 0,
    });
    expect(row.error_message).toHaveLength(MAX_ERROR_MESSAGE_CHARS);
    expect(deadLetterRowOf({ topic: 'x', partition: 0, offset: 0n, timestamp: 9e18 }, 'PROCESSING_ERROR', 'm')._kafka_timestamp).toBe(-1000n);
  });
});
