/**
 * A plan as the fold over its events: `startPlan(created)` then
 * `evolve(run, event)` for each later event in log order gives every step's
 * state, attempt, agent and result, and the plan's outcome. A completed
 * step's result is recorded once: an event for a superseded attempt, or a
 * second result, changes nothing here (the planner answers it with a
 * refusal). The events' fields are those the plan events are to carry on
 * the log (planner/events.ts).
 */
import { MabeamError } from '../errors.ts';
import type { PlanEvent } from './events.ts';
import { parsePlan, type Plan } from './plan.ts';
import { isFinished, planOutcome, settleWaiting, type PlanOutcome, type StepState } from './progress.ts';

export interface StepRun {
  stepId: string;
  state: StepState;
  /** The current attempt (0 before the first assignment). */
  attempt: number;
  agentId: string | null;
  /** The auction round of the current attempt (opened, or the one that chose its agent). */
  roundId: string | null;
  /** The attempt whose auction is open (null when none is). */
  auctioning: number | null;
  /** Every agent an attempt went to, in order. */
  triedBy: string[];
  result: unknown;
  errors: string[];
  /** Why it was skipped, or readied. */
  reason: string | null;
  /** Not before this time (ms) does a retried attempt start (its backoff). */
  notBefore: number | null;
  /** The current attempt goes up the escalation tiers. */
  escalated: boolean;
  /** When the current attempt was assigned, and when it started (log time, ms). */
  assignedAt: number | null;
  startedAt: number | null;
}

export interface PlanRun {
  planId: string;
  plan: Plan;
  createdAt: number;
  steps: Map<string, StepRun>;
  outcome: ({ status: 'completed'; result: Record<string, unknown> } & { at: number }) | (Extract<PlanOutcome, { status: 'failed' }> & { at: number }) | { status: 'cancelled'; reason: string; at: number } | null;
}

function stepOf(run: PlanRun, stepId: string): StepRun {
  const s = run.steps.get(stepId);
  if (!s) throw new MabeamError('VALIDATION_FAILED', `Plan ${run.planId} has no step "${stepId}"`);
  return s;
}

/** The plan a PlanCreated starts (its plan checked again: the log holds what was accepted). */
export function startPlan(created: Extract<PlanEvent, { type: 'PlanCreated' }>['event']): PlanRun {
  const plan = parsePlan(JSON.parse(created.plan));
  const steps = new Map<string, StepRun>(
    plan.steps.map((s) => [s.id, { stepId: s.id, state: 'waiting', attempt: 0, agentId: null, roundId: null, auctioning: null, triedBy: [], result: undefined, errors: [], reason: null, notBefore: null, escalated: false, assignedAt: null, startedAt: null }]),
  );
  return { planId: created.planId, plan, createdAt: created.envelope.eventTime, steps, outcome: null };
}

/** The states of the steps, as the trigger rules read them. */
export function stepStates(run: PlanRun): Map<string, StepState> {
  return new Map([...run.steps].map(([id, s]) => [id, s.state]));
}

/** What is still to be decided: the waiting steps' changes the states lead to, and the outcome once every step finished. */
export function pending(run: PlanRun): { changes: ReturnType<typeof settleWaiting>; outcome: PlanOutcome | undefined } {
  const states = stepStates(run);
  return { changes: settleWaiting(run.plan, states), outcome: run.outcome ? undefined : planOutcome(run.plan, states) };
}

/** The results of the completed steps, by step id. */
export function resultsOf(run: PlanRun): Map<string, unknown> {
  return new Map([...run.steps].filter(([, s]) => s.state === 'completed').map(([id, s]) => [id, s.result]));
}

/** Applies one event, in place. An event for a step's superseded attempt, or for a finished step, changes nothing. */
export function evolve(run: PlanRun, e: Exclude<PlanEvent, { type: 'PlanCreated' }>): PlanRun {
  if (e.type === 'PlanCompleted' || e.type === 'PlanFailed') {
    const at = e.event.envelope.eventTime;
    run.outcome = e.type === 'PlanCompleted' ? { status: 'completed', result: JSON.parse(e.event.result) as Record<string, unknown>, at } : { status: 'failed', reason: e.event.reason, failed: e.event.failed, at };
    return run;
  }
  if (e.type === 'PlanCancelled') {
    run.outcome = { status: 'cancelled', reason: e.event.reason, at: e.event.envelope.eventTime };
    return run;
  }
  const s = stepOf(run, e.event.stepId);
  if (isFinished(s.state)) return run;
  switch (e.type) {
    case 'StepReady':
      if (s.state === 'waiting') [s.state, s.reason] = ['ready', e.event.reason];
      return run;
    case 'StepSkipped':
      if (s.state === 'waiting') [s.state, s.reason] = ['skipped', e.event.reason];
      return run;
    case 'StepAuctioned':
      if (e.event.attempt === Math.max(1, s.attempt) && (s.state === 'ready' || s.state === 'retrying')) [s.auctioning, s.roundId] = [e.event.attempt, e.event.roundId];
      return run;
    case 'StepAssigned':
      s.state = 'assigned';
      s.auctioning = null;
      s.attempt = e.event.attempt;
      s.agentId = e.event.agentId;
      s.roundId = e.event.roundId;
      s.triedBy.push(e.event.agentId);
      s.notBefore = null;
      s.assignedAt = e.event.envelope.eventTime;
      s.startedAt = null;
      return run;
    case 'StepStarted':
      if (e.event.attempt === s.attempt && e.event.agentId === s.agentId) [s.state, s.startedAt] = ['running', e.event.envelope.eventTime];
      return run;
    case 'StepCompleted':
      if (e.event.attempt !== s.attempt || e.event.agentId !== s.agentId) return run;
      s.state = 'completed';
      s.result = e.event.result === null ? null : JSON.parse(e.event.result);
      return run;
    case 'StepFailed':
      // A step's first attempt is 1 even before an agent took it (an auction without a taker fails attempt 1).
      if (e.event.attempt !== Math.max(1, s.attempt)) return run;
      s.errors.push(e.event.error);
      if (e.event.final) s.state = 'failed';
      return run;
    case 'StepRetried':
      s.state = 'retrying';
      s.auctioning = null;
      s.attempt = e.event.attempt;
      s.agentId = null;
      s.roundId = null;
      s.notBefore = e.event.notBefore;
      s.escalated = e.event.escalated;
      return run;
  }
}
