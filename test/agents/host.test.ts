import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost, instanceHeader } from '../../src/agents/host.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, Directive, HandlerFailed, LifecycleChanged, Proposal, Vote } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('host');
});
afterAll(() => ctx?.close());

const request = (roundId: string, requiredCapabilities: string[] = [], eligibleAgents: string[] = []): BidRequest => ({
  envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
  roundId,
  protocol: 'first-price',
  item: '"gpu-hour"',
  requiredCapabilities,
  eligibleAgents,
  reservePrice: null,
  deadline: Date.now() + 60_000,
  parameters: null,
});

function agents() {
  return [
    defineAgent<{ handled: number; mode: string }>({
      id: 'gpu-a',
      role: 'worker',
      capabilities: ['gpu'],
      initialState: () => ({ handled: 0, mode: 'normal' }),
      onBidRequest: (_r, c) => {
        c.state.handled += 1;
        return { amount: 10 };
      },
      onDirective: (d, c) => {
        c.state.mode = JSON.parse(d.parameters ?? '{}').mode;
      },
    }),
    defineAgent({ id: 'cpu-b', role: 'worker', capabilities: ['cpu'], onBidRequest: () => ({ amount: 20, bundle: ['x'] }) }),
    defineAgent({ id: 'voter-c', role: 'voter', capabilities: [], onProposal: (p) => ({ choice: p.options[0]!, reason: 'first option' }) }),
    defineAgent({
      id: 'broken-d',
      role: 'worker',
      capabilities: ['gpu'],
      onBidRequest: (r) => {
        if (r.roundId === 'r-nan') return { amount: Number.NaN };
        throw new Error('cannot price this');
      },
    }),
  ];
}

async function decodeAll<T>(messages: KafkaMessage[]): Promise<Array<{ event: T; headers: KafkaMessage['headers'] }>> {
  return Promise.all(messages.map(async (m) => ({ event: (await ctx.codec.decode<T>(m.value)).event, headers: m.headers })));
}

