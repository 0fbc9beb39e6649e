/**
 * The bronze pipeline's error classification written out step by step (UTF-8 → JSON → codec),
 * independently of `routeErrors`: what tests expect a payload to become.
 */
import { isRight } from 'fp-ts/lib/Either.js';
import { bronzeCodecs } from '../../src/pipelines/rideshare/codecs.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import type { DeadLetterErrorType } from '../../src/types.ts';

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

export function classify(topic: BronzeTopic, bytes: Uint8Array | null): DeadLetterErrorType | 'OK' {
  if (bytes === null) return 'NULL_VALUE';
  let text: string;
  try {
    text = fatalUtf8.decode(bytes);
  } catch {
    return 'ENCODING_ERROR';
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'JSON_PARSE_ERROR';
  }
  return isRight(bronzeCodecs[topic].decode(json)) ? 'OK' : 'SCHEMA_VALIDATION_ERROR';
}
