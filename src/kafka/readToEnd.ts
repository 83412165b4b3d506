import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import { prefixOfTopic, readerGroupId } from '../topics/names.ts';

/**
 * The one definition of "a topic read to its end", for every reader: the
 * one-shot `readToEnd` (agent snapshots, replay, a coordinator's changelog)
 * and the long-lived followers (TopicFollower, CompactedView).
 *
 * - The end of a partition is its last stable offset when asked (kafkajs's
 *   admin lists offsets read_committed): everything committed by then. An
 *   open transaction's records are at or past it, so they are neither read
 *   nor waited for — whatever it commits later is after the end.
 * - A partition is read when the next offset to read is at or past its end.
 *   Transaction markers and aborted records take offsets but reach no
 *   handler: kafkajs reports the last offset of every batch, including one of
 *   only markers or aborted records, and those offsets count as read.
 * - A partition with nothing in it (high <= low) is read without a fetch.
 */

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  message: KafkaMessage;
}

export interface ReadToEndOptions {
  topics: string[];
  /** Only these partition numbers (of every topic); default all. */
  partitions?: readonly number[];
  /** Start offsets per `${topic}/${partition}`; default the beginning (low watermark). */
  from?: ReadonlyMap<string, number>;
  /** End offsets (exclusive) per `${topic}/${partition}`, where less than the partition's end; default its end. */
  until?: ReadonlyMap<string, number>;
  /** Asked after each record handed over: true ends the read there (the reader has what it looked for). */
  enough?: () => boolean;
  /**
   * Bytes fetched per partition per round trip (default 8 MB: a reader to
   * the end wants as much as the broker gives). A reader that stops early
   * (`enough`) wants less: kafkajs decodes all of a fetch before handing it over.
   */
  fetchBytesPerPartition?: number;
  /**
   * Called for each committed record, in partition order; awaited. A
   * retriable error (a MabeamError or KafkaJS error with retriable true) is
   * retried with backoff — the same record again, never skipped; any other
   * error rejects readToEnd.
   */
  onRecord: (record: ReadRecord) => Promise<void> | void;
  /** Default 30_000; then rejects with LOG_READ_TIMEOUT naming the topic-partitions not yet read. */
  timeoutMs?: number;
  /** Prefix of the throw-away consumer group name. */
  groupPrefix?: string;
  /** Offsets read so far and offsets to read in all, after each batch. */
  onProgress?: (read: number, total: number) => void;
}

/** The key of a topic-partition in `from`, `ends` and positions. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

/** Where a partition stood when asked: its low watermark and its end (`high`, the last stable offset). */
export interface PartitionEnd {
  topic: string;
  partition: number;
  low: number;
  high: number;
}

/**
 * The offset of a time, per `${topic}/${partition}` (of `partitions`, or
 * all): the earliest offset whose timestamp is at or after it; past the end
 * (as a start, nothing to read; as an end, the end) when no record is that late.
 */
export async function offsetsAt(admin: Admin, topic: string, timestamp: number, partitions?: readonly number[]): Promise<Map<string, number>> {
  const wanted = partitions ? new Set(partitions) : undefined;
  const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, timestamp);
  return new Map(
    offsets.filter((o) => !wanted || wanted.has(o.partition)).map((o) => [partitionKey(topic, o.partition), Number(o.offset) >= 0 ? Number(o.offset) : Number.MAX_SAFE_INTEGER]),
  );
}

/** A thrown value the reader retries: it says so itself (MabeamError, KafkaJSError). */
export function isRetriable(error: unknown): boolean {
  if (isMabeamError(error)) return error.retriable;
  return error instanceof Error && error.name.startsWith('KafkaJS') && (error as { retriable?: unknown }).retriable === true;
}

