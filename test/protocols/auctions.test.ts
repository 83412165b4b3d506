import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import { bid, close, closed, open, rejectedAs, scheduler, vote } from './builders.ts';

const protocols = defaultProtocols();
const run = coordinate((name) => protocols.get(name));
const bidders = ['a', 'b', 'c'];

describe('sealed-bid first-price auction', () => {
  it('closes when every named bidder has bid; the highest bid wins and pays its bid', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: open({ eligible: bidders }), a: bid('a', 10), b: bid('b', 30), c: bid('c', 20) });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['bid-a', 'bid-b', 'bid-c']),
        y: expect.objectContaining({ type: 'outcome', status: 'decided', winners: ['b'], price: 30, reason: 'highest bid 30' }),
      });
    });
  });

  it('with anyone invited, waits for its deadline; no bids decide nothing', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-d', { o: open(), a: bid('a', 5), d: close() });
      expectObservable(events.pipe(run)).toBe('----(xy)', {
        x: closed('deadline', ['bid-a']),
        y: expect.objectContaining({ status: 'decided', winners: ['a'], price: 5 }),
      });
      const empty = cold('o-d', { o: open({ roundId: 'r2', eventId: 'req-r2' }), d: close('deadline', 'r2') });
      expectObservable(empty.pipe(run)).toBe('--(xy)', {
        x: closed('deadline', [], 'first-price', 'r2'),
        y: expect.objectContaining({ roundId: 'r2', status: 'no-decision', winners: [], price: null, reason: 'no valid bids' }),
      });
    });
  });

  it('breaks ties by the earlier bid, then by the lower agent id', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const earlier = cold('o-a-b-c', { o: open({ eligible: bidders }), a: bid('a', 10, { eventTime: 3_000 }), b: bid('b', 30, { eventTime: 2_500 }), c: bid('c', 30, { eventTime: 2_000 }) });
      expectObservable(earlier.pipe(run)).toBe('------(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['c'], price: 30 }) });
      const sameTime = cold('o-a-b-c', { o: open({ roundId: 'r3', eligible: bidders }), a: bid('c', 7, { roundId: 'r3' }), b: bid('a', 7, { roundId: 'r3' }), c: bid('b', 1, { roundId: 'r3' }) });
      expectObservable(sameTime.pipe(run)).toBe('------(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a'] }) });
    });
  });

  it('rejects bad bids with a reason and keeps the round going', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('uo-1234567-a-b-9', {
        u: bid('a', 8, { roundId: 'nope', eventId: 'unknown' }),
        o: open({ eligible: ['a', 'b'], reservePrice: 5 }),
        1: bid('a', 3, { eventId: 'low' }),
        2: bid('a', Number.NaN, { eventId: 'nan' }),
        3: bid('a', -1, { eventId: 'neg' }),
        4: bid('a', 2e12, { eventId: 'absurd' }),
        5: bid('mallory', 50, { eventId: 'outsider' }),
        6: { type: 'tick', now: 20_000 } as const,
        7: vote('a', 'yes', { eventId: 'vote' }),
        a: bid('a', 8),
        b: bid('a', 9, { eventId: 'again' }),
        9: bid('b', 6),
      });
      // Accepted bids emit nothing; the second bid of "a" is refused (the first counts).
      // A bid for a round nobody opened waits, and is refused once log time is past its grace period.
      expectObservable(events.pipe(run)).toBe('---1234567---b-(xy)', {
        1: rejectedAs('BELOW_RESERVE', 'low', 'a'),
        2: rejectedAs('INVALID_AMOUNT', 'nan', 'a'),
        3: rejectedAs('INVALID_AMOUNT', 'neg', 'a'),
        4: rejectedAs('INVALID_AMOUNT', 'absurd', 'a'),
        5: rejectedAs('NOT_ELIGIBLE', 'outsider', 'mallory'),
        6: rejectedAs('UNKNOWN_ROUND', 'unknown', 'a', 'nope'),
        7: rejectedAs('WRONG_ANSWER_KIND', 'vote', 'a'),
        b: rejectedAs('DUPLICATE_ANSWER', 'again', 'a'),
        x: closed('complete', ['bid-a', 'bid-b']),
        y: expect.objectContaining({ winners: ['a'], price: 8 }),
      });
    });
  });

  it('refuses late bids, and a deadline after the decision changes nothing', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-d-c', { o: open({ eligible: ['a', 'b'] }), a: bid('a', 1), b: bid('b', 2), d: close(), c: bid('c', 9, { eventId: 'late' }) });
      expectObservable(events.pipe(run)).toBe('----(xy)c', {
        x: closed('complete', ['bid-a', 'bid-b']),
        y: expect.objectContaining({ winners: ['b'] }),
        c: rejectedAs('ROUND_CLOSED', 'late', 'c'),
      });
    });
  });
});

