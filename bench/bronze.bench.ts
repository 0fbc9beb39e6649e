/**
 * Bronze pipeline benchmark: N gps_pings (~400 B) on a 6-partition topic, in one run:
 *   (a) raw consume: the same Kafka client (kafkajs) reading the topic and doing nothing else;
 *   (b) the full bronze chain (fromKafka → enrichMetadata → routeErrors with JSON + schema
 *       validation → partitionByDate → bufferTime → deltaSink on local disk → commitOffsets).
 * Each phase runs in its own process, so peak RSS (VmHWM) is that phase's alone. Both phases use
 * the bronze job's kafkajs consumer settings; the bronze phase takes the rest of its settings from
 * the environment like the job does (e.g. PARQUET_ENCODER=inline, BATCH_MAX_RECORDS).
 *
 *   npx tsx bench/bronze.bench.ts [--records 1000000] [--payload-bytes 400] [--partitions 6] [--repeat 1]
 *                                 [--link-mbps 1000 [--link-latency-ms 0.5]]
 *
 * `--link-mbps N` reads the topic over a simulated network link (bench/link.ts: N megabits/s,
 * `--link-latency-ms` one way) in both phases, as from a broker on another machine.
 *
 * `--repeat N` runs N rounds (raw, bronze, raw, bronze, …) on the same topic and reports the
 * round with the median ratio, listing every round.
 *
 * Both phases run on the same Node with the same flags: the current Node that
 * `scripts/node-current.sh` installs (what users run; it executes TypeScript natively) when it is
 * there, else tsx on this Node; `--node <path>` picks another. Node flags for both phases (e.g.
 * V8 heap settings) go in `BENCH_NODE_OPTIONS`.
 *
 * Two timings per phase: wall (start-up, group join, reading; for bronze also the final flush,
 * commit and disconnect) and steady (from the consumer joining its group to the last record
 * read, for bronze to the last batch durable in Delta), for ratios that do not depend on the
 * fixed start-up and shutdown costs of a run this short.
 *
 * One phase against a topic produced earlier (every phase uses a fresh consumer group):
 *   npx tsx bench/bronze.bench.ts --phase raw|bronze --topic-prefix <prefix> --expected N --bytes B
 *
 * Needs the local stack (`bash scripts/stack.sh up`). Prints a table and one JSON line.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { SinkAck } from '../src/types.ts';
import { arg, cpuMeter, peakRssMb } from './measure.ts';

const root = join(import.meta.dirname, '..');
const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`).split(',');

/** Peaks of `process.memoryUsage()` in MB, sampled every 50 ms while the phase runs. */
type MemoryPeaks = Partial<Record<'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers', number>>;

function sampleMemory(): () => MemoryPeaks {
  const peaks: MemoryPeaks = {};
  const sample = (): void => {
    const m = process.memoryUsage();
    for (const k of ['heapTotal', 'heapUsed', 'external', 'arrayBuffers'] as const) peaks[k] = Math.max(peaks[k] ?? 0, Math.round(m[k] / 2 ** 20));
  };
  const timer = setInterval(sample, 50);
  return () => {
    clearInterval(timer);
    sample();
    return peaks;
  };
}

interface PhaseResult {
  phase: string;
  records: number;
  bytes: number;
  seconds: number;
  peakRssMb: number;
  files?: number;
  avgFileMb?: number;
  /** Bronze: where Parquet was encoded (`worker` or `inline`). */
  encoder?: string;
  /** Seconds from the consumer joining its group to the end. */
  steadySeconds?: number;
  /** `process.version` of the phase. */
  node?: string;
  /** Peaks of V8's heap and of memory outside it (Buffers), MB. */
  memory?: MemoryPeaks;
  /** Seconds from the start of the phase to the consumer joining its group. */
  joinSeconds?: number;
  /** Bronze: seconds from the last batch durable to the end of the run (final commit, disconnect). */
  tailSeconds?: number;
  /** Bronze: seconds from the process's start (Node's time origin, module loading included) to the first batch durable. */
  firstDurableSeconds?: number;
  /** CPU seconds (user + system) of the whole process over the phase: every thread, incl. V8's. */
  cpuSeconds?: number;
  /** CPU seconds of the main (JavaScript) thread alone, where Node has `process.threadCpuUsage`. */
  mainCpuSeconds?: number;
}

/**
 * (a) Read every record of the topic with a bare kafkajs consumer, with the consumer settings
 * the bronze pipeline gives `fromKafka` (same fetch sizes and waits), so only the work differs.
 */
