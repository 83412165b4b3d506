/**
 * Sealed-bid second-price (Vickrey) auction. The highest bid wins and pays
 * the second-highest bid; with a single bid it pays the reserve price (0
 * without one). Ties: see rankBids — with two equal top bids the winner pays
 * that same amount. Closes when every named bidder has bid, else at the deadline.
 */
import type { Protocol } from '../types.ts';
import { everyBidderAnswered, rankBids, summary } from './ranking.ts';

export const vickrey: Protocol = {
  name: 'vickrey',
  kind: 'auction',
  complete: (open, counted) => everyBidderAnswered(open.eligible, counted),
  decide: (open, counted) => {
    const [winner, second] = rankBids(counted);
    if (!winner) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid bids', details: { bids: [] } };
    const price = second ? second.amount! : (open.reservePrice ?? 0);
    const why = second ? `second-highest bid ${price}` : open.reservePrice !== null ? `reserve price ${price} (single bid)` : 'no second bid and no reserve';
    return { status: 'decided', winners: [winner.agentId], price, value: null, reason: `highest bid ${winner.amount} wins, pays ${why}`, details: { bids: summary(counted) } };
  },
};
