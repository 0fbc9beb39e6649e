/**
 * Reading a topic at the Kafka wire level: what reading costs in Node without a Kafka client.
 * Fetch responses are decoded straight from the buffers they arrive in; record keys and values
 * are `Uint8Array` views of those buffers, offsets and timestamps are numbers.
 *
 *   node [--import tsx] bench/clients/wire.ts --topic <topic> [--mode views|objects]
 *        [--expected <N>] [--isolation read_committed|read_uncommitted] [--buffers reuse|fresh]
 *
 * Like `kcat -C -e`: no consumer group, every partition of the topic assigned statically, read
 * from its earliest offset to the end offset it had at the start (the high-water mark, or the
 * last stable offset under read_committed), then exit. One TCP connection per partition leader;
 * ApiVersions v0, Metadata v7, ListOffsets v4 (earliest and latest), then Fetch v11 with the
 * job's fetch sizes and wait (as bench/clients/consume.ts). Fetches are pipelined: as soon as a
 * response is in, its batch headers give every partition's next offset, the next Fetch goes out,
 * and the records are decoded while the broker prepares it.
 *
 * Modes:
 *   views    counts records and sums their value lengths while walking the records' varints; no
 *            object per record (the floor)
 *   objects  one small object per record ({ offset, timestamp, key, value, headers }: numbers and
 *            views), pushed into an array per batch, as the source's `ClientMessage` would cost
 *
 * Buffers: `--buffers reuse` (the default in views mode) takes a response's buffer back for the
 * next responses once its records are decoded; `--buffers fresh` (the default in objects mode)
 * allocates every response afresh, as a client must when the views it hands out outlive the
 * fetch. Objects mode with `reuse` is a measurement only: this command drops the records at once.
 *
 * RecordBatch v2 (magic 2) only. Control batches (transaction markers) are skipped; under
 * read_committed, aborted transactions' batches are skipped too. A batch cut by the fetch's size
 * limits is read again by the next fetch. Compression: none and gzip (node:zlib), and zstd where
 * node:zlib has it (Node 22.15+); snappy and lz4 batches fail with an error naming the codec.
 * CRCs are not checked (librdkafka's default, `check.crcs=false`).
 *
 * Prints one JSON line in the shape of consume.ts's: records, bytes, seconds from the start to
 * the last record (`seconds`), to the first record (`firstRecordSeconds`), CPU seconds of the
 * whole process over that span and peak RSS (VmHWM); plus the topic's offset ranges, control
 * and aborted records. Exits 1 when the records read, control and aborted records do not add up
 * to the offset ranges, or do not match `--expected`.
 * Brokers: `KAFKA_BOOTSTRAP_SERVERS` (default 127.0.0.1:9092).
 */
import { resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClientMessage } from '../../src/sources/kafka/client.ts';
import { API_FETCH, Connection, EARLIEST, KafkaBrokerError, LATEST, checkVersions, fetchMetadata, listOffsets } from '../../src/sources/kafka/wire/protocol.ts';
import { countBatches, decodeBatches, fetchRequest, parseFetch } from '../../src/sources/kafka/wire/records.ts';
import type { DecodeCounts } from '../../src/sources/kafka/wire/records.ts';
import { cpuMeter, peakRssMb } from '../measure.ts';

/** A record as the objects mode builds it: the library's wire client's `ClientMessage`. */
export type WireRecord = ClientMessage & { readonly offset: number; readonly timestamp: number };

/** Counters of one read. */
export interface WireCounts {
  /** Data records read (control records and aborted transactions' records not included). */
  records: number;
  /** Sum of the records' value lengths. */
  bytes: number;
  controlRecords: number;
  abortedRecords: number;
  batches: number;
  /** Batches decompressed (gzip, snappy, zstd). */
  compressedBatches: number;
  /** Partitions' parts of responses that ended in a batch cut by the size limits. */
  cutBatches: number;
  fetches: number;
  /** Responses' bytes, as received. */
  fetchedBytes: number;
  firstRecordAt: number | undefined;
  lastRecordAt: number;
}

/** A partition's read state. */
interface PartitionState {
  readonly partition: number;
  readonly low: number;
  /** The end offset at the start: read up to it (exclusive). */
  readonly end: number;
  next: number;
  records: number;
}

/** What `readTopic` needs. */
export interface ReadTopicOptions {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly mode: 'views' | 'objects';
  readonly maxWaitMs: number;
  readonly maxBytes: number;
  readonly maxBytesPerPartition: number;
  /** Default read_committed (the job's, kafkajs's default). */
  readonly isolation?: 'read_committed' | 'read_uncommitted';
  readonly clientId?: string;
  /** Objects mode: each partition's records of a response, in offset order. */
  readonly onRecords?: (partition: number, records: WireRecord[]) => void;
  /**
   * Reuse a response's buffer once its records are decoded (default: in views mode only). Only
   * when nothing keeps a view of the records past `onRecords`.
   */
  readonly reuseBuffers?: boolean;
}

/** What `readTopic` read. */
export interface ReadTopicResult extends WireCounts {
  readonly partitions: ReadonlyArray<{ partition: number; low: number; end: number; records: number }>;
  readonly leaders: number;
}

