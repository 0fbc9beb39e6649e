/**
 * Dead-letter replay: the rows of a dead-letter table re-published to their original topic (or
 * another), the payload bytes exactly as first received, with headers naming where each came
 * from and why it was rejected. For the day a codec was too strict: fix it, replay, and the job
 * ingests the records again.
 *
 * Never twice: what was replayed is recorded in the dead-letter table's own log as `txn`
 * actions (they survive checkpoints), per source partition a watermark
 * `rxlake-replay-<topic>-<partition>` (every row at or below it is replayed) and, for rows
 * replayed beyond it (a filtered replay skipped some before them), one
 * `rxlake-replayed-<topic>-<partition>-<offset>` each. A run first commits a start marker
 * (`rxlake-replay-started` = that commit's version, the target topics' end offsets in its
 * `commitInfo`), then publishes, then commits what it published with `rxlake-replay-finished`.
 * A run that died in between leaves the marker open: the next run refuses to start until asked
 * to `resume`, which reads the target topics from the recorded end offsets, finds the records
 * that run published (by its id in their headers) and records them before replaying the rest.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import type { Admin, KafkaConfig, Message } from 'kafkajs';
import type { Commit, FullState, TxnAction } from '../sinks/delta/log.ts';
import { commitPath, readCommit, refreshSnapshot, serializeCommit } from '../sinks/delta/log.ts';
import { backoffDelay, sleep } from '../core/retry.ts';
import { DeltaError } from '../sinks/delta/retry.ts';
import type { ColumnType } from '../sinks/delta/parquet.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { UnsupportedTableError, filePath, isAbsolutePath, loadTable, readDataColumns, tableColumns } from './common.ts';

/** Header names of a replayed record. */
export const REPLAY_HEADERS = {
  id: 'rxlake.replay.id',
  topic: 'rxlake.original.topic',
  partition: 'rxlake.original.partition',
  offset: 'rxlake.original.offset',
  timestamp: 'rxlake.original.timestamp',
  errorType: 'rxlake.error.type',
  errorMessage: 'rxlake.error.message',
} as const;

const STARTED = 'rxlake-replay-started';
const FINISHED = 'rxlake-replay-finished';
const watermarkId = (topic: string, partition: number): string => `rxlake-replay-${topic}-${partition}`;
const replayedId = (topic: string, partition: number, offset: bigint): string => `rxlake-replayed-${topic}-${partition}-${offset}`;

export interface ReplayOptions {
  /** Kafka bootstrap servers. */
  readonly brokers: readonly string[];
  /** kafkajs client settings besides `brokers` (ssl, sasl, …). */
  readonly kafka?: Omit<KafkaConfig, 'brokers'>;
  /** Publish every row to this topic instead of its `kafka_topic`. */
  readonly topic?: string;
  /** Only rows of these error types. */
  readonly errorTypes?: readonly string[];
  /** Only rows that came from this topic (`kafka_topic`). */
  readonly sourceTopic?: string;
  /** At most this many rows (the oldest offsets first). */
  readonly limit?: number;
  /** Say what would be replayed; publish and record nothing. */
  readonly dryRun?: boolean;
  /** Finish a run that died between its start marker and its record first (see the module comment). */
  readonly resume?: boolean;
  /** Messages per produce request (default 500). */
  readonly batchSize?: number;
  /** Called after each produce request is acknowledged. */
  readonly onProgress?: (published: number, total: number) => void;
  readonly onWarning?: (message: string, err?: unknown) => void;
}

/** One dead-letter row to replay (or replayed). */
export interface ReplayRow {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly errorType: string | null;
  readonly errorMessage: string | null;
  /** Original Kafka timestamp, epoch µs. */
  readonly timestamp: bigint | null;
  readonly payload: Uint8Array | null;
}

export interface ReplayResult {
  readonly uri: string;
  readonly replayId: string | null;
  readonly dryRun: boolean;
  /** Rows of the table, rows already replayed before, rows left out by the filters. */
  readonly rows: number;
  readonly alreadyReplayed: number;
  readonly filteredOut: number;
  /** Rows published by this run (or, dry run, that would be). */
  readonly published: number;
  /** Per target topic and error type. */
  readonly byTopic: Readonly<Record<string, number>>;
  readonly byErrorType: Readonly<Record<string, number>>;
  /** Rows an interrupted run had published, found and recorded by `resume`. */
  readonly recovered: number;
  /** Dead-letter table versions of the start and record commits. */
  readonly startVersion: number | null;
  readonly recordVersion: number | null;
  readonly replayed: readonly ReplayRow[];
}

