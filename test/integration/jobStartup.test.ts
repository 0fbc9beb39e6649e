/**
 * What the jobs' command lines say when their surroundings are wrong at start, run as users run
 * them against the real broker and S3 server: a missing topic, refused S3 credentials, a
 * missing bucket, an unreachable S3 endpoint. Each stops with exit 2 and one message naming the
 * cause, the variable and the fix — no stack trace, no secret — and a job told to wait for its
 * topics starts once they exist.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { createTopicsReady } from '../support/topics.ts';
import { waitFor } from '../support/wait.ts';

const admin = new Kafka({ brokers: [...stack.kafkaBrokers], clientId: 'job-startup-test', logLevel: logLevel.NOTHING }).admin();
const dirs: string[] = [];
const children = new Set<ChildProcess>();

beforeAll(async () => {
  await admin.connect();
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await admin.disconnect();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

interface Job {
  readonly child: ChildProcess;
  /** Resolves with the exit code and everything the job printed. */
  readonly exit: Promise<{ code: number | null; out: string }>;
  /** Resolves once the output matches `pattern`, with the match. */
  readonly printed: (pattern: RegExp) => Promise<RegExpExecArray>;
}

/** Starts a job's command line (`node src/pipelines/<job>.ts`, tsx on Node 20) with the stack's endpoints and `env`. */
function startJob(job: 'bronze' | 'transactions', args: string[], env: Record<string, string>): Job {
  const node = stack.nodeCurrent ?? join(stack.root, 'node_modules', '.bin', 'tsx');
  const child = spawn(node, [join(stack.root, 'src', 'pipelines', `${job}.ts`), ...args], {
    cwd: stack.root,
    env: { ...process.env, ...stack.jobEnv, HTTP_PORT: '0', PROGRESS_INTERVAL_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exit = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      for (const w of [...waiters]) w();
      resolve({ code, out });
    }),
  );
  const printed = (pattern: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(out);
        if (m !== null) {
          waiters.splice(waiters.indexOf(check), 1);
          resolve(m);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`${job} exited before printing ${String(pattern)}:\n${out}`));
        }
      };
      waiters.push(check);
      check();
    });
  return { child, exit, printed };
}

function run(job: 'bronze' | 'transactions', env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return startJob(job, ['--until-caught-up'], env).exit;
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rxlake-startup-'));
  dirs.push(d);
  return d;
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A stack trace line, as Node prints them. */
const STACK_LINE = /\n\s+at .+\(?.*:\d+:\d+\)?/;

describe('a job started on topics that do not exist', () => {
  it('bronze stops at once with exit 2 naming the missing topics and the fix, before creating any table', async () => {
    const prefix = `${uniqueName('nt')}.`;
    const base = await tempDir();
    const { code, out } = await run('bronze', { KAFKA_TOPIC_PREFIX: prefix, BRONZE_TOPICS: 'ratings,trips', DELTA_BASE_PATH: base });
    expect(code, out).toBe(2);
    expect(out).toContain(`Kafka topics ${prefix}ratings, ${prefix}trips do not exist on ${stack.kafkaBrokers.join(',')}`);
    expect(out).toContain('BRONZE_TOPICS');
    expect(out).toContain(`KAFKA_TOPIC_PREFIX (now "${prefix}")`);
    expect(out).toContain('KAFKA_TOPICS_WAIT_SECONDS');
    expect(out).not.toContain('does not host this topic-partition');
    expect(out).not.toMatch(STACK_LINE);
    expect(await readdir(base)).toEqual([]);
  });

  it('transactions names only the topic that is missing, and TRANSACTION_TOPICS', async () => {
    const prefix = `${uniqueName('nt')}.`;
    await createTopicsReady(admin, [{ topic: `${prefix}transactions`, numPartitions: 1 }]);
    const { code, out } = await run('transactions', { KAFKA_TOPIC_PREFIX: prefix, PIPELINE_ID: uniqueName('ntp').replaceAll('-', '_'), DELTA_BASE_PATH: await tempDir() });
    expect(code, out).toBe(2);
    expect(out).toContain(`Kafka topic ${prefix}refunds does not exist`);
    expect(out).not.toContain(`${prefix}transactions,`);
    expect(out).toContain('TRANSACTION_TOPICS');
    expect(out).not.toMatch(STACK_LINE);
  });

  it('with KAFKA_TOPICS_WAIT_SECONDS, bronze logs its wait and ingests the topic once it exists', async () => {
    const prefix = `${uniqueName('wt')}.`;
    const base = await tempDir();
    const job = startJob('bronze', [], {
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: uniqueName('bronze'),
      BRONZE_TOPICS: 'ratings',
      DELTA_BASE_PATH: base,
      KAFKA_TOPICS_WAIT_SECONDS: '120',
      BATCH_INTERVAL_SECONDS: '0.2',
      LOG_LEVEL: 'info',
    });
    await job.printed(new RegExp(`waiting for Kafka topics that do not exist yet \\(KAFKA_TOPICS_WAIT_SECONDS\\) missing=${prefix.replaceAll('.', '\\.')}ratings`));
    const manifest = await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['ratings'], count: 40, partitions: 1, seed: 4 });
    const [, port] = await job.printed(/health and metrics url=http:\/\/[^:]+:(\d+)\/health/);
    await waitFor('every produced record written (/health)', async () => {
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { recordsWritten: number };
      return health.recordsWritten >= 40;
    });
    job.child.kill('SIGTERM');
    const { code, out } = await job.exit;
    expect(code, out).toBe(0);
    expect(manifest.topics.ratings?.produced).toBe(40);
    expect((await verifyDelta(`${base}/bronze_ratings`)).num_rows).toBe(40);
  });
});

