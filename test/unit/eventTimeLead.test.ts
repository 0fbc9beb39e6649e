/**
 * `typedQuery` with `eventTime` (the transactions, retail and cards jobs): an event dated more
 * than `MAX_EVENT_TIME_LEAD_SECONDS` ahead of the clock goes to quarantine as
 * `EVENT_TIME_TOO_FAR_AHEAD` and to no output, and is acknowledged once — by the quarantine.
 * The outputs and the quarantine here are fakes of the sink interface (acks after the rows).
 */
import { from, lastValueFrom, map, toArray } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import * as t from 'io-ts';
import { describe, expect, it } from 'vitest';
import { DeadLetterError } from '../../src/operators/routeErrors.ts';
import { loadTransactionsConfig } from '../../src/pipelines/transactions/config.ts';
import { eventCounts, typedQuery } from '../../src/pipelines/transactions/query.ts';
import { PipelineMonitor } from '../../src/runtime/monitor.ts';
import type { DeadLetterRow, KafkaRecord, RecordRef, SinkAck } from '../../src/types.ts';
import { rec } from '../marbles/records.ts';

const Event = t.type({ id: t.string, ms: t.number, session_id: t.string });
interface Row extends RecordRef {
  readonly id: string;
  readonly ms: number;
}

/** A fake sink: one ack per row, naming the table, its ref the row's. */
function sink<R extends RecordRef>(table: string, seen: R[]): OperatorFunction<R, SinkAck> {
  return map((r) => {
    seen.push(r);
    return { table, version: null, rows: 1, skipped: 0, bytes: 0, durationMs: 0, refs: [{ topic: r.topic, partition: r.partition, offset: r.offset }] };
  });
}

async function run(env: NodeJS.ProcessEnv, records: readonly KafkaRecord[]) {
  const config = loadTransactionsConfig(env);
  const monitor = new PipelineMonitor();
  const { late } = eventCounts(monitor);
  const q = { config, monitor, late, topic: 't' };
  const typed: Row[] = [];
  const quarantined: DeadLetterRow[] = [];
  const query = typedQuery(q, {
    codec: Event,
    row: (r): Row => ({ topic: r.topic, partition: r.partition, offset: r.offset, id: (r.decoded as t.TypeOf<typeof Event>).id, ms: (r.decoded as t.TypeOf<typeof Event>).ms }),
    eventTime: (r) => r.ms,
    quarantine: sink('quarantine', quarantined),
    outputs: [sink('typed', typed)],
  });
  const acks = await lastValueFrom(from(records).pipe(query, toArray()));
  return { acks, typed, quarantined };
}

const event = (offset: number, ms: number): KafkaRecord => rec(offset, JSON.stringify({ id: `e${offset}`, ms, session_id: `s${offset}` }));

describe('typedQuery with eventTime: MAX_EVENT_TIME_LEAD_SECONDS', () => {
  it('quarantines an event dated further ahead than the limit, with its event time and the limit; every record is acknowledged once', async () => {
    const now = Date.now();
    const records = [event(0, now - 60_000), event(1, Date.UTC(2099, 0, 1)), event(2, now + 30_000), event(3, now + 120_000)];
    const { acks, typed, quarantined } = await run({ MAX_EVENT_TIME_LEAD_SECONDS: '90' }, records);
    expect(typed.map((r) => r.offset)).toEqual([0n, 2n]);
    expect(quarantined.map((r) => r.offset)).toEqual([1n, 3n]);
    expect(quarantined.every((r) => r.error_type === 'EVENT_TIME_TOO_FAR_AHEAD')).toBe(true);
    expect(quarantined[0]?.error_message).toMatch(/^event time 2099-01-01T00:00:00\.000Z is \d+ s ahead of the clock \(20\d\d-.*\), more than MAX_EVENT_TIME_LEAD_SECONDS=90 allows/);
    expect(quarantined[0]?.original_payload).toBe(JSON.stringify({ id: 'e1', ms: Date.UTC(2099, 0, 1), session_id: 's1' }));
    expect(quarantined[0]?.session_id).toBe('s1');
    const acked = acks.flatMap((a) => a.refs.map((r) => `${a.table}:${r.offset}`)).sort();
    expect(acked).toEqual(['quarantine:1', 'quarantine:3', 'typed:0', 'typed:2']);
  });

  it('MAX_EVENT_TIME_LEAD_SECONDS=0 turns the check off: the 2099 event is typed', async () => {
    const { typed, quarantined } = await run({ MAX_EVENT_TIME_LEAD_SECONDS: '0' }, [event(0, Date.UTC(2099, 0, 1))]);
    expect(typed.map((r) => r.offset)).toEqual([0n]);
    expect(quarantined).toEqual([]);
  });

  it('with DLQ_ENABLED=false the job stops at such an event, as at any bad event', async () => {
    const failed = run({ DLQ_ENABLED: 'false' }, [event(0, Date.now()), event(1, Date.UTC(2099, 0, 1))]);
    await expect(failed).rejects.toBeInstanceOf(DeadLetterError);
    await expect(failed).rejects.toThrow(/EVENT_TIME_TOO_FAR_AHEAD at t\/0@1: event time 2099/);
  });
});
