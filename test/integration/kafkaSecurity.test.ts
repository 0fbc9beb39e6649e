/**
 * The bronze job against a broker that requires what production brokers require: SCRAM-SHA-512
 * over SASL_PLAINTEXT, TLS with a client certificate (SSL), and SCRAM over TLS (SASL_SSL) — the
 * stack's secure broker (`bash scripts/stack.sh up kafka-secure`, started here), its CA and
 * certificates made by the stack script. Each protocol ingests every record exactly once (read
 * back with delta-rs); a wrong password, an untrusted broker certificate and a missing client
 * certificate stop the job at start with exit 2 and a message naming the cause and the variable.
 * No secret (passwords, the key's password, the key itself) is ever in what the job prints, in
 * /health or /metrics, or in the errors it throws.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bronzeJob } from '../../src/pipelines/bronze.ts';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { StartupError } from '../../src/runtime/cli.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { startJob } from '../../src/runtime/runJob.ts';
import { killJobs, startJobProcess } from '../support/jobProcess.ts';
import { SECURE_PROTOCOLS, secureKafka } from '../support/secureKafka.ts';
import type { SecureKafka, SecureProtocol } from '../support/secureKafka.ts';
import { stack, uniqueName, verifyDelta } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

const exec = promisify(execFile);
const dirs: string[] = [];
let kafka: SecureKafka;

// A first start makes the certificates, formats the broker's storage and starts it (~15 s; the
// Kafka jars come from `scripts/stack.sh install kafka`).
beforeAll(async () => {
  kafka = await secureKafka();
}, 300_000);

afterAll(async () => {
  killJobs();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rxlake-secure-'));
  dirs.push(d);
  return d;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Fails naming which secret turned up in `where`. */
function expectNoSecret(where: string, text: string): void {
  for (const [i, secret] of kafka.secrets.entries()) {
    expect(text.includes(secret), `secret #${i} found in ${where}`).toBe(false);
  }
}

/** A stack trace line, as Node prints them. */
const STACK_LINE = /\n\s+at .+\(?.*:\d+:\d+\)?/;

