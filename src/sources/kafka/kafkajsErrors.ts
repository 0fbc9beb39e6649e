/**
 * Broker answers in the source's terms, found by their protocol error type (kafkajs' `type`)
 * along the `cause` chain: commit failures that a rejoin of the group fixes, and the answers of
 * a topic created a moment ago. Whether an error is worth retrying at all is the library's one
 * predicate, `isRetriable` (`src/core/errors.ts`). This module does not load kafkajs.
 */
import { causeChain, isRetriable } from '../../core/errors.ts';

/** Commit errors that a rejoin of the group fixes: worth retrying. */
const REJOIN_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
]);

/** Broker answers of a topic that does not exist yet or has no leader yet. */
const NOT_READY_TYPES = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER']);

/** The first protocol error type along `err`'s `cause` chain that `types` holds. */
function brokerErrorType(err: unknown, types: ReadonlySet<string>): string | undefined {
  for (const e of causeChain(err)) {
    const { type } = e as { type?: unknown };
    if (typeof type === 'string' && types.has(type)) return type;
  }
  return undefined;
}

/**
 * The broker error type of a commit failure that a rejoin of the group fixes, looked up along
 * the `cause` chain (kafkajs wraps e.g. ILLEGAL_GENERATION in a non-retriable error).
 */
export function rejoinReason(err: unknown): string | undefined {
  return brokerErrorType(err, REJOIN_ERRORS);
}

/**
 * Whether `err` (or an error in its `cause` chain, e.g. inside kafkajs'
 * `KafkaJSNumberOfRetriesExceeded`) is the broker saying a topic or partition does not exist
 * here, or has no leader yet: what a topic created a moment ago answers for a while.
 *
 * @param err Anything thrown.
 * @return True for the answers of a topic that is not ready yet.
 */
export function isTopicNotReady(err: unknown): boolean {
  return brokerErrorType(err, NOT_READY_TYPES) !== undefined;
}

/**
 * Whether a Kafka error is worth waiting out: the library's `isRetriable`, which knows kafkajs'
 * errors (broker outages are; authentication failures and unsupported protocols are not).
 *
 * @deprecated Use `isRetriable` (exported by `rxlake`): one predicate for every error.
 */
export const isRetriableKafkaError: (err: unknown) => boolean = isRetriable;
