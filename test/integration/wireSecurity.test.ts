/**
 * The bronze job with the wire client (KAFKA_CLIENT=wire) against the stack's secure broker
 * (`bash scripts/stack.sh up kafka-secure`): its fetcher opens connections of its own to the
 * partition leaders, so it authenticates itself — SCRAM-SHA-512 over SASL_PLAINTEXT, TLS with the
 * client certificate over SSL, SCRAM-SHA-512 and SCRAM-SHA-256 over TLS (SASL_SSL). Each ingests
 * every record exactly once (read back with delta-rs), no secret printed. A wrong password stops
 * the job at start naming KAFKA_SASL_PASSWORD, without the password.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxlakeError } from '../../src/core/errors.ts';
import type { KafkaSasl } from '../../src/sources/kafka/client.ts';
import { Connection, checkVersions, fetchMetadata } from '../../src/sources/kafka/wire/protocol.ts';
import { authenticate } from '../../src/sources/kafka/wire/sasl.ts';
import { killJobs } from '../support/jobProcess.ts';
import { failsAtStart, ingestsOver, removeSecureJobDirs } from '../support/secureJob.ts';
import { SECURE_PROTOCOLS, secureKafka } from '../support/secureKafka.ts';
import type { SecureKafka, SecureProtocol } from '../support/secureKafka.ts';
import { uniqueName } from '../support/stack.ts';

let kafka: SecureKafka;

beforeAll(async () => {
  kafka = await secureKafka();
}, 300_000);

afterAll(async () => {
  killJobs();
  await removeSecureJobDirs();
});

describe('the bronze job with KAFKA_CLIENT=wire over each secure protocol', () => {
  for (const protocol of SECURE_PROTOCOLS) {
    it(`${protocol}: the wire fetcher connects, authenticates and ingests every record exactly once`, async () => {
      const { out } = await ingestsOver(kafka, protocol, { KAFKA_CLIENT: 'wire' });
      expect(out).toMatch(/kafka consumer .*client=wire/);
      // TLS to 127.0.0.1 without an SNI name for the IP address (RFC 6066; Node warns DEP0123 otherwise).
      expect(out).not.toContain('DEP0123');
    });
  }

  it('SASL_SSL with SCRAM-SHA-256: ingests every record exactly once', async () => {
    await ingestsOver(kafka, 'SASL_SSL', { KAFKA_CLIENT: 'wire', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256' });
  });

  // The SSL listener speaks TLS only, and kafkajs keeps nothing but the group under
  // KAFKA_CLIENT=wire (its consumer runs with every topic paused): the records of the SSL case
  // above came through the fetcher's own connections, so those spoke TLS with the client
  // certificate.
  it('the SSL listener refuses plain TCP: records read through it prove the fetcher spoke TLS', async () => {
    const conn = await Connection.open(kafka.servers.SSL, { clientId: 'rxlake-test-plain', connectTimeoutMs: 5_000 });
    try {
      await expect(checkVersions(conn)).rejects.toThrow(/closed|no answer/);
    } finally {
      conn.close();
    }
  });
});

describe('security failures with KAFKA_CLIENT=wire', () => {
  it('a wrong SASL password (SASL_PLAINTEXT and SASL_SSL): exit 2 naming KAFKA_SASL_PASSWORD, the password not printed', async () => {
    const wrong = `wrong-${uniqueName('pw')}`;
    for (const protocol of ['SASL_PLAINTEXT', 'SASL_SSL'] as const) {
      const out = await failsAtStart(kafka, protocol, { KAFKA_CLIENT: 'wire', KAFKA_SASL_PASSWORD: wrong });
      // The job's start-up look-ups (kafkajs's admin) meet the refusal before the fetcher connects.
      expect(out).toContain(`Kafka at ${kafka.servers[protocol]} (KAFKA_BOOTSTRAP_SERVERS) refused the SASL credentials of user "${kafka.username}" (SCRAM-SHA-512`);
      expect(out).toContain('KAFKA_SASL_PASSWORD (set; value not shown)');
      expect(out).not.toContain(wrong);
    }
  });
});

/** A wire connection to the `protocol` listener (TLS with the stack's CA where it has TLS). */
function open(protocol: SecureProtocol): Promise<Connection> {
  const tls = protocol === 'SASL_PLAINTEXT' ? undefined : { ca: readFileSync(kafka.caLocation) };
  return Connection.open(kafka.servers[protocol], { clientId: 'rxlake-test-wire-sasl', tls, connectTimeoutMs: 5_000 });
}

async function authenticated<T>(protocol: SecureProtocol, sasl: KafkaSasl, then: (conn: Connection) => Promise<T>): Promise<T> {
  const conn = await open(protocol);
  try {
    await authenticate(conn, sasl, 10_000);
    return await then(conn);
  } finally {
    conn.close();
  }
}

describe('the wire connection\'s SASL with the real broker', () => {
  for (const [protocol, mechanism] of [
    ['SASL_PLAINTEXT', 'scram-sha-512'],
    ['SASL_PLAINTEXT', 'scram-sha-256'],
    ['SASL_SSL', 'scram-sha-256'],
  ] as const) {
    it(`${protocol}, ${mechanism}: authenticated (the broker's signature verified), then requests are answered`, async () => {
      const md = await authenticated(protocol, { mechanism, username: kafka.username, password: kafka.password }, async (conn) => {
        await checkVersions(conn);
        return fetchMetadata(conn, []);
      });
      expect([...md.brokers.values()]).toContain(kafka.servers[protocol]);
    });
  }

  it('a wrong password: the broker\'s refusal, naming the user, the broker and KAFKA_SASL_PASSWORD, not the password', async () => {
    const wrong = `wrong-${uniqueName('pw')}`;
    for (const mechanism of ['scram-sha-512', 'scram-sha-256'] as const) {
      const err = await authenticated('SASL_SSL', { mechanism, username: kafka.username, password: wrong }, () => Promise.resolve()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RxlakeError);
      const e = err as RxlakeError;
      expect(e.code).toBe('KAFKA_SASL_AUTHENTICATION_FAILED');
      expect(e.retriable).toBe(false);
      expect(e.message).toContain(`SASL ${mechanism.toUpperCase()} authentication of user "${kafka.username}" with ${kafka.servers.SASL_SSL} failed: Authentication failed during authentication due to invalid credentials`);
      expect(e.message).toContain('check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (value not shown)');
      expect(e.message).not.toContain(wrong);
      expect(e.message).not.toContain(kafka.password);
    }
  });

  it('a mechanism the broker does not enable (PLAIN): names the ones it does', async () => {
    const err = await authenticated('SASL_PLAINTEXT', { mechanism: 'plain', username: kafka.username, password: kafka.password }, () => Promise.resolve()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe(`the broker at ${kafka.servers.SASL_PLAINTEXT} does not enable SASL PLAIN (it enables SCRAM-SHA-512, SCRAM-SHA-256): set KAFKA_SASL_MECHANISM to one of those`);
  });
});
