/**
 * Sealed-bid first-price auction. Reads a BidRequest and its Bids; the
 * highest bid at or above the reserve wins and pays what it bid. Ties: see
 * rankBids. Closes when every named bidder has bid, else at the deadline.
 */
import type { Protocol } from '../types.ts';
import { everyBidderAnswered, rankBids, summary } from './ranking.ts';

export const firstPrice: Protocol = {
  name: 'first-price',
  kind: 'auction',
  complete: (open, counted) => everyBidderAnswered(open.eligible, counted),
  decide: (_open, counted) => {
    const [winner] = rankBids(counted);
    if (!winner) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid bids', details: { bids: [] } };
    return { status: 'decided', winners: [winner.agentId], price: winner.amount!, value: null, reason: `highest bid ${winner.amount}`, details: { bids: summary(counted) } };
  },
};
