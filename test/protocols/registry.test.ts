import { describe, expect, it } from 'vitest';
import { defaultProtocols, registerProtocol, sharedProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { rankBids } from '../../src/protocols/auctions/ranking.ts';
import type { Protocol } from '../../src/protocols/types.ts';
import { bid, open, scheduler } from './builders.ts';

// A protocol from user code: a reverse auction, where the lowest price wins (procurement).
const lowestPrice: Protocol = {
  name: 'lowest-price',
  kind: 'auction',
  complete: (o, counted) => o.eligible.length > 0 && counted.length === o.eligible.length,
  decide: (_o, counted) => {
    const [best] = rankBids(counted).reverse();
    return best
      ? { status: 'decided', winners: [best.agentId], price: best.amount!, value: null, reason: `lowest offer ${best.amount}`, details: {} }
      : { status: 'no-decision', winners: [], price: null, value: null, reason: 'no offers', details: {} };
  },
};

describe('registerProtocol', () => {
  it('adds a protocol at runtime that coordinators then run', () => {
    registerProtocol(lowestPrice);
    expect(sharedProtocols().names()).toContain('lowest-price');
    const run = coordinate((name) => sharedProtocols().get(name));
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b', { o: open({ protocol: 'lowest-price', eligible: ['a', 'b'] }), a: bid('a', 40), b: bid('b', 25) });
      expectObservable(events.pipe(run)).toBe('----(xy)', { x: expect.objectContaining({ type: 'closed', protocol: 'lowest-price' }), y: expect.objectContaining({ winners: ['b'], price: 25 }) });
    });
  });

  it('refuses a taken name, a bad name, and a protocol without its functions', () => {
    const registry = defaultProtocols();
    expect(registry.names()).toEqual([
      'barrier', 'combinatorial', 'compromise', 'delegation', 'double-auction', 'dutch', 'english', 'equilibrium', 'first-price', 'leader-election',
      'majority', 'priority', 'quorum', 'resource-grant', 'unanimous', 'vickrey', 'weighted', 'weighted-mean',
    ]);
    expect(() => registry.register({ ...lowestPrice, name: 'vickrey' })).toThrow('A protocol named "vickrey" is already registered.');
    expect(() => registry.register({ ...lowestPrice, name: 'Bad Name' })).toThrow(/lower-case letters/);
    expect(() => registry.register({ name: 'half', kind: 'auction' } as unknown as Protocol)).toThrow('Protocol "half" must have complete() and decide().');
  });
});
