/**
 * The planner's decisions, with no Kafka in them: for each input (a plan
 * created, an agent's report on a step, the outcome of a step's auction, a
 * cancellation) and each tick of the clock, the events to write on the
 * plan's log. Each is evolved into the run as soon as it is emitted
 * (run.ts), so the next decision sees it; after each decision the steps the
 * states make ready or skip are written, and the plan's outcome once every
 * step has finished.
 *
 * - A report counts only for the current attempt of an unfinished step, by
 *   the agent it was assigned to; anything else is refused (`refused`), so a
 *   step's result is recorded once.
 * - A failure that may be retried, a lease that runs out (a clock decision,
 *   written before anything acts on it) or an auction without a taker is a
 *   StepFailed and a StepRetried with the backoff's notBefore; the next agent
 *   is chosen once that time has come. After the last attempt, or for a
 *   failure that may not be retried, the step fails for good — or, when the
 *   plan says so, gets one more attempt handed up the escalation tiers.
 */
import { newEnvelope } from '../events/envelope.ts';
import type { StepCompleted, StepFailed, StepHeartbeat, StepStarted } from '../events/types.ts';
import type { PlanEvent } from './events.ts';
import { atPath, backoffBefore, resolveInputs, type PlanStep } from './plan.ts';
import { isFinished } from './progress.ts';
import { evolve, pending, resultsOf, startPlan, type PlanRun, type StepRun } from './run.ts';

export interface PlanDecideContext {
  /** The planner's clock, ms. */
  now: number;
  /** Who writes (envelope producerId). */
  producerId: string;
  /** When the agent of each running step last gave a sign of life (ms), by step. */
  aliveAt?: ReadonlyMap<string, number>;
}

/** A report the plan does not count, and why (the binding writes it as a Rejection). */
export interface Refusal {
  stepId: string | null;
  agentId: string | null;
  reasonCode: string;
  reason: string;
}

/** A step attempt that needs an agent: the binding asks the agents of `tiers` (capabilities, nearest first). */
export interface ToAssign {
  stepId: string;
  attempt: number;
  capability: string;
  /** The capabilities whose agents are asked, in tiers: the step's own, or its escalation tiers. */
  tiers: string[];
  escalated: boolean;
  inputs: Record<string, unknown>;
  /** Agents earlier attempts went to (asked only when no other can). */
  exclude: string[];
  leaseMs: number;
}

export interface PlanDecision {
  run: PlanRun | undefined;
  events: PlanEvent[];
  refused?: Refusal;
  /** Steps that need an agent now (ready, or retrying past their backoff). */
  toAssign: ToAssign[];
}

type Body<T extends PlanEvent['type']> = Omit<Extract<PlanEvent, { type: T }>['event'], 'envelope' | 'planId'>;

class Emitter {
  readonly events: PlanEvent[] = [];
  private readonly ctx: PlanDecideContext;
  private readonly planId: string;

  constructor(ctx: PlanDecideContext, planId: string) {
    this.ctx = ctx;
    this.planId = planId;
  }

  emit<T extends Exclude<PlanEvent['type'], 'PlanCreated'>>(run: PlanRun, type: T, body: Body<T>): void {
    const event = { envelope: newEnvelope(type, this.ctx.producerId, { correlationId: this.planId, eventTime: this.ctx.now }), planId: this.planId, ...body };
    const e = { type, event } as unknown as Exclude<PlanEvent, { type: 'PlanCreated' }>;
    this.events.push(e);
    evolve(run, e);
  }
}

/** Writes what the step states lead to: steps ready or skipped (settled), then the outcome once every step finished. */
function settle(run: PlanRun, out: Emitter): void {
  if (run.outcome) return;
  const { changes } = pending(run);
  for (const c of changes) out.emit(run, c.to === 'ready' ? 'StepReady' : 'StepSkipped', { stepId: c.stepId, reason: c.reason });
  const { outcome } = pending(run);
  if (!outcome) return;
  if (outcome.status === 'completed') {
    const results = resultsOf(run);
    const result = Object.fromEntries(Object.entries(run.plan.result).map(([name, r]) => [name, atPath(results.get(r.step), r.path) ?? null]));
    out.emit(run, 'PlanCompleted', { result: JSON.stringify(result) });
  } else out.emit(run, 'PlanFailed', { reason: outcome.reason, failed: outcome.failed });
}

