/**
 * Leader election. The proposal's options are the candidates (all voters
 * when it names none); each voter names one. The candidate with the most
 * votes cast wins; a tie goes to the candidate first in the proposal's
 * order (for an implicit list, the lowest agent id) — a documented rule, not
 * a random draw. Closes when every voter has voted, else at the deadline,
 * among the votes cast.
 */
import type { Protocol, RoundOpen } from '../types.ts';
import { everyVoterAnswered, requireVoters } from '../consensus/tally.ts';

const candidates = (open: RoundOpen) => (open.options.length > 0 ? open.options : [...open.eligible].sort());

export const leaderElection: Protocol = {
  name: 'leader-election',
  kind: 'consensus',
  validate: requireVoters,
  check: (open, answer) =>
    answer.choice !== undefined && candidates(open).includes(answer.choice)
      ? undefined
      : { reasonCode: 'INVALID_CHOICE', reason: `"${String(answer.choice)}" is not a candidate (${candidates(open).join(', ')}).` },
  complete: everyVoterAnswered,
  decide: (open, counted) => {
    const order = candidates(open);
    const totals = new Map(order.map((c) => [c, 0]));
    for (const v of counted) totals.set(v.choice!, (totals.get(v.choice!) ?? 0) + 1);
    if (counted.length === 0) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid votes', details: { totals: Object.fromEntries(totals) } };
    const best = Math.max(...totals.values());
    const leader = order.find((c) => totals.get(c) === best)!;
    const tied = order.filter((c) => totals.get(c) === best).length > 1;
    return {
      status: 'decided',
      winners: [leader],
      price: null,
      value: JSON.stringify(leader),
      reason: `${leader} has ${best} of ${counted.length} votes${tied ? ' (tie: first in candidate order)' : ''}`,
      details: { totals: Object.fromEntries(totals) },
    };
  },
};
