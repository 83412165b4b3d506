import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { close, closed, open, rejectedAs, scheduler, vote } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const claimants = ['a', 'b', 'c'];
const proposal = (protocol: string, over: Parameters<typeof open>[0] = {}) => open({ protocol, kind: 'consensus', eligible: claimants, ...over });
const noChoice = (agentId: string, eventId: string, roundId = 'r1') => ({ ...vote(agentId, '', { eventId, roundId }), choice: undefined });

describe('priority-based conflict resolution', () => {
  it('gives the claim of the highest priority once every claimant has answered', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: proposal('priority', { weights: { a: 1, b: 3 } }), a: vote('a', '{"slot":1}'), b: vote('b', '{"slot":2}'), c: vote('c', '{"slot":1}') });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['vote-a', 'vote-b', 'vote-c'], 'priority'),
        y: {
          type: 'outcome',
          roundId: 'r1',
          protocol: 'priority',
          kind: 'consensus',
          eligible: claimants,
          status: 'decided',
          winners: ['b'],
          price: null,
          value: JSON.stringify('{"slot":2}'),
          reason: 'b has the highest priority 3 of 3 claimants',
          details: {
            claims: [
              { agentId: 'a', claim: '{"slot":1}', priority: 1 },
              { agentId: 'b', claim: '{"slot":2}', priority: 3 },
              { agentId: 'c', claim: '{"slot":1}', priority: 0 },
            ],
            conflict: true,
          },
        },
      });
    });
  });

  it('breaks a tie by the order of the proposal\'s claimants, not the order of answers; equal claims are no conflict', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const tie = cold('o-a-b-c', { o: proposal('priority', { eligible: ['c', 'a', 'b'], weights: { a: 2, c: 2 } }), a: vote('a', 'left'), b: vote('b', 'right'), c: vote('c', 'up') });
      expectObservable(tie.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({ winners: ['c'], value: '"up"', reason: "c has the highest priority 2 of 3 claimants (tie: first in the proposal's order)" }),
      });
      const same = cold('o-a-b-c', { o: proposal('priority', { roundId: 'r2' }), a: vote('a', 'x', { roundId: 'r2' }), b: vote('b', 'x', { roundId: 'r2' }), c: vote('c', 'x', { roundId: 'r2' }) });
      expectObservable(same.pipe(run)).toBe('------(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a'], value: '"x"', details: expect.objectContaining({ conflict: false }) }) });
    });
  });

  it('at the deadline decides among those that answered; none decides nothing', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const some = cold('o-c-a-d', { o: proposal('priority', { weights: { b: 9, a: -1 } }), c: vote('c', 'mine'), a: vote('a', 'ours'), d: close() });
      expectObservable(some.pipe(run)).toBe('------(xy)', {
        x: closed('deadline', ['vote-c', 'vote-a'], 'priority'),
        y: expect.objectContaining({ status: 'decided', winners: ['c'], value: '"mine"', details: { claims: [{ agentId: 'a', claim: 'ours', priority: -1 }, { agentId: 'c', claim: 'mine', priority: 0 }], conflict: true } }),
      });
      const none = cold('o-d', { o: proposal('priority', { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(none.pipe(run)).toBe('--(xy)', { x: closed('deadline', [], 'priority', 'r2'), y: expect.objectContaining({ status: 'no-decision', winners: [], value: null, reason: 'no claims' }) });
    });
  });

  it('refuses a vote without a claim, and a proposal without claimants or with a priority that is not finite', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-n-a', { o: proposal('priority', { eligible: ['a'] }), n: noChoice('a', 'none'), a: vote('a', '') });
      expectObservable(events.pipe(run)).toBe('--n-(xy)', {
        n: rejectedAs('INVALID_CHOICE', 'none', 'a'),
        x: closed('complete', ['vote-a'], 'priority'),
        y: expect.objectContaining({ winners: ['a'], value: '""' }),
      });
      const requests = cold('ab', { a: proposal('priority', { roundId: 'r2', eventId: 'q2', eligible: [] }), b: proposal('priority', { roundId: 'r3', eventId: 'q3', weights: { a: Number.POSITIVE_INFINITY } }) });
      expectObservable(requests.pipe(run)).toBe('ab', { a: rejectedAs('INVALID_REQUEST', 'q2', null, 'r2'), b: rejectedAs('INVALID_REQUEST', 'q3', null, 'r3') });
    });
  });
});

