import { Observable, asyncScheduler, catchError, concatMap, defer, forkJoin, from, map, of, retry, throwError, timer } from 'rxjs';
import type { MonoTypeOperatorFunction, ObservableInput, Observer, OperatorFunction, SchedulerLike } from 'rxjs';
import type * as t from 'io-ts';
import type * as Avsc from 'avsc';
import type { ErrorObject } from 'ajv';
import { backoffDelay } from '../core/retry.ts';
import type { DeadLetterErrorType, DeadLetterRow, EnrichedRecord } from '../types.ts';
import { MAX_ERROR_MESSAGE_CHARS, MAX_JSON_DEPTH, errorText, jsonDepthExceeds, reportValidationErrors, truncateText } from '../validation/limits.ts';
import { deadLetterRowOf } from './routeErrors.ts';
import { SchemaRegistryClient } from './internal/schemaRegistryClient.ts';
import type { RegisteredSchema, SchemaRegistryClientOptions, SchemaSource } from './internal/schemaRegistryClient.ts';

export { SchemaRegistryClient, SchemaRegistryError, SchemaRegistryUnavailableError } from './internal/schemaRegistryClient.ts';
export type { RegisteredSchema, SchemaReference, SchemaRegistryClientOptions, SchemaSource } from './internal/schemaRegistryClient.ts';

export interface DecodeWithRegistryOptions<A = unknown> {
  /** Checks the decoded value (`SCHEMA_VALIDATION_ERROR` when it fails); its output becomes `decoded`. */
  readonly codec?: t.Decoder<unknown, A>;
  /** Reject values longer than this many bytes (`OVERSIZED_PAYLOAD`). */
  readonly maxPayloadBytes?: number;
  /** JSON payloads nested deeper than this are rejected (`NESTING_TOO_DEEP`); default `MAX_JSON_DEPTH`. */
  readonly maxDepth?: number;
  /** Tombstones (null values): dead-letter them (`NULL_VALUE`, default) or pass them on (`decoded: null`, `schemaId: null`). */
  readonly nullValue?: 'dead-letter' | 'pass';
  /** Backoff between attempts while the registry is unreachable; default 250 ms doubling up to 30 s, jittered. */
  readonly retryBackoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Called before each wait for an unreachable registry (records wait meanwhile). */
  readonly onRetry?: (retry: RegistryRetry) => void;
  /**
   * Give up after the registry has been unreachable this long for one schema: the stream errors
   * with the last outage error. Default `Infinity`: records wait for the registry.
   */
  readonly maxRetryMs?: number;
  /** How long an id the registry does not have is remembered as such, ms; default 60 000. */
  readonly notFoundTtlMs?: number;
}

export interface RegistryRetry {
  readonly schemaId: number;
  readonly attempt: number;
  readonly retryInMs: number;
  readonly error: Error;
}

/** A decoded record: the record as it came, its decoded value, and the schema id it was written with. */
export type RegistryDecoded<T, A> = T & { readonly decoded: A; readonly schemaId: number | null };

