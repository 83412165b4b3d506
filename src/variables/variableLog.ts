import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { Observable, Subject, concat, defer, filter, of } from 'rxjs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError } from '../errors.ts';
import { joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import { topicName } from '../topics/names.ts';
import { toRecord } from './records.ts';
import { newer, type VariableRecord } from './types.ts';

export interface VariableLogOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
}

/**
 * Every variable's current record, read from the compacted `variables`
 * topic and kept current as it changes: the topic is read from the
 * beginning (committed data only), each record merged by the one rule of
 * `newer()`, and every record that changes a variable is pushed to
 * `changes`. One per process is enough: many watchers share it.
 */
export class VariableLog {
  private readonly options: VariableLogOptions;
  private readonly records = new Map<string, VariableRecord>();
  private readonly subject = new Subject<VariableRecord>();
  /** Per partition: the next offset to read (what has been read so far). */
  private readonly positions = new Map<number, number>();
  private readonly waiters = new Set<() => void>();
  private consumer: Consumer | undefined;
  private readonly topic: string;

  constructor(options: VariableLogOptions) {
    this.options = options;
    this.topic = topicName(options.prefix, 'variables');
  }

  /** Starts reading; resolves once what the topic held at that moment has been read. */
  async start(): Promise<void> {
    const consumer = this.options.kafka.consumer({ groupId: `${this.options.prefix}.variable-readers.${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 100, readUncommitted: false });
    this.consumer = consumer;
    const ready = joinedAndFetched(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          try {
            const record = toRecord(await this.options.codec.decode(message.value));
            if (record) this.apply(record);
          } catch (error) {
            // The owners write this topic; what they could not have written is skipped (and said).
            this.options.logger.warn({ topic: this.topic, partition: batch.partition, offset: message.offset, error: describeError(error) }, 'unreadable variable state skipped');
          }
        }
        this.positions.set(batch.partition, Number(batch.lastOffset()) + 1);
        this.wake();
      },
    });
    await ready;
    await this.caughtUp();
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.subject.complete();
  }

  /**
   * Resolves once everything committed to the topic before this call has
   * been read (the owners call it before deciding on a partition they have
   * just been given; a client before answering a read of its own write).
   */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    let targets: Array<{ partition: number; high: number; low: number }>;
    try {
      targets = (await admin.fetchTopicOffsets(this.topic)).map((p) => ({ partition: p.partition, high: Number(p.high), low: Number(p.low) }));
    } finally {
      await admin.disconnect();
    }
    // A partition ending in a commit marker is read when only the marker is left.
    const done = () => targets.every((t) => t.high <= t.low || (this.positions.get(t.partition) ?? t.low) >= t.high - 1);
    await this.until(done, timeoutMs, 'the variables topic to be read to its end');
  }

  /** Resolves once the variable is at this version or later. */
  async atVersion(id: string, version: number, timeoutMs = 30_000): Promise<VariableRecord> {
    await this.until(() => (this.records.get(id)?.version ?? 0) >= version, timeoutMs, `variable ${id} to reach version ${version}`);
    return this.records.get(id)!;
  }

  get(id: string): VariableRecord | undefined {
    return this.records.get(id);
  }

  all(): VariableRecord[] {
    return [...this.records.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The current record (if any), then each change of it. */
  watch(id: string): Observable<VariableRecord> {
    return defer(() => {
      const current = this.records.get(id);
      return concat(current ? of(current) : of(), this.subject.pipe(filter((r) => r.id === id)));
    });
  }

  /** Every change of every variable, from now on. */
  get changes(): Observable<VariableRecord> {
    return this.subject.asObservable();
  }

  /** Merges a record (read from the topic, or just committed by this process's owner). */
  apply(record: VariableRecord): void {
    const current = this.records.get(record.id);
    const winner = current ? newer(current, record) : record;
    if (winner === current) return;
    this.records.set(record.id, winner);
    this.subject.next(winner);
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
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
