/**
 * The stack's secure Kafka broker (`bash scripts/stack.sh up kafka-secure`): SASL_PLAINTEXT and
 * SASL_SSL with SCRAM, SSL with a client certificate required, all signed by the stack's own CA.
 * `secureKafka()` starts it through the stack script (once per test process; a second `up` is
 * instant; on free ports when something it cannot use holds them) and reads the client settings
 * the script wrote (`.stack/kafka-secure/client.env`):
 * the job's variables per protocol, and kafkajs settings for producers and admins.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KafkaConfig } from 'kafkajs';
import { createServer } from 'node:net';
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

/** A loopback TCP port nobody listens on right now (the kernel's pick). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0));
    });
  });
}

/** Starts the secure broker with the stack script (if not running) and reads its client settings. */
export function secureKafka(): Promise<SecureKafka> {
  started ??= start();
  return started;
}

/**
 * `bash scripts/stack.sh up <service>`; when its ports are taken by something the script cannot
 * use (e.g. a secure broker another checkout left running without its settings), once more on
 * free ports (`portVariables`), which then hold for this test process. Returns the environment used.
 */
export async function stackUp(service: string, portVariables: readonly string[]): Promise<NodeJS.ProcessEnv> {
  const attempt = async (env: NodeJS.ProcessEnv): Promise<void> => {
    await run('bash', [join(stack.root, 'scripts', 'stack.sh'), 'up', service], { cwd: stack.root, env, maxBuffer: 1 << 24 });
  };
  try {
    await attempt(process.env);
    return process.env;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const text = `${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`;
    if (!text.includes('is taken by a process this script did not start')) throw new Error(`bash scripts/stack.sh up ${service} failed: ${text}`);
    const ports: Record<string, string> = {};
    for (const name of portVariables) ports[name] = String(await freePort());
    const env = { ...process.env, ...ports };
    try {
      await attempt(env);
    } catch (again) {
      const a = again as { stdout?: string; stderr?: string; message: string };
      throw new Error(`bash scripts/stack.sh up ${service} failed, on its ports and on free ones (${JSON.stringify(ports)}): ${a.message}\n${a.stdout ?? ''}\n${a.stderr ?? ''}\nfirst: ${text}`);
    }
    Object.assign(process.env, ports);
    return env;
  }
}

async function start(): Promise<SecureKafka> {
  await stackUp('kafka-secure', ['KAFKA_SASL_PORT', 'KAFKA_SSL_PORT', 'KAFKA_SASL_SSL_PORT', 'KAFKA_SECURE_CONTROLLER_PORT']);
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