async function rawPhase(topic: string, expected: number): Promise<PhaseResult> {
  const { jobConsumerSettings: bronzeConsumerSettings } = await import('../src/runtime/config.ts');
  const { loadBronzeConfig } = await import('../src/pipelines/bronze/config.ts');
  const kafka = new Kafka({ brokers, clientId: 'bench-raw', logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ ...bronzeConsumerSettings(loadBronzeConfig(process.env)), groupId: `bench-raw-${Date.now()}` });
  // Timed from the connect, like the bronze phase (whose start-up also connects and subscribes).
  const memory = sampleMemory();
  const cpu = cpuMeter();
  const t0 = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let records = 0;
  let bytes = 0;
  let joinedAt: number | undefined;
  consumer.on(consumer.events.GROUP_JOIN, () => (joinedAt ??= performance.now()));
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            records += 1;
            bytes += m.value?.length ?? 0;
          }
          if (records >= expected) resolve();
          return Promise.resolve();
        },
      })
      .catch(reject);
  });
  const end = performance.now();
  const used = cpu();
  const seconds = (end - t0) / 1000;
  await consumer.disconnect();
  return { phase: 'raw consume (kafkajs)', records, bytes, seconds, steadySeconds: (end - (joinedAt ?? t0)) / 1000, joinSeconds: ((joinedAt ?? t0) - t0) / 1000, peakRssMb: peakRssMb(), memory: memory(), node: process.version, ...used };
}