/** A replay did not finish (it still runs, or it died): see the message for what to do. */
export class ReplayInProgressError extends DeltaError {
  constructor(message: string) {
    super(message, { code: 'REPLAY_IN_PROGRESS' });
    this.name = 'ReplayInProgressError';
  }
}

const NEEDED: ReadonlyArray<{ name: string; type: string }> = [
  { name: 'kafka_topic', type: 'string' },
  { name: '_kafka_partition', type: 'integer' },
  { name: '_kafka_offset', type: 'long' },
  { name: 'original_payload_bytes', type: 'binary' },
];
const OPTIONAL: readonly string[] = ['error_type', 'error_message', '_kafka_timestamp'];
const utf8 = new TextDecoder();

/** Every row of the dead-letter table (the columns replay needs). */
async function readRows(storage: Storage, state: FullState): Promise<ReplayRow[]> {
  const columns = tableColumns(storage.uri, state);
  for (const need of NEEDED) {
    const c = columns.find((x) => x.name === need.name);
    if (!c || c.type !== need.type || c.partition) {
      throw new UnsupportedTableError(`${storage.uri} is not a dead-letter table: it needs a ${need.type} column ${need.name} (the rxlake dead-letter layout)`);
    }
  }
  const wanted: ColumnType[] = columns.filter((c) => !c.partition && (NEEDED.some((n) => n.name === c.name) || OPTIONAL.includes(c.name)));
  const at = (name: string): number => wanted.findIndex((c) => c.name === name);
  const out: ReplayRow[] = [];
  for (const a of state.adds.values()) {
    if (isAbsolutePath(a.path)) continue;
    const bytes = await storage.read(filePath(a.path));
    if (bytes === undefined) throw new DeltaError(`${storage.uri}: ${filePath(a.path)} is live but missing from storage`);
    const { data, rows } = await readDataColumns(bytes, wanted);
    const col = (name: string): unknown[] | undefined => (at(name) < 0 ? undefined : data[at(name)]);
    const topics = col('kafka_topic') as Array<Uint8Array | null>;
    const partitions = col('_kafka_partition') as Array<number | null>;
    const offsets = col('_kafka_offset') as Array<bigint | null>;
    const payloads = col('original_payload_bytes') as Array<Uint8Array | null>;
    const types = col('error_type') as Array<Uint8Array | null> | undefined;
    const messages = col('error_message') as Array<Uint8Array | null> | undefined;
    const stamps = col('_kafka_timestamp') as Array<bigint | null> | undefined;
    for (let r = 0; r < rows; r++) {
      const t = topics[r];
      const p = partitions[r];
      const o = offsets[r];
      if (t === null || t === undefined || p === null || p === undefined || o === null || o === undefined) continue;
      const et = types?.[r];
      const em = messages?.[r];
      out.push({
        topic: utf8.decode(t),
        partition: p,
        offset: o,
        errorType: et ? utf8.decode(et) : null,
        errorMessage: em ? utf8.decode(em) : null,
        timestamp: stamps?.[r] ?? null,
        payload: payloads[r] ?? null,
      });
    }
  }
  out.sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : x.partition - y.partition || (x.offset < y.offset ? -1 : x.offset > y.offset ? 1 : 0)));
  return out;
}

/** Whether `row` was replayed before, by the table's replay records. @internal (exported for tests) */
export function isReplayed(state: FullState, row: ReplayRow): boolean {
  const wm = state.txns.get(watermarkId(row.topic, row.partition));
  if (wm !== undefined && row.offset <= wm) return true;
  return state.txns.has(replayedId(row.topic, row.partition, row.offset));
}

