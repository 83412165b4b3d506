/**
 * Priority-based conflict resolution. The claimants are the proposal's named
 * voters; each answers with its claim as `choice` (any string, e.g. JSON;
 * a vote without one is refused as INVALID_CHOICE). A claimant's priority is
 * its weight in the proposal (default 0). The claim of the highest priority
 * wins; a tie goes to the claimant named first in the proposal's voter list
 * (`eligible` order) — a documented rule, not a random draw. The value is
 * the winning claim as a JSON string; `conflict` says whether the claims
 * differ. Closes when every claimant has answered, else at the deadline,
 * among those that answered; none decides nothing.
 */
import type { Protocol, RoundAnswer, RoundOpen } from '../types.ts';
import { everyVoterAnswered, requireVoters } from '../consensus/tally.ts';

/** The answers in the order the proposal names their agents. */
export const inVoterOrder = (open: RoundOpen, counted: readonly RoundAnswer[]): RoundAnswer[] =>
  open.eligible.flatMap((id) => counted.filter((a) => a.agentId === id));

export const priority: Protocol = {
  name: 'priority',
  kind: 'consensus',
  validate: (open) => requireVoters(open) ?? (Object.values(open.weights).some((w) => !Number.isFinite(w)) ? 'Priorities (weights) must be finite.' : undefined),
  check: (_open, answer) => (typeof answer.choice === 'string' ? undefined : { reasonCode: 'INVALID_CHOICE', reason: 'A claim is the vote\'s choice; this vote has none.' }),
  complete: everyVoterAnswered,
  decide: (open, counted) => {
    const claims = inVoterOrder(open, counted).map((a) => ({ agentId: a.agentId, claim: a.choice!, priority: open.weights[a.agentId] ?? 0 }));
    const conflict = new Set(claims.map((c) => c.claim)).size > 1;
    if (claims.length === 0) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no claims', details: { claims, conflict } };
    // The first of the highest: a later claimant displaces it only with a strictly higher priority.
    const winner = claims.reduce((best, c) => (c.priority > best.priority ? c : best));
    const tied = claims.filter((c) => c.priority === winner.priority).length > 1;
    return {
      status: 'decided',
      winners: [winner.agentId],
      price: null,
      value: JSON.stringify(winner.claim),
      reason: `${winner.agentId} has the highest priority ${winner.priority} of ${claims.length} claimant${claims.length === 1 ? '' : 's'}${tied ? ' (tie: first in the proposal\'s order)' : ''}`,
      details: { claims, conflict },
    };
  },
};
