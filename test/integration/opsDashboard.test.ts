/**
 * The Grafana dashboard (dashboards/rxlake.json) against a running bronze job: every metric the
 * dashboard queries is one the job's /metrics exports, and the ones a healthy run produces have
 * samples there.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateEvents } from '../../src/pipelines/rideshare/generate.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { removeTempDirs, runBronze, tempDir } from './opsSupport.ts';

afterAll(removeTempDirs);

interface Panel {
  readonly id?: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: { uid?: string };
  readonly targets?: ReadonlyArray<{ expr?: string }>;
  readonly panels?: readonly Panel[];
}

interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly panels: readonly Panel[];
  readonly templating: { list: ReadonlyArray<{ name: string; definition?: string; query?: unknown }> };
}

/** Every query of the dashboard: panel targets (rows' panels too) and template variables. */
function queries(d: Dashboard): string[] {
  const out: string[] = [];
  const visit = (panels: readonly Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr !== undefined) out.push(t.expr);
      visit(p.panels ?? []);
    }
  };
  visit(d.panels);
  for (const v of d.templating.list) {
    if (v.definition !== undefined) out.push(v.definition);
    if (typeof v.query === 'object' && v.query !== null && typeof (v.query as { query?: unknown }).query === 'string') out.push((v.query as { query: string }).query);
  }
  return out;
}

/** Counters with labels that only have samples after an incident (a replay skipped, a failed write). */
const AFTER_INCIDENTS = new Set(['rxlake_records_skipped_total', 'rxlake_write_errors_total']);

describe('Grafana dashboard', () => {
  it('queries only metrics a running bronze job exports', async () => {
    const dashboard = JSON.parse(await readFile(join(stack.root, 'dashboards', 'rxlake.json'), 'utf8')) as Dashboard;
    expect(dashboard.uid).toBe('rxlake-jobs');
    const all = queries(dashboard);
    const names = new Set(all.flatMap((q) => q.match(/\brxlake_[a-z0-9_]+/g) ?? []));
    // The panels: throughput per topic, lag per partition, DLQ by error type, write latency, batch sizes, health.
    for (const n of ['rxlake_records_in_total', 'rxlake_consumer_lag', 'rxlake_dlq_records_total', 'rxlake_write_seconds_bucket', 'rxlake_batch_rows_sum', 'rxlake_kafka_connected', 'rxlake_write_errors_total']) {
      expect(names).toContain(n);
    }
    const ids = new Set<number>();
    const check = (panels: readonly Panel[]): void => {
      for (const p of panels) {
        expect(ids.has(p.id as number), `panel id ${p.id} twice`).toBe(false);
        ids.add(p.id as number);
        if (p.type !== 'row') expect(p.datasource?.uid, p.title).toBe('${datasource}');
        check(p.panels ?? []);
      }
    };
    check(dashboard.panels);

    // A bronze job, with records and dead letters flowing.
    const prefix = `${uniqueName('dash')}.`;
    await generateEvents({ brokers: stack.kafkaBrokers, topicPrefix: prefix, topics: ['trips'], count: 300, corruptFraction: 0.1, partitions: 2, seed: 51 });
    const run = await runBronze(await tempDir(), prefix, 'trips', { PROGRESS_INTERVAL_SECONDS: '1' });
    let text = '';
    try {
      const url = `http://127.0.0.1:${run.httpPort as number}/metrics`;
      await waitFor('records, dead letters and lag in /metrics', async () => {
        text = await (await fetch(url)).text();
        return /^rxlake_dlq_records_total\{/m.test(text) && /^rxlake_consumer_lag\{/m.test(text) && /^rxlake_write_seconds_bucket\{/m.test(text);
      });
    } finally {
      run.stop();
      await run.done;
    }

    const families = new Map<string, string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1] as string, m[2] as string);
    const sampled = new Set([...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)].map((m) => m[1] as string));
    const unknown: string[] = [];
    const noSamples: string[] = [];
    for (const name of names) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      const known = families.has(name) || (base !== name && ['histogram', 'summary'].includes(families.get(base) ?? ''));
      if (!known) unknown.push(name);
      else if (!sampled.has(name) && !AFTER_INCIDENTS.has(name)) noSamples.push(name);
    }
    expect(unknown, 'queried by the dashboard, not exported by the job').toEqual([]);
    expect(noSamples, 'exported without samples during a healthy run').toEqual([]);
  });
});