describe('sealed-bid second-price (Vickrey) auction', () => {
  it('the winner pays the second-highest bid', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('o-a-b-c', { o: open({ protocol: 'vickrey', eligible: bidders }), a: bid('a', 10), b: bid('b', 30), c: bid('c', 20) });
      expectObservable(events.pipe(run)).toBe('------(xy)', {
        x: closed('complete', ['bid-a', 'bid-b', 'bid-c'], 'vickrey'),
        y: expect.objectContaining({ status: 'decided', winners: ['b'], price: 20, reason: 'highest bid 30 wins, pays second-highest bid 20' }),
      });
    });
  });

  it('a single bid pays the reserve (0 without one); equal top bids pay that amount', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const single = cold('o-a-d', { o: open({ protocol: 'vickrey', reservePrice: 4 }), a: bid('a', 10), d: close() });
      expectObservable(single.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a'], price: 4 }) });
      const noReserve = cold('o-a-d', { o: open({ roundId: 'r2', protocol: 'vickrey' }), a: bid('a', 10, { roundId: 'r2' }), d: close('deadline', 'r2') });
      expectObservable(noReserve.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a'], price: 0 }) });
      const tie = cold('o-a-b', { o: open({ roundId: 'r3', protocol: 'vickrey', eligible: ['a', 'b'] }), a: bid('b', 12, { roundId: 'r3' }), b: bid('a', 12, { roundId: 'r3' }) });
      expectObservable(tie.pipe(run)).toBe('----(xy)', { x: expect.anything(), y: expect.objectContaining({ winners: ['a'], price: 12 }) });
    });
  });
});

describe('requests', () => {
  it('applies answers that came before their request once it arrives', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('a-b-o', { a: bid('a', 4), b: bid('b', 6), o: open({ eligible: ['a', 'b'] }) });
      expectObservable(events.pipe(run)).toBe('----(xy)', { x: closed('complete', ['bid-a', 'bid-b']), y: expect.objectContaining({ winners: ['b'], price: 6 }) });
    });
  });

  it('refuses an unknown protocol, a reused round id, and a proposal sent to an auction', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('abc', {
        a: open({ protocol: 'nonesuch', eventId: 'q1' }),
        b: open({ roundId: 'r9', eventId: 'q2', kind: 'consensus', protocol: 'vickrey' }),
        c: open({ roundId: 'r9', eventId: 'q3', protocol: 'vickrey' }),
      });
      expectObservable(events.pipe(run)).toBe('ab', {
        a: rejectedAs('UNKNOWN_PROTOCOL', 'q1'),
        b: rejectedAs('INVALID_REQUEST', 'q2', null, 'r9'),
      });
      const twice = cold('ab', { a: open({ roundId: 'r8', eventId: 'q4' }), b: open({ roundId: 'r8', eventId: 'q5' }) });
      expectObservable(twice.pipe(run)).toBe('-b', { b: rejectedAs('DUPLICATE_ROUND', 'q5', null, 'r8') });
    });
  });
});
