/**
 * Tombstone expiry: checkpoints leave out `remove` actions older than the table's
 * `delta.deletedFileRetentionDuration` (default one week), the loaded state drops them when asked,
 * and vacuum finds the commits whose tombstones a checkpoint dropped but its retention still needs.
 */
import { describe, expect, it } from 'vitest';
import type { AddAction, FullState, MetaDataAction, RemoveAction } from '../../src/sinks/delta/log.ts';
import {
  DEFAULT_TOMBSTONE_RETENTION_MS,
  LAST_CHECKPOINT,
  checkpointPath,
  commitPath,
  loadSnapshot,
  parseInterval,
  readCheckpoint,
  serializeCommit,
  serializeCommitWithRemoves,
  tombstoneRetentionMs,
  writeCheckpoint,
} from '../../src/sinks/delta/log.ts';
import { memoryStorage } from '../../src/sinks/delta/memoryStorage.ts';
import type { Storage, StoredFile } from '../../src/sinks/delta/storage.ts';
import { droppedTombstoneCommits } from '../../src/ops/vacuum.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 30, 12);

const metaData = (configuration: Record<string, string> = {}): MetaDataAction => ({
  id: 'tomb-test',
  format: { provider: 'parquet', options: {} },
  schemaString: JSON.stringify({ type: 'struct', fields: [{ name: 'x', type: 'long', nullable: true, metadata: {} }] }),
  partitionColumns: [],
  configuration,
  createdTime: 0,
});
const add = (path: string): AddAction => ({ path, partitionValues: {}, size: 10, modificationTime: NOW - 30 * DAY, dataChange: true });
const remove = (path: string, deletionTimestamp: number | null): RemoveAction => ({ path, deletionTimestamp, dataChange: true, size: 10 });

/** A table: v0 creates it, v1 adds every path, v2 removes the given tombstones and adds `live`. */
async function table(removes: RemoveAction[], configuration: Record<string, string> = {}): Promise<Storage> {
  const storage = memoryStorage();
  await storage.write(commitPath(0), serializeCommit({ protocol: { minReaderVersion: 1, minWriterVersion: 2 }, metaData: metaData(configuration) }));
  await storage.write(commitPath(1), serializeCommit({ adds: removes.map((r) => add(r.path)) }));
  await storage.write(commitPath(2), serializeCommitWithRemoves({ adds: [add('live.parquet')], removes }));
  return storage;
}

const paths = (rs: readonly RemoveAction[]): string[] => rs.map((r) => r.path).sort();

describe('parseInterval', () => {
  it('reads Delta interval properties and the short forms vacuum accepts', () => {
    expect(parseInterval('interval 1 week')).toBe(7 * DAY);
    expect(parseInterval('interval 7 days')).toBe(7 * DAY);
    expect(parseInterval('  INTERVAL 36 hours ')).toBe(36 * 3_600_000);
    expect(parseInterval('interval 90 minutes')).toBe(90 * 60_000);
    expect(parseInterval('interval 1500 milliseconds')).toBe(1500);
    expect(parseInterval('interval 2000000 microseconds')).toBe(2000);
    expect(parseInterval('7d')).toBe(7 * DAY);
    expect(parseInterval('0')).toBe(0);
    expect(parseInterval('interval 0 seconds')).toBe(0);
  });

  it('rejects what is not an interval', () => {
    for (const bad of ['', 'a fortnight', 'interval', 'interval -1 days', 'interval 7', 'interval 7 fortnights', '7 days ago']) {
      expect(parseInterval(bad), bad).toBeUndefined();
    }
  });
});