/**
 * Decodes payloads written with a schema registry's serializers (the Confluent wire format:
 * magic byte `0`, the schema id as 4 bytes big-endian, then the Avro binary or JSON text) and
 * passes each record on with its `decoded` value and `schemaId`. Schemas are fetched by id from
 * the registry once and cached (Avro with `avsc`, JSON Schema with `ajv`, both loaded on first
 * use; Avro `long`s decode to `bigint`); schema references are followed.
 *
 * Bad records go to `deadLetters` with their own error types and never stop the stream:
 * `WIRE_FORMAT_ERROR` (shorter than the 5-byte header, or a magic byte other than 0),
 * `SCHEMA_NOT_FOUND` (an id the registry does not have), `SCHEMA_DECODE_ERROR` (bytes that do
 * not decode with their schema, a schema that does not compile, a Protobuf schema),
 * `ENCODING_ERROR` / `JSON_PARSE_ERROR` / `NESTING_TOO_DEEP` / `SCHEMA_VALIDATION_ERROR` (a JSON
 * Schema payload that is not UTF-8, not JSON, too deep or not valid for its schema; the
 * `codec`'s verdict on any decoded value), `NULL_VALUE`, `OVERSIZED_PAYLOAD`, and
 * `PROCESSING_ERROR` for anything that throws.
 *
 * A registry that cannot be reached (no answer, a timeout, HTTP 5xx/429/408) is not the
 * records' fault: they wait, in order, while the lookup is retried with jittered exponential
 * backoff (`onRetry` tells each wait) — nothing is dead-lettered, and nothing behind them is
 * acknowledged, so no offset is committed past them. A registry that refuses the request
 * (wrong URL, refused credentials) errors the stream with a `SchemaRegistryError` naming the fix.
 *
 * Lifecycle as `routeErrors`: completion and error of the source are forwarded to `deadLetters`.
 *
 * ## Example
 * ```ts
 * source.records$.pipe(
 *   enrichMetadata(),
 *   withDeadLetters(
 *     (dlq) => pipe(decodeWithRegistry({ url: 'http://127.0.0.1:8081' }, dlq), partitionByDate(), bufferTime(), deltaSink(trips)),
 *     pipe(bufferTime(), deltaSink(tripsDlq)),
 *   ),
 *   commitOffsets(source),
 * );
 * ```
 *
 * @param registry The registry's Confluent-compatible API (`{ url, auth }`), or any `SchemaSource`.
 * @param deadLetters Receives one `DeadLetterRow` per rejected record.
 * @param options A codec for the decoded values, limits, tombstones, the retry backoff and its hook.
 * @param scheduler Times the waits between attempts (default `asyncScheduler`).
 * @return A function that returns an Observable of the decoded records, in their order.
 */
