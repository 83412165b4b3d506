import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import type { RoundAnswer } from '../../src/protocols/types.ts';
import { bid, close, closed, open, rejectedAs, scheduler } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const grant = (over: Parameters<typeof open>[0] & { parameters?: Record<string, unknown> } = {}) => open({ protocol: 'resource-grant', eligible: ['a', 'b', 'c'], ...over, parameters: { capacity: 10, ...over.parameters } });
const ask = (agentId: string, amount: number, attributes: Record<string, unknown> = {}, over: Partial<RoundAnswer> = {}) => bid(agentId, amount, { attributes, ...over });

describe('resource grants', () => {
  it('grants every request when the total fits the capacity, with the lease and conditions of the request', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: grant({ parameters: { leaseMs: 30_000, conditions: ['release on failure', 'no sharing'] } }), a: ask('b', 5), b: ask('a', 4), c: ask('c', 1, { priority: 7 }) });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['bid-b', 'bid-a', 'bid-c'], 'resource-grant'),
        y: {
          type: 'outcome',
          roundId: 'r1',
          protocol: 'resource-grant',
          kind: 'auction',
          eligible: ['a', 'b', 'c'],
          status: 'decided',
          winners: ['a', 'b', 'c'],
          price: null,
          value: JSON.stringify(
            ['c', 'a', 'b'].map((agentId) => ({ agentId, quantity: { a: 4, b: 5, c: 1 }[agentId], leaseMs: 30_000, conditions: ['release on failure', 'no sharing'] })),
          ),
          reason: 'all 3 requests granted (10 of 10)',
          details: {
            conflict: null,
            refusals: [],
            requests: [
              { agentId: 'c', asked: 1, priority: 7, minimum: 1 },
              { agentId: 'a', asked: 4, priority: 0, minimum: 4 },
              { agentId: 'b', asked: 5, priority: 0, minimum: 5 },
            ],
          },
        },
      });
    });
  });

  it('on a conflict serves by priority: a grant under its minimum is not made and what it would take stays for the next', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: grant(), a: ask('a', 6, { priority: 1 }), b: ask('b', 6, { priority: 2 }), c: ask('c', 3, { minimum: 3 }) });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['bid-a', 'bid-b', 'bid-c'], 'resource-grant'),
        y: expect.objectContaining({
          status: 'decided',
          winners: ['b', 'c'],
          value: '[{"agentId":"b","quantity":6},{"agentId":"c","quantity":3}]',
          reason: 'demand 15 exceeds capacity 10: 2 of 3 granted 9 by priority',
          details: expect.objectContaining({ conflict: { demand: 15, capacity: 10, strategy: 'priority' }, refusals: [{ agentId: 'a', asked: 6, minimum: 6, reason: 'only 4 left, under its minimum 6' }] }),
        }),
      });
    });
  });

  it('breaks ties in priority by the earlier request, then the lower agent id; a partial grant down to the minimum', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const earlier = cold('o-a-b', { o: grant({ eligible: ['a', 'b'] }), a: ask('a', 8, { minimum: 1 }, { eventTime: 2_500 }), b: ask('b', 8, { minimum: 1 }, { eventTime: 2_000 }) });
      expectObservable(earlier.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a', 'b'], value: '[{"agentId":"b","quantity":8},{"agentId":"a","quantity":2}]' }) });
      const sameTime = cold('o-a-b', { o: grant({ roundId: 'r2', eligible: ['a', 'b'] }), a: ask('b', 8, { minimum: 1 }, { roundId: 'r2' }), b: ask('a', 8, { minimum: 3 }, { roundId: 'r2' }) });
      expectObservable(sameTime.pipe(run)).toBe('----(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({ winners: ['a', 'b'], value: '[{"agentId":"a","quantity":8},{"agentId":"b","quantity":2}]', details: expect.objectContaining({ refusals: [] }) }),
      });
    });
  });

  it('proportional: scales every ask by capacity / demand', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: grant({ parameters: { strategy: 'proportional' } }), a: ask('a', 10, { minimum: 2 }), b: ask('b', 10, { minimum: 2 }), c: ask('c', 5, { minimum: 1 }) });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({
          status: 'decided',
          winners: ['a', 'b', 'c'],
          value: '[{"agentId":"a","quantity":4},{"agentId":"b","quantity":4},{"agentId":"c","quantity":2}]',
          details: expect.objectContaining({ conflict: { demand: 25, capacity: 10, strategy: 'proportional' }, refusals: [] }),
        }),
      });
    });
  });

  it('proportional: drops the last request in priority order whose share is under its minimum, and shares again', () => {
    scheduler().run(({ cold, expectObservable }) => {
      // Shares of 7 for 10 + 10 + 4: a and b fall under 4; b (lower priority) is dropped; 7 for 10 + 4 gives 5 and 2.
      const events = cold('o-a-b-c', {
        o: grant({ parameters: { capacity: 7, strategy: 'proportional', leaseMs: 500 } }),
        a: ask('a', 10, { minimum: 4, priority: 2 }),
        b: ask('b', 10, { minimum: 4, priority: 1 }),
        c: ask('c', 4, { minimum: 1 }),
      });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({
          winners: ['a', 'c'],
          value: '[{"agentId":"a","quantity":5,"leaseMs":500},{"agentId":"c","quantity":2,"leaseMs":500}]',
          details: expect.objectContaining({ refusals: [{ agentId: 'b', asked: 10, minimum: 4, reason: expect.stringContaining('under its minimum 4') }] }),
        }),
      });
      // Two that cannot both have their minimum: one (the later in priority order) is dropped, not both.
      const pair = cold('o-a-b', { o: grant({ roundId: 'r2', eligible: ['a', 'b'], parameters: { strategy: 'proportional' } }), a: ask('b', 10, { minimum: 6 }, { roundId: 'r2' }), b: ask('a', 10, { minimum: 6 }, { roundId: 'r2' }) });
      expectObservable(pair.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a'], value: '[{"agentId":"a","quantity":10}]' }) });
    });
  });

  it('decides nothing when no request can have its minimum, or none came', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const tooBig = cold('o-a-d', { o: grant({ parameters: { capacity: 5 } }), a: ask('a', 8), d: close() });
      expectObservable(tooBig.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['bid-a'], 'resource-grant'),
        y: expect.objectContaining({ status: 'no-decision', winners: [], price: null, value: null, reason: 'no request could be granted its minimum', details: expect.objectContaining({ refusals: [{ agentId: 'a', asked: 8, minimum: 8, reason: 'only 5 left, under its minimum 8' }] }) }),
      });
      const tooBigShared = cold('o-a-d', { o: grant({ roundId: 'r2', parameters: { capacity: 5, strategy: 'proportional' } }), a: ask('a', 8, {}, { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(tooBigShared.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'no-decision', reason: 'no request could be granted its minimum' }) });
      const none = cold('o-d', { o: grant({ roundId: 'r3' }), d: close('deadline', 'r3') });
      expectObservable(none.pipe(run)).toBe('--(xy)', { x: closed('deadline', [], 'resource-grant', 'r3'), y: expect.objectContaining({ status: 'no-decision', reason: 'no requests', details: { conflict: null, refusals: [], requests: [] } }) });
    });
  });

  it('refuses a request for nothing, a bad priority or minimum, and malformed grant requests', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-123456-a', {
        o: grant({ eligible: ['a'] }),
        1: ask('a', 0, {}, { eventId: 'nothing' }),
        2: ask('a', -3, {}, { eventId: 'negative' }),
        3: ask('a', 5, { priority: 'high' }, { eventId: 'priority' }),
        4: ask('a', 5, { minimum: 6 }, { eventId: 'minimum-above' }),
        5: ask('a', 5, { minimum: -1 }, { eventId: 'minimum-negative' }),
        6: ask('a', 5, { minimum: '1' }, { eventId: 'minimum-text' }),
        a: ask('a', 5, { minimum: 0, priority: -2 }),
      });
      expectObservable(events.pipe(run)).toBe('--123456-(xy)', {
        1: rejectedAs('INVALID_AMOUNT', 'nothing', 'a'),
        2: rejectedAs('INVALID_AMOUNT', 'negative', 'a'),
        3: rejectedAs('INVALID_ANSWER', 'priority', 'a'),
        4: rejectedAs('INVALID_ANSWER', 'minimum-above', 'a'),
        5: rejectedAs('INVALID_ANSWER', 'minimum-negative', 'a'),
        6: rejectedAs('INVALID_ANSWER', 'minimum-text', 'a'),
        x: closed('complete', ['bid-a'], 'resource-grant'),
        y: expect.objectContaining({ status: 'decided', winners: ['a'], value: '[{"agentId":"a","quantity":5}]' }),
      });
      const requests = cold('abcdef', {
        a: open({ protocol: 'resource-grant', roundId: 'q1', eventId: 'q1' }),
        b: grant({ roundId: 'q2', eventId: 'q2', parameters: { capacity: 0 } }),
        c: grant({ roundId: 'q3', eventId: 'q3', parameters: { strategy: 'random' } }),
        d: grant({ roundId: 'q4', eventId: 'q4', parameters: { leaseMs: -5 } }),
        e: grant({ roundId: 'q5', eventId: 'q5', parameters: { conditions: [1] } }),
        f: grant({ roundId: 'q6', eventId: 'q6', kind: 'consensus' }),
      });
      expectObservable(requests.pipe(run)).toBe('abcdef', {
        a: rejectedAs('INVALID_REQUEST', 'q1', null, 'q1'),
        b: rejectedAs('INVALID_REQUEST', 'q2', null, 'q2'),
        c: rejectedAs('INVALID_REQUEST', 'q3', null, 'q3'),
        d: rejectedAs('INVALID_REQUEST', 'q4', null, 'q4'),
        e: rejectedAs('INVALID_REQUEST', 'q5', null, 'q5'),
        f: rejectedAs('INVALID_REQUEST', 'q6', null, 'q6'),
      });
    });
  });
});
