import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, RoundState } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { runCliProcess, stopAgentProcess } from '../agentProcesses.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('failover');
});
afterAll(() => ctx?.close());

function coordinatorProcess() {
  const p = runCliProcess(ctx.stack, ['coordinator', 'run', '--prefix', ctx.prefix, '--session-timeout-ms', '3000']);
  ctx.defer(() => stopAgentProcess(p));
  return p;
}

describe('coordinator failover', () => {
  it('a coordinator process killed mid-round: another instance finishes the round with exactly one outcome', async () => {
    const events = new EventProducer(await ctx.producer(), ctx.codec);
    const states = await collectRaw(ctx, ctx.topic('round-state'));
    const outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
    const first = coordinatorProcess();
    await first.ready;

    const roundId = uniqueName('round');
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
      roundId, protocol: 'first-price', item: '"slot"', requiredCapabilities: [], eligibleAgents: ['a', 'b', 'c'], reservePrice: null, deadline: Date.now() + 120_000, parameters: null,
    };
    const bid = (agentId: string, amount: number): Bid => ({ envelope: newEnvelope('Bid', agentId, { correlationId: roundId }), roundId, agentId, amount, bundle: [], attributes: null });
    await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
    await events.send(ctx.topic('bids'), roundId, 'Bid', bid('a', 10));
    // The first coordinator has counted one bid (its changelog says so) ...
    await waitFor(async () => {
      for (const m of states.messages) {
        const s = (await ctx.codec.decode<RoundState>(m.value)).event;
        if (s.roundId === roundId && JSON.parse(s.counted).length === 1) return true;
      }
      return false;
    }, { what: 'the first coordinator to count a bid', crashed: states.crashed, timeoutMs: 30_000 });
    // ... and dies.
    process.kill(first.pid, 'SIGKILL');
    await first.exited;

    const second = coordinatorProcess();
    await second.ready;
    await events.send(ctx.topic('bids'), roundId, 'Bid', bid('b', 30));
    await events.send(ctx.topic('bids'), roundId, 'Bid', bid('c', 20));

    const ofRound = async (type: string) => {
      const decoded = await Promise.all(outcomes.messages.map((m) => ctx.codec.decode<Record<string, unknown>>(m.value)));
      return decoded.filter((d) => d.type === type && (d.event as { roundId?: string }).roundId === roundId).map((d) => d.event as Record<string, unknown>);
    };
    const [outcome] = await waitFor(async () => {
      const list = await ofRound('RoundOutcome');
      return list.length > 0 && list;
    }, { what: 'the outcome from the second coordinator', crashed: outcomes.crashed, timeoutMs: 60_000 });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['b'], price: 30 });

    // A later round on the same coordinator is a barrier: everything before it has been written.
    const barrier = uniqueName('barrier');
    await events.send(ctx.topic('bid-requests'), barrier, 'BidRequest', { ...request, envelope: newEnvelope('BidRequest', 'client', { correlationId: barrier }), roundId: barrier, eligibleAgents: ['a'] });
    await events.send(ctx.topic('bids'), barrier, 'Bid', { ...bid('a', 1), roundId: barrier });
    await waitFor(async () => {
      const decoded = await Promise.all(outcomes.messages.map((m) => ctx.codec.decode(m.value)));
      return decoded.some((d) => d.type === 'RoundOutcome' && (d.event as { roundId?: string }).roundId === barrier);
    }, { what: 'the barrier round' });
    expect(await ofRound('RoundOutcome')).toHaveLength(1);
    const closed = await ofRound('RoundClosed');
    expect(closed).toHaveLength(1);
    expect((closed[0]!['countedEventIds'] as string[]).length).toBe(3);
  });
});
