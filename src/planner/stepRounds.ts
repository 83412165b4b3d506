/**
 * The auction that chooses the agent of a step's attempt: its round id and
 * what its BidRequest's item says, shared by the planner (which opens it)
 * and the agents (which bid on it).
 *
 * - roundId `step:<planId>/<stepId>#<attempt>` (plan and step ids have no
 *   ':', '/' or '#'), so the planner finds the plan of a round's outcome from
 *   the outcome alone, on any partition, after any restart.
 * - item (JSON) `{ kind: "plan-step", planId, stepId, attempt, capability,
 *   escalated, inputs }`: what the step is and the inputs it would run with.
 * - Under the default protocol, `delegation`, a bid is the agent's cost
 *   (lowest wins) and a pass (attributes.pass) declines.
 */
import type { Step } from '../agents/types.ts';
import type { BidRequest } from '../events/types.ts';

/** A step as agents are given it (agents/types.ts Step), marked as a step round's item. */
export type StepItem = Step & { kind: 'plan-step' };

export function stepRoundId(planId: string, stepId: string, attempt: number): string {
  return `step:${planId}/${stepId}#${attempt}`;
}

const pattern = /^step:([^/#:]+)\/([^/#:]+)#([1-9][0-9]{0,5})$/;

/** The plan, step and attempt of a step round's id, or undefined for any other round. */
export function parseStepRoundId(roundId: string): { planId: string; stepId: string; attempt: number } | undefined {
  const m = pattern.exec(roundId);
  return m ? { planId: m[1]!, stepId: m[2]!, attempt: Number(m[3]) } : undefined;
}

/** The step a BidRequest auctions, or undefined when it is no step round (or its item is not one). */
export function stepItemOf(request: Pick<BidRequest, 'roundId' | 'item'>): StepItem | undefined {
  if (!parseStepRoundId(request.roundId)) return undefined;
  try {
    const item = JSON.parse(request.item) as Partial<StepItem> | null;
    if (!item || item.kind !== 'plan-step' || typeof item.planId !== 'string' || typeof item.stepId !== 'string' || typeof item.capability !== 'string') return undefined;
    return { kind: 'plan-step', planId: item.planId, stepId: item.stepId, attempt: Number(item.attempt) || 1, capability: item.capability, escalated: item.escalated === true, inputs: item.inputs && typeof item.inputs === 'object' ? item.inputs : {} };
  } catch {
    return undefined;
  }
}
