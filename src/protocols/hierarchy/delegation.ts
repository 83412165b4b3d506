/**
 * Hierarchical coordination: a coordinator agent delegates a task to its
 * subordinates and escalates when none of them takes it. The request names
 * the first tier (eligibleAgents) and the tiers above it in order
 * (parameters.escalation: an array of arrays of agent ids, nearest first).
 *
 * In each stage the tier's agents answer: a bid takes the task at the cost
 * it states (amount); a pass (Bid attributes.pass true) declines. The
 * lowest cost wins (ties: the earlier bid, then the lower agent id) and is
 * awarded the task at that cost. When a tier has no taker — every member
 * declined, or its deadline passed without a bid (a dead subordinate does
 * not block it) — the round escalates: the next stage asks the next tier
 * (parameters.tier says which, from 0). No taker in any tier: failed,
 * with the tiers asked in the details.
 */
import type { NextStage, Protocol, RoundOpen, Verdict } from '../types.ts';
import { isPass } from '../roundsInternals.ts';
import { allAnswered } from '../answered.ts';

function tiers(open: RoundOpen): string[][] | undefined {
  const escalation = open.parameters['escalation'] ?? [];
  if (!Array.isArray(escalation) || !escalation.every((t) => Array.isArray(t) && t.length > 0 && t.every((id) => typeof id === 'string' && id.length > 0))) return undefined;
  return escalation as string[][];
}

const tierOf = (open: RoundOpen) => (typeof open.parameters['tier'] === 'number' ? (open.parameters['tier'] as number) : 0);

export const delegation: Protocol = {
  name: 'delegation',
  kind: 'auction',
  acceptsPasses: true,
  validate: (open) => {
    if (open.eligible.length === 0) return 'A delegation names the subordinates it asks first (eligibleAgents).';
    if (!tiers(open)) return 'parameters.escalation must be an array of non-empty arrays of agent ids (the tiers above, nearest first).';
    return undefined;
  },
  complete: (open, counted) => open.eligible.length === 0 || allAnswered(open.eligible, counted),
  decide: (open, counted): Verdict | NextStage => {
    const tier = tierOf(open);
    const takers = counted.filter((a) => !isPass(a)).sort((a, b) => a.amount! - b.amount! || a.eventTime - b.eventTime || a.agentId.localeCompare(b.agentId));
    const answers = counted.map((a) => ({ agentId: a.agentId, cost: isPass(a) ? null : a.amount }));
    const [best] = takers;
    if (best) {
      return { status: 'decided', winners: [best.agentId], price: best.amount!, value: null, reason: `${best.agentId} (tier ${tier}) takes the task at cost ${best.amount}`, details: { tier, answers } };
    }
    const above = tiers(open)!;
    const declined = open.eligible.filter((id) => counted.some((a) => a.agentId === id));
    const silent = open.eligible.filter((id) => !declined.includes(id));
    const why = `tier ${tier} had no taker (declined: ${declined.join(', ') || 'none'}; no answer: ${silent.join(', ') || 'none'})`;
    const next = above[tier];
    if (!next) return { status: 'failed', winners: [], price: null, value: null, reason: `${why}; no tier left to escalate to`, details: { tier, answers } };
    return { status: 'continue', parameters: { ...open.parameters, tier: tier + 1 }, eligible: next, reason: `${why}; escalating to tier ${tier + 1} (${next.join(', ')})` };
  },
};
