// Readiness probe for the local Kafka brokers: succeeds once a metadata request is answered.
// Usage: node kafka-ready.js HOST:PORT
//        node kafka-ready.js --secure CLIENT_ENV   (the secure broker: every listener named in
//        that file answers, with its settings: SCRAM over SASL_PLAINTEXT and SASL_SSL, the
//        client certificate over SSL)
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const { Kafka, logLevel } = require('kafkajs');

async function answers(broker, settings = {}) {
  const kafka = new Kafka({
    clientId: 'stack-ready',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 2000,
    retry: { retries: 0 },
    ...settings,
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (cluster.brokers.length === 0) throw new Error('no broker in metadata');
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** KEY=value lines of the stack's client.env. */
function clientEnv(file) {
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

try {
  if (process.argv[2] === '--secure') {
    const env = clientEnv(process.argv[3]);
    const ca = readFileSync(env.KAFKA_SSL_CA_LOCATION, 'utf8');
    const sasl = { mechanism: env.KAFKA_SASL_MECHANISM.toLowerCase(), username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD };
    const clientTls = {
      ca,
      cert: readFileSync(env.KAFKA_SSL_CERTIFICATE_LOCATION, 'utf8'),
      key: readFileSync(env.KAFKA_SSL_KEY_LOCATION, 'utf8'),
      passphrase: env.KAFKA_SSL_KEY_PASSWORD,
    };
    await answers(env.KAFKA_SASL_PLAINTEXT_SERVERS, { sasl });
    await answers(env.KAFKA_SSL_SERVERS, { ssl: clientTls });
    await answers(env.KAFKA_SASL_SSL_SERVERS, { ssl: { ca }, sasl });
  } else {
    await answers(process.argv[2] ?? '127.0.0.1:9092');
  }
  process.exit(0);
} catch (err) {
  if (process.env.KAFKA_READY_DEBUG) process.stderr.write(`${String(err?.stack ?? err)}\n`);
  process.exit(1);
}
