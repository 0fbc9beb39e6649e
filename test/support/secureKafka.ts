/**
 * The stack's secure Kafka broker (`bash scripts/stack.sh up kafka-secure`): SASL_PLAINTEXT and
 * SASL_SSL with SCRAM, SSL with a client certificate required, all signed by the stack's own CA.
 * `secureKafka()` starts it through the stack script (once per test process; a second `up` is
 * instant) and reads the client settings the script wrote (`.stack/kafka-secure/client.env`):
 * the job's variables per protocol, and kafkajs settings for producers and admins.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KafkaConfig } from 'kafkajs';
import { stack } from './stack.ts';

const run = promisify(execFile);

export type SecureProtocol = 'SASL_PLAINTEXT' | 'SSL' | 'SASL_SSL';
export const SECURE_PROTOCOLS: readonly SecureProtocol[] = ['SASL_PLAINTEXT', 'SSL', 'SASL_SSL'];

export interface SecureKafka {
  /** Bootstrap servers of each listener. */
  readonly servers: Readonly<Record<SecureProtocol, string>>;
  readonly username: string;
  readonly password: string;
  readonly caLocation: string;
  readonly certificateLocation: string;
  readonly keyLocation: string;
  readonly keyPassword: string;
  /** Every secret a job is given (passwords, and a line of the private key's PEM). */
  readonly secrets: readonly string[];
  /**
   * The job's variables for `protocol`: bootstrap servers, SCRAM-SHA-512 credentials (SASL),
   * the CA (TLS) and the client certificate and key (SSL, where the broker requires them).
   */
  jobEnv(protocol: SecureProtocol): Record<string, string>;
  /** kafkajs settings of a client over `protocol` (producers, admins of the tests). */
  client(protocol: SecureProtocol): Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'>;
}

let started: Promise<SecureKafka> | undefined;

/** Starts the secure broker with the stack script (if not running) and reads its client settings. */
export function secureKafka(): Promise<SecureKafka> {
  started ??= start();
  return started;
}

async function start(): Promise<SecureKafka> {
  try {
    await run('bash', [join(stack.root, 'scripts', 'stack.sh'), 'up', 'kafka-secure'], { cwd: stack.root, env: process.env, maxBuffer: 1 << 24 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`bash scripts/stack.sh up kafka-secure failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
  const env = readClientEnv(join(stack.dir, 'kafka-secure', 'client.env'));
  const need = (name: string): string => {
    const v = env[name];
    if (v === undefined || v === '') throw new Error(`${name} missing from the stack's kafka-secure/client.env`);
    return v;
  };
  const servers = { SASL_PLAINTEXT: need('KAFKA_SASL_PLAINTEXT_SERVERS'), SSL: need('KAFKA_SSL_SERVERS'), SASL_SSL: need('KAFKA_SASL_SSL_SERVERS') };
  const username = need('KAFKA_SASL_USERNAME');
  const password = need('KAFKA_SASL_PASSWORD');
  const caLocation = need('KAFKA_SSL_CA_LOCATION');
  const certificateLocation = need('KAFKA_SSL_CERTIFICATE_LOCATION');
  const keyLocation = need('KAFKA_SSL_KEY_LOCATION');
  const keyPassword = need('KAFKA_SSL_KEY_PASSWORD');
  const keyPem = readFileSync(keyLocation, 'utf8');
  const keyLine = keyPem.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'));
  const secrets = [password, keyPassword, ...(keyLine !== undefined ? [keyLine] : [])];
  const ca = readFileSync(caLocation, 'utf8');
  return {
    servers,
    username,
    password,
    caLocation,
    certificateLocation,
    keyLocation,
    keyPassword,
    secrets,
    jobEnv(protocol) {
      return {
        KAFKA_BOOTSTRAP_SERVERS: servers[protocol],
        KAFKA_SECURITY_PROTOCOL: protocol,
        ...(protocol !== 'SSL' ? { KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } : {}),
        ...(protocol !== 'SASL_PLAINTEXT' ? { KAFKA_SSL_CA_LOCATION: caLocation } : {}),
        ...(protocol === 'SSL' ? { KAFKA_SSL_CERTIFICATE_LOCATION: certificateLocation, KAFKA_SSL_KEY_LOCATION: keyLocation, KAFKA_SSL_KEY_PASSWORD: keyPassword } : {}),
      };
    },
    client(protocol) {
      const sasl = { mechanism: 'scram-sha-512' as const, username, password };
      if (protocol === 'SASL_PLAINTEXT') return { brokers: [servers[protocol]], sasl };
      if (protocol === 'SASL_SSL') return { brokers: [servers[protocol]], ssl: { ca }, sasl };
      return { brokers: [servers[protocol]], ssl: { ca, cert: readFileSync(certificateLocation, 'utf8'), key: keyPem, passphrase: keyPassword } };
    },
  };
}

/** KEY=value lines (comments and blank lines skipped). */
function readClientEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}
