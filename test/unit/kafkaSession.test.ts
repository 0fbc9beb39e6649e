/**
 * A subscription's lifecycle over a fake client and a fake clock: start-up, restarts with
 * backoff after a crash the client does not recover from, health from the client's events and
 * the stall watchdog, drain, stop, and what reaches the log and the errors (no secrets).
 */
import { describe, expect, it } from 'vitest';
import type { KafkaHealth } from '../../src/sources/kafka/health.ts';
import { FakeOutage, harness, ids, settle } from './kafkaFakes.ts';

const SECRET = 'pw-7f3a9c-do-not-log';

describe('session lifecycle', () => {
  it('connects, subscribes and runs with the neutral settings; unsubscribing leaves the group; a new subscription is a new client', async () => {
    const h = harness({
      startFrom: 'earliest',
      clientId: 'me',
      ssl: { ca: 'PEM', rejectUnauthorized: false },
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: SECRET },
      consumer: { sessionTimeout: 6_000, metadataMaxAge: 2_000 },
      connection: { connectionTimeout: 200 },
    });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    expect(c.calls).toEqual(['connect', 'subscribe t true', 'run']);
    expect(c.config).toMatchObject({
      brokers: ['fake:9092'],
      clientId: 'me',
      groupId: 'g',
      ssl: { ca: 'PEM', rejectUnauthorized: false },
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: SECRET },
      consumer: { sessionTimeout: 6_000, metadataMaxAge: 2_000 },
      connection: { connectionTimeout: 200 },
      logLevel: 'debug',
    });
    c.join(['t', 0]);
    await c.fetch('t', 0, { offsets: [0] }).done;
    h.slices.run();
    r.unsubscribe();
    expect(c.disconnected).toBe(true);
    await h.source.closed();
    expect(h.source.stats()).toMatchObject({ inFlightRecords: 0, partitions: [] });
    expect(h.source.health().connected).toBe(false);

    const again = h.subscribe();
    await settle();
    expect(h.clients.clients).toHaveLength(2);
    expect(again.error).toBeUndefined();
  });

  it('allows one subscriber at a time', async () => {
    const h = harness();
    h.subscribe();
    const second = h.subscribe();
    expect(String(second.error)).toContain('one subscriber at a time');
    await settle();
    expect(h.clients.clients).toHaveLength(1);
  });

  it('rejects options that cannot work, naming the option', () => {
    expect(() => harness({ maxInFlightRecords: 0 })).toThrow('maxInFlightRecords must be >= 1');
    expect(() => harness({ topics: [] })).toThrow('no topics');
    expect(() => harness({ sasl: { mechanism: 'oauthbearer' as 'plain', username: 'u', password: 'p' } })).toThrow(/sasl.mechanism "oauthbearer" is not supported/);
  });

  it('runs the consumer again with backoff after a crash the client does not restart from, until it joins again', async () => {
    const changes: KafkaHealth[] = [];
    const h = harness({ onHealthChange: (x) => changes.push(x) });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    expect(h.source.health().connected).toBe(true);

    c.events.crashed({ error: new FakeOutage('Failed to find group coordinator'), restarting: false, restartable: true });
    expect(h.source.health()).toMatchObject({ connected: false, lastError: 'FakeOutage: Failed to find group coordinator' });
    c.runAnswers.push(new FakeOutage('still away'));
    await h.clock.advance(999);
    expect(c.runs).toBe(1);
    await h.clock.advance(1); // first restart after 1 s: fails again
    expect(c.runs).toBe(2);
    expect(h.source.health().lastError).toBe('FakeOutage: still away');
    await h.clock.advance(1_999);
    expect(c.runs).toBe(2);
    await h.clock.advance(1); // then after 2 s
    expect(c.runs).toBe(3);
    c.join(['t', 0]);
    expect(h.source.health().connected).toBe(true);
    expect(changes.map((x) => x.connected)).toEqual([true, false, false, true]);
    expect(h.logs.filter((l) => l.startsWith('warn restarting the consumer')).map((l) => JSON.parse(l.slice(l.indexOf('{'))) as unknown)).toEqual([
      { groupId: 'g', attempt: 1, inMs: 1_000 },
      { groupId: 'g', attempt: 2, inMs: 2_000 },
    ]);
    expect(h.logs.some((l) => l.startsWith('warn Kafka reachable again'))).toBe(true);
    // Joined again: the next crash starts the backoff over.
    c.events.crashed({ error: new FakeOutage('again'), restarting: false, restartable: true });
    await h.clock.advance(1_000);
    expect(c.runs).toBe(4);
    expect(r.error).toBeUndefined();
  });

  it('leaves restarts the client makes itself to the client, and fails on a crash nothing restarts from (password redacted)', async () => {
    const h = harness({ sasl: { mechanism: 'plain', username: 'u', password: SECRET } });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    c.events.crashed({ error: new FakeOutage('connection lost'), restarting: true, restartable: false });
    await h.clock.advance(60_000);
    expect(c.runs).toBe(1);
    expect(h.source.health().connected).toBe(false);
    expect(r.error).toBeUndefined();

    const auth = new Error(`SASL authentication failed for u/${SECRET}`);
    auth.name = 'AuthError';
    c.events.crashed({ error: auth, restarting: false, restartable: false });
    expect(r.error).toBeInstanceOf(Error);
    expect((r.error as Error).name).toBe('AuthError');
    expect((r.error as Error).message).toBe('SASL authentication failed for u/***');
    expect(`${(r.error as Error).stack ?? ''}`).not.toContain(SECRET);
  });

  it('stops a restart that finds an error no wait fixes', async () => {
    const h = harness();
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    c.events.crashed({ error: new FakeOutage('away'), restarting: false, restartable: true });
    c.runAnswers.push(new Error('unsupported protocol'));
    await h.clock.advance(1_000);
    expect(String(r.error)).toContain('unsupported protocol');
    await h.clock.advance(60_000);
    expect(c.runs).toBe(2);
  });

  /** A member (5 s stall timeout) that joined, then logged a refused connection. */
  async function joinedThenRefused(): Promise<{ h: ReturnType<typeof harness>; c: ReturnType<typeof harness>['clients']['last'] }> {
    const h = harness({ stallTimeoutMs: 5_000 });
    h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    c.events.log({ level: 'warn', error: true, namespace: 'Connection', message: 'Connection error: connect ECONNREFUSED', extra: {} });
    return { h, c };
  }

  it('reports a member that heard from no broker for the stall timeout as down, and up again on the next answer', async () => {
    const { h, c } = await joinedThenRefused();
    await h.clock.advance(4_000);
    expect(h.source.health().connected).toBe(true);
    await h.clock.advance(1_000);
    expect(h.source.health()).toMatchObject({ connected: false, lastError: 'no answer from Kafka for 5 s (last client error: Connection error: connect ECONNREFUSED)' });
    c.events.answered();
    expect(h.source.health().connected).toBe(true);
  });

  it('logs an outage at ERROR once it has lasted a minute, once; the client\'s own lines about it stay warnings', async () => {
    const { h } = await joinedThenRefused();
    await h.clock.advance(5_000); // down: no answer for the stall timeout
    expect(h.source.health().connected).toBe(false);
    const errors = (): string[] => h.logs.filter((l) => l.startsWith('error '));
    await h.clock.advance(59_000);
    expect(errors()).toEqual([]);
    await h.clock.advance(1_000);
    expect(errors()).toEqual([expect.stringMatching(/^error Kafka unreachable for 60 s: the consumer keeps retrying; check that the brokers run and are reachable from here .*"reason":"no answer from Kafka for 5 s/)]);
    await h.clock.advance(120_000);
    expect(errors()).toHaveLength(1);
    expect(h.logs.filter((l) => l.includes('[Connection]'))).toEqual([expect.stringMatching(/^warn \[Connection\] Connection error/)]);
  });

  it('logs the client\'s lines at the level it gives, with its namespace, secrets redacted, below the threshold dropped', async () => {
    const h = harness({ logLevel: 'info', sasl: { mechanism: 'plain', username: 'u', password: SECRET } });
    h.subscribe();
    await settle();
    const c = h.clients.last;
    c.events.log({ level: 'warn', error: true, namespace: 'ConsumerGroup', message: `rejoining (${SECRET})`, extra: { password: SECRET, n: 1n } });
    c.events.log({ level: 'debug', error: false, message: 'chatter', extra: {} });
    expect(h.logs).toContain('warn [ConsumerGroup] rejoining (***) {"password":"***","n":"1"}');
    expect(h.logs.some((l) => l.includes('chatter'))).toBe(false);
    expect(h.logs.join('\n')).not.toContain(SECRET);
  });

  it('drain() emits every record read, pauses fetching and completes; the consumer stays until the commit chain lets go', async () => {
    const h = harness();
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    await c.fetch('t', 0, { offsets: [0, 1, 2] }).done;
    const release = h.source.retain();
    h.source.drain();
    expect(r.ids()).toEqual(ids('t', 0, 0, 2)); // flushed before the completion
    expect(r.completed).toBe(true);
    expect(c.paused).toEqual([{ topic: 't' }]);
    expect(c.disconnected).toBe(false);
    // A restart of the consumer meanwhile fetches nothing more.
    c.join(['t', 0]);
    expect(c.paused).toHaveLength(2);
    h.source.acknowledge(r.records);
    expect(await h.source.commit()).toEqual([{ topic: 't', partition: 0, offset: 3n }]);
    release();
    expect(c.disconnected).toBe(true);
  });

  it('fails the subscription when the client cannot be created or started', async () => {
    const h = harness({
      client: () => {
        throw new Error('bad client settings');
      },
    });
    const r = h.subscribe();
    await settle();
    expect(String(r.error)).toContain('bad client settings');
  });
});
