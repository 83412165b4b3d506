/**
 * The planner's decisions, with no Kafka in them: for each input (a plan
 * declared, an agent's report on a step, the agent an auction chose) and
 * each tick of the clock, the events to write on the plan's log. Each is
 * evolved into the run as soon as it is emitted (run.ts), so the next
 * decision sees it; after each decision the steps the states make ready or
 * skip are written, and the plan's outcome once every step has finished.
 *
 * - A report counts only for the current attempt of an unfinished step, by
 *   the agent it was assigned to; anything else is refused (`refused`), so a
 *   step's result is recorded once.
 * - A failure that may be retried, or a lease that runs out (a clock
 *   decision, written before anything acts on it), is a StepRetried with the
 *   backoff's notBefore; its next agent is chosen (an auction, by the binding)
 *   once that time has come. After the last attempt, or for a failure that
 *   may not be retried, the step fails for good — or is escalated when the
 *   plan says so.
 */
import { newEnvelope } from '../events/envelope.ts';
import type { EventTypeName } from '../events/types.ts';
import type { PlanEvent, StepCompleted, StepFailed, StepStarted } from './events.ts';
import { backoffBefore, resolveInputs, atPath } from './plan.ts';
import { evolve, pending, resultsOf, startPlan, type PlanRun } from './run.ts';

export interface PlanDecideContext {
  /** The planner's clock, ms. */
  now: number;
  /** Who writes (envelope producerId). */
  producerId: string;
  /** Leases of steps whose agent gave no sign of life, by step: when it last did (ms). */
  aliveAt?: ReadonlyMap<string, number>;
}

/** A report the plan does not count, and why (the binding writes it as a Rejection). */
export interface Refusal {
  stepId: string | null;
  agentId: string | null;
  reasonCode: string;
  reason: string;
}

export interface PlanDecision {
  run: PlanRun | undefined;
  events: PlanEvent[];
  refused?: Refusal;
  /** Steps that need an agent now (ready, or retrying past their backoff): the binding runs their auctions. */
  toAssign: Array<{ stepId: string; attempt: number; capability: string; inputs: Record<string, unknown>; exclude: string[] }>;
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
    // The plan event types join EventTypeName with their Avro schemas; until then the envelope names them as they are.
    const event = { envelope: newEnvelope(type as unknown as EventTypeName, this.ctx.producerId, { correlationId: this.planId, eventTime: this.ctx.now }), planId: this.planId, ...body };
    const e = { type, event } as unknown as Exclude<PlanEvent, { type: 'PlanCreated' }>;
    this.events.push(e);
    evolve(run, e);
  }
}

