/**
 * Unanimous. Decided when every vote cast names the same choice (at least
 * one vote). Closes as soon as two votes differ (unanimity is then
 * impossible), when every voter has voted, or at the deadline — then among
 * the votes cast: a voter that never voted does not block the round.
 */
import type { Protocol } from '../types.ts';
import { checkChoice, everyVoterAnswered, requireVoters, tally } from './tally.ts';

const disagree = (counted: readonly { choice?: string }[]) => new Set(counted.map((v) => v.choice)).size > 1;

export const unanimous: Protocol = {
  name: 'unanimous',
  kind: 'consensus',
  validate: requireVoters,
  check: checkChoice,
  complete: (open, counted) => disagree(counted) || everyVoterAnswered(open, counted),
  decide: (open, counted) => {
    const t = tally(open, counted, false);
    const details = { totals: Object.fromEntries(t.totals), cast: t.cast, voters: t.voters };
    if (counted.length === 0) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid votes', details };
    if (disagree(counted)) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'votes differ', details };
    const choice = counted[0]!.choice!;
    return { status: 'decided', winners: [], price: null, value: JSON.stringify(choice), reason: `all ${counted.length} votes cast are "${choice}"`, details };
  },
};
