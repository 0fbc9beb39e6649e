/**
 * Tombstone expiry, judged by delta-rs and pyarrow: a table written by our writer and compacted
 * twice gets a checkpoint (on an injected clock) that leaves out the first compaction's
 * tombstones (older than a week then) and keeps the second's; delta-rs reads the same rows and
 * files before and after, also from the checkpoint alone; vacuum with a retention reaching back
 * past the dropped tombstones still keeps their files.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { filePath } from '../../src/ops/common.ts';
import { optimize } from '../../src/ops/optimize.ts';
import { vacuum } from '../../src/ops/vacuum.ts';
import type { FullState } from '../../src/sinks/delta/log.ts';
import { checkpointPath, commitPath, loadSnapshot, readCommit } from '../../src/sinks/delta/log.ts';
import type { Storage } from '../../src/sinks/delta/storage.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import { stack, verifyDelta } from '../support/stack.ts';
import type { VerifiedTable } from '../support/stack.ts';
import { bronzeRows, bronzeSpec, freshTarget } from './deltaFixtures.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const READ_CHECKPOINT = `
import json, sys
import pyarrow.parquet as pq
rows = pq.read_table(sys.argv[1]).to_pylist()
print(json.dumps({
  "adds": sorted(r["add"]["path"] for r in rows if r["add"] is not None),
  "removes": sorted([r["remove"]["path"], r["remove"]["deletionTimestamp"]] for r in rows if r["remove"] is not None),
}))
`;

/** The checkpoint Parquet of `version`, read with pyarrow: add paths, [remove path, deletionTimestamp]. */
async function pyarrowCheckpoint(storage: Storage, version: number): Promise<{ adds: string[]; removes: Array<[string, number]> }> {
  const bytes = await storage.read(checkpointPath(version));
  if (!bytes) throw new Error(`checkpoint ${version} missing`);
  const dir = await mkdtemp(join(tmpdir(), 'rxlake-tomb-'));
  temps.push(dir);
  const file = join(dir, 'checkpoint.parquet');
  await writeFile(file, bytes);
  const { stdout } = await run(stack.python, ['-c', READ_CHECKPOINT, file]);
  return JSON.parse(stdout) as { adds: string[]; removes: Array<[string, number]> };
}

/** The remove actions of commit `version`: paths as in the log, and the deletion time. */
async function removedBy(storage: Storage, version: number): Promise<{ paths: string[]; min: number; max: number }> {
  const removes = (await readCommit(storage, version))?.removes ?? [];
  const at = removes.map((r) => Number(r.deletionTimestamp));
  return { paths: removes.map((r) => r.path).sort(), min: Math.min(...at), max: Math.max(...at) };
}

const sameTable = (t: VerifiedTable) => ({
  num_rows: t.num_rows,
  files: t.files.map((f) => f.path).sort(),
  rows: t.rows,
});

describe.each(['local', 's3'] as const)('tombstone expiry (%s)', (where) => {
  it('a checkpoint leaves out tombstones older than the retention, keeps recent ones; delta-rs reads the same table', async () => {
    const target = freshTarget(where, 'delta-tomb');
    let clock = Date.now();
    const table = await DeltaTable.openOrCreate(target.storage, bronzeSpec('bronze_tomb'), { checkpointInterval: 0, encoder: 'inline', clock: () => clock });
    let offset = 0n;
    const appendBatch = async (): Promise<void> => {
      await table.append(bronzeRows({ count: 20, firstOffset: offset }));
      offset += 20n;
    };
    for (let i = 0; i < 3; i++) await appendBatch(); // v1..v3
    const first = await optimize(target.storage); // v4
    for (let i = 0; i < 3; i++) await appendBatch(); // v5..v7
    const second = await optimize(target.storage); // v8: also removes the first compaction's output
    await appendBatch(); // v9
    expect([first.version, second.version]).toEqual([4, 8]);
    const t1 = await removedBy(target.storage, 4);
    const t2 = await removedBy(target.storage, 8);
    expect(t1.paths.length).toBeGreaterThan(0);
    expect(t2.paths.length).toBeGreaterThan(1);
    expect(t2.min).toBeGreaterThan(t1.max);

    const before = await verifyDelta(target.uri, { rows: true, columns: ['_kafka_offset', '_raw_value', '_ingestion_date'] });
    expect(before.version).toBe(9);
    expect(before.num_rows).toBe(7 * 20);

    // A week and a bit after the first compaction, before a week after the second.
    clock = Math.floor((t1.max + t2.min) / 2) + 7 * DAY;
    await table.checkpoint(9);

    const cp = await pyarrowCheckpoint(target.storage, 9);
    expect(cp.removes.map(([p]) => p)).toEqual(t2.paths);
    for (const [, at] of cp.removes) expect(at).toBeGreaterThanOrEqual(clock - 7 * DAY);
    for (const p of t1.paths) expect(cp.removes.map(([q]) => q)).not.toContain(p);
    expect(cp.adds.map((p) => filePath(p)).sort()).toEqual(before.files.map((f) => f.path).sort());
    const own = (await loadSnapshot(target.storage, { full: true })) as FullState;
    expect(own.checkpointVersion).toBe(9);
    expect([...own.removes.keys()].sort()).toEqual(t2.paths);

    const after = await verifyDelta(target.uri, { rows: true, columns: ['_kafka_offset', '_raw_value', '_ingestion_date'] });
    expect(after.version).toBe(9);
    expect(sameTable(after)).toEqual(sameTable(before));

    if (where === 'local') {
      // Vacuum on the same clock: the data files are old, the checkpoint was written at `clock`.
      const root = target.uri;
      const old = new Date(t1.min - DAY);
      for (const f of (await target.storage.walk?.('')) ?? []) {
        if (!f.path.startsWith('_delta_log/')) await utimes(join(root, f.path), old, old);
      }
      await utimes(join(root, checkpointPath(9)), new Date(clock), new Date(clock));
      // The table's own retention: the first compaction's inputs are past it and may go.
      const plain = await vacuum(target.storage, { now: clock, dryRun: true });
      expect(plain.deleted).toEqual(t1.paths.map(filePath).sort());
      // A longer retention reaches back past them: the checkpoint dropped their tombstones, vacuum
      // reads them back from the commits and keeps every file.
      const longer = await vacuum(target.storage, { now: clock, retentionMs: clock - t1.min + 1000, dryRun: true });
      expect(longer.deleted).toEqual([]);
      expect(longer.tombstonesKept).toBe(t1.paths.length + t2.paths.length);
    }

    // The checkpoint alone: without the JSON commits it replaces, delta-rs reads the same table.
    for (let v = 0; v <= 9; v++) await target.storage.delete(commitPath(v));
    const alone = await verifyDelta(target.uri, { rows: true, columns: ['_kafka_offset', '_raw_value', '_ingestion_date'] });
    expect(alone.version).toBe(9);
    expect(sameTable(alone)).toEqual(sameTable(before));
  }, 180_000);
});