describe('tombstoneRetentionMs', () => {
  it('is one week by default, the property when set, undefined with a warning when unreadable', () => {
    expect(tombstoneRetentionMs(metaData())).toBe(DEFAULT_TOMBSTONE_RETENTION_MS);
    expect(DEFAULT_TOMBSTONE_RETENTION_MS).toBe(7 * DAY);
    expect(tombstoneRetentionMs(metaData({ 'delta.deletedFileRetentionDuration': 'interval 2 days' }))).toBe(2 * DAY);
    const warnings: string[] = [];
    expect(tombstoneRetentionMs(metaData({ 'delta.deletedFileRetentionDuration': 'a fortnight' }), (m) => warnings.push(m))).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('delta.deletedFileRetentionDuration');
    expect(warnings[0]).toContain("'interval 7 days'");
  });
});

describe('checkpoints expire tombstones', () => {
  it('leave out removes older than a week (and those without a deletionTimestamp), keep recent ones', async () => {
    const storage = await table([
      remove('old.parquet', NOW - 8 * DAY),
      remove('no-timestamp.parquet', null),
      remove('recent.parquet', NOW - 1 * DAY),
      remove('at-cutoff.parquet', NOW - 7 * DAY),
      remove('just-expired.parquet', NOW - 7 * DAY - 1),
    ]);
    await writeCheckpoint(storage, 2, undefined, () => NOW);
    const cp = await readCheckpoint(storage, 2, true);
    expect(paths(cp.removes)).toEqual(['at-cutoff.parquet', 'recent.parquet']);
    expect(cp.adds.map((a) => a.path)).toEqual(['live.parquet']);
    const recent = cp.removes.find((r) => r.path === 'recent.parquet');
    expect(recent).toEqual({ path: 'recent.parquet', deletionTimestamp: NOW - DAY, dataChange: true, extendedFileMetadata: null, partitionValues: null, size: 10 });
    const last = JSON.parse(new TextDecoder().decode(await storage.read(LAST_CHECKPOINT))) as { version: number; size: number };
    expect(last).toMatchObject({ version: 2, size: 2 + 1 + 2 }); // protocol, metaData, 1 add, 2 removes
  });

  it('honour delta.deletedFileRetentionDuration', async () => {
    const storage = await table(
      [remove('one-day.parquet', NOW - 1 * DAY), remove('three-days.parquet', NOW - 3 * DAY), remove('ten-days.parquet', NOW - 10 * DAY)],
      { 'delta.deletedFileRetentionDuration': 'interval 2 days' },
    );
    await writeCheckpoint(storage, 2, undefined, () => NOW);
    expect(paths((await readCheckpoint(storage, 2, true)).removes)).toEqual(['one-day.parquet']);

    const longer = await table(
      [remove('one-day.parquet', NOW - 1 * DAY), remove('ten-days.parquet', NOW - 10 * DAY), remove('forty-days.parquet', NOW - 40 * DAY)],
      { 'delta.deletedFileRetentionDuration': 'interval 30 days' },
    );
    await writeCheckpoint(longer, 2, undefined, () => NOW);
    expect(paths((await readCheckpoint(longer, 2, true)).removes)).toEqual(['one-day.parquet', 'ten-days.parquet']);
  });

  it('keep every tombstone, and warn, when the property is unreadable', async () => {
    const storage = await table([remove('old.parquet', NOW - 400 * DAY), remove('recent.parquet', NOW - DAY)], {
      'delta.deletedFileRetentionDuration': 'two weeks',
    });
    const warnings: string[] = [];
    await writeCheckpoint(storage, 2, (m) => warnings.push(m), () => NOW);
    expect(paths((await readCheckpoint(storage, 2, true)).removes)).toEqual(['old.parquet', 'recent.parquet']);
    expect(warnings.some((w) => w.includes('"two weeks"') && w.includes('none expire'))).toBe(true);
  });

  it('expire a tombstone kept by one checkpoint in a later one, by the clock', async () => {
    const storage = await table([remove('a.parquet', NOW - 6 * DAY)]);
    let now = NOW;
    await writeCheckpoint(storage, 2, undefined, () => now);
    expect(paths((await readCheckpoint(storage, 2, true)).removes)).toEqual(['a.parquet']);
    await storage.write(commitPath(3), serializeCommit({ adds: [add('b.parquet')] }));
    now = NOW + 2 * DAY;
    await writeCheckpoint(storage, 3, undefined, () => now);
    const cp3 = await readCheckpoint(storage, 3, true);
    expect(cp3.removes).toEqual([]);
    expect(cp3.adds.map((a) => a.path).sort()).toEqual(['b.parquet', 'live.parquet']);
  });

  it('drop expired tombstones from a loaded state only when asked', async () => {
    const storage = await table([remove('old.parquet', NOW - 8 * DAY), remove('recent.parquet', NOW - DAY)]);
    const all = (await loadSnapshot(storage, { full: true })) as FullState;
    expect([...all.removes.keys()].sort()).toEqual(['old.parquet', 'recent.parquet']);
    const pruned = (await loadSnapshot(storage, { full: true, expireTombstonesAt: NOW })) as FullState;
    expect([...pruned.removes.keys()]).toEqual(['recent.parquet']);
    expect([...pruned.adds.keys()]).toEqual(['live.parquet']);
  });

  it('read the retention from the metadata as of the checkpointed version', async () => {
    const storage = await table([remove('three-days.parquet', NOW - 3 * DAY)]);
    await storage.write(commitPath(3), serializeCommit({ metaData: metaData({ 'delta.deletedFileRetentionDuration': 'interval 1 day' }) }));
    await writeCheckpoint(storage, 3, undefined, () => NOW);
    expect((await readCheckpoint(storage, 3, true)).removes).toEqual([]);
    expect(await storage.read(checkpointPath(3))).toBeDefined();
  });
});

