import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { close, closed, open, rejectedAs, scheduler, vote } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const participants = ['a', 'b', 'c'];

describe('barrier synchronisation', () => {
  it('releases as soon as every participant has arrived', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: open({ protocol: 'barrier', kind: 'consensus', eligible: participants }), a: vote('a', 'arrived'), b: vote('b', 'arrived'), c: vote('c', 'arrived') });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['vote-a', 'vote-b', 'vote-c'], 'barrier'),
        y: expect.objectContaining({ status: 'decided', value: '"released"', reason: 'all 3 participants arrived' }),
      });
    });
  });

  it('at its deadline names who did not arrive; any other answer is refused', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-x-d', { o: open({ protocol: 'barrier', kind: 'consensus', eligible: participants }), a: vote('a', 'arrived'), x: vote('b', 'late', { eventId: 'bad' }), d: close() });
      expectObservable(events.pipe(run)).toBe('----x-(zy)', {
        x: rejectedAs('INVALID_CHOICE', 'bad', 'b'),
        z: closed('deadline', ['vote-a'], 'barrier'),
        y: expect.objectContaining({ status: 'no-decision', reason: '2 of 3 did not arrive: b, c', details: { arrived: ['a'], missing: ['b', 'c'] } }),
      });
    });
  });
});

describe('leader election', () => {
  it('elects the candidate with the most votes', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: open({ protocol: 'leader-election', kind: 'consensus', eligible: participants }), a: vote('a', 'c'), b: vote('b', 'c'), c: vote('c', 'a') });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({ status: 'decided', winners: ['c'], value: '"c"', reason: 'c has 2 of 3 votes' }),
      });
    });
  });

  it('breaks a tie by the candidate order of the proposal (lowest id when it names none); refuses non-candidates', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const ordered = cold('o-a-b', { o: open({ protocol: 'leader-election', kind: 'consensus', eligible: ['a', 'b'], options: ['b', 'a'] }), a: vote('a', 'a'), b: vote('b', 'b') });
      expectObservable(ordered.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['b'], reason: 'b has 1 of 2 votes (tie: first in candidate order)' }) });
      const implicit = cold('o-x-a-b', { o: open({ roundId: 'r2', protocol: 'leader-election', kind: 'consensus', eligible: ['b', 'a'] }), x: vote('a', 'zed', { roundId: 'r2', eventId: 'bad' }), a: vote('a', 'b', { roundId: 'r2' }), b: vote('b', 'a', { roundId: 'r2' }) });
      expectObservable(implicit.pipe(run)).toBe('--r---(zy)', { r: rejectedAs('INVALID_CHOICE', 'bad', 'a', 'r2'), z: expect.anything(), y: expect.objectContaining({ winners: ['a'] }) });
    });
  });
});
