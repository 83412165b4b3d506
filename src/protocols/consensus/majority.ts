/**
 * Simple majority. Reads a Proposal and its Votes; the choice with more than
 * half of the votes cast wins, else no decision (a tie decides nothing).
 * Closes when every voter has voted, else at the deadline — then counted
 * among the votes cast: a voter that never voted shrinks the electorate.
 */
import type { Protocol } from '../types.ts';
import { checkChoice, everyVoterAnswered, majorityOf, requireVoters, tally } from './tally.ts';

export const majority: Protocol = {
  name: 'majority',
  kind: 'consensus',
  validate: requireVoters,
  check: checkChoice,
  complete: everyVoterAnswered,
  decide: (open, counted) => majorityOf(tally(open, counted, false), 'votes'),
};
