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
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bronzeJob } from '../../src/pipelines/bronze.ts';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { StartupError } from '../../src/runtime/cli.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { startJob } from '../../src/runtime/runJob.ts';
import { killJobs, startJobProcess } from '../support/jobProcess.ts';
import { expectNoSecret as expectSecretFree, failsAtStart as failsAtStartOver, ingestsOver, removeSecureJobDirs, secureJobDir } from '../support/secureJob.ts';
import { SECURE_PROTOCOLS, secureKafka } from '../support/secureKafka.ts';
import type { SecureKafka, SecureProtocol } from '../support/secureKafka.ts';
import { stack, uniqueName } from '../support/stack.ts';

const exec = promisify(execFile);
let kafka: SecureKafka;

// A first start makes the certificates, formats the broker's storage and starts it (~15 s; the
// Kafka jars come from `scripts/stack.sh install kafka`).
beforeAll(async () => {
  kafka = await secureKafka();
}, 300_000);

afterAll(async () => {
  killJobs();
  await removeSecureJobDirs();
});

const tempDir = secureJobDir;

/** Fails naming which secret turned up in `where`. */
function expectNoSecret(where: string, text: string): void {
  expectSecretFree(kafka, where, text);
}

describe('the bronze job over each secure protocol', () => {
  for (const protocol of SECURE_PROTOCOLS) {
    it(`${protocol}: ingests every record exactly once with KAFKA_CLIENT=kafkajs; no secret in the logs, /health or /metrics`, async () => {
      // The jobs' default client (wire) over each protocol: wireSecurity.test.ts.
      const { out } = await ingestsOver(kafka, protocol, { KAFKA_CLIENT: 'kafkajs' });
      expect(out).toMatch(/kafka consumer .*client=kafkajs/);
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
function failsAtStart(protocol: SecureProtocol, env: Record<string, string>): Promise<string> {
  return failsAtStartOver(kafka, protocol, env);
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
