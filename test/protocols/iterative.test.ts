import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { stageEventId } from '../../src/protocols/roundsInternals.ts';
import type { Outcome, RoundAnswer, RoundDecision, RoundEvent, RoundOpen } from '../../src/protocols/types.ts';
import { bid, closed, open, rejectedAs, scheduler } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const stage1 = stageEventId('r1', 1);
const stage2 = stageEventId('r1', 2);

/** A bid that replies to a stage (its causation is that stage's request). */
const answer = (agentId: string, amount: number, stage: number, over: Partial<RoundAnswer> = {}) =>
  bid(agentId, amount, { eventId: `bid-${agentId}-${stage}`, inReplyTo: stage === 0 ? 'req-r1' : stageEventId('r1', stage), eventTime: 2_000 + stage * 100, ...over });
const pass = (agentId: string, stage: number) => answer(agentId, 0, stage, { attributes: { pass: true } });

/**
 * Runs a round with agents in the loop: each stage request (the first, and
 * every one the protocol opens) is shown to every agent, whose answers go
 * back in. Synchronous, so the order is exact.
 */
function simulate(first: RoundOpen, agents: Record<string, (stage: RoundOpen) => { amount: number; attributes?: Record<string, unknown> } | 'pass' | undefined>) {
  const input = new Subject<RoundEvent>();
  const decisions: RoundDecision[] = [];
  const stages: RoundOpen[] = [];
  const ask = (stage: RoundOpen) => {
    stages.push(stage);
    for (const [agentId, strategy] of Object.entries(agents)) {
      if (stage.eligible.length > 0 && !stage.eligible.includes(agentId)) continue;
      const a = strategy(stage);
      if (a === undefined) continue;
      const reply = a === 'pass' ? { amount: 0, attributes: { pass: true } } : a;
      queue.push(bid(agentId, reply.amount, { roundId: stage.roundId, eventId: `bid-${agentId}-${stage.stage}`, eventTime: stage.eventTime + 1, inReplyTo: stage.eventId, ...(reply.attributes ? { attributes: reply.attributes } : {}) }));
    }
  };
  const queue: RoundEvent[] = [];
  input.pipe(run).subscribe((d) => {
    decisions.push(d);
    if (d.type === 'stage') ask(d.open);
  });
  input.next(first);
  ask(first);
  while (queue.length > 0) input.next(queue.shift()!);
  return { decisions, stages, outcome: decisions.find((d): d is Outcome => d.type === 'outcome') };
}