/** The `txn` actions that record `published` (and advance the watermarks over everything replayed). @internal (exported for tests) */
export function recordTxns(state: FullState, all: readonly ReplayRow[], published: readonly ReplayRow[], now: number): TxnAction[] {
  const done = new Set(published.map((r) => `${r.topic}\u0000${r.partition}\u0000${r.offset}`));
  const byPartition = new Map<string, ReplayRow[]>();
  for (const r of all) {
    const k = `${r.topic}\u0000${r.partition}`;
    const list = byPartition.get(k);
    if (list) list.push(r);
    else byPartition.set(k, [r]);
  }
  const txns: TxnAction[] = [];
  const watermarks = new Map<string, bigint>();
  for (const rows of byPartition.values()) {
    const first = rows[0] as ReplayRow;
    const id = watermarkId(first.topic, first.partition);
    const old = state.txns.get(id);
    let wm = old;
    for (const r of rows) {
      if (wm !== undefined && r.offset <= wm) continue;
      if (!done.has(`${r.topic}\u0000${r.partition}\u0000${r.offset}`) && !isReplayed(state, r)) break;
      wm = r.offset;
    }
    if (wm !== undefined && (old === undefined || wm > old)) {
      txns.push({ appId: id, version: wm, lastUpdated: now });
      watermarks.set(`${first.topic}\u0000${first.partition}`, wm);
    }
  }
  for (const r of published) {
    const wm = watermarks.get(`${r.topic}\u0000${r.partition}`) ?? state.txns.get(watermarkId(r.topic, r.partition));
    if (wm !== undefined && r.offset <= wm) continue;
    txns.push({ appId: replayedId(r.topic, r.partition, r.offset), version: r.offset, lastUpdated: now });
  }
  return txns;
}

/**
 * Commits `build(version)` at the next free version of the table, re-reading after each lost
 * race; `check` runs on the refreshed state before every attempt (it throws to stop).
 */
async function commitNext(storage: Storage, state: FullState, check: (applied: readonly Commit[]) => void, build: (version: number) => Uint8Array): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const applied = await refreshSnapshot(storage, state);
    check(applied);
    const version = state.version + 1;
    if (await storage.putIfAbsent(commitPath(version), build(version))) {
      await refreshSnapshot(storage, state);
      return version;
    }
    if (attempt >= 100) throw new DeltaError(`${storage.uri}: lost 100 commit races in a row while recording the replay`, { retriable: true });
    await sleep(backoffDelay(attempt, { initialMs: 10, maxMs: 400, jitter: 1 }));
  }
}

/**
 * Records what a replay run (started at table version `run`) published: its rows' txns, and the
 * run marked finished, in one commit at the next free version.
 */
function recordPublished(storage: Storage, state: FullState, all: readonly ReplayRow[], published: readonly ReplayRow[], run: bigint, parameters: Record<string, string>): Promise<number> {
  return commitNext(
    storage,
    state,
    () => undefined,
    () =>
      serializeCommit({
        commitInfo: { timestamp: Date.now(), operation: 'REPLAY DLQ', operationParameters: parameters, isBlindAppend: true, engineInfo: 'rxlake' },
        txns: [...recordTxns(state, all, published, Date.now()), { appId: FINISHED, version: run, lastUpdated: Date.now() }],
      }),
  );
}

function openRun(state: FullState): bigint | undefined {
  const started = state.txns.get(STARTED);
  const finished = state.txns.get(FINISHED) ?? -1n;
  return started !== undefined && started > finished ? started : undefined;
}

function headersOf(replayId: string, r: ReplayRow): Record<string, string> {
  const h: Record<string, string> = {
    [REPLAY_HEADERS.id]: replayId,
    [REPLAY_HEADERS.topic]: r.topic,
    [REPLAY_HEADERS.partition]: String(r.partition),
    [REPLAY_HEADERS.offset]: r.offset.toString(),
  };
  if (r.timestamp !== null) h[REPLAY_HEADERS.timestamp] = (r.timestamp / 1000n).toString();
  if (r.errorType !== null) h[REPLAY_HEADERS.errorType] = r.errorType;
  if (r.errorMessage !== null) h[REPLAY_HEADERS.errorMessage] = r.errorMessage;
  return h;
}

async function endOffsets(admin: Admin, topics: readonly string[]): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const t of topics) {
    const offsets = await admin.fetchTopicOffsets(t);
    out[t] = Object.fromEntries(offsets.map((o) => [String(o.partition), o.high]));
  }
  return out;
}

/** How long `--resume` waits for records from the target topics before giving up. */
const SCAN_QUIET_MS = 60_000;

