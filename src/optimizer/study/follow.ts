/**
 * Follows one study on its log as the optimizer writes it (a KeyFollower of
 * its study id on `studies`), folding the study's events into a run and
 * telling the caller of each — what `mabeam optimize run` shows progress
 * from and waits on.
 */
import type { Kafka } from 'kafkajs';
import { typedEvent, type EventCodec } from '../../codec/codec.ts';
import type { Rejection } from '../../events/types.ts';
import { KeyFollower } from '../../kafka/keyFollower.ts';
import type { Logger } from '../../log/logger.ts';
import { isStudyEvent, type StudyEvent, type StudyRun } from './run.ts';
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
  private readonly follower: KeyFollower;
  private readonly runs = new Map<string, StudyRun>();
  private readonly studyId: string;

  constructor(o: StudyFollowerOptions) {
    this.studyId = o.studyId;
    this.follower = new KeyFollower({
      kafka: o.kafka, codec: o.codec, logger: o.logger, topic: o.topic, partitions: o.partitions, key: o.studyId, groupPrefix: 'mabeam-study-follower',
      onEvent: (decoded) => {
        if (decoded.type === 'Rejection') {
          o.onEvent({ type: 'Rejection', event: decoded.event }, this.run);
          return;
        }
        if (!isStudyEvent(decoded)) return;
        const e = typedEvent(decoded);
        applyStudyEvent(this.runs, e, o.logger);
        o.onEvent(e, this.run);
      },
    });
  }

  get run(): StudyRun | undefined {
    return this.runs.get(this.studyId);
  }

  /** Resolves once the consumer reads. */
  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