/** The watermarks of every partition of the topics (or of `partitions` only); retriable broker errors are asked again until `deadline`. */
export async function fetchEnds(kafka: Kafka, topics: readonly string[], partitions?: readonly number[], deadline = Date.now() + 30_000): Promise<PartitionEnd[]> {
  const wanted = partitions ? new Set(partitions) : undefined;
  const admin = kafka.admin();
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.connect();
      const ends: PartitionEnd[] = [];
      for (const topic of topics) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          if (wanted && !wanted.has(p.partition)) continue;
          ends.push({ topic, partition: p.partition, low: Number(p.low), high: Number(p.high) });
        }
      }
      return ends;
    } catch (error) {
      if (!isRetriable(error) || Date.now() >= deadline) throw error;
      await sleep(Math.min(backoff(attempt), Math.max(0, deadline - Date.now())));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/**
 * Per topic-partition, the next offset to read. Fed by the records handled
 * and by the batches kafkajs reports; monotonic, so a redelivery after a
 * restart or rejoin never moves it back.
 */
export class ReadPositions {
  private readonly next = new Map<string, number>();

  get(topic: string, partition: number): number | undefined {
    return this.next.get(partitionKey(topic, partition));
  }

  /** Everything below `next` is read; true when that moved the position. */
  advance(topic: string, partition: number, next: number): boolean {
    const key = partitionKey(topic, partition);
    if (next <= (this.next.get(key) ?? -1)) return false;
    this.next.set(key, next);
    return true;
  }

  /** The partitions of `ends` not yet read to their end (a partition not read at all stands at its low watermark). */
  behind(ends: readonly PartitionEnd[]): PartitionEnd[] {
    return ends.filter((e) => e.high > e.low && (this.get(e.topic, e.partition) ?? e.low) < e.high);
  }

  /** "topic/partition at X of Y" for each partition of `ends` not yet read. */
  describe(ends: readonly PartitionEnd[]): string {
    return this.behind(ends)
      .map((e) => `${partitionKey(e.topic, e.partition)} at ${this.get(e.topic, e.partition) ?? e.low} of ${e.high}`)
      .join(', ');
  }

  /**
   * Counts the batches kafkajs delivers to no handler — only aborted records
   * or transaction markers — as read. Only those: a batch a handler left
   * unfinished (a rebalance, a stop) is reported too, and must not count.
   */
  followFilteredBatches(consumer: Consumer, onAdvance: () => void = () => undefined): void {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize === 0 && this.advance(payload.topic, payload.partition, Number(payload.lastOffset) + 1)) onAdvance();
    });
  }

  /** Counts every batch kafkajs reports as done as read (for eachMessage consumers that never seek). */
  followAllBatches(consumer: Consumer, onAdvance: () => void = () => undefined): void {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (this.advance(payload.topic, payload.partition, Number(payload.lastOffset) + 1)) onAdvance();
    });
  }

  /** After a whole batch was handled: its markers and aborted records after the last message are read too. */
  batchDone(batch: EachBatchPayload['batch']): boolean {
    return this.advance(batch.topic, batch.partition, Number(batch.lastOffset()) + 1);
  }

  /**
   * On every join (the first, and after kafkajs restarts a crashed consumer,
   * which starts again from the beginning), continues each assigned
   * partition from its position.
   */
  resumeOnJoin(consumer: Consumer): void {
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
        for (const partition of partitions) {
          const next = this.get(topic, partition);
          if (next !== undefined) consumer.seek({ topic, partition, offset: String(next) });
        }
      }
    });
  }
}

export interface RetryOptions {
  /** Give up (rethrow the last error) after this time. Default: never. */
  deadline?: number;
  /** Stop retrying (rethrow) when this says so: the reader is stopping. */
  stopped?: () => boolean;
  /** Keeps the consumer's group membership alive between attempts. */
  heartbeat?: () => Promise<void>;
  onRetry?: (error: unknown, attempt: number) => void;
}

/** Runs `work` until it succeeds; a retriable error is tried again with backoff, any other is thrown. */
export async function retryRetriable<T>(work: () => Promise<T> | T, options: RetryOptions = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const left = (options.deadline ?? Infinity) - Date.now();
      if (!isRetriable(error) || left <= 0 || options.stopped?.()) throw error;
      options.onRetry?.(error, attempt);
      await sleep(Math.min(backoff(attempt), left));
      await options.heartbeat?.();
    }
  }
}

function backoff(attempt: number): number {
  return Math.min(50 * 2 ** attempt, 2_000);
}

/**
 * Reads committed data (read_committed) of the topics from `from` to the end
 * offsets they had when called; resolves with those ends. Records past an
 * end are not delivered. No consumer is started when nothing is to be read.
 */
