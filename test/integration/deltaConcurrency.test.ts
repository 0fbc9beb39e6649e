/**
 * Several processes append to one table at once (local disk and S3): the log stays contiguous,
 * no commit is lost or overwritten, and rows several writers offer are written exactly once.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { stack, verifyDelta } from '../support/stack.ts';
import { freshTarget, OWN_ROWS, SHARED_PARTITION, SHARED_ROWS } from './deltaFixtures.ts';

const run = promisify(execFile);
const WRITERS = 3;
const COMMITS = 20;

describe.each(['local', 's3'] as const)('concurrent writers on %s storage', (kind) => {
  it(`${WRITERS} processes × ${COMMITS} commits: contiguous versions, every row exactly once`, async () => {
    const t = freshTarget(kind, 'delta-conc');
    const tsx = join(stack.root, 'node_modules', '.bin', 'tsx');
    const child = join(stack.root, 'test', 'integration', 'deltaWriterChild.ts');
    const startAt = String(Date.now() + 5000);
    const outs = await Promise.all(
      Array.from({ length: WRITERS }, (_, w) => run(tsx, [child, t.uri, String(w), String(COMMITS), startAt], { cwd: stack.root, timeout: 90_000 })),
    );
    const results = outs.map((o) => JSON.parse(o.stdout.trim().split('\n').pop() as string) as { writer: number; versions: Array<number | null>; skipped: number; lostRaces: number });
    // The writers really raced: commits interleave and some commit attempts lost.
    const lost = results.reduce((n, r) => n + r.lostRaces, 0);
    console.log(`${kind}: ${lost} lost commit races among ${WRITERS * COMMITS} commits`, JSON.stringify(results.map((r) => r.versions)));
    const interleaved = results.some((r) => (r.versions.at(-1) as number) - (r.versions[0] as number) > COMMITS - 1);
    expect(interleaved || lost > 0).toBe(true);

    // Every append committed (each carries new rows of its own partition), at distinct versions.
    const versions = results.flatMap((r) => r.versions);
    expect(versions.every((v) => typeof v === 'number')).toBe(true);
    expect(new Set(versions).size).toBe(WRITERS * COMMITS);
    expect([...versions].sort((a, b) => (a as number) - (b as number))).toEqual(Array.from({ length: WRITERS * COMMITS }, (_, i) => i + 1));
    // Each writer's own commits are in increasing order.
    for (const r of results) expect(r.versions).toEqual([...r.versions].sort((a, b) => (a as number) - (b as number)));
    // The shared rows were offered WRITERS times and written once.
    expect(results.reduce((n, r) => n + r.skipped, 0)).toBe((WRITERS - 1) * COMMITS * SHARED_ROWS);

    const log = (await t.storage.list('_delta_log')).filter((n) => n.endsWith('.json'));
    expect(log).toEqual(Array.from({ length: WRITERS * COMMITS + 1 }, (_, i) => `${String(i).padStart(20, '0')}.json`));

    const appIds = [...Array.from({ length: WRITERS }, (_, w) => `conc-${w}`), `conc-${SHARED_PARTITION}`];
    const v = await verifyDelta(t.uri, { rows: true, columns: ['_kafka_partition', '_kafka_offset'], appIds });
    expect(v.version).toBe(WRITERS * COMMITS);
    expect(v.history_len).toBe(WRITERS * COMMITS + 1);
    expect(v.num_rows).toBe(WRITERS * COMMITS * OWN_ROWS + COMMITS * SHARED_ROWS);
    const keys = (v.rows ?? []).map((r) => `${String(r._kafka_partition)}:${String(r._kafka_offset)}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (let w = 0; w < WRITERS; w++) expect(v.txn_exact[`conc-${w}`]).toBe(String(COMMITS * OWN_ROWS - 1));
    expect(v.txn_exact[`conc-${SHARED_PARTITION}`]).toBe(String(COMMITS * SHARED_ROWS - 1));
    const shared = keys.filter((k) => k.startsWith(`${SHARED_PARTITION}:`));
    expect(shared.length).toBe(COMMITS * SHARED_ROWS);
  });
});
