import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { partitionOfKey } from '../engine/routing.ts';
import { offsetsAt } from '../kafka/readToEnd.ts';
import { topicName } from '../topics/names.ts';
import { partitionCounts } from '../topics/partitions.ts';
import type { RoundFilter } from './replayRounds.ts';
import { RoundHistory, type RecordedRound } from './roundHistory.ts';
import type { KeyLookup } from '../security/directory.ts';
import { checkSignature } from '../security/verify.ts';
import { scanLog, type LogRecord } from './scanLog.ts';

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
  /** Only these partition numbers (a share of the work among several readers); default all (or the named rounds'). */
  partitions?: readonly number[];
  onProgress?: (read: number, total: number) => void;
  timeoutMs?: number;
  /** Called for each round as soon as the log has all of it (settleAsRead decides it then and lets its answers go). */
  onComplete?: (round: RecordedRound, history: RoundHistory) => void;
  /**
   * With signatures required: the agents' keys (loadKeyDirectory). Each bid
   * and vote then goes through the coordinator's own check (checkSignature),
   * and one it refuses is not an answer of its round.
   */
  keys?: KeyLookup;
}

/**
 * The recorded rounds of a prefix's topics, read to the end they had when
 * called. With round ids, only those rounds' partition (the round topics
 * are co-partitioned: a round's records are all on the partition its id
 * hashes to, or were copied there by the engine) is read; with a time
 * window, each partition from the offset of the window's start (less
 * windowSkewMs).
 */
/** The partition numbers the rounds' records are on (the round topics are co-partitioned), in order. */
export function partitionsOfRounds(roundIds: Iterable<string>, partitions: number): number[] {
  return [...new Set([...roundIds].map((id) => partitionOfKey(Buffer.from(id), partitions)))].sort((a, b) => a - b);
}

export async function readHistory(options: ReadHistoryOptions): Promise<RoundHistory> {
  const { kafka, codec, prefix, filter = {} } = options;
  const topics = roundTopics.map((t) => topicName(prefix, t));
  const keys = options.keys;
  const verify = keys
    ? (record: LogRecord, agentId: string) => checkSignature({ key: record.raw?.key ?? null, value: record.raw?.value ?? null, headers: record.raw?.headers, timestamp: record.timestamp }, agentId, keys)
    : undefined;
  const history = new RoundHistory(options.onComplete, verify);
  const admin = kafka.admin();
  await admin.connect();
  let partitions: number[] | undefined = options.partitions ? [...options.partitions] : undefined;
  let from: Map<string, number> | undefined;
  let counts: Map<string, number>;
  try {
    counts = await partitionCounts(admin, prefix, roundTopics);
    if (filter.roundIds && filter.roundIds.size > 0) {
      const named = partitionsOfRounds(filter.roundIds, counts.get(topics[0]!) ?? 1);
      partitions = named.filter((p) => !partitions || partitions.includes(p));
    }
    if (filter.since !== undefined) {
      from = new Map();
      for (const topic of topics) for (const [key, offset] of await offsetsAt(admin, topic, filter.since - windowSkewMs)) from.set(key, offset);
    }
  } finally {
    await admin.disconnect();
  }
  if (partitions && partitions.length === 0) return history;
  await scanLog(
    kafka,
    codec,
    {
      topics,
      lean: true,
      placedOnly: counts,
      ...(keys ? { raw: new Set(['Bid', 'Vote']) } : {}),
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
