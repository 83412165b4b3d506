/**
 * English auction: ascending and open, run in stages. Each stage asks for
 * bids at or above its asking price (parameters.asking); the best bid of a
 * stage becomes the standing bid (parameters.standing, parameters.leader)
 * and the next stage asks for standing + increment. The round ends when a
 * stage brings no bid: the leader wins and pays its standing bid.
 *
 * Request parameters: increment (> 0, default 1), startPrice (default the
 * reserve price, else 0), maxStages (default 100: then the leader wins).
 *
 * Bidders: a bid under the asking price is refused (BELOW_ASKING). A bidder
 * may pass (Bid attributes.pass true); with named bidders a pass, or no
 * answer by the stage's deadline, takes it out for the rest of the round,
 * so every stage has fewer or as many bidders and the price only rises —
 * the round converges. The leader does not bid against itself (its bid is
 * refused as NOT_ELIGIBLE). A stage ends when every remaining bidder but
 * the leader has answered, else at its deadline; the round ends early when
 * only the leader remains.
 *
 * Ties within a stage: the higher amount, then the earlier bid, then the
 * lower agent id (rankBids).
 */
import { checkNumber, firstProblem, numberParameter } from '../parameters.ts';
import { isPass } from '../roundsInternals.ts';
import type { NextStage, Protocol, RoundAnswer, RoundOpen, Verdict } from '../types.ts';
import { rankBids } from './ranking.ts';

interface EnglishState {
  asking: number;
  leader: string | null;
  standing: number | null;
  increment: number;
  maxStages: number;
}

function state(open: RoundOpen): EnglishState {
  const leader = open.parameters['leader'];
  return {
    increment: numberParameter(open, 'increment', 1)!,
    maxStages: numberParameter(open, 'maxStages', 100)!,
    asking: numberParameter(open, 'asking', numberParameter(open, 'startPrice', open.reservePrice ?? 0))!,
    leader: typeof leader === 'string' ? leader : null,
    standing: numberParameter(open, 'standing') ?? null,
  };
}

/** Named bidders that must still answer this stage (all remaining but the leader). */
const expected = (open: RoundOpen, s: EnglishState) => open.eligible.filter((id) => id !== s.leader);

function won(s: EnglishState, reason: string, counted: readonly RoundAnswer[]): Verdict {
  if (s.leader === null || s.standing === null) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no bids', details: { stageBids: [] } };
  return { status: 'decided', winners: [s.leader], price: s.standing, value: null, reason, details: { standing: s.standing, stageBids: counted.map((b) => ({ agentId: b.agentId, amount: isPass(b) ? null : b.amount })) } };
}

export const english: Protocol = {
  name: 'english',
  kind: 'auction',
  acceptsPasses: true,
  validate: (open) =>
    firstProblem(
      checkNumber(open, 'increment', { positive: true }),
      checkNumber(open, 'startPrice', { min: 0 }),
      checkNumber(open, 'maxStages', { positive: true, integer: true }),
    ),
  check: (open, answer) => {
    const s = state(open);
    if (answer.agentId === s.leader) return { reasonCode: 'NOT_ELIGIBLE', reason: `${answer.agentId} holds the standing bid (${s.standing}); it does not bid against itself.` };
    if (!isPass(answer) && (answer.amount ?? 0) < s.asking) return { reasonCode: 'BELOW_ASKING', reason: `${answer.amount} is under the asking price ${s.asking} of stage ${open.stage}.` };
    return undefined;
  },
  complete: (open, counted) => {
    const waiting = expected(open, state(open));
    return waiting.length > 0 && waiting.every((id) => counted.some((a) => a.agentId === id));
  },
  decide: (open, counted): Verdict | NextStage => {
    const s = state(open);
    const bids = counted.filter((a) => !isPass(a));
    const [best] = rankBids(bids);
    if (!best) return won(s, s.leader === null ? 'no bids' : `no bid over ${s.standing}: ${s.leader} wins at its standing bid`, counted);
    const next: EnglishState = { ...s, leader: best.agentId, standing: best.amount!, asking: best.amount! + s.increment };
    // Named bidders stay in by bidding; the leader of this stage (who did not bid) stays in too.
    const remaining = open.eligible.length === 0 ? [] : open.eligible.filter((id) => id === s.leader || bids.some((b) => b.agentId === id));
    if (open.eligible.length > 0 && remaining.length === 1) return won(next, `${best.agentId} is the last bidder in, at ${best.amount}`, counted);
    if (open.stage + 1 >= s.maxStages) return won(next, `stage limit ${s.maxStages} reached; ${best.agentId} leads at ${best.amount}`, counted);
    return {
      status: 'continue',
      parameters: { ...open.parameters, asking: next.asking, leader: next.leader, standing: next.standing },
      ...(open.eligible.length > 0 ? { eligible: remaining } : {}),
      reason: `${best.agentId} leads at ${best.amount}; asking ${next.asking}`,
    };
  },
};
