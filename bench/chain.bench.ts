/**
 * The bronze chain without Kafka: what one topic's chain (enrichMetadata → routeErrors with JSON
 * + schema validation → partitionByDate → bufferTime → deltaSink on local disk) costs per
 * record on its own, fed records shaped exactly as `fromKafka` emits them (payloads are slices
 * of one buffer per fetch-sized chunk, like kafkajs hands them over).
 *
 *   npx tsx bench/chain.bench.ts [--records 1000000] [--payload-bytes 400] [--repeat 3]
 *
 * A Kafka-free, far less noisy measure than bench/bronze.bench.ts for changes to the chain
 * itself: records/s, CPU seconds per 1M records (all threads and main thread) and peak RSS.
 * The feeder keeps at most MAX_IN_FLIGHT_RECORDS records unacknowledged (default 100,000, as
 * the job) and emits 2,500-record chunks with an event-loop turn between them (as fetches
 * arrive); BATCH_MAX_RECORDS etc. are read from the environment like the job reads them.
 * Each round runs in this process after one warm-up round of 100,000 records. Peak RSS includes
 * the ~420 MB of prepared payload bytes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject, lastValueFrom, tap } from 'rxjs';
import { bronzeTopicPipeline } from '../src/pipelines/bronze.ts';
import { openBronzeTables } from '../src/pipelines/bronze/tables.ts';
import { loadBronzeConfig } from '../src/pipelines/bronze/config.ts';
import { createLogger } from '../src/runtime/log.ts';
import { PipelineMonitor } from '../src/runtime/monitor.ts';
import { localStorage } from '../src/sinks/delta/storage.ts';
import { createEventGenerator, padJson } from '../src/pipelines/rideshare/events.ts';
import type { KafkaRecord } from '../src/types.ts';
import { arg, cpuMeter, peakRssMb } from './measure.ts';

const CHUNK = 2_500;
const PARTITIONS = 6;

/** One fetch-sized chunk of one partition: keys and values back to back in one buffer. */
interface Chunk {
  readonly partition: number;
  readonly baseOffset: bigint;
  readonly bytes: Buffer;
  /** Key and value length of each record, alternating. */
  readonly lengths: Int32Array;
}

/**
 * `n` gps_pings in chunks. Only bytes are kept (outside the V8 heap); the record objects are
 * made per chunk while the round runs, as the source makes them, so the heap holds only what
 * the chain itself keeps.
 */
function makeChunks(n: number, payloadBytes: number): Chunk[] {
  const gen = createEventGenerator({ seed: 7 });
  const out: Chunk[] = [];
  const offsets = new Array<bigint>(PARTITIONS).fill(0n);
  for (let start = 0; start < n; start += CHUNK) {
    const parts: Buffer[] = [];
    const count = Math.min(CHUNK, n - start);
    const lengths = new Int32Array(count * 2);
    for (let i = 0; i < count; i++) {
      const e = gen.next('gps_pings');
      const key = Buffer.from(e.key);
      const value = Buffer.from(padJson(JSON.stringify(e.value), payloadBytes));
      parts.push(key, value);
      lengths[2 * i] = key.length;
      lengths[2 * i + 1] = value.length;
    }
    const partition = (start / CHUNK) % PARTITIONS;
    const baseOffset = offsets[partition] as bigint;
    offsets[partition] = baseOffset + BigInt(count);
    out.push({ partition, baseOffset, bytes: Buffer.concat(parts), lengths });
  }
  return out;
}

/** Emits a chunk's records as `fromKafka` emits them. */
function emitChunk(chunk: Chunk, topic: string, into: Subject<KafkaRecord>): number {
  const { bytes, lengths, partition } = chunk;
  const timestamp = Date.now();
  let at = 0;
  let offset = chunk.baseOffset;
  const count = lengths.length / 2;
  for (let i = 0; i < count; i++) {
    const k = lengths[2 * i] as number;
    const v = lengths[2 * i + 1] as number;
    const key = bytes.subarray(at, at + k);
    const value = bytes.subarray(at + k, at + k + v);
    at += k + v;
    into.next({ topic, partition, offset, timestamp, key, value, headers: {}, size: k + v });
    offset += 1n;
  }
  return count;
}