export function decodeWithRegistry<T extends EnrichedRecord = EnrichedRecord>(
  registry: SchemaSource | SchemaRegistryClientOptions,
  deadLetters: Observer<DeadLetterRow>,
  options?: DecodeWithRegistryOptions & { readonly codec?: undefined },
  scheduler?: SchedulerLike,
): OperatorFunction<T, RegistryDecoded<T, unknown>>;
export function decodeWithRegistry<A, T extends EnrichedRecord = EnrichedRecord>(
  registry: SchemaSource | SchemaRegistryClientOptions,
  deadLetters: Observer<DeadLetterRow>,
  options: DecodeWithRegistryOptions<A> & { readonly codec: t.Decoder<unknown, A> },
  scheduler?: SchedulerLike,
): OperatorFunction<T, RegistryDecoded<T, A>>;
export function decodeWithRegistry<A, T extends EnrichedRecord = EnrichedRecord>(
  registry: SchemaSource | SchemaRegistryClientOptions,
  deadLetters: Observer<DeadLetterRow>,
  options: DecodeWithRegistryOptions<A> = {},
  scheduler: SchedulerLike = asyncScheduler,
): OperatorFunction<T, RegistryDecoded<T, A>> {
  const {
    codec,
    maxPayloadBytes = Number.POSITIVE_INFINITY,
    maxDepth = MAX_JSON_DEPTH,
    nullValue = 'dead-letter',
    retryBackoff = {},
    onRetry,
    maxRetryMs = Number.POSITIVE_INFINITY,
    notFoundTtlMs = 60_000,
  } = options;
  const lookup: SchemaSource = 'schemaById' in registry ? registry : new SchemaRegistryClient(registry);
  const where = lookup instanceof SchemaRegistryClient ? ` at ${lookup.url}` : '';
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  type Verdict = { readonly ok: RegistryDecoded<T, A> } | { readonly row: DeadLetterRow };
  const reject = (record: T, type: DeadLetterErrorType, message: string): Verdict => ({ row: deadLetterRowOf(record, type, message) });

  /** Asks `source` again while it fails with an outage, with backoff, for at most `maxRetryMs`. */
  const retryOutages = <V>(schemaId: number): MonoTypeOperatorFunction<V> => {
    const started = scheduler.now();
    return retry({
      delay: (error: unknown, attempt: number) => {
        if (!isOutage(error) || scheduler.now() - started >= maxRetryMs) return throwError(() => error);
        const retryInMs = Math.min(backoffDelay(attempt, { initialMs: retryBackoff.initialMs ?? 250, maxMs: retryBackoff.maxMs ?? 30_000 }), Math.max(0, maxRetryMs - (scheduler.now() - started)));
        onRetry?.({ schemaId, attempt, retryInMs, error: error as Error });
        return timer(retryInMs, scheduler);
      },
    });
  };
  const ask = <V>(schemaId: number, request: () => ObservableInput<V>): Observable<V> => defer(() => from(request())).pipe(retryOutages<V>(schemaId));

  /**
   * A schema after the schemas it references, recursively, each once (dependencies first), the
   * referenced ones with the name and subject/version they are referenced by.
   */
  const withReferences = (schemaId: number, schema: RegisteredSchema, depth = 0): Observable<NamedSchema[]> => {
    if (schema.references.length === 0) return of([schema]);
    if (depth > 32) return throwError(() => new MissingReferenceError('schema references nested deeper than 32 levels'));
    return forkJoin(
      schema.references.map((ref) =>
        ask(schemaId, () => lookup.schemaByVersion(ref.subject, ref.version)).pipe(
          concatMap((found) =>
            found === undefined
              ? throwError(() => new MissingReferenceError(`referenced schema ${JSON.stringify(ref.name)} (subject ${JSON.stringify(ref.subject)} version ${ref.version}) is not in the schema registry${where}`))
              : withReferences(schemaId, found, depth + 1).pipe(
                  map((list) => [...list.slice(0, -1), { ...found, name: ref.name, key: `${ref.subject}/${ref.version}` }]),
                ),
          ),
        ),
      ),
    ).pipe(
      map((lists) => {
        const seen = new Set<string>();
        const unique = lists.flat().filter((s) => s.key === undefined || (!seen.has(s.key) && seen.add(s.key) !== undefined));
        return [...unique, schema];
      }),
    );
  };

  return (source) =>
    new Observable<RegistryDecoded<T, A>>((subscriber) => {
      const decoders = new Map<number, { readonly decoder: Decoder; readonly until: number }>();

      /** The decoder of schema `id`: cached, or fetched (with its references) and built. */
      const decoderOf = (id: number): Observable<Decoder> => {
        const hit = decoders.get(id);
        if (hit !== undefined && hit.until > scheduler.now()) return of(hit.decoder);
        return ask(id, () => lookup.schemaById(id)).pipe(
          concatMap((schema) => {
            if (schema === undefined) return of<Decoder>({ kind: 'missing', message: `schema id ${id} is not in the schema registry${where}` });
            return forkJoin([withReferences(id, schema), libraries()]).pipe(
              map(([schemas, libs]) => buildDecoder(id, schemas, libs)),
            );
          }),
          // A reference the registry lacks makes this schema unusable, like a schema that does not compile.
          catchError((err: unknown) => (err instanceof MissingReferenceError ? of<Decoder>({ kind: 'broken', message: `schema id ${id}: ${err.message}` }) : throwError(() => err))),
          map((decoder) => {
            decoders.set(id, { decoder, until: decoder.kind === 'missing' ? scheduler.now() + notFoundTtlMs : Number.POSITIVE_INFINITY });
            return decoder;
          }),
        );
      };

      /** The verdict on one record, given its schema's decoder. Never throws. */
      const apply = (record: T, id: number, payload: Uint8Array, decoder: Decoder): Verdict => {
        try {
          let value: unknown;
          switch (decoder.kind) {
            case 'missing':
              return reject(record, 'SCHEMA_NOT_FOUND', decoder.message);
            case 'broken':
              return reject(record, 'SCHEMA_DECODE_ERROR', decoder.message);
            case 'avro':
              try {
                value = decoder.type.fromBuffer(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
              } catch (err) {
                return reject(record, 'SCHEMA_DECODE_ERROR', `payload does not decode with Avro schema id ${id}: ${errorText(err)}`);
              }
              break;
            case 'json': {
              let text: string;
              try {
                text = strict.decode(payload);
              } catch {
                return reject(record, 'ENCODING_ERROR', `payload after the schema id ${id} is not valid UTF-8`);
              }
              try {
                value = JSON.parse(text);
              } catch (err) {
                return reject(record, 'JSON_PARSE_ERROR', err instanceof Error ? truncateText(err.message, MAX_ERROR_MESSAGE_CHARS) : errorText(err));
              }
              if (jsonDepthExceeds(payload, maxDepth)) return reject(record, 'NESTING_TOO_DEEP', `JSON nested deeper than ${maxDepth} levels`);
              if (decoder.validate(value) !== true) {
                return reject(record, 'SCHEMA_VALIDATION_ERROR', `not valid for JSON Schema id ${id}: ${ajvErrors(decoder.validate.errors)}`);
              }
              break;
            }
          }
          if (codec !== undefined) {
            const result = codec.decode(value);
            if (result._tag === 'Left') return reject(record, 'SCHEMA_VALIDATION_ERROR', reportValidationErrors(result.left));
            value = result.right;
          }
          return { ok: { ...record, decoded: value as A, schemaId: id } };
        } catch (err) {
          return reject(record, 'PROCESSING_ERROR', errorText(err));
        }
      };

      const verdictOf = (record: T): Observable<Verdict> => {
        const value = record.value;
        if (value === null) {
          return of(nullValue === 'pass' ? { ok: { ...record, decoded: null as A, schemaId: null } } : reject(record, 'NULL_VALUE', 'null value (tombstone)'));
        }
        if (value.byteLength > maxPayloadBytes) return of(reject(record, 'OVERSIZED_PAYLOAD', `payload of ${value.byteLength} bytes exceeds ${maxPayloadBytes}`));
        if (value.byteLength < 5) {
          return of(reject(record, 'WIRE_FORMAT_ERROR', `payload of ${value.byteLength} bytes is shorter than the wire format's 5-byte header (magic byte 0, 4-byte schema id)`));
        }
        if (value[0] !== 0) {
          const looks = value[0] === 0x7b || value[0] === 0x5b ? ' (it looks like plain JSON: produced without the registry serializer?)' : '';
          return of(reject(record, 'WIRE_FORMAT_ERROR', `magic byte 0x${(value[0] ?? 0).toString(16).padStart(2, '0')}, expected 0x00${looks}`));
        }
        const id = (value[1]! << 24) + (value[2]! << 16) + (value[3]! << 8) + value[4]!; // unsigned: ids are positive
        const payload = value.subarray(5);
        const hit = decoders.get(id);
        if (hit !== undefined && hit.until > scheduler.now()) return of(apply(record, id, payload, hit.decoder));
        return decoderOf(id).pipe(map((decoder) => apply(record, id, payload, decoder)));
      };

      return source.pipe(concatMap(verdictOf)).subscribe({
        next: (v) => {
          if ('ok' in v) subscriber.next(v.ok);
          else deadLetters.next(v.row);
        },
        error: (err: unknown) => {
          deadLetters.error(err);
          subscriber.error(err);
        },
        complete: () => {
          deadLetters.complete();
          subscriber.complete();
        },
      });
    });
}

type Decoder =
  | { readonly kind: 'missing'; readonly message: string }
  | { readonly kind: 'broken'; readonly message: string }
  | { readonly kind: 'avro'; readonly type: Avsc.Type }
  | { readonly kind: 'json'; readonly validate: JsonValidate };

type NamedSchema = RegisteredSchema & { readonly name?: string; readonly key?: string };

type JsonValidate = ((value: unknown) => boolean | Promise<unknown>) & { errors?: ErrorObject[] | null };

class MissingReferenceError extends Error {}

function isOutage(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retriable?: unknown }).retriable === true;
}

