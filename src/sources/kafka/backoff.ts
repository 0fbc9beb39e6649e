/**
 * The Kafka source's backoff: restarts of a crashed consumer, commits during an outage or a
 * rebalance, look-ups while a young broker's coordinator loads. Kept in one place so it can
 * give way to a shared retry policy in one edit.
 */

export const RESTART_INITIAL_MS = 1_000;
export const RESTART_MAX_MS = 30_000;

/**
 * Exponential backoff with ±20 % jitter: `initialMs` doubled per attempt, at most 30 s.
 *
 * @param attempt 1 for the first retry.
 * @param initialMs The first wait before jitter.
 * @param random A number in [0, 1) (the clock's).
 * @return Milliseconds to wait.
 */
export function backoff(attempt: number, initialMs = RESTART_INITIAL_MS, random: () => number = Math.random): number {
  const base = Math.min(RESTART_MAX_MS, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + random() * 0.4));
}
