import { describe, expect, it } from 'vitest';
import { BatchRecords, uniqueRecords } from '../../src/operators/internal/uniqueRecords.ts';
import type { RecordRef } from '../../src/types.ts';

const refs = (partition: number, ...offsets: number[]): RecordRef[] => offsets.map((o) => ({ topic: 't', partition, offset: BigInt(o) }));
const ids = (rows: readonly RecordRef[]): string[] => rows.map((r) => `${r.topic}/${r.partition}@${r.offset}`);

describe('uniqueRecords', () => {
  it('returns the same array when every record is there once', () => {
    const rows = [...refs(0, 1, 2, 3), ...refs(1, 1, 2), ...refs(0, 4, 9)];
    const u = uniqueRecords(rows);
    expect(u.rows).toBe(rows);
    expect(u.dropped).toBe(0);
  });

  it('drops the second copy of each record, keeping the first copy and the order', () => {
    // A partition read again from its committed offset in the middle of a batch.
    const rows = [...refs(0, 10, 11, 12), ...refs(1, 5), ...refs(0, 11, 12, 13)];
    const u = uniqueRecords(rows);
    expect(ids(u.rows)).toEqual(['t/0@10', 't/0@11', 't/0@12', 't/1@5', 't/0@13']);
    expect(u.dropped).toBe(2);
  });

  it('keeps records that merely come out of order', () => {
    const rows = [...refs(0, 5, 3, 4), ...refs(0, 3)];
    const u = uniqueRecords(rows);
    expect(ids(u.rows)).toEqual(['t/0@5', 't/0@3', 't/0@4']);
    expect(u.dropped).toBe(1);
  });

  it('tells topics apart', () => {
    const rows: RecordRef[] = [{ topic: 'a', partition: 0, offset: 1n }, { topic: 'b', partition: 0, offset: 1n }, { topic: 'a', partition: 0, offset: 1n }];
    expect(ids(uniqueRecords(rows).rows)).toEqual(['a/0@1', 'b/0@1']);
  });
});

describe('BatchRecords (a batch in chunks)', () => {
  it('drops records an earlier chunk of the batch had', () => {
    const batch = new BatchRecords();
    const earlier: RecordRef[] = [];
    const first = batch.keep(refs(0, 1, 2, 3), earlier);
    earlier.push(...first);
    const second = batch.keep([...refs(0, 2, 3, 4), ...refs(1, 7)], earlier);
    expect(ids(second)).toEqual(['t/0@4', 't/1@7']);
    earlier.push(...second);
    const third = batch.keep(refs(0, 1, 5), earlier);
    expect(ids(third)).toEqual(['t/0@5']);
    expect(batch.dropped).toBe(3);
  });
});
