/**
 * The story of one plan from its log (its partition of `plans`): the plan
 * as created (or its rejection), and for each step in topological order
 * every attempt — whom its auction asked, the round and what the round's
 * own log says of its bids, who was chosen and why, when it started and
 * finished, its error, the retry that followed and why — then the reports
 * the planner refused and the plan's outcome.
 *
 * The plan's log is read whole (one partition); each step auction's round
 * is read with auditRound (only its partition of the round topics). A round
 * id the round topics know nothing of is said, not an error.
 */
import { isMabeamError } from '../errors.ts';
import type { PlanRejected, Rejection, StepAssigned, StepAuctioned, StepCompleted, StepFailed, StepReady, StepRetried, StepSkipped, StepStarted } from '../events/types.ts';
import { silentLogger } from '../log/logger.ts';
import { topologicalOrder, upstreamOf, type Plan } from '../planner/plan.ts';
import { readPlan, type LoggedEvent } from '../planner/planLog.ts';
import type { StepState } from '../planner/progress.ts';
import { topicName } from '../topics/names.ts';
import { parseJson } from './read.ts';
import { auditRound } from './round.ts';
import type { AnswerVerdict, AuditConnection, RoundAudit, RoundAuditState } from './types.ts';

/** Where an event is on the plan's log. */
export interface PlanLogPosition {
  topic: string;
  partition: number;
  offset: number;
}

/** A bid in a step's auction, as the round's log has it. */
export interface StepBidInfo {
  agentId: string;
  /** The bid in words: the cost, or "pass". */
  answer: string;
  /** The cost it offered (absent for a pass). */
  amount: number | null;
  pass: boolean;
  /** counted, refused (by the coordinator, see refusal) or neither (see note). */
  verdict: AnswerVerdict;
  refusal: { reasonCode: string; reason: string } | null;
  note: string | null;
  /** The round's stage it answered (an escalated delegation asks the next tier in the next stage). */
  stage: number | null;
  eventTime: number;
}

/** A step auction's round, from the round topics (auditRound). */
export interface StepRoundInfo {
  roundId: string;
  /** False when the round topics hold nothing of this round id (see note). */
  found: boolean;
  note: string | null;
  state: RoundAuditState | null;
  protocol: string | null;
  /** Whom each stage asked (stage 0: the step's capable agents; later stages: the escalation tiers). */
  stages: Array<{ stage: number; asked: string[] }>;
  bids: StepBidInfo[];
  outcome: { status: string; winners: string[]; price: number | null; reason: string; eventTime: number } | null;
}

export interface StepAttemptAudit {
  attempt: number;
  /** The attempt went up the step's escalation tiers. */
  escalated: boolean;
  /** The retry that made this attempt (absent for the first). */
  retryOf: { reasonCode: string; reason: string; previousAgentId: string | null; notBefore: number; eventTime: number } | null;
  /** The auction that chose the agent (absent when only one agent could take the step, or none could). */
  auction: {
    roundId: string;
    protocol: string;
    asked: string[];
    /** The tiers above `asked` the auction escalates to, nearest first. */
    tiers: string[][];
    deadline: number;
    eventTime: number;
    position: PlanLogPosition;
    round: StepRoundInfo;
  } | null;
  assigned: {
    agentId: string;
    capability: string;
    roundId: string | null;
    /** Why this agent: the auction's reason, or that it was the only one. */
    rule: string;
    inputs: unknown;
    leaseMs: number;
    eventTime: number;
    /** From the step ready (or its retry due) to the assignment. */
    waitedMs: number | null;
    position: PlanLogPosition;
  } | null;
  started: { agentId: string; instanceId: string; leaseMs: number; eventTime: number; afterAssignedMs: number | null; position: PlanLogPosition } | null;
  completed: { agentId: string; result: unknown; eventTime: number; durationMs: number | null; position: PlanLogPosition } | null;
  failed: { agentId: string | null; error: string; retriable: boolean; final: boolean; escalated: boolean; eventTime: number; durationMs: number | null; position: PlanLogPosition } | null;
  /** The retry that followed this attempt. */
  retried: { attempt: number; reasonCode: string; reason: string; notBefore: number; backoffMs: number; escalated: boolean; eventTime: number; position: PlanLogPosition } | null;
}

