import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { MabeamError, describeError } from '../errors.ts';
import { joinedAndFetched } from '../kafka/client.ts';
import { ReadPositions, fetchEnds, retryRetriable } from '../kafka/readToEnd.ts';
import type { Logger } from '../log/logger.ts';
import { StoppedLatch, type StopsForGood } from '../runtime/stopped.ts';
import { prefixOfTopic, readerGroupId } from '../topics/names.ts';

export interface TopicFollowerOptions {
  kafka: Kafka;
  topic: string;
  /** Prefix of the throw-away consumer group (a random suffix is added: every follower reads everything). */
  groupPrefix: string;
  /**
   * Called for each committed message, in partition order. A retriable
   * error (the registry unreachable) is retried with backoff on the same
   * message, never skipped; any other error stops the follower for good.
   */
  onMessage: (message: KafkaMessage, partition: number) => Promise<void> | void;
  /** Where retries are said. */
  logger?: Logger;
}

/**
 * Reads one topic from the beginning, committed data only, and keeps
 * reading: the in-process copies (variables, round outcomes) are built on
 * it. `caughtUp()` resolves once everything committed before the call has
 * been read — the end as readToEnd defines it (src/kafka/readToEnd.ts);
 * `until()` waits for any condition on the copy.
 */
export class TopicFollower implements StopsForGood {
  private readonly options: TopicFollowerOptions;
  private readonly positions = new ReadPositions();
  private readonly waiters = new Set<() => void>();
  private consumer: Consumer | undefined;
  private stopping = false;
  private readonly latch = new StoppedLatch();

  constructor(options: TopicFollowerOptions) {
    this.options = options;
  }

  /** Set when the follower stopped for good: kafkajs will not restart its consumer, or a message failed for good. */
  get crash(): Error | undefined {
    return this.latch.error;
  }

  get stoppedForGood(): Promise<Error> {
    return this.latch.stoppedForGood;
  }

  private get failure(): Error | undefined {
    return this.latch.error;
  }

  /** Starts reading; resolves once what the topic held at that moment has been read. */
  async start(): Promise<void> {
    const o = this.options;
    const consumer = o.kafka.consumer({ groupId: readerGroupId(prefixOfTopic(o.topic), o.groupPrefix), maxWaitTimeInMs: 100, readUncommitted: false });
    this.consumer = consumer;
    const ready = joinedAndFetched(consumer);
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.fail(payload.error);
    });
    this.positions.followFilteredBatches(consumer, () => this.wake());
    this.positions.resumeOnJoin(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning }) => {
        for (const message of batch.messages) {
          if (!isRunning() || this.failure) return;
          const offset = Number(message.offset);
          if (offset >= (this.positions.get(batch.topic, batch.partition) ?? 0)) {
            try {
              await retryRetriable(() => o.onMessage(message, batch.partition), {
                stopped: () => this.stopping || !isRunning(),
                heartbeat,
                onRetry: (error, attempt) => o.logger?.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, attempt, error: describeError(error) }, 'reading a record again'),
              });
            } catch (error) {
              if (this.stopping || !isRunning()) return;
              this.fail(new MabeamError('HANDLER_FAILED', `Following ${batch.topic} stopped at partition ${batch.partition} offset ${message.offset}: ${describeError(error)}`, { cause: error }));
              return;
            }
          }
          resolveOffset(message.offset);
          if (this.positions.advance(batch.topic, batch.partition, offset + 1)) this.wake();
        }
        if (this.positions.batchDone(batch)) this.wake();
      },
    });
    await ready;
    await this.caughtUp();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer?.disconnect();
  }

  /** Resolves once everything committed to the topic before this call has been read; rejects at once if the follower stopped for good. */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const ends = await fetchEnds(this.options.kafka, [this.options.topic], undefined, deadline);
    const done = () => this.positions.behind(ends).length === 0;
    try {
      await this.until(done, Math.max(0, deadline - Date.now()), `${this.options.topic} to be read to its end`);
    } catch (error) {
      if (this.failure) throw error;
      throw new MabeamError('LOG_READ_TIMEOUT', `Reading ${this.options.topic} to its end took longer than ${timeoutMs} ms (not yet read: ${this.positions.describe(ends)}).`, {
        cause: error,
        details: { behind: this.positions.behind(ends).map((e) => ({ topic: e.topic, partition: e.partition, position: this.positions.get(e.topic, e.partition) ?? e.low, end: e.high })) },
      });
    }
  }

  /** Tells waiters that the copy changed (a follower's owner may change it outside onMessage). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `done()` holds, checked now and after every change; rejects after timeoutMs, or at once when the follower stops for good. */
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failure) {
          finish();
          reject(this.failure);
        } else if (done()) {
          finish();
          resolve();
        }
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new MabeamError('LOG_READ_TIMEOUT', `Timed out after ${timeoutMs} ms waiting for ${what}.`));
      }, timeoutMs);
      timer.unref();
      this.waiters.add(check);
    });
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.latch.stop(error);
    this.options.logger?.error({ topic: this.options.topic, error: describeError(error) }, 'following the topic stopped for good');
    this.wake();
    // Nothing more is read; stopping waits for the batch in hand, so not from inside it.
    const consumer = this.consumer;
    setImmediate(() => void consumer?.stop().catch(() => undefined));
  }
}
