/**
 * kafkajs' errors in the source's terms: which are broker outages worth waiting out, and which
 * commit failures a rejoin of the group fixes. By name, code and \`cause\` chain only: this module
 * does not load kafkajs.
 */

const OUTAGE_ERROR_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
]);
const FATAL_ERROR_NAMES = new Set([
  'KafkaJSSASLAuthenticationError',
  'KafkaJSNotImplemented',
  'KafkaJSServerDoesNotSupportApiKey',
  'KafkaJSInvariantViolation',
  'KafkaJSUnsupportedMagicByteInMessageSet',
]);
const OUTAGE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND',
]);
/** Commit errors that a rejoin of the group fixes: worth retrying. */
const REJOIN_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
]);

/**
 * Whether a kafkajs error is a broker outage worth waiting out (connection refused or lost,
 * request timeouts, no broker or coordinator available, retriable protocol errors, and kafkajs
 * giving up after its retries on any of those). Authentication failures, authorization and
 * other non-retriable protocol errors, unsupported protocol versions and errors that are not
 * kafkajs' own (a bug in a handler) are not.
 *
 * @param err What kafkajs threw or reported in a crash.
 * @return True when trying again later can help.
 */
export function isRetriableKafkaError(err: unknown): boolean {
  const chain: Array<{ name?: unknown; code?: unknown; retriable?: unknown; cause?: unknown }> = [];
  for (let e: unknown = err; typeof e === 'object' && e !== null && chain.length < 10; ) {
    const x = e as { name?: unknown; code?: unknown; retriable?: unknown; cause?: unknown };
    chain.push(x);
    if (x.cause === e) break;
    e = x.cause;
  }
  const root = chain[chain.length - 1];
  if (root === undefined) return false;
  if (chain.some((e) => typeof e.name === 'string' && FATAL_ERROR_NAMES.has(e.name))) return false;
  if (typeof root.name === 'string' && OUTAGE_ERROR_NAMES.has(root.name)) return true;
  if (typeof root.code === 'string' && OUTAGE_CODES.has(root.code)) return true;
  return typeof root.name === 'string' && root.name.startsWith('KafkaJS') && root.retriable === true;
}

/**
 * The broker error type of a commit failure that a rejoin of the group fixes, looked up along
 * the `cause` chain (kafkajs wraps e.g. ILLEGAL_GENERATION in a non-retriable error).
 */
export function rejoinReason(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 10; depth++) {
    const { type, cause } = e as { type?: unknown; cause?: unknown };
    if (typeof type === 'string' && REJOIN_ERRORS.has(type)) return type;
    if (cause === e) break;
    e = cause;
  }
  return undefined;
}
