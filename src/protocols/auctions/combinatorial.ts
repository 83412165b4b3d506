/**
 * Sealed-bid combinatorial auction: bids on bundles of items.
 *
 * The BidRequest lists the items on sale (`parameters.items`: non-empty,
 * unique, non-empty strings). A Bid offers `amount` for its `bundle`; it may
 * add alternatives (`attributes.alternatives: [{ bundle, amount }]`), of
 * which — with its main offer — at most one wins (XOR). An offer's index is 0
 * for the main offer and 1, 2, … for the alternatives in their order.
 *
 * Refused: an empty bundle, an item not on sale, an item named twice in one
 * bundle, a malformed alternative, an alternative amount that is not finite,
 * negative or over `parameters.maxAmount` (INVALID_ANSWER); an alternative
 * under the reserve price (BELOW_RESERVE, as the main offer would be); and an
 * answer whose offers would take the round past `parameters.maxOffers`
 * offers in all, counting every offer of every answer counted before it
 * (LIMIT_EXCEEDED; default 20, at most 24 — the winner determination below
 * is exhaustive, so the limit keeps it small). Should answers past the limit
 * be counted anyway, the winner determination takes whole answers in the
 * order counted while they fit and leaves out the rest (details.overLimit).
 *
 * Winner determination is exact: among all sets of offers with pairwise
 * disjoint bundles and at most one offer per agent, the one with the highest
 * total amount (depth-first branch and bound, pruning only branches whose
 * upper bound is below the best total found). Ties between equal totals go
 * to the set with fewer offers, then to the set whose (agentId, offer index)
 * pairs, sorted, come first lexicographically (agent ids by code unit) — a
 * documented rule, never a random draw. An offer of 0 adds nothing and so
 * never wins. Each winner pays its winning offer (pay-as-bid); the price is
 * the total revenue. Items no winning offer names stay unsold.
 *
 * Closes when every named bidder has bid, else at the deadline with the bids
 * counted; no bid (or only offers of 0) decides nothing.
 */
import type { Protocol, RoundAnswer, RoundOpen } from '../types.ts';
import { defaultMaxAmount } from '../roundsInternals.ts';
import { everyBidderAnswered } from './ranking.ts';

/** Offers a round takes unless its request says otherwise, and the most it may say. */
export const defaultMaxOffers = 20;
export const maxOffersLimit = 24;

export interface Offer {
  agentId: string;
  /** 0 for the bid's own bundle and amount, 1.. for its alternatives. */
  offer: number;
  bundle: string[];
  amount: number;
}

const byCode = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const maxOffersOf = (open: RoundOpen) => (typeof open.parameters['maxOffers'] === 'number' ? open.parameters['maxOffers'] : defaultMaxOffers);

const maxAmountOf = (open: RoundOpen) => (typeof open.parameters['maxAmount'] === 'number' ? open.parameters['maxAmount'] : defaultMaxAmount);

/** The offers of one answer, main offer first (only meaningful for an answer check accepted). */
export function offersOf(answer: RoundAnswer): Offer[] {
  const alternatives = (answer.attributes?.['alternatives'] as { bundle: string[]; amount: number }[] | undefined) ?? [];
  return [
    { agentId: answer.agentId, offer: 0, bundle: answer.bundle ?? [], amount: answer.amount ?? 0 },
    ...alternatives.map((a, i) => ({ agentId: answer.agentId, offer: i + 1, bundle: a.bundle, amount: a.amount })),
  ];
}

const offerCount = (answer: RoundAnswer) => {
  const alternatives = answer.attributes?.['alternatives'];
  return 1 + (Array.isArray(alternatives) ? alternatives.length : 0);
};

