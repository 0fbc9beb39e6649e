/**
 * Kafka topics that must exist before a consumer starts, and the broker's answers for a topic
 * that is not there yet.
 *
 * A consumer subscribed to a topic the cluster does not have only learns it from kafkajs'
 * "This server does not host this topic-partition", after its own retries, without the topic's
 * name. `requireTopics` asks first and fails at once naming every missing topic (or waits for
 * them, bounded, when asked to). `isTopicNotReady` recognises the answers a topic created a
 * moment ago gives until its partitions have leaders; `retryWhileTopicNotReady` retries an
 * operation (a produce) through them.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaConfig } from 'kafkajs';
import { backoffDelay, sleep } from '../sinks/delta/retry.ts';

/** Broker answers (kafkajs `type`) of a topic that does not exist yet or has no leader yet. */
const NOT_READY_TYPES = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER']);

/** Backoff between checks and retries: from 250 ms up to 5 s (the shared jittered formula). */
const BACKOFF = { initialMs: 250, maxMs: 5_000 } as const;

/**
 * Whether `err` (or an error in its `cause` chain, e.g. inside kafkajs'
 * `KafkaJSNumberOfRetriesExceeded`) is the broker saying a topic or partition does not exist
 * here, or has no leader yet: what a topic created a moment ago answers for a while.
 */
export function isTopicNotReady(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 10; depth++) {
    const { type, cause } = e as { type?: unknown; cause?: unknown };
    if (typeof type === 'string' && NOT_READY_TYPES.has(type)) return true;
    if (cause === e) break;
    e = cause;
  }
  return false;
}

/** Thrown by `requireTopics`: the topics the cluster does not have. */
export class MissingTopicsError extends Error {
  /** The missing topics, sorted. */
  readonly topics: readonly string[];
  readonly brokers: readonly string[];
  constructor(topics: readonly string[], brokers: readonly string[], waitedMs: number) {
    const sorted = [...topics].sort();
    super(
      `Kafka topic${sorted.length === 1 ? '' : 's'} ${sorted.join(', ')} ${sorted.length === 1 ? 'does' : 'do'} not exist on ${brokers.join(',')}` +
        (waitedMs > 0 ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ''),
    );
    this.name = 'MissingTopicsError';
    this.topics = sorted;
    this.brokers = [...brokers];
  }
}

export interface RequireTopicsOptions {
  readonly brokers: readonly string[];
  readonly topics: readonly string[];
  /** kafkajs client settings (ssl, sasl, clientId, …). */
  readonly kafkaConfig?: Omit<KafkaConfig, 'brokers'>;
  /** How long to wait for missing topics to appear, ms; 0 (default): throw at once. */
  readonly waitMs?: number;
  /** Called before each wait, with what is still missing. */
  readonly onWait?: (wait: TopicWait) => void;
  /** Aborting ends a wait with the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface TopicWait {
  /** Topics the cluster does not have. */
  readonly missing: readonly string[];
  /** Topics it has, with a partition that has no leader yet. */
  readonly leaderless: readonly string[];
  readonly attempt: number;
  readonly retryInMs: number;
  readonly waitedMs: number;
}

/**
 * A topic that exists but whose partitions have no leader yet (created a moment ago) is waited
 * for this long even when `waitMs` is 0; after it, the consumer's own retries take over.
 */
const LEADER_GRACE_MS = 15_000;

/**
 * Resolves once every topic exists (and its partitions have leaders); throws
 * `MissingTopicsError` naming the missing ones at once, or after `waitMs` of checks with
 * backoff. Connection failures are thrown as kafkajs reports them.
 *
 * ```ts
 * await requireTopics({ brokers: ['127.0.0.1:9092'], topics: ['orders'], waitMs: 60_000 });
 * ```
 */
export async function requireTopics(options: RequireTopicsOptions): Promise<void> {
  const { brokers, topics, waitMs = 0, onWait, signal } = options;
  if (topics.length === 0) return;
  const kafka = new Kafka({ clientId: 'rxlake-topic-check', logLevel: logLevel.NOTHING, ...options.kafkaConfig, brokers: [...brokers] });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const { missing, leaderless } = await topicState(admin, topics);
      if (missing.length === 0 && leaderless.length === 0) return;
      const waitedMs = Date.now() - started;
      const bound = missing.length > 0 ? waitMs : Math.max(waitMs, LEADER_GRACE_MS);
      if (waitedMs >= bound) {
        if (missing.length > 0) throw new MissingTopicsError(missing, brokers, waitMs > 0 ? waitedMs : 0);
        return; // leaders still being elected: the consumer retries that by itself
      }
      const retryInMs = Math.min(backoffDelay(attempt, BACKOFF), bound - waitedMs);
      onWait?.({ missing, leaderless, attempt, retryInMs, waitedMs });
      await sleep(retryInMs, signal);
    }
  } finally {
    await admin.disconnect();
  }
}

async function topicState(admin: ReturnType<Kafka['admin']>, topics: readonly string[]): Promise<{ missing: string[]; leaderless: string[] }> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  const present = topics.filter((t) => existing.has(t));
  if (present.length === 0) return { missing, leaderless: [] };
  try {
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics: present });
    const leaderless = metadata
      .filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0 || p.partitionErrorCode !== 0))
      .map((t) => t.name);
    return { missing, leaderless };
  } catch (err) {
    if (isTopicNotReady(err)) return { missing, leaderless: present };
    throw err;
  }
}

export interface TopicRetryOptions {
  /** Give up after this long, ms (default 60 000): the last error is thrown. */
  readonly maxWaitMs?: number;
  /** Called before each wait. */
  readonly onRetry?: (err: Error, attempt: number, retryInMs: number) => void;
  readonly signal?: AbortSignal;
}

/**
 * Runs `fn` until it succeeds, retrying — with the shared jittered backoff, for at most
 * `maxWaitMs` — while it fails because a topic is not ready (`isTopicNotReady`): the answers a
 * topic created a moment ago gives. Any other error is thrown at once.
 */
export async function retryWhileTopicNotReady<T>(fn: () => Promise<T>, options: TopicRetryOptions = {}): Promise<T> {
  const { maxWaitMs = 60_000, onRetry, signal } = options;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const left = maxWaitMs - (Date.now() - started);
      if (!isTopicNotReady(error) || left <= 0 || signal?.aborted === true) throw error;
      const retryInMs = Math.min(backoffDelay(attempt, BACKOFF), left);
      onRetry?.(error, attempt, retryInMs);
      await sleep(retryInMs, signal);
    }
  }
}
