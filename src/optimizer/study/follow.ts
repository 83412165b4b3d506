/**
 * Follows one study on its log as the optimizer writes it: a throw-away
 * consumer (committed data only) of the one partition of `studies` the
 * study id hashes to, read from the beginning, folding the study's events
 * into a run and telling the caller of each — what `mabeam optimize run`
 * shows progress from and waits on.
 */
import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { EventCodec } from '../../codec/codec.ts';
import { describeError } from '../../errors.ts';
import type { Rejection } from '../../events/types.ts';
import { partitionOfKey } from '../../engine/routing.ts';
import type { Logger } from '../../log/logger.ts';
import { studyEventTypes, type StudyEvent, type StudyRun } from './run.ts';
import { applyStudyEvent } from './studyLog.ts';

export type FollowedEvent = StudyEvent | { type: 'Rejection'; event: Rejection };

export interface StudyFollowerOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  /** The prefixed `studies` topic and its partition count. */
  topic: string;
  partitions: number;
  studyId: string;
  /** Each event of the study, with the run after it (undefined before the study started). */
  onEvent: (event: FollowedEvent, run: StudyRun | undefined) => void;
}

export class StudyFollower {
  private readonly o: StudyFollowerOptions;
  private consumer: Consumer | undefined;
  private readonly runs = new Map<string, StudyRun>();

  constructor(options: StudyFollowerOptions) {
    this.o = options;
  }

  get run(): StudyRun | undefined {
    return this.runs.get(this.o.studyId);
  }

  /** Resolves once the consumer reads. */
  async start(): Promise<void> {
    const o = this.o;
    const mine = partitionOfKey(Buffer.from(o.studyId), o.partitions);
    const others = Array.from({ length: o.partitions }, (_, p) => p).filter((p) => p !== mine);
    const consumer = o.kafka.consumer({ groupId: `mabeam-study-follower-${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 100 });
    this.consumer = consumer;
    let joined = false;
    const ready = new Promise<void>((resolve) => {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        if (others.length > 0) consumer.pause([{ topic: o.topic, partitions: others }]);
        if (!joined) {
          joined = true;
          const off = consumer.on(consumer.events.FETCH, () => {
            off();
            resolve();
          });
        }
      });
    });
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message, partition }) => {
        if (partition !== mine || message.key?.toString() !== o.studyId) return;
        let decoded;
        try {
          decoded = await o.codec.decode(message.value);
        } catch (error) {
          o.logger.warn({ topic: o.topic, partition, offset: message.offset, error: describeError(error) }, 'an undecodable record on the studies topic; skipped');
          return;
        }
        if (decoded.type === 'Rejection') {
          o.onEvent({ type: 'Rejection', event: decoded.event as unknown as Rejection }, this.run);
          return;
        }
        if (!studyEventTypes.has(decoded.type)) return;
        const e = { type: decoded.type, event: decoded.event } as unknown as StudyEvent;
        applyStudyEvent(this.runs, e, o.logger);
        o.onEvent(e, this.run);
      },
    });
    await ready;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
