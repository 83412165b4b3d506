import { describe, expect, it } from 'vitest';
import { allAnswered, answeredBy, countAnswer, nameSet } from '../../src/protocols/answered.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { applyRoundEvent, emptyRounds, maxAnswersPerRound } from '../../src/protocols/roundsInternals.ts';
import type { RoundAnswer, RoundDecision } from '../../src/protocols/types.ts';
import { bid, open, vote } from './builders.ts';

const protocols = defaultProtocols();
const lookup = (name: string) => protocols.get(name);
const names = (n: number, prefix = 'agent') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('who has answered', () => {
  it('every name, counted once, whatever the order; repeated names count once', () => {
    const counted: RoundAnswer[] = [];
    expect(allAnswered(['a', 'b', 'a'], counted)).toBe(false);
    countAnswer(counted, bid('b', 1));
    expect(allAnswered(['a', 'b', 'a'], counted)).toBe(false);
    countAnswer(counted, bid('a', 1));
    expect(allAnswered(['a', 'b', 'a'], counted)).toBe(true);
    expect(allAnswered([], counted)).toBe(false);
    expect(allAnswered(['a', 'c'], counted)).toBe(false);
    expect(nameSet(['x', 'x', 'y']).size).toBe(2);
  });

  it('follows answers put in the array some other way (restored, or changed in place)', () => {
    const counted = [bid('a', 1)];
    expect(answeredBy(counted).has('a')).toBe(true);
    counted.push(bid('b', 1));
    expect(answeredBy(counted).has('b')).toBe(true);
    counted.splice(0, 2, bid('c', 1));
    expect([...answeredBy(counted)]).toEqual(['c']);
  });
});

describe('a round naming thousands of agents', () => {
  it('counts 10,000 named bidders, refuses a second bid and an outsider, and closes at the last bid', () => {
    const rounds = emptyRounds();
    const bidders = names(10_000);
    expect(applyRoundEvent(rounds, open({ eligible: bidders }), lookup)).toEqual([]);
    const decisions: RoundDecision[] = [];
    bidders.forEach((id, i) => {
      if (i === 5_000) {
        decisions.push(...applyRoundEvent(rounds, bid(id, 1, { eventId: 'again-0' , agentId: bidders[0]! }), lookup));
        decisions.push(...applyRoundEvent(rounds, bid('mallory', 9, { eventId: 'outsider' }), lookup));
      }
      decisions.push(...applyRoundEvent(rounds, bid(id, i === 7_777 ? 500 : i % 100), lookup));
    });
    expect(decisions.filter((d) => d.type === 'rejected').map((d) => d.type === 'rejected' && d.reasonCode)).toEqual(['DUPLICATE_ANSWER', 'NOT_ELIGIBLE']);
    const closedAt = decisions.findIndex((d) => d.type === 'closed');
    expect(closedAt).toBe(decisions.length - 2);
    expect(decisions[closedAt]).toMatchObject({ cause: 'complete' });
    expect(decisions.at(-1)).toMatchObject({ type: 'outcome', status: 'decided', winners: ['agent-7777'], price: 500 });
  });

  it('a consensus of 10,000 named voters closes at the last vote', () => {
    const rounds = emptyRounds();
    const voters = names(10_000, 'voter');
    applyRoundEvent(rounds, open({ protocol: 'majority', kind: 'consensus', eligible: voters, options: ['yes', 'no'] }), lookup);
    const decisions = voters.flatMap((id, i) => applyRoundEvent(rounds, vote(id, i % 3 === 0 ? 'no' : 'yes'), lookup));
    expect(decisions.map((d) => d.type)).toEqual(['closed', 'outcome']);
    expect(decisions[1]).toMatchObject({ status: 'decided', value: '"yes"' });
  });

  it(`refuses a request naming more than ${maxAnswersPerRound.toLocaleString('en')} agents, and answers past that many in an open round`, () => {
    const rounds = emptyRounds();
    expect(applyRoundEvent(rounds, open({ eligible: names(maxAnswersPerRound + 1) }), lookup)).toEqual([expect.objectContaining({ type: 'rejected', reasonCode: 'INVALID_REQUEST' })]);
    const duplicates = [...names(maxAnswersPerRound), ...names(maxAnswersPerRound)];
    expect(applyRoundEvent(rounds, open({ roundId: 'r2', eventId: 'req-r2', eligible: duplicates }), lookup)).toEqual([]);

    applyRoundEvent(rounds, open({ roundId: 'r3', eventId: 'req-r3' }), lookup);
    const answers = names(maxAnswersPerRound + 2).flatMap((id) => applyRoundEvent(rounds, bid(id, 1, { roundId: 'r3', eventId: `r3-${id}` }), lookup));
    expect(answers).toEqual([
      expect.objectContaining({ type: 'rejected', reasonCode: 'LIMIT_EXCEEDED', eventId: `r3-agent-${maxAnswersPerRound}` }),
      expect.objectContaining({ type: 'rejected', reasonCode: 'LIMIT_EXCEEDED', eventId: `r3-agent-${maxAnswersPerRound + 1}` }),
    ]);
    expect(rounds.byId.get('r3')!.counted).toHaveLength(maxAnswersPerRound);
  });
});
