import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, RoundState } from '../../src/events/types.ts';
import { EventProducer, eventHeaders } from '../../src/producer/eventProducer.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('large-rounds');
});
afterAll(() => ctx?.close());

const coordinator = () => {
  const c = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
  ctx.defer(() => c.stop());
  return c;
};

describe('a round naming thousands of bidders', () => {
  it('is counted, its state (over 1 MB) written and restored by the next coordinator, and decided once', async () => {
    const producer = await ctx.producer();
    const states = await collectRaw(ctx, ctx.topic('round-state'));
    const outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
    const first = coordinator();
    await first.start();

    const roundId = uniqueName('big');
    const bidders = Array.from({ length: 6_000 }, (_, i) => `bidder-${String(i).padStart(5, '0')}`);
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
      roundId, protocol: 'first-price', item: '"slot"', requiredCapabilities: [], eligibleAgents: bidders, reservePrice: null, deadline: Date.now() + 300_000, parameters: null,
    };
    await new EventProducer(producer, ctx.codec).send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
    const bid = (agentId: string, amount: number): Bid => ({ envelope: newEnvelope('Bid', agentId, { correlationId: roundId }), roundId, agentId, amount, bundle: [], attributes: null });
    const send = async (bids: Bid[]) => {
      const messages = await Promise.all(bids.map(async (b) => ({ key: roundId, value: await ctx.codec.encode('Bid', b), headers: { [eventHeaders.type]: 'Bid', [eventHeaders.id]: b.envelope.eventId } })));
      await producer.send({ topic: ctx.topic('bids'), messages });
    };
    // Every bidder but the last; bidder 4321 bids highest.
    const amount = (i: number) => (i === 4_321 ? 1_000 : i % 100);
    for (let i = 0; i < bidders.length - 1; i += 500) await send(bidders.slice(i, Math.min(i + 500, bidders.length - 1)).map((id, j) => bid(id, amount(i + j))));

    const latestState = async (): Promise<{ message: KafkaMessage; state: RoundState } | undefined> => {
      for (let i = states.messages.length - 1; i >= 0; i--) {
        const message = states.messages[i]!;
        if (message.key?.toString() !== roundId || !message.value) continue;
        return { message, state: (await ctx.codec.decode<RoundState>(message.value)).event };
      }
      return undefined;
    };
    const written = await waitFor(async () => {
      const latest = await latestState();
      return latest && JSON.parse(latest.state.counted).length === bidders.length - 1 && latest;
    }, { what: 'the first coordinator to count 5,999 bids', crashed: states.crashed, timeoutMs: 90_000 });
    // More than a record may hold by the broker's default (1 MB).
    expect(written.message.value!.length).toBeGreaterThan(1_048_576);
    await first.stop();

    const second = coordinator();
    await second.start();
    await send([bid(bidders.at(-1)!, 5)]);
    const ofRound = async (type: string) => {
      const decoded = await Promise.all(outcomes.messages.map((m) => ctx.codec.decode<Record<string, unknown>>(m.value)));
      return decoded.filter((d) => d.type === type && (d.event as { roundId?: string }).roundId === roundId).map((d) => d.event);
    };
    const [outcome] = await waitFor(async () => {
      const list = await ofRound('RoundOutcome');
      return list.length > 0 && list;
    }, { what: 'the outcome from the second coordinator', crashed: outcomes.crashed, timeoutMs: 90_000 });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['bidder-04321'], price: 1_000 });
    const [closed, ...more] = await ofRound('RoundClosed');
    expect(more).toHaveLength(0);
    expect(closed!['cause']).toBe('complete');
    expect((closed!['countedEventIds'] as string[]).length).toBe(bidders.length);
  }, 240_000);
});
