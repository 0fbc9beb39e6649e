/**
 * The bronze pipeline's error classification written out step by step (tombstone → size → UTF-8 → JSON → depth → codec),
 * independently of `routeErrors`: what tests expect a payload to become.
 */
import { isRight } from 'fp-ts/lib/Either.js';
import type * as t from 'io-ts';
import { bronzeCodecs } from '../../src/pipelines/rideshare/codecs.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import type { DeadLetterErrorType } from '../../src/types.ts';

/** Depth of a parsed JSON value (`[]` is 1), walked with an explicit stack: no recursion. */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth]);
  }
  return max;
}

const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Where a value must land, step by step (independently of `routeErrors`): tombstone, size,
 * UTF-8, JSON, depth, codec — the dead-letter error type, or `OK`.
 */
export function expectedRoute(codec: t.Decoder<unknown, unknown>, value: Uint8Array | null, maxPayloadBytes: number, maxDepth = 512): DeadLetterErrorType | 'OK' {
  if (value === null) return 'NULL_VALUE';
  if (value.byteLength > maxPayloadBytes) return 'OVERSIZED_PAYLOAD';
  let text: string;
  try {
    text = fatal.decode(value);
  } catch {
    return 'ENCODING_ERROR';
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'JSON_PARSE_ERROR';
  }
  if (depthOf(json) > maxDepth) return 'NESTING_TOO_DEEP';
  return isRight(codec.decode(json)) ? 'OK' : 'SCHEMA_VALIDATION_ERROR';
}

/** What a bronze topic's payload becomes (no size limit): see `expectedRoute`. */
export function classify(topic: BronzeTopic, bytes: Uint8Array | null): DeadLetterErrorType | 'OK' {
  return expectedRoute(bronzeCodecs[topic], bytes, Number.POSITIVE_INFINITY);
}
