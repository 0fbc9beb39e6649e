/**
 * What the table maintenance tests share: bronze tables written by the bronze job itself (local
 * disk or the S3 server), the `rxlake` command run as users run it, and the rows of a table as
 * delta-rs reads them.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBronze } from '../../src/pipelines/bronze.ts';
import type { BronzeRun } from '../../src/pipelines/bronze.ts';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import type { Manifest } from '../../src/pipelines/rideshare/generate.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { storageFromUri } from '../../src/sinks/delta/storage.ts';
import type { Storage } from '../../src/sinks/delta/storage.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';

const dirs: string[] = [];

/** A fresh local folder (removed by `removeTempDirs`). */
export async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rxlake-ops-'));
  dirs.push(d);
  return d;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** The S3 server's settings as the jobs and the command line read them. */
export const s3Env: Readonly<Record<string, string>> = {
  S3_ENDPOINT_URL: stack.s3.endpoint,
  AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
  AWS_REGION: stack.s3.region,
};

/** A base path: a fresh local folder, or a fresh prefix in the S3 server's bucket. */
export async function basePath(where: 'local' | 's3'): Promise<string> {
  return where === 'local' ? tempDir() : `s3://${stack.s3.bucket}/${uniqueName('ops')}`;
}

/** A table's storage, S3 settings from the stack. */
export function tableStorage(uri: string): Storage {
  return storageFromUri(uri, {
    endpoint: stack.s3.endpoint,
    forcePathStyle: true,
    region: stack.s3.region,
    credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
  });
}

/** The bronze job's configuration for one topic into `base`, small batches (many small files). */
export function bronzeConfig(base: string, prefix: string, topic: BronzeTopic, env: Record<string, string> = {}) {
  return loadBronzeConfig({
    ...stack.jobEnv,
    ...(base.startsWith('s3://') ? s3Env : {}),
    HTTP_PORT: '0',
    PROGRESS_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'warn',
    KAFKA_TOPIC_PREFIX: prefix,
    KAFKA_CONSUMER_GROUP: uniqueName('bronze'),
    BRONZE_TOPICS: topic,
    DELTA_BASE_PATH: base,
    BATCH_INTERVAL_SECONDS: '0.2',
    BATCH_MAX_RECORDS: '200',
    ...env,
  });
}

export interface Ingested {
  readonly prefix: string;
  readonly kafkaTopic: string;
  readonly base: string;
  readonly table: string;
  readonly dlq: string;
  readonly manifest: Manifest;
}

/**
 * Produces `count` events (some corrupt) to a fresh topic and runs the bronze job over them
 * until caught up, in batches of at most 200 records: a bronze table of many small files.
 */
export async function ingestBronze(options: { where: 'local' | 's3'; topic?: BronzeTopic; count: number; corruptFraction?: number; seed?: number; base?: string; prefix?: string }): Promise<Ingested> {
  const topic = options.topic ?? 'trips';
  const prefix = options.prefix ?? `${uniqueName('ops')}.`;
  const base = options.base ?? (await basePath(options.where));
  const manifest = await generateEvents({
    brokers: stack.kafkaBrokers,
    topicPrefix: prefix,
    topics: [topic],
    count: options.count,
    corruptFraction: options.corruptFraction ?? 0.05,
    partitions: 3,
    seed: options.seed ?? 1,
  });
  const run = await startBronze({ config: bronzeConfig(base, prefix, topic), untilCaughtUp: true, log: createLogger('warn') });
  await run.done;
  return { prefix, kafkaTopic: `${prefix}${topic}`, base, table: `${base}/bronze_${topic}`, dlq: `${base}/dlq_bronze_${topic}`, manifest };
}

/** Starts the bronze job on `topic` without an end (stop it with `run.stop()`). */
export function runBronze(base: string, prefix: string, topic: BronzeTopic, env: Record<string, string> = {}): Promise<BronzeRun> {
  return startBronze({ config: bronzeConfig(base, prefix, topic, env), log: createLogger('warn') });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `rxlake ARGS` as users do (the package's bin), with the stack's S3 and Kafka settings. */
export function rxlake(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const node = stack.nodeCurrent ?? join(stack.root, 'node_modules', '.bin', 'tsx');
  return new Promise((resolve, reject) => {
    const child = spawn(node, [join(stack.root, 'src', 'bin', 'rxlake.ts'), ...args], {
      cwd: stack.root,
      env: { ...process.env, ...s3Env, KAFKA_BOOTSTRAP_SERVERS: stack.kafkaBrokers.join(','), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `rxlake ARGS --json`, parsed; fails (with the output) unless it exits `expectCode`. */
export async function rxlakeJson<T>(args: readonly string[], expectCode = 0): Promise<T> {
  const r = await rxlake([...args, '--json']);
  if (r.code !== expectCode) throw new Error(`rxlake ${args.join(' ')} exited ${r.code}, not ${expectCode}:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Every row of a bronze or dead-letter table, as delta-rs reads it: `partition:offset` → the row. */
export async function rowsByKey(uri: string, columns: readonly string[], version?: number): Promise<Map<string, Record<string, unknown>>> {
  const t = await verifyDelta(uri, { rows: true, columns: ['_kafka_partition', '_kafka_offset', ...columns], ...(version === undefined ? {} : { version }) });
  const out = new Map<string, Record<string, unknown>>();
  for (const r of t.rows ?? []) {
    const key = `${String(r._kafka_partition)}:${String(r._kafka_offset)}`;
    if (out.has(key)) throw new Error(`${uri}: ${key} appears twice`);
    out.set(key, r);
  }
  return out;
}
