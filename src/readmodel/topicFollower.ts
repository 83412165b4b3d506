import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { joinedAndFetched } from '../kafka/client.ts';

export interface TopicFollowerOptions {
  kafka: Kafka;
  topic: string;
  /** Prefix of the throw-away consumer group (a random suffix is added: every follower reads everything). */
  groupPrefix: string;
  /** Called for each committed message, in partition order. */
  onMessage: (message: KafkaMessage, partition: number) => Promise<void> | void;
}

/**
 * Reads one topic from the beginning, committed data only, and keeps
 * reading: the in-process copies (variables, round outcomes) are built on
 * it. `caughtUp()` resolves once everything committed before the call has
 * been read; `until()` waits for any condition on the copy.
 */
export class TopicFollower {
  private readonly options: TopicFollowerOptions;
  /** Per partition: the next offset to read (what has been read so far). */
  private readonly positions = new Map<number, number>();
  private readonly waiters = new Set<() => void>();
  private consumer: Consumer | undefined;

  constructor(options: TopicFollowerOptions) {
    this.options = options;
  }

  /** Starts reading; resolves once what the topic held at that moment has been read. */
  async start(): Promise<void> {
    const o = this.options;
    const consumer = o.kafka.consumer({ groupId: `${o.groupPrefix}.${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 100, readUncommitted: false });
    this.consumer = consumer;
    const ready = joinedAndFetched(consumer);
    // What has been read, per partition: kafkajs reports every batch's last offset when it is done with it,
    // including a batch of only aborted records or transaction markers, which reaches no handler.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== o.topic) return;
      const next = Number(payload.lastOffset) + 1;
      if (next <= (this.positions.get(payload.partition) ?? 0)) return;
      this.positions.set(payload.partition, next);
      this.wake();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) await o.onMessage(message, batch.partition);
      },
    });
    await ready;
    await this.caughtUp();
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }

  /** Resolves once everything committed to the topic before this call has been read. */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    let targets: Array<{ partition: number; high: number; low: number }>;
    try {
      targets = (await admin.fetchTopicOffsets(this.options.topic)).map((p) => ({ partition: p.partition, high: Number(p.high), low: Number(p.low) }));
    } finally {
      await admin.disconnect();
    }
    // A partition written in transactions ends in a commit marker: it is read when only the marker is left.
    const done = () => targets.every((t) => t.high <= t.low || (this.positions.get(t.partition) ?? t.low) >= t.high - 1);
    await this.until(done, timeoutMs, `${this.options.topic} to be read to its end`);
  }

  /** Tells waiters that the copy changed (a follower's owner may change it outside onMessage). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `done()` holds, checked now and after every change; rejects after timeoutMs. */
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      timer.unref();
      this.waiters.add(check);
    });
  }
}
