/**
 * The parts every job builds the same way from its configuration: the Delta storage and the
 * Kafka source (with the job's consumer settings, logging into the job's log and Kafka's health
 * into its monitor).
 */
import { storageFromUri } from '../sinks/delta/storage.ts';
import type { Storage } from '../sinks/delta/storage.ts';
import { fromKafka } from '../sources/fromKafka.ts';
import type { KafkaSource } from '../sources/fromKafka.ts';
import { bronzeConsumerSettings } from './config.ts';
import type { BronzeConfig } from './config.ts';
import type { Logger } from './log.ts';
import type { PipelineMonitor } from './monitor.ts';

/** `DELTA_BASE_PATH` as a `Storage`: a local folder, or S3 with the configured endpoint and credentials. */
export function jobStorage(config: BronzeConfig): Storage {
  return storageFromUri(config.deltaBasePath, {
    ...(config.s3?.endpoint !== undefined ? { endpoint: config.s3.endpoint, forcePathStyle: true } : {}),
    ...(config.s3?.region !== undefined ? { region: config.s3.region } : {}),
    ...(config.s3?.credentials !== undefined ? { credentials: config.s3.credentials } : {}),
  });
}

/** The job's Kafka source over `topics`. */
export function jobSource(config: BronzeConfig, topics: readonly string[], untilCaughtUp: boolean, log: Logger, monitor: PipelineMonitor): KafkaSource {
  return fromKafka({
    brokers: config.kafka.brokers,
    groupId: config.kafka.groupId,
    topics: [...topics],
    clientId: `rxlake-${config.pipelineId}`,
    ...(config.kafka.ssl ? { ssl: true } : {}),
    ...(config.kafka.sasl !== undefined ? { sasl: config.kafka.sasl } : {}),
    startFrom: config.kafka.startFrom,
    maxInFlightRecords: config.maxInFlightRecords,
    maxInFlightBytes: config.maxInFlightBytes,
    maxReadAheadRecords: config.maxReadAheadRecords,
    untilCaughtUp,
    consumer: bronzeConsumerSettings(config),
    logger: (level, message, extra) => log[level](`kafka: ${message}`, extra),
    // A broker outage: /health turns 503 until the consumer is back in its group (it retries by itself).
    onHealthChange: (h) => {
      if (h.connected) monitor.kafkaRecovered();
      else monitor.kafkaFailed(new Error(h.lastError ?? 'Kafka unreachable'));
    },
  });
}

/**
 * Sets the monitor's consumer-lag gauges (per partition: high watermark − committed offset) and
 * in-flight gauges from the source; returns the total lag and the records in flight.
 */
export function updateSourceGauges(monitor: PipelineMonitor, source: KafkaSource): { lag: bigint; inFlightRecords: number } {
  const stats = source.stats();
  let lag = 0n;
  for (const p of stats.partitions) {
    if (p.highWatermark === undefined) continue;
    const pos = p.committed ?? 0n;
    const l = p.highWatermark > pos ? p.highWatermark - pos : 0n;
    lag += l;
    monitor.consumerLag.set({ topic: p.topic, partition: String(p.partition) }, Number(l));
  }
  monitor.inFlight.set({ kind: 'records' }, stats.inFlightRecords);
  monitor.inFlight.set({ kind: 'bytes' }, stats.inFlightBytes);
  return { lag, inFlightRecords: stats.inFlightRecords };
}
