import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromRoundState, install, snapshotOf, toRoundState } from '../../src/coordinator/changelog.ts';
import { RoundLane } from '../../src/coordinator/roundLane.ts';
import { Outputs } from '../../src/engine/outputs.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { PackedEventIds } from '../../src/protocols/eventIds.ts';
import { emptyRounds } from '../../src/protocols/roundsInternals.ts';
import { bid, open } from '../protocols/builders.ts';

const protocols = defaultProtocols();
const lookup = (name: string) => protocols.get(name);

describe('a partition\'s rounds (RoundLane)', () => {
  it('decides through the coordinate() operator and marks what changed for the changelog', () => {
    const lane = new RoundLane(lookup);
    expect(lane.apply(open({ eligible: ['a', 'b'] }))).toEqual([]);
    expect(lane.apply(bid('a', 3))).toEqual([]);
    lane.logTime = 5_000;
    const decided = lane.apply(bid('b', 7));
    expect(decided.map((d) => d.type)).toEqual(['closed', 'outcome']);
    expect(decided[1]).toMatchObject({ winners: ['b'], price: 7 });
    expect([...lane.dirty]).toEqual(['r1']);
    expect(lane.closedAt.get('r1')).toBe(5_000);
  });

  it('a closed round leaves after the grace period of log time, with a tombstone, and no longer holds the changelog start back', () => {
    const lane = new RoundLane(lookup);
    lane.apply(open({ eligible: ['a'] }));
    lane.logTime = 1_000;
    lane.apply(bid('a', 1));
    lane.apply(open({ roundId: 'r2', eventId: 'req-r2', eligible: ['a'] }));
    lane.stateOffsets.set('r1', 4);
    lane.stateOffsets.set('r2', 9);
    lane.changelogEnd = 10;
    expect(lane.liveStart()).toBe(4);
    lane.logTime = 1_000 + 60_000;
    lane.expire(60_000);
    expect(lane.rounds.byId.has('r1')).toBe(true); // exactly at the end of the grace period it still stays
    lane.logTime += 1;
    lane.expire(60_000);
    expect(lane.rounds.byId.has('r1')).toBe(false);
    expect([...lane.gone]).toEqual(['r1']);
    lane.stateOffsets.delete('r1'); // what writing its tombstone does
    expect(lane.liveStart()).toBe(9);
    lane.stateOffsets.delete('r2');
    expect(lane.liveStart()).toBe(10);
  });

  it('a late answer within the grace period is refused as ROUND_CLOSED; a second record with its event id as DUPLICATE_EVENT', () => {
    const lane = new RoundLane(lookup);
    lane.apply(open({ eligible: ['a', 'b'] }));
    lane.apply(bid('a', 1));
    lane.apply(bid('b', 2));
    const late = bid('c', 3, { eventId: 'late' });
    expect(lane.apply(late)).toEqual([expect.objectContaining({ type: 'rejected', reasonCode: 'ROUND_CLOSED', eventId: 'late' })]);
    expect(lane.apply(late)).toEqual([expect.objectContaining({ type: 'rejected', reasonCode: 'DUPLICATE_EVENT', eventId: 'late' })]);
  });

  it('an answer waits for its request until the request topic has moved past it; one dated ahead of the log is refused', () => {
    const lane = new RoundLane(lookup);
    lane.apply(bid('a', 1, { roundId: 'ghost', eventId: 'g1', eventTime: 1_000 }));
    lane.apply(bid('b', 1, { roundId: 'future', eventId: 'f1', eventTime: 10_000_000 }));
    // Answers read far ahead of the requests: log time moved, the request topic did not; only the one dated ahead of everything goes.
    const ahead = lane.apply({ type: 'tick', now: 50_000, requestsAt: { auction: 5_000 } });
    expect(ahead).toEqual([expect.objectContaining({ eventId: 'f1', reasonCode: 'UNKNOWN_ROUND', reason: expect.stringMatching(/ahead of the log/) })]);
    expect(lane.apply({ type: 'tick', now: 50_000, requestsAt: { auction: 11_000 } })).toEqual([]);
    const refused = lane.apply({ type: 'tick', now: 50_000, requestsAt: { auction: 11_001 } });
    expect(refused.map((d) => d.type === 'rejected' && [d.eventId, d.reasonCode])).toEqual([['g1', 'UNKNOWN_ROUND']]);
    expect(lane.rounds.pending.size).toBe(0);
  });

  it('moves its clock no further than a minute past this machine\'s clock', () => {
    const lane = new RoundLane(lookup);
    const yearAhead = Date.now() + 365 * 24 * 3600_000;
    lane.advance(yearAhead, 60_000, 'auction');
    expect(lane.logTime).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(lane.requestsAt.auction).toBe(lane.logTime);
    lane.advance(Number.NaN, 60_000);
    expect(Number.isFinite(lane.logTime)).toBe(true);
  });
});

