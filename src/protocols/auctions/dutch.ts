/**
 * Dutch auction: descending, run in stages. Stage 0 offers the item at
 * parameters.startPrice; each later stage offers it decrement lower, down
 * to the floor (parameters.floor, else the reserve price, else 0). The
 * first bidder to take the offer wins and pays the stage's price.
 *
 * Request parameters: startPrice (required), decrement (required, > 0),
 * floor, maxStages (default 100). Each stage's request carries its price
 * as parameters.price.
 *
 * A bid at or above the stage's price takes the offer (its amount is not
 * what is paid; the price is); a bid under it is refused (BELOW_ASKING). A
 * bidder not taking at this price passes (Bid attributes.pass true) and may
 * take at a lower one. A stage ends at the first take (the first taker
 * wins: the first one in the log, which is the coordinator's order of
 * reading), when every named bidder has passed, or at its deadline. No
 * taker by the floor or the stage limit: no decision.
 */
import { checkNumber, firstProblem, numberParameter } from '../parameters.ts';
import { isPass } from '../roundsInternals.ts';
import type { NextStage, Protocol, RoundOpen, Verdict } from '../types.ts';

const priceOf = (open: RoundOpen) => numberParameter(open, 'price', numberParameter(open, 'startPrice'))!;
const floorOf = (open: RoundOpen) => numberParameter(open, 'floor', open.reservePrice ?? 0)!;

export const dutch: Protocol = {
  name: 'dutch',
  kind: 'auction',
  acceptsPasses: true,
  validate: (open) =>
    firstProblem(
      checkNumber(open, 'startPrice', { required: true, min: 0 }),
      checkNumber(open, 'decrement', { required: true, positive: true }),
      checkNumber(open, 'floor', { min: 0 }),
      checkNumber(open, 'maxStages', { positive: true, integer: true }),
      floorOf(open) > numberParameter(open, 'startPrice', 0)! ? `The floor ${floorOf(open)} is above the start price ${String(open.parameters['startPrice'])}.` : undefined,
    ),
  check: (open, answer) =>
    !isPass(answer) && (answer.amount ?? 0) < priceOf(open)
      ? { reasonCode: 'BELOW_ASKING', reason: `${answer.amount} is under the price ${priceOf(open)} offered in stage ${open.stage}; bid the price to take it, or pass.` }
      : undefined,
  complete: (open, counted) =>
    counted.some((a) => !isPass(a)) || (open.eligible.length > 0 && open.eligible.every((id) => counted.some((a) => a.agentId === id))),
  decide: (open, counted): Verdict | NextStage => {
    const price = priceOf(open);
    const taker = counted.find((a) => !isPass(a));
    const offers = { price, stage: open.stage };
    if (taker) return { status: 'decided', winners: [taker.agentId], price, value: null, reason: `${taker.agentId} took the offer at ${price}`, details: { ...offers, takers: counted.filter((a) => !isPass(a)).map((a) => a.agentId) } };
    const next = Math.round((price - numberParameter(open, 'decrement')!) * 1e9) / 1e9;
    const floor = floorOf(open);
    const maxStages = numberParameter(open, 'maxStages', 100)!;
    if (next < floor) return { status: 'no-decision', winners: [], price: null, value: null, reason: `no taker down to the floor ${floor}`, details: offers };
    if (open.stage + 1 >= maxStages) return { status: 'no-decision', winners: [], price: null, value: null, reason: `no taker within the stage limit ${maxStages}`, details: offers };
    return { status: 'continue', parameters: { ...open.parameters, price: next }, reason: `no taker at ${price}; offering ${next}` };
  },
};