/** (b) The bronze pipeline until caught up, into a fresh local folder. */
async function bronzePhase(prefix: string, expected: number, bytes: number): Promise<PhaseResult> {
  const { startBronze } = await import('../src/pipelines/bronze.ts');
  const { loadBronzeConfig } = await import('../src/pipelines/bronze/config.ts');
  const { createLogger } = await import('../src/runtime/log.ts');
  const { applyJobHeapSettings } = await import('../src/runtime/runJob.ts');
  const { PipelineMonitor } = await import('../src/runtime/monitor.ts');
  let joinedAt: number | undefined;
  let lastWriteAt: number | undefined;
  let firstWriteAt: number | undefined;
  /** Notes when the consumer first joined its group and when the last batch became durable. */
  class TimingMonitor extends PipelineMonitor {
    override kafkaRecovered(): void {
      joinedAt ??= performance.now();
      super.kafkaRecovered();
    }
    override writeSucceeded(ack: SinkAck, deadLetter?: boolean): void {
      lastWriteAt = performance.now();
      firstWriteAt ??= lastWriteAt;
      super.writeSucceeded(ack, deadLetter);
    }
  }
  const base = await mkdtemp(join(tmpdir(), 'rxlake-bench-'));
  try {
    const config = loadBronzeConfig({
      ...process.env,
      KAFKA_BOOTSTRAP_SERVERS: brokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CONSUMER_GROUP: `bench-bronze-${Date.now()}`,
      BRONZE_TOPICS: 'gps_pings',
      DELTA_BASE_PATH: base,
      HTTP_PORT: '0',
      PROGRESS_INTERVAL_SECONDS: '0',
    });
    // As `runJob` does for the job's command line (HEAP_GROWING_PERCENT).
    applyJobHeapSettings(config);
    const memory = sampleMemory();
    const cpu = cpuMeter();
    const t0 = performance.now();
    const run = await startBronze({ config, untilCaughtUp: true, log: createLogger('warn'), monitor: new TimingMonitor() });
    const summary = await run.done;
    const end = performance.now();
    const used = cpu();
    const seconds = (end - t0) / 1000;
    const records = summary.recordsWritten + summary.deadLetters;
    if (records !== expected) throw new Error(`bronze wrote ${records} records, expected ${expected}`);
    const files = await tableFiles(join(base, 'bronze_gps_pings'));
    return {
      phase: 'bronze pipeline',
      records,
      bytes,
      seconds,
      // To the last durable batch (its offsets are committed within milliseconds); not the
      // consumer's disconnect, which waits out a fetch in flight (up to maxWaitTimeInMs).
      steadySeconds: ((lastWriteAt ?? end) - (joinedAt ?? t0)) / 1000,
      joinSeconds: ((joinedAt ?? t0) - t0) / 1000,
      tailSeconds: (end - (lastWriteAt ?? end)) / 1000,
      // performance.now() counts from the process's start.
      ...(firstWriteAt === undefined ? {} : { firstDurableSeconds: firstWriteAt / 1000 }),
      peakRssMb: peakRssMb(),
      memory: memory(),
      node: process.version,
      files: files.count,
      avgFileMb: files.bytes / Math.max(1, files.count) / 2 ** 20,
      encoder: config.parquetEncoder,
      ...used,
    };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** Files of the table as delta-rs sees them (also checks it reads the table). */
async function tableFiles(uri: string): Promise<{ count: number; bytes: number }> {
  const python = process.env.RXLAKE_PYTHON ?? join(process.env.RXLAKE_STACK_DIR ?? join(root, '.stack'), 'venv', 'bin', 'python');
  const out = await run(python, [join(root, 'scripts', 'delta_verify.py'), uri, '--columns', '_kafka_offset']);
  const t = JSON.parse(out) as { files: Array<{ size: number }>; num_rows: number };
  return { count: t.files.length, bytes: t.files.reduce((a, f) => a + f.size, 0) };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

/** The Node that runs both phases: `--node`, else the repo's current Node, else tsx on this one. */
function phaseRuntime(): { cmd: string; args: string[] } {
  const flags = (process.env.BENCH_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  // A simulated link to the broker (bench/link.ts), loaded after tsx where tsx is needed.
  const link = linkSettings() === undefined ? [] : ['--import', join(root, 'bench', 'link.ts')];
  const i = process.argv.indexOf('--node');
  const chosen = i >= 0 ? process.argv[i + 1] : currentNode();
  if (chosen) return { cmd: chosen, args: [...flags, ...link] };
  return { cmd: process.execPath, args: [...flags, '--import', 'tsx', ...link] };
}

/** `--link-mbps N [--link-latency-ms L]`: both phases read the topic over a simulated link. */
function linkSettings(): { LINK_MBPS: string; LINK_LATENCY_MS: string } | undefined {
  if (!process.argv.includes('--link-mbps')) return undefined;
  return { LINK_MBPS: String(arg('link-mbps', 1000)), LINK_LATENCY_MS: String(process.argv.includes('--link-latency-ms') ? arg('link-latency-ms', 0.5) : 0.5) };
}

function currentNode(): string | undefined {
  const fromEnv = process.env.RXLAKE_NODE_CURRENT;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const stack = join(root, '.stack');
  const dir = existsSync(stack) ? readdirSync(stack).filter((d) => /^node-\d+/.test(d)).sort().pop() : undefined;
  const bin = dir === undefined ? undefined : join(stack, dir, 'bin', 'node');
  return bin !== undefined && existsSync(bin) ? bin : undefined;
}

async function phaseInChild(phase: string, extra: string[]): Promise<PhaseResult> {
  const rt = phaseRuntime();
  const out = await run(rt.cmd, [...rt.args, join(root, 'bench', 'bronze.bench.ts'), '--phase', phase, ...extra], { ...process.env, ...linkSettings() });
  const line = out.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as PhaseResult;
}

async function main(): Promise<void> {
  const phaseIdx = process.argv.indexOf('--phase');
  if (phaseIdx >= 0) {
    const phase = process.argv[phaseIdx + 1];
    const topicIdx = process.argv.indexOf('--topic-prefix');
    const prefix = process.argv[topicIdx + 1] ?? '';
    const expected = arg('expected', 1);
    const bytes = arg('bytes', 1);
    const result = phase === 'raw' ? await rawPhase(`${prefix}gps_pings`, expected) : await bronzePhase(prefix, expected, bytes);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }

  const records = arg('records', 1_000_000);
  const payloadBytes = arg('payload-bytes', 400);
  const partitions = arg('partitions', 6);
  const prefix = `bench-${Date.now().toString(36)}.`;
  const { generateEvents } = await import('../src/pipelines/rideshare/generate.ts');
  process.stderr.write(`producing ${records} gps_pings (~${payloadBytes} B) to ${prefix}gps_pings (${partitions} partitions)…\n`);
  const manifest = await generateEvents({
    brokers,
    topicPrefix: prefix,
    topics: ['gps_pings'],
    count: records,
    partitions,
    payloadBytes,
    batchSize: 2000,
    onProgress: (p) => process.stderr.write(`  produced ${p.produced} (${Math.round(p.eventsPerSecond)} ev/s)\n`),
    progressIntervalMs: 5000,
  });
  const bytes = manifest.totals.bytes;
  const common = ['--topic-prefix', prefix, '--expected', String(records), '--bytes', String(bytes)];
  // Rounds alternate the phases, so slow spells of a noisy machine hit both; the median round
  // (by ratio) is reported, every round is listed.
  const repeat = arg('repeat', 1);
  const rounds: Array<{ raw: PhaseResult; bronze: PhaseResult }> = [];
  for (let i = 1; i <= repeat; i++) {
    const of = repeat > 1 ? ` (round ${i}/${repeat})` : '';
    process.stderr.write(`phase (a): raw consume${of}…\n`);
    const r = await phaseInChild('raw', common);
    process.stderr.write(`phase (b): bronze pipeline${of}…\n`);
    const b = await phaseInChild('bronze', common);
    rounds.push({ raw: r, bronze: b });
  }
  const roundRatio = (x: { raw: PhaseResult; bronze: PhaseResult }): number => x.raw.seconds / x.bronze.seconds;
  if (repeat > 1) {
    for (const [i, x] of rounds.entries()) {
      process.stdout.write(
        `round ${i + 1}: raw ${Math.round(x.raw.records / x.raw.seconds)} rec/s ${Math.round(x.raw.peakRssMb)} MB, ` +
          `bronze ${Math.round(x.bronze.records / x.bronze.seconds)} rec/s ${Math.round(x.bronze.peakRssMb)} MB, ratio ${roundRatio(x).toFixed(2)}\n`,
      );
    }
  }
  const median = [...rounds].sort((x, y) => roundRatio(x) - roundRatio(y))[Math.floor((rounds.length - 1) / 2)] ?? rounds[0];
  if (!median) throw new Error('no round ran');
  const { raw, bronze } = median;

  const rate = (r: PhaseResult): number => r.records / r.seconds;
  const mbs = (r: PhaseResult): number => r.bytes / 2 ** 20 / r.seconds;
  const rows = [raw, bronze].map((r) => ({
    phase: r.encoder === undefined ? r.phase : `${r.phase} (${r.encoder})`,
    'records/s': Math.round(rate(r)),
    'MB/s': Number(mbs(r).toFixed(1)),
    seconds: Number(r.seconds.toFixed(1)),
    'steady rec/s': r.steadySeconds === undefined ? '' : Math.round(r.records / r.steadySeconds),
    'peak RSS MB': Math.round(r.peakRssMb),
    'start → 1st durable s': r.firstDurableSeconds === undefined ? '' : Number(r.firstDurableSeconds.toFixed(2)),
    files: r.files ?? '',
    'avg file MB': r.avgFileMb === undefined ? '' : Number(r.avgFileMb.toFixed(1)),
    'CPU s/1M': r.cpuSeconds === undefined ? '' : Number(((r.cpuSeconds * 1e6) / r.records).toFixed(2)),
    'main thread CPU s/1M': r.mainCpuSeconds === undefined ? '' : Number(((r.mainCpuSeconds * 1e6) / r.records).toFixed(2)),
  }));
  console.table(rows);
  const ratio = rate(bronze) / rate(raw);
  const steadyRatio = raw.steadySeconds && bronze.steadySeconds ? raw.steadySeconds / bronze.steadySeconds : undefined;
  const rt = phaseRuntime();
  console.log(`runtime: node ${raw.node ?? '?'} ${rt.args.join(' ')}`.trimEnd());
  const link = linkSettings();
  if (link) console.log(`network: simulated link to the broker, ${link.LINK_MBPS} Mbit/s, ${link.LINK_LATENCY_MS} ms one way`);
  console.log(`ratio bronze/raw = ${ratio.toFixed(2)} wall, ${steadyRatio?.toFixed(2) ?? '?'} steady (target >= 0.7); bronze peak RSS ${Math.round(bronze.peakRssMb)} MB (target <= 250)`);
  if (raw.cpuSeconds !== undefined && bronze.cpuSeconds !== undefined) {
    // Even spread perfectly over every core (and with the broker taking none), the bronze phase
    // needs at least its CPU time divided by the cores: the highest ratio this machine allows.
    const cores = availableParallelism();
    const ceiling = raw.seconds / (bronze.cpuSeconds / cores);
    console.log(
      `CPU per record: bronze ${(bronze.cpuSeconds / raw.cpuSeconds).toFixed(1)}× the raw consumer's ` +
        `(${bronze.cpuSeconds.toFixed(1)} s vs ${raw.cpuSeconds.toFixed(1)} s, all threads); on ${cores} cores the ratio cannot exceed ${ceiling.toFixed(2)}`,
    );
  }
  console.log(JSON.stringify({ records, payloadBytes, partitions, raw, bronze, ratio, steadyRatio, rounds: rounds.length }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
