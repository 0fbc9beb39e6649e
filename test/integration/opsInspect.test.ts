/**
 * `rxlake inspect` and `rxlake tail` on tables written by the bronze job (local disk and S3),
 * against what delta-rs reads and what the broker says; the command line's help, usage errors
 * and exit codes.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { TableReport } from '../../src/ops/inspect.ts';
import type { PartitionLag } from '../../src/ops/lag.ts';
import type { TailResult } from '../../src/ops/tail.ts';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { stack, verifyDelta } from '../support/stack.ts';
import { ingestBronze, removeTempDirs, rowsByKey, rxlake, rxlakeJson } from './opsSupport.ts';

afterAll(removeTempDirs);

type InspectJson = TableReport & { lag?: PartitionLag[]; lagTotal?: string; deadLetterTable?: string | null };

describe.each(['local', 's3'] as const)('rxlake inspect and tail (%s)', (where) => {
  it('inspect: version, files, rows, commits and txn versions as delta-rs sees them; the lag per partition', async () => {
    const t = await ingestBronze({ where, count: 1500, corruptFraction: 0.1, seed: 41 });
    const appIds = [0, 1, 2].map((p) => `bronze-${t.kafkaTopic}-${p}`);
    const judge = await verifyDelta(t.table, { appIds });
    const r = await rxlakeJson<InspectJson>(['inspect', t.table]);
    expect(r.version).toBe(judge.version);
    expect(r.protocol).toEqual({ minReaderVersion: judge.protocol.min_reader_version, minWriterVersion: judge.protocol.min_writer_version });
    expect(r.partitionColumns).toEqual(judge.partition_columns);
    expect(r.files.count).toBe(judge.files.length);
    expect(r.files.bytes).toBe(judge.files.reduce((n, f) => n + f.size, 0));
    expect(r.files.small).toBe(judge.files.length);
    expect(r.rows).toBe(judge.num_rows);
    expect(r.commits.length).toBe(Math.min(10, judge.version + 1));
    expect(r.commits[0]).toMatchObject({ version: judge.version, operation: 'WRITE' });
    expect(Object.fromEntries(r.txns.map((x) => [x.appId, x.version]))).toEqual(judge.txn_exact);
    expect(r.partitions.reduce((n, p) => n + (p.rows ?? 0), 0)).toBe(judge.num_rows);

    // Caught up: no lag (the dead-letter table's offsets count too). Then 60 records nobody read.
    const caught = await rxlakeJson<InspectJson>(['inspect', t.table, '--brokers', stack.kafkaBrokers.join(',')]);
    expect(caught.deadLetterTable).toBe(t.dlq);
    expect(caught.lag?.map((l) => l.lag)).toEqual(['0', '0', '0']);
    await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: t.prefix, topics: ['trips'], count: 60, seed: 42 });
    const behind = await rxlakeJson<InspectJson>(['inspect', t.table, '--brokers', 'env']);
    expect(behind.lagTotal).toBe('60');
    const admin = new Kafka({ brokers: [...stack.kafkaBrokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(t.kafkaTopic).finally(() => admin.disconnect());
    for (const l of behind.lag ?? []) {
      expect(l.endOffset).toBe(ends.find((o) => o.partition === l.partition)?.high);
      const caughtUp = caught.lag?.find((c) => c.partition === l.partition);
      expect(BigInt(l.lag)).toBe(BigInt(l.endOffset) - BigInt(caughtUp?.endOffset ?? 0));
    }
    const text = await rxlake(['inspect', t.table, '--brokers', 'env']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('lag (topic end offset - txn version - 1)');
    expect(text.stdout).toContain(': 60 in all');

    // After a compaction: one file, OPTIMIZE last, same rows, same txn versions.
    await rxlakeJson(['optimize', t.table]);
    const after = await rxlakeJson<InspectJson>(['inspect', t.table]);
    expect(after.commits[0]?.operation).toBe('OPTIMIZE');
    expect(after.files.count).toBe(new Set(judge.files.map((f) => f.partition_values._ingestion_date)).size);
    expect(after.rows).toBe(r.rows);
    expect(after.txns).toEqual(r.txns);
  });

  it('tail: the newest rows by _ingested_at, exactly as delta-rs reads them; --where filters', async () => {
    const t = await ingestBronze({ where, count: 1200, corruptFraction: 0.1, seed: 43 });
    const all = await rowsByKey(t.table, ['_raw_value', '_kafka_timestamp', '_ingested_at', '_ingestion_date']);
    const last = await rxlakeJson<TailResult>(['tail', t.table, '-n', '5']);
    expect(last.rows.length).toBe(5);
    expect(last.orderBy).toBe('_ingested_at');
    const times = [...all.values()].map((row) => String(row._ingested_at)).sort();
    const fifth = times[times.length - 5] as string;
    let previous = '';
    for (const row of last.rows) {
      const judged = all.get(`${row._kafka_partition as number}:${row._kafka_offset as number}`);
      expect(row).toEqual(judged);
      const at = row._ingested_at as string;
      expect(at >= fifth).toBe(true);
      expect(at >= previous).toBe(true);
      previous = at;
    }
    expect(last.filesRead).toBeLessThan(last.files); // only the newest files were read

    const dlq = await rowsByKey(t.dlq, ['error_type', 'error_message']);
    const parseErrors = [...dlq.entries()].filter(([, r]) => r.error_type === 'JSON_PARSE_ERROR');
    const filtered = await rxlakeJson<TailResult>(['tail', t.dlq, '-n', '1000', '--where', 'error_type=JSON_PARSE_ERROR', '--columns', '_kafka_partition,_kafka_offset,error_type']);
    expect(filtered.rows.map((r) => `${r._kafka_partition as number}:${r._kafka_offset as number}`).sort()).toEqual(parseErrors.map(([k]) => k).sort());
    const p1 = await rxlakeJson<TailResult>(['tail', t.table, '-n', '1000', '--where', '_kafka_partition=1', '--where', '_kafka_offset>=100']);
    const expected = [...all.values()].filter((r) => Number(r._kafka_partition) === 1 && Number(r._kafka_offset) >= 100);
    expect(p1.rows.length).toBe(expected.length);

    const text = await rxlake(['tail', t.table, '-n', '2', '--width', '40']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('-[ row 2 ]');
    expect(text.stdout).toMatch(/_raw_value {8}\{.{39}… \(\d+ chars\)/);
  });
});

describe('rxlake table commands: help, usage, exit codes', () => {
  it('--help of every command exits 0; bad usage and missing tables exit 2 naming the problem', async () => {
    const top = await rxlake(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['inspect', 'tail', 'optimize', 'vacuum', 'replay-dlq']) {
      expect(top.stdout).toContain(`  ${c} `);
      const help = await rxlake([c, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: rxlake ${c} TABLE`);
      expect(help.stdout).toContain('Exit codes');
    }
    const none = await rxlake(['inspect']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('expected one TABLE');
    const unknown = await rxlake(['optimize', '/tmp', '--target', '1MiB']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--target'");
    const size = await rxlake(['optimize', '/tmp', '--target-size', 'big']);
    expect(size.code).toBe(2);
    expect(size.stderr).toContain('expected a size such as 128MiB');
    const missing = await rxlake(['inspect', '/nonexistent/rxlake-table']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no Delta table at /nonexistent/rxlake-table');
    const where = await rxlake(['tail', '/nonexistent', '--where', 'a b']);
    expect(where.code).toBe(2);
    expect(where.stderr).toContain('expected COLUMN OP VALUE');
  });

  it('a table name resolves under DELTA_BASE_PATH', async () => {
    const t = await ingestBronze({ where: 'local', count: 100, seed: 44 });
    const r = await rxlake(['inspect', 'bronze_trips', '--json'], { DELTA_BASE_PATH: t.base });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as TableReport).uri).toBe(t.table);
  });
});
