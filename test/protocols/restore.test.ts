import { describe, expect, it } from 'vitest';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { applyRoundEvent, emptyRounds, restoreRound, snapshotRound, type RoundSnapshot } from '../../src/protocols/roundsInternals.ts';
import { bid, open } from './builders.ts';

const protocols = defaultProtocols();
const lookup = (name: string) => protocols.get(name);
const request = open({ eligible: ['a', 'b', 'c'] });
const snap = (over: Partial<RoundSnapshot>): RoundSnapshot => ({ roundId: 'r1', open: request, protocol: 'first-price', counted: [], pending: [], closed: false, ...over });

describe('taking a round over from its changelog', () => {
  it('merges snapshots in any order: later ones add what earlier ones lacked', () => {
    const rounds = emptyRounds();
    expect(restoreRound(rounds, snap({}), lookup)).toEqual([]);
    expect(restoreRound(rounds, snap({ counted: [bid('a', 10)] }), lookup)).toEqual([]);
    expect(restoreRound(rounds, snap({}), lookup)).toEqual([]); // an older snapshot read late removes nothing
    expect(snapshotRound(rounds, 'r1').counted.map((a) => a.agentId)).toEqual(['a']);
  });

  it('merges with answers read live, and decides when the merge completes the round', () => {
    const rounds = emptyRounds();
    expect(applyRoundEvent(rounds, bid('b', 30), lookup)).toEqual([]); // before its round is known: waits
    expect(restoreRound(rounds, snap({ counted: [bid('a', 10)] }), lookup)).toEqual([]);
    expect(applyRoundEvent(rounds, bid('c', 20), lookup)).toEqual([
      { type: 'closed', roundId: 'r1', protocol: 'first-price', cause: 'complete', counted: ['bid-a', 'bid-b', 'bid-c'], stage: 0, final: true },
      expect.objectContaining({ type: 'outcome', winners: ['b'], price: 30 }),
    ]);
    const other = emptyRounds();
    applyRoundEvent(other, request, lookup);
    applyRoundEvent(other, bid('b', 30), lookup);
    applyRoundEvent(other, bid('c', 20), lookup);
    expect(restoreRound(other, snap({ counted: [bid('a', 10)] }), lookup)).toEqual([
      expect.objectContaining({ type: 'closed', cause: 'complete' }),
      expect.objectContaining({ type: 'outcome', winners: ['b'] }),
    ]);
  });

  it('applies the answers a snapshot held waiting for a request this coordinator has read', () => {
    const rounds = emptyRounds();
    applyRoundEvent(rounds, request, lookup);
    expect(restoreRound(rounds, snap({ open: null, protocol: null, pending: [bid('a', 1), bid('b', 3), bid('c', 2)] }), lookup)).toEqual([
      expect.objectContaining({ type: 'closed', cause: 'complete', counted: ['bid-a', 'bid-b', 'bid-c'] }),
      expect.objectContaining({ type: 'outcome', winners: ['b'], price: 3 }),
    ]);
  });

  it('does not handle twice an answer it already took or refused (its own changelog read back)', () => {
    const rounds = emptyRounds();
    applyRoundEvent(rounds, bid('x', 1, { eventId: 'early' }), lookup); // before the request: waits
    const before = snapshotRound(rounds, 'r1');
    applyRoundEvent(rounds, open({ eligible: ['a', 'b'] }), lookup); // opens; "early" is refused (not eligible)
    expect(restoreRound(rounds, before, lookup)).toEqual([]);
  });

  it('a round decided elsewhere stays closed: later answers are refused', () => {
    const rounds = emptyRounds();
    applyRoundEvent(rounds, request, lookup);
    expect(restoreRound(rounds, snap({ counted: [bid('a', 10)], closed: true }), lookup)).toEqual([]);
    expect(applyRoundEvent(rounds, bid('b', 5, { eventId: 'late' }), lookup)).toEqual([expect.objectContaining({ type: 'rejected', reasonCode: 'ROUND_CLOSED', eventId: 'late' })]);
  });
});