export async function readToEnd(kafka: Kafka, options: ReadToEndOptions): Promise<{ ends: Map<string, number> }> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const all = (await fetchEnds(kafka, options.topics, options.partitions, deadline)).map((e) => {
    const until = options.until?.get(partitionKey(e.topic, e.partition));
    return until !== undefined && until < e.high ? { ...e, high: Math.max(e.low, until) } : e;
  });
  const ends = new Map(all.map((e) => [partitionKey(e.topic, e.partition), e.high]));
  const positions = new ReadPositions();
  // What is to be read: from the start asked (never before the low watermark) to the end.
  const toRead: PartitionEnd[] = [];
  for (const e of all) {
    const start = Math.max(e.low, options.from?.get(partitionKey(e.topic, e.partition)) ?? e.low);
    positions.advance(e.topic, e.partition, start);
    if (start < e.high) toRead.push({ ...e, low: start });
  }
  if (toRead.length === 0) return { ends };
  const total = toRead.reduce((sum, e) => sum + e.high - e.low, 0);
  const progress = () => toRead.reduce((sum, e) => sum + Math.min(e.high, positions.get(e.topic, e.partition) ?? e.low) - e.low, 0);
  const reading = new Map(toRead.map((e) => [partitionKey(e.topic, e.partition), e]));

  const perPartition = options.fetchBytesPerPartition ?? 8 * 1024 * 1024;
  const consumer = kafka.consumer({
    groupId: readerGroupId(prefixOfTopic(toRead[0]!.topic), options.groupPrefix ?? 'log'), maxWaitTimeInMs: 100, readUncommitted: false,
    maxBytesPerPartition: perPartition, maxBytes: Math.max(perPartition, Math.min(64 * 1024 * 1024, perPartition * toRead.length)),
  });
  let finished = false;
  /** The last retriable failure of onRecord, said when the read times out. */
  let lastFailure: unknown;
  try {
    await new Promise<void>((resolve, reject) => {
      const done = (error?: unknown) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      };
      const check = () => {
        if (positions.behind(toRead).length === 0) done();
      };
      const timer = setTimeout(() => done(timedOut(options.topics, positions, toRead, timeoutMs, lastFailure)), Math.max(0, deadline - Date.now()));
      timer.unref();

      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) done(payload.error);
      });
      positions.followFilteredBatches(consumer, () => {
        options.onProgress?.(progress(), total);
        check();
      });
      // Start each partition at its position; pause what there is nothing (more) to read of.
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        const idle: Array<{ topic: string; partitions: number[] }> = [];
        for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
          const paused = partitions.filter((partition) => {
            const e = reading.get(partitionKey(topic, partition));
            if (!e || positions.behind([e]).length === 0) return true;
            consumer.seek({ topic, partition, offset: String(positions.get(topic, partition) ?? e.low) });
            return false;
          });
          if (paused.length > 0) idle.push({ topic, partitions: paused });
        }
        if (idle.length > 0) consumer.pause(idle);
      });

      /** After onRecord failed on a record: true once a retry handled it, false when the read is over (or a rebalance, which throws). */
      const retried = async (record: ReadRecord, failure: unknown, heartbeat: () => Promise<void>): Promise<boolean> => {
        if (!isRetriable(failure)) {
          done(failure);
          return false;
        }
        lastFailure = failure;
        let membership: unknown;
        const keepMembership = async () => {
          try {
            await heartbeat();
          } catch (error) {
            membership = error;
            throw error;
          }
        };
        try {
          await retryRetriable(() => options.onRecord(record), { deadline, stopped: () => finished, heartbeat: keepMembership, onRetry: (error) => (lastFailure = error) });
          return !finished;
        } catch (error) {
          // A rebalance: kafkajs rejoins, and the join continues from this record's position.
          if (membership !== undefined && error === membership) throw error;
          if (!finished) done(isRetriable(error) ? timedOut(options.topics, positions, toRead, timeoutMs, error) : error);
          return false;
        }
      };

      const eachBatch = async ({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> => {
        const e = reading.get(partitionKey(batch.topic, batch.partition));
        if (!e || finished) return;
        for (const message of batch.messages) {
          if (finished) return;
          const offset = Number(message.offset);
          // Before the position: fetched again after a restart; at or past the end: written after the call.
          if (offset >= (positions.get(batch.topic, batch.partition) ?? e.low) && offset < e.high) {
            const record: ReadRecord = { topic: batch.topic, partition: batch.partition, offset: message.offset, message };
            // The fast path: a handler that returns (or resolves) at once costs no retry machinery.
            let failed = false;
            let failure: unknown;
            try {
              const handled = options.onRecord(record);
              if (handled) await handled;
            } catch (error) {
              failed = true;
              failure = error;
            }
            if (failed && !(await retried(record, failure, heartbeat))) return;
            if (options.enough?.()) {
              done();
              return;
            }
          }
          resolveOffset(message.offset);
          positions.advance(batch.topic, batch.partition, offset + 1);
        }
        positions.batchDone(batch);
        options.onProgress?.(progress(), total);
        check();
      };

      consumer
        .connect()
        .then(() => consumer.subscribe({ topics: [...new Set(toRead.map((t) => t.topic))], fromBeginning: true }))
        .then(() => consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch }))
        .catch((error: unknown) => done(error));
    });
  } finally {
    finished = true;
    await consumer.disconnect().catch(() => undefined);
  }
  return { ends };
}

function timedOut(topics: readonly string[], positions: ReadPositions, ends: readonly PartitionEnd[], timeoutMs: number, cause?: unknown): MabeamError {
  const behind = positions.behind(ends);
  const why = cause === undefined ? '' : `; the last record kept failing: ${describeError(cause)}`;
  return new MabeamError('LOG_READ_TIMEOUT', `Reading ${topics.join(', ')} to its end took longer than ${timeoutMs} ms (not yet read: ${positions.describe(ends)})${why}.`, {
    ...(cause === undefined ? {} : { cause }),
    details: { behind: behind.map((e) => ({ topic: e.topic, partition: e.partition, position: positions.get(e.topic, e.partition) ?? e.low, end: e.high })) },
  });
}