describe('English auction', () => {
  const english = (over: Partial<RoundOpen> = {}) => open({ protocol: 'english', eligible: ['a', 'b', 'c'], parameters: { increment: 10, startPrice: 20 }, ...over });

  it('raises the asking price stage by stage; the leader wins at its standing bid when a stage brings no bid', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-abc---d---f', {
        o: english(),
        a: answer('a', 20, 0),
        b: answer('b', 25, 0),
        c: pass('c', 0),
        d: answer('a', 35, 1),
        f: pass('b', 2),
      });
      expectObservable(events.pipe(run)).toBe('----(xy)(zw)(uv)', {
        x: closed('complete', ['bid-a-0', 'bid-b-0', 'bid-c-0'], 'english', 'r1', 0, false),
        y: expect.objectContaining({ type: 'stage', open: expect.objectContaining({ stage: 1, eventId: stage1, eligible: ['a', 'b'], parameters: expect.objectContaining({ leader: 'b', standing: 25, asking: 35 }) }) }),
        z: closed('complete', ['bid-a-1'], 'english', 'r1', 1, false),
        w: expect.objectContaining({ type: 'stage', open: expect.objectContaining({ stage: 2, eligible: ['a', 'b'], parameters: expect.objectContaining({ leader: 'a', standing: 35, asking: 45 }) }) }),
        u: closed('complete', ['bid-b-2'], 'english', 'r1', 2, true),
        v: expect.objectContaining({ type: 'outcome', status: 'decided', winners: ['a'], price: 35, reason: 'no bid over 35: a wins at its standing bid' }),
      });
    });
  });

  it('refuses a bid under the asking price, the leader bidding against itself, and answers to an earlier stage', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-ab-c----l-s-x', {
        o: english({ eligible: ['a', 'b'] }),
        a: answer('a', 10, 0, { eventId: 'low' }),
        b: answer('a', 30, 0),
        c: answer('b', 20, 0),
        l: answer('a', 50, 1, { eventId: 'self' }),
        s: answer('b', 60, 0, { eventId: 'stale', inReplyTo: 'req-r1' }),
        x: answer('b', 40, 1),
      });
      expectObservable(events.pipe(run)).toBe('--x--(yz)-a-b-(dc)', {
        x: rejectedAs('BELOW_ASKING', 'low', 'a'),
        y: closed('complete', ['bid-a-0', 'bid-b-0'], 'english', 'r1', 0, false),
        z: expect.objectContaining({ type: 'stage', open: expect.objectContaining({ parameters: expect.objectContaining({ leader: 'a', asking: 40 }) }) }),
        a: rejectedAs('NOT_ELIGIBLE', 'self', 'a'),
        b: rejectedAs('STALE_STAGE', 'stale', 'b'),
        d: closed('complete', ['bid-b-1'], 'english', 'r1', 1, false),
        c: expect.objectContaining({ type: 'stage', open: expect.objectContaining({ stage: 2, eventId: stage2, parameters: expect.objectContaining({ leader: 'b', standing: 40 }) }) }),
      });
    });
  });

  it('converges with bidders who bid while the price is under their value: the highest value wins near the second-highest', () => {
    const values: Record<string, number> = { a: 53, b: 91, c: 77 };
    const strategy = (agentId: string) => (stage: RoundOpen) => {
      if (stage.parameters['leader'] === agentId) return undefined;
      const asking = stage.parameters['asking'] as number | undefined ?? 0;
      return asking <= values[agentId]! ? { amount: asking } : 'pass';
    };
    const { outcome, stages } = simulate(open({ protocol: 'english', eligible: ['a', 'b', 'c'], parameters: { increment: 5 } }), { a: strategy('a'), b: strategy('b'), c: strategy('c') });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['b'] });
    expect(outcome!.price).toBeGreaterThanOrEqual(77 - 5);
    expect(outcome!.price).toBeLessThanOrEqual(77 + 5);
    expect(stages.length).toBeGreaterThan(10);
    // Every stage asks more than the one before.
    const asking = stages.slice(1).map((s) => s.parameters['asking'] as number);
    expect(asking).toEqual([...asking].sort((x, y) => x - y));
  });

  it('closes a stage at its deadline, dropping the bidders that did not answer; no bid at all decides nothing', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-d-e', {
        o: english(),
        a: answer('a', 20, 0),
        d: { type: 'close', roundId: 'r1', cause: 'deadline', eventId: 'dl-0', stage: 0 } as const,
        e: { type: 'close', roundId: 'r1', cause: 'deadline', eventId: 'dl-0-again', stage: 0 } as const,
      });
      expectObservable(events.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['bid-a-0'], 'english', 'r1', 0, true),
        y: expect.objectContaining({ status: 'decided', winners: ['a'], price: 20, reason: 'a is the last bidder in, at 20' }),
      });
      const none = cold('o-d', { o: english({ roundId: 'r2', eventId: 'req-r2' }), d: { type: 'close', roundId: 'r2', cause: 'deadline', eventId: 'dl', stage: 0 } as const });
      expectObservable(none.pipe(run)).toBe('--(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'no-decision', reason: 'no bids' }) });
    });
  });

  it('times the next stage from the log: it starts when the stage ended and runs as long', () => {
    const { stages } = simulate(english({ eventTime: 1_000, deadline: 4_000 }), { a: (s) => (s.stage < 2 ? { amount: (s.parameters['asking'] as number | undefined) ?? 20 } : 'pass'), b: (s) => (s.stage < 2 ? { amount: ((s.parameters['asking'] as number | undefined) ?? 20) + 1 } : 'pass'), c: () => 'pass' });
    expect(stages[1]).toMatchObject({ eventTime: 1_001, deadline: 4_001, earlierStages: ['req-r1'] });
    expect(stages[2]).toMatchObject({ eventTime: 1_002, deadline: 4_002, earlierStages: ['req-r1', stage1] });
  });

  it('ignores its own later stage read back, and refuses a stage request that did not come from a coordinator', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const first = english({ eligible: ['a', 'b'] });
      const events = cold('o-ab-s-f', {
        o: first,
        a: answer('a', 20, 0),
        b: answer('b', 20, 0),
        s: { ...first, eventId: stage1, stage: 1 },
        f: open({ roundId: 'r9', eventId: 'forged', protocol: 'english', stage: 3 }),
      });
      expectObservable(events.pipe(run)).toBe('---(xy)z', {
        x: expect.objectContaining({ type: 'closed', final: false }),
        y: expect.objectContaining({ type: 'stage' }),
        z: rejectedAs('INVALID_REQUEST', 'forged', null, 'r9'),
      });
    });
  });
});

