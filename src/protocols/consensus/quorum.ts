/**
 * Quorum. The round decides only if at least ⌈quorum × voters⌉ of the named
 * voters voted (quorum from the proposal, default 0.5); then the choice with
 * more than half of the votes cast wins. Unlike the other consensus
 * protocols, a voter that never votes still counts toward the quorum's
 * denominator: the electorate does not shrink.
 */
import type { Protocol, RoundOpen } from '../types.ts';
import { checkChoice, everyVoterAnswered, majorityOf, requireVoters, tally } from './tally.ts';

const needed = (open: RoundOpen) => Math.ceil((open.quorum ?? 0.5) * open.eligible.length);

export const quorum: Protocol = {
  name: 'quorum',
  kind: 'consensus',
  validate: (open) => requireVoters(open) ?? (open.quorum !== null && !(open.quorum > 0 && open.quorum <= 1) ? `quorum ${open.quorum} is not a fraction in (0, 1]` : undefined),
  check: checkChoice,
  complete: everyVoterAnswered,
  decide: (open, counted) => {
    const need = needed(open);
    if (counted.length < need) {
      return { status: 'no-decision', winners: [], price: null, value: null, reason: `quorum not met: ${counted.length} of ${open.eligible.length} voted, ${need} needed`, details: { voted: counted.length, needed: need } };
    }
    const verdict = majorityOf(tally(open, counted, false), 'votes');
    return { ...verdict, details: { ...verdict.details, needed: need } };
  },
};