/**
 * Steps that need an agent: those this decision made ready or retried with
 * no backoff left, and — on a tick (`all`) — every step still waiting for
 * an agent (ready, or a retry whose backoff has passed). A tick names such a
 * step again until it is assigned: the binding runs one auction per step
 * attempt.
 */
function toAssign(run: PlanRun, now: number, events: readonly PlanEvent[], all = false): ToAssign[] {
  if (run.outcome) return [];
  const touched = new Set(events.filter((e) => e.type === 'StepReady' || e.type === 'StepRetried').map((e) => (e.event as { stepId: string }).stepId));
  const results = resultsOf(run);
  return run.plan.steps
    .filter((s) => {
      const st = run.steps.get(s.id)!;
      if (!all && !touched.has(s.id)) return false;
      if (st.auctioning === Math.max(1, st.attempt)) return false;
      return st.state === 'ready' || (st.state === 'retrying' && (st.notBefore ?? 0) <= now);
    })
    .map((s) => {
      const st = run.steps.get(s.id)!;
      const tiers = st.escalated && s.escalate ? s.escalate.to : [s.capability];
      return { stepId: s.id, attempt: Math.max(1, st.attempt), capability: s.capability, tiers, escalated: st.escalated, inputs: resolveInputs(run.plan, s, results), exclude: [...st.triedBy], leaseMs: s.timeoutMs };
    });
}

const decision = (run: PlanRun, out: Emitter, now: number, all = false): PlanDecision => {
  settle(run, out);
  return { run, events: out.events, toAssign: toAssign(run, now, out.events, all) };
};

/** Whether a step waits for an agent for this attempt. */
function waitsForAgent(run: PlanRun, st: StepRun | undefined, attempt: number): st is StepRun {
  return !!st && !run.outcome && (st.state === 'ready' || st.state === 'retrying') && Math.max(1, st.attempt) === attempt;
}

/**
 * An attempt that did not succeed: another attempt after the backoff while
 * there are attempts left and the failure may be retried; else one more,
 * escalated, attempt when the plan says so (and this was not it); else the
 * step fails for good.
 */
function failAttempt(run: PlanRun, out: Emitter, step: PlanStep, st: StepRun, f: { agentId: string | null; error: string; retriable: boolean; reasonCode: string; reason: string }, now: number): void {
  const attempt = Math.max(1, st.attempt);
  const retry = f.retriable && !st.escalated && attempt < step.retry.maxAttempts;
  const escalate = !retry && step.escalate !== false && !st.escalated;
  out.emit(run, 'StepFailed', { stepId: step.id, attempt, agentId: f.agentId, error: f.error, retriable: f.retriable, final: !retry && !escalate, escalated: escalate });
  if (retry) {
    out.emit(run, 'StepRetried', { stepId: step.id, attempt: attempt + 1, previousAgentId: f.agentId, reasonCode: f.reasonCode, reason: f.reason, notBefore: now + backoffBefore(step, attempt + 1), escalated: false });
  } else if (escalate) {
    const to = (step.escalate as { to: string[] }).to;
    out.emit(run, 'StepRetried', { stepId: step.id, attempt: attempt + 1, previousAgentId: f.agentId, reasonCode: 'ESCALATED', reason: `${f.reason}; handed up to ${to.join(' → ')}`, notBefore: now, escalated: true });
  }
}

/** A plan created (the binding checked it and wrote the PlanCreated): its roots are ready. */
export function decideCreated(created: Extract<PlanEvent, { type: 'PlanCreated' }>['event'], ctx: PlanDecideContext): PlanDecision {
  const run = startPlan(created);
  return decision(run, new Emitter(ctx, run.planId), ctx.now);
}

const stale = (run: PlanRun, stepId: string, attempt: number, agentId: string | null): PlanDecision => ({
  run,
  events: [],
  refused: { stepId, agentId, reasonCode: 'STALE_ASSIGNMENT', reason: `Step ${stepId} of plan ${run.planId} does not wait for an agent for attempt ${attempt}.` },
  toAssign: [],
});

