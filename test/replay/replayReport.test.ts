import { firstValueFrom, from, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecodedEvent } from '../../src/codec/codec.ts';
import { toRoundEvent } from '../../src/coordinator/events.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, RoundClosed, RoundOutcome } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { coordinate } from '../../src/protocols/coordinate.ts';
import type { Outcome, RoundEvent } from '../../src/protocols/types.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { replayRounds } from '../../src/replay/replayRounds.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('replay-report');
});
afterAll(() => ctx?.close());

const roundTopics = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'];
const protocols = defaultProtocols();

/**
 * Writes a sealed-bid round as a coordinator would: the request, the bids,
 * its closing and its outcome (decided by the protocol itself, or as
 * `recordAs` changes it); then each of `extra` as a further RoundOutcome of
 * the same round.
 */
async function writeRound(events: EventProducer, roundId: string, bids: Array<[string, number]>, extra: Array<(decided: RoundOutcome) => RoundOutcome> = [], recordAs: (decided: RoundOutcome) => RoundOutcome = (o) => o): Promise<void> {
  const env = <T extends 'BidRequest' | 'Bid' | 'RoundClosed' | 'RoundOutcome'>(type: T, producer: string) => newEnvelope(type, producer, { correlationId: roundId });
  const request: BidRequest = { envelope: env('BidRequest', 'client'), roundId, protocol: 'first-price', item: '"slot"', requiredCapabilities: [], eligibleAgents: bids.map(([a]) => a), reservePrice: null, deadline: Date.now() + 60_000, parameters: null };
  const answers: Bid[] = bids.map(([agentId, amount]) => ({ envelope: env('Bid', agentId), roundId, agentId, amount, bundle: [], attributes: null }));
  const asDecoded = (type: string, event: object) => ({ schemaId: 0, fullName: `io.mabeam.events.${type}`, type, event }) as DecodedEvent;
  const input = [toRoundEvent(asDecoded('BidRequest', request))!, ...answers.map((b) => toRoundEvent(asDecoded('Bid', b))!)] as RoundEvent[];
  const decisions = await firstValueFrom(from(input).pipe(coordinate((name) => protocols.get(name)), toArray()));
  const d = decisions.find((x): x is Outcome => x.type === 'outcome')!;
  const closed: RoundClosed = { envelope: env('RoundClosed', 'coordinator'), roundId, protocol: 'first-price', cause: 'complete', countedEventIds: answers.map((b) => b.envelope.eventId), stage: 0, final: true };
  const outcome: RoundOutcome = {
    envelope: env('RoundOutcome', 'coordinator'), roundId, protocol: d.protocol, status: d.status, winners: d.winners, price: d.price, value: d.value, reason: d.reason,
    details: JSON.stringify(d.details), subject: d.subject ?? null, kind: d.kind ?? null, eligible: d.eligible ?? [],
  };
  await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
  for (const b of answers) await events.send(ctx.topic('bids'), roundId, 'Bid', b);
  await events.send(ctx.topic('outcomes'), roundId, 'RoundClosed', closed);
  await events.send(ctx.topic('outcomes'), roundId, 'RoundOutcome', recordAs(outcome));
  for (const more of extra) await events.send(ctx.topic('outcomes'), roundId, 'RoundOutcome', { ...more(outcome), envelope: env('RoundOutcome', 'coordinator') });
}

describe('replay reports everything the log holds', () => {
  it('flags a round with a second, contradictory outcome, one written twice, one whose details differ, and an undecodable record with its position', async () => {
    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    const id = (n: string) => `${ctx.prefix}-${n}`;
    await writeRound(events, id('clean'), [['a', 5], ['b', 9]]);
    // The case: "decided, winner b", then "no-decision" at the deadline from another coordinator.
    await writeRound(events, id('contradicted'), [['a', 5], ['b', 9]], [(o) => ({ ...o, status: 'no-decision', winners: [], price: null, value: null, reason: 'no valid bids', details: '{}' })]);
    await writeRound(events, id('twice'), [['a', 7], ['b', 3]], [(o) => o]);
    // Same winner, price and status as the protocol decides; only the details differ.
    await writeRound(events, id('details'), [['a', 4], ['b', 8]], [], (o) => ({ ...o, details: JSON.stringify({ ...JSON.parse(o.details ?? '{}'), bids: 99 }) }));
    const [garbage] = await producer.send({ topic: ctx.topic('bids'), messages: [{ key: id('clean'), value: Buffer.from('not an event') }] });
    const log = await readLog(ctx.kafka, ctx.codec, roundTopics.map((t) => ctx.topic(t)));

    const report = await replayRounds(log, protocols);
    const byId = new Map(report.rounds.map((r) => [r.roundId, r]));
    expect(report.incomplete).toBe(0);
    expect(byId.get(id('clean'))).toMatchObject({ verdict: 'identical', identical: true, outcomes: 1 });
    expect(byId.get(id('contradicted'))).toMatchObject({ verdict: 'contradictory', identical: false, outcomes: 2 });
    expect(byId.get(id('contradicted'))!.differences.map((d) => d.field)).toEqual(expect.arrayContaining(['status', 'winners', 'price']));
    // The same outcome twice is not one outcome: exactly once is broken.
    expect(byId.get(id('twice'))).toMatchObject({ verdict: 'duplicate', identical: false, outcomes: 2 });
    expect(byId.get(id('details'))).toMatchObject({ verdict: 'different', identical: false, outcomes: 1 });
    expect(byId.get(id('details'))!.differences).toEqual([{ field: 'details.bids', recorded: 99, replayed: [{ agentId: 'b', amount: 8 }, { agentId: 'a', amount: 4 }] }]);
    expect([report.identical, report.different, report.contradictory, report.duplicate]).toEqual([1, 1, 1, 1]);
    expect(report.ok).toBe(false);

    expect(report.repeated.map((r) => [r.roundId, r.kind, r.outcomes.length]).sort()).toEqual([
      [id('contradicted'), 'contradictory', 2],
      [id('twice'), 'duplicate', 2],
    ]);
    const contradicted = report.repeated.find((r) => r.roundId === id('contradicted'))!;
    expect(contradicted.outcomes.map((o) => o.status)).toEqual(['decided', 'no-decision']);
    expect(contradicted.outcomes.every((o) => o.topic === ctx.topic('outcomes') && Number.isInteger(o.offset))).toBe(true);

    expect(report.undecodable).toEqual([{ topic: ctx.topic('bids'), partition: garbage!.partition, offset: Number(garbage!.baseOffset), code: 'BAD_MAGIC_BYTE', message: expect.any(String), key: id('clean') }]);
  });
});
