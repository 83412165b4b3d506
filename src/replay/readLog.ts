import type { Kafka } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { describeError, isMabeamError, type ErrorCode } from '../errors.ts';
import { fetchEnds, isRetriable, partitionKey, readToEnd } from '../kafka/readToEnd.ts';

export interface LogRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  decoded: DecodedEvent;
}

/** A record of the log that is not an event this product can read: where it is and why. */
export interface UndecodableRecord {
  topic: string;
  partition: number;
  offset: number;
  /** The codec's reason (a dead-letter reason code: BAD_MAGIC_BYTE, UNKNOWN_SCHEMA_ID, …). */
  code: ErrorCode;
  message: string;
}

/** The events of the log, in partition order, and beside them every record that did not decode. */
export type LogRead = LogRecord[] & { undecodable: UndecodableRecord[] };

export interface ReadLogOptions {
  /** Called with how many records have been read so far. */
  onProgress?: (read: number) => void;
  /** Read only the last N offsets of each partition (what a status view needs), not the whole log. */
  lastPerPartition?: number;
  /** Default 30_000 (then LOG_READ_TIMEOUT). */
  timeoutMs?: number;
}

/**
 * Every committed event of the topics, from the beginning (or, with
 * `lastPerPartition`, from that many offsets before each partition's end)
 * to the end they had when called (readToEnd). A record that does not
 * decode is not dropped: it is returned in `undecodable` with its position
 * and reason (its consumers dead-lettered it). A registry that cannot be
 * reached is asked again, never skipped past. Tombstones (null values of a
 * compacted topic) are deletions, not events, and are in neither list.
 */
export async function readLog(kafka: Kafka, codec: EventCodec, topics: string[], options: ReadLogOptions = {}): Promise<LogRead> {
  const { onProgress, lastPerPartition } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  let from: Map<string, number> | undefined;
  if (lastPerPartition !== undefined) {
    const ends = await fetchEnds(kafka, topics, undefined, Date.now() + timeoutMs);
    from = new Map(ends.map((e) => [partitionKey(e.topic, e.partition), Math.max(e.low, e.high - lastPerPartition)]));
  }
  const records: LogRecord[] = [];
  const undecodable: UndecodableRecord[] = [];
  await readToEnd(kafka, {
    topics,
    timeoutMs,
    groupPrefix: 'mabeam.replay',
    ...(from ? { from } : {}),
    onRecord: async ({ topic, partition, offset, message }) => {
      if (message.value === null) return;
      try {
        records.push({ topic, partition, offset: Number(offset), timestamp: Number(message.timestamp), decoded: await codec.decode(message.value) });
      } catch (error) {
        if (isRetriable(error)) throw error; // readToEnd asks again
        undecodable.push({ topic, partition, offset: Number(offset), code: isMabeamError(error) ? error.code : 'UNDECODABLE_BODY', message: describeError(error) });
      }
    },
    ...(onProgress ? { onProgress: () => onProgress(records.length + undecodable.length) } : {}),
  });
  return Object.assign(records, { undecodable });
}
