/**
 * The eight rideshare topics the bronze pipeline ingests, with the facts other modules need
 * about each: the JSON Schema contract, the entity id that keys its Kafka records, and a
 * typical partition count.
 */

/** Topic names, in the order the bronze pipeline builds its chains. */
export const BRONZE_TOPICS = [
  'gps_pings',
  'trips',
  'driver_status',
  'surge_updates',
  'ratings',
  'payments',
  'driver_profiles',
  'rider_profiles',
] as const;

export type BronzeTopic = (typeof BRONZE_TOPICS)[number];

export interface BronzeTopicInfo {
  readonly topic: BronzeTopic;
  /** File name of the event's JSON Schema in the rideshare schema set. */
  readonly schemaFile: string;
  /** Field of the event whose value is the Kafka record key. */
  readonly keyField: string;
  /** Partitions a production deployment typically gives the topic. */
  readonly partitions: number;
  /** High-volume topics are partitioned by ingestion date in bronze. */
  readonly highVolume: boolean;
}

export const BRONZE_TOPIC_INFO: Readonly<Record<BronzeTopic, BronzeTopicInfo>> = {
  gps_pings: { topic: 'gps_pings', schemaFile: 'gps_ping_event.json', keyField: 'entity_id', partitions: 6, highVolume: true },
  trips: { topic: 'trips', schemaFile: 'trip_event.json', keyField: 'trip_id', partitions: 3, highVolume: true },
  driver_status: { topic: 'driver_status', schemaFile: 'driver_status_event.json', keyField: 'driver_id', partitions: 3, highVolume: true },
  surge_updates: { topic: 'surge_updates', schemaFile: 'surge_update_event.json', keyField: 'zone_id', partitions: 1, highVolume: false },
  ratings: { topic: 'ratings', schemaFile: 'rating_event.json', keyField: 'trip_id', partitions: 1, highVolume: false },
  payments: { topic: 'payments', schemaFile: 'payment_event.json', keyField: 'trip_id', partitions: 1, highVolume: false },
  driver_profiles: { topic: 'driver_profiles', schemaFile: 'driver_profile_event.json', keyField: 'driver_id', partitions: 1, highVolume: false },
  rider_profiles: { topic: 'rider_profiles', schemaFile: 'rider_profile_event.json', keyField: 'rider_id', partitions: 1, highVolume: false },
};

/** Type guard: is `name` one of the eight bronze topics? */
export function isBronzeTopic(name: string): name is BronzeTopic {
  return (BRONZE_TOPICS as readonly string[]).includes(name);
}