/** The rows a run published: records of `topics` from `from` on whose replay id header is `replayId`. */
async function scanPublished(kafka: Kafka, from: Record<string, Record<string, string>>, replayId: string): Promise<Set<string>> {
  const found = new Set<string>();
  const admin = kafka.admin();
  await admin.connect();
  const pending = new Map<string, bigint>(); // `${topic}\0${partition}` → end offset still to reach
  try {
    const ends = await endOffsets(admin, Object.keys(from));
    for (const [topic, parts] of Object.entries(from)) {
      for (const [p, start] of Object.entries(parts)) {
        const end = BigInt(ends[topic]?.[p] ?? '0');
        if (end > BigInt(start)) pending.set(`${topic}\u0000${p}`, end);
      }
    }
  } finally {
    await admin.disconnect();
  }
  if (pending.size === 0) return found;
  const consumer = kafka.consumer({ groupId: `rxlake-replay-scan-${randomUUID()}`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: Object.keys(from), fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      // Records keep coming until every partition is read to its end; silence means something is wrong.
      let quiet: NodeJS.Timeout | undefined;
      const watch = (): void => {
        clearTimeout(quiet);
        quiet = setTimeout(() => reject(new DeltaError(`no records from ${Object.keys(from).join(', ')} for ${SCAN_QUIET_MS / 1000} s while looking for replay ${replayId}; is Kafka reachable? Run again with --resume`, { retriable: true })), SCAN_QUIET_MS);
      };
      watch();
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            watch();
            const key = `${batch.topic}\u0000${batch.partition}`;
            const start = BigInt(from[batch.topic]?.[String(batch.partition)] ?? '0');
            for (const m of batch.messages) {
              if (BigInt(m.offset) < start) continue;
              const id = m.headers?.[REPLAY_HEADERS.id];
              if (id === undefined || String(id) !== replayId) continue;
              const t = String(m.headers?.[REPLAY_HEADERS.topic] ?? '');
              const p = String(m.headers?.[REPLAY_HEADERS.partition] ?? '');
              const o = String(m.headers?.[REPLAY_HEADERS.offset] ?? '');
              found.add(`${t}\u0000${p}\u0000${o}`);
            }
            const end = pending.get(key);
            if (end !== undefined && (BigInt(batch.lastOffset()) + 1n >= end || BigInt(batch.highWatermark) <= BigInt(batch.lastOffset()) + 1n)) {
              pending.delete(key);
              if (pending.size === 0) {
                clearTimeout(quiet);
                resolve();
              }
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
      for (const [topic, parts] of Object.entries(from)) {
        for (const [p, start] of Object.entries(parts)) consumer.seek({ topic, partition: Number(p), offset: start });
      }
    });
  } finally {
    await consumer.disconnect();
  }
  return found;
}

/**
 * Re-publishes the rows of the dead-letter table at `storage` that were not replayed before
 * (see the module comment), oldest offsets first, each to its original partition when the target
 * topic has it. The key is not kept by dead-letter tables: replayed records have none.
 *
 * ## Example
 * ```ts
 * const r = await replayDeadLetters(storageFromUri('./data/bronze/dlq_bronze_trips'), {
 *   brokers: ['127.0.0.1:9092'],
 *   errorTypes: ['SCHEMA_VALIDATION_ERROR'],
 * });
 * console.log(`${r.published} records re-published`);
 * ```
 *
 * @param storage The dead-letter table's root.
 * @param options `brokers` and filters, `dryRun`, `resume`.
 * @return What was published and recorded.
 */
