/**
 * Storage outage: the bronze pipeline writes to the S3 server through a loopback TCP proxy we
 * cut. `/health` turns 503 while writes fail, back to 200 once the storage returns, and every
 * record produced during the outage lands exactly once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startBronze } from '../../src/pipelines/bronze.ts';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { startTcpProxy } from '../support/tcpProxy.ts';
import type { TcpProxy } from '../support/tcpProxy.ts';

let proxy: TcpProxy | undefined;
afterAll(async () => {
  await proxy?.close();
});

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('bronze pipeline during a storage outage', () => {
  it('reports 503 on /health while S3 is unreachable, recovers by itself, loses nothing', async () => {
    const s3 = new URL(stack.s3.endpoint);
    proxy = await startTcpProxy(s3.hostname, Number(s3.port));
    const prefix = `${uniqueName('hl')}.`;
    const first = await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['ratings'], count: 200, partitions: 2, seed: 5 });
    const base = `s3://${stack.s3.bucket}/${uniqueName('health')}`;
    const config = loadBronzeConfig({
      ...stack.jobEnv,
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: uniqueName('bronze'),
      BRONZE_TOPICS: 'ratings',
      DELTA_BASE_PATH: base,
      S3_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}`,
      AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
      BATCH_INTERVAL_SECONDS: '0.3',
      HTTP_PORT: '0',
      PROGRESS_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'error',
    });
    const run = await startBronze({ config, log: createLogger('error') });
    const port = run.httpPort ?? 0;
    let produced = first.topics.ratings?.produced ?? 0;
    try {
      expect((await get(port, '/ready')).status).toBe(200);
      await waitFor('first batch written', () => Promise.resolve(run.monitor.snapshot().recordsWritten === 200));
      expect((await get(port, '/health')).status).toBe(200);

      await proxy.down();
      const second = await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['ratings'], count: 300, seed: 6 });
      produced += second.topics.ratings?.produced ?? 0;
      await waitFor('503 during the outage', async () => (await get(port, '/health')).status === 503);
      const during = JSON.parse((await get(port, '/health')).body) as { status: string; errors: number; lastError: string };
      expect(during.status).toBe('unhealthy');
      expect(during.errors).toBeGreaterThan(0);
      expect(during.lastError).toContain('bronze_ratings');
      // The outage goes on: writes keep being retried, and nothing is acknowledged meanwhile.
      await waitFor('another failed write attempt', () => Promise.resolve(run.monitor.snapshot().errors > during.errors));
      expect(run.monitor.snapshot().recordsWritten).toBe(200);

      await proxy.up();
      await waitFor('200 after recovery', async () => (await get(port, '/health')).status === 200, 90_000);
      await waitFor('all rows written', () => Promise.resolve(run.monitor.snapshot().recordsWritten === 500));

      const metrics = (await get(port, '/metrics')).body;
      expect(metrics).toMatch(/rxlake_write_errors_total\{table="bronze_ratings"\} [1-9]/);
      expect(metrics).toMatch(/rxlake_records_written_total\{table="bronze_ratings"\} 500/);
      expect(metrics).toContain('rxlake_table_version{table="bronze_ratings"}');
    } finally {
      run.stop();
      await run.done;
    }
    const table = await verifyDelta(`${base}/bronze_ratings`, { rows: true, columns: ['_kafka_offset', '_kafka_partition'] });
    const keys = (table.rows ?? []).map((r) => `${String(r._kafka_partition)}:${String(r._kafka_offset)}`);
    expect(produced).toBe(500);
    expect(keys.length).toBe(produced);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