describe('agent host', () => {
  it('hands each request to the eligible agents, reports failures, and keeps going', async () => {
    const host = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, agents: agents(), pool: 'pool-1', heartbeatIntervalMs: 500 });
    ctx.defer(() => host.stop());
    await host.start();
    expect([...host.states.values()]).toEqual(['running', 'running', 'running', 'running']);

    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    const votes = await collectRaw(ctx, ctx.topic('votes'));
    const lifecycle = await collectRaw(ctx, ctx.topic('lifecycle'));
    const letters = await collectRaw(ctx, ctx.topic('dead-letters'));

    await events.send(ctx.topic('bid-requests'), 'r-gpu', 'BidRequest', request('r-gpu', ['gpu']));
    await producer.send({ topic: ctx.topic('bid-requests'), messages: [{ key: 'r-junk', value: Buffer.from('junk') }] });
    await events.send(ctx.topic('bid-requests'), 'r-any', 'BidRequest', request('r-any'));
    await events.send(ctx.topic('bid-requests'), 'r-named', 'BidRequest', request('r-named', [], ['cpu-b']));
    await events.send(ctx.topic('bid-requests'), 'r-nan', 'BidRequest', request('r-nan', ['gpu']));
    const proposal: Proposal = {
      envelope: newEnvelope('Proposal', 'client', { correlationId: 'p-1' }),
      roundId: 'p-1', protocol: 'majority', subject: '"model"', options: ['small', 'large'], eligibleVoters: ['voter-c', 'gpu-a'], weights: {}, quorum: null, deadline: Date.now() + 60_000, parameters: null,
    };
    await events.send(ctx.topic('proposals'), 'p-1', 'Proposal', proposal);
    const directive: Directive = { envelope: newEnvelope('Directive', 'orchestrator'), agentId: 'gpu-a', action: 'reconfigure', parameters: '{"mode":"eco"}', roundId: null, variableId: null };
    await events.send(ctx.topic('directives'), 'gpu-a', 'Directive', directive);

    const failures = () => lifecycle.messages.filter((m) => m.headers?.['mabeam-event-type']?.toString() === 'HandlerFailed');
    await waitFor(() => bids.messages.length === 5 && votes.messages.length === 1 && failures().length === 3 && letters.messages.length === 1, {
      what: 'answers, failures and the dead letter',
      crashed: () => bids.crashed() ?? votes.crashed() ?? lifecycle.crashed(),
    });
    await waitFor(() => (host.stateOf('gpu-a') as { mode: string }).mode === 'eco', { what: 'the directive' });

    const bidList = (await decodeAll<Bid>(bids.messages)).map(({ event, headers }) => {
      expect(headers?.[instanceHeader]?.toString()).toBe(host.instanceId);
      return `${event.roundId}:${event.agentId}:${event.amount}`;
    });
    // r-nan needs "gpu": gpu-a bids; broken-d's NaN answer is its own failure.
    expect(bidList.sort()).toEqual(['r-any:cpu-b:20', 'r-any:gpu-a:10', 'r-gpu:gpu-a:10', 'r-named:cpu-b:20', 'r-nan:gpu-a:10']);
    const [vote] = await decodeAll<Vote>(votes.messages);
    expect(vote!.event).toMatchObject({ roundId: 'p-1', agentId: 'voter-c', choice: 'small', reason: 'first option' });
    expect(vote!.event.envelope.causationId).toBe(proposal.envelope.eventId);

    const failed = (await decodeAll<HandlerFailed>(failures())).map((f) => `${f.event.agentId}:${f.event.subjectId}:${f.event.error}`);
    expect(failed.sort()).toEqual([
      'broken-d:r-any:cannot price this',
      'broken-d:r-gpu:cannot price this',
      expect.stringMatching(/^broken-d:r-nan:Invalid Bid: amount: NaN is not a finite number$/),
    ]);
    expect((await ctx.codec.decode(letters.messages[0]!.value)).event).toMatchObject({ reasonCode: 'BAD_MAGIC_BYTE', sourceTopic: ctx.topic('bid-requests') });
    expect((host.stateOf('gpu-a') as { handled: number }).handled).toBe(3);

    // A new instance of the same pool starts from the state the last one saved.
    await host.stop('test done');
    const transitionsOf = async (agentId: string) =>
      (await decodeAll<LifecycleChanged>(lifecycle.messages.filter((m) => m.headers?.['mabeam-event-type']?.toString() === 'LifecycleChanged')))
        .filter((t) => t.event.agentId === agentId)
        .map((t) => `${t.event.from ?? '(new)'} > ${t.event.to}: ${t.event.reason}`);
    const transitions = await waitFor(async () => {
      const list = await transitionsOf('gpu-a');
      return list.length === 4 && list;
    }, { what: 'the lifecycle of gpu-a' });
    expect(transitions).toEqual([
      expect.stringMatching(/^\(new\) > starting: instance .* starting on /),
      `starting > running: member of consumer group ${ctx.prefix}.agents.pool-1`,
      'running > stopping: test done',
      'stopping > stopped: test done',
    ]);
    const next = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, agents: agents(), pool: 'pool-1' });
    ctx.defer(() => next.stop());
    await next.start();
    expect(next.stateOf('gpu-a')).toEqual({ handled: 3, mode: 'eco' });
  });

  it('a stop asked for while the host is starting waits for the start, then stops cleanly', async () => {
    const lifecycle = await collectRaw(ctx, ctx.topic('lifecycle'));
    const host = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, agents: [agents()[2]!], pool: 'early-stop' });
    const started = host.start();
    await host.stop('signal SIGTERM'); // as a signal during start-up does
    await started;
    expect([...host.states.values()]).toEqual(['stopped']);
    const moves = await waitFor(async () => {
      const list = (await decodeAll<LifecycleChanged>(lifecycle.messages)).map((m) => m.event).filter((e) => e.instanceId === host.instanceId);
      return list.length >= 4 && list.map((e) => `${e.from ?? '(new)'}>${e.to}`);
    }, { what: 'the early-stopped host\'s lifecycle', crashed: lifecycle.crashed });
    expect(moves).toEqual(['(new)>starting', 'starting>running', 'running>stopping', 'stopping>stopped']);
  });
});
