/** Record builders for the marble specs. */
import { TestScheduler } from 'rxjs/testing';
import { expect } from 'vitest';
import type { EnrichedRecord, KafkaRecord } from '../../src/types.ts';

export function testScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

const enc = new TextEncoder();

export function rec(offset: number, value: string | Uint8Array | null, partition = 0, topic = 't'): KafkaRecord {
  const bytes = typeof value === 'string' ? enc.encode(value) : value;
  return {
    topic,
    partition,
    offset: BigInt(offset),
    timestamp: 1_700_000_000_000 + offset,
    key: null,
    value: bytes,
    headers: {},
    size: bytes?.byteLength ?? 0,
  };
}

export function enriched(offset: number, value: string | Uint8Array | null, partition = 0): EnrichedRecord {
  const r = rec(offset, value, partition);
  return {
    ...r,
    _kafka_partition: r.partition,
    _kafka_offset: r.offset,
    _kafka_timestamp: BigInt(r.timestamp) * 1000n,
    _ingested_at: 1_700_000_001_000_000n,
    _ingestion_date: '2023-11-14',
  };
}
