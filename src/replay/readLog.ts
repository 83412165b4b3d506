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

export interface ReadLogOptions {
  /** Called with how many events have been read so far. */
  onProgress?: (read: number) => void;
  /** Read only the last N offsets of each partition (what a status view needs), not the whole log. */
  lastPerPartition?: number;
}

/**
 * Every committed event of the topics, from the beginning (or, with
 * `lastPerPartition`, from that many offsets before each partition's end)
 * to the end they had when called. Undecodable messages are skipped (their
 * consumers dead-lettered them).
 */
export async function readLog(kafka: Kafka, codec: EventCodec, topics: string[], options: ReadLogOptions = {}): Promise<LogRecord[]> {
  const { onProgress, lastPerPartition } = options;
  const admin = kafka.admin();
  await admin.connect();
  /** Per partition still to read: the end it had when called. */
  const remaining = new Map<string, number>();
  /** Where each partition is read from, when not from its beginning. */
  const startOf = new Map<string, { topic: string; partition: number; offset: number }>();
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        const [low, high] = [Number(p.low), Number(p.high)];
        const from = lastPerPartition === undefined ? low : Math.max(low, high - lastPerPartition);
        if (high <= from) continue;
        remaining.set(`${topic}/${p.partition}`, high);
        if (from > low) startOf.set(`${topic}/${p.partition}`, { topic, partition: p.partition, offset: from });
      }
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
            const from = startOf.get(`${batch.topic}/${batch.partition}`)?.offset ?? 0;
            for (const m of batch.messages) {
              if (Number(m.offset) < from) continue; // fetched before the seek took effect
              try {
                records.push({ topic: batch.topic, partition: batch.partition, offset: Number(m.offset), timestamp: Number(m.timestamp), decoded: await codec.decode(m.value) });
              } catch {
                // not an event: it went to dead-letters when it was consumed
              }
            }
            onProgress?.(records.length);
          },
        })
        .catch(reject);
      for (const { topic, partition, offset } of startOf.values()) consumer.seek({ topic, partition, offset: String(offset) });
      // A partition is read when a batch reaches the end it had, or the current end. Transaction markers and
      // aborted data take offsets but are never delivered; kafkajs still reports the (empty) batch they were in.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const key = `${payload.topic}/${payload.partition}`;
        const end = remaining.get(key);
        if (end === undefined) return;
        if (Number(payload.lastOffset) + 1 >= end || payload.offsetLag === '0') remaining.delete(key);
        if (remaining.size === 0) resolve();
      });
      // Fallback: an open transaction holds back what can be read; stop when fetches bring nothing more.
      let fetchedAt = 0;
      let lastRecords = -1;
      let quietSince = Date.now();
      consumer.on(consumer.events.FETCH, () => (fetchedAt = Date.now()));
      const check = setInterval(() => {
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