describe('Dutch auction', () => {
  const dutch = (over: Partial<RoundOpen> = {}) => open({ protocol: 'dutch', eligible: ['a', 'b', 'c'], parameters: { startPrice: 100, decrement: 15, floor: 40 }, ...over });

  it('descends to the first taker, who pays the price of that stage', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-abc---de---f', {
        o: dutch(),
        a: pass('a', 0),
        b: pass('b', 0),
        c: pass('c', 0),
        d: pass('a', 1),
        e: answer('c', 85, 1),
        f: answer('b', 85, 1, { eventId: 'late' }),
      });
      expectObservable(events.pipe(run)).toBe('----(xy)-(zw)r', {
        x: closed('complete', ['bid-a-0', 'bid-b-0', 'bid-c-0'], 'dutch', 'r1', 0, false),
        y: expect.objectContaining({ type: 'stage', open: expect.objectContaining({ stage: 1, parameters: expect.objectContaining({ price: 85 }) }) }),
        z: closed('complete', ['bid-a-1', 'bid-c-1'], 'dutch', 'r1', 1, true),
        w: expect.objectContaining({ type: 'outcome', status: 'decided', winners: ['c'], price: 85, reason: 'c took the offer at 85' }),
        r: rejectedAs('ROUND_CLOSED', 'late', 'b'),
      });
    });
  });

  it('refuses a take under the price and stops at the floor without a taker', () => {
    const { outcome, stages } = simulate(dutch(), { a: () => 'pass', b: () => 'pass', c: () => 'pass' });
    expect(stages.map((s) => s.parameters['price'] ?? s.parameters['startPrice'])).toEqual([100, 85, 70, 55, 40]);
    expect(outcome).toMatchObject({ status: 'no-decision', reason: 'no taker down to the floor 40' });
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('o-a', { o: dutch(), a: answer('a', 99, 0, { eventId: 'cheap' }) }).pipe(run)).toBe('--x', { x: rejectedAs('BELOW_ASKING', 'cheap', 'a') });
    });
  });

  it('each bidder takes when the price falls to its value: the highest value wins at the first price under it', () => {
    const values: Record<string, number> = { a: 52, b: 78, c: 61 };
    const { outcome } = simulate(dutch({ parameters: { startPrice: 100, decrement: 5 } }), Object.fromEntries(Object.keys(values).map((id) => [id, (s: RoundOpen) => ((s.parameters['price'] ?? s.parameters['startPrice']) as number) <= values[id]! ? { amount: values[id]! } : 'pass'])));
    expect(outcome).toMatchObject({ status: 'decided', winners: ['b'], price: 75 });
  });

  it('a first-price protocol takes no passes', () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('o-p', { o: open(), p: pass('a', 0) }).pipe(run)).toBe('--x', { x: rejectedAs('INVALID_ANSWER', 'bid-a-0', 'a') });
    });
  });
});

