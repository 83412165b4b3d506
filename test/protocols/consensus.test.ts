import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { bid, close, closed, open, rejectedAs, scheduler, vote } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const voters = ['a', 'b', 'c'];
const proposal = (protocol: string, over = {}) => open({ protocol, kind: 'consensus', eligible: voters, options: ['small', 'large'], ...over });

describe('simple majority', () => {
  it('decides when every voter has voted; more than half of the votes cast wins', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: proposal('majority'), a: vote('a', 'large'), b: vote('b', 'small'), c: vote('c', 'large') });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['vote-a', 'vote-b', 'vote-c'], 'majority'),
        y: expect.objectContaining({ status: 'decided', value: '"large"', reason: '"large" has 2 of 3 votes', details: { totals: { small: 1, large: 2 }, cast: 3, voters: 3 } }),
      });
    });
  });

  it('a voter that never votes shrinks the electorate: the round ends at its deadline', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-d', { o: proposal('majority'), a: vote('a', 'small'), b: vote('b', 'small'), d: close() });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('deadline', ['vote-a', 'vote-b'], 'majority'),
        y: expect.objectContaining({ status: 'decided', value: '"small"' }),
      });
    });
  });

  it('a tie decides nothing; a bad choice or an outsider is refused', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-x-m-b-d', { o: proposal('majority'), a: vote('a', 'small'), x: vote('c', 'medium', { eventId: 'bad' }), m: vote('mallory', 'large', { eventId: 'out' }), b: vote('b', 'large'), d: close() });
      expectObservable(events.pipe(run)).toBe('----x-m---(zy)', {
        x: rejectedAs('INVALID_CHOICE', 'bad', 'c'),
        m: rejectedAs('NOT_ELIGIBLE', 'out', 'mallory'),
        z: closed('deadline', ['vote-a', 'vote-b'], 'majority'),
        y: expect.objectContaining({ status: 'no-decision', value: null, reason: 'no choice has more than half of 2 votes' }),
      });
    });
  });

  it('without options the choices are yes and no; a bid is refused', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-x-b-c', { o: proposal('majority', { options: [] }), a: vote('a', 'yes'), x: bid('b', 1, { eventId: 'bid' }), b: vote('b', 'no'), c: vote('c', 'yes') });
      expectObservable(events.pipe(run)).toBe('----x---(zy)', {
        x: rejectedAs('WRONG_ANSWER_KIND', 'bid', 'b'),
        z: expect.anything(),
        y: expect.objectContaining({ status: 'decided', value: '"yes"' }),
      });
    });
  });

  it('refuses a proposal that names no voters', () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('o', { o: proposal('majority', { eligible: [] }) }).pipe(run)).toBe('o', { o: rejectedAs('INVALID_REQUEST', 'req-r1') });
    });
  });
});

describe('weighted voting', () => {
  it('counts each vote with its voter\'s weight from the proposal', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: proposal('weighted', { weights: { a: 3, b: 1, c: 1 } }), a: vote('a', 'large'), b: vote('b', 'small'), c: vote('c', 'small') });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({ status: 'decided', value: '"large"', reason: '"large" has 3 of 5 weight' }),
      });
    });
  });
});

describe('unanimous', () => {
  it('decides when all votes agree, and closes early once two differ', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const agree = cold('o-a-b-c', { o: proposal('unanimous'), a: vote('a', 'small'), b: vote('b', 'small'), c: vote('c', 'small') });
      expectObservable(agree.pipe(run)).toBe('------(xy)', { x: expect.anything(), y: expect.objectContaining({ status: 'decided', value: '"small"' }) });
      const differ = cold('o-a-b---c', { o: proposal('unanimous', { roundId: 'r2' }), a: vote('a', 'small', { roundId: 'r2' }), b: vote('b', 'large', { roundId: 'r2' }), c: vote('c', 'small', { roundId: 'r2', eventId: 'late' }) });
      expectObservable(differ.pipe(run)).toBe('----(xy)c', {
        x: closed('complete', ['vote-a', 'vote-b'], 'unanimous', 'r2'),
        y: expect.objectContaining({ status: 'no-decision', reason: 'votes differ' }),
        c: rejectedAs('ROUND_CLOSED', 'late', 'c', 'r2'),
      });
    });
  });
});

describe('quorum', () => {
  const five = ['a', 'b', 'c', 'd', 'e'];
  it('decides only if enough of the named voters voted; a missing voter still counts toward the quorum', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const short = cold('o-a-b-d', { o: proposal('quorum', { eligible: five, quorum: 0.6 }), a: vote('a', 'small'), b: vote('b', 'small'), d: close() });
      expectObservable(short.pipe(run)).toBe('------(xy)', {
        x: expect.anything(),
        y: expect.objectContaining({ status: 'no-decision', reason: 'quorum not met: 2 of 5 voted, 3 needed' }),
      });
      const met = cold('o-a-b-c-d', { o: proposal('quorum', { roundId: 'r2', eligible: five, quorum: 0.6 }), a: vote('a', 'small', { roundId: 'r2' }), b: vote('b', 'large', { roundId: 'r2' }), c: vote('c', 'small', { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(met.pipe(run)).toBe('--------(xy)', {
        x: closed('deadline', ['vote-a', 'vote-b', 'vote-c'], 'quorum', 'r2'),
        y: expect.objectContaining({ status: 'decided', value: '"small"', details: expect.objectContaining({ needed: 3 }) }),
      });
    });
  });

  it('refuses a quorum that is not a fraction', () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('o', { o: proposal('quorum', { quorum: 1.5 }) }).pipe(run)).toBe('o', { o: rejectedAs('INVALID_REQUEST', 'req-r1') });
    });
  });
});