function bundleProblem(items: readonly string[], bundle: unknown, what: string): string | undefined {
  if (!Array.isArray(bundle) || bundle.length === 0) return `${what} needs a non-empty bundle of items.`;
  const seen = new Set<string>();
  for (const item of bundle) {
    if (typeof item !== 'string' || !items.includes(item)) return `${what} names ${JSON.stringify(item)}, which is not on sale (${items.join(', ')}).`;
    if (seen.has(item)) return `${what} names ${item} twice.`;
    seen.add(item);
  }
  return undefined;
}

/**
 * The protocol's check. It takes the answers counted so far as a third
 * argument, for the limit on offers; called without them it can only see
 * that one answer alone passes the limit (decide then leaves out the rest).
 */
export function checkBid(open: RoundOpen, answer: RoundAnswer, counted: readonly RoundAnswer[] = []): ReturnType<NonNullable<Protocol['check']>> {
  const items = open.parameters['items'] as string[];
  const invalid = (reason: string) => ({ reasonCode: 'INVALID_ANSWER' as const, reason });
  const main = bundleProblem(items, answer.bundle, 'A bid');
  if (main) return invalid(main);
  const alternatives = answer.attributes?.['alternatives'];
  if (alternatives !== undefined) {
    if (!Array.isArray(alternatives)) return invalid('attributes.alternatives must be a list of { bundle, amount }.');
    const max = maxAmountOf(open);
    for (const [i, alt] of alternatives.entries()) {
      const what = `Alternative ${i + 1}`;
      if (typeof alt !== 'object' || alt === null || Array.isArray(alt)) return invalid(`${what} must be { bundle, amount }.`);
      const problem = bundleProblem(items, (alt as Record<string, unknown>)['bundle'], what);
      if (problem) return invalid(problem);
      const amount = (alt as Record<string, unknown>)['amount'];
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0 || amount > max) {
        return invalid(`${what} must offer a finite amount between 0 and ${max}, not ${String(amount)}.`);
      }
      if (open.reservePrice !== null && amount < open.reservePrice) return { reasonCode: 'BELOW_RESERVE', reason: `${what} offers ${amount}, under the reserve price ${open.reservePrice}.` };
    }
  }
  const limit = maxOffersOf(open);
  const before = counted.reduce((n, a) => n + offerCount(a), 0);
  const mine = offerCount(answer);
  if (before + mine > limit) {
    return { reasonCode: 'LIMIT_EXCEEDED', reason: `${mine} more offers would make ${before + mine}; this round takes at most ${limit} offers in all.` };
  }
  return undefined;
}

/** Whole answers in the order counted, while their offers fit the limit; the rest are left out. */
function withinLimit(open: RoundOpen, counted: readonly RoundAnswer[]): { taken: RoundAnswer[]; overLimit: string[] } {
  const limit = maxOffersOf(open);
  const taken: RoundAnswer[] = [];
  const overLimit: string[] = [];
  let n = 0;
  for (const a of counted) {
    if (n + offerCount(a) <= limit) {
      taken.push(a);
      n += offerCount(a);
    } else overLimit.push(a.eventId);
  }
  return { taken, overLimit };
}

const keyOrder = (a: Offer, b: Offer) => byCode(a.agentId, b.agentId) || a.offer - b.offer;

/** True when the chosen set `a` beats `b` at equal totals: fewer offers, then lexicographically smaller keys. */
function breaksTie(a: readonly Offer[], b: readonly Offer[]): boolean {
  if (a.length !== b.length) return a.length < b.length;
  const sa = [...a].sort(keyOrder);
  const sb = [...b].sort(keyOrder);
  for (let i = 0; i < sa.length; i++) {
    const c = keyOrder(sa[i]!, sb[i]!);
    if (c !== 0) return c < 0;
  }
  return false;
}

/**
 * The best set of offers (see the header): depth-first over the offers,
 * highest amount first, each taken or left; a branch is cut when even every
 * compatible offer left (the best per agent) could not reach the best total.
 */