export interface StepAudit {
  stepId: string;
  capability: string;
  /** The steps it waited for. */
  upstream: string[];
  trigger: string;
  state: StepState;
  ready: { reason: string; eventTime: number } | null;
  skipped: { reason: string; eventTime: number } | null;
  attempts: StepAttemptAudit[];
  /** Every agent an attempt went to, in order. */
  triedBy: string[];
  result: unknown;
  errors: string[];
  /** From ready to completed or failed for good. */
  durationMs: number | null;
}

/** A report (or request) the planner refused: a Rejection on the plan's log. */
export interface PlanRefusalInfo {
  reasonCode: string;
  reason: string;
  agentId: string | null;
  rejectedEventType: string | null;
  rejectedEventId: string | null;
  eventTime: number;
  position: PlanLogPosition;
}

export type PlanAuditStatus = 'completed' | 'failed' | 'cancelled' | 'running' | 'rejected';

export interface PlanAudit {
  planId: string;
  status: PlanAuditStatus;
  /** The PlanCreated: who asked, the goal template (null for a plan given whole), the checked plan. */
  created: { requesterId: string; goalType: string | null; plan: Plan; eventTime: number; position: PlanLogPosition } | null;
  /** The PlanRejected, when the planner refused the plan. */
  rejected: { reasonCode: string; reason: string; problems: string[]; requesterId: string; eventTime: number; position: PlanLogPosition } | null;
  /** In topological order. */
  steps: StepAudit[];
  refusals: PlanRefusalInfo[];
  outcome:
    | { status: 'completed'; result: unknown; eventTime: number; durationMs: number | null }
    | { status: 'failed'; reason: string; failed: string[]; eventTime: number; durationMs: number | null }
    | { status: 'cancelled'; reason: string; requesterId: string | null; eventTime: number; durationMs: number | null }
    | null;
  read: { topic: string; partition: number; events: number; rounds: number };
}

/** How many step rounds are read at once. */
const roundReads = 4;

