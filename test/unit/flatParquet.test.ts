/**
 * The flat Parquet writer against hyparquet-writer: every Delta type, nulls, many pages and row
 * groups; read back with hyparquet, and the same Delta stats as the hyparquet-writer path.
 */
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { encodePacked, packColumns } from '../../src/sinks/delta/columnar.ts';
import { compareBytes } from '../../src/sinks/delta/flatParquet.ts';
import { encodeParquet } from '../../src/sinks/delta/parquet.ts';
import type { ColumnSpec } from '../../src/sinks/delta/schema.ts';
import { parquetSchema } from '../../src/sinks/delta/schema.ts';

interface Row {
  s: Uint8Array | string | null;
  b: Uint8Array | null;
  i: number | null;
  l: bigint | number | null;
  t: bigint | null;
  d: string | null;
  f: number | null;
  o: boolean | null;
  r: number;
}

const columns: ColumnSpec<Row>[] = [
  { name: 's', type: 'string' },
  { name: 'b', type: 'binary' },
  { name: 'i', type: 'integer' },
  { name: 'l', type: 'long' },
  { name: 't', type: 'timestamp' },
  { name: 'd', type: 'date' },
  { name: 'f', type: 'double' },
  { name: 'o', type: 'boolean' },
  { name: 'r', type: 'long', nullable: false },
];

const texts = ['alpha', 'zeta', 'é', '\u{1F600}', '\uFFFD', '', 'x'.repeat(300)];

function rowsOf(n: number, seed: number): Row[] {
  let x = seed;
  const rnd = (): number => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const maybe = <T>(v: T): T | null => (rnd() < 0.2 ? null : v);
  return Array.from({ length: n }, (_, k) => ({
    s: maybe(rnd() < 0.5 ? Buffer.from(texts[k % texts.length] as string) : (texts[(k + 3) % texts.length] as string)),
    b: maybe(Buffer.from([k & 255, (k >> 8) & 255])),
    i: maybe(Math.floor(rnd() * 2 ** 31) - 2 ** 30),
    l: maybe(rnd() < 0.5 ? BigInt(k) * 2n ** 40n - 2n ** 50n : k - 1000),
    t: maybe(1_795_000_000_000_000n + BigInt(k) * 1_001n),
    d: maybe(`2026-0${1 + (k % 9)}-1${k % 10}`),
    f: maybe(k % 17 === 0 ? Number.NaN : (rnd() - 0.5) * 1e6),
    o: maybe(rnd() < 0.5),
    r: k,
  }));
}

function bufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

const DAY_MS = 86_400_000;

describe('flat Parquet writer', () => {
  it('writes what hyparquet reads back, over many pages and row groups, with the same Delta stats as hyparquet-writer', async () => {
    const rows = rowsOf(3_001, 7);
    const flat = encodeParquet(rows, columns, undefined, { pageSize: 700, rowGroupSize: 1_000 });
    const reference = encodeParquet(rows, columns, undefined, { pageSize: 700, rowGroupSize: 1_000, writer: 'hyparquet' });
    expect(flat.stats).toBe(reference.stats);
    const meta = parquetMetadata(bufferOf(flat.bytes));
    expect(meta.row_groups).toHaveLength(4);
    expect(meta.num_rows).toBe(3_001n);
    const back = await parquetReadObjects({ file: bufferOf(flat.bytes), utf8: false });
    expect(back).toHaveLength(rows.length);
    back.forEach((got, k) => {
      const want = rows[k] as Row;
      const bytes = (v: Uint8Array | string | null): number[] | null => (v === null ? null : [...(typeof v === 'string' ? Buffer.from(v) : v)]);
      expect(bytes(got.s as Uint8Array | null)).toEqual(bytes(want.s));
      expect(bytes(got.b as Uint8Array | null)).toEqual(bytes(want.b));
      expect(got.i).toBe(want.i);
      expect(got.l).toBe(want.l === null ? null : BigInt(want.l));
      expect(got.t === null ? null : (got.t as Date).getTime()).toBe(want.t === null ? null : Number(want.t / 1000n));
      expect(got.d === null ? null : (got.d as Date).getTime() / DAY_MS).toBe(want.d === null ? null : Date.parse(`${want.d}T00:00:00Z`) / DAY_MS);
      expect(got.f).toBe(want.f);
      expect(got.o).toBe(want.o);
      expect(got.r).toBe(BigInt(want.r));
    });
    // The worker thread's path (packed columns) writes the same file.
    expect(encodePacked(packColumns(rows, columns), parquetSchema(columns as ColumnSpec<unknown>[]), { pageSize: 700, rowGroupSize: 1_000 }).stats).toBe(flat.stats);
  });

  it('writes null counts for every column and min/max in Parquet order (UTF-8 bytes, signed zeros)', () => {
    const rows = rowsOf(500, 3);
    const meta = parquetMetadata(bufferOf(encodeParquet(rows, columns).bytes));
    const stats = (name: string) => meta.row_groups[0]?.columns.find((c) => c.meta_data?.path_in_schema[0] === name)?.meta_data?.statistics;
    expect(stats('s')?.null_count).toBe(BigInt(rows.filter((r) => r.s === null).length));
    expect(stats('r')?.min_value).toBe(0n);
    expect(stats('r')?.max_value).toBe(499n);
    // U+1F600 (a surrogate pair in UTF-16) sorts after U+FFFD in UTF-8.
    expect(compareBytes('\u{1F600}', '\uFFFD')).toBeGreaterThan(0);
    expect(compareBytes(Buffer.from('\u{1F600}'), '\uFFFD')).toBeGreaterThan(0);
    expect(compareBytes('a', 'ab')).toBeLessThan(0);
    expect(compareBytes('é', 'z')).toBeGreaterThan(0);
  });

  it('writes empty and all-null pages', async () => {
    const rows: Row[] = Array.from({ length: 20 }, (_, r) => ({ s: null, b: null, i: null, l: null, t: null, d: null, f: null, o: null, r }));
    const file = encodeParquet(rows, columns);
    const back = await parquetReadObjects({ file: bufferOf(file.bytes) });
    expect(back.map((r) => r.s as unknown)).toEqual(rows.map(() => null));
    expect(back.map((r) => r.r as unknown)).toEqual(rows.map((r) => BigInt(r.r)));
    expect(JSON.parse(file.stats)).toMatchObject({ numRecords: 20, nullCount: { s: 20, r: 0 } });
  });
});
