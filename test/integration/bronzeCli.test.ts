/**
 * The bronze job's command line as users run it (`node src/pipelines/bronze.ts` on a Node that
 * strips types; tsx on Node 20): bad configuration fails fast naming the variable, and
 * `DLQ_ENABLED=false` makes a bad record stop the job loudly instead of dead-lettering it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function bronze(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const node = stack.nodeCurrent ?? join(stack.root, 'node_modules', '.bin', 'tsx');
  return new Promise((resolve) => {
    const child = spawn(node, [join(stack.root, 'src', 'pipelines', 'bronze.ts'), ...args], {
      cwd: stack.root,
      env: { ...process.env, ...stack.jobEnv, HTTP_PORT: '0', PROGRESS_INTERVAL_SECONDS: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('bronze command line', () => {
  it('--help exits 0; an unknown argument exits 2 with the usage', async () => {
    const help = await bronze(['--help'], {});
    expect(help.code).toBe(0);
    expect(help.out).toContain('--until-caught-up');
    const bad = await bronze(['--until-caugth-up'], {});
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('unknown argument --until-caugth-up');
  });

  it('fails fast on bad configuration, naming each variable and what it accepts', async () => {
    const { code, out } = await bronze(['--until-caught-up'], {
      BATCH_INTERVAL_SECONDS: 'ten',
      DELTA_BASE_PATH: 'gs://bucket/x',
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_PASSWORD: 'hunter2',
    });
    expect(code).toBe(2);
    expect(out).toContain('BATCH_INTERVAL_SECONDS="ten" is not valid: expected a number of seconds');
    expect(out).not.toContain('hunter2');
    // Cross-variable checks run once every variable decodes.
    const second = await bronze(['--until-caught-up'], { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_PASSWORD: 'hunter2' });
    expect(second.code).toBe(2);
    expect(second.out).toContain('KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required');
    expect(second.out).not.toContain('hunter2');
  });

  it('DLQ_ENABLED=false: a bad record stops the job with exit 1, and the job resumes there once fixed', async () => {
    const prefix = `${uniqueName('cli')}.`;
    const manifest = await generateEvents({
      brokers: stack.kafkaBrokers,
      topicPrefix: prefix,
      topics: ['payments'],
      count: 100,
      corruptFraction: 0.05,
      corruptionKinds: ['truncated_json'],
      partitions: 1,
      seed: 9,
    });
    expect(manifest.topics.payments?.corrupted).toBe(5);
    const base = await mkdtemp(join(tmpdir(), 'rxlake-cli-'));
    dirs.push(base);
    const env = {
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: uniqueName('bronze'),
      BRONZE_TOPICS: 'payments',
      DELTA_BASE_PATH: base,
      BATCH_INTERVAL_SECONDS: '0.2',
    };
    const strict = await bronze(['--until-caught-up'], { ...env, DLQ_ENABLED: 'false' });
    expect(strict.code, strict.out).toBe(1);
    expect(strict.out).toContain('JSON_PARSE_ERROR');
    expect(strict.out).toContain('Set DLQ_ENABLED=true');
    // Nothing was dead-lettered and nothing committed past the bad record: with the DLQ back
    // on, the same group ingests every record exactly once.
    const again = await bronze(['--until-caught-up'], env);
    expect(again.code, again.out).toBe(0);
    // kafkajs' negative timer on Node 23+ is not shown to users (see dropKnownClientWarning).
    expect(again.out).not.toContain('TimeoutNegativeWarning');
    const [main, dlq] = await Promise.all([
      verifyDelta(`${base}/bronze_payments`, { rows: true, columns: ['_kafka_offset'] }),
      verifyDelta(`${base}/dlq_bronze_payments`, { rows: true, columns: ['_kafka_offset', 'error_type'] }),
    ]);
    const offsets = [...(main.rows ?? []), ...(dlq.rows ?? [])].map((r) => Number(r._kafka_offset)).sort((a, b) => a - b);
    expect(offsets).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(dlq.rows?.every((r) => r.error_type === 'JSON_PARSE_ERROR')).toBe(true);
    expect(dlq.num_rows).toBe(5);
  });

  it('refuses tables that hold offsets the topic does not have (topic recreated), naming the fix', async () => {
    const prefix = `${uniqueName('re')}.`;
    const topic = `${prefix}ratings`;
    await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['ratings'], count: 20, partitions: 1, seed: 2 });
    const base = await mkdtemp(join(tmpdir(), 'rxlake-cli-'));
    dirs.push(base);
    const env = { KAFKA_TOPIC_PREFIX: prefix, KAFKA_CONSUMER_GROUP: uniqueName('bronze'), BRONZE_TOPICS: 'ratings', DELTA_BASE_PATH: base, BATCH_INTERVAL_SECONDS: '0.2' };
    expect((await bronze(['--until-caught-up'], env)).code).toBe(0);

    const admin = new Kafka({ brokers: [...stack.kafkaBrokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [topic] });
      await waitFor('topic deleted', async () => !(await admin.listTopics()).includes(topic));
      // createTopics resolves false for a topic that exists (one whose creation timed out waiting
      // for its leader, say): wait for the topic and its leader, not for that call to say true.
      await waitFor('topic recreated', async () => {
        await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }).catch(() => false);
        const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => ({ topics: [] }))).topics;
        return meta?.partitions.length === 1 && (meta.partitions[0]?.leader ?? -1) >= 0;
      });
    } finally {
      await admin.disconnect();
    }
    await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['ratings'], count: 5, seed: 3 });
    const again = await bronze(['--until-caught-up'], { ...env, KAFKA_CONSUMER_GROUP: uniqueName('bronze') });
    expect(again.code, again.out).toBe(2);
    expect(again.out).toContain(`bronze_ratings holds offsets up to 19 of ${topic} partition 0, which ends at 5`);
    expect(again.out).toContain('PIPELINE_ID');
    // Nothing was written: the 5 new records were not silently skipped into an unchanged table.
    expect((await verifyDelta(`${base}/bronze_ratings`)).num_rows).toBe(20);
    // A new pipeline id starts a new offset history in the same tables.
    const fresh = await bronze(['--until-caught-up'], { ...env, KAFKA_CONSUMER_GROUP: uniqueName('bronze'), PIPELINE_ID: 'bronze-v2' });
    expect(fresh.code, fresh.out).toBe(0);
    expect((await verifyDelta(`${base}/bronze_ratings`)).num_rows).toBe(25);
  });
});