interface Round {
  records: number;
  seconds: number;
  cpuSeconds: number;
  mainCpuSeconds: number | undefined;
  files: number;
}

async function runRound(chunks: readonly Chunk[], maxInFlight: number): Promise<Round> {
  const total = chunks.reduce((a, c) => a + c.lengths.length / 2, 0);
  const base = await mkdtemp(join(tmpdir(), 'rxlake-chain-'));
  try {
    const config = loadBronzeConfig({ ...process.env, BRONZE_TOPICS: 'gps_pings', DELTA_BASE_PATH: base, HTTP_PORT: '0' });
    const log = createLogger('warn');
    const [tables] = await openBronzeTables(config, localStorage(base), log);
    if (!tables) throw new Error('no tables');
    const monitor = new PipelineMonitor();
    const input = new Subject<KafkaRecord>();
    let acked = 0;
    let files = 0;
    let wake: (() => void) | undefined;
    const done = lastValueFrom(
      input.pipe(
        bronzeTopicPipeline(tables, config, monitor),
        tap((ack) => {
          acked += ack.refs.length;
          if (ack.version !== null) files += 1;
          wake?.();
        }),
      ),
      { defaultValue: undefined },
    );
    const cpu = cpuMeter();
    const t0 = performance.now();
    let emitted = 0;
    for (const chunk of chunks) {
      while (emitted - acked >= maxInFlight) await new Promise<void>((resolve) => (wake = resolve));
      emitted += emitChunk(chunk, 'gps_pings', input);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    input.complete();
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const used = cpu();
    if (acked !== total) throw new Error(`acknowledged ${acked} of ${total} records`);
    return { records: total, seconds, cpuSeconds: used.cpuSeconds, mainCpuSeconds: used.mainCpuSeconds, files };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const n = arg('records', 1_000_000);
  const payloadBytes = arg('payload-bytes', 400);
  const repeat = arg('repeat', 3);
  const maxInFlight = Number(process.env.MAX_IN_FLIGHT_RECORDS ?? 100_000);
  process.stderr.write(`building ${n} gps_pings records (~${payloadBytes} B)…\n`);
  const chunks = makeChunks(n, payloadBytes);
  let bytes = 0;
  for (const c of chunks) for (let i = 1; i < c.lengths.length; i += 2) bytes += c.lengths[i] as number;
  process.stderr.write('warm-up round (100,000 records)…\n');
  await runRound(chunks.slice(0, 100_000 / CHUNK), maxInFlight);
  const rounds: Round[] = [];
  for (let i = 1; i <= repeat; i++) {
    const r = await runRound(chunks, maxInFlight);
    rounds.push(r);
    const per1M = (s: number | undefined): string => (s === undefined ? '?' : ((s * 1e6) / r.records).toFixed(2));
    console.log(
      `round ${i}: ${Math.round(r.records / r.seconds)} records/s, ${(bytes / 2 ** 20 / r.seconds).toFixed(1)} MB/s, ` +
        `CPU ${per1M(r.cpuSeconds)} s per 1M (main thread ${per1M(r.mainCpuSeconds)}), ${r.files} files`,
    );
  }
  const median = [...rounds].sort((a, b) => a.seconds - b.seconds)[Math.floor((rounds.length - 1) / 2)] as Round;
  console.log(
    JSON.stringify({
      records: n,
      payloadBytes,
      recordsPerSecond: Math.round(median.records / median.seconds),
      cpuSecondsPer1M: Number(((median.cpuSeconds * 1e6) / median.records).toFixed(3)),
      mainCpuSecondsPer1M: median.mainCpuSeconds === undefined ? null : Number(((median.mainCpuSeconds * 1e6) / median.records).toFixed(3)),
      files: median.files,
      peakRssMb: Math.round(peakRssMb()),
      node: process.version,
    }),
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
