import type { RoundAnswer } from '../types.ts';
import { allAnswered } from '../answered.ts';

/**
 * The order of bids, best first: higher amount; on equal amounts the earlier
 * bid (event time); then the lower agent id. Deterministic, so a tie never
 * needs a random draw.
 */
export function rankBids(bids: readonly RoundAnswer[]): RoundAnswer[] {
  return [...bids].sort((a, b) => (b.amount ?? 0) - (a.amount ?? 0) || a.eventTime - b.eventTime || a.agentId.localeCompare(b.agentId));
}

/** All named bidders have bid: the round need not wait for its deadline. */
export function everyBidderAnswered(eligible: readonly string[], counted: readonly RoundAnswer[]): boolean {
  return allAnswered(eligible, counted);
}

export const summary = (bids: readonly RoundAnswer[]) => rankBids(bids).map((b) => ({ agentId: b.agentId, amount: b.amount }));
