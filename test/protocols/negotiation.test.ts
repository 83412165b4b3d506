import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { close, closed, open, rejectedAs, scheduler, vote } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const voters = ['a', 'b', 'c'];
const proposal = (over: Parameters<typeof open>[0] = {}) => open({ protocol: 'weighted-mean', kind: 'consensus', eligible: voters, ...over });

describe('weighted-mean negotiation', () => {
  it('decides the weighted mean of the positions once every voter has voted', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: proposal({ weights: { a: 2 } }), a: vote('a', '10'), b: vote('b', '20'), c: vote('c', '40') });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['vote-a', 'vote-b', 'vote-c'], 'weighted-mean'),
        y: {
          type: 'outcome',
          roundId: 'r1',
          protocol: 'weighted-mean',
          kind: 'consensus',
          eligible: voters,
          status: 'decided',
          winners: [],
          price: null,
          value: '20',
          reason: 'weighted mean 20 of 3 positions',
          details: { positions: { a: 10, b: 20, c: 40 }, weights: { a: 2, b: 1, c: 1 }, mean: 20, clamped: false },
        },
      });
    });
  });

  it('clamps the mean into [min, max]; either bound may be left out', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const above = cold('o-a-b-c', { o: proposal({ parameters: { min: 0, max: 15 } }), a: vote('a', '10'), b: vote('b', '20'), c: vote('c', '30') });
      expectObservable(above.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({ value: '15', reason: 'weighted mean 20 of 3 positions, clamped to 15', details: expect.objectContaining({ mean: 20, clamped: true, min: 0, max: 15 }) }),
      });
      const below = cold('o-a-b-c', { o: proposal({ roundId: 'r2', parameters: { min: -1 } }), a: vote('a', '-2.5', { roundId: 'r2' }), b: vote('b', '-.5', { roundId: 'r2' }), c: vote('c', '-3e0', { roundId: 'r2' }) });
      expectObservable(below.pipe(run)).toBe('------(xy)', { x: expect.anything(), y: expect.objectContaining({ value: '-1', details: expect.objectContaining({ mean: -2, clamped: true }) }) });
      const inside = cold('o-a-b-c', { o: proposal({ roundId: 'r3', parameters: { max: 100 } }), a: vote('a', '1', { roundId: 'r3' }), b: vote('b', '2', { roundId: 'r3' }), c: vote('c', '+6', { roundId: 'r3' }) });
      expectObservable(inside.pipe(run)).toBe('------(xy)', { x: expect.anything(), y: expect.objectContaining({ value: '3', details: expect.objectContaining({ mean: 3, clamped: false }) }) });
    });
  });

  it('a voter of weight 0 or less counts nothing; at the deadline decides among the votes cast', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-d', { o: proposal({ weights: { a: 0, b: -1, c: 3 } }), a: vote('a', '1000'), b: vote('b', '-1000'), d: close() });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('deadline', ['vote-a', 'vote-b'], 'weighted-mean'),
        y: expect.objectContaining({ status: 'no-decision', value: null, reason: 'no vote with a weight above 0' }),
      });
      const cast = cold('o-a-c-d', { o: proposal({ roundId: 'r2', weights: { a: 0, c: 3 } }), a: vote('a', '1000', { roundId: 'r2' }), c: vote('c', '7', { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(cast.pipe(run)).toBe('------(xy)', {
        x: closed('deadline', ['vote-a', 'vote-c'], 'weighted-mean', 'r2'),
        y: expect.objectContaining({ status: 'decided', value: '7', details: { positions: { a: 1000, c: 7 }, weights: { a: 0, c: 3 }, mean: 7, clamped: false } }),
      });
      const none = cold('o-d', { o: proposal({ roundId: 'r3' }), d: close('deadline', 'r3') });
      expectObservable(none.pipe(run)).toBe('--(xy)', { x: closed('deadline', [], 'weighted-mean', 'r3'), y: expect.objectContaining({ status: 'no-decision', reason: 'no valid votes' }) });
    });
  });

  it('refuses a position that is not a decimal number', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-1234567-abc', {
        o: proposal(),
        1: vote('a', 'ten', { eventId: 'word' }),
        2: vote('a', '', { eventId: 'empty' }),
        3: vote('a', '0x10', { eventId: 'hex' }),
        4: vote('a', '1e999', { eventId: 'infinite' }),
        5: vote('a', ' 5', { eventId: 'space' }),
        6: vote('a', 'NaN', { eventId: 'nan' }),
        7: { ...vote('a', 'x', { eventId: 'none' }), choice: undefined },
        a: vote('a', '1.5'),
        b: vote('b', '2.5'),
        c: vote('c', '5'),
      });
      expectObservable(events.pipe(run)).toBe('--1234567---(xy)', {
        1: rejectedAs('INVALID_CHOICE', 'word', 'a'),
        2: rejectedAs('INVALID_CHOICE', 'empty', 'a'),
        3: rejectedAs('INVALID_CHOICE', 'hex', 'a'),
        4: rejectedAs('INVALID_CHOICE', 'infinite', 'a'),
        5: rejectedAs('INVALID_CHOICE', 'space', 'a'),
        6: rejectedAs('INVALID_CHOICE', 'nan', 'a'),
        7: rejectedAs('INVALID_CHOICE', 'none', 'a'),
        x: closed('complete', ['vote-a', 'vote-b', 'vote-c'], 'weighted-mean'),
        y: expect.objectContaining({ value: '3' }),
      });
    });
  });

  it('refuses a proposal without voters, or with bounds that are not finite or the wrong way round', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('abcde', {
        a: proposal({ eventId: 'q1', eligible: [] }),
        b: proposal({ roundId: 'r2', eventId: 'q2', parameters: { min: 5, max: 4 } }),
        c: proposal({ roundId: 'r3', eventId: 'q3', parameters: { max: Number.POSITIVE_INFINITY } }),
        d: proposal({ roundId: 'r4', eventId: 'q4', parameters: { min: '0' } }),
        e: proposal({ roundId: 'r5', eventId: 'q5', weights: { a: Number.NaN } }),
      });
      expectObservable(events.pipe(run)).toBe('abcde', {
        a: rejectedAs('INVALID_REQUEST', 'q1'),
        b: rejectedAs('INVALID_REQUEST', 'q2', null, 'r2'),
        c: rejectedAs('INVALID_REQUEST', 'q3', null, 'r3'),
        d: rejectedAs('INVALID_REQUEST', 'q4', null, 'r4'),
        e: rejectedAs('INVALID_REQUEST', 'q5', null, 'r5'),
      });
    });
  });
});
