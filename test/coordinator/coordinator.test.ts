import { fileURLToPath } from 'node:url';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { BidRequest, Proposal } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { runAgentProcess, stopAgentProcess } from '../agentProcesses.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
let coordinator: Coordinator;
let outcomes: Awaited<ReturnType<typeof collectRaw>>;
beforeAll(async () => {
  ctx = await testContext('coordinator');
  coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
  ctx.defer(() => coordinator.stop());
  await coordinator.start();
  outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
});
afterAll(() => ctx?.close());

/** The decoded outcomes-topic events of one round, in log order, as [type, event]. */
async function roundLog(roundId: string, messages: KafkaMessage[]) {
  const decoded = await Promise.all(messages.map((m) => ctx.codec.decode(m.value)));
  return decoded.filter((d) => (d.event as { roundId?: string; subjectId?: string }).roundId === roundId || (d.event as { subjectId?: string }).subjectId === roundId).map((d) => [d.type, d.event] as const);
}

const bidRequest = (roundId: string, protocol: string, eligibleAgents: string[], over: Partial<BidRequest> = {}): BidRequest => ({
  envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
  roundId, protocol, item: '"4 gpu-hours"', requiredCapabilities: [], eligibleAgents, reservePrice: null, deadline: Date.now() + 30_000, parameters: null, ...over,
});