describe('the round-state changelog', () => {
  it('restores a round exactly as it was written: counted, handled and closed; nothing is decided on restore', () => {
    const lane = new RoundLane(lookup);
    lane.apply(open({ eligible: ['a', 'b', 'c'] }));
    lane.apply(bid('a', 3));
    lane.apply(bid('z', 9)); // not eligible: refused, and remembered as handled
    const state = toRoundState(snapshotOf(lane.rounds, 'r1', undefined), 'coordinator-1');
    const restored = emptyRounds();
    expect(install(restored, fromRoundState(state), lookup)).toBe('open');
    const round = restored.byId.get('r1')!;
    expect(round.counted.map((a) => a.agentId)).toEqual(['a']);
    expect([...round.handled].sort()).toEqual(['bid-a', 'bid-z']);
    expect(round.closed).toBe(false);
  });

  it('a closed round keeps its handled ids packed: a copy is still a duplicate, a late answer closed, a copy of that a duplicate, before and after a restore', () => {
    const ids = { a: randomUUID(), b: randomUUID(), late: randomUUID() };
    const lane = new RoundLane(lookup);
    lane.apply(open({ eligible: ['a', 'b'] }));
    lane.apply(bid('a', 3, { eventId: ids.a }));
    lane.apply(bid('b', 7, { eventId: ids.b }));
    expect(lane.rounds.byId.get('r1')!.handled).toBeInstanceOf(PackedEventIds);
    const refusal = (l: RoundLane, agent: string, eventId: string) => l.apply(bid(agent, 1, { eventId }))[0];
    expect(refusal(lane, 'a', ids.a)).toMatchObject({ type: 'rejected', reasonCode: 'DUPLICATE_EVENT' });
    expect(refusal(lane, 'c', ids.late)).toMatchObject({ type: 'rejected', reasonCode: 'ROUND_CLOSED' });
    expect(refusal(lane, 'c', ids.late)).toMatchObject({ type: 'rejected', reasonCode: 'DUPLICATE_EVENT' });
    const snapshot = snapshotOf(lane.rounds, 'r1', 1_000);
    expect(snapshot.handled).toEqual([ids.a, ids.b, ids.late]);
    const restored = new RoundLane(lookup);
    install(restored.rounds, fromRoundState(toRoundState(snapshot, 'c')), lookup);
    expect(restored.rounds.byId.get('r1')!.handled).toBeInstanceOf(PackedEventIds);
    expect(refusal(restored, 'b', ids.b)).toMatchObject({ type: 'rejected', reasonCode: 'DUPLICATE_EVENT' });
    expect(refusal(restored, 'c', ids.late)).toMatchObject({ type: 'rejected', reasonCode: 'DUPLICATE_EVENT' });
    expect(refusal(restored, 'c', randomUUID())).toMatchObject({ type: 'rejected', reasonCode: 'ROUND_CLOSED' });
  });

  it('writes a closed round without its counted answers, and restored it still refuses a copy as a duplicate and a late answer as closed', () => {
    const lane = new RoundLane(lookup);
    lane.apply(open({ eligible: ['a', 'b'] }));
    lane.apply(bid('a', 3));
    lane.apply(bid('b', 7));
    const snapshot = snapshotOf(lane.rounds, 'r1', 1_000);
    expect(snapshot).toMatchObject({ closed: true, counted: [], closedAt: 1_000 });
    expect([...snapshot.handled].sort()).toEqual(['bid-a', 'bid-b']);
    const restored = new RoundLane(lookup);
    expect(install(restored.rounds, fromRoundState(toRoundState(snapshot, 'c')), lookup)).toBe('open');
    expect(restored.apply(bid('a', 3))).toEqual([expect.objectContaining({ type: 'rejected', reasonCode: 'DUPLICATE_EVENT' })]);
    expect(restored.apply(bid('c', 9, { eventId: 'bid-late' }))).toEqual([expect.objectContaining({ type: 'rejected', reasonCode: 'ROUND_CLOSED' })]);
  });

  it('keeps answers waiting for their request, and says when a round names a protocol that is not registered', () => {
    const rounds = emptyRounds();
    const lane = new RoundLane(lookup);
    lane.apply(bid('a', 3));
    const waiting = fromRoundState(toRoundState(snapshotOf(lane.rounds, 'r1', undefined), 'c'));
    expect(install(rounds, waiting, lookup)).toBe('pending');
    expect(rounds.pending.get('r1')!.map((a) => a.eventId)).toEqual(['bid-a']);
    expect(install(emptyRounds(), { ...waiting, open: open(), protocol: 'lottery' }, lookup)).toBe('unknown-protocol');
  });
});

describe('a transaction\'s outputs', () => {
  it('tells each changelog record the offset it was written at (base offset + its place on the partition)', () => {
    const out = new Outputs();
    const seen: Array<[string, number]> = [];
    out.add('state', { key: 'a', value: null, partition: 3 }, (o) => seen.push(['a', o]));
    out.add('outcomes', { key: 'x', value: null });
    out.add('state', { key: 'b', value: null, partition: 3 }, (o) => seen.push(['b', o]));
    out.add('state', { key: 'c', value: null, partition: 5 }, (o) => seen.push(['c', o]));
    out.written([
      { topicName: 'state', partition: 3, errorCode: 0, baseOffset: '40' },
      { topicName: 'state', partition: 5, errorCode: 0, baseOffset: '7' },
      { topicName: 'outcomes', partition: 1, errorCode: 0, baseOffset: '100' },
    ]);
    expect(seen).toEqual([['a', 40], ['b', 41], ['c', 7]]);
  });
});

describe('a large transaction', () => {
  it('goes out in produce requests under a size bound, in order, each learning its records\' offsets', () => {
    const out = new Outputs();
    const offsets: number[] = [];
    for (let i = 0; i < 10; i++) out.add('state', { key: `k${i}`, value: Buffer.alloc(100_000), partition: 2 }, (o) => offsets.push(o));
    const chunks = out.chunks(256 * 1024);
    expect(chunks.map((c) => c.records.length)).toEqual([2, 2, 2, 2, 2]);
    expect(chunks.flatMap((c) => c.topicMessages[0]!.messages.map((m) => m.key))).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`));
    chunks.forEach((c, i) => out.written([{ topicName: 'state', partition: 2, errorCode: 0, baseOffset: String(100 + 2 * i) }], c.records));
    expect(offsets).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
  });
});

