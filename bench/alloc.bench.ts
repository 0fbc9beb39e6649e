/**
 * Allocations per record on the bronze path, from the record the source emits to the Parquet
 * column builders: JavaScript heap objects and bytes per record, stage by stage.
 *
 *   node --expose-gc bench/alloc.bench.ts [--records 20000] [--payload-bytes 400]      (Node 22.18+)
 *   npx tsx --expose-gc bench/alloc.bench.ts                                            (Node 20)
 *
 * Records are built exactly as `fromKafka` builds them from a kafkajs message (an object of
 * eight fields, the offset as `bigint`, the timestamp from kafkajs' string), their payloads
 * slices of one buffer per 2,500-record chunk. Each row of the table is a prefix of the bronze
 * chain, ending in a subscriber that does nothing:
 *
 *   source     the record objects alone (what `toRecord` allocates: the baseline)
 *   + enrich   enrichMetadata()
 *   + route    routeErrors(gps_pings codec, byte guard, attachDecoded: false)
 *   + date     partitionByDate()
 *   + buffer   bufferTime({ chunkRecords: 5000 })
 *   + columns  a staged Delta append of the chunks (`DeltaTable.stage().add`, memory storage):
 *              grouping by partition, dedupe, the column builders and the Parquet encoding
 *
 * Bytes: the growth of V8's heap while the records run through, with the young generation made
 * large enough (`--min-semi-space-size`, set here by re-running itself when not given) that no
 * garbage collection happens meanwhile — the run is discarded otherwise. Objects: V8's sampling
 * heap profiler at a 1-byte interval (every allocation is a sample; allocations V8 folds into one
 * count once), with the allocating functions of the last stage listed. Every stage is warmed up
 * first (optimized code allocates less than the interpreter). Buffers outside the heap (Parquet
 * pages) are reported apart, as `external`.
 */
import { spawnSync } from 'node:child_process';
import { Session } from 'node:inspector';
import { GCProfiler } from 'node:v8';
import { Observable, Subject, finalize, map } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { bufferTime, isBatchChunk } from '../src/operators/bufferTime.ts';
import type { BatchChunk } from '../src/operators/bufferTime.ts';
import { enrichMetadata } from '../src/operators/enrichMetadata.ts';
import { partitionByDate } from '../src/operators/partitionByDate.ts';
import { routeErrors } from '../src/operators/routeErrors.ts';
import { bronzeTableSpec } from '../src/pipelines/bronze/tables.ts';
import { bronzeBytesGuards, bronzeCodecs } from '../src/pipelines/rideshare/codecs.ts';
import { createEventGenerator, padJson } from '../src/pipelines/rideshare/events.ts';
import { memoryStorage } from '../src/sinks/delta/memoryStorage.ts';
import { DeltaTable } from '../src/sinks/delta/table.ts';
import type { DeadLetterRow, EnrichedRecord, KafkaRecord } from '../src/types.ts';
import { arg } from './measure.ts';

const SEMI_SPACE_MB = 512;

if (!process.execArgv.some((a) => a.startsWith('--min-semi-space-size')) || typeof globalThis.gc !== 'function') {
  // Re-run with a young generation that holds a whole measured run, and gc() exposed.
  const r = spawnSync(
    process.execPath,
    // No allocation folding: optimized code would otherwise allocate several objects as one.
    [...process.execArgv, '--expose-gc', '--no-enable-allocation-folding', '--maglev-allocation-folding=0', `--min-semi-space-size=${SEMI_SPACE_MB}`, `--max-semi-space-size=${SEMI_SPACE_MB}`, ...process.argv.slice(1)],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}

const gc = globalThis.gc as () => void;
const CHUNK = 2_500;
const PARTITIONS = 6;

/** What kafkajs hands the source for one message (the fields `toRecord` reads). */
interface Message {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly timestamp: string;
  readonly offset: string;
  readonly headers: Record<string, never>;
}

interface Fetch {
  readonly partition: number;
  readonly messages: Message[];
}

function makeFetches(n: number, payloadBytes: number): Fetch[] {
  const gen = createEventGenerator({ seed: 11 });
  const out: Fetch[] = [];
  const next = new Array<number>(PARTITIONS).fill(0);
  const ts = String(Date.now());
  for (let start = 0; start < n; start += CHUNK) {
    const count = Math.min(CHUNK, n - start);
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const e = gen.next('gps_pings');
      parts.push(Buffer.from(e.key), Buffer.from(padJson(JSON.stringify(e.value), payloadBytes)));
    }
    const all = Buffer.concat(parts);
    const partition = (start / CHUNK) % PARTITIONS;
    const messages: Message[] = [];
    let at = 0;
    for (let i = 0; i < count; i++) {
      const k = (parts[2 * i] as Buffer).length;
      const v = (parts[2 * i + 1] as Buffer).length;
      messages.push({ key: all.subarray(at, at + k), value: all.subarray(at + k, at + k + v), timestamp: ts, offset: String(next[partition]), headers: {} });
      next[partition] = (next[partition] as number) + 1;
      at += k + v;
    }
    out.push({ partition, messages });
  }
  return out;
}