function ajvErrors(errors: ErrorObject[] | null | undefined): string {
  if (errors === null || errors === undefined || errors.length === 0) return 'rejected';
  const parts = errors.slice(0, 8).map((e) => `${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? e.keyword}`);
  return truncateText(parts.join('; ') + (errors.length > 8 ? `; … ${errors.length - 8} more` : ''), MAX_ERROR_MESSAGE_CHARS);
}

// ---- the codec libraries, loaded on first use ---------------------------------------------------

interface Libraries {
  readonly avsc: typeof Avsc;
  /** Ajv classes by JSON Schema draft. */
  readonly ajv: { readonly draft7: AjvClass; readonly draft2019: AjvClass; readonly draft2020: AjvClass };
}
type AjvClass = new (options: Record<string, unknown>) => {
  addSchema(schema: unknown, key?: string): unknown;
  compile(schema: unknown): JsonValidate;
};

let loaded: Libraries | undefined;
let loading: Promise<Libraries> | undefined;

/** `avsc` and `ajv` (optional peer dependencies), imported once; synchronously once loaded. */
function libraries(): Observable<Libraries> {
  if (loaded !== undefined) return of(loaded);
  return from(loadLibraries());
}

/**
 * Loads the codec libraries `decodeWithRegistry` uses (`avsc`, `ajv`, optional peer
 * dependencies). It does so itself on the first schema; call this first where that first decode
 * must not wait for an import (tests in virtual time), or to fail at start when they are missing.
 */
