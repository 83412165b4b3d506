import { randomBytes } from 'node:crypto';
import type { Admin } from 'kafkajs';
import { partitionOfKey } from '../src/engine/routing.ts';
import { topicName } from '../src/topics/index.ts';

/**
 * Round ids for a warm-up that writes every partition `times` times. A
 * benchmark's topics are new, and on the local broker the first records a
 * new partition takes are slow: its first record makes the broker write and
 * fsync the partition's leader-epoch checkpoint, and the record that crosses
 * its first 4,096 bytes (`index.interval.bytes`) writes the first entry of
 * the segment's offset and time indexes; each took 38-45 ms of the broker's
 * own time in its request log (`kafka.request.logger` at DEBUG), where other
 * produce requests took under 0.2 ms. A deployment's topics pay this once;
 * without the warm-up, a benchmark's first rounds on each partition measure
 * it instead of a round. Ten rounds take a round's partitions past both.
 */
export function roundIdsOnEveryPartition(tag: string, partitions: number, times = 10): string[] {
  const ids: string[] = [];
  for (let p = 0; p < partitions; p++) {
    for (let n = 0; n < times; ) {
      const id = `${tag}-${randomBytes(6).toString('hex')}`;
      if (partitionOfKey(Buffer.from(id), partitions) === p) (ids.push(id), n++);
    }
  }
  return ids;
}

/** How many partitions a prefix's round topics have (rounds are keyed by their id on all of them). */
export async function roundPartitionCount(admin: Admin, prefix: string): Promise<number> {
  const [metadata] = (await admin.fetchTopicMetadata({ topics: [topicName(prefix, 'bid-requests')] })).topics;
  return metadata!.partitions.length;
}
