/**
 * The transactions job against the raw consume rate of the same topic with the same client.
 *
 * Produces `--records` generated transactions (default 300,000, 3 partitions), then per round,
 * each phase in its own process (peak RSS = that phase's VmHWM):
 *   (a) raw: a bare kafkajs consumer with the job's consumer settings reads every record;
 *   (b) transactions: the job until caught up — typed Delta table, quarantine, per-account
 *       1-minute windows into Delta and PostgreSQL (local stack), exactly once.
 *
 *   npx tsx bench/transactions.bench.ts [--records 300000] [--repeat 3] [--node <path>]
 *
 * Both phases run on the repo's current Node (`.stack/node-*`) or `--node`; flags for both
 * from BENCH_NODE_OPTIONS. Prints one JSON line per phase and a summary per round.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { arg, cpuMeter, peakRssMb } from './measure.ts';

const root = join(import.meta.dirname, '..');
const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(',');

interface PhaseResult {
  phase: string;
  records: number;
  seconds: number;
  peakRssMb: number;
  cpuSeconds: number;
  mainCpuSeconds?: number;
  node: string;
  /** Window rows written, Delta and PostgreSQL each (rows written beyond the typed events, halved). */
  windows?: number;
  late?: number;
}

async function rawPhase(topic: string, expected: number): Promise<PhaseResult> {
  const { jobConsumerSettings: bronzeConsumerSettings } = await import('../src/runtime/config.ts');
  const { loadTransactionsConfig } = await import('../src/pipelines/transactions/config.ts');
  const kafka = new Kafka({ brokers, clientId: 'bench-raw', logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ ...bronzeConsumerSettings(loadTransactionsConfig(process.env)), groupId: `bench-raw-${Date.now()}` });
  const cpu = cpuMeter();
  const t0 = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let records = 0;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachBatch: ({ batch }) => {
          records += batch.messages.length;
          if (records >= expected) resolve();
          return Promise.resolve();
        },
      })
      .catch(reject);
  });
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu();
  await consumer.disconnect();
  return { phase: 'raw consume (kafkajs)', records, seconds, peakRssMb: peakRssMb(), node: process.version, ...used };
}

async function transactionsPhase(prefix: string, expected: number): Promise<PhaseResult> {
  const { startTransactions } = await import('../src/pipelines/transactions.ts');
  const { loadTransactionsConfig } = await import('../src/pipelines/transactions/config.ts');
  const { createLogger } = await import('../src/runtime/log.ts');
  const dir = await mkdtemp(join(tmpdir(), 'bench-tx-'));
  const id = `bench_${Date.now().toString(36)}`;
  const config = loadTransactionsConfig({
    ...process.env,
    KAFKA_TOPIC_PREFIX: prefix,
    TRANSACTION_TOPICS: 'transactions',
    KAFKA_CONSUMER_GROUP: id,
    PIPELINE_ID: id,
    DELTA_BASE_PATH: dir,
    HTTP_PORT: '0',
    PROGRESS_INTERVAL_SECONDS: '0',
  });
  const cpu = cpuMeter();
  const t0 = performance.now();
  const run = await startTransactions({ config, untilCaughtUp: true, http: false, log: createLogger('warn') });
  const summary = await run.done;
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu();
  const windows = (summary.recordsWritten - expected) / 2;
  await rm(dir, { recursive: true, force: true });
  return { phase: 'transactions job', records: expected, seconds, peakRssMb: peakRssMb(), node: process.version, windows, late: summary.late, ...used };
}

function currentNode(): string | undefined {
  const i = process.argv.indexOf('--node');
  if (i >= 0) return process.argv[i + 1];
  const stack = join(root, '.stack');
  const dir = existsSync(stack) ? readdirSync(stack).filter((d) => /^node-\d+/.test(d)).sort().pop() : undefined;
  const bin = dir === undefined ? undefined : join(stack, dir, 'bin', 'node');
  return bin !== undefined && existsSync(bin) ? bin : undefined;
}

function phaseInChild(args: string[]): Promise<PhaseResult> {
  const flags = (process.env.BENCH_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  const node = currentNode();
  const [cmd, pre] = node ? [node, flags] : [process.execPath, [...flags, '--import', 'tsx']];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, join(root, 'bench', 'transactions.bench.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`phase ${args.join(' ')} exited ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as PhaseResult);
    });
  });
}

async function main(): Promise<void> {
  const phaseIdx = process.argv.indexOf('--phase');
  if (phaseIdx >= 0) {
    const prefix = process.argv[process.argv.indexOf('--topic-prefix') + 1] ?? '';
    const expected = arg('expected', 1);
    const result = process.argv[phaseIdx + 1] === 'raw' ? await rawPhase(`${prefix}transactions`, expected) : await transactionsPhase(prefix, expected);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }
  const records = arg('records', 300_000);
  const repeat = arg('repeat', 3);
  const prefix = `bench-tx-${Date.now().toString(36)}.`;
  const { generateTransactions } = await import('../src/pipelines/transactions/generate.ts');
  process.stderr.write(`producing ${records} transactions to ${prefix}transactions (3 partitions)…\n`);
  // 1,000 accounts, 10 minutes of event time (~30 events per account and window at 300,000).
  const stepMs = Math.max(1, Math.round(600_000 / records));
  await generateTransactions({ brokers, count: records, topics: ['transactions'], topicPrefix: prefix, partitions: 3, accounts: 1000, stepMs });
  const common = ['--topic-prefix', prefix, '--expected', String(records)];
  for (let round = 1; round <= repeat; round++) {
    const raw = await phaseInChild(['--phase', 'raw', ...common]);
    process.stdout.write(`${JSON.stringify(raw)}\n`);
    const job = await phaseInChild(['--phase', 'transactions', ...common]);
    process.stdout.write(`${JSON.stringify(job)}\n`);
    const rate = (p: PhaseResult): number => Math.round(p.records / p.seconds);
    process.stderr.write(
      `round ${round}: raw ${rate(raw)} rec/s (${Math.round(raw.peakRssMb)} MB, ${raw.cpuSeconds.toFixed(2)} s CPU) · ` +
        `transactions ${rate(job)} rec/s (${Math.round(job.peakRssMb)} MB, ${job.cpuSeconds.toFixed(2)} s CPU, ${job.windows} windows, ${job.late} late) · ` +
        `ratio ${(rate(job) / rate(raw)).toFixed(2)}\n`,
    );
  }
}

await main();