/** The agent chosen for a step's attempt: by an auction (its round id), or the only agent that could take it. */
export function decideAssigned(run: PlanRun, a: { stepId: string; attempt: number; agentId: string; roundId: string | null; rule: string }, ctx: PlanDecideContext): PlanDecision {
  const st = run.steps.get(a.stepId);
  const step = run.plan.steps.find((s) => s.id === a.stepId);
  if (!step || !waitsForAgent(run, st, a.attempt)) return stale(run, a.stepId, a.attempt, a.agentId);
  const out = new Emitter(ctx, run.planId);
  const inputs = resolveInputs(run.plan, step, resultsOf(run));
  out.emit(run, 'StepAssigned', { stepId: a.stepId, attempt: a.attempt, agentId: a.agentId, capability: step.capability, roundId: a.roundId, rule: a.rule, inputs: JSON.stringify(inputs), leaseMs: step.timeoutMs, escalated: st.escalated });
  return decision(run, out, ctx.now);
}

/** The auction of a step's attempt is opened (the binding writes its BidRequest in the same transaction). */
export function decideAuctioned(run: PlanRun, a: { stepId: string; attempt: number; roundId: string; protocol: string; asked: string[]; tiers: string[][]; deadline: number }, ctx: PlanDecideContext): PlanDecision {
  const st = run.steps.get(a.stepId);
  if (!waitsForAgent(run, st, a.attempt) || st.auctioning === a.attempt) return stale(run, a.stepId, a.attempt, null);
  const out = new Emitter(ctx, run.planId);
  out.emit(run, 'StepAuctioned', { stepId: a.stepId, attempt: a.attempt, roundId: a.roundId, protocol: a.protocol, asked: a.asked, tiers: a.tiers, deadline: a.deadline });
  return { run, events: out.events, toAssign: [] };
}

/** The outcome of a step's auction: its winner is the attempt's agent; no winner is an attempt without a taker. */
export function decideAwarded(run: PlanRun, o: { stepId: string; attempt: number; roundId: string; protocol: string; status: string; winners: string[]; reason: string }, ctx: PlanDecideContext): PlanDecision {
  const st = run.steps.get(o.stepId);
  if (!waitsForAgent(run, st, o.attempt) || st.roundId !== o.roundId) return stale(run, o.stepId, o.attempt, o.winners[0] ?? null);
  const winner = o.status === 'decided' ? o.winners[0] : undefined;
  if (!winner) return decideNoTaker(run, { stepId: o.stepId, attempt: o.attempt, roundId: o.roundId, reason: `${o.status}: ${o.reason}` }, ctx);
  return decideAssigned(run, { stepId: o.stepId, attempt: o.attempt, agentId: winner, roundId: o.roundId, rule: `${o.protocol} auction: ${o.reason}` }, ctx);
}

/** No agent takes a step's attempt: none has the capability now, or its auction closed without a taker. */
export function decideNoTaker(run: PlanRun, n: { stepId: string; attempt: number; roundId: string | null; reason: string }, ctx: PlanDecideContext): PlanDecision {
  const st = run.steps.get(n.stepId);
  const step = run.plan.steps.find((s) => s.id === n.stepId);
  if (!step || !waitsForAgent(run, st, n.attempt)) return stale(run, n.stepId, n.attempt, null);
  const out = new Emitter(ctx, run.planId);
  const reason = `attempt ${n.attempt}: no agent took the step${n.roundId ? ` (round ${n.roundId})` : ''}: ${n.reason}`;
  failAttempt(run, out, step, st, { agentId: null, error: `NO_TAKER: ${reason}`, retriable: true, reasonCode: 'NO_TAKER', reason }, ctx.now);
  return decision(run, out, ctx.now);
}

export type StepReport =
  | { type: 'StepStarted'; event: StepStarted }
  | { type: 'StepCompleted'; event: StepCompleted }
  | { type: 'StepFailed'; event: StepFailed }
  | { type: 'StepHeartbeat'; event: StepHeartbeat };

