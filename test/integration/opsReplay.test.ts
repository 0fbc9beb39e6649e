/**
 * `rxlake replay-dlq` on dead-letter tables written by the bronze job: every row re-published to
 * its original topic and partition with its bytes exactly and headers naming its origin and
 * error, never twice (filtered runs, repeated runs, a run that died before recording), and —
 * the point of it — ingested by a job whose codec no longer rejects them.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { REPLAY_HEADERS, replayDeadLetters } from '../../src/ops/replayDlq.ts';
import type { ReplayResult } from '../../src/ops/replayDlq.ts';
import { startBronze } from '../../src/pipelines/bronze.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { Storage } from '../../src/sinks/delta/storage.ts';
import { consumeUntil } from '../support/kafka.ts';
import { stack } from '../support/stack.ts';
import { bronzeConfig, ingestBronze, removeTempDirs, rowsByKey, rxlake, rxlakeJson, tableStorage } from './opsSupport.ts';

afterAll(removeTempDirs);

interface Published {
  readonly partition: number;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
}

/** The records of `topic` that carry a replay id, read with a plain kafkajs consumer until `total` records were seen. */
async function replayedRecords(topic: string, total: number): Promise<Published[]> {
  const out: Published[] = [];
  let seen = 0;
  await consumeUntil(
    [topic],
    ({ partition, message }) => {
      seen++;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      if (headers[REPLAY_HEADERS.id] !== undefined) out.push({ partition, value: message.value, headers });
    },
    () => seen >= total,
    () => `${seen}/${total} records`,
  );
  return out;
}

type DlqRow = Record<string, unknown>;

/** Checks the replayed records against the dead-letter rows: each once, bytes exact, headers right. */
function checkReplayed(records: readonly Published[], dlq: ReadonlyMap<string, DlqRow>, topic: string): void {
  const byOrigin = new Map<string, Published>();
  for (const r of records) {
    expect(r.headers[REPLAY_HEADERS.topic]).toBe(topic);
    const key = `${r.headers[REPLAY_HEADERS.partition]}:${r.headers[REPLAY_HEADERS.offset]}`;
    expect(byOrigin.has(key), `${key} replayed twice`).toBe(false);
    byOrigin.set(key, r);
  }
  expect(new Set(byOrigin.keys())).toEqual(new Set(dlq.keys()));
  for (const [key, row] of dlq) {
    const r = byOrigin.get(key) as Published;
    const bytes = row.original_payload_bytes as { base64: string } | null;
    expect(r.value, key).toEqual(bytes === null ? null : Buffer.from(bytes.base64, 'base64'));
    expect(r.partition).toBe(Number(row._kafka_partition));
    expect(r.headers[REPLAY_HEADERS.errorType]).toBe(row.error_type);
    expect(r.headers[REPLAY_HEADERS.errorMessage]).toBe(row.error_message);
  }
}

const DLQ_COLUMNS = ['original_payload_bytes', 'error_type', 'error_message'];

describe.each(['local', 's3'] as const)('rxlake replay-dlq (%s)', (where) => {
  it('re-publishes every dead letter once, bytes exact with headers; filtered and repeated runs never twice', async () => {
    const t = await ingestBronze({ where, count: 600, corruptFraction: 0.1, seed: 31 });
    const dlq = await rowsByKey(t.dlq, DLQ_COLUMNS);
    const parseErrors = [...dlq.values()].filter((r) => r.error_type === 'JSON_PARSE_ERROR').length;
    expect(parseErrors).toBeGreaterThan(0);

    const first = await rxlakeJson<ReplayResult>(['replay-dlq', t.dlq, '--error-type', 'JSON_PARSE_ERROR']);
    expect(first.published).toBe(parseErrors);
    expect(first.filteredOut).toBe(dlq.size - parseErrors);
    const dry = await rxlakeJson<ReplayResult>(['replay-dlq', t.dlq, '--dry-run']);
    expect(dry.published).toBe(dlq.size - parseErrors);
    expect(dry.alreadyReplayed).toBe(parseErrors);
    const rest = await rxlakeJson<ReplayResult>(['replay-dlq', t.dlq]);
    expect(rest.published).toBe(dlq.size - parseErrors);
    const again = await rxlakeJson<ReplayResult>(['replay-dlq', t.dlq]);
    expect(again.published).toBe(0);
    expect(again.alreadyReplayed).toBe(dlq.size);

    const produced = t.manifest.topics.trips?.produced ?? 0;
    const records = await replayedRecords(t.kafkaTopic, produced + dlq.size);
    checkReplayed(records, dlq, t.kafkaTopic);
    expect(new Set(records.map((r) => r.headers[REPLAY_HEADERS.id]))).toEqual(new Set([first.replayId, rest.replayId]));
    // The dead-letter table itself is unchanged (replays record only txn actions).
    expect(await rowsByKey(t.dlq, DLQ_COLUMNS)).toEqual(dlq);
  });
});

