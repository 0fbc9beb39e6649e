/**
 * How far a table is behind its Kafka topics: per partition, the topic's end offset minus the
 * `txn` version the writers recorded (the last offset written) minus one.
 *
 * A writer's appId is `<pipelineId>-<topic>-<partition>` (the `deltaSink` default); the topic is
 * found among the cluster's topics (the longest one the appId ends with), or given.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaConfig } from 'kafkajs';

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  /** The `txn` appId of the partition (`null`: none recorded yet). */
  readonly appId: string | null;
  /** Last offset written (exact), `null` when none. */
  readonly txnVersion: string | null;
  /** The topic's end offset (next to be produced) and earliest retained offset. */
  readonly endOffset: string;
  readonly startOffset: string;
  /** Records in the topic after the last one written. */
  readonly lag: string;
}

export interface LagOptions {
  /** The Kafka topic; default: found from the appIds. */
  readonly topic?: string;
  /** kafkajs client settings besides `brokers` (ssl, sasl, …). */
  readonly kafka?: Omit<KafkaConfig, 'brokers'>;
}

/** Splits `appId` into pipeline id and partition for `topic`, if it is `<pipeline>-<topic>-<partition>`. */
export function appIdParts(appId: string, topic: string): { pipeline: string; partition: number } | undefined {
  const m = /^(.*)-(\d+)$/.exec(appId);
  if (!m) return undefined;
  const rest = m[1] as string;
  if (!rest.endsWith(`-${topic}`)) return undefined;
  return { pipeline: rest.slice(0, rest.length - topic.length - 1), partition: Number(m[2]) };
}

/**
 * The lag per partition of every topic that the `txns` appIds name (see the module comment).
 *
 * ## Example
 * ```ts
 * const lags = await tableLag(['127.0.0.1:9092'], new Map([['bronze-trips-0', 41n]]));
 * ```
 *
 * @param brokers Kafka bootstrap servers.
 * @param txns `txn` versions by appId (several tables' merged: the largest per appId).
 * @param options `topic`, `kafka`.
 * @return One entry per partition of each topic found.
 */
export async function tableLag(brokers: readonly string[], txns: ReadonlyMap<string, bigint>, options: LagOptions = {}): Promise<PartitionLag[]> {
  const kafka = new Kafka({ clientId: 'rxlake-inspect', logLevel: logLevel.NOTHING, ...options.kafka, brokers: [...brokers] });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = options.topic !== undefined ? [options.topic] : await admin.listTopics();
    // Per topic, the pipelines that wrote it (one topic per appId: the longest that matches).
    const found = new Map<string, Set<string>>();
    for (const appId of txns.keys()) {
      let best: { topic: string; pipeline: string } | undefined;
      for (const t of topics) {
        const parts = appIdParts(appId, t);
        if (parts && (!best || t.length > best.topic.length)) best = { topic: t, pipeline: parts.pipeline };
      }
      if (!best) continue;
      const set = found.get(best.topic) ?? new Set<string>();
      set.add(best.pipeline);
      found.set(best.topic, set);
    }
    if (options.topic !== undefined && !found.has(options.topic)) found.set(options.topic, new Set());
    const out: PartitionLag[] = [];
    for (const [topic, pipelines] of [...found].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const offsets = await admin.fetchTopicOffsets(topic);
      offsets.sort((a, b) => a.partition - b.partition);
      for (const o of offsets) {
        const end = BigInt(o.high);
        const start = BigInt(o.low);
        let appId: string | null = null;
        let version: bigint | undefined;
        for (const p of pipelines) {
          const id = `${p}-${topic}-${o.partition}`;
          const v = txns.get(id);
          if (v !== undefined && (version === undefined || v > version)) {
            version = v;
            appId = id;
          }
        }
        const next = version === undefined ? start : version + 1n;
        const lag = end > next ? end - next : 0n;
        out.push({
          topic,
          partition: o.partition,
          appId,
          txnVersion: version === undefined ? null : version.toString(),
          endOffset: end.toString(),
          startOffset: start.toString(),
          lag: lag.toString(),
        });
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
