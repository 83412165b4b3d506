/**
 * Follows one plan on its log as the planner writes it (a KeyFollower of
 * its plan id on `plans`), folding the plan's events into a run and telling
 * the caller of each — what `mabeam plan run` shows progress from and waits on.
 */
import type { Kafka } from 'kafkajs';
import { typedEvent, type EventCodec } from '../codec/codec.ts';
import { KeyFollower } from '../kafka/keyFollower.ts';
import type { Logger } from '../log/logger.ts';
import { isPlanEvent } from './events.ts';
import { applyPlanEvent, type LoggedEvent } from './planLog.ts';
import type { PlanRun } from './run.ts';

export interface PlanFollowerOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  /** The prefixed `plans` topic and its partition count. */
  topic: string;
  partitions: number;
  planId: string;
  /** Each event of the plan, with the run after it (undefined before the plan was created). */
  onEvent: (event: LoggedEvent, run: PlanRun | undefined) => void;
}

export class PlanFollower {
  private readonly follower: KeyFollower;
  private readonly runs = new Map<string, PlanRun>();
  private readonly planId: string;

  constructor(o: PlanFollowerOptions) {
    this.planId = o.planId;
    this.follower = new KeyFollower({
      kafka: o.kafka, codec: o.codec, logger: o.logger, topic: o.topic, partitions: o.partitions, key: o.planId, groupPrefix: 'mabeam-plan-follower',
      onEvent: (decoded) => {
        if (isPlanEvent(decoded)) {
          const e = typedEvent(decoded);
          applyPlanEvent(this.runs, e, o.logger);
          o.onEvent(e, this.run);
        } else if (decoded.type === 'PlanRejected' || decoded.type === 'Rejection') o.onEvent(typedEvent(decoded), this.run);
      },
    });
  }

  get run(): PlanRun | undefined {
    return this.runs.get(this.planId);
  }

  /** Resolves once the consumer reads. */
  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
