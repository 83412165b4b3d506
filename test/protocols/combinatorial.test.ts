import { describe, expect, it } from 'vitest';
import { bestAllocation, checkBid, combinatorial, type Offer } from '../../src/protocols/auctions/combinatorial.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import type { RoundAnswer } from '../../src/protocols/types.ts';
import { bid, close, closed, open, rejectedAs, scheduler } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const items = ['x', 'y', 'z'];
const request = (over: Parameters<typeof open>[0] = {}) => open({ protocol: 'combinatorial', eligible: ['a', 'b', 'c'], ...over, parameters: { items, ...over.parameters } });
const offer = (agentId: string, bundle: string[], amount: number, alternatives?: { bundle: string[]; amount: number }[], over: Partial<RoundAnswer> = {}) =>
  bid(agentId, amount, { bundle, ...(alternatives ? { attributes: { alternatives } } : {}), ...over });

describe('combinatorial auction', () => {
  it('picks the best set of disjoint bundles: two bundles worth more together beat the single highest bid', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: request(), a: offer('a', ['x', 'y'], 10), b: offer('b', ['x'], 6), c: offer('c', ['y'], 5) });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['bid-a', 'bid-b', 'bid-c'], 'combinatorial'),
        y: {
          type: 'outcome',
          roundId: 'r1',
          protocol: 'combinatorial',
          kind: 'auction',
          eligible: ['a', 'b', 'c'],
          status: 'decided',
          winners: ['b', 'c'],
          price: 11,
          value: '{"b":["x"],"c":["y"]}',
          reason: '2 winning offers of 3, revenue 11',
          details: {
            payments: { b: 6, c: 5 },
            allocation: [
              { agentId: 'b', offer: 0, bundle: ['x'], amount: 6 },
              { agentId: 'c', offer: 0, bundle: ['y'], amount: 5 },
            ],
            unsold: ['z'],
            offers: [
              { agentId: 'a', offer: 0, bundle: ['x', 'y'], amount: 10 },
              { agentId: 'b', offer: 0, bundle: ['x'], amount: 6 },
              { agentId: 'c', offer: 0, bundle: ['y'], amount: 5 },
            ],
          },
        },
      });
    });
  });

  it('lets at most one offer of an agent win (XOR), and an alternative may be the one', () => {
    scheduler().run(({ cold, expectObservable }) => {
      // Together a's two offers (8 + 7) would beat b's 12; only one of them can win.
      const xor = cold('o-a-b', { o: request({ eligible: ['a', 'b'] }), a: offer('a', ['x'], 8, [{ bundle: ['y'], amount: 7 }]), b: offer('b', ['x', 'y'], 12) });
      expectObservable(xor.pipe(run)).toBe('----(xy)', {
        x: closed('complete', ['bid-a', 'bid-b'], 'combinatorial'),
        y: expect.objectContaining({ status: 'decided', winners: ['b'], price: 12, value: '{"b":["x","y"]}' }),
      });
      const alternative = cold('o-a-b', {
        o: request({ roundId: 'r2', eligible: ['a', 'b'] }),
        a: offer('a', ['x', 'y'], 9, [{ bundle: ['z'], amount: 1 }, { bundle: ['x'], amount: 7 }], { roundId: 'r2' }),
        b: offer('b', ['y'], 4, undefined, { roundId: 'r2' }),
      });
      expectObservable(alternative.pipe(run)).toBe('----(xy)', {
        x: closed('complete', ['bid-a', 'bid-b'], 'combinatorial', 'r2'),
        y: expect.objectContaining({
          status: 'decided',
          winners: ['a', 'b'],
          price: 11,
          value: '{"a":["x"],"b":["y"]}',
          details: expect.objectContaining({ payments: { a: 7, b: 4 }, allocation: [{ agentId: 'a', offer: 2, bundle: ['x'], amount: 7 }, { agentId: 'b', offer: 0, bundle: ['y'], amount: 4 }] }),
        }),
      });
    });
  });

  it('breaks ties between equal totals by fewer offers, then by (agentId, offer index)', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const fewer = cold('o-a-b-c', { o: request(), a: offer('c', ['x', 'y'], 10), b: offer('a', ['x'], 5), c: offer('b', ['y'], 5) });
      expectObservable(fewer.pipe(run)).toBe('------(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['c'], price: 10, value: '{"c":["x","y"]}' }) });
      const lexicographic = cold('o-a-b', { o: request({ roundId: 'r2', eligible: ['a', 'b'] }), a: offer('b', ['x'], 5, undefined, { roundId: 'r2', eventTime: 1_500 }), b: offer('a', ['x'], 5, undefined, { roundId: 'r2' }) });
      expectObservable(lexicographic.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a'], price: 5 }) });
      const ownOffers = cold('o-a-d', { o: request({ roundId: 'r3', eligible: [] }), a: offer('a', ['y'], 5, [{ bundle: ['x'], amount: 5 }], { roundId: 'r3' }), d: close('deadline', 'r3') });
      expectObservable(ownOffers.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['bid-a'], 'combinatorial', 'r3'),
        y: expect.objectContaining({ winners: ['a'], value: '{"a":["y"]}', details: expect.objectContaining({ allocation: [{ agentId: 'a', offer: 0, bundle: ['y'], amount: 5 }] }) }),
      });
    });
  });

  it('decides at the deadline among the bids counted; no bids, or only offers of 0, decide nothing', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const some = cold('o-a-d', { o: request(), a: offer('a', ['z'], 3), d: close() });
      expectObservable(some.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['bid-a'], 'combinatorial'),
        y: expect.objectContaining({ status: 'decided', winners: ['a'], price: 3, details: expect.objectContaining({ unsold: ['x', 'y'] }) }),
      });
      const none = cold('o-d', { o: request({ roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(none.pipe(run)).toBe('--(xy)', {
        x: closed('deadline', [], 'combinatorial', 'r2'),
        y: expect.objectContaining({ status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid bids', details: { offers: [] } }),
      });
      const zero = cold('o-a-d', { o: request({ roundId: 'r3' }), a: offer('a', ['x'], 0, undefined, { roundId: 'r3' }), d: close('deadline', 'r3') });
      expectObservable(zero.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['bid-a'], 'combinatorial', 'r3'),
        y: expect.objectContaining({ status: 'no-decision', winners: [], price: null, reason: 'no offer above 0' }),
      });
    });
  });

  it('refuses malformed bundles and alternatives, and answers past the limit on offers', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-123456789ABC-a-b', {
        o: request({ eligible: ['a', 'b'], reservePrice: 2, parameters: { items, maxOffers: 3 } }),
        1: offer('a', [], 5, undefined, { eventId: 'empty' }),
        2: bid('a', 5, { eventId: 'no-bundle' }),
        3: offer('a', ['x', 'w'], 5, undefined, { eventId: 'not-on-sale' }),
        4: offer('a', ['x', 'x'], 5, undefined, { eventId: 'twice' }),
        5: offer('a', ['x'], 5, undefined, { eventId: 'not-a-list', attributes: { alternatives: { bundle: ['y'], amount: 3 } } }),
        6: offer('a', ['x'], 5, undefined, { eventId: 'not-an-offer', attributes: { alternatives: ['y'] } }),
        7: offer('a', ['x'], 5, [{ bundle: ['q'], amount: 3 }], { eventId: 'alt-not-on-sale' }),
        8: offer('a', ['x'], 5, [{ bundle: ['y'], amount: Number.NaN }], { eventId: 'alt-nan' }),
        9: offer('a', ['x'], 5, [{ bundle: ['y'], amount: -1 }], { eventId: 'alt-negative' }),
        A: offer('a', ['x'], 5, [{ bundle: ['y'] } as { bundle: string[]; amount: number }], { eventId: 'alt-no-amount' }),
        B: offer('a', ['x'], 5, [{ bundle: ['y'], amount: 1 }], { eventId: 'alt-below-reserve' }),
        C: offer('a', ['x'], 5, [{ bundle: ['y'], amount: 3 }, { bundle: ['z'], amount: 3 }, { bundle: ['x', 'y'], amount: 9 }], { eventId: 'too-many' }),
        a: offer('a', ['x'], 5, [{ bundle: ['y', 'z'], amount: 6 }]),
        b: offer('b', ['y'], 4),
      });
      expectObservable(events.pipe(run)).toBe('--123456789ABC---(xy)', {
        1: rejectedAs('INVALID_ANSWER', 'empty', 'a'),
        2: rejectedAs('INVALID_ANSWER', 'no-bundle', 'a'),
        3: rejectedAs('INVALID_ANSWER', 'not-on-sale', 'a'),
        4: rejectedAs('INVALID_ANSWER', 'twice', 'a'),
        5: rejectedAs('INVALID_ANSWER', 'not-a-list', 'a'),
        6: rejectedAs('INVALID_ANSWER', 'not-an-offer', 'a'),
        7: rejectedAs('INVALID_ANSWER', 'alt-not-on-sale', 'a'),
        8: rejectedAs('INVALID_ANSWER', 'alt-nan', 'a'),
        9: rejectedAs('INVALID_ANSWER', 'alt-negative', 'a'),
        A: rejectedAs('INVALID_ANSWER', 'alt-no-amount', 'a'),
        B: rejectedAs('BELOW_RESERVE', 'alt-below-reserve', 'a'),
        C: rejectedAs('LIMIT_EXCEEDED', 'too-many', 'a'),
        x: closed('complete', ['bid-a', 'bid-b'], 'combinatorial'),
        y: expect.objectContaining({ status: 'decided', winners: ['a', 'b'], price: 9, value: '{"a":["x"],"b":["y"]}' }),
      });
    });
  });

  it('counts every offer of the answers counted toward the limit', () => {
    const req = request({ parameters: { items, maxOffers: 3 } });
    const first = offer('a', ['x'], 5, [{ bundle: ['y'], amount: 4 }]);
    expect(checkBid(req, offer('b', ['z'], 1), [first])).toBeUndefined();
    expect(checkBid(req, offer('b', ['z'], 1, [{ bundle: ['y'], amount: 2 }]), [first])).toEqual({ reasonCode: 'LIMIT_EXCEEDED', reason: expect.stringContaining('at most 3 offers') });
    expect(checkBid(open({ protocol: 'combinatorial', parameters: { items } }), offer('b', ['z'], 1), Array.from({ length: 20 }, (_, i) => offer(`n${i}`, ['x'], 1)))?.reasonCode).toBe('LIMIT_EXCEEDED');
    // Answers past the limit that were counted all the same are left out of the winner determination.
    const verdict = combinatorial.decide(req, [first, offer('b', ['z'], 1, [{ bundle: ['y'], amount: 2 }], { eventId: 'over' }), offer('c', ['z'], 3)], 'deadline');
    expect(verdict).toEqual(expect.objectContaining({ winners: ['a', 'c'], price: 8, details: expect.objectContaining({ overLimit: ['over'] }) }));
  });

  it('finds the exact optimum: the same total as trying every subset', () => {
    const goods = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const instance = (n: number): Offer[] =>
      Array.from({ length: n }, (_, i) => ({
        agentId: `p${Math.floor(i / 2)}`,
        offer: i % 2,
        bundle: goods.filter(() => next() < 0.3).concat(goods[i % 8]!).filter((g, j, all) => all.indexOf(g) === j),
        amount: Math.round(next() * 100),
      }));
    const bruteForce = (offers: readonly Offer[]) => {
      let best = 0;
      for (let mask = 0; mask < 2 ** offers.length; mask += 1) {
        let total = 0;
        const used = new Set<string>();
        const agents = new Set<string>();
        let ok = true;
        for (let i = 0; i < offers.length && ok; i++) {
          if (!(mask & (1 << i))) continue;
          const o = offers[i]!;
          if (agents.has(o.agentId) || o.bundle.some((g) => used.has(g))) ok = false;
          else {
            agents.add(o.agentId);
            for (const g of o.bundle) used.add(g);
            total += o.amount;
          }
        }
        if (ok && total > best) best = total;
      }
      return best;
    };
    for (let round = 0; round < 20; round++) {
      const offers = instance(12);
      expect(bestAllocation(offers).total).toBe(bruteForce(offers));
    }
    // The largest round allowed (24 offers) is decided quickly.
    const large = instance(24);
    const { chosen, total } = bestAllocation(large);
    expect(total).toBe(chosen.reduce((n, o) => n + o.amount, 0));
    expect(new Set(chosen.flatMap((o) => o.bundle)).size).toBe(chosen.flatMap((o) => o.bundle).length);
  });

  it('refuses a request without items, with an item twice, or allowing too many offers', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('abcdef', {
        a: open({ protocol: 'combinatorial', eventId: 'q1' }),
        b: open({ protocol: 'combinatorial', roundId: 'r2', eventId: 'q2', parameters: { items: [] } }),
        c: open({ protocol: 'combinatorial', roundId: 'r3', eventId: 'q3', parameters: { items: ['x', 'x'] } }),
        d: open({ protocol: 'combinatorial', roundId: 'r4', eventId: 'q4', parameters: { items: ['x', 3] } }),
        e: open({ protocol: 'combinatorial', roundId: 'r5', eventId: 'q5', parameters: { items, maxOffers: 25 } }),
        f: open({ protocol: 'combinatorial', roundId: 'r6', eventId: 'q6', parameters: { items, maxOffers: 0 } }),
      });
      expectObservable(events.pipe(run)).toBe('abcdef', {
        a: rejectedAs('INVALID_REQUEST', 'q1'),
        b: rejectedAs('INVALID_REQUEST', 'q2', null, 'r2'),
        c: rejectedAs('INVALID_REQUEST', 'q3', null, 'r3'),
        d: rejectedAs('INVALID_REQUEST', 'q4', null, 'r4'),
        e: rejectedAs('INVALID_REQUEST', 'q5', null, 'r5'),
        f: rejectedAs('INVALID_REQUEST', 'q6', null, 'r6'),
      });
    });
  });
});
