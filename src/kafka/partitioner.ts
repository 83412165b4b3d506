import kafkajs, { type ICustomPartitioner } from 'kafkajs';
import { partitionOfKey } from '../engine/routing.ts';

/**
 * kafkajs's default partitioner (the Java client's: murmur2 of the key
 * modulo the partition count; round-robin among available partitions for
 * records without a key), with the key's murmur2 in 32-bit integer
 * arithmetic. kafkajs computes it with 64-bit Long objects, about 3 % of an
 * agent host's CPU under sustained load; the partition is the same.
 */
export const keyPartitioner: ICustomPartitioner = () => {
  const fallback = kafkajs.Partitioners.DefaultPartitioner();
  return (args) => {
    const { message, partitionMetadata } = args;
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (message.key === null || message.key === undefined) return fallback(args);
    return partitionOfKey(Buffer.isBuffer(message.key) ? message.key : Buffer.from(String(message.key)), partitionMetadata.length);
  };
};
