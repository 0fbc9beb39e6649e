/**
 * Compaction of bronze tables written by the bronze job, judged by delta-rs: the same rows before
 * and after, fewer files, `txn` versions untouched; while the job appends to the same table
 * (nothing lost, nothing twice); against another compaction and a lost commit race.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { lastValueFrom, from, toArray } from 'rxjs';
import { autoOptimize } from '../../src/ops/autoOptimize.ts';
import { executeOptimize, planOptimize } from '../../src/ops/optimize.ts';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import { bronzeTableSpec } from '../../src/pipelines/bronze/tables.ts';
import type { BronzeRow } from '../../src/pipelines/bronze/tables.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { OptimizeResult } from '../../src/ops/optimize.ts';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { loadSnapshot, serializeCommit } from '../../src/sinks/delta/log.ts';
import type { Storage } from '../../src/sinks/delta/storage.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { basePath, ingestBronze, removeTempDirs, rowsByKey, runBronze, rxlakeJson, tableStorage, tempDir } from './opsSupport.ts';

afterAll(removeTempDirs);

interface OptimizeJson extends OptimizeResult {
  readonly bins: ReadonlyArray<{ files: number; bytes: number }>;
}

const parquetFiles = async (storage: Storage): Promise<string[]> =>
  ((await storage.walk?.('')) ?? []).map((f) => f.path).filter((p) => p.endsWith('.parquet') && !p.startsWith('_delta_log/'));

describe.each(['local', 's3'] as const)('rxlake optimize (%s)', (where) => {
  it('compacts a bronze table and its dead-letter table: same rows, fewer files, txn versions untouched', async () => {
    const t = await ingestBronze({ where, count: 3000, corruptFraction: 0.08, seed: 3 });
    const appIds = [0, 1, 2].map((p) => `bronze-${t.kafkaTopic}-${p}`);
    const before = await verifyDelta(t.table, { appIds });
    expect(before.files.length).toBeGreaterThanOrEqual(10); // batches of at most 200 records
    const rowsBefore = await rowsByKey(t.table, ['_raw_value', '_ingestion_date', '_kafka_timestamp', '_ingested_at']);
    expect(rowsBefore.size).toBe(t.manifest.topics.trips?.valid);

    const r = await rxlakeJson<OptimizeJson>(['optimize', t.table]);
    expect(r.version).toBe(before.version + 1);
    expect(r.filesRemoved).toBe(before.files.length);
    const after = await verifyDelta(t.table, { appIds });
    const dates = new Set(before.files.map((f) => f.partition_values._ingestion_date));
    expect(after.files.length).toBe(dates.size); // one file per partition
    expect(after.txn_exact).toEqual(before.txn_exact);
    expect(await rowsByKey(t.table, ['_raw_value', '_ingestion_date', '_kafka_timestamp', '_ingested_at'])).toEqual(rowsBefore);
    // Time travel to the version before the compaction still reads the small files.
    const old = await verifyDelta(t.table, { version: before.version });
    expect(old.files.length).toBe(before.files.length);
    expect(old.num_rows).toBe(rowsBefore.size);

    // The dead-letter table: binary payloads, no partitions.
    const dlqBefore = await verifyDelta(t.dlq);
    const dlqRows = await rowsByKey(t.dlq, ['original_payload_bytes', 'original_payload', 'error_type', 'error_message', 'kafka_topic']);
    expect(dlqBefore.files.length).toBeGreaterThanOrEqual(2);
    const d = await rxlakeJson<OptimizeJson>(['optimize', t.dlq]);
    expect(d.filesAdded).toBe(1);
    expect((await verifyDelta(t.dlq)).files.length).toBe(1);
    expect(await rowsByKey(t.dlq, ['original_payload_bytes', 'original_payload', 'error_type', 'error_message', 'kafka_topic'])).toEqual(dlqRows);

    // Nothing left to compact: no commit.
    const again = await rxlakeJson<OptimizeJson>(['optimize', t.table]);
    expect(again.version).toBeNull();
    expect((await verifyDelta(t.table)).version).toBe(r.version);
  });

  it('runs while the bronze job ingests the same table: 0 lost, 0 duplicated', async () => {
    const prefix = `${uniqueName('opsc')}.`;
    const base = await basePath(where);
    const storage = tableStorage(`${base}/bronze_trips`);
    const first = await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['trips'], count: 600, partitions: 3, corruptFraction: 0.05, seed: 5 });
    const run = await runBronze(base, prefix, 'trips');
    const producing = generateEvents({
      brokers: stack.kafkaBrokers,
      topicPrefix: prefix,
      topics: ['trips'],
      rate: 300,
      durationSeconds: 8,
      corruptFraction: 0.05,
      seed: 6,
      batchSize: 50,
    });
    let produced: number | undefined;
    void producing.then((m) => (produced = m.totals.produced));

    const results: OptimizeResult[] = [];
    const version = async (): Promise<number> => (await loadSnapshot(storage))?.version ?? -1;
    const caughtUp = (): boolean => {
      if (produced === undefined) return false;
      const h = run.monitor.snapshot();
      return h.recordsWritten + h.dlqRecords >= first.totals.produced + produced;
    };
    try {
      // Compact again and again while records keep coming; each time an append lands between
      // the plan and the commit, so every compaction commits on top of the job's appends.
      await waitFor('the first appends', async () => (await version()) >= 2, 60_000);
      for (;;) {
        const plan = await planOptimize(storage);
        let appended = false;
        await waitFor('an append after the plan, or the end of the input', async () => (appended = (await version()) > plan.readVersion) || caughtUp(), 90_000);
        if (!appended) break;
        results.push(await executeOptimize(plan));
      }
    } finally {
      run.stop();
      await run.done;
    }
    const total = first.totals.produced + (produced ?? 0);

    for (const r of results.filter((x) => x.version !== null && x.filesRemoved > 0)) {
      expect(r.version as number).toBeGreaterThan(r.readVersion + 1); // the job committed in between
      expect(r.binsDropped).toBe(0);
    }
    expect(results.filter((r) => r.version !== null).length).toBeGreaterThanOrEqual(2);
    const history = await verifyDelta(`${base}/bronze_trips`);
    expect(history.files.length).toBeLessThan(history.history_len);

    // Every produced (partition, offset) exactly once in bronze or dead letters, judged by delta-rs.
    const [bronze, dlq] = await Promise.all([rowsByKey(`${base}/bronze_trips`, []), rowsByKey(`${base}/dlq_bronze_trips`, [])]);
    const keys = [...bronze.keys(), ...dlq.keys()];
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(total);
    const admin = new Kafka({ brokers: [...stack.kafkaBrokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(`${prefix}trips`).finally(() => admin.disconnect());
    const expected = ends.flatMap((o) => Array.from({ length: Number(o.high) }, (_, i) => `${o.partition}:${i}`));
    expect(new Set(keys)).toEqual(new Set(expected));
  }, 180_000);
});

describe('optimize against other writers (local)', () => {
  it('two compactions of the same files: the second gives up its bins and deletes its output', async () => {
    const t = await ingestBronze({ where: 'local', count: 1500, seed: 8 });
    const storage = tableStorage(t.table);
    const rowsBefore = await rowsByKey(t.table, ['_raw_value']);
    const filesBefore = await parquetFiles(storage);
    const a = await planOptimize(storage);
    const b = await planOptimize(storage);
    expect(a.bins.length).toBeGreaterThan(0);
    const rb = await executeOptimize(b);
    expect(rb.version).toBe(b.readVersion + 1);
    const ra = await executeOptimize(a);
    expect(ra.version).toBeNull();
    expect(ra.binsDropped).toBe(a.bins.length);
    // Only the winner's files were added to storage.
    expect((await parquetFiles(storage)).length).toBe(filesBefore.length + rb.filesAdded);
    expect((await verifyDelta(t.table)).version).toBe(rb.version);
    expect(await rowsByKey(t.table, ['_raw_value'])).toEqual(rowsBefore);
  });

  it('loses the commit race to another writer and commits at the next version', async () => {
    const t = await ingestBronze({ where: 'local', count: 800, seed: 9 });
    const inner = tableStorage(t.table);
    let raced = false;
    // Another writer's commit lands at the very version the compaction is about to take.
    const racing: Storage = {
      ...inner,
      uri: inner.uri,
      putIfAbsent: async (path, data) => {
        if (!raced && path.startsWith('_delta_log/')) {
          raced = true;
          const other = serializeCommit({ commitInfo: { timestamp: Date.now(), operation: 'WRITE', engineInfo: 'test' } });
          expect(await inner.putIfAbsent(path, other)).toBe(true);
        }
        return inner.putIfAbsent(path, data);
      },
    };
    const rowsBefore = await rowsByKey(t.table, ['_raw_value']);
    const plan = await planOptimize(racing);
    const r = await executeOptimize(plan);
    expect(raced).toBe(true);
    expect(r.attempts).toBe(2);
    expect(r.version).toBe(plan.readVersion + 2);
    const after = await verifyDelta(t.table);
    expect(after.version).toBe(r.version);
    expect(after.files.length).toBe(r.filesAfter);
    expect(await rowsByKey(t.table, ['_raw_value'])).toEqual(rowsBefore);
  });
});

describe('autoOptimize (a job compacting its own table)', () => {
  it('compacts every N commits in the background, from the sink\'s acknowledgements', async () => {
    const base = await tempDir();
    const table = await DeltaTable.openOrCreate(tableStorage(`${base}/bronze_t`), bronzeTableSpec('t'), { encoder: 'inline' });
    const results: OptimizeResult[] = [];
    const errors: unknown[] = [];
    const auto = autoOptimize(table.storage, { everyCommits: 4, onResult: (r) => results.push(r), onError: (e) => errors.push(e) });
    const now = BigInt(Date.now()) * 1000n;
    const batches = Array.from({ length: 12 }, (_, b) =>
      Array.from({ length: 50 }, (_, i): BronzeRow => {
        const offset = BigInt(b * 50 + i);
        const value = new TextEncoder().encode(JSON.stringify({ n: Number(offset) }));
        return {
          topic: 't', partition: 0, offset, timestamp: Date.now(), key: null, value, headers: {}, size: value.byteLength,
          _kafka_partition: 0, _kafka_offset: offset, _kafka_timestamp: now, _ingested_at: now, _ingestion_date: '2026-01-02',
        };
      }),
    );
    const acks = await lastValueFrom(from(batches).pipe(deltaSink(table, { pipelineId: 'auto', onWrite: auto.onWrite }), toArray()));
    await auto.idle();
    expect(acks.length).toBe(12);
    expect(errors).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(1);
    for (const r of results) expect(r.version).not.toBeNull();
    const judged = await verifyDelta(`${base}/bronze_t`, { appIds: ['auto-t-0'] });
    expect(judged.num_rows).toBe(600);
    expect(judged.files.length).toBeLessThan(12);
    expect(judged.txn_exact).toEqual({ 'auto-t-0': '599' });
    const keys = await rowsByKey(`${base}/bronze_t`, []);
    expect(keys.size).toBe(600);
  });
});
