import { describe, expect, it } from 'vitest';
import { memoryStorage } from '../../src/sinks/delta/memoryStorage.ts';
import type { MemoryStorageOperation } from '../../src/sinks/delta/memoryStorage.ts';
import { isRetriable } from '../../src/core/errors.ts';
import { StorageError } from '../../src/sinks/delta/retry.ts';
import type { TableSpec } from '../../src/sinks/delta/schema.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { RecordRef } from '../../src/types.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

describe('memoryStorage', () => {
  it('reads, writes, replaces and deletes whole files; a missing file reads as undefined', async () => {
    const s = memoryStorage();
    expect(await s.read('a/b.json')).toBeUndefined();
    await s.write('a/b.json', bytes('one'));
    await s.write('a/b.json', bytes('two'));
    expect(text(await s.read('a/b.json'))).toBe('two');
    await s.delete('a/b.json');
    await s.delete('a/b.json'); // missing files are fine
    expect(await s.read('a/b.json')).toBeUndefined();
  });

  it('copies data in and out: callers may reuse their buffers', async () => {
    const s = memoryStorage();
    const data = bytes('abc');
    await s.write('f', data);
    data[0] = 0x7a;
    const read = await s.read('f');
    (read as Uint8Array)[1] = 0x7a;
    expect(text(await s.read('f'))).toBe('abc');
  });

  it('putIfAbsent creates a file only if the name is free', async () => {
    const s = memoryStorage();
    expect(await s.putIfAbsent('_delta_log/00000000000000000000.json', bytes('first'))).toBe(true);
    expect(await s.putIfAbsent('_delta_log/00000000000000000000.json', bytes('second'))).toBe(false);
    expect(text(await s.read('_delta_log/00000000000000000000.json'))).toBe('first');
  });

  it('lists the files directly in a folder, sorted, after startAfter', async () => {
    const s = memoryStorage();
    for (const p of ['d/3', 'd/1', 'd/2', 'd/sub/x', 'e/1', 'top']) await s.write(p, bytes(p));
    expect(await s.list('d')).toEqual(['1', '2', '3']);
    expect(await s.list('d/', '1')).toEqual(['2', '3']);
    expect(await s.list('')).toEqual(['top']);
    expect(await s.list('nowhere')).toEqual([]);
  });

  it('sub stores share the files under a prefix', async () => {
    const s = memoryStorage({ name: 'lake' });
    const t = s.sub('bronze/trips');
    expect(t.uri).toBe('memory://lake/bronze/trips');
    await t.write('_delta_log/x.json', bytes('x'));
    expect([...s.files.keys()]).toEqual(['bronze/trips/_delta_log/x.json']);
    expect(text(await s.read('bronze/trips/_delta_log/x.json'))).toBe('x');
    expect(await t.sub('_delta_log').list('')).toEqual(['x.json']);
  });

  it('before: delays an operation until its promise settles, fails it with a StorageError that keeps retriable', async () => {
    const seen: MemoryStorageOperation[] = [];
    let release: (() => void) | undefined;
    let fail: Error | undefined;
    const s = memoryStorage({
      before: (op) => {
        seen.push(op);
        if (fail) throw fail;
        if (op.op === 'putIfAbsent') return new Promise((resolve) => (release = resolve));
        return undefined;
      },
    });
    const put = s.sub('t').putIfAbsent('c.json', bytes('c'));
    await Promise.resolve();
    expect(s.files.has('t/c.json')).toBe(false); // not before the delay is over
    release?.();
    expect(await put).toBe(true);
    expect(seen).toEqual([{ op: 'putIfAbsent', path: 't/c.json' }]);

    fail = new StorageError('injected', { retriable: true });
    await expect(s.write('w', bytes('w'))).rejects.toBe(fail);
    fail = Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
    const err = await s.read('t/c.json').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toBe(`read ${s.uri}/t/c.json: connection reset`);
    expect(isRetriable(err)).toBe(true);
    fail = new Error('access denied');
    expect(isRetriable(await s.list('t').catch((e: unknown) => e))).toBe(false);
  });

  it('holds a Delta table: concurrent writers of one table each commit once, at their own version', async () => {
    interface Row extends RecordRef {
      readonly n: number;
    }
    const spec: TableSpec<Row> = { name: 'nums', columns: [{ name: 'n', type: 'integer' }] };
    const storage = memoryStorage();
    const [a, b] = await Promise.all([
      DeltaTable.openOrCreate(storage.sub('nums'), spec, { encoder: 'inline' }),
      DeltaTable.openOrCreate(storage.sub('nums'), spec, { encoder: 'inline' }),
    ]);
    const row = (n: number): Row => ({ topic: 't', partition: 0, offset: BigInt(n), n });
    const results = await Promise.all([a.append([row(1), row(2)]), b.append([row(3)])]);
    expect(results.map((r) => r.version).sort()).toEqual([1, 2]);
    expect(await storage.list('nums/_delta_log')).toEqual([0, 1, 2].map((v) => `${String(v).padStart(20, '0')}.json`));
  });
});
