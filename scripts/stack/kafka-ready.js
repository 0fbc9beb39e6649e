// Readiness probe for the local Kafka broker: succeeds once a metadata request is answered.
// Usage: node kafka-ready.js HOST:PORT
import { createRequire } from 'node:module';
import process from 'node:process';
import { join } from 'node:path';

const broker = process.argv[2] ?? '127.0.0.1:9092';
const require = createRequire(join(process.cwd(), 'package.json'));
const { Kafka, logLevel } = require('kafkajs');

const kafka = new Kafka({
  clientId: 'stack-ready',
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 1000,
  requestTimeout: 2000,
  retry: { retries: 0 },
});
const admin = kafka.admin();
try {
  await admin.connect();
  const cluster = await admin.describeCluster();
  if (cluster.brokers.length === 0) throw new Error('no broker in metadata');
  await admin.disconnect();
  process.exit(0);
} catch {
  process.exit(1);
}
