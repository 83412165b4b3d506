import type { IHeaders, Kafka } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { forwardedFromHeader, partitionOfKey } from '../engine/routing.ts';
import { describeError, isMabeamError, type ErrorCode } from '../errors.ts';
import { isRetriable, readToEnd, type ReadRecord, type ReadToEndOptions } from '../kafka/readToEnd.ts';

/** One event of the log, and where it is. */
export interface LogRecord {
  topic: string;
  partition: number;
  offset: number;
  /** The record's log timestamp (ms). */
  timestamp: number;
  /** The record's key as text (null for a record without one). */
  key: string | null;
  decoded: DecodedEvent;
  /** Where a record was first written, when the engine copied it to its key's partition. */
  forwardedFrom?: { topic: string; partition: number; offset: number };
  /** The producer that wrote it, and whether in a transaction (a transactional producer's id and epoch identify its transaction). */
  producer?: { id: string; epoch: number; transactional: boolean };
  /** The record's key, value and headers as the log holds them (with `raw`: what a signature check needs). */
  raw?: { key: Buffer | null; value: Buffer | null; headers?: IHeaders };
}

/** A record of the log that is not an event this product can read: where it is and why. */
export interface UndecodableRecord {
  topic: string;
  partition: number;
  offset: number;
  /** The codec's reason (a dead-letter reason code: BAD_MAGIC_BYTE, UNKNOWN_SCHEMA_ID, …). */
  code: ErrorCode;
  message: string;
  /** The record's key as text, if it has one. */
  key?: string;
}

/** What readToEnd takes (the topics, partitions and offsets to read, when to stop), and what scanning adds. */
export interface ScanLogOptions extends Pick<ReadToEndOptions, 'topics' | 'partitions' | 'from' | 'until' | 'enough' | 'fetchBytesPerPartition' | 'onProgress'> {
  /** Default 120_000 (then LOG_READ_TIMEOUT). */
  timeoutMs?: number;
  /**
   * Only records with one of these keys (or with no key) are decoded and
   * handed over; the others are passed by without decoding (an audit of one
   * round reads its partition, shared with many other rounds).
   */
  keys?: ReadonlySet<string>;
  /**
   * Topic → partition count: pass by the keyed records that are not on
   * their key's partition, as the engine does — it copies such a record to
   * its key's partition (with the forwarded-from header) and decides on
   * the copy. Readers that split the partitions between them need this, so
   * a record and its copy are not both taken.
   */
  placedOnly?: ReadonlyMap<string, number>;
  /** Hand over only position, timestamp and event: no key, producer or forwarded-from (what replay needs, for less work per record). Default false. */
  lean?: boolean;
  /** Hand over the key, value and headers of these event types as read (LogRecord.raw), lean or not: a signature check needs them. */
  raw?: ReadonlySet<string>;
  /** Each record that did not decode (its consumers dead-lettered it); default: ignored. */
  onUndecodable?: (record: UndecodableRecord) => void;
}

interface BatchContext {
  producerId?: string;
  producerEpoch?: number;
  inTransaction?: boolean;
}

/**
 * Every committed event of the topics, in partition order, handed to
 * `onEvent` as it is read, up to the ends the topics had when called
 * (readToEnd). Built for reading whole histories: events decode without a
 * promise each once their writer schema is known, and nothing is kept. A
 * record that does not decode goes to `onUndecodable` with its position and
 * reason, never dropped silently; a registry that cannot be reached is asked
 * again, never skipped past. Tombstones (null values of a compacted topic)
 * are deletions, not events.
 */
export async function scanLog(kafka: Kafka, codec: EventCodec, options: ScanLogOptions, onEvent: (record: LogRecord) => void): Promise<{ ends: Map<string, number> }> {
  const keys = options.keys;
  const lean = options.lean === true;
  const raw = options.raw;
  const placedOnly = options.placedOnly;
  const emit = (read: ReadRecord, decoded: DecodedEvent): void => {
    const { message } = read;
    const record: LogRecord = {
      topic: read.topic,
      partition: read.partition,
      offset: Number(read.offset),
      timestamp: Number(message.timestamp),
      key: lean ? null : message.key ? message.key.toString() : null,
      decoded,
    };
    if (raw?.has(decoded.type)) record.raw = { key: message.key, value: message.value, ...(message.headers ? { headers: message.headers } : {}) };
    if (lean) {
      onEvent(record);
      return;
    }
    const forwarded = message.headers?.[forwardedFromHeader];
    if (forwarded !== undefined) {
      const origin = parseOrigin(forwarded.toString());
      if (origin) record.forwardedFrom = origin;
    }
    const batch = (message as unknown as { batchContext?: BatchContext }).batchContext;
    if (batch?.producerId !== undefined) record.producer = { id: String(batch.producerId), epoch: Number(batch.producerEpoch ?? -1), transactional: batch.inTransaction === true };
    onEvent(record);
  };
  const undecodable = (read: ReadRecord, error: unknown): void => {
    options.onUndecodable?.({
      topic: read.topic,
      partition: read.partition,
      offset: Number(read.offset),
      code: isMabeamError(error) ? error.code : 'UNDECODABLE_BODY',
      message: describeError(error),
      ...(read.message.key ? { key: read.message.key.toString() } : {}),
    });
  };

  const { topics, partitions, from, until, enough, fetchBytesPerPartition, onProgress } = options;
  return readToEnd(kafka, {
    topics,
    timeoutMs: options.timeoutMs ?? 120_000,
    groupPrefix: 'mabeam.replay',
    // Only what was given: readToEnd's options are exact (no undefined where a value is expected).
    ...Object.fromEntries(Object.entries({ partitions, from, until, enough, fetchBytesPerPartition, onProgress }).filter(([, v]) => v !== undefined)),
    onRecord: (read) => {
      if (read.message.value === null) return;
      if (keys && read.message.key && !keys.has(read.message.key.toString())) return;
      if (placedOnly && read.message.key) {
        const count = placedOnly.get(read.topic);
        if (count !== undefined && partitionOfKey(read.message.key, count) !== read.partition) return;
      }
      let decoded: DecodedEvent | undefined;
      try {
        decoded = codec.decodeNow(read.message.value);
      } catch (error) {
        undecodable(read, error);
        return;
      }
      if (decoded) {
        emit(read, decoded);
        return;
      }
      // The first record of a writer schema: fetch it (once), then decode as above.
      return codec.decode(read.message.value).then(
        (d) => emit(read, d),
        (error: unknown) => {
          if (isRetriable(error)) throw error; // readToEnd asks again
          undecodable(read, error);
        },
      );
    },
  });
}

/** The engine's forwarded-from header: `topic/partition/offset` (topic names hold no "/"). */
function parseOrigin(text: string): { topic: string; partition: number; offset: number } | undefined {
  const parts = text.split('/');
  if (parts.length !== 3) return undefined;
  const partition = Number(parts[1]);
  const offset = Number(parts[2]);
  return Number.isInteger(partition) && Number.isInteger(offset) ? { topic: parts[0]!, partition, offset } : undefined;
}
