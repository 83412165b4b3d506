/**
 * Equilibrium price finding (tâtonnement), run in stages. Each stage
 * announces a price (parameters.price); every participant answers how much
 * it would buy or sell at that price: a Bid whose amount is the quantity
 * and attributes.side "buy" or "sell". When demand and supply differ by at
 * most parameters.tolerance the market clears at that price; otherwise the
 * next stage's price is price + adjustment × (demand − supply), never under
 * minPrice.
 *
 * Request parameters: startPrice (required, > 0), adjustment (default
 * 0.1), tolerance (default 0), minPrice (default 0), maxStages (default
 * 50). Participants must be named. A stage ends when every participant has
 * answered, else at its deadline with the answers it has (a participant
 * that died is left out of that stage's demand and supply). No clearing
 * within maxStages, or a price that no longer moves: no decision.
 *
 * The outcome's price is the clearing price; its value lists each
 * participant's quantity; winners are those with a quantity above 0.
 */
import { checkNumber, firstProblem, numberParameter } from '../parameters.ts';
import type { NextStage, Protocol, RoundAnswer, RoundOpen, Verdict } from '../types.ts';

const sideOf = (a: RoundAnswer) => a.attributes?.['side'];
const round9 = (n: number) => Math.round(n * 1e9) / 1e9;

export const equilibrium: Protocol = {
  name: 'equilibrium',
  kind: 'auction',
  validate: (open: RoundOpen) =>
    firstProblem(
      open.eligible.length === 0 ? 'A market needs its participants named (eligibleAgents).' : undefined,
      open.reservePrice !== null ? 'A market has no reserve price: bids are quantities, not prices.' : undefined,
      checkNumber(open, 'startPrice', { required: true, positive: true }),
      checkNumber(open, 'adjustment', { positive: true }),
      checkNumber(open, 'tolerance', { min: 0 }),
      checkNumber(open, 'minPrice', { min: 0 }),
      checkNumber(open, 'maxStages', { positive: true, integer: true }),
    ),
  check: (_open, answer) =>
    sideOf(answer) === 'buy' || sideOf(answer) === 'sell'
      ? undefined
      : { reasonCode: 'INVALID_ANSWER', reason: `A market answer says attributes.side "buy" or "sell", not ${JSON.stringify(sideOf(answer))}.` },
  complete: (open, counted) => open.eligible.every((id) => counted.some((a) => a.agentId === id)),
  decide: (open, counted): Verdict | NextStage => {
    const price = numberParameter(open, 'price', numberParameter(open, 'startPrice'))!;
    const demand = round9(counted.filter((a) => sideOf(a) === 'buy').reduce((s, a) => s + a.amount!, 0));
    const supply = round9(counted.filter((a) => sideOf(a) === 'sell').reduce((s, a) => s + a.amount!, 0));
    const excess = round9(demand - supply);
    const details = { price, demand, supply, excess, stage: open.stage };
    if (Math.abs(excess) <= numberParameter(open, 'tolerance', 0)!) {
      const quantities = Object.fromEntries(counted.map((a) => [a.agentId, { side: sideOf(a), quantity: a.amount }]));
      return {
        status: 'decided',
        winners: counted.filter((a) => a.amount! > 0).map((a) => a.agentId).sort(),
        price,
        value: JSON.stringify(quantities),
        reason: `cleared at ${price}: demand ${demand}, supply ${supply}`,
        details,
      };
    }
    const next = round9(Math.max(numberParameter(open, 'minPrice', 0)!, price + numberParameter(open, 'adjustment', 0.1)! * excess));
    const maxStages = numberParameter(open, 'maxStages', 50)!;
    if (next === price) return { status: 'no-decision', winners: [], price: null, value: null, reason: `the price stays at ${price} with excess demand ${excess}`, details };
    if (open.stage + 1 >= maxStages) return { status: 'no-decision', winners: [], price: null, value: null, reason: `no clearing price within ${maxStages} stages`, details };
    return { status: 'continue', parameters: { ...open.parameters, price: next }, reason: `excess demand ${excess} at ${price}; next price ${next}` };
  },
};

