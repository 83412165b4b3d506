/** A topic as declared in topics/<name>.json. */
export interface TopicDefinition {
  name: string;
  purpose: string;
  key: string;
  partitions: number;
  coPartitionGroup?: string;
  replicationFactor: number;
  /** Fully qualified Avro record names allowed on the topic. */
  eventTypes: string[];
  config: Record<string, string>;
}

export type TopicChange =
  | { kind: 'created'; topic: string; partitions: number; replicationFactor: number }
  | { kind: 'updated'; topic: string; configs: Record<string, { from: string | undefined; to: string }>; partitions?: { from: number; to: number } }
  | { kind: 'unchanged'; topic: string };

export interface ApplyReport {
  changes: TopicChange[];
  /** Things applied differently from the definition, and why (e.g. fewer brokers than replicas). */
  warnings: string[];
}