/** An agent's report on a step. */
export function decideReport(run: PlanRun, report: StepReport, ctx: PlanDecideContext): PlanDecision {
  const e = report.event;
  const st = run.steps.get(e.stepId);
  const refuse = (reasonCode: string, reason: string): PlanDecision => ({ run, events: [], refused: { stepId: e.stepId, agentId: e.agentId ?? null, reasonCode, reason }, toAssign: [] });
  if (run.outcome) return refuse('PLAN_FINISHED', `Plan ${run.planId} is ${run.outcome.status} already.`);
  if (!st) return refuse('UNKNOWN_STEP', `Plan ${run.planId} has no step "${e.stepId}".`);
  if (isFinished(st.state)) return refuse('STEP_FINISHED', `Step ${e.stepId} is ${st.state} already; its result counts once.`);
  if (e.attempt !== st.attempt || (st.state !== 'assigned' && st.state !== 'running')) return refuse('STALE_ATTEMPT', `Step ${e.stepId} is at attempt ${Math.max(1, st.attempt)} (${st.state}), not ${e.attempt}.`);
  if (e.agentId !== st.agentId) return refuse('NOT_ASSIGNED', `Attempt ${st.attempt} of step ${e.stepId} is assigned to ${st.agentId}, not ${e.agentId}.`);
  const out = new Emitter(ctx, run.planId);
  const step = run.plan.steps.find((s) => s.id === e.stepId)!;
  switch (report.type) {
    case 'StepHeartbeat':
      return { run, events: [], toAssign: [] };
    case 'StepStarted':
      if (st.state === 'running') return { run, events: [], toAssign: [] }; // told again
      out.emit(run, 'StepStarted', { stepId: e.stepId, attempt: e.attempt, agentId: report.event.agentId, instanceId: report.event.instanceId, leaseMs: report.event.leaseMs });
      break;
    case 'StepCompleted':
      out.emit(run, 'StepCompleted', { stepId: e.stepId, attempt: e.attempt, agentId: report.event.agentId, result: report.event.result });
      break;
    case 'StepFailed': {
      const f = report.event;
      failAttempt(run, out, step, st, { agentId: f.agentId, error: f.error, retriable: f.retriable, reasonCode: 'STEP_FAILED', reason: `attempt ${st.attempt} on ${f.agentId} failed: ${f.error}` }, ctx.now);
      break;
    }
  }
  return decision(run, out, ctx.now);
}

/** A cancellation: the plan stops; nothing is assigned after it. */
export function decideCancel(run: PlanRun, c: { requesterId: string; reason: string }, ctx: PlanDecideContext): PlanDecision {
  if (run.outcome) return { run, events: [], refused: { stepId: null, agentId: null, reasonCode: 'PLAN_FINISHED', reason: `Plan ${run.planId} is ${run.outcome.status} already.` }, toAssign: [] };
  const out = new Emitter(ctx, run.planId);
  out.emit(run, 'PlanCancelled', { requesterId: c.requesterId, reason: c.reason });
  return { run, events: out.events, toAssign: [] };
}

/**
 * The clock: a plan past its deadline fails; a step whose agent gave no
 * sign of life for its lease loses the attempt; retries past their backoff
 * need agents.
 */
export function decideTick(run: PlanRun, ctx: PlanDecideContext): PlanDecision {
  if (run.outcome) return { run, events: [], toAssign: [] };
  const out = new Emitter(ctx, run.planId);
  const deadline = run.plan.deadlineMs;
  if (deadline !== undefined && ctx.now >= run.createdAt + deadline) {
    const unfinished = run.plan.steps.filter((s) => !isFinished(run.steps.get(s.id)!.state)).map((s) => s.id);
    out.emit(run, 'PlanFailed', { reason: `the plan's deadline (${deadline} ms after it was created) passed with ${unfinished.join(', ')} unfinished`, failed: unfinished });
    return { run, events: out.events, toAssign: [] };
  }
  for (const step of run.plan.steps) {
    const st = run.steps.get(step.id)!;
    if (st.state !== 'assigned' && st.state !== 'running') continue;
    const alive = ctx.aliveAt?.get(step.id);
    if (alive === undefined || ctx.now - alive < step.timeoutMs) continue;
    const reason = `attempt ${st.attempt} on ${st.agentId}: no sign of life for ${ctx.now - alive} ms (lease ${step.timeoutMs} ms)`;
    failAttempt(run, out, step, st, { agentId: st.agentId, error: `LEASE_EXPIRED: ${reason}`, retriable: true, reasonCode: 'LEASE_EXPIRED', reason }, ctx.now);
  }
  return decision(run, out, ctx.now, true);
}
