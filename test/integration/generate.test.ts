/**
 * The producer against the real broker: what `generateEvents` reports in its manifest is what a
 * plain kafkajs consumer reads back, record by record, and the CLI's exit codes and signal
 * handling hold.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BRONZE_TOPIC_INFO } from '../../src/pipelines/rideshare/topics.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import type { Manifest, TopicRetry } from '../../src/pipelines/rideshare/generate.ts';
import { classify } from '../support/classify.ts';
import { readTopics } from '../support/kafka.ts';
import { stack, uniqueName } from '../support/stack.ts';

const kafka = new Kafka({ brokers: [...stack.kafkaBrokers], clientId: 'generate-test', logLevel: logLevel.NOTHING });
const admin = kafka.admin();
let workDir = '';
const createdTopics: string[] = [];

beforeAll(async () => {
  await admin.connect();
  workDir = await mkdtemp(join(tmpdir(), 'rxlake-generate-'));
});

afterAll(async () => {
  if (createdTopics.length > 0) await admin.deleteTopics({ topics: createdTopics }).catch(() => undefined);
  await admin.disconnect();
  await rm(workDir, { recursive: true, force: true });
});

interface Consumed {
  readonly partition: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** Reads every record of `topics` from the beginning until `expected` records arrived. */
async function consumeAll(topics: readonly string[], expected: number): Promise<Map<string, Consumed[]>> {
  const out = new Map<string, Consumed[]>(topics.map((t) => [t, []]));
  for (const r of await readTopics(topics, expected)) out.get(r.topic)?.push({ partition: r.partition, key: r.key, value: r.value });
  return out;
}

/** Records in a topic, from the broker's offsets (high watermark − log start, per partition). */
async function recordsIn(topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
}

function track(manifest: Manifest): void {
  for (const m of Object.values(manifest.topics)) createdTopics.push(m.kafkaTopic);
}

describe('generateEvents', () => {
  it('produces what its manifest says: counts, corruption kinds and error types, read back from Kafka', async () => {
    const prefix = `${uniqueName('gen')}.`;
    const topics: BronzeTopic[] = ['gps_pings', 'trips'];
    const manifest = await generateEvents({
      brokers: stack.kafkaBrokers,
      topicPrefix: prefix,
      topics,
      count: 200,
      corruptFraction: 0.1,
      partitions: 3,
      seed: 17,
      batchSize: 64,
    });
    track(manifest);
    expect(manifest.mode).toBe('count');
    expect(manifest.interrupted).toBe(false);
    expect(Object.keys(manifest.topics).sort()).toEqual([...topics].sort());
    expect(manifest.totals.produced).toBe(400);
    expect(manifest.totals.valid + manifest.totals.corrupted).toBe(400);

    const consumed = await consumeAll(
      topics.map((t) => `${prefix}${t}`),
      manifest.totals.produced,
    );
    for (const topic of topics) {
      const m = manifest.topics[topic];
      if (m === undefined) throw new Error(`no manifest entry for ${topic}`);
      expect(m.kafkaTopic).toBe(`${prefix}${topic}`);
      expect(m.produced).toBe(200);
      // Exactly floor(200 × 0.1) corrupted, spread evenly over the five kinds.
      expect(m.corrupted).toBe(20);
      expect(m.corruption).toEqual({ invalid_utf8: 4, truncated_json: 4, missing_field: 4, wrong_type: 4, null_value: 4 });
      expect(m.expectedErrors).toEqual({ ENCODING_ERROR: 4, JSON_PARSE_ERROR: 4, SCHEMA_VALIDATION_ERROR: 8, NULL_VALUE: 4 });

      // The broker holds exactly that many records, and the consumer read them all.
      expect(await recordsIn(m.kafkaTopic)).toBe(m.produced);
      const records = consumed.get(m.kafkaTopic) ?? [];
      expect(records).toHaveLength(m.produced);

      // Classified as the bronze pipeline would, the records match the manifest's expectations.
      const byType: Record<string, number> = {};
      let bytes = 0;
      for (const r of records) {
        const type = classify(topic, r.value);
        byType[type] = (byType[type] ?? 0) + 1;
        bytes += r.value?.length ?? 0;
        expect(r.key).not.toBeNull();
        if (type === 'OK') {
          const value = JSON.parse((r.value as Buffer).toString('utf8')) as Record<string, unknown>;
          expect(r.key?.toString()).toBe(value[BRONZE_TOPIC_INFO[topic].keyField]);
        }
      }
      expect(byType).toEqual({ OK: m.valid, ...m.expectedErrors });
      expect(bytes).toBe(m.bytes);

      // Created with the requested partitions; keys spread records over them.
      const meta = await admin.fetchTopicMetadata({ topics: [m.kafkaTopic] });
      expect(meta.topics[0]?.partitions).toHaveLength(3);
      expect(new Set(records.map((r) => r.partition)).size).toBeGreaterThan(1);
    }
  });

  it('honours topicNames, and in rate mode produces rate × duration per topic', async () => {
    const name = uniqueName('gen-rate');
    const manifest = await generateEvents({
      brokers: stack.kafkaBrokers,
      topics: ['surge_updates'],
      topicNames: { surge_updates: name },
      rate: 40,
      durationSeconds: 1.5,
      partitions: 1,
    });
    track(manifest);
    expect(manifest.mode).toBe('rate');
    expect(manifest.topics.surge_updates?.kafkaTopic).toBe(name);
    expect(manifest.topics.surge_updates?.produced).toBe(60);
    expect(manifest.interrupted).toBe(false);
    // It paced itself rather than producing everything at once.
    expect(manifest.durationMs).toBeGreaterThanOrEqual(1400);
    expect(await recordsIn(name)).toBe(60);
  });

  it('stops on abort, flushes what it generated, and reports exactly what reached the broker', async () => {
    const prefix = `${uniqueName('gen-abort')}.`;
    const controller = new AbortController();
    // Aborted once it is really producing (a progress report with more than 100 events acknowledged).
    const manifest = await generateEvents({
      progressIntervalMs: 50,
      onProgress: (p) => {
        if (p.produced > 100) controller.abort();
      },
      brokers: stack.kafkaBrokers,
      topicPrefix: prefix,
      topics: ['ratings', 'payments'],
      rate: 500,
      corruptFraction: 0.2,
      batchSize: 25,
      signal: controller.signal,
    });
    track(manifest);
    expect(manifest.interrupted).toBe(true);
    const total = (manifest.topics.ratings?.produced ?? 0) + (manifest.topics.payments?.produced ?? 0);
    expect(total).toBeGreaterThan(100);
    expect(total).toBeLessThan(2000); // rate mode runs until aborted: it stopped at the abort
    for (const topic of ['ratings', 'payments'] as const) {
      const m = manifest.topics[topic];
      expect(m?.produced).toBeGreaterThan(0);
      expect(await recordsIn(`${prefix}${topic}`)).toBe(m?.produced);
    }
  });

  it('sends again while its topic is not there yet ("does not host this topic-partition"), and every record lands once', async () => {
    const name = uniqueName('gen-late');
    createdTopics.push(name);
    const retries: TopicRetry[] = [];
    let created: Promise<unknown> | undefined;
    const manifest = await generateEvents({
      brokers: stack.kafkaBrokers,
      // kafkajs gives up at the first answer: the generator's own bounded retry carries the produce.
      kafkaConfig: { retry: { retries: 0 }, logLevel: logLevel.NOTHING },
      topics: ['ratings'],
      topicNames: { ratings: name },
      count: 300,
      batchSize: 100,
      createTopics: false,
      onTopicRetry: (r) => {
        retries.push(r);
        // The topic appears only once the generator has been told it is not there.
        created ??= admin.createTopics({ topics: [{ topic: name, numPartitions: 2 }], waitForLeaders: false });
      },
    });
    await created;
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]?.topic).toBe(name);
    expect(retries[0]?.error.message).toMatch(/does not host this topic-partition|not the leader|leader/i);
    // Every record once: the broker holds exactly what the manifest counts.
    expect(manifest.topics.ratings?.produced).toBe(300);
    expect(await recordsIn(name)).toBe(300);
  });

  it('rejects bad options before touching Kafka', async () => {
    await expect(generateEvents({ count: 1, rate: 1 })).rejects.toThrow(/exactly one of --count or --rate/);
    await expect(generateEvents({ count: 1, corruptFraction: 1.5 })).rejects.toThrow(/--corrupt-fraction/);
    await expect(generateEvents({ count: 1, topics: ['nope' as BronzeTopic] })).rejects.toThrow(/unknown topic/);
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

interface CliRun {
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
}

function runCli(args: string[], opts: { interruptAfterMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(stack.root, 'src', 'pipelines', 'rideshare', 'generate.ts'), ...args], {
      cwd: stack.root,
      env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: stack.kafkaBrokers.join(',') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Interrupt once it is really producing (the first progress line).
      if (opts.interruptAfterMs !== undefined && /events, /.test(stderr) && !child.killed) {
        setTimeout(() => child.kill('SIGINT'), opts.interruptAfterMs);
        opts = {};
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, stdout }));
  });
}