/**
 * Reads every partition of a topic from its earliest offset to its end offset at the start, one
 * connection per leader, pipelined Fetch v11; resolves when every partition is read.
 */
export async function readTopic(o: ReadTopicOptions): Promise<ReadTopicResult> {
  const options = { clientId: o.clientId ?? 'rxlake-bench-wire' };
  const readCommitted = o.isolation !== 'read_uncommitted';
  const counts: WireCounts = { records: 0, bytes: 0, controlRecords: 0, abortedRecords: 0, batches: 0, compressedBatches: 0, cutBatches: 0, fetches: 0, fetchedBytes: 0, firstRecordAt: undefined, lastRecordAt: 0 };
  const bootstrap = await Connection.open(o.brokers[0] ?? '127.0.0.1:9092', options);
  const conns = new Map<string, Connection>([[bootstrap.address, bootstrap]]);
  try {
    await checkVersions(bootstrap);
    const md = await fetchMetadata(bootstrap, [o.topic]);
    const leaders = md.leaders.get(o.topic);
    if (leaders === undefined || leaders.size === 0) throw new Error(`the broker knows no topic ${o.topic} (or none of its partitions has a leader): check --topic and KAFKA_BOOTSTRAP_SERVERS`);
    const byLeader = new Map<number, number[]>();
    for (const [p, leader] of leaders) byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    const states: PartitionState[] = [];
    const ready: Array<{ conn: Connection; parts: PartitionState[] }> = [];
    for (const [leader, parts] of byLeader) {
      const address = md.brokers.get(leader);
      if (address === undefined) throw new Error(`Metadata names leader ${leader} of ${o.topic} but not its address`);
      let conn = conns.get(address);
      if (conn === undefined) {
        conn = await Connection.open(address, options);
        conns.set(address, conn);
        await checkVersions(conn);
      }
      parts.sort((a, b) => a - b);
      const low = await listOffsets(conn, o.topic, parts, readCommitted, EARLIEST);
      const high = await listOffsets(conn, o.topic, parts, readCommitted, LATEST);
      const mine = parts.map((partition) => {
        const l = low.get(partition) ?? 0;
        return { partition, low: l, end: high.get(partition) ?? l, next: l, records: 0 };
      });
      states.push(...mine);
      ready.push({ conn, parts: mine });
    }
    await Promise.all(ready.map(({ conn, parts }) => fetchLoop(conn, o, readCommitted, parts, counts)));
    counts.lastRecordAt = performance.now();
    states.sort((a, b) => a.partition - b.partition);
    return { ...counts, partitions: states.map((s) => ({ partition: s.partition, low: s.low, end: s.end, records: s.records })), leaders: ready.length };
  } finally {
    for (const c of conns.values()) c.close();
  }
}

