import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { doubleAuction } from '../../src/protocols/markets/doubleAuction.ts';
import type { RoundAnswer } from '../../src/protocols/types.ts';
import { bid, close, closed, open, rejectedAs, scheduler } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const market = (over: Parameters<typeof open>[0] = {}) => open({ protocol: 'double-auction', ...over });
const order = (agentId: string, side: string, price: number, quantity?: number, over: Partial<RoundAnswer> = {}) =>
  bid(agentId, price, { ...over, attributes: { side, ...(quantity !== undefined ? { quantity } : {}), ...over.attributes } });

/** Units demanded at a price (buyers whose limit is at least it) and supplied (sellers whose limit is at most it). */
const demandAt = (orders: RoundAnswer[], p: number) => orders.filter((o) => o.attributes!['side'] === 'buy' && o.amount! >= p).reduce((n, o) => n + ((o.attributes!['quantity'] as number) ?? 1), 0);
const supplyAt = (orders: RoundAnswer[], p: number) => orders.filter((o) => o.attributes!['side'] === 'sell' && o.amount! <= p).reduce((n, o) => n + ((o.attributes!['quantity'] as number) ?? 1), 0);

describe('double auction', () => {
  const book = [order('b1', 'buy', 10, 2), order('b2', 'buy', 8), order('b3', 'buy', 5), order('s1', 'sell', 4), order('s2', 'sell', 6, 2), order('s3', 'sell', 9)];

  it('clears at the midpoint of the equilibrium interval, trading where supply meets demand', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-123456', { o: market({ eligible: book.map((o) => o.agentId) }), 1: book[0]!, 2: book[1]!, 3: book[2]!, 4: book[3]!, 5: book[4]!, 6: book[5]! });
      // Buy units 10 10 8 5, sell units 4 6 6 9: three cross; interval [max(6, 5), min(8, 9)] = [6, 8].
      expectObservable(events.pipe(run)).toBe('-------(xy)', {
        x: closed('complete', book.map((o) => o.eventId), 'double-auction'),
        y: {
          type: 'outcome',
          roundId: 'r1',
          protocol: 'double-auction',
          kind: 'auction',
          eligible: book.map((o) => o.agentId),
          status: 'decided',
          winners: ['b1', 'b2', 's1', 's2'],
          price: 7,
          value: JSON.stringify([
            { buyer: 'b1', seller: 's1', quantity: 1 },
            { buyer: 'b1', seller: 's2', quantity: 1 },
            { buyer: 'b2', seller: 's2', quantity: 1 },
          ]),
          reason: '3 units clear at 7, the midpoint of [6, 8]',
          details: {
            units: 3,
            quantities: { b1: 2, b2: 1, s1: 1, s2: 2 },
            interval: [6, 8],
            demand: 4,
            supply: 4,
            orders: book.map((o) => ({ agentId: o.agentId, side: o.attributes!['side'], price: o.amount, quantity: (o.attributes!['quantity'] as number) ?? 1 })),
          },
        },
      });
    });
  });

  it('the price lies in the interval and the quantity traded is where supply crosses demand', () => {
    let seed = 11;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 50; round++) {
      const orders = Array.from({ length: 8 }, (_, i) => order(`t${i}`, next() < 0.5 ? 'buy' : 'sell', Math.round(next() * 20), 1 + Math.floor(next() * 3), { eventTime: 2_000 + i }));
      const verdict = doubleAuction.decide(market(), orders, 'deadline');
      if (verdict.status !== 'decided') {
        // Nothing crosses: at no price is there both a buyer and a seller.
        expect(orders.every((b) => b.attributes!['side'] === 'sell' || supplyAt(orders, b.amount!) === 0)).toBe(true);
        continue;
      }
      const [low, high] = verdict.details['interval'] as [number, number];
      expect(low).toBeLessThanOrEqual(verdict.price!);
      expect(verdict.price!).toBeLessThanOrEqual(high);
      const units = verdict.details['units'] as number;
      // At the clearing price, the units traded are what both sides will trade: min(demand, supply).
      expect(units).toBe(Math.min(demandAt(orders, verdict.price!), supplyAt(orders, verdict.price!)));
      const trades = JSON.parse(verdict.value!) as { buyer: string; seller: string; quantity: number }[];
      expect(trades.reduce((n, t) => n + t.quantity, 0)).toBe(units);
      // Nobody trades against its limit.
      for (const t of trades) {
        expect(orders.find((o) => o.agentId === t.buyer)!.amount!).toBeGreaterThanOrEqual(verdict.price!);
        expect(orders.find((o) => o.agentId === t.seller)!.amount!).toBeLessThanOrEqual(verdict.price!);
      }
    }
  });

  it('trades the units of one buyer and one seller as a single trade; equal limits clear at that price', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-ab-d', { o: market(), a: order('b', 'buy', 5, 3), b: order('s', 'sell', 5, 4), d: close() });
      expectObservable(events.pipe(run)).toBe('-----(xy)', {
        x: closed('deadline', ['bid-b', 'bid-s'], 'double-auction'),
        y: expect.objectContaining({ winners: ['b', 's'], price: 5, value: '[{"buyer":"b","seller":"s","quantity":3}]', details: expect.objectContaining({ units: 3, interval: [5, 5] }) }),
      });
    });
  });

  it('breaks ties in price by the earlier order, then the lower agent id', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const earlier = cold('o-abc', {
        o: market({ eligible: ['x', 'y', 's'] }),
        a: order('x', 'buy', 10, 1, { eventTime: 2_500 }),
        b: order('y', 'buy', 10, 1, { eventTime: 2_000 }),
        c: order('s', 'sell', 4),
      });
      // The buyer left out would pay 10 too: the interval is [max(4, 10), 10].
      expectObservable(earlier.pipe(run)).toBe('----(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({ winners: ['s', 'y'], price: 10, value: '[{"buyer":"y","seller":"s","quantity":1}]', details: expect.objectContaining({ interval: [10, 10] }) }),
      });
      const sameTime = cold('o-abc', { o: market({ roundId: 'r2', eligible: ['b', 'p', 'q'] }), a: order('q', 'sell', 3, 1, { roundId: 'r2' }), b: order('p', 'sell', 3, 1, { roundId: 'r2' }), c: order('b', 'buy', 7, 1, { roundId: 'r2' }) });
      expectObservable(sameTime.pipe(run)).toBe('----(xy)', {
        x: expect.anything(),
        // The seller left out would sell at 3 too: the interval is [3, min(7, 3)].
        y: expect.objectContaining({ winners: ['b', 'p'], price: 3, value: '[{"buyer":"b","seller":"p","quantity":1}]', details: expect.objectContaining({ interval: [3, 3] }) }),
      });
    });
  });

  it('decides nothing when bids and asks do not cross, or a side is missing', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const apart = cold('o-ab-d', { o: market(), a: order('b', 'buy', 4), b: order('s', 'sell', 6), d: close() });
      expectObservable(apart.pipe(run)).toBe('-----(xy)', {
        x: closed('deadline', ['bid-b', 'bid-s'], 'double-auction'),
        y: expect.objectContaining({ status: 'no-decision', winners: [], price: null, value: null, reason: 'no crossing: best bid 4 is under best ask 6', details: expect.objectContaining({ units: 0, interval: null }) }),
      });
      const buyersOnly = cold('o-a-d', { o: market({ roundId: 'r2' }), a: order('b', 'buy', 4, 1, { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(buyersOnly.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'no-decision', reason: 'no sell orders' }) });
      const sellersOnly = cold('o-a-d', { o: market({ roundId: 'r3' }), a: order('s', 'sell', 4, 1, { roundId: 'r3' }), d: close('deadline', 'r3') });
      expectObservable(sellersOnly.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'no-decision', reason: 'no buy orders' }) });
      const empty = cold('o-d', { o: market({ roundId: 'r4' }), d: close('deadline', 'r4') });
      expectObservable(empty.pipe(run)).toBe('--(xy)', { x: closed('deadline', [], 'double-auction', 'r4'), y: expect.objectContaining({ status: 'no-decision', reason: 'no valid bids' }) });
    });
  });

  it('refuses an order without a side or with a bad quantity, and a request with a reserve price', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-123456-ab', {
        o: market({ eligible: ['b', 's'] }),
        1: bid('b', 5, { eventId: 'no-side' }),
        2: order('b', 'hold', 5, 1, { eventId: 'hold' }),
        3: order('b', 'buy', 5, 0, { eventId: 'zero' }),
        4: order('b', 'buy', 5, 1.5, { eventId: 'fraction' }),
        5: order('b', 'buy', 5, 1, { eventId: 'text', attributes: { quantity: '2' } }),
        6: order('b', 'buy', 5, -2, { eventId: 'negative' }),
        a: order('b', 'buy', 5),
        b: order('s', 'sell', 5),
      });
      expectObservable(events.pipe(run)).toBe('--123456--(xy)', {
        1: rejectedAs('INVALID_ANSWER', 'no-side', 'b'),
        2: rejectedAs('INVALID_ANSWER', 'hold', 'b'),
        3: rejectedAs('INVALID_ANSWER', 'zero', 'b'),
        4: rejectedAs('INVALID_ANSWER', 'fraction', 'b'),
        5: rejectedAs('INVALID_ANSWER', 'text', 'b'),
        6: rejectedAs('INVALID_ANSWER', 'negative', 'b'),
        x: closed('complete', ['bid-b', 'bid-s'], 'double-auction'),
        y: expect.objectContaining({ status: 'decided', price: 5 }),
      });
      const reserve = cold('a', { a: market({ roundId: 'r2', eventId: 'q2', reservePrice: 3 }) });
      expectObservable(reserve.pipe(run)).toBe('a', { a: rejectedAs('INVALID_REQUEST', 'q2', null, 'r2') });
    });
  });
});