/** Writes what the step states lead to: steps ready or skipped (settled), then the outcome once every step finished. */
function settle(run: PlanRun, out: Emitter): void {
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
 * step again until it is assigned: the binding runs at most one auction per
 * step attempt.
 */
function toAssign(run: PlanRun, now: number, events: readonly PlanEvent[], all = false): PlanDecision['toAssign'] {
  if (run.outcome) return [];
  const touched = new Set(events.filter((e) => e.type === 'StepReady' || e.type === 'StepRetried').map((e) => (e.event as { stepId: string }).stepId));
  const results = resultsOf(run);
  return run.plan.steps
    .filter((s) => {
      const st = run.steps.get(s.id)!;
      if (!all && !touched.has(s.id)) return false;
      return st.state === 'ready' || (st.state === 'retrying' && (st.notBefore ?? 0) <= now);
    })
    .map((s) => {
      const st = run.steps.get(s.id)!;
      return { stepId: s.id, attempt: Math.max(1, st.attempt), capability: s.capability, inputs: resolveInputs(run.plan, s, results), exclude: [...st.triedBy] };
    });
}

/** A plan declared: started (the roots ready) — the binding checked it and wrote the PlanCreated (or a PlanRejected). */
export function decideCreated(created: Extract<PlanEvent, { type: 'PlanCreated' }>['event'], ctx: PlanDecideContext): PlanDecision {
  const run = startPlan(created);
  const out = new Emitter(ctx, run.planId);
  settle(run, out);
  return { run, events: out.events, toAssign: toAssign(run, ctx.now, out.events) };
}

/** The agent an auction (or the only capable agent) chose for a step's attempt. */
export function decideAssigned(run: PlanRun, assignment: { stepId: string; attempt: number; agentId: string; roundId: string | null; leaseMs?: number }, ctx: PlanDecideContext): PlanDecision {
  const out = new Emitter(ctx, run.planId);
  const st = run.steps.get(assignment.stepId);
  const step = run.plan.steps.find((s) => s.id === assignment.stepId);
  if (!st || !step || run.outcome || !(st.state === 'ready' || st.state === 'retrying') || Math.max(1, st.attempt) !== assignment.attempt) {
    return { run, events: [], refused: { stepId: assignment.stepId, agentId: assignment.agentId, reasonCode: 'STALE_ASSIGNMENT', reason: `Step ${assignment.stepId} of plan ${run.planId} does not wait for an agent for attempt ${assignment.attempt}.` }, toAssign: [] };
  }
  out.emit(run, 'StepAssigned', { stepId: assignment.stepId, attempt: assignment.attempt, agentId: assignment.agentId, roundId: assignment.roundId, leaseMs: assignment.leaseMs ?? step.timeoutMs });
  return { run, events: out.events, toAssign: [] };
}

type Report = { type: 'StepStarted'; event: StepStarted } | { type: 'StepCompleted'; event: StepCompleted } | { type: 'StepFailed'; event: StepFailed } | { type: 'StepHeartbeat'; event: { stepId: string; attempt: number; agentId: string } };

/** An agent's report on a step. */
export function decideReport(run: PlanRun, report: Report, ctx: PlanDecideContext): PlanDecision {
  const e = report.event;
  const st = run.steps.get(e.stepId);
  const refuse = (reasonCode: string, reason: string): PlanDecision => ({ run, events: [], refused: { stepId: e.stepId, agentId: e.agentId ?? null, reasonCode, reason }, toAssign: [] });
  if (run.outcome) return refuse('PLAN_FINISHED', `Plan ${run.planId} is ${run.outcome.status} already.`);
  if (!st) return refuse('UNKNOWN_STEP', `Plan ${run.planId} has no step "${e.stepId}".`);
  if (st.state === 'completed' || st.state === 'failed' || st.state === 'skipped') return refuse('STEP_FINISHED', `Step ${e.stepId} is ${st.state} already; its result counts once.`);
  if (e.attempt !== st.attempt || (st.state !== 'assigned' && st.state !== 'running' && st.state !== 'escalated')) return refuse('STALE_ATTEMPT', `Step ${e.stepId} is at attempt ${st.attempt} (${st.state}), not ${e.attempt}.`);
  if (e.agentId !== st.agentId) return refuse('NOT_ASSIGNED', `Attempt ${st.attempt} of step ${e.stepId} is assigned to ${st.agentId}, not ${e.agentId}.`);
  const out = new Emitter(ctx, run.planId);
  const step = run.plan.steps.find((s) => s.id === e.stepId)!;
  switch (report.type) {
    case 'StepHeartbeat':
      return { run, events: [], toAssign: [] };
    case 'StepStarted':
      out.emit(run, 'StepStarted', { stepId: e.stepId, attempt: e.attempt, agentId: report.event.agentId, leaseMs: report.event.leaseMs });
      break;
    case 'StepCompleted':
      out.emit(run, 'StepCompleted', { stepId: e.stepId, attempt: e.attempt, agentId: report.event.agentId, result: report.event.result });
      break;
    case 'StepFailed': {
      const f = report.event;
      const last = !f.retriable || st.attempt >= step.retry.maxAttempts;
      out.emit(run, 'StepFailed', { stepId: e.stepId, attempt: e.attempt, agentId: f.agentId, error: f.error, retriable: f.retriable, final: last, escalated: last && step.escalate && st.state !== 'escalated' });
      if (!last) out.emit(run, 'StepRetried', { stepId: e.stepId, attempt: st.attempt + 1, reasonCode: 'STEP_FAILED', reason: `attempt ${st.attempt} on ${f.agentId} failed: ${f.error}`, notBefore: ctx.now + backoffBefore(step, st.attempt + 1) });
      break;
    }
  }
  settle(run, out);
  return { run, events: out.events, toAssign: toAssign(run, ctx.now, out.events) };
}

/** The clock: steps whose agent gave no sign of life for their lease are retried (or, out of attempts, fail); retries past their backoff need agents. */
export function decideTick(run: PlanRun, ctx: PlanDecideContext): PlanDecision {
  if (run.outcome) return { run, events: [], toAssign: [] };
  const out = new Emitter(ctx, run.planId);
  for (const step of run.plan.steps) {
    const st = run.steps.get(step.id)!;
    if (st.state !== 'assigned' && st.state !== 'running') continue;
    const alive = ctx.aliveAt?.get(step.id);
    if (alive === undefined || ctx.now - alive < step.timeoutMs) continue;
    const reason = `attempt ${st.attempt} on ${st.agentId}: no sign of life for ${ctx.now - alive} ms (lease ${step.timeoutMs} ms)`;
    if (st.attempt >= step.retry.maxAttempts) out.emit(run, 'StepFailed', { stepId: step.id, attempt: st.attempt, agentId: st.agentId, error: `LEASE_EXPIRED: ${reason}; no attempts left`, retriable: true, final: true, escalated: step.escalate });
    else out.emit(run, 'StepRetried', { stepId: step.id, attempt: st.attempt + 1, reasonCode: 'LEASE_EXPIRED', reason, notBefore: ctx.now + backoffBefore(step, st.attempt + 1) });
  }
  settle(run, out);
  return { run, events: out.events, toAssign: toAssign(run, ctx.now, out.events, true) };
}
