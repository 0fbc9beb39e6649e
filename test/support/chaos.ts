/**
 * The chaos suite's toolkit: job processes as users run them (spawned, SIGKILLed, SIGTERMed,
 * restarted), a seeded PRNG for kill times, a steady producer that survives broker outages,
 * the topic read back as the ground truth, and the judge: delta-rs counts every row per
 * (partition, offset) — duplicates, missing, extra, bytes changed — against what the topic holds.
 *
 * Sizes scale with `CHAOS_SCALE` (default 1; `npm run chaos:soak` raises it); kill times come
 * from `CHAOS_SEED` (default random; printed by every case). `CHAOS_PROBE_DUPLICATE=1` makes every
 * case write a few of its rows a second time with delta-rs before judging: each case must then
 * fail (proof that the judge sees duplicates).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { expect } from 'vitest';
import type { Admin, Producer } from 'kafkajs';
import { createEventGenerator, corrupt, CORRUPTION_KINDS } from '../../src/pipelines/rideshare/events.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import { consumeUntil } from './kafka.ts';
import { appendWithDeltaRs, stack, uniqueName, verifyDelta } from './stack.ts';
import { reapWithTestProcess } from './broker.ts';
import { createTopicsReady } from './topics.ts';

// ---------------------------------------------------------------------------------------------
// Seeds and sizes
// ---------------------------------------------------------------------------------------------

/** Multiplies record counts and kill counts (soak runs). */
export const CHAOS_SCALE = Math.max(1, Number(process.env.CHAOS_SCALE ?? '1') || 1);

export function scaled(n: number): number {
  return Math.round(n * CHAOS_SCALE);
}

/** A case's vitest timeout: `ms` at scale 1, longer for soak runs. */
export function caseTimeout(ms = 240_000): number {
  return ms * CHAOS_SCALE;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same kill times and victims. */
export interface Rng {
  readonly seed: number;
  next(): number;
  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
}

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    between: (lo, hi) => lo + next() * (hi - lo),
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => {
      if (xs.length === 0) throw new Error('pick from an empty list');
      return xs[Math.floor(next() * xs.length)] as T;
    },
  };
}

/** The case's seed (`CHAOS_SEED` or random), printed so a failure can be replayed. */
export function caseRng(caseName: string): Rng {
  const fromEnv = process.env.CHAOS_SEED;
  const seed = fromEnv !== undefined && fromEnv.trim() !== '' ? Number(fromEnv) >>> 0 : Math.floor(Math.random() * 2 ** 31);
  console.log(`[chaos] ${caseName}: seed ${seed} (reproduce with CHAOS_SEED=${seed}), scale ${CHAOS_SCALE}`);
  return rng(seed);
}

/** A random pause before the next act of chaos: the chaos itself, never a synchronization. */
export function chaosDelay(r: Rng, loMs: number, hiMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, r.between(loMs, hiMs)));
}

