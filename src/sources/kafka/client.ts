/**
 * The seam between `fromKafka` and a Kafka client library: what the source needs from a
 * consumer (group membership, batches, seeks, commits, a few look-ups) in the library's own
 * terms. An adapter (`kafkajsClient.ts`) maps one client onto it; nothing else in the source
 * knows which client runs.
 */

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** Certificates and keys, as PEM text or bytes. */
export type PemInput = string | Uint8Array | ReadonlyArray<string | Uint8Array>;

/** TLS: `true` for the system's trust store, or the settings of a private CA / client certificate. */
export type KafkaSsl =
  | boolean
  | {
      readonly ca?: PemInput;
      readonly cert?: PemInput;
      readonly key?: PemInput;
      readonly passphrase?: string;
      readonly rejectUnauthorized?: boolean;
      readonly servername?: string;
    };

/** SASL authentication; the password is never logged. */
export interface KafkaSasl {
  readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  readonly username: string;
  readonly password: string;
}

/** How a client retries a failed request (milliseconds). */
export interface KafkaRetrySettings {
  readonly retries?: number;
  readonly initialRetryTime?: number;
  readonly maxRetryTime?: number;
  readonly factor?: number;
  readonly multiplier?: number;
}

/** Consumer settings every Kafka client knows (milliseconds and bytes). */
export interface KafkaConsumerSettings {
  readonly sessionTimeout?: number;
  readonly rebalanceTimeout?: number;
  readonly heartbeatInterval?: number;
  /** Age after which topic metadata is refreshed: partitions added to a topic are found within it. */
  readonly metadataMaxAge?: number;
  readonly maxWaitTimeInMs?: number;
  readonly minBytes?: number;
  readonly maxBytes?: number;
  readonly maxBytesPerPartition?: number;
  readonly retry?: KafkaRetrySettings;
}

/** Connection settings every Kafka client knows (milliseconds). */
export interface KafkaConnectionSettings {
  readonly connectionTimeout?: number;
  readonly requestTimeout?: number;
  readonly authenticationTimeout?: number;
  readonly retry?: KafkaRetrySettings;
}

