import type { Admin } from 'kafkajs';
import { MabeamError } from '../errors.ts';
import { topicName } from './names.ts';

/**
 * How many partitions each of a prefix's topics has on the cluster (what
 * the engine routes by), in the order asked; a topic that is not there is
 * a clear error naming the prefix, not a broker's "does not host this
 * topic-partition".
 */
export async function partitionCounts(admin: Admin, prefix: string, names: readonly string[]): Promise<Map<string, number>> {
  const topics = names.map((n) => topicName(prefix, n));
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0) {
    throw new MabeamError('INVALID_OPTIONS', `No topic ${missing.join(', ')} on the cluster: is the prefix "${prefix}" right (mabeam topics apply --prefix ${prefix || '""'})?`, {
      details: { missing },
    });
  }
  const metadata = await admin.fetchTopicMetadata({ topics });
  const found = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
  return new Map(topics.map((t) => [t, found.get(t) ?? 1]));
}