async function fetchLoop(conn: Connection, o: ReadTopicOptions, readCommitted: boolean, parts: PartitionState[], counts: WireCounts): Promise<void> {
  const byPartition = new Map(parts.map((s) => [s.partition, s]));
  const sizes = { maxWaitMs: o.maxWaitMs, minBytes: 1, maxBytes: o.maxBytes, maxBytesPerPartition: o.maxBytesPerPartition, readCommitted };
  let order = parts.filter((s) => s.next < s.end);
  const send = (): Promise<Buffer> | undefined => {
    if (order.length === 0) return undefined;
    counts.fetches++;
    return conn.request(API_FETCH, 11, fetchRequest(sizes, new Map([[o.topic, order.map((s) => ({ partition: s.partition, offset: s.next }))]])), 'Fetch');
  };
  let pending = send();
  let stalled = 0;
  const abortedPids = new Set<number>();
  const decoded: DecodeCounts = { control: 0, aborted: 0, compressed: 0 };
  while (pending !== undefined) {
    const body = await pending;
    counts.fetchedBytes += body.length + 4;
    const data = parseFetch(body).flatMap((f) => {
      const state = f.topic === o.topic ? byPartition.get(f.partition) : undefined;
      if (state === undefined) return [];
      if (f.error !== 0) throw new KafkaBrokerError(f.error, `Fetch of ${o.topic} partition ${f.partition} at offset ${state.next}; this reader does not retry: run it again once the topic is healthy`);
      if (f.cut) counts.cutBatches++;
      counts.batches += f.batches.length;
      const from = state.next;
      if (f.next > state.next) state.next = f.next;
      return [{ f, state, from }];
    });
    // The next fetch goes out before this one's records are decoded; partitions in turn first,
    // so that a full response does not always favour the same ones.
    const moved = data.some((d) => d.state.next !== d.from);
    stalled = moved ? 0 : stalled + 1;
    if (stalled > 50) throw new Error(`no progress in 50 fetches of ${o.topic} (next offsets ${order.map((s) => `${s.partition}:${s.next}`).join(', ')}): a batch larger than maxBytes (${o.maxBytes})?`);
    order = [...order.slice(1), ...order.slice(0, 1)].filter((s) => s.next < s.end);
    pending = send();
    // Awaited below; a failure meanwhile must not count as unhandled.
    pending?.catch(() => undefined);
    for (const { f, state, from } of data) {
      let records = 0;
      let bytes = 0;
      if (o.mode === 'views') {
        ({ records, bytes } = countBatches(body, f, from, abortedPids, decoded));
      } else {
        const out: ClientMessage[] = [];
        decodeBatches(body, f, from, out, abortedPids, decoded);
        records = out.length;
        for (const m of out) bytes += m.value?.byteLength ?? 0;
        if (records > 0) o.onRecords?.(state.partition, out as WireRecord[]);
      }
      if (records > 0) {
        counts.firstRecordAt ??= performance.now();
        counts.records += records;
        counts.bytes += bytes;
        state.records += records;
      }
    }
    counts.controlRecords = decoded.control;
    counts.abortedRecords = decoded.aborted;
    counts.compressedBatches = decoded.compressed;
    if (o.reuseBuffers ?? o.mode === 'views') conn.recycle(body);
  }
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

/** The job's fetch settings (env as the bronze job reads it), as consume.ts reads them. */
async function jobFetchSettings(): Promise<{ maxWaitMs: number; maxBytes: number; maxBytesPerPartition: number }> {
  const { jobConsumerSettings } = await import('../../src/runtime/config.ts');
  const { loadBronzeConfig } = await import('../../src/pipelines/bronze/config.ts');
  const s = jobConsumerSettings(loadBronzeConfig(process.env));
  return { maxWaitMs: s.maxWaitTimeInMs, maxBytes: s.maxBytes, maxBytesPerPartition: s.maxBytesPerPartition };
}

async function main(): Promise<void> {
  const { values: opts } = parseArgs({
    options: {
      topic: { type: 'string' },
      mode: { type: 'string', default: 'views' },
      expected: { type: 'string' },
      isolation: { type: 'string', default: 'read_committed' },
      buffers: { type: 'string' },
    },
  });
  const topic = opts.topic ?? '';
  const mode = opts.mode;
  const isolation = opts.isolation;
  const buffers = opts.buffers ?? (mode === 'views' ? 'reuse' : 'fresh');
  const expected = opts.expected === undefined ? undefined : Number(opts.expected);
  if (!topic || (mode !== 'views' && mode !== 'objects') || (isolation !== 'read_committed' && isolation !== 'read_uncommitted') || (buffers !== 'reuse' && buffers !== 'fresh') || (expected !== undefined && !Number.isInteger(expected))) {
    throw new Error('usage: wire.ts --topic <topic> [--mode views|objects] [--expected N] [--isolation read_committed|read_uncommitted] [--buffers reuse|fresh]');
  }
  const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(',');
  const settings = await jobFetchSettings();
  const cpu = cpuMeter();
  const t0 = performance.now();
  // Objects mode: what a consumer of the records would do with them (as consume.ts does).
  let seen = 0;
  let seenBytes = 0;
  const onRecords = (_partition: number, records: WireRecord[]): void => {
    seen += records.length;
    for (let i = 0; i < records.length; i++) seenBytes += records[i]?.value?.length ?? 0;
  };
  const r = await readTopic({ brokers, topic, mode, isolation, ...settings, onRecords, reuseBuffers: buffers === 'reuse' });
  const used = cpu();
  const range = r.partitions.reduce((a, p) => a + (p.end - p.low), 0);
  const problems: string[] = [];
  if (r.records + r.controlRecords + r.abortedRecords !== range) problems.push(`read ${r.records} records + ${r.controlRecords} control + ${r.abortedRecords} aborted of ${range} offsets (a compacted topic has gaps; else a bug)`);
  if (expected !== undefined && r.records !== expected) problems.push(`read ${r.records} records, expected ${expected}`);
  if (mode === 'objects' && (seen !== r.records || seenBytes !== r.bytes)) problems.push(`objects handed out: ${seen} (${seenBytes} B), decoded ${r.records} (${r.bytes} B)`);
  process.stdout.write(
    `${JSON.stringify({
      client: `wire-${mode}`,
      version: `Fetch v11, ${isolation}, response buffers ${buffers === 'reuse' ? 'reused' : 'fresh'}`,
      records: r.records,
      redelivered: 0,
      bytes: r.bytes,
      seconds: (r.lastRecordAt - t0) / 1000,
      firstRecordSeconds: ((r.firstRecordAt ?? t0) - t0) / 1000,
      node: process.version,
      peakRssMb: peakRssMb(),
      ...used,
      controlRecords: r.controlRecords,
      abortedRecords: r.abortedRecords,
      offsets: range,
      batches: r.batches,
      compressedBatches: r.compressedBatches,
      cutBatches: r.cutBatches,
      fetches: r.fetches,
      fetchedMb: r.fetchedBytes / 2 ** 20,
      leaders: r.leaders,
      partitions: r.partitions,
    })}\n`,
  );
  if (problems.length > 0) {
    console.error(`wire.ts: ${problems.join('; ')}`);
    process.exit(1);
  }
  process.exit(0);
}

if (process.argv[1] !== undefined && resolvePath(process.argv[1]) === import.meta.filename) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
