/**
 * Kafka topics that must exist before a consumer starts, and the broker's answers for a topic
 * that is not there yet.
 *
 * A consumer subscribed to a topic the cluster does not have only learns it from the client's
 * "This server does not host this topic-partition", after its own retries, without the topic's
 * name. `requireTopics` asks first (through the `KafkaClient` look-ups, kafkajs by default) and
 * fails at once naming every missing topic (or waits for them, bounded, when asked to).
 * `isTopicNotReady` recognises the answers a topic created a moment ago gives until its
 * partitions have leaders; `retryWhileTopicNotReady` retries an operation (a produce) through
 * them. Both wait on the library's one retry path (`withRetry`).
 */
import { asyncScheduler } from 'rxjs';
import type { SchedulerLike } from 'rxjs';
import { RxlakeError } from '../core/errors.ts';
import { withRetry } from '../core/retry.ts';
import type { RetryPolicy } from '../core/retry.ts';
import type { KafkaClient, KafkaClientEvents, KafkaClientFactory, KafkaConnectionSettings, KafkaSasl, KafkaSsl } from './kafka/client.ts';
import { kafkajsClient } from './kafka/kafkajsClient.ts';
import { isTopicNotReady } from './kafka/kafkajsErrors.ts';

export { isTopicNotReady } from './kafka/kafkajsErrors.ts';

/** Backoff between checks and retries: from 250 ms up to 5 s. */
const BACKOFF: RetryPolicy = { initialMs: 250, maxMs: 5_000 };

/** Thrown by `requireTopics`: the topics the cluster does not have. Code `MISSING_TOPICS`; not retriable. */
export class MissingTopicsError extends RxlakeError {
  /** The missing topics, sorted. */
  readonly topics: readonly string[];
  readonly brokers: readonly string[];
  constructor(topics: readonly string[], brokers: readonly string[], waitedMs: number) {
    const sorted = [...topics].sort();
    super(
      `Kafka topic${sorted.length === 1 ? '' : 's'} ${sorted.join(', ')} ${sorted.length === 1 ? 'does' : 'do'} not exist on ${brokers.join(',')}` +
        (waitedMs > 0 ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ''),
      { code: 'MISSING_TOPICS' },
    );
    this.name = 'MissingTopicsError';
    this.topics = sorted;
    this.brokers = [...brokers];
  }
}

/** Where and how the look-ups reach the cluster. */
export interface KafkaLookupOptions {
  readonly brokers: readonly string[];
  /** Client id of the look-ups; default `'rxlake-topic-check'`. */
  readonly clientId?: string;
  /** TLS: `true` (system trust store) or a CA, client certificate and key. */
  readonly ssl?: KafkaSsl;
  /** PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. */
  readonly sasl?: KafkaSasl;
  /** Connection settings (connectionTimeout, requestTimeout, retry, …). */
  readonly connection?: KafkaConnectionSettings;
  /** The Kafka client; default `kafkajsClient()`. */
  readonly client?: KafkaClientFactory;
}

