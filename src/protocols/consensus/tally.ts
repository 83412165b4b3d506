import type { Protocol, RoundAnswer, RoundOpen, Verdict } from '../types.ts';
import { allAnswered } from '../answered.ts';

/**
 * Shared by the consensus protocols. A vote's choice must be one of the
 * proposal's options, or "yes" / "no" when it names none. Weights come from
 * the proposal (default 1), never from the voter.
 */
export function allowedChoices(open: RoundOpen): string[] {
  return open.options.length > 0 ? open.options : ['yes', 'no'];
}

export const checkChoice: Protocol['check'] = (open, answer) => {
  const allowed = allowedChoices(open);
  return answer.choice !== undefined && allowed.includes(answer.choice)
    ? undefined
    : { reasonCode: 'INVALID_CHOICE', reason: `"${String(answer.choice)}" is not one of ${allowed.join(', ')}.` };
};

export interface Tally {
  totals: Map<string, number>;
  cast: number;
  voters: number;
}

export function tally(open: RoundOpen, votes: readonly RoundAnswer[], weighted: boolean): Tally {
  const totals = new Map<string, number>(allowedChoices(open).map((c) => [c, 0]));
  let cast = 0;
  for (const v of votes) {
    const w = weighted ? (open.weights[v.agentId] ?? 1) : 1;
    totals.set(v.choice!, (totals.get(v.choice!) ?? 0) + w);
    cast += w;
  }
  return { totals, cast, voters: votes.length };
}

/** The choice holding more than half of what was cast, if one does (a tie has none). */
export function majorityOf(t: Tally, unit: string): Verdict {
  const ranked = [...t.totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const details = { totals: Object.fromEntries(t.totals), cast: t.cast, voters: t.voters };
  const [top] = ranked;
  if (!top || t.cast === 0) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid votes', details };
  if (top[1] * 2 > t.cast) {
    return { status: 'decided', winners: [], price: null, value: JSON.stringify(top[0]), reason: `"${top[0]}" has ${top[1]} of ${t.cast} ${unit}`, details };
  }
  return { status: 'no-decision', winners: [], price: null, value: null, reason: `no choice has more than half of ${t.cast} ${unit}`, details };
}

/** All named voters have voted. */
export function everyVoterAnswered(open: RoundOpen, counted: readonly RoundAnswer[]): boolean {
  return allAnswered(open.eligible, counted);
}

export function requireVoters(open: RoundOpen): string | undefined {
  return open.eligible.length === 0 ? 'A consensus round needs its voters named (eligibleVoters).' : undefined;
}