describe('compromise', () => {
  it('weighted-average (the default mode): the weighted average of numeric claims; every claimant that answered wins', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-c-a-b', { o: proposal('compromise', { weights: { a: 3, c: 0 } }), c: vote('c', '99'), a: vote('a', '10'), b: vote('b', '20') });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['vote-c', 'vote-a', 'vote-b'], 'compromise'),
        y: {
          type: 'outcome',
          roundId: 'r1',
          protocol: 'compromise',
          kind: 'consensus',
          eligible: claimants,
          status: 'decided',
          winners: ['a', 'b', 'c'],
          price: null,
          value: '12.5',
          reason: 'weighted average 12.5 of 3 claims',
          details: { mode: 'weighted-average', claims: { a: 10, b: 20, c: 99 }, weights: { a: 3, b: 1, c: 0 } },
        },
      });
    });
  });

  it('weighted-average at the deadline: among those that answered; no weight or no claims decide nothing', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const some = cold('o-b-d', { o: proposal('compromise', { parameters: { mode: 'weighted-average' } }), b: vote('b', '-4'), d: close() });
      expectObservable(some.pipe(run)).toBe('----(xy)', { x: closed('deadline', ['vote-b'], 'compromise'), y: expect.objectContaining({ status: 'decided', winners: ['b'], value: '-4' }) });
      const weightless = cold('o-b-d', { o: proposal('compromise', { roundId: 'r2', weights: { b: 0 } }), b: vote('b', '5', { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(weightless.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'no-decision', reason: 'the claimants that answered have no weight' }) });
      const none = cold('o-d', { o: proposal('compromise', { roundId: 'r3' }), d: close('deadline', 'r3') });
      expectObservable(none.pipe(run)).toBe('--(xy)', { x: closed('deadline', [], 'compromise', 'r3'), y: expect.objectContaining({ status: 'no-decision', reason: 'no claims' }) });
    });
  });

  it('time-sharing: splits the period by weight in the proposal\'s order; the ms left by rounding go to the first claimants', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const even = cold('o-c-b-a', { o: proposal('compromise', { parameters: { mode: 'time-sharing', periodMs: 1000 } }), c: vote('c', 'gpu'), b: vote('b', 'gpu'), a: vote('a', '{"need":"gpu"}') });
      expectObservable(even.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['vote-c', 'vote-b', 'vote-a'], 'compromise'),
        y: expect.objectContaining({
          status: 'decided',
          winners: ['a', 'b', 'c'],
          value: JSON.stringify([
            { agentId: 'a', startMs: 0, endMs: 334 },
            { agentId: 'b', startMs: 334, endMs: 667 },
            { agentId: 'c', startMs: 667, endMs: 1000 },
          ]),
          reason: '1000 ms shared by 3 claimants in proportion to their weights',
          details: { mode: 'time-sharing', periodMs: 1000, claims: { a: '{"need":"gpu"}', b: 'gpu', c: 'gpu' }, weights: { a: 1, b: 1, c: 1 } },
        }),
      });
      // c has weight 0: an empty slice, and none of the ms left by rounding.
      const weighted = cold('o-a-b-c', {
        o: proposal('compromise', { roundId: 'r2', eligible: ['c', 'a', 'b'], weights: { a: 2, c: 0 }, parameters: { mode: 'time-sharing', periodMs: 100 } }),
        a: vote('a', 'x', { roundId: 'r2' }),
        b: vote('b', 'y', { roundId: 'r2' }),
        c: vote('c', 'z', { roundId: 'r2' }),
      });
      expectObservable(weighted.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({
          winners: ['a', 'b'],
          value: JSON.stringify([
            { agentId: 'c', startMs: 0, endMs: 0 },
            { agentId: 'a', startMs: 0, endMs: 67 },
            { agentId: 'b', startMs: 67, endMs: 100 },
          ]),
        }),
      });
    });
  });

  it('time-sharing at the deadline: the whole period goes to those that answered', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-b-d', { o: proposal('compromise', { parameters: { mode: 'time-sharing', periodMs: 60_000 } }), b: vote('b', 'x'), d: close() });
      expectObservable(events.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['vote-b'], 'compromise'),
        y: expect.objectContaining({ status: 'decided', winners: ['b'], value: '[{"agentId":"b","startMs":0,"endMs":60000}]' }),
      });
      const weightless = cold('o-b-d', { o: proposal('compromise', { roundId: 'r2', weights: { b: 0 }, parameters: { mode: 'time-sharing', periodMs: 10 } }), b: vote('b', 'x', { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(weightless.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'no-decision', reason: 'the claimants that answered have no weight' }) });
      const none = cold('o-d', { o: proposal('compromise', { roundId: 'r3', parameters: { mode: 'time-sharing', periodMs: 10 } }), d: close('deadline', 'r3') });
      expectObservable(none.pipe(run)).toBe('--(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'no-decision', reason: 'no claims' }) });
    });
  });

  it('refuses a non-numeric claim to average, a vote without a claim, and malformed proposals', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const average = cold('o-12-a', { o: proposal('compromise', { eligible: ['a'] }), 1: vote('a', 'lots', { eventId: 'word' }), 2: noChoice('a', 'none'), a: vote('a', '3') });
      expectObservable(average.pipe(run)).toBe('--12-(xy)', {
        1: rejectedAs('INVALID_CHOICE', 'word', 'a'),
        2: rejectedAs('INVALID_CHOICE', 'none', 'a'),
        x: expect.anything(),
        y: expect.objectContaining({ value: '3' }),
      });
      const sharing = cold('o-1-a', { o: proposal('compromise', { roundId: 'r2', eligible: ['a'], parameters: { mode: 'time-sharing', periodMs: 5 } }), 1: noChoice('a', 'none', 'r2'), a: vote('a', 'lots', { roundId: 'r2' }) });
      expectObservable(sharing.pipe(run)).toBe('--1-(xy)', { 1: rejectedAs('INVALID_CHOICE', 'none', 'a', 'r2'), x: expect.anything(), y: expect.objectContaining({ value: '[{"agentId":"a","startMs":0,"endMs":5}]' }) });
      const requests = cold('abcdef', {
        a: proposal('compromise', { roundId: 'q1', eventId: 'q1', eligible: [] }),
        b: proposal('compromise', { roundId: 'q2', eventId: 'q2', parameters: { mode: 'coin-flip' } }),
        c: proposal('compromise', { roundId: 'q3', eventId: 'q3', parameters: { mode: 'time-sharing' } }),
        d: proposal('compromise', { roundId: 'q4', eventId: 'q4', parameters: { mode: 'time-sharing', periodMs: 1.5 } }),
        e: proposal('compromise', { roundId: 'q5', eventId: 'q5', parameters: { mode: 'time-sharing', periodMs: 0 } }),
        f: proposal('compromise', { roundId: 'q6', eventId: 'q6', weights: { a: -1 } }),
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