export async function replayDeadLetters(storage: Storage, options: ReplayOptions): Promise<ReplayResult> {
  let state = await loadTable(storage, options.onWarning);
  const kafka = new Kafka({ clientId: 'rxlake-replay', logLevel: logLevel.NOTHING, ...options.kafka, brokers: [...options.brokers] });

  let recovered = 0;
  const open = openRun(state);
  if (open !== undefined) {
    const start = await readCommit(storage, Number(open));
    const params = start?.commitInfo?.operationParameters as { replayId?: string; endOffsets?: string } | undefined;
    const when = state.txnUpdated.get(STARTED);
    const since = when ? ` (started ${new Date(when).toISOString()})` : '';
    if (options.resume !== true || options.dryRun === true) {
      throw new ReplayInProgressError(
        `${storage.uri}: replay ${params?.replayId ?? '?'}${since}, version ${open}, did not record what it published: it still runs, or it stopped before the end. ` +
          'Once it certainly runs no more, run again with --resume: it finds what that run published (by the replay id in the records\' headers) and records it, so nothing is published twice',
      );
    }
    if (!params?.replayId || !params.endOffsets) {
      throw new ReplayInProgressError(`${storage.uri}: the start commit ${open} of the unfinished replay is gone (log cleanup) or unreadable; its records cannot be found`);
    }
    const published = await scanPublished(kafka, JSON.parse(params.endOffsets) as Record<string, Record<string, string>>, params.replayId);
    const all = await readRows(storage, state);
    const rows = all.filter((r) => published.has(`${r.topic}\u0000${r.partition}\u0000${r.offset}`));
    recovered = rows.length;
    await recordPublished(storage, state, all, rows, open, { replayId: params.replayId, resumed: 'true', published: String(rows.length) });
    state = await loadTable(storage, options.onWarning);
  }

  const all = await readRows(storage, state);
  let already = 0;
  let filteredOut = 0;
  let todo: ReplayRow[] = [];
  for (const r of all) {
    if (isReplayed(state, r)) already++;
    else if ((options.errorTypes && !options.errorTypes.includes(r.errorType ?? '')) || (options.sourceTopic !== undefined && r.topic !== options.sourceTopic)) filteredOut++;
    else todo.push(r);
  }
  if (options.limit !== undefined && todo.length > options.limit) {
    filteredOut += todo.length - options.limit;
    todo = todo.slice(0, options.limit);
  }
  const target = (r: ReplayRow): string => options.topic ?? r.topic;
  const byTopic: Record<string, number> = {};
  const byErrorType: Record<string, number> = {};
  for (const r of todo) {
    byTopic[target(r)] = (byTopic[target(r)] ?? 0) + 1;
    byErrorType[r.errorType ?? 'null'] = (byErrorType[r.errorType ?? 'null'] ?? 0) + 1;
  }
  const result = {
    uri: storage.uri,
    dryRun: options.dryRun === true,
    rows: all.length,
    alreadyReplayed: already,
    filteredOut,
    byTopic,
    byErrorType,
    recovered,
  };
  if (options.dryRun === true || todo.length === 0) {
    return { ...result, replayId: null, published: options.dryRun === true ? todo.length : 0, startVersion: null, recordVersion: null, replayed: todo };
  }

  const replayId = randomUUID();
  const topics = [...new Set(todo.map(target))].sort();
  const admin = kafka.admin();
  await admin.connect();
  let ends: Record<string, Record<string, string>>;
  const partitionsOf = new Map<string, number>();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) throw new DeltaError(`topic ${missing.join(', ')} does not exist: create it, or replay to another topic (--topic)`, { code: 'NO_TOPIC' });
    ends = await endOffsets(admin, topics);
    for (const t of topics) partitionsOf.set(t, Object.keys(ends[t] ?? {}).length);
  } finally {
    await admin.disconnect();
  }

  // 1. The start marker: a run that dies after it is found and finished by --resume.
  const startVersion = await commitNext(
    storage,
    state,
    () => {
      const other = openRun(state);
      if (other !== undefined) throw new ReplayInProgressError(`${storage.uri}: another replay started meanwhile (version ${other}); nothing was published`);
    },
    (version) =>
      serializeCommit({
        commitInfo: {
          timestamp: Date.now(),
          operation: 'REPLAY DLQ START',
          operationParameters: { replayId, endOffsets: JSON.stringify(ends), rows: String(todo.length), topics: JSON.stringify(topics) },
          isBlindAppend: true,
          engineInfo: 'rxlake',
        },
        txns: [{ appId: STARTED, version: BigInt(version), lastUpdated: Date.now() }],
      }),
  );

  // 2. Publish, acknowledged by every in-sync replica, idempotently (no broker-side duplicates on retries).
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const batchSize = options.batchSize ?? 500;
  let published = 0;
  try {
    for (let i = 0; i < todo.length; i += batchSize) {
      const chunk = todo.slice(i, i + batchSize);
      const byTarget = new Map<string, Message[]>();
      for (const r of chunk) {
        const t = target(r);
        const msg: Message = {
          key: null,
          value: r.payload === null ? null : Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength),
          headers: headersOf(replayId, r),
          ...(r.partition < (partitionsOf.get(t) ?? 0) ? { partition: r.partition } : {}),
        };
        const list = byTarget.get(t);
        if (list) list.push(msg);
        else byTarget.set(t, [msg]);
      }
      await producer.sendBatch({ acks: -1, topicMessages: [...byTarget].map(([topic, messages]) => ({ topic, messages })) });
      published += chunk.length;
      options.onProgress?.(published, todo.length);
    }
  } catch (err) {
    throw new ReplayInProgressError(
      `${storage.uri}: publishing failed after ${published} of ${todo.length} records (${err instanceof Error ? err.message : String(err)}); run again with --resume to record what was published and replay the rest`,
    );
  } finally {
    await producer.disconnect();
  }

  // 3. Record what was published, closing the run.
  const recordVersion = await recordPublished(storage, state, all, todo, BigInt(startVersion), { replayId, published: String(todo.length), topics: JSON.stringify(topics) });
  return { ...result, replayId, published, startVersion, recordVersion, replayed: todo };
}