/** Polls `cond` every `everyMs` until it holds; resolves false after `timeoutMs`. */
export async function eventually(cond: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Job processes
// ---------------------------------------------------------------------------------------------

export type JobKind = 'bronze' | 'transactions';

/** What the jobs' `/health` answers (the parts the suite reads). */
export interface JobHealth {
  readonly status: string;
  readonly recordsWritten: number;
  readonly kafka?: { readonly connected: boolean };
}

export interface JobExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One job process, spawned as users run it (`node src/pipelines/<kind>.ts`; tsx on Node 20). */
export class JobProcess {
  readonly name: string;
  readonly kind: JobKind;
  readonly child: ChildProcess;
  readonly startedAt = Date.now();
  /** The signal this suite sent (undefined: the process ended by itself, if it ended). */
  sent: 'SIGKILL' | 'SIGTERM' | undefined;
  exitInfo: JobExit | undefined;
  readonly exited: Promise<JobExit>;
  readonly port: Promise<number>;
  private out = '';
  private readonly watchers = new Set<() => void>();

  constructor(name: string, kind: JobKind, env: Record<string, string>, args: readonly string[] = []) {
    this.name = name;
    this.kind = kind;
    const script = join(stack.root, 'src', 'pipelines', `${kind}.ts`);
    // One process (no tsx wrapper process): a signal reaches the job itself.
    const [cmd, cmdArgs] = stack.nodeCurrent !== undefined ? [stack.nodeCurrent, [script]] : [process.execPath, ['--import', 'tsx', script]];
    this.child = spawn(cmd, [...cmdArgs, ...args], {
      cwd: stack.root,
      env: { ...process.env, HTTP_PORT: '0', PROGRESS_INTERVAL_SECONDS: '1', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a kill takes anything it started too.
      detached: true,
    });
    if (this.child.pid !== undefined) reapWithTestProcess(this.child.pid);
    const onData = (d: Buffer): void => {
      this.out += d.toString();
      if (this.out.length > 8_000_000) this.out = this.out.slice(-4_000_000);
      for (const w of this.watchers) w();
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        for (const w of this.watchers) w();
        resolve(this.exitInfo);
      }),
    );
    this.port = this.waitForLog(/health and metrics url=http:\/\/[^:\s]+:(\d+)\/health/, 60_000).then((m) => Number(m[1]));
    this.port.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  output(): string {
    return this.out;
  }

  /** How often a line matching `re` (global flag not needed) appeared so far. */
  count(re: RegExp): number {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
    return [...this.out.matchAll(g)].length;
  }

  /** Resolves with the `nth` (1-based) match of `re` in the output; rejects if the process exits first or after `timeoutMs`. */
  waitForLog(re: RegExp, timeoutMs = 60_000, nth = 1): Promise<RegExpMatchArray> {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const matches = [...this.out.matchAll(g)];
        const m = matches[nth - 1];
        if (m !== undefined) {
          done();
          resolve(m);
        } else if (this.exitInfo !== undefined) {
          done();
          reject(new Error(`${this.name} exited (${this.exitInfo.code ?? this.exitInfo.signal}) before logging ${re}:\n${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} did not log ${re} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
      check();
    });
  }

  /** Waits until `/health` says the consumer is in its group (`kafka.connected`). */
  async connected(timeoutMs = 60_000): Promise<void> {
    const ok = await eventually(async () => (await this.health())?.kafka?.connected === true || !this.alive, timeoutMs);
    if (!ok || !this.alive) throw new Error(`${this.name} not in its group after ${timeoutMs} ms (${this.alive ? 'running' : 'exited'}):\n${this.tail()}`);
  }

  async health(): Promise<JobHealth | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${await this.port}/health`, { signal: AbortSignal.timeout(3000) });
      return (await res.json()) as JobHealth;
    } catch {
      return undefined;
    }
  }

  /** The job's gauge `rxlake_in_flight{kind="records"}` (updated every second). */
  async inFlightRecords(): Promise<number> {
    try {
      const res = await fetch(`http://127.0.0.1:${await this.port}/metrics`, { signal: AbortSignal.timeout(3000) });
      const m = /rxlake_in_flight\{kind="records"\} (\d+)/.exec(await res.text());
      return m?.[1] !== undefined ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** SIGKILL to the job's process group; resolves once it has exited. */
  async kill(): Promise<JobExit> {
    if (this.alive) {
      this.sent = 'SIGKILL';
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return this.exited;
  }

  /** SIGTERM (a graceful stop: flush, commit, leave the group); resolves once it has exited. */
  async term(timeoutMs = 60_000): Promise<JobExit> {
    if (this.alive) {
      this.sent ??= 'SIGTERM';
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const timer = setTimeout(() => void this.kill(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  tail(lines = 40): string {
    return this.out.split('\n').slice(-lines).join('\n');
  }
}

export interface ExitReport {
  readonly name: string;
  readonly pid: number;
  readonly sent: string | undefined;
  readonly code: number | null;
  readonly signal: string | null;
  readonly lastError: string | undefined;
}

/** Every job process of one case: starts, kills, restarts and the exits' account. */
export class Fleet {
  readonly jobs: JobProcess[] = [];
  private seq = 0;

  start(kind: JobKind, env: Record<string, string>, label: string = kind, args: readonly string[] = []): JobProcess {
    this.seq += 1;
    const job = new JobProcess(`${label}#${this.seq}`, kind, env, args);
    this.jobs.push(job);
    return job;
  }

  live(): JobProcess[] {
    return this.jobs.filter((j) => j.alive);
  }

  /** Processes that ended without a signal from this suite with a non-zero code: a job that stopped itself. */
  selfExitsNonZero(): ExitReport[] {
    return this.exits().filter((e) => e.sent === undefined && e.code !== 0);
  }

  /** Processes this suite stopped with SIGTERM that did not exit 0 (a graceful stop failed). */
  termNonZero(): ExitReport[] {
    return this.exits().filter((e) => e.sent === 'SIGTERM' && e.code !== 0);
  }

  exits(): ExitReport[] {
    return this.jobs
      .filter((j) => j.exitInfo !== undefined)
      .map((j) => ({
        name: j.name,
        pid: j.pid,
        sent: j.sent,
        code: j.exitInfo?.code ?? null,
        signal: j.exitInfo?.signal ?? null,
        lastError: j
          .output()
          .split('\n')
          .filter((l) => / ERROR /.test(l))
          .at(-1)
          ?.slice(0, 400),
      }));
  }

  counts(): { started: number; sigkill: number; sigterm: number; selfExitNonZero: number; termNonZero: number; selfExitZero: number } {
    const exits = this.exits();
    return {
      started: this.jobs.length,
      sigkill: this.jobs.filter((j) => j.sent === 'SIGKILL').length,
      sigterm: this.jobs.filter((j) => j.sent === 'SIGTERM').length,
      selfExitNonZero: exits.filter((e) => e.sent === undefined && e.code !== 0).length,
      termNonZero: exits.filter((e) => e.sent === 'SIGTERM' && e.code !== 0).length,
      selfExitZero: exits.filter((e) => e.sent === undefined && e.code === 0).length,
    };
  }

  /** SIGTERM every live job at once and waits for them all. */
  async stopAll(): Promise<void> {
    await Promise.all(this.live().map((j) => j.term()));
  }

  /** Clean-up: SIGKILL whatever still runs. */
  async killAll(): Promise<void> {
    await Promise.all(this.live().map((j) => j.kill()));
  }

  /**
   * The Kafka clients the processes said they consume with (their `kafka consumer` log line),
   * distinct and sorted: evidence of which client a case ran, not just what it asked for.
   */
  clients(): string[] {
    const out = new Set<string>();
    // Text lines (`… INFO kafka consumer … client=wire`) or JSON ones (`"client":"wire"`).
    for (const line of this.grep(/kafka consumer/)) {
      const m = /\bclient(?:=|":")(\w+)/.exec(line);
      if (m?.[1] !== undefined) out.add(m[1]);
    }
    return [...out].sort();
  }

  /** Lines matching `re` across every process's output. */
  grep(re: RegExp): string[] {
    return this.jobs.flatMap((j) =>
      j
        .output()
        .split('\n')
        .filter((l) => re.test(l))
        .map((l) => `${j.name}: ${l}`),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Kafka: admin, steady producer, the topic read back
// ---------------------------------------------------------------------------------------------

export function kafkaClient(brokers: readonly string[], clientId = 'rxlake-chaos'): Kafka {
  return new Kafka({ brokers: [...brokers], clientId, logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 3000 } });
}

export async function withAdmin<T>(brokers: readonly string[], fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaClient(brokers, 'rxlake-chaos-admin').admin();
  // The shared broker may be away for a moment (another test's outage): wait for it, up to a minute.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await admin.connect();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(brokers: readonly string[], topic: string, partitions: number): Promise<void> {
  await withAdmin(brokers, (admin) => createTopicsReady(admin, [{ topic, numPartitions: partitions, replicationFactor: 1 }]));
}

/** Grows `topic` to `count` partitions and waits until every partition has a leader. */
export async function addPartitions(brokers: readonly string[], topic: string, count: number): Promise<void> {
  await withAdmin(brokers, async (admin) => {
    await admin.createPartitions({ topicPartitions: [{ topic, count }] });
    const ok = await eventually(async () => {
      const md = await admin.fetchTopicMetadata({ topics: [topic] });
      const parts = md.topics[0]?.partitions ?? [];
      return parts.length === count && parts.every((p) => p.leader >= 0);
    }, 30_000);
    if (!ok) throw new Error(`${topic}: ${count} partitions not ready`);
  });
}

/** Per partition: the topic's end offset and the group's committed offset (-1: none). */
export async function groupProgress(brokers: readonly string[], groupId: string, topic: string): Promise<{ partitions: number; lag: number; uncommittedPartitions: number }> {
  return withAdmin(brokers, async (admin) => {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const byP = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    let lag = 0;
    let uncommittedPartitions = 0;
    for (const e of ends) {
      const c = byP.get(e.partition) ?? -1;
      const l = Number(e.high) - Math.max(0, c);
      lag += l;
      if (l > 0) uncommittedPartitions += 1;
    }
    return { partitions: ends.length, lag, uncommittedPartitions };
  });
}

export interface GroupMember {
  readonly memberId: string;
  /** `topic/partition` assigned to the member. */
  readonly partitions: string[];
}

export interface GroupState {
  readonly state: string;
  readonly members: GroupMember[];
}

/** The group as the coordinator describes it (state, members and their assignments): seen from outside the jobs. */
export async function describeGroup(brokers: readonly string[], groupId: string): Promise<GroupState> {
  return withAdmin(brokers, async (admin) => {
    const { groups } = await admin.describeGroups([groupId]);
    const g = groups[0];
    if (g === undefined) return { state: 'Unknown', members: [] };
    return {
      state: g.state,
      members: g.members.map((m) => {
        const decoded = m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
        const partitions = Object.entries(decoded?.assignment ?? {}).flatMap(([topic, ps]) => ps.map((p) => `${topic}/${p}`));
        return { memberId: m.memberId, partitions };
      }),
    };
  });
}

/** Polls the group's description until `pred` holds (e.g. Stable with 3 members); throws after `timeoutMs` with the last state. */
export async function waitForGroup(brokers: readonly string[], groupId: string, what: string, pred: (g: GroupState) => boolean, timeoutMs = 60_000): Promise<GroupState> {
  let last: GroupState = { state: 'Unknown', members: [] };
  const ok = await eventually(async () => {
    last = await describeGroup(brokers, groupId).catch(() => last);
    return pred(last);
  }, timeoutMs);
  if (!ok) throw new Error(`group ${groupId}: not ${what} after ${timeoutMs} ms; last ${JSON.stringify(last)}`);
  return last;
}

/** Stable, with `n` members that each hold at least one partition. */
export const stableWith =
  (n: number, totalPartitions?: number) =>
  (g: GroupState): boolean =>
    g.state === 'Stable' &&
    g.members.length === n &&
    g.members.every((m) => m.partitions.length > 0) &&
    (totalPartitions === undefined || g.members.reduce((k, m) => k + m.partitions.length, 0) === totalPartitions);

/**
 * A member that joins `groupId` (same subscription, kafkajs' default assignor like the jobs),
 * takes its share of the partitions, reads and commits nothing (paused, no offset resolved,
 * no auto-commit), and leaves after `hold()` resolves: a rebalance that takes partitions from
 * the jobs and returns them untouched.
 */
export async function briefMember(brokers: readonly string[], groupId: string, topic: string, hold: () => Promise<void>): Promise<void> {
  const consumer = kafkaClient(brokers, 'rxlake-chaos-brief-member').consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
  consumer.on(consumer.events.GROUP_JOIN, () => consumer.pause([{ topic }]));
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: () => Promise.resolve() });
    await hold();
  } finally {
    await consumer.disconnect();
  }
}

export interface ProducedMessage {
  readonly key: string;
  readonly value: Buffer | null;
  /** Explicit partition (else the key's). */
  readonly partition?: number;
  /** Sequence number, sent as header `seq`. */
  readonly seq: number;
}

export interface SteadyProducerOptions {
  readonly brokers: readonly string[];
  readonly topic: string;
  /** Messages in all. */
  readonly total: number;
  readonly ratePerSecond: number;
  /** The i-th message (0-based). */
  readonly message: (i: number, partitions: number) => ProducedMessage;
  /** Partitions to spread over when `message` sets them explicitly (changeable with `setPartitions`). */
  readonly partitions?: number;
}

/**
 * Produces `total` messages at about `ratePerSecond` in small batches, each batch retried until
 * the broker acknowledges it (a broker outage pauses production; a retried batch may land twice
 * in the topic, which is why the ground truth is the topic read back, not this count).
 */
export class SteadyProducer {
  readonly options: SteadyProducerOptions;
  acked = 0;
  sendErrors = 0;
  readonly done: Promise<void>;
  private partitions: number;
  private producer: Producer | undefined;
  private reconnect = false;
  private stopped = false;

  constructor(options: SteadyProducerOptions) {
    this.options = options;
    this.partitions = options.partitions ?? 1;
    this.done = this.run();
    this.done.catch(() => undefined);
  }

  /** From now on, messages are spread over `n` partitions (a new client sees the new partitions). */
  setPartitions(n: number): void {
    this.partitions = n;
    this.reconnect = true;
  }

  stop(): void {
    this.stopped = true;
  }

  private async connect(): Promise<Producer> {
    const producer = kafkaClient(this.options.brokers, 'rxlake-chaos-producer').producer({ allowAutoTopicCreation: false, idempotent: false, retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 } });
    await producer.connect();
    return producer;
  }

  private async run(): Promise<void> {
    const { total, ratePerSecond } = this.options;
    const tickMs = 100;
    const perTick = Math.max(1, Math.round((ratePerSecond * tickMs) / 1000));
    const started = Date.now();
    let i = 0;
    try {
      while (i < total && !this.stopped) {
        const batch: ProducedMessage[] = [];
        for (let k = 0; k < perTick && i + k < total; k++) batch.push(this.options.message(i + k, this.partitions));
        for (;;) {
          try {
            if (this.reconnect || this.producer === undefined) {
              this.reconnect = false;
              await this.producer?.disconnect().catch(() => undefined);
              this.producer = undefined;
              this.producer = await this.connect();
            }
            await this.producer.send({
              topic: this.options.topic,
              acks: -1,
              timeout: 10_000,
              messages: batch.map((m) => ({
                key: m.key,
                value: m.value,
                headers: { seq: String(m.seq) },
                ...(m.partition === undefined ? {} : { partition: m.partition }),
              })),
            });
            break;
          } catch {
            this.sendErrors += 1;
            this.reconnect = true;
            if (this.stopped) return;
            await new Promise((r) => setTimeout(r, 300));
          }
        }
        i += batch.length;
        this.acked += batch.length;
        // Pace: where this batch should have been sent at the target rate.
        const due = started + (i / ratePerSecond) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      await this.producer?.disconnect().catch(() => undefined);
    }
  }
}

/** What the topic holds: every (partition, offset) with its value bytes and `seq` header. */
export interface TopicTruth {
  readonly topic: string;
  readonly records: Map<string, { readonly value: Buffer | null; readonly seq: number | undefined }>;
  readonly ends: Map<number, number>;
}

export const keyOf = (partition: unknown, offset: unknown): string => `${String(partition)}:${String(offset)}`;

/** Reads `topic` from its beginning to its current end with a throwaway group (plain kafkajs). */
export async function readTopic(brokers: readonly string[], topic: string, timeoutMs = 60_000): Promise<TopicTruth> {
  const offsets = await withAdmin(brokers, (admin) => admin.fetchTopicOffsets(topic));
  const ends = new Map(offsets.map((o) => [o.partition, Number(o.high)]));
  const starts = new Map(offsets.map((o) => [o.partition, Number(o.low)]));
  const records = new Map<string, { value: Buffer | null; seq: number | undefined }>();
  const expected = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  if (expected === 0) return { topic, records, ends };
  await consumeUntil(
    [topic],
    ({ partition, message }) => {
      const o = Number(message.offset);
      if (o < (ends.get(partition) ?? 0) && o >= (starts.get(partition) ?? 0)) {
        const seq = message.headers?.seq;
        records.set(keyOf(partition, o), { value: message.value, seq: seq === undefined ? undefined : Number(String(seq)) });
      }
    },
    () => records.size >= expected,
    () => `${records.size}/${expected} records`,
    { brokers, timeoutMs, consumer: { maxWaitTimeInMs: 200 } },
  );
  return { topic, records, ends };
}

// ---------------------------------------------------------------------------------------------
// Rideshare messages for the bronze job
// ---------------------------------------------------------------------------------------------

/** The i-th message of a seeded rideshare stream of `topic`; every `corruptEvery`-th is corrupt (dead-letter table). */
export function rideshareMessages(topic: BronzeTopic, seed: number, corruptEvery = 23): (i: number, partitions: number) => ProducedMessage {
  const gen = createEventGenerator({ seed, startTime: Date.now() });
  const made: ProducedMessage[] = [];
  return (i, partitions) => {
    while (made.length <= i) {
      const n = made.length;
      const ev = gen.next(topic);
      let value: Buffer | null = Buffer.from(JSON.stringify(ev.value));
      if (corruptEvery > 0 && n % corruptEvery === corruptEvery - 1) {
        const kind = CORRUPTION_KINDS[Math.floor(n / corruptEvery) % CORRUPTION_KINDS.length] ?? 'truncated_json';
        const bad = corrupt(kind, value, n);
        value = bad === null ? null : Buffer.from(bad);
      }
      made.push({ key: ev.key, value, seq: n });
    }
    const m = made[i] as ProducedMessage;
    return partitions > 1 ? { ...m, partition: i % partitions } : m;
  };
}

// ---------------------------------------------------------------------------------------------
// The judge (delta-rs)
// ---------------------------------------------------------------------------------------------

export interface RowVerdict {
  /** Records the topic holds. */
  readonly expected: number;
  /** Rows delta-rs reads (main + dead-letter table). */
  readonly rows: number;
  readonly mainRows: number;
  readonly deadLetterRows: number;
  /** Rows beyond the first of their (partition, offset). */
  readonly duplicates: number;
  /** (partition, offset) of the topic with no row. */
  readonly missing: number;
  /** Rows naming a (partition, offset) the topic does not hold. */
  readonly extra: number;
  /** Rows whose payload bytes differ from the record's. */
  readonly mismatched: number;
  readonly samples: { readonly duplicates: string[]; readonly missing: string[]; readonly mismatched: string[]; readonly missingByPartition: Record<string, number> };
}

function b64(v: unknown): Buffer | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object' && 'base64' in v) return Buffer.from(String((v as { base64: string }).base64), 'base64');
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  throw new TypeError(`not a payload: ${JSON.stringify(v)}`);
}

/** Counts rows per (partition, offset) across tables; `bytesOf` gives a row's payload (undefined: not compared). */
export function tally(truth: TopicTruth, tables: ReadonlyArray<{ rows: ReadonlyArray<Record<string, unknown>>; bytesOf?: (row: Record<string, unknown>) => Buffer | null }>): Omit<RowVerdict, 'mainRows' | 'deadLetterRows'> {
  const seen = new Map<string, number>();
  const mismatchedKeys: string[] = [];
  let rows = 0;
  let extra = 0;
  for (const t of tables) {
    for (const r of t.rows) {
      rows += 1;
      const k = keyOf(r._kafka_partition, r._kafka_offset);
      seen.set(k, (seen.get(k) ?? 0) + 1);
      const rec = truth.records.get(k);
      if (rec === undefined) {
        extra += 1;
        continue;
      }
      if (t.bytesOf !== undefined) {
        const got = t.bytesOf(r);
        const same = got === null || rec.value === null ? got === rec.value : got.equals(rec.value);
        if (!same) mismatchedKeys.push(k);
      }
    }
  }
  let duplicates = 0;
  const dupKeys: string[] = [];
  for (const [k, n] of seen) {
    if (n > 1) {
      duplicates += n - 1;
      dupKeys.push(`${k}×${n}`);
    }
  }
  const missingKeys: string[] = [];
  const missingByPartition: Record<string, number> = {};
  for (const k of truth.records.keys()) {
    if (!seen.has(k)) {
      missingKeys.push(k);
      const p = k.split(':')[0] ?? '?';
      missingByPartition[p] = (missingByPartition[p] ?? 0) + 1;
    }
  }
  return {
    expected: truth.records.size,
    rows,
    duplicates,
    missing: missingKeys.length,
    extra,
    mismatched: mismatchedKeys.length,
    samples: { duplicates: dupKeys.slice(0, 10), missing: missingKeys.slice(0, 10), mismatched: mismatchedKeys.slice(0, 10), missingByPartition },
  };
}

/** delta-rs reads `bronze_<topic>` and `dlq_bronze_<topic>` under `base` and counts them against the topic. */
export async function judgeBronze(base: string, logicalTopic: string, truth: TopicTruth, payloads = true): Promise<RowVerdict> {
  const mainCols = ['_kafka_partition', '_kafka_offset', ...(payloads ? ['_raw_value'] : [])];
  const dlqCols = ['_kafka_partition', '_kafka_offset', ...(payloads ? ['original_payload_bytes'] : [])];
  const [main, dlq] = await Promise.all([
    verifyDelta(`${base}/bronze_${logicalTopic}`, { rows: true, columns: mainCols }),
    verifyDelta(`${base}/dlq_bronze_${logicalTopic}`, { rows: true, columns: dlqCols }),
  ]);
  const t = tally(truth, [
    { rows: main.rows ?? [], ...(payloads ? { bytesOf: (r: Record<string, unknown>) => b64(r._raw_value) } : {}) },
    { rows: dlq.rows ?? [], ...(payloads ? { bytesOf: (r: Record<string, unknown>) => b64(r.original_payload_bytes) } : {}) },
  ]);
  return { ...t, mainRows: main.rows?.length ?? 0, deadLetterRows: dlq.rows?.length ?? 0 };
}

/**
 * With `CHAOS_PROBE_DUPLICATE=1`: appends a copy of up to 3 of the table's rows with delta-rs
 * (a deliberate second write) so the case must report duplicates. Returns how many it copied.
 */
export async function probeDuplicate(uri: string): Promise<number> {
  if (process.env.CHAOS_PROBE_DUPLICATE !== '1') return 0;
  const t = await verifyDelta(uri, { rows: true });
  const rows = (t.rows ?? []).slice(0, 3);
  if (rows.length > 0) await appendWithDeltaRs(uri, rows);
  console.log(`[chaos] probe: wrote ${rows.length} rows of ${uri} a second time`);
  return rows.length;
}

// ---------------------------------------------------------------------------------------------
// Places to write to, results
// ---------------------------------------------------------------------------------------------

export interface TableBase {
  /** `DELTA_BASE_PATH`. */
  readonly uri: string;
  /** Job env for this storage (S3 endpoint and credentials). */
  readonly env: Record<string, string>;
  dispose(): Promise<void>;
}

export async function localBase(prefix: string): Promise<TableBase> {
  const dir = await mkdtemp(join(tmpdir(), `rxlake-${prefix}-`));
  return { uri: dir, env: {}, dispose: () => rm(dir, { recursive: true, force: true }) };
}

export function s3Base(prefix: string): TableBase {
  const key = uniqueName(prefix);
  const client = (): S3Client =>
    new S3Client({
      endpoint: stack.s3.endpoint,
      region: stack.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
    });
  return {
    uri: `s3://${stack.s3.bucket}/${key}`,
    env: {
      S3_ENDPOINT_URL: stack.s3.endpoint,
      AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
      AWS_REGION: stack.s3.region,
    },
    dispose: async () => {
      const s3 = client();
      try {
        for (;;) {
          const list = await s3.send(new ListObjectsV2Command({ Bucket: stack.s3.bucket, Prefix: `${key}/` }));
          const objects = (list.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ Key: o.Key }]));
          if (objects.length === 0) break;
          await s3.send(new DeleteObjectsCommand({ Bucket: stack.s3.bucket, Delete: { Objects: objects } }));
          if (list.IsTruncated !== true) break;
        }
      } finally {
        s3.destroy();
      }
    },
  };
}

/** The Kafka client a job runs with under `env` (over this process's environment). */
export function expectedClient(env: Record<string, string>): string {
  // The jobs' default: wire (src/runtime/config.ts, KAFKA_CLIENT).
  return env.KAFKA_CLIENT ?? process.env.KAFKA_CLIENT ?? 'wire';
}

/**
 * The Kafka clients a case runs with, for `describe.each`: each of `clients` unless
 * `KAFKA_CLIENT` is set for the whole run (then only that one). `suffix` ends the case name
 * (none for kafkajs, the cases' first client), `env` selects the client.
 */
export function caseClients(clients: readonly string[] = ['kafkajs', 'wire']): Array<{ client: string; suffix: string; env: Record<string, string> }> {
  const fixed = process.env.KAFKA_CLIENT;
  const list = fixed !== undefined ? [fixed] : clients;
  return list.map((client) => ({ client, suffix: client === 'kafkajs' ? '' : `-${client}`, env: { KAFKA_CLIENT: client } }));
}

/** Prints a case's result as one line and appends it to `.stack/chaos-results.jsonl`. */
export async function recordResult(caseName: string, result: Record<string, unknown>): Promise<void> {
  const line = JSON.stringify({ case: caseName, at: new Date().toISOString(), scale: CHAOS_SCALE, ...result });
  console.log(`[chaos] result ${line}`);
  const dir = join(stack.root, '.stack');
  await mkdir(dir, { recursive: true }).catch(() => undefined);
  await appendFile(join(dir, 'chaos-results.jsonl'), `${line}\n`).catch(() => undefined);
}

/** A one-line summary of a verdict and a fleet's exits, for assertion messages. */
export function describeVerdict(v: RowVerdict, fleet: Fleet): string {
  const exits = fleet.exits().filter((e) => e.sent === undefined || (e.sent === 'SIGTERM' && e.code !== 0));
  return [
    `expected ${v.expected}, rows ${v.rows} (main ${v.mainRows}, dead-letter ${v.deadLetterRows}), duplicates ${v.duplicates}, missing ${v.missing}, extra ${v.extra}, bytes changed ${v.mismatched}`,
    v.duplicates > 0 ? `duplicate samples: ${v.samples.duplicates.join(' ')}` : '',
    v.missing > 0 ? `missing samples: ${v.samples.missing.join(' ')} by partition ${JSON.stringify(v.samples.missingByPartition)}` : '',
    exits.length > 0 ? `exits: ${exits.map((e) => `${e.name} sent=${e.sent ?? '-'} code=${e.code} signal=${e.signal} ${e.lastError ?? ''}`).join(' | ')}` : '',
  ]
    .filter((s) => s !== '')
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// A bronze case: topic, group, tables, job processes, producers, settle and judge
// ---------------------------------------------------------------------------------------------

export interface BronzeCaseOptions {
  readonly name: string;
  readonly brokers: readonly string[];
  readonly partitions: number;
  readonly base: TableBase;
  readonly topic?: BronzeTopic;
  /** Job env every process of the case gets (after the case's own). */
  readonly env?: Record<string, string>;
  /** Create the topic first (default true). */
  readonly createTopic?: boolean;
}

export interface BronzeOutcome {
  readonly verdict: RowVerdict;
  /** Every record of the topic had a row before the jobs were stopped. */
  readonly covered: boolean;
  /** From the end of production until every record had a row (or the wait gave up). */
  readonly settleMs: number;
  readonly lagAfterStop: number;
  readonly exits: ReturnType<Fleet['counts']>;
}

export class BronzeCase {
  readonly options: BronzeCaseOptions;
  readonly topic: BronzeTopic;
  readonly prefix: string;
  readonly kafkaTopic: string;
  readonly groupId: string;
  readonly fleet = new Fleet();
  readonly producers: SteadyProducer[] = [];
  readonly startedAt = Date.now();

  constructor(options: BronzeCaseOptions) {
    this.options = options;
    this.topic = options.topic ?? 'ratings';
    this.prefix = `${uniqueName('chaos')}.`;
    this.kafkaTopic = `${this.prefix}${this.topic}`;
    this.groupId = uniqueName('chaos-bronze');
  }

  async setUp(): Promise<this> {
    if (this.options.createTopic !== false) await createTopic(this.options.brokers, this.kafkaTopic, this.options.partitions);
    return this;
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      KAFKA_BOOTSTRAP_SERVERS: this.options.brokers.join(','),
      KAFKA_TOPIC_PREFIX: this.prefix,
      KAFKA_CONSUMER_GROUP: this.groupId,
      BRONZE_TOPICS: this.topic,
      DELTA_BASE_PATH: this.options.base.uri,
      // A SIGKILLed member's partitions move after this long (6 s is the broker's minimum).
      KAFKA_SESSION_TIMEOUT_SECONDS: '6',
      KAFKA_METADATA_MAX_AGE_SECONDS: '2',
      BATCH_INTERVAL_SECONDS: '0.5',
      BATCH_MAX_RECORDS: '300',
      ...this.options.base.env,
      ...this.options.env,
      ...extra,
    };
  }

  startJob(extra: Record<string, string> = {}, label = 'bronze'): JobProcess {
    return this.fleet.start('bronze', this.env(extra), label);
  }

  produce(total: number, ratePerSecond: number, seed: number, partitions?: number): SteadyProducer {
    const p = new SteadyProducer({
      brokers: this.options.brokers,
      topic: this.kafkaTopic,
      total,
      ratePerSecond,
      message: rideshareMessages(this.topic, seed),
      ...(partitions === undefined ? {} : { partitions }),
    });
    this.producers.push(p);
    return p;
  }

  /** Rows of main + dead-letter table, by (partition, offset), without payloads (cheap enough to poll). */
  private async covered(truth: TopicTruth): Promise<boolean> {
    try {
      const v = await judgeBronze(this.options.base.uri, this.topic, truth, false);
      return v.missing === 0;
    } catch {
      return false; // tables not readable yet
    }
  }

  /**
   * Waits for production to end, reads the topic back, waits (delta-rs) until every record has
   * a row or `timeoutMs` passes, stops every job with SIGTERM, and judges with delta-rs.
   */
  async settle(timeoutMs = 45_000): Promise<BronzeOutcome> {
    await Promise.all(this.producers.map((p) => p.done));
    const truth = await readTopic(this.options.brokers, this.kafkaTopic);
    const t0 = Date.now();
    const covered = await eventually(() => this.covered(truth), timeoutMs, 500);
    const settleMs = Date.now() - t0;
    await this.fleet.stopAll();
    await probeDuplicate(`${this.options.base.uri}/bronze_${this.topic}`);
    const verdict = await judgeBronze(this.options.base.uri, this.topic, truth, true);
    const progress = await groupProgress(this.options.brokers, this.groupId, this.kafkaTopic).catch(() => ({ lag: -1 }));
    return { verdict, covered, settleMs, lagAfterStop: progress.lag, exits: this.fleet.counts() };
  }

  /** Records the outcome and asserts exactly once and no job stopping by itself (with the client asked for). */
  async conclude(outcome: BronzeOutcome, extra: Record<string, unknown> = {}): Promise<void> {
    const { verdict: v } = outcome;
    const clients = this.fleet.clients();
    await recordResult(this.options.name, {
      clients,
      seconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
      expected: v.expected,
      rows: v.rows,
      duplicates: v.duplicates,
      missing: v.missing,
      extra: v.extra,
      bytesChanged: v.mismatched,
      covered: outcome.covered,
      settleMs: outcome.settleMs,
      committedLagAfterStop: outcome.lagAfterStop,
      exits: outcome.exits,
      producerRetries: this.producers.reduce((n, p) => n + p.sendErrors, 0),
      ...(v.duplicates > 0 ? { duplicateSamples: v.samples.duplicates } : {}),
      ...(v.missing > 0 ? { missingByPartition: v.samples.missingByPartition } : {}),
      ...extra,
    });
    const msg = describeVerdict(v, this.fleet);
    expect(clients, 'the Kafka client the processes consumed with').toEqual([expectedClient(this.env())]);
    expect(v.expected, 'the case produced records').toBeGreaterThan(0);
    expect.soft(v.duplicates, msg).toBe(0);
    expect.soft(v.missing, msg).toBe(0);
    expect.soft(v.extra, msg).toBe(0);
    expect.soft(v.mismatched, msg).toBe(0);
    expect.soft(this.fleet.selfExitsNonZero(), msg).toEqual([]);
    expect.soft(this.fleet.termNonZero(), msg).toEqual([]);
  }

  async dispose(): Promise<void> {
    for (const p of this.producers) p.stop();
    await this.fleet.killAll();
    await this.options.base.dispose().catch(() => undefined);
  }
}
