/**
 * Reading plans back from their log (the `plans` topic): the fold of run.ts
 * over every committed event, per partition — what a new planner restores,
 * and what `mabeam plan status|result|audit` show.
 */
import type { Kafka } from 'kafkajs';
import { typedEvent, type EventCodec } from '../codec/codec.ts';
import { partitionOfKey } from '../engine/routing.ts';
import { MabeamError, describeError } from '../errors.ts';
import type { PlanRejected, Rejection } from '../events/types.ts';
import { isRetriable, readToEnd } from '../kafka/readToEnd.ts';
import type { Logger } from '../log/logger.ts';
import { topicName } from '../topics/names.ts';
import { partitionCounts } from '../topics/partitions.ts';
import { isPlanEvent, type PlanEvent } from './events.ts';
import { evolve, startPlan, type PlanRun } from './run.ts';

/** What a plan's log holds besides the fold: its rejection, and the reports it refused. */
export type LoggedEvent = PlanEvent | { type: 'PlanRejected'; event: PlanRejected } | { type: 'Rejection'; event: Rejection };

/**
 * Folds one event into the plans it belongs to. The log is written by
 * planners only, so an event that does not fit (a step the plan does not
 * have) is a fault of the log: it is said, and the plan goes on.
 */
export function applyPlanEvent(runs: Map<string, PlanRun>, e: PlanEvent, logger?: Logger): void {
  if (e.type === 'PlanCreated') {
    if (!runs.has(e.event.planId)) runs.set(e.event.planId, startPlan(e.event));
    return;
  }
  const run = runs.get(e.event.planId);
  if (!run) {
    logger?.warn({ planId: e.event.planId, type: e.type }, 'a plan event before its PlanCreated; skipped');
    return;
  }
  try {
    evolve(run, e);
  } catch (error) {
    logger?.warn({ planId: run.planId, type: e.type, error: describeError(error) }, 'a plan event that does not fit the plan; skipped');
  }
}

export interface ReadPlansOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  /** The prefixed `plans` topic. */
  topic: string;
  partitions?: readonly number[];
  /** Only this plan (others on its partition are skipped undecoded). */
  planId?: string;
  timeoutMs?: number;
  /** Each logged event of the plans read, in log order, with where it is. */
  onEvent?: (e: LoggedEvent, at: { partition: number; offset: string }) => void;
}

/** Every plan on the given partitions of `plans`, as of the end of the log. */
export async function readPlans(options: ReadPlansOptions): Promise<Map<number, Map<string, PlanRun>>> {
  const out = new Map<number, Map<string, PlanRun>>();
  for (const p of options.partitions ?? []) out.set(p, new Map());
  await readToEnd(options.kafka, {
    topics: [options.topic],
    ...(options.partitions ? { partitions: options.partitions } : {}),
    groupPrefix: 'mabeam-plan-reader',
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    onRecord: async ({ partition, offset, message }) => {
      if (options.planId !== undefined && message.key?.toString() !== options.planId) return;
      let decoded;
      try {
        decoded = await options.codec.decode(message.value);
      } catch (error) {
        if (isRetriable(error)) throw error;
        options.logger.warn({ topic: options.topic, partition, offset, error: describeError(error) }, 'an undecodable record on the plans topic; skipped');
        return;
      }
      if (isPlanEvent(decoded)) {
        const e = typedEvent(decoded);
        let runs = out.get(partition);
        if (!runs) out.set(partition, (runs = new Map()));
        applyPlanEvent(runs, e, options.logger);
        options.onEvent?.(e, { partition, offset });
      } else if (decoded.type === 'PlanRejected' || decoded.type === 'Rejection') options.onEvent?.(typedEvent(decoded), { partition, offset });
    },
  });
  return out;
}

/** The partition of `plans` (and `plan-inputs`) a plan id is on. */
export async function planPartition(kafka: Kafka, prefix: string, planId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const count = (await partitionCounts(admin, prefix, ['plans'])).get(topicName(prefix, 'plans'))!;
    return partitionOfKey(Buffer.from(planId), count);
  } finally {
    await admin.disconnect();
  }
}

export interface ReadPlan {
  run: PlanRun | undefined;
  rejected: PlanRejected | undefined;
  /** Every event of the plan in log order, with its position. */
  events: Array<{ e: LoggedEvent; partition: number; offset: string }>;
}

/** One plan, read from its partition of `plans`; NOT_IN_LOG when it was never submitted. */
export async function readPlan(kafka: Kafka, codec: EventCodec, logger: Logger, prefix: string, planId: string, options: { timeoutMs?: number } = {}): Promise<ReadPlan & { run: PlanRun } | ReadPlan & { rejected: PlanRejected }> {
  const topic = topicName(prefix, 'plans');
  const partition = await planPartition(kafka, prefix, planId);
  const events: ReadPlan['events'] = [];
  let rejected: PlanRejected | undefined;
  const runs = await readPlans({
    kafka, codec, logger, topic, partitions: [partition], planId, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    onEvent: (e, at) => {
      events.push({ e, ...at });
      if (e.type === 'PlanRejected' && !rejected) rejected = e.event;
    },
  });
  const run = runs.get(partition)?.get(planId);
  if (!run && !rejected) throw new MabeamError('NOT_IN_LOG', `No plan "${planId}" on ${topic} (prefix "${prefix}"): it was never submitted, or no planner has decided it yet.`);
  return { run, rejected, events } as ReadPlan & { run: PlanRun };
}