export async function loadRegistryCodecs(): Promise<void> {
  await loadLibraries();
}

function loadLibraries(): Promise<Libraries> {
  loading ??= (async () => {
    try {
      const [avsc, ajv7, ajv2019, ajv2020] = await Promise.all([import('avsc'), import('ajv'), import('ajv/dist/2019.js'), import('ajv/dist/2020.js')]);
      const lib: Libraries = {
        avsc: (avsc as unknown as { default?: typeof Avsc }).default ?? avsc,
        ajv: { draft7: ajvClass(ajv7), draft2019: ajvClass(ajv2019), draft2020: ajvClass(ajv2020) },
      };
      loaded = lib;
      return lib;
    } catch (err) {
      loading = undefined;
      throw new Error(`decodeWithRegistry needs the packages avsc and ajv: npm install avsc ajv (${errorText(err)})`, { cause: err });
    }
  })();
  return loading;
}

function ajvClass(module: unknown): AjvClass {
  const m = module as { default?: unknown };
  const inner = m.default as { default?: unknown } | undefined;
  return (typeof inner?.default === 'function' ? inner.default : typeof m.default === 'function' ? m.default : module) as AjvClass;
}

/** Avro `long` as `bigint`: exact beyond 2^53 (avsc's default is a lossy `number`). */
function bigintLong(avsc: typeof Avsc): Avsc.Type {
  return (avsc.types.LongType as unknown as { __with(methods: object): Avsc.Type }).__with({
    fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
    toBuffer: (n: bigint) => {
      const buf = Buffer.alloc(8);
      buf.writeBigInt64LE(BigInt(n));
      return buf;
    },
    fromJSON: (n: number | string) => BigInt(n),
    toJSON: (n: bigint) => Number(n),
    isValid: (n: unknown) => typeof n === 'bigint',
    compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
  });
}

/** The decoder of a schema, given it last and the schemas it references (named) before it. */
function buildDecoder(id: number, schemas: readonly NamedSchema[], libs: Libraries): Decoder {
  const main = schemas[schemas.length - 1]!;
  try {
    if (main.schemaType === 'PROTOBUF') {
      return { kind: 'broken', message: `schema id ${id} is a Protobuf schema: decodeWithRegistry decodes Avro and JSON Schema payloads` };
    }
    if (main.schemaType === 'AVRO') {
      const registry: Record<string, Avsc.Type> = { long: bigintLong(libs.avsc) };
      let type: Avsc.Type | undefined;
      for (const s of schemas) type = libs.avsc.Type.forSchema(JSON.parse(s.schema) as Avsc.Schema, { registry });
      return { kind: 'avro', type: type! };
    }
    const parsed = JSON.parse(main.schema) as { $schema?: unknown };
    const draft = typeof parsed.$schema === 'string' ? parsed.$schema : '';
    const Ajv = draft.includes('2020-12') ? libs.ajv.draft2020 : draft.includes('2019-09') ? libs.ajv.draft2019 : libs.ajv.draft7;
    const ajv = new Ajv({ strict: false, allErrors: false, validateFormats: false });
    for (const s of schemas.slice(0, -1)) ajv.addSchema(JSON.parse(s.schema), s.name);
    return { kind: 'json', validate: ajv.compile(parsed) };
  } catch (err) {
    return { kind: 'broken', message: `schema id ${id} (${main.schemaType}) cannot be used: ${errorText(err)}` };
  }
}
