import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { partitionOfKey } from '../engine/routing.ts';
import { partitionKey } from '../kafka/readToEnd.ts';
import { topicName } from '../topics/names.ts';
import type { RoundFilter } from './replayRounds.ts';
import { RoundHistory } from './roundHistory.ts';
import { scanLog } from './scanLog.ts';

/** The topics a round's story is on, by name without the prefix. */
export const roundTopics = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'] as const;

/**
 * How far before a window's start the answer and outcome topics are read:
 * a round's answers and outcome are written after its request, but a
 * producer's clock (its record timestamps) may be behind the requester's.
 */
export const windowSkewMs = 60_000;

export interface ReadHistoryOptions {
  kafka: Kafka;
  codec: EventCodec;
  prefix: string;
  /** Read no more than the filter needs: only the named rounds' partitions, only from a window's start. */
  filter?: RoundFilter;
  onProgress?: (read: number, total: number) => void;
  timeoutMs?: number;
}

/**
 * The recorded rounds of a prefix's topics, read to the end they had when
 * called. With round ids, only those rounds' partition (the round topics
 * are co-partitioned: a round's records are all on the partition its id
 * hashes to, or were copied there by the engine) is read; with a time
 * window, each partition from the offset of the window's start (less
 * windowSkewMs).
 */
export async function readHistory(options: ReadHistoryOptions): Promise<RoundHistory> {
  const { kafka, codec, prefix, filter = {} } = options;
  const topics = roundTopics.map((t) => topicName(prefix, t));
  const history = new RoundHistory();
  const admin = kafka.admin();
  await admin.connect();
  let partitions: number[] | undefined;
  let from: Map<string, number> | undefined;
  try {
    if (filter.roundIds && filter.roundIds.size > 0) {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics: [topics[0]!] });
      const count = metadata[0]!.partitions.length;
      partitions = [...new Set([...filter.roundIds].map((id) => partitionOfKey(Buffer.from(id), count)))].sort((a, b) => a - b);
    }
    if (filter.since !== undefined) {
      from = new Map();
      for (const topic of topics) {
        for (const { partition, offset } of await admin.fetchTopicOffsetsByTimestamp(topic, filter.since - windowSkewMs)) {
          // -1: nothing at or after that time; read from the end (nothing).
          if (Number(offset) >= 0) from.set(partitionKey(topic, partition), Number(offset));
          else from.set(partitionKey(topic, partition), Number.MAX_SAFE_INTEGER);
        }
      }
    }
  } finally {
    await admin.disconnect();
  }
  await scanLog(
    kafka,
    codec,
    {
      topics,
      ...(partitions ? { partitions } : {}),
      ...(from ? { from } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      onUndecodable: (u) => history.undecodable.push(u),
    },
    (record) => history.add(record),
  );
  return history;
}
