/**
 * The kafkajs adapter without a broker: the neutral options mapped onto kafkajs' configuration,
 * kafkajs' log lines and their levels, and kafkajs' errors classified (rebalance answers found
 * along the `cause` chain, answers worth asking again).
 */
import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  logLevel,
} from 'kafkajs';
import type { LogEntry } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { ClientLogLine, KafkaClientConfig } from '../../src/sources/kafka/client.ts';
import { clientLogLevel, kafkajsClient, kafkajsConfig } from '../../src/sources/kafka/kafkajsClient.ts';
import { rejoinReason } from '../../src/sources/kafka/kafkajsErrors.ts';

const base: KafkaClientConfig = {
  brokers: ['127.0.0.1:9092'],
  clientId: 'rxlake-test',
  groupId: 'g',
  logLevel: 'warn',
  consumer: {},
  connection: {},
};

function protocolError(type: string, retriable: boolean): KafkaJSProtocolError {
  return new KafkaJSProtocolError({ type, code: 0, retriable, message: type } as unknown as Error);
}

function entry(level: number, namespace: string, message: string, error?: string): LogEntry {
  return { namespace, level, label: '', log: { timestamp: '', message, ...(error !== undefined ? { error } : {}) } };
}

describe('kafkajsConfig', () => {
  it('maps TLS, SASL, connection settings and the client id; kafkajs-only settings win over the neutral ones', () => {
    const key = new Uint8Array([1, 2, 3]);
    const config = kafkajsConfig(
      {
        ...base,
        ssl: { ca: ['CA1', 'CA2'], cert: 'CERT', key, passphrase: 'pp', rejectUnauthorized: false, servername: 'kafka.local' },
        sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
        connection: { connectionTimeout: 200, requestTimeout: 5_000, retry: { retries: 1 } },
      },
      { kafka: { requestTimeout: 9_000 } },
      () => undefined,
    );
    expect(config).toMatchObject({
      brokers: ['127.0.0.1:9092'],
      clientId: 'rxlake-test',
      connectionTimeout: 200,
      requestTimeout: 9_000,
      retry: { retries: 1 },
      sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
      ssl: { ca: ['CA1', 'CA2'], cert: 'CERT', passphrase: 'pp', rejectUnauthorized: false, servername: 'kafka.local' },
      logLevel: logLevel.WARN,
    });
    const ssl = config.ssl as { key: unknown };
    expect(Buffer.isBuffer(ssl.key)).toBe(true);
    expect(ssl.key).toEqual(Buffer.from([1, 2, 3]));
    expect(kafkajsConfig({ ...base, ssl: true }, {}, () => undefined).ssl).toBe(true);
    expect(kafkajsConfig(base, {}, () => undefined)).not.toHaveProperty('ssl');
  });

  it('always passes error lines to the log creator (even at logLevel nothing), lowering the ones kafkajs retries by itself', () => {
    const lines: ClientLogLine[] = [];
    const config = kafkajsConfig({ ...base, logLevel: 'nothing' }, {}, (l) => lines.push(l));
    expect(config.logLevel).toBe(logLevel.ERROR);
    const log = config.logCreator?.(logLevel.ERROR);
    log?.(entry(logLevel.ERROR, 'Connection', 'Response JoinGroup(key: 11, version: 5)', 'The group is rebalancing, so a rejoin is needed'));
    log?.(entry(logLevel.ERROR, 'Connection', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092'));
    log?.(entry(logLevel.ERROR, 'Connection', 'SASL SCRAM SHA512 authentication failed'));
    expect(lines).toEqual([
      { level: 'debug', error: true, namespace: 'Connection', message: 'Response JoinGroup(key: 11, version: 5)', extra: { timestamp: '', error: 'The group is rebalancing, so a rejoin is needed' } },
      { level: 'warn', error: true, namespace: 'Connection', message: 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', extra: { timestamp: '' } },
      { level: 'error', error: true, namespace: 'Connection', message: 'SASL SCRAM SHA512 authentication failed', extra: { timestamp: '' } },
    ]);
  });

  it('creates a client without connecting', () => {
    const client = kafkajsClient()(base, { joined() {}, crashed() {}, stopped() {}, answered() {}, committed() {}, skipped() {}, log() {} });
    expect(client.isRetriable(protocolError('NOT_COORDINATOR_FOR_GROUP', true))).toBe(true);
    expect(client.isRetriable(protocolError('GROUP_AUTHORIZATION_FAILED', false))).toBe(false);
    expect(client.isRetriable(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED'))).toBe(true);
  });
});

describe('clientLogLevel', () => {
  it('keeps kafkajs\' level except for ERROR lines about conditions retried by themselves', () => {
    expect(clientLogLevel(entry(logLevel.INFO, 'Consumer', 'Starting'))).toBe('info');
    expect(clientLogLevel(entry(logLevel.WARN, 'Consumer', 'x'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.DEBUG, 'Consumer', 'x'))).toBe('debug');
    // One request's answer, which the caller retries: debug.
    expect(clientLogLevel(entry(logLevel.ERROR, 'Connection', 'Response OffsetCommit(key: 8, version: 5)', 'Specified group generation id is not valid'))).toBe('debug');
    // kafkajs re-joining, restarting or looking for a broker: warn (health reports a lasting outage).
    expect(clientLogLevel(entry(logLevel.ERROR, 'Runner', 'The group is rebalancing, so a rejoin is needed'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Consumer', 'Restarting the consumer in 300ms'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.ERROR, 'BrokerPool', 'Failed to connect to seed broker, trying another broker from the list'))).toBe('warn');
    // A broker away: the connection refused or timed out, the consumer crashing on it (the source restarts it).
    expect(clientLogLevel(entry(logLevel.ERROR, 'Connection', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Connection', 'Connection timeout'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Consumer', 'Crash: KafkaJSNumberOfRetriesExceeded: Connection error: connect ECONNREFUSED 127.0.0.1:38715'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Consumer', 'Crash: KafkaJSNoBrokerAvailableError: No broker available'))).toBe('warn');
    // A member that only heartbeats (the wire client's) meets the outage as a coordinator it cannot find.
    expect(clientLogLevel(entry(logLevel.ERROR, 'Consumer', 'Crash: KafkaJSNonRetriableError: Failed to find group coordinator'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Consumer', 'Crash: KafkaJSNonRetriableError: Connection error: connect ECONNREFUSED 127.0.0.1:35029'))).toBe('warn');
    // Anything else stays an error.
    expect(clientLogLevel(entry(logLevel.ERROR, 'Consumer', 'Crash: KafkaJSSASLAuthenticationError: SASL SCRAM SHA512 authentication failed'))).toBe('error');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Connection', 'SASL SCRAM SHA256 authentication failed'))).toBe('error');
  });
});

describe('rejoinReason', () => {
  it('finds the rebalance answer along the cause chain, however kafkajs wrapped it', () => {
    const illegal = protocolError('ILLEGAL_GENERATION', false);
    expect(rejoinReason(illegal)).toBe('ILLEGAL_GENERATION');
    // kafkajs' typings leave out the `cause` option its constructor takes.
    const Wrapper = KafkaJSNonRetriableError as unknown as new (e: Error, options: { cause: Error }) => Error;
    expect(rejoinReason(new Wrapper(illegal, { cause: illegal }))).toBe('ILLEGAL_GENERATION');
    expect(rejoinReason(new KafkaJSNumberOfRetriesExceeded(protocolError('REBALANCE_IN_PROGRESS', true), { retryCount: 5, retryTime: 100 }))).toBe('REBALANCE_IN_PROGRESS');
    expect(rejoinReason(protocolError('UNKNOWN_MEMBER_ID', false))).toBe('UNKNOWN_MEMBER_ID');
    expect(rejoinReason(protocolError('NOT_COORDINATOR_FOR_GROUP', true))).toBe('NOT_COORDINATOR_FOR_GROUP');
    expect(rejoinReason(protocolError('GROUP_AUTHORIZATION_FAILED', false))).toBeUndefined();
    expect(rejoinReason(new Error('boom'))).toBeUndefined();
    const loop = Object.assign(new Error('self'), { type: 'X' });
    (loop as { cause?: unknown }).cause = loop;
    expect(rejoinReason(loop)).toBeUndefined();
  });
});
