/**
 * Kafka security settings: the KAFKA_SSL_* files are read and checked at start (each problem names
 * the variable and the fix, never a secret), become the client's `ssl` option, and the Kafka
 * client's security failures become start-up messages naming the variable to fix.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSSASLAuthenticationError } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJobConfig } from '../../src/runtime/config.ts';
import type { JobConfig } from '../../src/runtime/config.ts';
import { ConfigError } from '../../src/runtime/env.ts';
import { kafkaClientSecurity, kafkaSecurityStartupError } from '../../src/runtime/kafkaSecurity.ts';

const TLS = join(import.meta.dirname, '..', 'support', 'tls');
const CA = join(TLS, 'ca.pem');
const CERT = join(TLS, 'client.pem');
const KEY = join(TLS, 'client.key');
const PLAIN_KEY = join(TLS, 'client.plain.key');
const OTHER_KEY = join(TLS, 'other.plain.key');
const KEY_PASSWORD = 'fixture-key-password';
const defaults = { KAFKA_CONSUMER_GROUP: 'g', DELTA_BASE_PATH: './data/x', PIPELINE_ID: 'x', HTTP_PORT: '0' };

function load(env: Record<string, string>): JobConfig {
  return loadJobConfig(env, { defaults, env: {} }).config;
}

function problemsOf(env: Record<string, string>): string {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rxlake-tls-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TLS settings from the environment', () => {
  it('SSL without files: TLS with the built-in CAs; PLAINTEXT and SASL_PLAINTEXT: no TLS', () => {
    expect(load({ KAFKA_SECURITY_PROTOCOL: 'SSL' }).kafka.ssl).toBe(true);
    expect(load({}).kafka.ssl).toBe(false);
    expect(load({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }).kafka.ssl).toBe(false);
  });

  it('reads the CA, the client certificate and its encrypted key with its password', () => {
    const c = load({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: CA, KAFKA_SSL_CERTIFICATE_LOCATION: CERT, KAFKA_SSL_KEY_LOCATION: KEY, KAFKA_SSL_KEY_PASSWORD: KEY_PASSWORD });
    const ssl = c.kafka.ssl;
    if (typeof ssl !== 'object') throw new Error('expected TLS options');
    expect(ssl.ca).toContain('-----BEGIN CERTIFICATE-----');
    expect(ssl.cert).toContain('-----BEGIN CERTIFICATE-----');
    expect(ssl.key).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    expect(ssl.passphrase).toBe(KEY_PASSWORD);
    expect(ssl.rejectUnauthorized).toBeUndefined();
    // SASL_SSL with only a CA; verification switched off on request.
    const s = load({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SSL_CA_LOCATION: CA, KAFKA_ENABLE_SSL_CERTIFICATE_VERIFICATION: 'false' });
    expect(s.kafka.ssl).toEqual({ ca: expect.stringContaining('BEGIN CERTIFICATE') as unknown, rejectUnauthorized: false });
    expect(s.kafka.sasl).toEqual({ mechanism: 'plain', username: 'u', password: 'p' });
    expect(load({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: CERT, KAFKA_SSL_KEY_LOCATION: PLAIN_KEY }).kafka.ssl).toMatchObject({ cert: expect.any(String) as unknown, key: expect.any(String) as unknown });
  });

  it('names a missing file, a folder, a file without PEM, each with the fix', async () => {
    const notPem = join(dir, 'ca.der');
    await writeFile(notPem, Buffer.from([0x30, 0x82, 0x01, 0x0a]));
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: join(dir, 'nope.pem') })).toContain(
      `KAFKA_SSL_CA_LOCATION="${join(dir, 'nope.pem')}" does not exist: set it to the CA certificate file (PEM).`,
    );
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: dir })).toContain(`KAFKA_SSL_CA_LOCATION="${dir}" is a folder`);
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: notPem })).toContain('holds no PEM block');
    // A key where a certificate belongs.
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: PLAIN_KEY })).toContain(`KAFKA_SSL_CA_LOCATION="${PLAIN_KEY}" holds no certificate`);
  });

  it('wants the certificate and the key together, the password for an encrypted key, and the right one (never shown)', () => {
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: CERT })).toContain('KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together');
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: CERT, KAFKA_SSL_KEY_LOCATION: KEY })).toContain(
      `KAFKA_SSL_KEY_LOCATION="${KEY}" is encrypted: set KAFKA_SSL_KEY_PASSWORD to its password.`,
    );
    const wrong = problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: CERT, KAFKA_SSL_KEY_LOCATION: KEY, KAFKA_SSL_KEY_PASSWORD: 'hunter2-kp' });
    expect(wrong).toContain('KAFKA_SSL_KEY_PASSWORD (set; value not shown) does not open the key');
    expect(wrong).not.toContain('hunter2-kp');
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: CERT, KAFKA_SSL_KEY_LOCATION: OTHER_KEY })).toContain(
      `KAFKA_SSL_KEY_LOCATION="${OTHER_KEY}" is not the private key of the certificate in KAFKA_SSL_CERTIFICATE_LOCATION`,
    );
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_KEY_PASSWORD: 'hunter2-kp' })).toContain('KAFKA_SSL_KEY_PASSWORD is set but KAFKA_SSL_KEY_LOCATION is not');
  });

  it('refuses TLS files with a protocol without TLS, and SASL without credentials', () => {
    expect(problemsOf({ KAFKA_SSL_CA_LOCATION: CA })).toContain(
      'KAFKA_SSL_CA_LOCATION is set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS: set KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL to connect with TLS, or unset it.',
    );
    expect(problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SSL_CA_LOCATION: CA })).toContain(
      'set KAFKA_SECURITY_PROTOCOL=SASL_SSL',
    );
    const noUser = problemsOf({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_PASSWORD: 'hunter2' });
    expect(noUser).toContain('KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required when KAFKA_SECURITY_PROTOCOL=SASL_SSL');
    expect(noUser).not.toContain('hunter2');
  });

  it('gives every client fresh ssl and sasl objects (kafkajs caches an authenticator on the one it gets)', () => {
    const c = load({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SSL_CA_LOCATION: CA });
    const a = kafkaClientSecurity(c.kafka);
    const b = kafkaClientSecurity(c.kafka);
    expect(a).toEqual(b);
    expect(a.sasl).not.toBe(b.sasl);
    expect(a.ssl).not.toBe(b.ssl);
    expect(a.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect(kafkaClientSecurity(load({}).kafka)).toEqual({});
    expect(kafkaClientSecurity(load({ KAFKA_SECURITY_PROTOCOL: 'SSL' }).kafka)).toEqual({ ssl: true });
  });
});

describe('kafkaSecurityStartupError', () => {
  const sasl = { brokers: ['b:9096'], ssl: true as const, sasl: { mechanism: 'scram-sha-512' as const, username: 'alice', password: 'hunter2-pw' } };
  // kafkajs' types declare no constructor argument for this error; the class takes the message.
  const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
  const viaRetries = (code: string, message: string): Error => new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError(`Connection error: ${message}`, { broker: 'b:9096', code }), { retryCount: 5, retryTime: 1000 });

  it('refused credentials name KAFKA_SASL_PASSWORD and the user, never the password', () => {
    const err = kafkaSecurityStartupError(new SaslError('SASL SCRAM SHA512 authentication failed: invalid credentials for hunter2-pw'), sasl);
    expect(err?.message).toContain('Kafka at b:9096 (KAFKA_BOOTSTRAP_SERVERS) refused the SASL credentials of user "alice" (SCRAM-SHA-512;');
    expect(err?.message).toContain('KAFKA_SASL_PASSWORD (set; value not shown)');
    expect(err?.message).not.toContain('hunter2-pw');
    const mech = kafkaSecurityStartupError(new SaslError('SASL SCRAM-SHA-512 mechanism is not supported by the server'), sasl);
    expect(mech?.message).toContain('does not accept KAFKA_SASL_MECHANISM=SCRAM-SHA-512');
  });

  it('TLS failures along the retry wrapper: untrusted, expired, another host, refused client certificate, not TLS', () => {
    expect(kafkaSecurityStartupError(viaRetries('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'), sasl)?.message).toContain(
      "the broker's TLS certificate is not trusted (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain; KAFKA_SSL_CA_LOCATION is unset",
    );
    expect(kafkaSecurityStartupError(viaRetries('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), { ...sasl, ssl: { ca: 'x' } })?.message).toContain(
      'the CA in KAFKA_SSL_CA_LOCATION did not sign it',
    );
    expect(kafkaSecurityStartupError(viaRetries('CERT_HAS_EXPIRED', 'certificate has expired'), sasl)?.message).toContain('renew the broker');
    expect(kafkaSecurityStartupError(viaRetries('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), sasl)?.message).toContain('certificate is for another host');
    expect(kafkaSecurityStartupError(viaRetries('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'tlsv13 alert certificate required'), sasl)?.message).toContain(
      'refused the TLS handshake at the client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED; KAFKA_SSL_CERTIFICATE_LOCATION is unset',
    );
    expect(kafkaSecurityStartupError(viaRetries('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'), sasl)?.message).toContain(
      'check that KAFKA_SECURITY_PROTOCOL (SSL, SASL_SSL) matches the listener',
    );
  });

  it('leaves other errors alone, and TLS errors when TLS is off', () => {
    expect(kafkaSecurityStartupError(viaRetries('ECONNREFUSED', 'connect ECONNREFUSED'), sasl)).toBeUndefined();
    expect(kafkaSecurityStartupError(viaRetries('SELF_SIGNED_CERT_IN_CHAIN', 'x'), { brokers: ['b:1'], ssl: false })).toBeUndefined();
    expect(kafkaSecurityStartupError(new Error('boom'), sasl)).toBeUndefined();
  });
});