describe('replay-dlq (local)', () => {
  it('a run that died after publishing: the next run refuses, --resume records what it published and publishes nothing twice', async () => {
    const t = await ingestBronze({ where: 'local', count: 400, corruptFraction: 0.1, seed: 32 });
    const dlq = await rowsByKey(t.dlq, DLQ_COLUMNS);
    const inner = tableStorage(t.dlq);
    // The process "dies" when it records what it published: that commit never lands.
    const dying: Storage = {
      ...inner,
      uri: inner.uri,
      putIfAbsent: async (path, data) => {
        if (new TextDecoder().decode(data).includes('"operation":"REPLAY DLQ"')) throw new Error('process killed');
        return inner.putIfAbsent(path, data);
      },
    };
    await expect(replayDeadLetters(dying, { brokers: stack.kafkaBrokers })).rejects.toThrow('process killed');

    const refused = await rxlake(['replay-dlq', t.dlq]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('--resume');
    const inspect = await rxlake(['inspect', t.dlq]);
    expect(inspect.stdout).toContain('NOT finished');

    const resumed = await rxlakeJson<ReplayResult>(['replay-dlq', t.dlq, '--resume']);
    expect(resumed.recovered).toBe(dlq.size);
    expect(resumed.published).toBe(0);
    expect((await rxlakeJson<ReplayResult>(['replay-dlq', t.dlq])).published).toBe(0);
    const records = await replayedRecords(t.kafkaTopic, (t.manifest.topics.trips?.produced ?? 0) + dlq.size);
    checkReplayed(records, dlq, t.kafkaTopic);
  });

  it('replayed records reach the bronze table once the codec accepts them', async () => {
    const t = await ingestBronze({ where: 'local', count: 500, corruptFraction: 0.1, seed: 33 });
    const dlq = await rowsByKey(t.dlq, DLQ_COLUMNS);
    const schemaErrors = [...dlq.values()].filter((r) => r.error_type === 'SCHEMA_VALIDATION_ERROR');
    expect(schemaErrors.length).toBeGreaterThan(0);
    const bronzeBefore = await rowsByKey(t.table, ['_raw_value']);

    const r = await rxlakeJson<ReplayResult>(['replay-dlq', t.dlq, '--error-type', 'SCHEMA_VALIDATION_ERROR']);
    expect(r.published).toBe(schemaErrors.length);
    // The job again, without schema validation: the replayed records land in bronze.
    const run = await startBronze({ config: bronzeConfig(t.base, t.prefix, 'trips', { DLQ_VALIDATE_SCHEMA: 'false' }), untilCaughtUp: true, log: createLogger('warn') });
    await run.done;
    const bronzeAfter = await rowsByKey(t.table, ['_raw_value']);
    expect(bronzeAfter.size).toBe(bronzeBefore.size + schemaErrors.length);
    const added = [...bronzeAfter].filter(([k]) => !bronzeBefore.has(k)).map(([, row]) => String(row._raw_value)).sort();
    const payloads = schemaErrors.map((row) => Buffer.from((row.original_payload_bytes as { base64: string }).base64, 'base64').toString('utf8')).sort();
    expect(added).toEqual(payloads);
  });
});
