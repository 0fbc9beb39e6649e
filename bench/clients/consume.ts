/**
 * Raw consume with one Kafka client: read a topic from the earliest offset to the end through a
 * consumer group, discard every record (count it and its bytes), commit the last offset of each
 * partition explicitly at the end (as the job commits through its group), leave the group, exit.
 * What a client costs on its own, before any work on the records.
 *
 *   node [--import tsx] bench/clients/consume.ts --client <name> --topic <topic> --expected <N>
 *        [--group <id>] [--confluent-dir <folder holding node_modules/@confluentinc/kafka-javascript>]
 *        [--platformatic-dir <folder holding another node_modules/@platformatic/kafka>]
 *
 * Clients:
 *   kafkajs              kafkajs `eachBatch` with the job's settings (autoCommit off, batches not
 *                        auto-resolved, the job's fetch sizes and waits)
 *   platformatic         @platformatic/kafka `consumer.consume()` stream (committed offsets, else
 *                        earliest; autocommit off), the same fetch sizes and waits
 *   confluent            @confluentinc/kafka-javascript, its KafkaJS-style API, `eachBatch`
 *   confluent-rdkafka    @confluentinc/kafka-javascript, its librdkafka-style API, `consume(n)`
 *
 * Knobs for trying librdkafka settings (confluent clients): `BENCH_RDKAFKA_DEFAULTS=1` drops the
 * job's fetch settings (librdkafka's defaults), `BENCH_RDKAFKA_CONFIG='{"key": value}'` adds
 * settings, `BENCH_CONFLUENT_MAX_BATCH` sets the KafkaJS-style API's batch size (default -1: all
 * that librdkafka has ready; the library's own default is 32).
 *
 * Prints one JSON line: records, bytes, seconds from the client's creation to the last record
 * (`seconds`), to the first record (`firstRecordSeconds`), CPU seconds of the whole process
 * over that span (every thread, librdkafka's included) and peak RSS (VmHWM).
 * Brokers: `KAFKA_BOOTSTRAP_SERVERS` (default 127.0.0.1:9092).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type * as PlatformaticModule from '@platformatic/kafka';
import { allocationMeter, cpuMeter, peakRssMb } from '../measure.ts';

const { values: opts } = parseArgs({
  options: {
    client: { type: 'string' },
    topic: { type: 'string' },
    expected: { type: 'string' },
    group: { type: 'string' },
    'confluent-dir': { type: 'string' },
    'platformatic-dir': { type: 'string' },
  },
});
const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(',');
const topic = opts.topic ?? '';
const expected = Number(opts.expected);
const groupId = opts.group ?? `bench-client-${opts.client ?? ''}-${Date.now()}`;
if (!topic || !Number.isInteger(expected) || expected <= 0) {
  throw new Error('usage: consume.ts --client <kafkajs|wire|platformatic|confluent|confluent-rdkafka> --topic <topic> --expected <N> [--group <id>]');
}

/** The job's fetch settings (env as the bronze job reads it), shared by every client. */
interface FetchSettings {
  maxWaitMs: number;
  maxBytes: number;
  maxBytesPerPartition: number;
  sessionTimeoutMs: number;
  metadataMaxAgeMs: number;
}

async function jobFetchSettings(): Promise<FetchSettings> {
  const { jobConsumerSettings } = await import('../../src/runtime/config.ts');
  const { loadBronzeConfig } = await import('../../src/pipelines/bronze/config.ts');
  const s = jobConsumerSettings(loadBronzeConfig(process.env));
  return { maxWaitMs: s.maxWaitTimeInMs, maxBytes: s.maxBytes, maxBytesPerPartition: s.maxBytesPerPartition, sessionTimeoutMs: s.sessionTimeout, metadataMaxAgeMs: s.metadataMaxAge };
}

/** Counts records per partition; resolves `done` at the expected count. */
class Tally {
  records = 0;
  bytes = 0;
  firstAt: number | undefined;
  lastAt = 0;
  /** Next offset to commit per partition (last offset read + 1). */
  readonly next = new Map<number, string>();
  readonly done: Promise<void>;
  private finish!: () => void;
  readonly expected: number;
  constructor(expected: number) {
    this.expected = expected;
    this.done = new Promise<void>((resolve) => (this.finish = resolve));
  }
  /** Records delivered a second time (offsets below the partition's next one); not counted. */
  redelivered = 0;
  /**
   * Adds `n` consecutive records of partition `partition`, offsets `first`..`last`, of `bytes`
   * bytes; a run starting below the partition's next offset is a redelivery and is not counted.
   */
  add(partition: number, n: number, bytes: number, first: bigint | string | number, last: bigint | string | number): void {
    if (n === 0) return;
    const next = this.next.get(partition);
    if (next !== undefined && BigInt(first) < BigInt(next)) {
      this.redelivered += n;
      return;
    }
    this.firstAt ??= performance.now();
    this.records += n;
    this.bytes += bytes;
    this.next.set(partition, (BigInt(last) + 1n).toString());
    if (this.records >= this.expected && this.lastAt === 0) {
      this.lastAt = performance.now();
      this.finish();
    }
  }
}

