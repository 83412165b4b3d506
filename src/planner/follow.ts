/**
 * Follows one plan on its log as the planner writes it: a throw-away
 * consumer (committed data only) of the one partition of `plans` the plan
 * id hashes to, read from the beginning, folding the plan's events into a
 * run and telling the caller of each — what `mabeam plan run` shows
 * progress from and waits on.
 */
import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { partitionOfKey } from '../engine/routing.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { planEventTypes, type PlanEvent } from './events.ts';
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
  private readonly o: PlanFollowerOptions;
  private consumer: Consumer | undefined;
  private readonly runs = new Map<string, PlanRun>();

  constructor(options: PlanFollowerOptions) {
    this.o = options;
  }

  get run(): PlanRun | undefined {
    return this.runs.get(this.o.planId);
  }

  /** Resolves once the consumer reads. */
  async start(): Promise<void> {
    const o = this.o;
    const mine = partitionOfKey(Buffer.from(o.planId), o.partitions);
    const others = Array.from({ length: o.partitions }, (_, p) => p).filter((p) => p !== mine);
    const consumer = o.kafka.consumer({ groupId: `mabeam-plan-follower-${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 100 });
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
        if (partition !== mine || message.key?.toString() !== o.planId) return;
        let decoded;
        try {
          decoded = await o.codec.decode(message.value);
        } catch (error) {
          o.logger.warn({ topic: o.topic, partition, offset: message.offset, error: describeError(error) }, 'an undecodable record on the plans topic; skipped');
          return;
        }
        const e = { type: decoded.type, event: decoded.event } as unknown as LoggedEvent;
        if (planEventTypes.has(decoded.type)) applyPlanEvent(this.runs, e as PlanEvent, o.logger);
        else if (decoded.type !== 'PlanRejected' && decoded.type !== 'Rejection') return;
        o.onEvent(e, this.run);
      },
    });
    await ready;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