describe('the bronze job over each secure protocol', () => {
  for (const protocol of SECURE_PROTOCOLS) {
    it(`${protocol}: ingests every record exactly once; no secret in the logs, /health or /metrics`, async () => {
      const prefix = `${uniqueName(`sec-${protocol.toLowerCase()}`)}.`;
      const count = 120;
      await generateEvents({
        brokers: [kafka.servers[protocol]],
        kafkaConfig: { ...kafka.client(protocol), logLevel: logLevel.ERROR },
        topicPrefix: prefix,
        topics: ['trips'],
        count,
        partitions: 2,
        seed: 18,
      });
      const base = await tempDir();
      const job = startJobProcess('bronze', [], {
        ...kafka.jobEnv(protocol),
        KAFKA_TOPIC_PREFIX: prefix,
        KAFKA_CONSUMER_GROUP: uniqueName('bronze-sec'),
        BRONZE_TOPICS: 'trips',
        DELTA_BASE_PATH: base,
        BATCH_INTERVAL_SECONDS: '0.2',
        PROGRESS_INTERVAL_SECONDS: '1',
        LOG_LEVEL: 'debug',
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
      // At least one progress line, so the periodic log is covered by the check below.
      await job.printed(/INFO\s+progress /);
      job.child.kill('SIGTERM');
      const { code, out } = await job.exit;
      expect(code, out).toBe(0);
      expectNoSecret('/health', health.body);
      expectNoSecret('/metrics', metrics.body);
      expectNoSecret('the job output', out);
      expect(out).toContain('bronze pipeline finished');

      const table = await verifyDelta(join(base, 'bronze_trips'), { rows: true, columns: ['_kafka_partition', '_kafka_offset'] });
      expect(table.num_rows).toBe(count);
      const keys = new Set((table.rows ?? []).map((r) => `${String(r._kafka_partition)}/${String(r._kafka_offset)}`));
      expect(keys.size).toBe(count);
      const dlq = await verifyDelta(join(base, 'dlq_bronze_trips'));
      expect(dlq.num_rows).toBe(0);
    });
  }
});

describe('the event generators and tools read the jobs\' security variables', () => {
  it('SASL_SSL: `generate` and `generate-transactions` produce through SCRAM over TLS with the CA file; no secret printed', async () => {
    const prefix = `${uniqueName('sec-gen')}.`;
    const env: Record<string, string> = { ...kafka.jobEnv('SASL_SSL'), KAFKA_TOPIC_PREFIX: prefix };
    const rideshare = await startJobProcess('rideshare/generate', ['--topics', 'trips', '--count', '40', '--partitions', '2'], env).exit;
    expect(rideshare.code, rideshare.out).toBe(0);
    const transactions = await startJobProcess('transactions/generate', ['--topics', 'transactions', '--count', '30', '--topic-prefix', prefix], env).exit;
    expect(transactions.code, transactions.out).toBe(0);
    expectNoSecret('the generators\' output', rideshare.out + transactions.out);
    const admin = new Kafka({ ...kafka.client('SASL_SSL'), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const count = async (topic: string): Promise<number> => (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
      expect(await count(`${prefix}trips`)).toBe(40);
      expect(await count(`${prefix}transactions`)).toBe(30);
    } finally {
      await admin.disconnect();
    }
    // Without the CA the broker's certificate is not trusted: the generator says so, exit ≠ 0, no secret.
    const noCa = { ...env, KAFKA_SSL_CA_LOCATION: undefined };
    const refused = await startJobProcess('transactions/generate', ['--topics', 'transactions', '--count', '1', '--topic-prefix', prefix], noCa).exit;
    expect(refused.code, refused.out).not.toBe(0);
    expectNoSecret('the refused generator\'s output', refused.out);
  });
});

/** Runs the job until it stops by itself (`--until-caught-up`) and checks the start-up failure's shape. */
async function failsAtStart(protocol: SecureProtocol, env: Record<string, string>): Promise<string> {
  const prefix = `${uniqueName('sec-fail')}.`;
  const base = await tempDir();
  const t0 = Date.now();
  const { code, out } = await startJobProcess('bronze', ['--until-caught-up'], {
    ...kafka.jobEnv(protocol),
    KAFKA_TOPIC_PREFIX: prefix,
    BRONZE_TOPICS: 'trips',
    DELTA_BASE_PATH: base,
    LOG_LEVEL: 'debug',
    ...env,
  }).exit;
  console.log(`${protocol} start-up failure after ${Date.now() - t0} ms:\n${out}`);
  expect(code, out).toBe(2);
  expect(out).not.toMatch(STACK_LINE);
  expectNoSecret('the job output', out);
  return out;
}

describe('security failures stop the job at start, naming the cause and the variable', () => {
  it('a wrong SASL password (SASL_PLAINTEXT and SASL_SSL): exit 2 naming KAFKA_SASL_PASSWORD, neither password printed', async () => {
    const wrong = `wrong-${uniqueName('pw')}`;
    for (const protocol of ['SASL_PLAINTEXT', 'SASL_SSL'] as const) {
      const out = await failsAtStart(protocol, { KAFKA_SASL_PASSWORD: wrong });
      expect(out).toContain(`refused the SASL credentials of user "${kafka.username}" (SCRAM-SHA-512`);
      expect(out).toContain('KAFKA_SASL_PASSWORD (set; value not shown)');
      expect(out).toContain(kafka.servers[protocol]);
      expect(out).not.toContain(wrong);
    }
  });

  it('the same failure in-process: a StartupError whose whole cause chain holds no secret', async () => {
    const wrong = `wrong-${uniqueName('pw')}`;
    const config = loadBronzeConfig({
      ...stack.jobEnv,
      ...kafka.jobEnv('SASL_SSL'),
      KAFKA_SASL_PASSWORD: wrong,
      KAFKA_TOPIC_PREFIX: `${uniqueName('sec-inproc')}.`,
      BRONZE_TOPICS: 'trips',
      DELTA_BASE_PATH: await tempDir(),
    });
    const lines: string[] = [];
    const err = await startJob(bronzeJob, { config, http: false, log: createLogger('debug', (l) => lines.push(l)) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StartupError);
    const text = `${inspect(err, { depth: 20 })}\n${JSON.stringify(err)}\n${lines.join('')}`;
    expect(text).toContain('KAFKA_SASL_PASSWORD');
    expect(text).not.toContain(wrong);
    expectNoSecret('the error and its causes', text);
  });

  it('an untrusted broker certificate (another CA, or none): exit 2 naming KAFKA_SSL_CA_LOCATION', async () => {
    const dir = await tempDir();
    const otherCa = join(dir, 'other-ca.pem');
    await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'other-ca.key'), '-out', otherCa, '-days', '2', '-subj', '/CN=not the stack CA']);
    const withOther = await failsAtStart('SASL_SSL', { KAFKA_SSL_CA_LOCATION: otherCa });
    expect(withOther).toContain("the broker's TLS certificate is not trusted");
    expect(withOther).toContain('the CA in KAFKA_SSL_CA_LOCATION did not sign it');
    expect(withOther).toContain('set KAFKA_SSL_CA_LOCATION to the PEM file of the CA');
    const withNone = await failsAtStart('SSL', { KAFKA_SSL_CA_LOCATION: '' });
    expect(withNone).toContain("the broker's TLS certificate is not trusted (SELF_SIGNED_CERT_IN_CHAIN");
    expect(withNone).toContain("KAFKA_SSL_CA_LOCATION is unset, so only Node's built-in CAs are trusted");
  });

  it('no client certificate where the broker requires one (SSL): exit 2 naming KAFKA_SSL_CERTIFICATE_LOCATION', async () => {
    const out = await failsAtStart('SSL', { KAFKA_SSL_CERTIFICATE_LOCATION: '', KAFKA_SSL_KEY_LOCATION: '', KAFKA_SSL_KEY_PASSWORD: '' });
    expect(out).toContain('refused the TLS handshake at the client certificate');
    expect(out).toContain('KAFKA_SSL_CERTIFICATE_LOCATION is unset');
  });

  it('bad TLS files stop the job before it connects: a missing CA file, a wrong key password', async () => {
    const missing = await failsAtStart('SASL_SSL', { KAFKA_SSL_CA_LOCATION: '/nonexistent/ca.pem' });
    expect(missing).toContain('KAFKA_SSL_CA_LOCATION="/nonexistent/ca.pem" does not exist');
    const wrong = `wrong-${uniqueName('kp')}`;
    const badKey = await failsAtStart('SSL', { KAFKA_SSL_KEY_PASSWORD: wrong });
    expect(badKey).toContain('KAFKA_SSL_KEY_PASSWORD (set; value not shown) does not open the key in KAFKA_SSL_KEY_LOCATION');
    expect(badKey).not.toContain(wrong);
  });
});