/** What a client is created with. */
export interface KafkaClientConfig {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly groupId: string;
  readonly ssl?: KafkaSsl;
  readonly sasl?: KafkaSasl;
  /** The lowest level the source logs; error lines are reported whatever it is (they name outages). */
  readonly logLevel: KafkaLogLevel | 'nothing';
  readonly consumer: KafkaConsumerSettings;
  readonly connection: KafkaConnectionSettings;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** A position in a partition: the next offset to read (Kafka's convention for commits). */
export interface PartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

/** A topic as the cluster has it. */
export interface TopicDescription {
  readonly topic: string;
  /** The cluster has the topic. */
  readonly exists: boolean;
  /** It exists and every partition has a leader (not yet, a moment after it was created). */
  readonly ready: boolean;
}

/** A partition's first offset and high-water mark. */
export interface PartitionRange {
  readonly partition: number;
  readonly low: bigint;
  readonly high: bigint;
}

/** A record as the client fetched it; the source makes one `KafkaRecord` of it. */
export interface ClientMessage {
  /** A decimal string, a bigint, or a number (exact: below 2^53). */
  readonly offset: string | bigint | number;
  /** Epoch milliseconds, as a decimal string or a number. */
  readonly timestamp: string | number | bigint;
  readonly key?: Uint8Array | null;
  readonly value: Uint8Array | null;
  /** A repeated header may come as an array; string values are taken as UTF-8. */
  readonly headers?: Readonly<Record<string, Uint8Array | string | ReadonlyArray<Uint8Array | string> | undefined>>;
}

/** One fetched batch of one partition, handed to the source's batch handler. */
export interface ClientBatch {
  readonly topic: string;
  readonly partition: number;
  /** In increasing offset order. */
  readonly messages: readonly ClientMessage[];
  /** The last offset the fetch covered (may be a control record after the last message). */
  readonly lastOffset: bigint;
  readonly highWatermark: bigint;
  /** The records up to `offset` are handled (read); commits stay explicit. */
  resolveOffset(offset: bigint): void;
  /** Keeps the group membership alive during a long wait (calls sooner than the interval are ignored). */
  heartbeat(): Promise<void>;
  /** False once the consumer stops or leaves the generation that fetched the batch. */
  isRunning(): boolean;
  /** True once a seek (or a rebalance) made this batch's records irrelevant. */
  isStale(): boolean;
}

/**
 * Handles one batch. The returned promise is the backpressure: the client fetches nothing more
 * for the consumer while a handler's promise is pending.
 */
export type BatchHandler = (batch: ClientBatch) => Promise<void>;

/** A log line of the client. */
export interface ClientLogLine {
  /** The level to log it at: the client's own, or lower for answers it retries by itself. */
  readonly level: KafkaLogLevel;
  /** The client reported it as an error (before any lowering): it may name the cause of an outage. */
  readonly error: boolean;
  /** The part of the client that logged it (e.g. `Connection`, `ConsumerGroup`), if it says. */
  readonly namespace?: string;
  readonly message: string;
  readonly extra: Record<string, unknown>;
}

/** A crash of the consumer's fetch loop. */
export interface ClientCrash {
  readonly error: unknown;
  /** The client runs the consumer again by itself. */
  readonly restarting: boolean;
  /** The client does not, but the source may (a broker outage, and no user restart policy). */
  readonly restartable: boolean;
}

/** What a client tells the source. Called synchronously from the client's own events. */
export interface KafkaClientEvents {
  /** Joined the group (also after the client restarted itself) with exactly this assignment. */
  readonly joined: (assignment: readonly TopicPartition[]) => void;
  readonly crashed: (crash: ClientCrash) => void;
  /** The fetch loop stopped. */
  readonly stopped: () => void;
  /** A broker answered a request of the consumer. */
  readonly answered: () => void;
  /** The broker confirmed these committed offsets. */
  readonly committed: (offsets: readonly PartitionOffset[]) => void;
  /**
   * A fetch covered offsets up to `lastOffset` that never reached the batch handler (only
   * transaction markers or aborted records): nothing to emit, but committable past them.
   */
  readonly skipped: (topic: string, partition: number, lastOffset: bigint) => void;
  readonly log: (line: ClientLogLine) => void;
}

/** A consumer in a group, with the look-ups the source needs. One per subscription of `records$`. */
export interface KafkaClient {
  connect(): Promise<void>;
  subscribe(topics: readonly string[], fromBeginning: boolean): Promise<void>;
  /**
   * Runs the fetch loop (again, after a crash the client did not recover from by itself):
   * batches go to `handler`, offsets are never committed automatically.
   */
  run(handler: BatchHandler): Promise<void>;
  /** Stops fetching these topics (every partition, or the ones listed). */
  pause(topics: ReadonlyArray<{ readonly topic: string; readonly partitions?: readonly number[] }>): void;
  /** The next fetch of the partition starts at `offset`. */
  seek(topic: string, partition: number, offset: bigint): void;
  /** Commits these offsets for the group; rejects with the broker's answer. */
  commit(offsets: readonly PartitionOffset[]): Promise<void>;
  /** Leaves the group and closes every connection. */
  disconnect(): Promise<void>;
  /** The group's committed offsets of these topics (partitions without one are left out). One attempt. */
  committedOffsets(topics: readonly string[]): Promise<PartitionOffset[]>;
  topicOffsets(topic: string): Promise<PartitionRange[]>;
  /** Per partition, the first offset at or after `timestamp` (epoch ms), or -1 when there is none. */
  offsetsForTimestamp(topic: string, timestamp: number): Promise<Array<{ readonly partition: number; readonly offset: bigint }>>;
  /** Closes the connection of the look-ups (a later look-up opens it again). */
  closeLookups(): Promise<void>;
  /** Whether the cluster has these topics and their partitions have leaders. One attempt. */
  describeTopics(topics: readonly string[]): Promise<TopicDescription[]>;
  /**
   * Whether trying again can succeed after `err`: a broker outage (the connection, a
   * coordinator or leader away, a timeout) or an answer the broker calls retriable.
   */
  isRetriable(err: unknown): boolean;
  /** The broker's answer when a commit failed because the group is rebalancing (fixed by a rejoin). */
  rejoinReason(err: unknown): string | undefined;
}

/** Creates the client of one subscription; `events` receives what it reports. */
export type KafkaClientFactory = (config: KafkaClientConfig, events: KafkaClientEvents) => KafkaClient;

export function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
