/**
 * Defence in depth: a record that reaches `deltaSink` twice inside one batch — whole, or in
 * chunks — is committed once. Judged by delta-rs.
 */
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { BatchChunk } from '../../src/operators/bufferTime.ts';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import { verifyDelta } from '../support/stack.ts';
import type { BronzeRow } from './deltaFixtures.ts';
import { bronzeRows, bronzeSpec, freshTarget } from './deltaFixtures.ts';

function offsetsOf(rows: Array<Record<string, unknown>> | undefined): string[] {
  return (rows ?? []).map((r) => `${String(r._kafka_partition)}@${String(r._kafka_offset)}`).sort();
}

describe('deltaSink: one batch never commits a record twice', () => {
  it.each(['local', 's3'] as const)('a whole batch with a partition read again from its committed offset (%s)', async (kind) => {
    const t = freshTarget(kind, 'delta-repeats');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_repeats'));
    const p0 = bronzeRows({ count: 30, partition: 0, firstOffset: 100n });
    const p1 = bronzeRows({ count: 5, partition: 1, firstOffset: 7n });
    // 100..129, then 7..11 of partition 1, then 110..129 again and 130..139 (the broker's second copy).
    const again = bronzeRows({ count: 30, partition: 0, firstOffset: 110n });
    const batch = [...p0, ...p1, ...again];
    const [ack] = await lastValueFrom(from([batch]).pipe(deltaSink(table, { pipelineId: 'bronze' }), toArray()));
    expect([ack?.rows, ack?.skipped]).toEqual([45, 20]);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_partition', '_kafka_offset'], appIds: ['bronze-trips-0', 'bronze-trips-1'] });
    expect(v.num_rows).toBe(45);
    expect(new Set(offsetsOf(v.rows)).size).toBe(45);
    expect(v.txn_exact).toEqual({ 'bronze-trips-0': '139', 'bronze-trips-1': '11' });
  });

  it('a batch in chunks whose later chunk repeats records of an earlier one', async () => {
    const t = freshTarget('local', 'delta-repeats-chunks');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_repeats_chunks'));
    const rows = bronzeRows({ count: 40, partition: 3, firstOffset: 0n });
    const chunks: BatchChunk<BronzeRow>[] = [
      { records: rows.slice(0, 20), last: false },
      // the same chunk again, then records 10..29 with a repeat inside the chunk itself
      { records: [...rows.slice(0, 20)], last: false },
      { records: [...rows.slice(10, 30), ...rows.slice(25, 27)], last: false },
      { records: rows.slice(30), last: true },
    ];
    const [ack] = await lastValueFrom(from(chunks).pipe(deltaSink(table, { pipelineId: 'bronze' }), toArray()));
    expect([ack?.rows, ack?.skipped, ack?.refs.length]).toEqual([40, 32, 40]);
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_partition', '_kafka_offset'] });
    expect(v.num_rows).toBe(40);
    expect(offsetsOf(v.rows)).toEqual(rows.map((r) => `3@${r.offset}`).sort());
  });
});
