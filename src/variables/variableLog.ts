import type { Kafka } from 'kafkajs';
import { Observable, Subject, concat, defer, filter, of } from 'rxjs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError, isMabeamError } from '../errors.ts';
import { isRetriable } from '../kafka/readToEnd.ts';
import type { Logger } from '../log/logger.ts';
import { TopicFollower } from '../readmodel/topicFollower.ts';
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
  private readonly records = new Map<string, VariableRecord>();
  private readonly subject = new Subject<VariableRecord>();
  private readonly follower: TopicFollower;

  constructor(options: VariableLogOptions) {
    const topic = topicName(options.prefix, 'variables');
    this.follower = new TopicFollower({
      kafka: options.kafka,
      topic,
      groupPrefix: `${options.prefix}.variable-readers`,
      logger: options.logger,
      onMessage: async (message, partition) => {
        try {
          const record = toRecord(await options.codec.decode(message.value));
          if (record) this.apply(record);
        } catch (error) {
          // The registry unreachable: the follower reads the same record again, never past it.
          if (isRetriable(error)) throw error;
          // The owners write this topic; what they could not have written is said, with where it is.
          options.logger.warn({ topic, partition, offset: message.offset, code: isMabeamError(error) ? error.code : undefined, error: describeError(error) }, 'an undecodable variable state record');
        }
      },
    });
  }

  /** Resolves with the cause when reading the topic has stopped for good. */
  get stoppedForGood(): Promise<Error> {
    return this.follower.stoppedForGood;
  }

  /** Starts reading; resolves once what the topic held at that moment has been read. */
  start(): Promise<void> {
    return this.follower.start();
  }

  async stop(): Promise<void> {
    await this.follower.stop();
    this.subject.complete();
  }

  /**
   * Resolves once everything committed to the topic before this call has
   * been read (the owners call it before deciding on a partition they have
   * just been given; a client before answering a read of its own write).
   */
  caughtUp(timeoutMs = 30_000): Promise<void> {
    return this.follower.caughtUp(timeoutMs);
  }

  /** Resolves once the variable is at this version or later. */
  async atVersion(id: string, version: number, timeoutMs = 30_000): Promise<VariableRecord> {
    await this.follower.until(() => (this.records.get(id)?.version ?? 0) >= version, timeoutMs, `variable ${id} to reach version ${version}`);
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
    this.follower.wake();
  }
}