describe('generate CLI', () => {
  it('--help exits 0; bad flags exit 2 naming the flag', async () => {
    const [help, unknown, badNumber, badTopic, both] = await Promise.all([
      runCli(['--help']),
      runCli(['--count', '5', '--frobnicate', '1']),
      runCli(['--count', 'many']),
      runCli(['--count', '5', '--topics', 'gps_pings,taxis']),
      runCli(['--count', '5', '--rate', '5']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--corrupt-fraction');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--frobnicate');
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain('--count');
    expect(badTopic.code).toBe(2);
    expect(badTopic.stderr).toContain('--topics');
    expect(badTopic.stderr).toContain('taxis');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--count.*--rate/);
  });

  it('produces, writes the manifest, and on SIGINT flushes and exits 0 with an interrupted manifest', async () => {
    const prefix = `${uniqueName('gen-cli')}.`;
    const manifestFile = join(workDir, 'count.json');
    const counted = await runCli(['--count', '30', '--topics', 'driver_profiles', '--topic-prefix', prefix, '--corrupt-fraction', '0.2', '--manifest', manifestFile]);
    expect(counted.code, counted.stderr).toBe(0);
    const m1 = JSON.parse(await readFile(manifestFile, 'utf8')) as Manifest;
    track(m1);
    expect(m1.topics.driver_profiles?.produced).toBe(30);
    expect(m1.topics.driver_profiles?.corrupted).toBe(6);
    expect(await recordsIn(`${prefix}driver_profiles`)).toBe(30);

    const rateFile = join(workDir, 'rate.json');
    const interrupted = await runCli(['--rate', '200', '--topics', 'rider_profiles', '--topic-prefix', prefix, '--manifest', rateFile], {
      interruptAfterMs: 200,
    });
    expect(interrupted.code, interrupted.stderr).toBe(0);
    expect(interrupted.stderr).toContain('SIGINT');
    const m2 = JSON.parse(await readFile(rateFile, 'utf8')) as Manifest;
    track(m2);
    expect(m2.interrupted).toBe(true);
    const produced = m2.topics.rider_profiles?.produced ?? 0;
    expect(produced).toBeGreaterThan(0);
    expect(await recordsIn(`${prefix}rider_profiles`)).toBe(produced);
  });
});