describe('droppedTombstoneCommits (vacuum)', () => {
  const log = (v: number, modified: number): StoredFile => ({ path: commitPath(v), size: 100, modified });
  // Commits 0..20, one a day, ending at NOW; a checkpoint at 20 written at NOW.
  const files: StoredFile[] = [...Array.from({ length: 21 }, (_, v) => log(v, NOW - (20 - v) * DAY)), { path: checkpointPath(20), size: 1, modified: NOW }];
  const state = (configuration: Record<string, string> = {}): FullState => ({
    version: 20,
    protocol: { minReaderVersion: 1, minWriterVersion: 2 },
    metaData: metaData(configuration),
    txns: new Map(),
    checkpointVersion: 20,
    adds: new Map(),
    removes: new Map(),
    txnUpdated: new Map(),
  });

  it('is (almost) nothing when the vacuum retention equals the tombstone retention', () => {
    // Only the commit right at the cut-off falls in the clock slack.
    expect(droppedTombstoneCommits(files, state(), NOW - 7 * DAY)).toEqual([13]);
  });

  it('is the commits between the vacuum cut-off and the checkpoint expiry for a longer retention', () => {
    expect(droppedTombstoneCommits(files, state(), NOW - 10 * DAY)).toEqual([10, 11, 12, 13]);
    expect(droppedTombstoneCommits(files, state({ 'delta.deletedFileRetentionDuration': 'interval 2 days' }), NOW - 10 * DAY)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18]);
  });

  it('is empty without a checkpoint, or when checkpoints expire nothing', () => {
    expect(droppedTombstoneCommits(files, { ...state(), checkpointVersion: undefined }, NOW - 10 * DAY)).toEqual([]);
    expect(droppedTombstoneCommits(files, state({ 'delta.deletedFileRetentionDuration': 'soon' }), NOW - 10 * DAY)).toEqual([]);
  });

  it('covers the commits after an older checkpoint too (only those at or before it)', () => {
    const older = [...files, { path: checkpointPath(10), size: 1, modified: NOW - 10 * DAY }];
    expect(droppedTombstoneCommits(older, { ...state(), checkpointVersion: 10 }, NOW - 30 * DAY)).toEqual([0, 1, 2, 3]);
  });
});
