/**
 * What a program calls to run a plan (what `mabeam plan run` does):
 * `submit` checks what it can without a planner and produces a
 * PlanRequested on `plan-inputs`; `run` also follows the plan's log until it
 * completes, fails, is cancelled or rejected, or the time is up; `cancel`
 * asks the planner to stop a plan; `read` folds a plan from its log.
 */
import { context } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { PlanCancelled, PlanRejected, PlanRequested, Rejection } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { traced } from '../tracing/trace.ts';
import { topicName } from '../topics/names.ts';
import { partitionCounts } from '../topics/partitions.ts';
import { PlanFollower } from './follow.ts';
import { parsePlan } from './plan.ts';
import { readPlan, type LoggedEvent } from './planLog.ts';
import type { PlanRun } from './run.ts';

export interface PlanClientOptions {
  kafka: Kafka;
  /** A connected producer. */
  producer: Producer;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
  /** Who asks (PlanRequested.requesterId). */
  requesterId?: string;
}

/**
 * A goal: `{ type, goal }` for a goal template, or `{ plan }` (and an
 * optional goal its steps take inputs from) for a plan given whole.
 */
export interface GoalRequest {
  type?: string;
  goal?: Record<string, unknown>;
  plan?: Record<string, unknown>;
}

export type PlanResult =
  | { status: 'completed'; planId: string; run: PlanRun; result: Record<string, unknown> }
  | { status: 'failed' | 'cancelled'; planId: string; run: PlanRun; reason: string }
  | { status: 'rejected'; planId: string; rejection: PlanRejected | Rejection }
  | { status: 'timeout'; planId: string; run: PlanRun | undefined };

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Checks a goal request's shape (and a whole plan, fully): VALIDATION_FAILED naming what is wrong. */
export function checkGoalRequest(request: unknown): GoalRequest {
  if (!request || typeof request !== 'object' || Array.isArray(request)) throw new MabeamError('VALIDATION_FAILED', 'A goal must be a JSON object: { "type": "...", "goal": {...} } or { "plan": {...} }.');
  const r = request as Record<string, unknown>;
  const unknown = Object.keys(r).filter((k) => !['type', 'goal', 'plan'].includes(k));
  if (unknown.length > 0) throw new MabeamError('VALIDATION_FAILED', `A goal has type, goal and plan only, not ${unknown.join(', ')}.`);
  if (r['goal'] !== undefined && (!r['goal'] || typeof r['goal'] !== 'object' || Array.isArray(r['goal']))) throw new MabeamError('VALIDATION_FAILED', 'goal must be a JSON object.');
  if (r['plan'] === undefined && (typeof r['type'] !== 'string' || r['type'].length === 0)) throw new MabeamError('VALIDATION_FAILED', 'A goal needs a type (a goal template the planners know) or a whole plan.');
  if (r['plan'] !== undefined && r['type'] !== undefined) throw new MabeamError('VALIDATION_FAILED', 'A goal has a type or a whole plan, not both.');
  if (r['plan'] !== undefined) {
    const plan = r['plan'] as Record<string, unknown>;
    parsePlan(plan && typeof plan === 'object' && !('goal' in plan) ? { ...plan, goal: r['goal'] ?? {} } : plan);
  }
  return r as GoalRequest;
}

export class PlanClient {
  private readonly o: PlanClientOptions;

  constructor(options: PlanClientOptions) {
    this.o = options;
  }

  /** Submits a goal; throws VALIDATION_FAILED (nothing produced) for one that cannot be a plan. */
  async submit(request: GoalRequest, options: { planId?: string; eventId?: string } = {}): Promise<{ planId: string; eventId: string }> {
    checkGoalRequest(request);
    const planId = options.planId ?? `plan-${randomUUID()}`;
    if (!idPattern.test(planId)) throw new MabeamError('INVALID_OPTIONS', `A plan id is letters, digits, ".", "_" or "-", starting with a letter or digit, not "${planId}".`);
    const requesterId = this.o.requesterId ?? `client-${process.pid}`;
    const event: PlanRequested = {
      envelope: newEnvelope('PlanRequested', requesterId, { correlationId: planId, ...(options.eventId ? { eventId: options.eventId } : {}) }),
      planId, requesterId, goal: JSON.stringify(request.goal ?? {}), goalType: request.plan ? null : (request.type ?? null), plan: request.plan ? JSON.stringify(request.plan) : null,
    };
    await this.send('PlanRequested', planId, event);
    return { planId, eventId: event.envelope.eventId };
  }

