/**
 * Vacuum and log cleanup of bronze tables written by the bronze job, judged by delta-rs: the
 * latest version and time travel within the retention stay readable, versions outside it lose
 * their files; short retentions are refused unless forced; files not committed yet stay.
 */
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filePath } from '../../src/ops/common.ts';
import { optimize } from '../../src/ops/optimize.ts';
import { vacuum } from '../../src/ops/vacuum.ts';
import type { VacuumResult } from '../../src/ops/vacuum.ts';
import { loadSnapshot, readCommit } from '../../src/sinks/delta/log.ts';
import type { Storage } from '../../src/sinks/delta/storage.ts';
import { verifyDelta } from '../support/stack.ts';
import { ingestBronze, removeTempDirs, rowsByKey, rxlake, rxlakeJson, tableStorage } from './opsSupport.ts';

afterAll(removeTempDirs);

const dataFiles = async (storage: Storage): Promise<string[]> =>
  ((await storage.walk?.('')) ?? []).map((f) => f.path).filter((p) => p.endsWith('.parquet') && !p.startsWith('_delta_log/')).sort();

/** The paths a commit removed, and when. */
async function removedBy(storage: Storage, version: number): Promise<{ paths: string[]; at: number }> {
  const c = await readCommit(storage, version);
  const removes = c?.removes ?? [];
  return { paths: removes.map((r) => filePath(r.path)).sort(), at: Number(removes[0]?.deletionTimestamp) };
}

describe.each(['local', 's3'] as const)('vacuum (%s)', (where) => {
  it('deletes what no version within the retention needs; time travel within it still reads', async () => {
    const t = await ingestBronze({ where, count: 1200, seed: 21 });
    const storage = tableStorage(t.table);
    const r1 = await optimize(storage);
    // More rows, then a second compaction: the first one's output is removed too.
    await ingestBronze({ where, count: 1800, seed: 22, base: t.base, prefix: t.prefix });
    const r2 = await optimize(storage);
    expect(r1.version).not.toBeNull();
    expect(r2.version).not.toBeNull();
    const first = await removedBy(storage, r1.version as number);
    const second = await removedBy(storage, r2.version as number);
    const rows = await rowsByKey(t.table, ['_raw_value']);
    const between = await verifyDelta(t.table, { version: (r2.version as number) - 1 });

    // Retention reaching back to just after the first compaction: its inputs go, the second's stay.
    const now = second.at + 1000;
    const res = await vacuum(storage, { retentionMs: now - (first.at + 1), force: true, now });
    expect(res.deleted).toEqual(first.paths);
    expect(res.tombstonesKept).toBe(second.paths.length);
    expect(res.logDeleted).toEqual([]);
    expect(res.commitVersion).toBe((r2.version as number) + 1);
    const left = await dataFiles(storage);
    for (const p of first.paths) expect(left).not.toContain(p);
    for (const p of second.paths) expect(left).toContain(p);

    // delta-rs: the latest version, and every version since the first compaction, read whole.
    expect(await rowsByKey(t.table, ['_raw_value'])).toEqual(rows);
    for (let v = r1.version as number; v < (r2.version as number); v++) {
      const old = await verifyDelta(t.table, { version: v });
      expect(old.num_rows).toBeGreaterThan(0);
    }
    expect((await verifyDelta(t.table, { version: (r2.version as number) - 1 })).num_rows).toBe(between.num_rows);
    // The version before the first compaction is past the retention: its files are gone.
    await expect(verifyDelta(t.table, { version: (r1.version as number) - 1 })).rejects.toThrow();
  }, 180_000);

  it('rxlake vacuum: refuses a short retention unless forced; --force --log-retention 0 keeps the latest version readable', async () => {
    const t = await ingestBronze({ where, count: 2500, seed: 23 }); // more than 10 commits: a checkpoint
    const storage = tableStorage(t.table);
    await rxlakeJson(['optimize', t.table]);
    const rows = await rowsByKey(t.table, ['_raw_value']);
    const filesBefore = await dataFiles(storage);
    const removed = filesBefore.length - ((await loadSnapshot(storage, { full: true }))?.adds.size ?? 0);

    const refused = await rxlake(['vacuum', t.table, '--retention', '1h']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('shorter than the table\'s 7d');
    expect(refused.stderr).toContain('--force');
    const dry = await rxlakeJson<VacuumResult>(['vacuum', t.table, '--retention', '0', '--force', '--dry-run']);
    expect(dry.deleted.length).toBe(removed);
    expect(await dataFiles(storage)).toEqual(filesBefore); // a dry run deletes nothing
    const defaults = await rxlakeJson<VacuumResult>(['vacuum', t.table]);
    expect(defaults.deleted).toEqual([]); // everything was removed moments ago
    expect(defaults.tombstonesKept).toBe(removed);

    const state = await loadSnapshot(storage);
    const checkpoint = state?.checkpointVersion;
    expect(checkpoint).toBeGreaterThan(0);
    const res = await rxlakeJson<VacuumResult>(['vacuum', t.table, '--retention', '0', '--log-retention', '0', '--force']);
    const live = [...((await loadSnapshot(storage, { full: true }))?.adds.values() ?? [])].map((a) => filePath(a.path));
    expect(await dataFiles(storage)).toEqual(live.sort());
    expect(res.deleted.length).toBe(removed);
    expect(res.oldestVersion).toBe(checkpoint);
    expect(res.logDeleted.length).toBeGreaterThanOrEqual(checkpoint as number);
    // delta-rs reads the latest version from the checkpoint on; versions before it are gone.
    expect(await rowsByKey(t.table, ['_raw_value'])).toEqual(rows);
    const latest = await verifyDelta(t.table);
    expect(latest.version).toBe(res.commitVersion);
    await expect(verifyDelta(t.table, { version: (checkpoint as number) - 1 })).rejects.toThrow();
  }, 180_000);
});

describe('vacuum of files no version references (local)', () => {
  it('deletes old orphans, keeps files written moments ago (a writer about to commit them)', async () => {
    const t = await ingestBronze({ where: 'local', count: 400, seed: 24 });
    const storage = tableStorage(t.table);
    const date = (await verifyDelta(t.table)).files[0]?.partition_values._ingestion_date as string;
    const orphan = `_ingestion_date=${date}/part-00000-orphan.c000.snappy.parquet`;
    const inFlight = `_ingestion_date=${date}/part-00000-in-flight.c000.snappy.parquet`;
    await storage.write(orphan, new Uint8Array([1, 2, 3]));
    await storage.write(inFlight, new Uint8Array([4, 5, 6]));
    const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000);
    await utimes(join(t.table, orphan), tenDaysAgo, tenDaysAgo);
    const rows = await rowsByKey(t.table, ['_raw_value']);

    const res = await rxlakeJson<VacuumResult>(['vacuum', t.table]);
    expect(res.deleted).toEqual([orphan]);
    expect(res.recentUntracked).toBe(1);
    const left = await dataFiles(storage);
    expect(left).toContain(inFlight);
    expect(left).not.toContain(orphan);
    expect(await rowsByKey(t.table, ['_raw_value'])).toEqual(rows);
  });
});
