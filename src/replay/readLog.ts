import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { fetchEnds, partitionKey } from '../kafka/readToEnd.ts';
import { scanLog, type LogRecord, type UndecodableRecord } from './scanLog.ts';

export type { LogRecord, UndecodableRecord } from './scanLog.ts';

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
 * to the end they had when called, as one array (scanLog hands them over
 * one by one instead). A record that does not decode is not dropped: it is
 * returned in `undecodable` with its position and reason.
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
  await scanLog(
    kafka,
    codec,
    {
      topics,
      timeoutMs,
      ...(from ? { from } : {}),
      onUndecodable: (u) => undecodable.push(u),
      ...(onProgress ? { onProgress: () => onProgress(records.length + undecodable.length) } : {}),
    },
    (record) => records.push(record),
  );
  return Object.assign(records, { undecodable });
}