  /** Asks the planners to cancel a plan. */
  async cancel(planId: string, reason = 'cancelled by its requester'): Promise<{ eventId: string }> {
    const requesterId = this.o.requesterId ?? `client-${process.pid}`;
    const event: PlanCancelled = { envelope: newEnvelope('PlanCancelled', requesterId, { correlationId: planId }), planId, requesterId, reason };
    await this.send('PlanCancelled', planId, event);
    return { eventId: event.envelope.eventId };
  }

  /** Submits a goal and follows its plan's log to its outcome (or `timeoutMs`). */
  async run(request: GoalRequest, options: { planId?: string; timeoutMs?: number; onEvent?: (e: LoggedEvent, run: PlanRun | undefined) => void } = {}): Promise<PlanResult> {
    checkGoalRequest(request);
    const planId = options.planId ?? `plan-${randomUUID()}`;
    return this.follow(planId, { ...options, submit: () => this.submit(request, { planId }) });
  }

  /** Follows a plan's log until its outcome (or `timeoutMs`); with `submit`, submits once following. */
  async follow(planId: string, options: { timeoutMs?: number; onEvent?: (e: LoggedEvent, run: PlanRun | undefined) => void; submit?: () => Promise<unknown> } = {}): Promise<PlanResult> {
    const o = this.o;
    const plans = topicName(o.prefix, 'plans');
    const admin = o.kafka.admin();
    await admin.connect();
    let partitions: number;
    try {
      partitions = (await partitionCounts(admin, o.prefix, ['plans', 'plan-inputs'])).get(plans)!;
    } finally {
      await admin.disconnect();
    }
    let settle: (r: PlanResult) => void = () => {};
    const settled = new Promise<PlanResult>((resolve) => (settle = resolve));
    const follower = new PlanFollower({
      kafka: o.kafka, codec: o.codec, logger: o.logger, topic: plans, partitions, planId,
      onEvent: (e, run) => {
        options.onEvent?.(e, run);
        if (e.type === 'PlanRejected' && !run) settle({ status: 'rejected', planId, rejection: e.event });
        else if (e.type === 'Rejection' && !run && e.event.reasonCode === 'DUPLICATE_PLAN') settle({ status: 'rejected', planId, rejection: e.event });
        else if (run?.outcome) settle(resultOf(run));
      },
    });
    // Following first: nothing the planner writes is missed.
    await follower.start();
    try {
      await options.submit?.();
      const timer = setTimeout(() => settle({ status: 'timeout', planId, run: follower.run }), options.timeoutMs ?? 3_600_000);
      const result = await settled;
      clearTimeout(timer);
      return result;
    } finally {
      await follower.stop();
    }
  }

  /** A plan as its log has it (see readPlan). */
  read(planId: string): ReturnType<typeof readPlan> {
    return readPlan(this.o.kafka, this.o.codec, this.o.logger, this.o.prefix, planId);
  }

  /** Writes a request in a span of its own: the plan's trace starts here (in the caller's, when it has one). */
  private async send(type: 'PlanRequested' | 'PlanCancelled', planId: string, event: PlanRequested | PlanCancelled): Promise<void> {
    const topic = topicName(this.o.prefix, 'plan-inputs');
    const value = await this.o.codec.encode(type, event);
    await traced('send', topic, context.active(), { key: planId, subject: { 'mabeam.plan_id': planId } }, (step) =>
      this.o.producer.send({ topic, messages: [{ key: planId, value, headers: { ...step.headers, [eventHeaders.type]: type, [eventHeaders.id]: event.envelope.eventId } }] }),
    );
  }
}

/** A finished plan's result. */
export function resultOf(run: PlanRun): PlanResult {
  const o = run.outcome!;
  if (o.status === 'completed') return { status: 'completed', planId: run.planId, run, result: o.result };
  return { status: o.status, planId: run.planId, run, reason: o.reason };
}