type Result = { client: string; version: string; commits: number };

function packageVersion(dir: string, name: string): string {
  return (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

async function kafkajs(tally: Tally, s: FetchSettings): Promise<Result> {
  const { Kafka, logLevel } = await import('kafkajs');
  const consumer = new Kafka({ brokers, clientId: 'bench-kafkajs', logLevel: logLevel.ERROR }).consumer({
    groupId,
    maxWaitTimeInMs: s.maxWaitMs,
    maxBytes: s.maxBytes,
    maxBytesPerPartition: s.maxBytesPerPartition,
    sessionTimeout: s.sessionTimeoutMs,
    heartbeatInterval: Math.max(500, Math.floor(s.sessionTimeoutMs / 10)),
    metadataMaxAge: s.metadataMaxAgeMs,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    // As the job: offsets resolved by hand (unresolved ones are fetched again), committed explicitly.
    eachBatch: (payload) => {
      const { batch } = payload;
      const { messages } = batch;
      let bytes = 0;
      for (let i = 0; i < messages.length; i++) bytes += messages[i]?.value?.length ?? 0;
      tally.add(batch.partition, messages.length, bytes, batch.firstOffset() ?? 0, batch.lastOffset());
      payload.resolveOffset(batch.lastOffset());
      return Promise.resolve();
    },
  });
  await tally.done;
  const offsets = [...tally.next].map(([partition, offset]) => ({ topic, partition, offset }));
  await consumer.commitOffsets(offsets);
  await consumer.disconnect();
  return { client: 'kafkajs', version: packageVersion(process.cwd(), 'kafkajs'), commits: offsets.length };
}

async function platformatic(tally: Tally, s: FetchSettings): Promise<Result> {
  // `--platformatic-dir`: another install (e.g. the 1.x line, which runs on Node 20).
  const dir = opts['platformatic-dir'] ?? process.cwd();
  const url = pathToFileURL(createRequire(join(dir, 'package.json')).resolve('@platformatic/kafka')).href;
  const { Consumer, MessagesStreamModes, MessagesStreamFallbackModes } = (await import(url)) as typeof PlatformaticModule;
  const consumer = new Consumer({
    groupId,
    clientId: 'bench-platformatic',
    bootstrapBrokers: brokers,
    sessionTimeout: s.sessionTimeoutMs,
    heartbeatInterval: Math.max(500, Math.floor(s.sessionTimeoutMs / 10)),
    metadataMaxAge: s.metadataMaxAgeMs,
  });
  const stream = await consumer.consume({
    topics: [topic],
    mode: MessagesStreamModes.COMMITTED,
    fallbackMode: MessagesStreamFallbackModes.EARLIEST,
    autocommit: false,
    maxWaitTime: s.maxWaitMs,
    maxBytes: s.maxBytes,
    maxBytesPerPartition: s.maxBytesPerPartition,
  });
  const leaderEpochs = new Map<number, number>();
  stream.on('data', (m) => {
    leaderEpochs.set(m.partition, m.leaderEpoch);
    tally.add(m.partition, 1, m.value.length, m.offset, m.offset);
  });
  const failed = new Promise<never>((_, reject) => stream.once('error', reject));
  await Promise.race([tally.done, failed]);
  stream.pause();
  const offsets = [...tally.next].map(([partition, offset]) => ({ topic, partition, offset: BigInt(offset), leaderEpoch: leaderEpochs.get(partition) ?? -1 }));
  await consumer.commit({ offsets });
  await stream.close();
  await consumer.close();
  return { client: 'platformatic', version: packageVersion(dir, '@platformatic/kafka'), commits: offsets.length };
}

/** The parts of @confluentinc/kafka-javascript used here (it is built outside node_modules). */
interface ConfluentModule {
  librdkafkaVersion: string;
  KafkaJS: {
    Kafka: new (config: Record<string, unknown>) => {
      consumer(config: Record<string, unknown>): {
        connect(): Promise<void>;
        subscribe(s: { topics: string[] }): Promise<void>;
        run(r: {
          eachBatch: (p: { batch: { partition: number; messages: Array<{ value: Buffer | null; offset: string }> }; resolveOffset: (offset: string) => void }) => Promise<void>;
          eachBatchAutoResolve?: boolean;
        }): Promise<void>;
        commitOffsets(o: Array<{ topic: string; partition: number; offset: string }>): Promise<void>;
        disconnect(): Promise<void>;
      };
    };
  };
  KafkaConsumer: new (config: Record<string, unknown>, topicConfig: Record<string, unknown>) => RdConsumer;
}
interface RdMessage {
  value: Buffer | null;
  partition: number;
  offset: number;
}
interface RdConsumer {
  connect(options: Record<string, unknown>, cb: (err: Error | null) => void): void;
  subscribe(topics: string[]): void;
  consume(n: number, cb: (err: Error | null, messages: RdMessage[]) => void): void;
  commitSync(o: Array<{ topic: string; partition: number; offset: number }>): void;
  disconnect(cb: (err: Error | null) => void): void;
  setDefaultConsumeTimeout(ms: number): void;
  on(event: 'event.error', cb: (err: Error) => void): void;
}

function loadConfluent(): { mod: ConfluentModule; version: string } {
  const dir = opts['confluent-dir'] ?? process.env.BENCH_CONFLUENT_DIR;
  if (!dir) throw new Error('the confluent clients need --confluent-dir (bench/clients/build-confluent.sh prints it)');
  const req = createRequire(join(dir, 'package.json'));
  return { mod: req('@confluentinc/kafka-javascript') as ConfluentModule, version: packageVersion(dir, '@confluentinc/kafka-javascript') };
}

/** librdkafka settings equal to the job's fetch settings. */
function rdkafkaFetchConfig(s: FetchSettings): Record<string, unknown> {
  const extra = JSON.parse(process.env.BENCH_RDKAFKA_CONFIG ?? '{}') as Record<string, unknown>;
  if (process.env.BENCH_RDKAFKA_DEFAULTS === '1') return { 'session.timeout.ms': s.sessionTimeoutMs, ...extra };
  return {
    'fetch.wait.max.ms': s.maxWaitMs,
    'fetch.max.bytes': s.maxBytes,
    'max.partition.fetch.bytes': s.maxBytesPerPartition,
    'session.timeout.ms': s.sessionTimeoutMs,
    'topic.metadata.refresh.interval.ms': s.metadataMaxAgeMs,
    ...extra,
  };
}

async function confluentKafkaJs(tally: Tally, s: FetchSettings): Promise<Result> {
  const { mod, version } = loadConfluent();
  const kafka = new mod.KafkaJS.Kafka({ kafkaJS: { brokers, clientId: 'bench-confluent', logLevel: 1 } });
  const consumer = kafka.consumer({
    kafkaJS: { groupId, fromBeginning: true, autoCommit: false },
    ...rdkafkaFetchConfig(s),
    // Hand eachBatch every record librdkafka has ready instead of 32 at a time (its default).
    'js.consumer.max.batch.size': Number(process.env.BENCH_CONFLUENT_MAX_BATCH ?? -1),
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: ({ batch, resolveOffset }) => {
      const { messages } = batch;
      let bytes = 0;
      for (let i = 0; i < messages.length; i++) bytes += messages[i]?.value?.length ?? 0;
      const first = messages[0];
      const last = messages[messages.length - 1];
      if (first && last) {
        tally.add(batch.partition, messages.length, bytes, first.offset, last.offset);
        resolveOffset(last.offset);
      }
      return Promise.resolve();
    },
  });
  await tally.done;
  const offsets = [...tally.next].map(([partition, offset]) => ({ topic, partition, offset }));
  await consumer.commitOffsets(offsets);
  await consumer.disconnect();
  return { client: 'confluent', version: `${version} (librdkafka ${mod.librdkafkaVersion})`, commits: offsets.length };
}

async function confluentRdkafka(tally: Tally, s: FetchSettings): Promise<Result> {
  const { mod, version } = loadConfluent();
  const consumer = new mod.KafkaConsumer(
    { 'bootstrap.servers': brokers.join(','), 'group.id': groupId, 'client.id': 'bench-confluent-rdkafka', 'enable.auto.commit': false, ...rdkafkaFetchConfig(s) },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) => consumer.connect({}, (err) => (err ? reject(err) : resolve())));
  consumer.subscribe([topic]);
  consumer.setDefaultConsumeTimeout(s.maxWaitMs);
  let stopped = false;
  const loop = (): void => {
    consumer.consume(10_000, (err, messages) => {
      if (stopped) return;
      if (err) throw err;
      // Partitions come interleaved; tally runs of the same partition.
      let i = 0;
      while (i < messages.length) {
        const p = messages[i]?.partition ?? 0;
        let bytes = 0;
        let j = i;
        while (j < messages.length && messages[j]?.partition === p) bytes += messages[j++]?.value?.length ?? 0;
        tally.add(p, j - i, bytes, messages[i]?.offset ?? 0, messages[j - 1]?.offset ?? 0);
        i = j;
      }
      setImmediate(loop);
    });
  };
  loop();
  await tally.done;
  stopped = true;
  const offsets = [...tally.next].map(([partition, offset]) => ({ topic, partition, offset: Number(offset) }));
  consumer.commitSync(offsets);
  await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  return { client: 'confluent-rdkafka', version: `${version} (librdkafka ${mod.librdkafkaVersion})`, commits: offsets.length };
}

/**
 * The library's wire client (`KAFKA_CLIENT=wire`: kafkajs keeps the group, records fetched and
 * decoded at the wire level) through the `KafkaClient` seam the source uses, without the source.
 */
async function wire(tally: Tally, s: FetchSettings): Promise<Result> {
  const { wireClient } = await import('../../src/sources/kafka/wire/wireClient.ts');
  const client = wireClient()(
    {
      brokers,
      clientId: 'bench-wire',
      groupId,
      logLevel: 'error',
      consumer: { maxWaitTimeInMs: s.maxWaitMs, maxBytes: s.maxBytes, maxBytesPerPartition: s.maxBytesPerPartition, sessionTimeout: s.sessionTimeoutMs, heartbeatInterval: Math.max(500, Math.floor(s.sessionTimeoutMs / 10)), metadataMaxAge: s.metadataMaxAgeMs },
      connection: {},
    },
    { joined: () => undefined, crashed: ({ error }) => console.error(error), stopped: () => undefined, answered: () => undefined, committed: () => undefined, skipped: () => undefined, log: (l) => (l.level === 'error' ? console.error(l.message) : undefined) },
  );
  await client.connect();
  await client.subscribe([topic], true);
  await client.run((batch) => {
    const { messages } = batch;
    let bytes = 0;
    for (let i = 0; i < messages.length; i++) bytes += messages[i]?.value?.length ?? 0;
    tally.add(batch.partition, messages.length, bytes, messages[0]?.offset ?? 0, batch.lastOffset);
    return Promise.resolve();
  });
  await tally.done;
  const offsets = [...tally.next].map(([partition, offset]) => ({ topic, partition, offset: BigInt(offset) }));
  await client.commit(offsets);
  await client.disconnect();
  return { client: 'wire', version: `kafkajs ${packageVersion(process.cwd(), 'kafkajs')} group, Fetch v11`, commits: offsets.length };
}

const clients: Record<string, (tally: Tally, s: FetchSettings) => Promise<Result>> = {
  kafkajs,
  wire,
  platformatic,
  confluent: confluentKafkaJs,
  'confluent-rdkafka': confluentRdkafka,
};

async function main(): Promise<void> {
  const run = clients[opts.client ?? ''];
  if (!run) throw new Error(`--client must be one of ${Object.keys(clients).join(', ')}`);
  const settings = await jobFetchSettings();
  const tally = new Tally(expected);
  const cpu = cpuMeter();
  const allocations = allocationMeter();
  const t0 = performance.now();
  let cpuAtLast: ReturnType<ReturnType<typeof cpuMeter>> | undefined;
  let allocatedAtLast: ReturnType<ReturnType<typeof allocationMeter>>;
  void tally.done.then(() => {
    cpuAtLast = cpu();
    allocatedAtLast = allocations();
  });
  const result = await run(tally, settings);
  const used = cpuAtLast ?? cpu();
  const teardownSeconds = (performance.now() - tally.lastAt) / 1000;
  process.stdout.write(
    `${JSON.stringify({
      ...result,
      records: tally.records,
      redelivered: tally.redelivered,
      bytes: tally.bytes,
      seconds: (tally.lastAt - t0) / 1000,
      firstRecordSeconds: ((tally.firstAt ?? t0) - t0) / 1000,
      teardownSeconds,
      node: process.version,
      peakRssMb: peakRssMb(),
      ...used,
      // Heap bytes allocated per record, from the start to the last record (the client's path).
      ...(allocatedAtLast === undefined ? {} : { heapBytesPerRecord: Math.round((allocatedAtLast.allocatedMb * 2 ** 20) / Math.max(1, tally.records)), gcs: allocatedAtLast.gcs }),
    })}\n`,
  );
  // A client that keeps timers or sockets after its disconnect must not hold the process.
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
