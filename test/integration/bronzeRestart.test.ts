/**
 * The bronze job as users run it (a process), stopped mid-stream while events keep arriving —
 * gracefully (SIGTERM) and by a crash (SIGKILL) — then restarted: every event lands exactly
 * once (delta-rs counts, no duplicate (partition, offset)).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

const dirs: string[] = [];
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

interface Job {
  child: ChildProcess;
  port: Promise<number>;
  exit: Promise<number | null>;
  output: () => string;
}

function startJob(env: Record<string, string>, args: string[] = []): Job {
  // As users run it: `node src/pipelines/bronze.ts` on a Node that strips types (tsx on Node 20).
  const node = stack.nodeCurrent ?? join(stack.root, 'node_modules', '.bin', 'tsx');
  const child = spawn(node, [join(stack.root, 'src', 'pipelines', 'bronze.ts'), ...args], {
    cwd: stack.root,
    env: { ...process.env, ...stack.jobEnv, HTTP_PORT: '0', PROGRESS_INTERVAL_SECONDS: '1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  const port = new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /health and metrics url=http:\/\/[^:]+:(\d+)\/health/.exec(out);
      if (m?.[1]) resolve(Number(m[1]));
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', () => reject(new Error(`bronze exited before serving health:\n${out}`)));
  });
  port.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exit.then(() => children.delete(child));
  return { child, port, exit, output: () => out };
}

async function health(port: number): Promise<{ recordsWritten: number; status: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return (await res.json()) as { recordsWritten: number; status: string };
}

async function stopMidStreamAndRestart(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const prefix = `${uniqueName('rs')}.`;
  const base = await mkdtemp(join(tmpdir(), 'rxlake-restart-'));
  dirs.push(base);
  const env = {
    KAFKA_TOPIC_PREFIX: prefix,
    KAFKA_CONSUMER_GROUP: uniqueName('bronze'),
    BRONZE_TOPICS: 'gps_pings',
    DELTA_BASE_PATH: base,
    BATCH_INTERVAL_SECONDS: '0.3',
    BATCH_MAX_RECORDS: '500',
    KAFKA_SESSION_TIMEOUT_SECONDS: '8', // after SIGKILL the dead member is replaced this fast
  };
  // Topic first, so the job subscribes to an existing topic.
  await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['gps_pings'], count: 500, partitions: 3, seed: 3 });
  // Events keep arriving while the job runs and is stopped.
  const producing = generateEvents({
    brokers: stack.kafkaBrokers,
    topicPrefix: prefix,
    topics: ['gps_pings'],
    rate: 1500,
    durationSeconds: 8,
    corruptFraction: 0.02,
    seed: 4,
    batchSize: 100,
  });

  const first = startJob(env);
  const port = await first.port;
  await waitFor('first rows written', async () => (await health(port)).recordsWritten >= 1500);
  first.child.kill(signal);
  const code = await first.exit;
  if (signal === 'SIGTERM') {
    expect(code, first.output()).toBe(0);
    expect(first.output()).toContain('flushing open batches');
  }
  const before = await verifyDelta(`${base}/bronze_gps_pings`);
  const second = await producing;
  const produced = 500 + (second.topics.gps_pings?.produced ?? 0);
  expect(before.num_rows).toBeLessThan(produced); // really stopped mid-stream

  const again = startJob(env, ['--until-caught-up']);
  expect(await again.exit, again.output()).toBe(0);

  const [bronze, dlq] = await Promise.all([
    verifyDelta(`${base}/bronze_gps_pings`, { rows: true, columns: ['_kafka_offset', '_kafka_partition'] }),
    verifyDelta(`${base}/dlq_bronze_gps_pings`, { rows: true, columns: ['_kafka_offset', '_kafka_partition'] }),
  ]);
  const keys = [...(bronze.rows ?? []), ...(dlq.rows ?? [])].map((r) => `${String(r._kafka_partition)}:${String(r._kafka_offset)}`);
  expect(new Set(keys).size).toBe(keys.length);
  expect(keys.length).toBe(produced);
}

describe('bronze job stopped mid-stream and restarted', () => {
  it('SIGTERM: exits 0 after flushing, restart completes the set exactly once', async () => {
    await stopMidStreamAndRestart('SIGTERM');
  });

  it('SIGKILL: a crash loses nothing and the restart writes nothing twice', async () => {
    await stopMidStreamAndRestart('SIGKILL');
  });
});