/** The story of a plan from its log; NOT_IN_LOG when the log holds nothing of it. */
export async function auditPlan(conn: AuditConnection, planId: string): Promise<PlanAudit> {
  const read = await readPlan(conn.kafka, conn.codec, silentLogger(), conn.prefix, planId, conn.timeoutMs !== undefined ? { timeoutMs: conn.timeoutMs } : {});
  const topic = topicName(conn.prefix, 'plans');
  const partition = read.events[0]?.partition ?? 0;
  const at = (x: { partition: number; offset: string }): PlanLogPosition => ({ topic, partition: x.partition, offset: Number(x.offset) });

  let created: PlanAudit['created'] = null;
  let rejected: PlanAudit['rejected'] = null;
  const refusals: PlanRefusalInfo[] = [];
  const steps = new Map<string, StepAudit>();
  const roundIds: string[] = [];
  const auctions: Array<{ attempt: StepAttemptAudit; roundId: string }> = [];
  const run = read.run;
  if (run) {
    for (const s of run.plan.steps) {
      const st = run.steps.get(s.id)!;
      steps.set(s.id, {
        stepId: s.id, capability: s.capability, upstream: upstreamOf(s), trigger: s.trigger, state: st.state, ready: null, skipped: null, attempts: [], triedBy: [...st.triedBy],
        result: st.state === 'completed' ? st.result : null, errors: [...st.errors], durationMs: null,
      });
    }
  }
  const attemptOf = (stepId: string, attempt: number): StepAttemptAudit | undefined => {
    const s = steps.get(stepId);
    if (!s) return undefined;
    let a = s.attempts.find((x) => x.attempt === attempt);
    if (!a) {
      a = { attempt, escalated: false, retryOf: null, auction: null, assigned: null, started: null, completed: null, failed: null, retried: null };
      s.attempts.push(a);
      s.attempts.sort((x, y) => x.attempt - y.attempt);
    }
    return a;
  };
  /** When the attempt could first be given to an agent: the step ready, or the retry's backoff over. */
  const dueAt = (stepId: string, a: StepAttemptAudit): number | null => (a.retryOf ? Math.max(a.retryOf.notBefore, a.retryOf.eventTime) : (steps.get(stepId)?.ready?.eventTime ?? null));
  const since = (from: number | null | undefined, to: number): number | null => (from === null || from === undefined ? null : to - from);

  for (const x of read.events) {
    const e = x.e as LoggedEvent;
    const time = e.event.envelope.eventTime;
    switch (e.type) {
      case 'PlanCreated':
        if (!created && run) created = { requesterId: e.event.requesterId, goalType: e.event.goalType, plan: run.plan, eventTime: time, position: at(x) };
        break;
      case 'PlanRejected': {
        const r = e.event as PlanRejected;
        if (!rejected) rejected = { reasonCode: r.reasonCode, reason: r.reason, problems: [...r.problems], requesterId: r.requesterId, eventTime: time, position: at(x) };
        break;
      }
      case 'Rejection': {
        const r = e.event as Rejection;
        refusals.push({ reasonCode: r.reasonCode, reason: r.reason, agentId: r.agentId, rejectedEventType: r.rejectedEventType, rejectedEventId: r.rejectedEventId, eventTime: time, position: at(x) });
        break;
      }
      case 'StepReady': {
        const s = steps.get((e.event as StepReady).stepId);
        if (s && !s.ready) s.ready = { reason: (e.event as StepReady).reason, eventTime: time };
        break;
      }
      case 'StepSkipped': {
        const s = steps.get((e.event as StepSkipped).stepId);
        if (s && !s.skipped) s.skipped = { reason: (e.event as StepSkipped).reason, eventTime: time };
        break;
      }
      case 'StepAuctioned': {
        const v = e.event as StepAuctioned;
        const a = attemptOf(v.stepId, v.attempt);
        if (!a || a.auction) break;
        a.auction = { roundId: v.roundId, protocol: v.protocol, asked: [...v.asked], tiers: v.tiers.map((t) => [...t]), deadline: v.deadline, eventTime: time, position: at(x), round: unread(v.roundId) };
        if (!roundIds.includes(v.roundId)) roundIds.push(v.roundId);
        auctions.push({ attempt: a, roundId: v.roundId });
        break;
      }
      case 'StepAssigned': {
        const v = e.event as StepAssigned;
        const a = attemptOf(v.stepId, v.attempt);
        if (!a || a.assigned) break;
        a.escalated = v.escalated;
        a.assigned = { agentId: v.agentId, capability: v.capability, roundId: v.roundId, rule: v.rule, inputs: parseJson(v.inputs), leaseMs: v.leaseMs, eventTime: time, waitedMs: since(dueAt(v.stepId, a), time), position: at(x) };
        break;
      }
      case 'StepStarted': {
        const v = e.event as StepStarted;
        const a = attemptOf(v.stepId, v.attempt);
        if (!a || a.started) break;
        a.started = { agentId: v.agentId, instanceId: v.instanceId, leaseMs: v.leaseMs, eventTime: time, afterAssignedMs: since(a.assigned?.eventTime, time), position: at(x) };
        break;
      }
      case 'StepCompleted': {
        const v = e.event as StepCompleted;
        const a = attemptOf(v.stepId, v.attempt);
        if (!a || a.completed) break;
        a.completed = { agentId: v.agentId, result: parseJson(v.result), eventTime: time, durationMs: since(a.started?.eventTime ?? a.assigned?.eventTime, time), position: at(x) };
        break;
      }
      case 'StepFailed': {
        const v = e.event as StepFailed;
        const a = attemptOf(v.stepId, v.attempt);
        if (!a || a.failed) break;
        a.failed = { agentId: v.agentId, error: v.error, retriable: v.retriable, final: v.final, escalated: v.escalated, eventTime: time, durationMs: since(a.started?.eventTime ?? a.assigned?.eventTime ?? a.auction?.eventTime, time), position: at(x) };
        break;
      }
      case 'StepRetried': {
        const v = e.event as StepRetried;
        const before = attemptOf(v.stepId, v.attempt - 1);
        const next = attemptOf(v.stepId, v.attempt);
        if (!before || !next || before.retried) break;
        before.retried = { attempt: v.attempt, reasonCode: v.reasonCode, reason: v.reason, notBefore: v.notBefore, backoffMs: Math.max(0, v.notBefore - time), escalated: v.escalated, eventTime: time, position: at(x) };
        next.retryOf = { reasonCode: v.reasonCode, reason: v.reason, previousAgentId: v.previousAgentId, notBefore: v.notBefore, eventTime: time };
        next.escalated = v.escalated;
        break;
      }
      default:
        break;
    }
  }

  // The steps' durations: from ready to the attempt that finished them.
  for (const s of steps.values()) {
    const last = s.attempts.at(-1);
    const end = s.state === 'completed' ? last?.completed?.eventTime : s.state === 'failed' ? last?.failed?.eventTime : undefined;
    if (end !== undefined && s.ready) s.durationMs = end - s.ready.eventTime;
  }

  // The step auctions' rounds, a few at a time.
  const rounds = new Map<string, StepRoundInfo>();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(roundReads, roundIds.length) }, async () => {
      while (next < roundIds.length) {
        const roundId = roundIds[next++]!;
        rounds.set(roundId, await roundInfo(conn, roundId));
      }
    }),
  );
  for (const { attempt, roundId } of auctions) attempt.auction!.round = rounds.get(roundId) ?? unread(roundId);

  const o = run?.outcome;
  const took = (t: number) => (run ? t - run.createdAt : null);
  const cancelledBy = read.events.find((x) => x.e.type === 'PlanCancelled')?.e.event as { requesterId?: string } | undefined;
  const outcome: PlanAudit['outcome'] = !o
    ? null
    : o.status === 'completed'
      ? { status: 'completed', result: o.result, eventTime: o.at, durationMs: took(o.at) }
      : o.status === 'failed'
        ? { status: 'failed', reason: o.reason, failed: [...o.failed], eventTime: o.at, durationMs: took(o.at) }
        : { status: 'cancelled', reason: o.reason, requesterId: cancelledBy?.requesterId ?? null, eventTime: o.at, durationMs: took(o.at) };
  const order = run ? topologicalOrder(run.plan) : [];
  return {
    planId,
    status: o ? o.status : run ? 'running' : 'rejected',
    created,
    rejected,
    steps: order.map((id) => steps.get(id)!),
    refusals,
    outcome,
    read: { topic, partition, events: read.events.length, rounds: roundIds.length },
  };
}

