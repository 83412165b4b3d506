import '../kafka/abortedFilter.ts';
import kafkajs, { type PartitionMetadata } from 'kafkajs';

const defaultPartitioner = kafkajs.Partitioners.DefaultPartitioner();
const metadataCache = new Map<number, PartitionMetadata[]>();

/**
 * The partition a key belongs on: murmur2 of the key bytes modulo the
 * partition count, as the Java client and kafkajs place keyed records.
 * Producers in other languages may place a record elsewhere (librdkafka's
 * default, `consistent_random`, is CRC32): the engine moves such a record to
 * this partition, so a round's events meet on one owner whoever wrote them.
 */
export function partitionOfKey(key: Buffer, partitions: number): number {
  let metadata = metadataCache.get(partitions);
  if (!metadata) {
    metadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
    metadataCache.set(partitions, metadata);
  }
  return defaultPartitioner({ topic: '', partitionMetadata: metadata, message: { key, value: null } });
}
