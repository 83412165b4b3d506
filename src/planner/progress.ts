/**
 * How a plan moves on, from the states of its steps: which waiting steps
 * become ready or are skipped (trigger rules, as Airflow names them), and
 * when the plan as a whole has an outcome. Pure; the planner folds its
 * events into step states and asks these after each one.
 *
 * Trigger rules, by a step's upstream (the steps it waits for):
 * - all-success (default): ready once every upstream step completed;
 *   skipped as soon as one failed or was skipped (upstream failed);
 * - all-done: ready once every upstream step finished, however;
 * - one-failed: ready as soon as one upstream step failed; skipped once all
 *   finished and none failed.
 * A step with no upstream is ready when the plan starts.
 */
import { dependantsOf, upstreamOf, type Plan } from './plan.ts';

export type StepState = 'waiting' | 'ready' | 'assigned' | 'running' | 'retrying' | 'completed' | 'failed' | 'skipped';

export function isFinished(state: StepState): boolean {
  return state === 'completed' || state === 'failed' || state === 'skipped';
}

export interface StepChange {
  stepId: string;
  to: 'ready' | 'skipped';
  reason: string;
}

/** What one waiting step's upstream says: ready, skipped, or still waiting (undefined). */
export function judgeWaiting(plan: Plan, stepId: string, states: ReadonlyMap<string, StepState>): StepChange | undefined {
  const step = plan.steps.find((s) => s.id === stepId)!;
  const upstream = upstreamOf(step);
  if (upstream.length === 0) return { stepId, to: 'ready', reason: 'no upstream step' };
  const of = upstream.map((id) => ({ id, state: states.get(id) ?? 'waiting' }));
  const failed = of.filter((u) => u.state === 'failed');
  const notOk = of.filter((u) => u.state === 'failed' || u.state === 'skipped');
  const allDone = of.every((u) => isFinished(u.state));
  switch (step.trigger) {
    case 'all-success':
      if (notOk.length > 0) return { stepId, to: 'skipped', reason: `upstream ${notOk.map((u) => `${u.id} ${u.state}`).join(', ')}` };
      return of.every((u) => u.state === 'completed') ? { stepId, to: 'ready', reason: `upstream ${upstream.join(', ')} completed` } : undefined;
    case 'all-done':
      return allDone ? { stepId, to: 'ready', reason: `upstream ${upstream.join(', ')} done` } : undefined;
    case 'one-failed':
      if (failed.length > 0) return { stepId, to: 'ready', reason: `upstream ${failed.map((u) => u.id).join(', ')} failed` };
      return allDone ? { stepId, to: 'skipped', reason: 'no upstream step failed' } : undefined;
  }
}

/**
 * Every change the step states lead to, settled to a fixed point: a step
 * skipped can skip (or ready) the steps after it in the same pass. In the
 * plan's order (stable), each step once.
 */
export function settleWaiting(plan: Plan, states: ReadonlyMap<string, StepState>): StepChange[] {
  const current = new Map(states);
  const changes: StepChange[] = [];
  const down = dependantsOf(plan);
  let candidates = plan.steps.map((s) => s.id);
  while (candidates.length > 0) {
    const next = new Set<string>();
    for (const id of candidates) {
      if ((current.get(id) ?? 'waiting') !== 'waiting') continue;
      const change = judgeWaiting(plan, id, current);
      if (!change) continue;
      changes.push(change);
      current.set(id, change.to);
      for (const d of down.get(id) ?? []) next.add(d);
    }
    candidates = plan.steps.map((s) => s.id).filter((id) => next.has(id));
  }
  return changes;
}

export type PlanOutcome = { status: 'completed' } | { status: 'failed'; reason: string; failed: string[] };

/**
 * The plan's outcome once every step has finished (undefined before):
 * completed when every step its result names completed; failed otherwise,
 * naming the steps that failed (and those the result names that did not run).
 */
export function planOutcome(plan: Plan, states: ReadonlyMap<string, StepState>): PlanOutcome | undefined {
  if (!plan.steps.every((s) => isFinished(states.get(s.id) ?? 'waiting'))) return undefined;
  const missing = [...new Set(Object.values(plan.result).map((r) => r.step))].filter((id) => states.get(id) !== 'completed');
  if (missing.length === 0) return { status: 'completed' };
  const failed = plan.steps.filter((s) => states.get(s.id) === 'failed').map((s) => s.id);
  const reasons = [...(failed.length > 0 ? [`failed: ${failed.join(', ')}`] : []), `no result from ${missing.join(', ')}`];
  return { status: 'failed', reason: reasons.join('; '), failed };
}