describe('a job started with wrong S3 settings', () => {
  let prefix = '';
  beforeAll(async () => {
    prefix = `${uniqueName('s3')}.`;
    await createTopicsReady(admin, [{ topic: `${prefix}ratings`, numPartitions: 1 }, { topic: `${prefix}transactions`, numPartitions: 1 }, { topic: `${prefix}refunds`, numPartitions: 1 }]);
  });

  it('refused credentials: exit 2 naming AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_ENDPOINT_URL, never the secret', async () => {
    const secret = `not-the-secret-${uniqueName('x')}`;
    const s3 = (accessKeyId: string): Record<string, string> => ({
      KAFKA_TOPIC_PREFIX: prefix,
      DELTA_BASE_PATH: `s3://${stack.s3.bucket}/${uniqueName('creds')}`,
      S3_ENDPOINT_URL: stack.s3.endpoint,
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secret,
    });
    const [badSecret, badKey, transactions] = await Promise.all([
      run('bronze', { ...s3(stack.s3.accessKeyId), BRONZE_TOPICS: 'ratings' }),
      run('bronze', { ...s3(uniqueName('nobody')), BRONZE_TOPICS: 'ratings' }),
      run('transactions', { ...s3(stack.s3.accessKeyId), PIPELINE_ID: uniqueName('s3p').replaceAll('-', '_') }),
    ]);
    for (const [what, r] of [['wrong secret', badSecret], ['unknown key id', badKey], ['transactions', transactions]] as const) {
      expect(r.code, `${what}: ${r.out}`).toBe(2);
      expect(r.out, what).toMatch(/refused access to s3:\/\/.* \((SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied), HTTP 403\)/);
      expect(r.out, what).toContain('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
      expect(r.out, what).toContain(`${stack.s3.endpoint} (S3_ENDPOINT_URL)`);
      expect(r.out, what).not.toContain(secret);
      expect(r.out, what).not.toMatch(STACK_LINE);
      expect(r.out, what).not.toContain('StorageError');
    }
  });

  it('a missing bucket names DELTA_BASE_PATH; an unreachable endpoint is retried, then named (S3_ENDPOINT_URL)', async () => {
    const port = await closedPort();
    const common = { KAFKA_TOPIC_PREFIX: prefix, BRONZE_TOPICS: 'ratings', AWS_ACCESS_KEY_ID: stack.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey };
    const bucket = uniqueName('nobucket').toLowerCase();
    const [noBucket, unreachable] = await Promise.all([
      run('bronze', { ...common, S3_ENDPOINT_URL: stack.s3.endpoint, DELTA_BASE_PATH: `s3://${bucket}/bronze` }),
      run('bronze', { ...common, S3_ENDPOINT_URL: `http://127.0.0.1:${port}`, DELTA_BASE_PATH: `s3://${stack.s3.bucket}/bronze`, STORAGE_STARTUP_TIMEOUT_SECONDS: '2' }),
    ]);
    expect(noBucket.code, noBucket.out).toBe(2);
    expect(noBucket.out).toContain(`has no bucket for DELTA_BASE_PATH=s3://${bucket}/bronze (NoSuchBucket`);
    expect(noBucket.out).not.toMatch(STACK_LINE);

    expect(unreachable.code, unreachable.out).toBe(2);
    // Each retry is logged naming the variable; the final message names it and the fix.
    expect(unreachable.out).toContain(`WARN  S3 at http://127.0.0.1:${port} (S3_ENDPOINT_URL) failed, retrying`);
    expect(unreachable.out).toContain(`S3 at http://127.0.0.1:${port} (S3_ENDPOINT_URL) cannot be reached`);
    expect(unreachable.out).toContain('ECONNREFUSED');
    expect(unreachable.out).toContain('check S3_ENDPOINT_URL');
    expect(unreachable.out).not.toMatch(STACK_LINE);
  });
});

describe('the job log', () => {
  it('LOG_FORMAT=json writes pino JSON lines; a secret variable is cut from every line and from the final message', async () => {
    const port = await closedPort();
    // A value of a secret variable that also turns up in texts the job writes (here: its base path).
    const secret = `s3cr3t${uniqueName('k').replaceAll('-', '').toLowerCase()}`;
    const prefix = `${uniqueName('json')}.`;
    await createTopicsReady(admin, [{ topic: `${prefix}ratings`, numPartitions: 1 }]);
    const r = await run('bronze', {
      LOG_FORMAT: 'json',
      KAFKA_TOPIC_PREFIX: prefix,
      BRONZE_TOPICS: 'ratings',
      KAFKA_TOPICS_WAIT_SECONDS: '0',
      S3_ENDPOINT_URL: `http://127.0.0.1:${port}`,
      DELTA_BASE_PATH: `s3://${stack.s3.bucket}/${secret}/bronze`,
      AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: secret,
      STORAGE_STARTUP_TIMEOUT_SECONDS: '1',
    });
    expect(r.code, r.out).toBe(2);
    expect(r.out).not.toContain(secret);
    const lines = r.out.split('\n').filter((l) => l.trim() !== '');
    const logged = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; time: string; msg: string; [k: string]: unknown });
    // the health line, the S3 retries; the final message is the command line's own (not a log line)
    expect(logged.length).toBeGreaterThanOrEqual(2);
    for (const entry of logged) expect(Object.keys(entry).slice(0, 2)).toEqual(['level', 'time']);
    expect(logged.some((e) => e.level === 'info' && e.msg === 'health and metrics' && typeof e.url === 'string')).toBe(true);
    const retry = logged.find((e) => e.level === 'warn' && e.msg === `S3 at http://127.0.0.1:${port} (S3_ENDPOINT_URL) failed, retrying`);
    expect(retry).toMatchObject({ attempt: 1, error: { type: 'StorageError', code: 'STORAGE_ERROR', retriable: true } });
    expect(JSON.stringify(retry)).toContain('***');
    // (other lines: Node's own warnings, e.g. the AWS SDK's about the Node version)
    const final = lines.filter((l) => l.startsWith('bronze: '));
    expect(final).toHaveLength(1);
    expect(final[0]).toMatch(new RegExp(`^bronze: S3 at http://127\\.0\\.0\\.1:${port} \\(S3_ENDPOINT_URL\\) cannot be reached \\(.*s3://${stack.s3.bucket}/\\*\\*\\*/bronze`));
  });
});