describe('equilibrium price finding', () => {
  it('adjusts the price by the excess demand until supply meets demand', () => {
    // Linear demand 10 − p (two buyers share it), supply p: clears at p = 5.
    const market = open({ protocol: 'equilibrium', eligible: ['buyer-1', 'buyer-2', 'seller'], parameters: { startPrice: 1, adjustment: 0.25, tolerance: 0.05 } });
    const priceOf = (s: RoundOpen) => (s.parameters['price'] ?? s.parameters['startPrice']) as number;
    const { outcome, stages } = simulate(market, {
      'buyer-1': (s) => ({ amount: Math.max(0, 10 - priceOf(s)) / 2, attributes: { side: 'buy' } }),
      'buyer-2': (s) => ({ amount: Math.max(0, 10 - priceOf(s)) / 2, attributes: { side: 'buy' } }),
      seller: (s) => ({ amount: priceOf(s), attributes: { side: 'sell' } }),
    });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['buyer-1', 'buyer-2', 'seller'] });
    expect(Math.abs(outcome!.price! - 5)).toBeLessThanOrEqual(0.025);
    expect(stages.length).toBeGreaterThan(3);
    const value = JSON.parse(outcome!.value!) as Record<string, { side: string; quantity: number }>;
    expect(value['seller']!.quantity).toBeCloseTo(outcome!.price!, 9);
  });

  it('refuses answers without a side, and gives up within its stage limit', () => {
    const market = open({ protocol: 'equilibrium', eligible: ['a', 'b'], parameters: { startPrice: 10, maxStages: 3 } });
    const { outcome, stages } = simulate(market, { a: () => ({ amount: 5, attributes: { side: 'buy' } }), b: () => ({ amount: 1, attributes: { side: 'sell' } }) });
    expect(stages).toHaveLength(3);
    expect(outcome).toMatchObject({ status: 'no-decision', reason: 'no clearing price within 3 stages' });
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('o-a', { o: market, a: answer('a', 5, 0, { eventId: 'sideless' }) }).pipe(run)).toBe('--x', { x: rejectedAs('INVALID_ANSWER', 'sideless', 'a') });
      expectObservable(cold('o', { o: open({ roundId: 'r2', eventId: 'q', protocol: 'equilibrium', parameters: { startPrice: 1 } }) }).pipe(run)).toBe('x', { x: rejectedAs('INVALID_REQUEST', 'q', null, 'r2') });
    });
  });
});

describe('hierarchical delegation', () => {
  const task = (over: Partial<RoundOpen> = {}) => open({ protocol: 'delegation', eligible: ['worker-1', 'worker-2'], parameters: { escalation: [['lead'], ['root']] }, ...over });

  it('gives the task to the cheapest subordinate that takes it', () => {
    const { outcome, stages } = simulate(task(), { 'worker-1': () => ({ amount: 9 }), 'worker-2': () => ({ amount: 4 }) });
    expect(stages).toHaveLength(1);
    expect(outcome).toMatchObject({ status: 'decided', winners: ['worker-2'], price: 4 });
  });

  it('escalates tier by tier when nobody takes it, and fails at the top', () => {
    const escalated = simulate(task(), { 'worker-1': () => 'pass', 'worker-2': () => 'pass', lead: () => ({ amount: 20 }) });
    expect(escalated.stages.map((s) => s.eligible)).toEqual([['worker-1', 'worker-2'], ['lead']]);
    expect(escalated.outcome).toMatchObject({ status: 'decided', winners: ['lead'], price: 20, reason: 'lead (tier 1) takes the task at cost 20' });
    const failed = simulate(task({ roundId: 'r1' }), { 'worker-1': () => 'pass', 'worker-2': () => 'pass', lead: () => 'pass', root: () => 'pass' });
    expect(failed.stages).toHaveLength(3);
    expect(failed.outcome).toMatchObject({ status: 'failed', winners: [] });
  });

  it('a silent subordinate does not block: the tier closes at its deadline and the round escalates', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-d', { o: task(), a: pass('worker-1', 0), d: { type: 'close', roundId: 'r1', cause: 'deadline', eventId: 'dl', stage: 0 } as const });
      expectObservable(events.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['bid-worker-1-0'], 'delegation', 'r1', 0, false),
        y: expect.objectContaining({ type: 'stage', reason: expect.stringContaining('no answer: worker-2'), open: expect.objectContaining({ eligible: ['lead'], parameters: expect.objectContaining({ tier: 1 }) }) }),
      });
    });
  });
});
