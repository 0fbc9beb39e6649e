/**
 * The Kafka source's waits, on the library's one backoff formula (`backoffDelay`): restarts of
 * a crashed consumer and commits during an outage, commits during a rebalance, look-ups while a
 * young broker's coordinator loads. The waits themselves run on the source's clock.
 */
import type { RetryPolicy } from '../../core/retry.ts';

/** Longest wait of every Kafka policy, ms. */
export const RESTART_MAX_MS = 30_000;

/** Restarting a consumer that crashed on an outage, and committing while the broker is away: from 1 s. */
export const RESTART_POLICY = { initialMs: 1_000, maxMs: RESTART_MAX_MS, jitter: 0.4 } as const satisfies RetryPolicy;

/** Committing again after a rebalance answer (the consumer rejoins by itself): from 200 ms. */
export const REJOIN_POLICY = { ...RESTART_POLICY, initialMs: 200 } as const satisfies RetryPolicy;

/** Asking again for committed offsets while a young broker's coordinator loads: from 200 ms, 8 attempts (about 30 s). */
export const LOOKUP_POLICY = { ...RESTART_POLICY, initialMs: 200, maxAttempts: 8 } as const satisfies RetryPolicy;
