/**
 * Sealed-bid double auction (a call market). Buyers and sellers answer the
 * same BidRequest with Bids: `attributes.side` is "buy" or "sell", `amount`
 * the limit price per unit, `attributes.quantity` a positive whole number of
 * units (default 1). Anything else is refused (INVALID_ANSWER).
 *
 * Clearing: each order is expanded into units; buy units are sorted by price
 * descending, sell units by price ascending, ties on either side going to the
 * earlier bid (event time), then the lower agent id (by code unit). k is the
 * largest number of units with buy_k >= sell_k (the k-th buy unit's price at
 * least the k-th sell unit's): the crossing of demand and supply. Every price
 * in the equilibrium interval
 *   [max(sell_k, buy_{k+1} if any), min(buy_k, sell_{k+1} if any)]
 * clears the market at k units (no buyer or seller left out would trade at it,
 * none traded loses by it); the clearing price is its midpoint. The k units
 * are matched in order (the i-th buy unit with the i-th sell unit) and
 * consecutive units of the same pair are merged into one trade. No crossing
 * (no buys, no sells, or the best bid under the best ask) decides nothing.
 *
 * The request may not state a reserve price: one price floor for both sides
 * would refuse a seller's ask under it and bind no buyer — each order states
 * its own limit. Closes when every named participant has answered, else at
 * the deadline with the orders counted.
 */
import type { Protocol, RoundAnswer } from '../types.ts';
import { everyBidderAnswered } from '../auctions/ranking.ts';

interface Order {
  agentId: string;
  side: 'buy' | 'sell';
  price: number;
  quantity: number;
  eventTime: number;
}

const byCode = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const quantityOf = (answer: RoundAnswer) => (answer.attributes?.['quantity'] as number | undefined) ?? 1;

const orderOf = (answer: RoundAnswer): Order => ({
  agentId: answer.agentId,
  side: answer.attributes!['side'] as Order['side'],
  price: answer.amount!,
  quantity: quantityOf(answer),
  eventTime: answer.eventTime,
});

export interface Clearing {
  /** Units traded (k). */
  units: number;
  /** The equilibrium interval [low, high] and its midpoint, the clearing price. */
  interval: [number, number];
  price: number;
  trades: { buyer: string; seller: string; quantity: number }[];
}

/** Clears the book (see the header); null when no buy unit meets a sell unit. Works on orders, not one unit at a time. */
export function clear(orders: readonly Order[]): Clearing | null {
  const tie = (a: Order, b: Order) => a.eventTime - b.eventTime || byCode(a.agentId, b.agentId);
  const buys = orders.filter((o) => o.side === 'buy').sort((a, b) => b.price - a.price || tie(a, b));
  const sells = orders.filter((o) => o.side === 'sell').sort((a, b) => a.price - b.price || tie(a, b));
  const trades: Clearing['trades'] = [];
  let units = 0;
  let bi = 0;
  let si = 0;
  let buyLeft = buys[0]?.quantity ?? 0;
  let sellLeft = sells[0]?.quantity ?? 0;
  let lastBuy = 0;
  let lastSell = 0;
  while (bi < buys.length && si < sells.length && buys[bi]!.price >= sells[si]!.price) {
    const buy = buys[bi]!;
    const sell = sells[si]!;
    const q = Math.min(buyLeft, sellLeft);
    const previous = trades.at(-1);
    if (previous && previous.buyer === buy.agentId && previous.seller === sell.agentId) previous.quantity += q;
    else trades.push({ buyer: buy.agentId, seller: sell.agentId, quantity: q });
    units += q;
    lastBuy = buy.price;
    lastSell = sell.price;
    buyLeft -= q;
    sellLeft -= q;
    if (buyLeft === 0) buyLeft = buys[++bi]?.quantity ?? 0;
    if (sellLeft === 0) sellLeft = sells[++si]?.quantity ?? 0;
  }
  if (units === 0) return null;
  // The (k+1)-th units, if any: what is left of the current orders.
  const nextBuy = buys[bi]?.price;
  const nextSell = sells[si]?.price;
  const low = nextBuy === undefined ? lastSell : Math.max(lastSell, nextBuy);
  const high = nextSell === undefined ? lastBuy : Math.min(lastBuy, nextSell);
  return { units, interval: [low, high], price: (low + high) / 2, trades };
}

export const doubleAuction: Protocol = {
  name: 'double-auction',
  kind: 'auction',
  validate: (open) =>
    open.reservePrice !== null ? 'A double auction takes no reserve price: one floor would refuse sellers asking under it and bind no buyer; each order states its own limit price.' : undefined,
  check: (_open, answer) => {
    const side = answer.attributes?.['side'];
    if (side !== 'buy' && side !== 'sell') return { reasonCode: 'INVALID_ANSWER', reason: `attributes.side must be "buy" or "sell", not ${JSON.stringify(side ?? null)}.` };
    const quantity = answer.attributes?.['quantity'];
    if (quantity !== undefined && (typeof quantity !== 'number' || !Number.isSafeInteger(quantity) || quantity < 1)) {
      return { reasonCode: 'INVALID_ANSWER', reason: `attributes.quantity must be a positive whole number, not ${JSON.stringify(quantity)}.` };
    }
    return undefined;
  },
  complete: (open, counted) => everyBidderAnswered(open.eligible, counted),
  decide: (_open, counted) => {
    const orders = counted.map(orderOf);
    const book = orders.map((o) => ({ agentId: o.agentId, side: o.side, price: o.price, quantity: o.quantity }));
    const demand = orders.filter((o) => o.side === 'buy').reduce((n, o) => n + o.quantity, 0);
    const supply = orders.filter((o) => o.side === 'sell').reduce((n, o) => n + o.quantity, 0);
    const result = clear(orders);
    if (!result) {
      const bestBid = Math.max(...orders.filter((o) => o.side === 'buy').map((o) => o.price));
      const bestAsk = Math.min(...orders.filter((o) => o.side === 'sell').map((o) => o.price));
      const reason = orders.length === 0 ? 'no valid bids' : demand === 0 ? 'no buy orders' : supply === 0 ? 'no sell orders' : `no crossing: best bid ${bestBid} is under best ask ${bestAsk}`;
      return { status: 'no-decision', winners: [], price: null, value: null, reason, details: { units: 0, demand, supply, interval: null, orders: book } };
    }
    const quantities: Record<string, number> = {};
    for (const t of result.trades) {
      quantities[t.buyer] = (quantities[t.buyer] ?? 0) + t.quantity;
      quantities[t.seller] = (quantities[t.seller] ?? 0) + t.quantity;
    }
    const winners = Object.keys(quantities).sort(byCode);
    return {
      status: 'decided',
      winners,
      price: result.price,
      value: JSON.stringify(result.trades),
      reason: `${result.units} unit${result.units === 1 ? '' : 's'} clear at ${result.price}, the midpoint of [${result.interval[0]}, ${result.interval[1]}]`,
      details: { units: result.units, quantities: Object.fromEntries(winners.map((id) => [id, quantities[id]])), interval: result.interval, demand, supply, orders: book },
    };
  },
};
