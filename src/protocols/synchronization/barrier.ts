/**
 * Barrier synchronisation. A proposal names the participants; each answers
 * with a vote "arrived" when it reaches the barrier. The round decides (value
 * "released") as soon as every participant has arrived; at the deadline it
 * ends without a decision, naming who is missing.
 */
import type { Protocol } from '../types.ts';
import { everyVoterAnswered, requireVoters } from '../consensus/tally.ts';

export const barrier: Protocol = {
  name: 'barrier',
  kind: 'consensus',
  validate: requireVoters,
  check: (_open, answer) => (answer.choice === 'arrived' ? undefined : { reasonCode: 'INVALID_CHOICE', reason: `At a barrier the only answer is "arrived", not "${String(answer.choice)}".` }),
  complete: everyVoterAnswered,
  decide: (open, counted) => {
    const arrived = counted.map((a) => a.agentId);
    const missing = open.eligible.filter((id) => !arrived.includes(id)).sort();
    return missing.length === 0
      ? { status: 'decided', winners: [], price: null, value: JSON.stringify('released'), reason: `all ${arrived.length} participants arrived`, details: { arrived } }
      : { status: 'no-decision', winners: [], price: null, value: null, reason: `${missing.length} of ${open.eligible.length} did not arrive: ${missing.join(', ')}`, details: { arrived, missing } };
  },
};