describe('coordinator over Kafka', () => {
  it('runs sealed-bid auctions among three agents: one outcome, written after the closing, and the winner is told', async () => {
    const awarded: string[] = [];
    const bidder = (id: string, amount: number) =>
      defineAgent({ id, role: 'worker', capabilities: ['gpu'], onBidRequest: () => ({ amount }), onDirective: (d) => void awarded.push(`${id}:${d.action}:${d.roundId}`) });
    const host = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'bidders', agents: [bidder('a', 10), bidder('b', 30), bidder('c', 20)] });
    ctx.defer(() => host.stop());
    await host.start();
    const events = new EventProducer(await ctx.producer(), ctx.codec);

    const first = uniqueName('fp');
    const second = uniqueName('vk');
    await events.send(ctx.topic('bid-requests'), first, 'BidRequest', bidRequest(first, 'first-price', ['a', 'b', 'c']));
    await events.send(ctx.topic('bid-requests'), second, 'BidRequest', bidRequest(second, 'vickrey', ['a', 'b', 'c']));

    for (const [roundId, price] of [[first, 30], [second, 20]] as const) {
      const log = await waitFor(async () => {
        const l = await roundLog(roundId, outcomes.messages);
        return l.some(([type]) => type === 'RoundOutcome') && l;
      }, { what: `the outcome of ${roundId}`, crashed: outcomes.crashed });
      expect(log.map(([type]) => type)).toEqual(['RoundClosed', 'RoundOutcome']);
      expect(log[0]![1]).toMatchObject({ cause: 'complete', countedEventIds: expect.arrayContaining([expect.any(String)]) });
      expect((log[0]![1] as { countedEventIds: string[] }).countedEventIds).toHaveLength(3);
      expect(log[1]![1]).toMatchObject({ status: 'decided', winners: ['b'], price });
    }
    await waitFor(() => awarded.length >= 2, { what: 'the award directives' });
    expect(awarded.sort()).toEqual([`b:award:${first}`, `b:award:${second}`].sort());
  });

  it('await client.auction() and client.consensus(): the outcome, or the coordinator\'s refusal', async () => {
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'client-agents',
      agents: ['p', 'q', 'r'].map((id, i) => defineAgent({ id, role: 'worker', capabilities: ['cpu'], onBidRequest: () => ({ amount: 5 + i }), onProposal: () => ({ choice: id === 'r' ? 'no' : 'yes' }) })),
    });
    ctx.defer(() => host.stop());
    await host.start();
    const client = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => client.stop());
    await client.start();
    const sold = await client.auction({ protocol: 'vickrey', item: { cpu: 2 }, bidders: ['p', 'q', 'r'] });
    expect(sold).toMatchObject({ status: 'decided', winners: ['r'], price: 6 });
    const agreed = await client.consensus({ subject: 'upgrade?', voters: ['p', 'q', 'r'] });
    expect(agreed).toMatchObject({ status: 'decided', value: '"yes"' });
    await expect(client.auction({ protocol: 'lottery', item: 'x' })).rejects.toThrow(/refused round .*: No protocol "lottery" is registered. \[UNKNOWN_PROTOCOL\]/);
  });

  it('refuses bad input with a rejection event, dead-letters garbage, and keeps coordinating', async () => {
    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    const letters = await collectRaw(ctx, ctx.topic('dead-letters'));
    const roundId = uniqueName('bad');
    await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', bidRequest(roundId, 'first-price', ['x', 'y'], { reservePrice: 5 }));
    const bidEvent = (agentId: string, amount: number) => ({ envelope: newEnvelope('Bid', agentId, { correlationId: roundId }), roundId, agentId, amount, bundle: [], attributes: null });
    await events.send(ctx.topic('bids'), roundId, 'Bid', bidEvent('x', 2)); // under the reserve
    await events.send(ctx.topic('bids'), roundId, 'Bid', bidEvent('z', 9)); // not a bidder
    await producer.send({ topic: ctx.topic('bids'), messages: [{ key: roundId, value: Buffer.from('{"amount": 1}') }] });
    const ghost = uniqueName('ghost');
    await events.send(ctx.topic('bids'), ghost, 'Bid', { ...bidEvent('x', 7), roundId: ghost }); // its round never opens
    await events.send(ctx.topic('bids'), roundId, 'Bid', bidEvent('x', 7));
    await events.send(ctx.topic('bids'), roundId, 'Bid', bidEvent('y', 6));

    const log = await waitFor(async () => {
      const l = await roundLog(roundId, outcomes.messages);
      return l.some(([type]) => type === 'RoundOutcome') && l;
    }, { what: 'the outcome', crashed: outcomes.crashed });
    expect(log.map(([type, e]) => (type === 'Rejection' ? `${type}:${(e as { reasonCode: string }).reasonCode}` : type))).toEqual([
      'Rejection:BELOW_RESERVE',
      'Rejection:NOT_ELIGIBLE',
      'RoundClosed',
      'RoundOutcome',
    ]);
    expect(log[3]![1]).toMatchObject({ winners: ['x'], price: 7 });
    // The ghost bid waits for its round; once log time is past its grace period it is refused.
    const later = uniqueName('later');
    await events.send(ctx.topic('bid-requests'), later, 'BidRequest', { ...bidRequest(later, 'first-price', ['x']), envelope: newEnvelope('BidRequest', 'client', { correlationId: later, eventTime: Date.now() + 11_000 }) });
    const ghostLog = await waitFor(async () => {
      const l = await roundLog(ghost, outcomes.messages);
      return l.length > 0 && l;
    }, { what: 'the refusal of the ghost bid' });
    expect(ghostLog.map(([t, e]) => `${t}:${(e as { reasonCode: string }).reasonCode}`)).toEqual(['Rejection:UNKNOWN_ROUND']);
    await waitFor(() => letters.messages.length >= 1, { what: 'the dead letter' });
    expect((await ctx.codec.decode(letters.messages[0]!.value)).event).toMatchObject({ reasonCode: 'BAD_MAGIC_BYTE', sourceTopic: ctx.topic('bids'), consumerGroup: coordinator.groupId });
  });

  it('completes a consensus at its deadline when a voter process is killed mid-round', async () => {
    const voter = fileURLToPath(new URL('../fixtures/agents/voter.ts', import.meta.url));
    const args = ['--prefix', ctx.prefix, '--session-timeout-ms', '3000'];
    const start = (id: string, delay: number) => {
      const p = runAgentProcess(ctx.stack, voter, args, { FIXTURE_AGENT_ID: id, VOTE_DELAY_MS: String(delay), VOTE_CHOICE: 'large' });
      ctx.defer(() => stopAgentProcess(p));
      return p;
    };
    const voters = [start('v1', 0), start('v2', 0), start('v3', 60_000)];
    await Promise.all(voters.map((v) => v.ready));

    const roundId = uniqueName('vote');
    const proposal: Proposal = {
      envelope: newEnvelope('Proposal', 'client', { correlationId: roundId }),
      roundId, protocol: 'majority', subject: '"model size"', options: ['small', 'large'], eligibleVoters: ['v1', 'v2', 'v3'], weights: {}, quorum: null,
      deadline: Date.now() + 6_000, parameters: null,
    };
    await new EventProducer(await ctx.producer(), ctx.codec).send(ctx.topic('proposals'), roundId, 'Proposal', proposal);
    const votes = await collectRaw(ctx, ctx.topic('votes'));
    await waitFor(() => votes.messages.length >= 2, { what: 'two votes', crashed: votes.crashed });
    process.kill(voters[2]!.pid, 'SIGKILL'); // v3 dies before it votes

    const log = await waitFor(async () => {
      const l = await roundLog(roundId, outcomes.messages);
      return l.some(([type]) => type === 'RoundOutcome') && l;
    }, { what: 'the outcome at the deadline', crashed: outcomes.crashed, timeoutMs: 30_000 });
    expect(log.map(([type]) => type)).toEqual(['RoundClosed', 'RoundOutcome']);
    expect(log[0]![1]).toMatchObject({ cause: 'deadline' });
    expect((log[0]![1] as { countedEventIds: string[] }).countedEventIds).toHaveLength(2);
    expect(log[1]![1]).toMatchObject({ status: 'decided', value: '"large"', reason: '"large" has 2 of 2 votes' });
  });
});