/** `toRecord` of src/sources/fromKafka.ts, as it is. */
function toRecord(topic: string, partition: number, offset: bigint, m: Message, size: number): KafkaRecord {
  return { topic, partition, offset, timestamp: Number(m.timestamp), key: m.key, value: m.value, headers: m.headers, size };
}

/** Feeds the fetches' records to `input` as the source loop does (a plain subscriber, no Subject). */
function feed(fetches: readonly Fetch[], input: { next: (r: KafkaRecord) => void }): number {
  let n = 0;
  for (const f of fetches) {
    const ms = f.messages;
    for (let i = 0; i < ms.length; i++) {
      const m = ms[i] as Message;
      const offset = BigInt(m.offset);
      input.next(toRecord('gps_pings', f.partition, offset, m, m.key.byteLength + m.value.byteLength));
      n += 1;
    }
  }
  return n;
}

type Stage = (sink: (x: unknown) => void) => OperatorFunction<KafkaRecord, unknown>;

const dlq = new Subject<DeadLetterRow>();
dlq.subscribe();

const enrich = (): OperatorFunction<KafkaRecord, EnrichedRecord> => enrichMetadata<KafkaRecord>();
const route = (): OperatorFunction<EnrichedRecord, EnrichedRecord> =>
  routeErrors(bronzeCodecs.gps_pings, dlq, {
    attachDecoded: false,
    accepts: (v) => bronzeCodecs.gps_pings.is(v),
    acceptsBytes: bronzeBytesGuards.gps_pings,
  });
const byDate = (): OperatorFunction<EnrichedRecord, EnrichedRecord> => partitionByDate<EnrichedRecord>();
const chunks = (): OperatorFunction<EnrichedRecord, EnrichedRecord[] | BatchChunk<EnrichedRecord>> =>
  bufferTime<EnrichedRecord>({ timeSpan: 3_600_000, maxRecords: 1_000_000_000, maxBytes: 2 ** 31, chunkRecords: 5_000 });