export interface RequireTopicsOptions extends KafkaLookupOptions {
  readonly topics: readonly string[];
  /** How long to wait for missing topics to appear, ms; 0 (default): throw at once. */
  readonly waitMs?: number;
  /** Called before each wait, with what is still missing. */
  readonly onWait?: (wait: TopicWait) => void;
  /** Aborting ends a wait with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Clock and timers of the waits; default rxjs' `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
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

/** A client that reports nothing: only its look-ups are used. */
const NO_EVENTS: KafkaClientEvents = {
  joined: () => undefined,
  crashed: () => undefined,
  stopped: () => undefined,
  answered: () => undefined,
  committed: () => undefined,
  skipped: () => undefined,
  log: () => undefined,
};

/**
 * A client for look-ups only (`describeTopics`, `topicOffsets`, …): it never joins a group and
 * logs nothing; `closeLookups()` closes it.
 *
 * ## Example
 * ```ts
 * const client = lookupClient({ brokers: ['127.0.0.1:9092'] });
 * try {
 *   console.log(await client.topicOffsets('orders'));
 * } finally {
 *   await client.closeLookups();
 * }
 * ```
 *
 * @param options Brokers, client id, security, connection settings and client.
 * @return The client.
 */
export function lookupClient(options: KafkaLookupOptions): KafkaClient {
  const clientId = options.clientId ?? 'rxlake-topic-check';
  return (options.client ?? kafkajsClient())(
    {
      brokers: options.brokers,
      clientId,
      groupId: clientId, // never joined: only the look-ups are used
      ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
      ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
      logLevel: 'nothing',
      consumer: {},
      connection: options.connection ?? {},
    },
    NO_EVENTS,
  );
}

interface TopicState {
  readonly missing: readonly string[];
  readonly leaderless: readonly string[];
}

/** A check found the topics not ready yet: retried by `requireTopics`, never thrown out of it. */
class NotReadyYet extends Error {}

/**
 * Resolves once every topic exists (and its partitions have leaders); throws
 * `MissingTopicsError` naming the missing ones at once, or after `waitMs` of checks with
 * backoff. A topic that exists but has partitions without a leader is waited for (at least
 * 15 s), then left to the consumer's own retries. Connection failures are thrown as the client
 * reports them.
 *
 * ## Example
 * ```ts
 * await requireTopics({ brokers: ['127.0.0.1:9092'], topics: ['orders'], waitMs: 60_000 });
 * ```
 *
 * @param options Brokers, topics, security, client, how long to wait, the wait hook, abort signal and scheduler.
 * @return A promise that resolves when the topics are there.
 */
export async function requireTopics(options: RequireTopicsOptions): Promise<void> {
  const { brokers, topics, waitMs = 0, onWait, signal, scheduler = asyncScheduler } = options;
  if (topics.length === 0) return;
  const client = lookupClient(options);
  const started = scheduler.now();
  const waited = (): number => scheduler.now() - started;
  let state: TopicState = { missing: [], leaderless: [] };
  /** Checks until `ready(state)` or `giveUpAfterMs` passed; false then. */
  const checkUntil = (giveUpAfterMs: number, ready: (s: TopicState) => boolean): Promise<boolean> =>
    withRetry(
      async () => {
        state = await topicState(client, topics);
        if (!ready(state)) throw new NotReadyYet();
      },
      {
        ...BACKOFF,
        giveUpAfterMs,
        retryIf: (err) => err instanceof NotReadyYet,
        onRetry: (_err, { attempt, delayMs }) => onWait?.({ ...state, attempt, retryInMs: delayMs, waitedMs: waited() }),
        scheduler,
        ...(signal !== undefined ? { signal } : {}),
      },
    ).then(
      () => true,
      (err: unknown) => {
        if (err instanceof NotReadyYet) return false;
        throw err;
      },
    );
  try {
    let ok = await checkUntil(waitMs, (s) => s.missing.length === 0);
    if (ok && state.leaderless.length > 0) {
      // Leaders still being elected after the grace: the consumer retries that by itself.
      ok = await checkUntil(Math.max(waitMs, LEADER_GRACE_MS) - waited(), (s) => s.missing.length === 0 && s.leaderless.length === 0);
    }
    if (!ok && state.missing.length > 0) throw new MissingTopicsError(state.missing, brokers, waitMs > 0 ? waited() : 0);
  } finally {
    await client.closeLookups();
  }
}

async function topicState(client: Pick<KafkaClient, 'describeTopics'>, topics: readonly string[]): Promise<TopicState> {
  const described = await client.describeTopics(topics);
  return {
    missing: described.filter((t) => !t.exists).map((t) => t.topic),
    leaderless: described.filter((t) => t.exists && !t.ready).map((t) => t.topic),
  };
}

export interface TopicRetryOptions {
  /** Give up after this long, ms (default 60 000): the last error is thrown. */
  readonly maxWaitMs?: number;
  /** Called before each wait. */
  readonly onRetry?: (err: Error, attempt: number, retryInMs: number) => void;
  readonly signal?: AbortSignal;
}

/**
 * Runs `fn` until it succeeds, retrying — with backoff from 250 ms up to 5 s, for at most
 * `maxWaitMs` — while it fails because a topic is not ready (`isTopicNotReady`): the answers a
 * topic created a moment ago gives. Any other error is thrown at once.
 *
 * ## Example
 * ```ts
 * await retryWhileTopicNotReady(() => producer.send({ topic: 'orders', messages }), { maxWaitMs: 30_000 });
 * ```
 *
 * @param fn One attempt.
 * @param options How long to keep trying, the retry hook and an abort signal.
 * @return What the first successful attempt resolved with.
 */
export function retryWhileTopicNotReady<T>(fn: () => Promise<T>, options: TopicRetryOptions = {}): Promise<T> {
  const { maxWaitMs = 60_000, onRetry, signal } = options;
  return withRetry(fn, {
    ...BACKOFF,
    giveUpAfterMs: maxWaitMs,
    retryIf: isTopicNotReady,
    onRetry: (err, { attempt, delayMs }) => onRetry?.(err, attempt, delayMs),
    ...(signal !== undefined ? { signal } : {}),
  });
}
