/**
 * The job lifecycle every job shares (`startJob`), with a small job of its own on the real broker
 * and local Delta tables: health and metrics over HTTP (committed offsets included), the progress
 * line, the chains' inputs, the summary, and the job's `close` once the consumer is gone — on a
 * graceful stop, on a chain that fails, and on a start-up that fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMPTY, firstValueFrom, map, pipe } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { batchInto } from '../../src/operators/batchInto.ts';
import { deltaSink } from '../../src/operators/deltaSink.ts';
import { enrichMetadata } from '../../src/operators/enrichMetadata.ts';
import { StartupError } from '../../src/runtime/cli.ts';
import { kafkaTopicOf, loadJobConfig } from '../../src/runtime/config.ts';
import type { JobConfig } from '../../src/runtime/config.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { startJob } from '../../src/runtime/runJob.ts';
import type { ChainInputs, Job, JobSummary } from '../../src/runtime/runJob.ts';
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import type { TableSpec } from '../../src/sinks/delta/schema.ts';
import type { EnrichedRecord } from '../../src/types.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { createTopic, produce } from './kafkaSupport.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const spec: TableSpec<EnrichedRecord> = {
  name: 'events',
  columns: [
    { name: 'payload', type: 'string', get: (r) => r.value, stats: false },
    { name: '_kafka_partition', type: 'integer' },
    { name: '_kafka_offset', type: 'long' },
  ],
};

interface Probe {
  inputs?: ChainInputs;
  closes: number;
}

/** One topic into one Delta table; `failing` makes its chain throw at the first record. */
function smallJob(topic: string, probe: Probe, options: { failing?: boolean; openFails?: boolean } = {}): Job<JobConfig, JobSummary & { closes: number }> {
  return {
    name: 'small',
    usage: 'Usage: small\n',
    loadConfig: () => {
      throw new Error('not used');
    },
    topicsVariable: 'SMALL_TOPICS',
    topics: () => [topic],
    async open({ config, monitor, storage }) {
      if (options.openFails === true) throw new Error('cannot open the small tables');
      const table = await DeltaTable.openOrCreate(storage.sub('events'), spec);
      return {
        topics: [
          {
            kafkaTopic: kafkaTopicOf(config, topic),
            tables: [table],
            chain: (inputs) => {
              probe.inputs = inputs;
              return pipe(
                enrichMetadata(),
                map((r) => {
                  if (options.failing === true) throw new Error('the small chain fails');
                  return r;
                }),
                batchInto(deltaSink(table, { pipelineId: config.pipelineId, onWrite: (ack) => monitor.writeSucceeded(ack) }), { timeSpan: 200, pressure: inputs.source }),
              );
            },
          },
        ],
        progress: ({ rate, lag, inFlight, health }) => ({ rows: health.recordsWritten, lag, in_flight: inFlight, rate }),
        summary: (totals) => ({ ...totals, closes: probe.closes }),
        close: () => {
          probe.closes += 1;
          return Promise.resolve();
        },
      };
    },
    finished: (s) => ({ rows: s.recordsWritten }),
  };
}

async function setup(partitions: number, records: number): Promise<{ topic: string; config: JobConfig; base: string }> {
  const topic = uniqueName('runjob');
  await createTopic(topic, partitions);
  if (records > 0) await produce(topic, records, partitions);
  const base = await mkdtemp(join(tmpdir(), 'rxlake-runjob-'));
  dirs.push(base);
  const { config } = loadJobConfig(
    { ...stack.jobEnv, KAFKA_CONSUMER_GROUP: uniqueName('small'), DELTA_BASE_PATH: base, HTTP_PORT: '0', PROGRESS_INTERVAL_SECONDS: '1', BATCH_INTERVAL_SECONDS: '0.2' },
    { defaults: { KAFKA_CONSUMER_GROUP: 'small', DELTA_BASE_PATH: './data/small', PIPELINE_ID: 'small', HTTP_PORT: '0' }, env: {} },
  );
  return { topic, config, base };
}

function capture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger('info', (l) => lines.push(l)) };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('startJob', () => {
  it('serves health and metrics, logs progress, hands the chains their inputs, and settles with a summary after close', async () => {
    const { topic, config, base } = await setup(2, 50);
    const probe: Probe = { closes: 0 };
    const { lines, log } = capture();
    const run = await startJob(smallJob(topic, probe), { config, log });
    const port = run.httpPort ?? 0;
    expect(lines.some((l) => l.includes(`health and metrics url=http://127.0.0.1:${port}/health`))).toBe(true);
    expect((await get(port, '/ready')).status).toBe(200);

    await waitFor('50 rows written', () => run.monitor.snapshot().recordsWritten === 50);
    await waitFor('offsets committed', async () => {
      const metrics = (await get(port, '/metrics')).body;
      return [0, 1].every((p) => metrics.includes(`rxlake_committed_offset{topic="${topic}",partition="${p}"} 25`));
    });
    expect((await get(port, '/health')).status).toBe(200);
    expect((await get(port, '/metrics')).body).toMatch(/rxlake_table_version\{table="events"\} \d+/);
    await waitFor('a progress line with every row', () => lines.some((l) => / INFO {2}progress rows=50 lag=0 in_flight=0 rate=\d+/.test(l)));
    const assignment = await firstValueFrom(probe.inputs?.source.assignment$ ?? EMPTY);
    expect([...assignment].sort()).toEqual([`${topic}/0`, `${topic}/1`]);

    run.stop();
    const summary = await run.done;
    expect(summary.recordsWritten).toBe(50);
    expect(summary.deadLetters).toBe(0);
    expect(summary.commits).toBeGreaterThanOrEqual(1);
    expect(summary.tables.events?.rows).toBe(50);
    expect(summary.closes).toBe(1);
    await expect(get(port, '/health')).rejects.toThrow();
    expect((await verifyDelta(join(base, 'events'))).num_rows).toBe(50);
  });

  it('rejects with the chain error once the consumer is gone, and still closes', async () => {
    const { topic, config } = await setup(1, 3);
    const probe: Probe = { closes: 0 };
    const run = await startJob(smallJob(topic, probe, { failing: true }), { config, log: createLogger('error', () => undefined), http: false });
    await expect(run.done).rejects.toThrow('the small chain fails');
    expect(probe.closes).toBe(1);
  });

  it('stops at start naming the topics variable for a missing topic, and closes the HTTP server when opening fails', async () => {
    const { topic, config } = await setup(1, 0);
    const missing = capture();
    const probe: Probe = { closes: 0 };
    const noTopic = startJob(smallJob(`${topic}-missing`, probe), { config, log: missing.log });
    await expect(noTopic).rejects.toThrow(StartupError);
    await expect(noTopic).rejects.toThrow(/SMALL_TOPICS/);

    const failing = capture();
    await expect(startJob(smallJob(topic, probe, { openFails: true }), { config, log: failing.log })).rejects.toThrow('cannot open the small tables');
    const port = /health and metrics url=http:\/\/[^:]+:(\d+)\/health/.exec(failing.lines.join(''))?.[1];
    expect(port).toBeDefined();
    await expect(get(Number(port), '/health')).rejects.toThrow();
    expect(probe.closes).toBe(0);
  });
});