const table = await DeltaTable.openOrCreate(memoryStorage(), bronzeTableSpec('gps_pings'), { encoder: 'inline' });
const appIds = ['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'a-5'];
const dedupe = { appId: (r: EnrichedRecord): string => appIds[r.partition] as string, offset: (r: EnrichedRecord): bigint => r.offset };

const stages: Array<{ name: string; make: Stage }> = [
  { name: 'source', make: () => (s) => s },
  { name: '+ enrich', make: () => (s) => s.pipe(enrich()) },
  { name: '+ route', make: () => (s) => s.pipe(enrich(), route()) },
  { name: '+ date', make: () => (s) => s.pipe(enrich(), route(), byDate()) },
  { name: '+ buffer', make: () => (s) => s.pipe(enrich(), route(), byDate(), chunks()) },
  {
    name: '+ columns',
    make: () => (s) => {
      const staged = table.stage({ dedupe });
      return s.pipe(
        enrich(),
        route(),
        byDate(),
        chunks(),
        map((b) => staged.add(isBatchChunk(b) ? b.records : b)),
        // Not committed: discarded, so the next pass's offsets are not skipped as staged already.
        finalize(() => staged.discard()),
      );
    },
  },
];

/** One pass of the fetches through a stage; returns records fed. */
function pass(stage: Stage, fetches: readonly Fetch[]): number {
  let n = 0;
  const input = new Observable<KafkaRecord>((subscriber) => {
    n = feed(fetches, subscriber);
    subscriber.complete();
  });
  const sink = (): void => undefined;
  stage(sink)(input).subscribe(sink);
  return n;
}

/** Heap bytes allocated per record by one pass (no GC allowed meanwhile). */
async function bytesPerRecord(stage: Stage, fetches: readonly Fetch[]): Promise<{ heap: number; external: number }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    gc();
    await new Promise((r) => setImmediate(r));
    const profiler = new GCProfiler();
    profiler.start();
    const m0 = process.memoryUsage();
    const n = pass(stage, fetches);
    const m1 = process.memoryUsage();
    const collections = profiler.stop()?.statistics.length ?? 0;
    if (collections === 0) return { heap: (m1.heapUsed - m0.heapUsed) / n, external: (m1.arrayBuffers - m0.arrayBuffers) / n };
  }
  throw new Error('a garbage collection ran during every attempt: give fewer --records');
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Objects allocated per record by one pass, and the top allocating functions. */
async function objectsPerRecord(stage: Stage, fetches: readonly Fetch[]): Promise<{ objects: number; top: string[] }> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object): Promise<T> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
  gc();
  await post('HeapProfiler.startSampling', { samplingInterval: 1, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const n = pass(stage, fetches);
  const { profile } = await post<{ profile: { head: ProfileNode; samples: Array<{ size: number; nodeId: number }> } }>('HeapProfiler.stopSampling');
  session.disconnect();
  const byNode = new Map<number, ProfileNode>();
  const walk = (node: ProfileNode): void => {
    byNode.set(node.id, node);
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  const count = new Map<string, { objects: number; bytes: number }>();
  for (const s of profile.samples) {
    const node = byNode.get(s.nodeId);
    const f = node ? `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(src|node_modules|bench)\//, '$1/')}:${node.callFrame.lineNumber + 1}` : '?';
    const c = count.get(f) ?? { objects: 0, bytes: 0 };
    c.objects += 1;
    c.bytes += s.size;
    count.set(f, c);
  }
  const top = [...count.entries()]
    .sort((a, b) => b[1].objects - a[1].objects)
    .slice(0, 12)
    .map(([f, c]) => `${(c.objects / n).toFixed(3).padStart(8)} obj ${(c.bytes / n).toFixed(1).padStart(8)} B  ${f}`);
  return { objects: profile.samples.length / n, top };
}

const n = arg('records', 20_000);
const payloadBytes = arg('payload-bytes', 400);
const fetches = makeFetches(n, payloadBytes);
const warm = makeFetches(50_000, payloadBytes);
process.stdout.write(`${n} gps_pings (~${payloadBytes} B), node ${process.version}\n`);
process.stdout.write(`${'stage'.padEnd(12)} ${'objects/rec'.padStart(12)} ${'heap B/rec'.padStart(11)} ${'external B/rec'.padStart(15)}\n`);
const results: Array<{ stage: string; objects: number; heapBytes: number; externalBytes: number }> = [];
let lastTop: string[] = [];
for (const stage of stages) {
  for (let i = 0; i < 3; i++) pass(stage.make, warm);
  // Medians of several passes: a pass also allocates V8's own bookkeeping now and then.
  const median = <X>(xs: X[], key: (x: X) => number): X => [...xs].sort((p, q) => key(p) - key(q))[Math.floor(xs.length / 2)] as X;
  const bs: Array<{ heap: number; external: number }> = [];
  for (let i = 0; i < 5; i++) bs.push(await bytesPerRecord(stage.make, fetches));
  const b = median(bs, (x) => x.heap);
  const os: Array<{ objects: number; top: string[] }> = [];
  for (let i = 0; i < 3; i++) os.push(await objectsPerRecord(stage.make, fetches));
  const o = median(os, (x) => x.objects);
  lastTop = o.top;
  if (process.argv.includes('--verbose')) for (const line of o.top) process.stdout.write(`      ${line}\n`);
  results.push({ stage: stage.name, objects: o.objects, heapBytes: b.heap, externalBytes: b.external });
  process.stdout.write(`${stage.name.padEnd(12)} ${o.objects.toFixed(2).padStart(12)} ${b.heap.toFixed(0).padStart(11)} ${b.external.toFixed(0).padStart(15)}\n`);
}
process.stdout.write('\ntop allocating functions of the whole path (objects and bytes per record):\n');
for (const line of lastTop) process.stdout.write(`${line}\n`);
process.stdout.write(`${JSON.stringify({ records: n, payloadBytes, node: process.version, results })}\n`);
process.exit(0);
