import type { Kafka, KafkaMessage } from 'kafkajs';
import { createProducer } from '../src/kafka/client.ts';

/** The sorted samples' p-th percentile. */
export const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export const summary = (label: string, ms: number[]): string => {
  const s = [...ms].sort((a, b) => a - b);
  return `${label}: p50 ${percentile(s, 50).toFixed(1)} ms, p95 ${percentile(s, 95).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms (${s.length} samples)`;
};

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
