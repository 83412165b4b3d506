import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';

export interface LogRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  decoded: DecodedEvent;
}

/**
 * Every committed event of the topics, from the beginning to the end they
 * had when called. Undecodable messages are skipped (their consumers
 * dead-lettered them); `onProgress` reports how many were read.
 */
export async function readLog(kafka: Kafka, codec: EventCodec, topics: string[], onProgress?: (read: number) => void): Promise<LogRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const remaining = new Map<string, number>();
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) if (Number(p.high) > Number(p.low)) remaining.set(`${topic}/${p.partition}`, Number(p.high));
    }
  } finally {
    await admin.disconnect();
  }
  const records: LogRecord[] = [];
  if (remaining.size === 0) return records;
  const consumer = kafka.consumer({ groupId: `mabeam.replay.${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 100, readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.CRASH, ({ payload }) => !payload.restart && reject(payload.error));
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              try {
                records.push({ topic: batch.topic, partition: batch.partition, offset: Number(m.offset), timestamp: Number(m.timestamp), decoded: await codec.decode(m.value) });
              } catch {
                // not an event: it went to dead-letters when it was consumed
              }
            }
            onProgress?.(records.length);
            // Transaction markers take offsets too: the end is reached when the fetch says nothing is left.
            const key = `${batch.topic}/${batch.partition}`;
            if (remaining.has(key) && (Number(batch.highWatermark) <= Number(batch.lastOffset()) + 1 || batch.offsetLag() === '0')) remaining.delete(key);
            if (remaining.size === 0) resolve();
          },
        })
        .catch(reject);
      // A partition can end in transaction markers or aborted data, which are never delivered:
      // it is done when what was read reaches its last marker, or when fetches bring nothing more.
      let fetchedAt = 0;
      let lastRecords = -1;
      let quietSince = Date.now();
      consumer.on(consumer.events.FETCH, () => (fetchedAt = Date.now()));
      const check = setInterval(() => {
        for (const key of [...remaining.keys()]) {
          const [topic, partition] = [key.slice(0, key.lastIndexOf('/')), Number(key.slice(key.lastIndexOf('/') + 1))];
          const lastRead = records.filter((r) => r.topic === topic && r.partition === partition).reduce((max, r) => Math.max(max, r.offset), -1);
          if (lastRead + 2 >= remaining.get(key)!) remaining.delete(key);
        }
        if (records.length !== lastRecords) {
          lastRecords = records.length;
          quietSince = Date.now();
        }
        if (remaining.size === 0 || (fetchedAt > quietSince && Date.now() - quietSince > 1_500)) {
          clearInterval(check);
          resolve();
        }
      }, 100);
      check.unref();
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}
