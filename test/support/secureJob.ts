/**
 * The bronze job against the stack's secure broker (`secureKafka()`), as the security tests run
 * it: `ingestsOver` produces records over a protocol, runs the job until it wrote them all and
 * stops it, then reads the tables back with delta-rs (every record once, no dead letters, no
 * secret printed or served); `failsAtStart` runs it expecting a start-up failure (exit 2, no
 * stack trace, no secret). Temporary folders are removed by `removeSecureJobDirs()`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logLevel } from 'kafkajs';
import { expect } from 'vitest';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { startJobProcess } from './jobProcess.ts';
import type { SecureKafka, SecureProtocol } from './secureKafka.ts';
import { uniqueName, verifyDelta } from './stack.ts';
import { waitFor } from './wait.ts';

const dirs: string[] = [];

/** A temporary folder, removed by `removeSecureJobDirs()`. */
export async function secureJobDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rxlake-secure-'));
  dirs.push(d);
  return d;
}

/** Removes the folders `secureJobDir()` made (call from `afterAll`). */
export async function removeSecureJobDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** A stack trace line, as Node prints them. */
export const STACK_LINE = /\n\s+at .+\(?.*:\d+:\d+\)?/;

/** Fails naming which of the broker's secrets turned up in `where`. */
export function expectNoSecret(kafka: SecureKafka, where: string, text: string): void {
  for (const [i, secret] of kafka.secrets.entries()) {
    expect(text.includes(secret), `secret #${i} found in ${where}`).toBe(false);
  }
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** What `ingestsOver` saw: the job's output and its /metrics. */
export interface SecureIngest {
  readonly out: string;
  readonly metrics: string;
}

/**
 * Produces `count` trips records (2 partitions) over `protocol`, runs the bronze job with the
 * protocol's variables and `env` until /health counts them all, stops it (SIGTERM, exit 0) and
 * checks with delta-rs that `bronze_trips` holds each (partition, offset) once and the dead-letter
 * table none; no secret in the output, /health or /metrics.
 */
export async function ingestsOver(kafka: SecureKafka, protocol: SecureProtocol, env: Record<string, string>, count = 120): Promise<SecureIngest> {
  const prefix = `${uniqueName(`sec-${protocol.toLowerCase()}`)}.`;
  await generateEvents({
    brokers: [kafka.servers[protocol]],
    kafkaConfig: { ...kafka.client(protocol), logLevel: logLevel.ERROR },
    topicPrefix: prefix,
    topics: ['trips'],
    count,
    partitions: 2,
    seed: 18,
  });
  const base = await secureJobDir();
  const job = startJobProcess('bronze', [], {
    ...kafka.jobEnv(protocol),
    KAFKA_TOPIC_PREFIX: prefix,
    KAFKA_CONSUMER_GROUP: uniqueName('bronze-sec'),
    BRONZE_TOPICS: 'trips',
    DELTA_BASE_PATH: base,
    BATCH_INTERVAL_SECONDS: '0.2',
    PROGRESS_INTERVAL_SECONDS: '1',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const [, portText] = await job.printed(/health and metrics url=http:\/\/[^:]+:(\d+)\/health/);
  const port = Number(portText);
  await waitFor(`${count} records written`, async () => {
    const res = await get(port, '/health').catch((err: unknown) => {
      throw new Error(`/health did not answer (${String(err)}); the job printed:\n${job.output()}`);
    });
    const body = JSON.parse(res.body) as { recordsWritten: number };
    return body.recordsWritten === count;
  });
  const health = await get(port, '/health');
  const metrics = await get(port, '/metrics');
  const ready = await get(port, '/ready');
  expect(health.status, health.body).toBe(200);
  expect(ready.status).toBe(200);
  expect(metrics.body).toContain(`rxlake_records_written_total{table="bronze_trips"} ${count}`);
  // At least one progress line, so the periodic log is covered by the secret check below.
  await job.printed(/INFO\s+progress /);
  job.child.kill('SIGTERM');
  const { code, out } = await job.exit;
  expect(code, out).toBe(0);
  expectNoSecret(kafka, '/health', health.body);
  expectNoSecret(kafka, '/metrics', metrics.body);
  expectNoSecret(kafka, 'the job output', out);
  expect(out).toContain('bronze pipeline finished');

  const table = await verifyDelta(join(base, 'bronze_trips'), { rows: true, columns: ['_kafka_partition', '_kafka_offset'] });
  expect(table.num_rows).toBe(count);
  const keys = new Set((table.rows ?? []).map((r) => `${String(r._kafka_partition)}/${String(r._kafka_offset)}`));
  expect(keys.size).toBe(count);
  const dlq = await verifyDelta(join(base, 'dlq_bronze_trips'));
  expect(dlq.num_rows).toBe(0);
  return { out, metrics: metrics.body };
}

/** Runs the bronze job until it stops by itself (`--until-caught-up`), expecting a start-up failure: exit 2, no stack trace, no secret. Returns its output. */
export async function failsAtStart(kafka: SecureKafka, protocol: SecureProtocol, env: Record<string, string>): Promise<string> {
  const prefix = `${uniqueName('sec-fail')}.`;
  const base = await secureJobDir();
  const { code, out } = await startJobProcess('bronze', ['--until-caught-up'], {
    ...kafka.jobEnv(protocol),
    KAFKA_TOPIC_PREFIX: prefix,
    BRONZE_TOPICS: 'trips',
    DELTA_BASE_PATH: base,
    LOG_LEVEL: 'debug',
    ...env,
  }).exit;
  expect(code, out).toBe(2);
  expect(out).not.toMatch(STACK_LINE);
  expectNoSecret(kafka, 'the job output', out);
  return out;
}
