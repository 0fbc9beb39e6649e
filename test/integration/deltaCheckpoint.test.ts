/**
 * Checkpoints every 10 commits: delta-rs reads them (even with the JSON commits they replace
 * removed), and opening a table starts from the newest checkpoint instead of commit 0.
 */
import { cp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { pinoLogger } from '../../src/core/logger.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import { localStorage } from '../../src/sinks/delta/storage.ts';
import { verifyDelta } from '../support/stack.ts';
import type { BronzeRow } from './deltaFixtures.ts';
import { BIG_OFFSET, bronzeRows, bronzeSpec, freshTarget, instrumented } from './deltaFixtures.ts';

const dedupe = { appId: (r: BronzeRow) => `cp-${r.topic}-${r.partition}`, offset: (r: BronzeRow) => r.offset };
const ROWS = 20;

/** 25 commits; commit i (1-based) holds partitions 0 and 1, offsets (i-1)*ROWS.. */
async function write25(table: DeltaTable<BronzeRow>): Promise<void> {
  for (let i = 0; i < 25; i++) {
    const first = BIG_OFFSET + BigInt(i * ROWS);
    const rows = [...bronzeRows({ count: ROWS, partition: 0, firstOffset: first }), ...bronzeRows({ count: 5, partition: 1, firstOffset: BigInt(i * 5) })];
    const r = await table.append(rows, { dedupe });
    expect(r.version).toBe(i + 1);
  }
}

describe.each(['local', 's3'] as const)('checkpoints on %s storage', (kind) => {
  it('writes checkpoints at 10 and 20; delta-rs reads latest and version 15; open starts from the checkpoint', async () => {
    const t = freshTarget(kind, 'delta-cp');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_cp'));
    await write25(table);

    const log = await t.storage.list('_delta_log');
    expect(log.filter((n) => n.endsWith('.checkpoint.parquet'))).toEqual([
      '00000000000000000010.checkpoint.parquet',
      '00000000000000000020.checkpoint.parquet',
    ]);
    const last = JSON.parse(new TextDecoder().decode(await t.storage.read('_delta_log/_last_checkpoint'))) as { version: number; size: number };
    // 20 commits of 2 files each, protocol, metaData, 2 txns
    expect(last).toMatchObject({ version: 20, size: 20 * 2 + 4 });

    const latest = await verifyDelta(t.uri, { appIds: ['cp-trips-0', 'cp-trips-1'] });
    expect(latest.version).toBe(25);
    expect(latest.num_rows).toBe(25 * (ROWS + 5));
    expect(latest.files).toHaveLength(50);
    expect(latest.txn_exact).toEqual({ 'cp-trips-0': (BIG_OFFSET + BigInt(25 * ROWS - 1)).toString(), 'cp-trips-1': String(25 * 5 - 1) });

    const v15 = await verifyDelta(t.uri, { version: 15, appIds: ['cp-trips-0', 'cp-trips-1'] });
    expect(v15.version).toBe(15);
    expect(v15.num_rows).toBe(15 * (ROWS + 5));
    expect(v15.txn_exact).toEqual({ 'cp-trips-0': (BIG_OFFSET + BigInt(15 * ROWS - 1)).toString(), 'cp-trips-1': String(15 * 5 - 1) });

    // A fresh handle reads _last_checkpoint, checkpoint 20 and only the commits after it.
    const spy = instrumented(t.storage);
    const reopened = await DeltaTable.openOrCreate(spy, bronzeSpec('bronze_cp'));
    expect(reopened.version).toBe(25);
    expect(reopened.txnVersion('cp-trips-0')).toBe(BIG_OFFSET + BigInt(25 * ROWS - 1));
    expect(reopened.txnVersion('cp-trips-1')).toBe(BigInt(25 * 5 - 1));
    const reads = spy.calls.filter((c) => c.op === 'read').map((c) => c.path);
    expect(reads).toContain('_delta_log/00000000000000000020.checkpoint.parquet');
    const commitsRead = reads.filter((p) => p.endsWith('.json')).map((p) => Number(p.slice('_delta_log/'.length, -'.json'.length)));
    expect(commitsRead.sort((a, b) => a - b)).toEqual([21, 22, 23, 24, 25]);
  });
});

describe('checkpoints on local storage', () => {
  it('delta-rs reads the table from our checkpoint alone once the older JSON commits are gone', async () => {
    const t = freshTarget('local', 'delta-cp-only');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_cp_only'));
    await write25(table);
    const copy = `${t.uri}-copy`;
    await cp(t.uri, copy, { recursive: true });
    for (const n of await readdir(join(copy, '_delta_log'))) {
      const m = /^(\d{20})\.json$/.exec(n);
      if (m && Number(m[1]) <= 20) await rm(join(copy, '_delta_log', n));
    }
    const v = await verifyDelta(copy, { appIds: ['cp-trips-0', 'cp-trips-1'], rows: true, columns: ['_kafka_offset', '_kafka_partition'] });
    expect(v.version).toBe(25);
    expect(v.num_rows).toBe(25 * (ROWS + 5));
    expect(new Set(v.rows?.map((r) => `${String(r._kafka_partition)}:${String(r._kafka_offset)}`)).size).toBe(25 * (ROWS + 5));
    expect(v.txn_exact['cp-trips-1']).toBe(String(25 * 5 - 1));

    // Our own reader opens the copy from the checkpoint too (commits 0..20 no longer exist).
    const ours = await DeltaTable.openOrCreate(localStorage(copy), bronzeSpec('bronze_cp_only'));
    expect(ours.version).toBe(25);
    expect(ours.txnVersion('cp-trips-0')).toBe(BIG_OFFSET + BigInt(25 * ROWS - 1));
  });

  it('falls back to listing when _last_checkpoint is missing, and to the JSON log when a checkpoint is corrupt', async () => {
    const t = freshTarget('local', 'delta-cp-fallback');
    const table = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_cp_fb'));
    await write25(table);
    await rm(join(t.uri, '_delta_log', '_last_checkpoint'));
    const spy = instrumented(t.storage);
    const a = await DeltaTable.openOrCreate(spy, bronzeSpec('bronze_cp_fb'));
    expect(a.version).toBe(25);
    expect(spy.calls.filter((c) => c.op === 'read' && c.path.endsWith('.json'))).toHaveLength(5);

    await writeFile(join(t.uri, '_delta_log', '00000000000000000020.checkpoint.parquet'), 'not parquet');
    await writeFile(join(t.uri, '_delta_log', '00000000000000000010.checkpoint.parquet'), 'not parquet');
    const warnings: string[] = [];
    const b = await DeltaTable.openOrCreate(t.storage, bronzeSpec('bronze_cp_fb'), { logger: { warn: (m) => warnings.push(m) } });
    expect(b.version).toBe(25);
    expect(b.txnVersion('cp-trips-1')).toBe(BigInt(25 * 5 - 1));
    expect(warnings.length).toBeGreaterThan(0);
  });

  it('a failed checkpoint does not fail the append; the next one is written', async () => {
    const t = freshTarget('local', 'delta-cp-fail');
    const flaky = instrumented(t.storage, { failures: 1, failOps: ['write'], failPaths: /checkpoint\.parquet$/ });
    const lines: string[] = [];
    const table = await DeltaTable.openOrCreate(flaky, bronzeSpec('bronze_cp_fail'), { logger: pinoLogger({ destination: (l) => lines.push(l) }) });
    await write25(table);
    expect(flaky.failed).toBe(1);
    // one JSON line, naming the table, the version and the failure
    const warnings = lines.map((l) => JSON.parse(l) as { level: string; msg: string; table: string; version: number; error: { message: string } });
    expect(warnings.map((w) => [w.level, w.table, w.version])).toEqual([['warn', t.storage.uri, 10]]);
    expect(warnings[0]?.msg).toMatch(/checkpoint .* at version 10 failed \(the commit itself succeeded\)/);
    expect(warnings[0]?.error.message).toMatch(/injected/);
    const log = await t.storage.list('_delta_log');
    expect(log.filter((n) => n.endsWith('.checkpoint.parquet'))).toEqual(['00000000000000000020.checkpoint.parquet']);
    const v = await verifyDelta(t.uri);
    expect(v.version).toBe(25);
    expect(v.num_rows).toBe(25 * (ROWS + 5));
  });

  it('stays cheap at 1000 commits: appends read no old commits, a checkpoint only the last 10, an open none before the newest checkpoint', async () => {
    const t = freshTarget('local', 'delta-cp-1000');
    const spy = instrumented(localStorage(t.uri, { fsync: false }));
    const table = await DeltaTable.openOrCreate(spy, bronzeSpec('bronze_1000'));
    const started = performance.now();
    for (let i = 0; i < 1000; i++) {
      await table.append(bronzeRows({ count: 2, firstOffset: BigInt(i * 2), dates: ['2026-11-22'] }), { dedupe });
    }
    const appendMs = performance.now() - started;
    // Between checkpoints an append reads nothing but its own lost races (none here); a
    // checkpoint reads the previous checkpoint and the commits after it.
    const jsonReads = spy.calls.filter((c) => c.op === 'read' && c.path.endsWith('.json')).length;
    expect(jsonReads).toBe(11 + 99 * 10); // checkpoint 10 replays 0..10; each later one its 10 commits
    const log = await t.storage.list('_delta_log');
    expect(log.filter((n) => n.endsWith('.checkpoint.parquet'))).toHaveLength(100);

    const spy2 = instrumented(t.storage);
    const t0 = performance.now();
    const reopened = await DeltaTable.openOrCreate(spy2, bronzeSpec('bronze_1000'));
    const openMs = performance.now() - t0;
    expect(reopened.version).toBe(1000);
    expect(reopened.txnVersion('cp-trips-0')).toBe(1999n);
    expect(spy2.calls.filter((c) => c.op === 'read' && c.path.endsWith('.json'))).toHaveLength(0);
    console.log(`1000 commits: ${appendMs.toFixed(0)} ms of appends, open ${openMs.toFixed(1)} ms`);

    const v = await verifyDelta(t.uri, { appIds: ['cp-trips-0'] });
    expect(v.version).toBe(1000);
    expect(v.num_rows).toBe(2000);
    expect(v.txn_exact['cp-trips-0']).toBe('1999');
  });
});
