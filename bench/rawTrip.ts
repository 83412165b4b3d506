import { randomBytes } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { partitionOfKey } from '../src/engine/routing.ts';
import { createProducer } from '../src/kafka/client.ts';
import { topicName } from '../src/topics/index.ts';

/** The sorted samples' p-th percentile. */
export const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export const summary = (label: string, ms: number[]): string => {
  const s = [...ms].sort((a, b) => a - b);
  return `${label}: p50 ${percentile(s, 50).toFixed(1)} ms, p95 ${percentile(s, 95).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms (${s.length} samples)`;
};

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

/**
 * The raw kafkajs round trip on the same broker, the yardstick of the
 * benchmarks: produce one message, consume it (1 hop), sequentially; the
 * first 20 of `count + 20` are warm-up.
 */
export async function rawRoundTrips(kafka: Kafka, topic: string, groupId: string, count = 200): Promise<number[]> {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const producer = createProducer(kafka);
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic, fromBeginning: false });
  let waiting: ((m: KafkaMessage) => void) | undefined;
  const joined = new Promise<void>((r) => consumer.on(consumer.events.GROUP_JOIN, () => r()));
  await consumer.run({ eachMessage: async ({ message }) => waiting?.(message) });
  await joined;
  await new Promise((r) => setTimeout(r, 1_000));
  const samples: number[] = [];
  for (let i = 0; i < count + 20; i++) {
    const got = new Promise<KafkaMessage>((r) => (waiting = r));
    const t = performance.now();
    await producer.send({ topic, messages: [{ key: 'k', value: Buffer.from(String(i)) }] });
    await got;
    if (i >= 20) samples.push(performance.now() - t);
  }
  await Promise.all([consumer.disconnect(), producer.disconnect()]);
  return samples;
}
