/**
 * Weighted voting. Like majority, but each vote counts with its voter's
 * weight from the proposal (default 1): the choice with more than half of the
 * weight cast wins. A voter that never votes leaves its weight uncounted.
 */
import type { Protocol } from '../types.ts';
import { checkChoice, everyVoterAnswered, majorityOf, requireVoters, tally } from './tally.ts';

export const weighted: Protocol = {
  name: 'weighted',
  kind: 'consensus',
  validate: (open) => requireVoters(open) ?? (Object.values(open.weights).some((w) => !Number.isFinite(w) || w < 0) ? 'Weights must be finite and not negative.' : undefined),
  check: checkChoice,
  complete: everyVoterAnswered,
  decide: (open, counted) => majorityOf(tally(open, counted, true), 'weight'),
};