const unread = (roundId: string): StepRoundInfo => ({ roundId, found: false, note: 'not read', state: null, protocol: null, stages: [], bids: [], outcome: null });

/** What the round topics say of a step's auction; a round they hold nothing of is said so. */
async function roundInfo(conn: AuditConnection, roundId: string): Promise<StepRoundInfo> {
  let a: RoundAudit;
  try {
    a = await auditRound(conn, roundId);
  } catch (error) {
    if (isMabeamError(error) && error.code === 'NOT_IN_LOG') return { ...unread(roundId), note: `no round ${roundId} in the log: ${error.message}` };
    throw error;
  }
  const stages = [...new Map(a.requests.filter((q) => !q.refused).map((q) => [q.stage, { stage: q.stage, asked: [...q.eligible] }])).values()].sort((x, y) => x.stage - y.stage);
  const refused = a.requests.find((q) => q.refused)?.refused;
  return {
    roundId,
    found: true,
    note: a.state === 'open' ? 'open: no outcome yet' : a.state === 'refused' && refused ? `the coordinator refused the auction: ${refused.reasonCode}: ${refused.reason}` : a.state === 'unopened' ? 'the log holds answers or refusals for it but no request' : null,
    state: a.state,
    protocol: a.protocol,
    stages,
    bids: a.answers
      .filter((x) => x.type === 'Bid')
      .map((x) => ({
        agentId: x.agentId,
        answer: x.answer,
        amount: x.pass ? null : (x.amount ?? null),
        pass: x.pass === true,
        verdict: x.verdict,
        refusal: x.refusal ? { reasonCode: x.refusal.reasonCode, reason: x.refusal.reason } : null,
        note: x.note ?? null,
        stage: x.stage,
        eventTime: x.eventTime,
      })),
    outcome: a.outcome ? { status: a.outcome.status, winners: [...a.outcome.winners], price: a.outcome.price, reason: a.outcome.reason, eventTime: a.outcome.eventTime } : null,
  };
}