export function bestAllocation(offers: readonly Offer[]): { chosen: Offer[]; total: number } {
  const order = offers.filter((o) => o.amount > 0).sort((a, b) => b.amount - a.amount || keyOrder(a, b));
  let best: Offer[] = [];
  let bestTotal = 0;
  const chosen: Offer[] = [];
  const usedItems = new Set<string>();
  const usedAgents = new Set<string>();
  const fits = (o: Offer) => !usedAgents.has(o.agentId) && o.bundle.every((item) => !usedItems.has(item));
  const bound = (from: number) => {
    const perAgent = new Map<string, number>();
    for (let i = from; i < order.length; i++) {
      const o = order[i]!;
      if (fits(o)) perAgent.set(o.agentId, Math.max(perAgent.get(o.agentId) ?? 0, o.amount));
    }
    let sum = 0;
    for (const v of perAgent.values()) sum += v;
    return sum;
  };
  const search = (i: number, total: number) => {
    if (i === order.length) {
      if (total > bestTotal || (total === bestTotal && chosen.length > 0 && breaksTie(chosen, best))) {
        best = [...chosen];
        bestTotal = total;
      }
      return;
    }
    // A little slack against rounding: cutting less never changes the result, only the work.
    if (total + bound(i) < bestTotal - 1e-9 * Math.max(1, bestTotal)) return;
    const o = order[i]!;
    if (fits(o)) {
      chosen.push(o);
      usedAgents.add(o.agentId);
      for (const item of o.bundle) usedItems.add(item);
      search(i + 1, total + o.amount);
      chosen.pop();
      usedAgents.delete(o.agentId);
      for (const item of o.bundle) usedItems.delete(item);
    }
    search(i + 1, total);
  };
  search(0, 0);
  return { chosen: best.sort(keyOrder), total: bestTotal };
}

export const combinatorial: Protocol = {
  name: 'combinatorial',
  kind: 'auction',
  validate: (open) => {
    const items = open.parameters['items'];
    if (!Array.isArray(items) || items.length === 0) return 'A combinatorial auction needs parameters.items: the items on sale, a non-empty list.';
    if (items.some((i) => typeof i !== 'string' || i === '')) return 'parameters.items must be non-empty strings.';
    if (new Set(items).size !== items.length) return 'parameters.items must not name an item twice.';
    const max = open.parameters['maxOffers'];
    if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > maxOffersLimit)) {
      return `parameters.maxOffers must be a whole number from 1 to ${maxOffersLimit}, not ${JSON.stringify(max)}.`;
    }
    return undefined;
  },
  check: checkBid,
  complete: (open, counted) => everyBidderAnswered(open.eligible, counted),
  decide: (open, counted) => {
    const { taken, overLimit } = withinLimit(open, counted);
    const offers = taken.flatMap(offersOf);
    const considered = offers.map((o) => ({ agentId: o.agentId, offer: o.offer, bundle: o.bundle, amount: o.amount }));
    const extra = overLimit.length > 0 ? { overLimit } : {};
    if (offers.length === 0) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid bids', details: { offers: [], ...extra } };
    const { chosen, total } = bestAllocation(offers);
    if (chosen.length === 0) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'no offer above 0', details: { offers: considered, ...extra } };
    const items = open.parameters['items'] as string[];
    const sold = new Set(chosen.flatMap((o) => o.bundle));
    return {
      status: 'decided',
      winners: chosen.map((o) => o.agentId),
      price: total,
      value: JSON.stringify(Object.fromEntries(chosen.map((o) => [o.agentId, o.bundle]))),
      reason: `${chosen.length} winning offer${chosen.length === 1 ? '' : 's'} of ${offers.length}, revenue ${total}`,
      details: {
        payments: Object.fromEntries(chosen.map((o) => [o.agentId, o.amount])),
        allocation: chosen.map((o) => ({ agentId: o.agentId, offer: o.offer, bundle: o.bundle, amount: o.amount })),
        unsold: items.filter((i) => !sold.has(i)),
        offers: considered,
        ...extra,
      },
    };
  },
};
