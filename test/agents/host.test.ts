import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { maxHandlerErrorLength } from '../../src/agents/dispatch.ts';
import { AgentHost, instanceHeader } from '../../src/agents/host.ts';
import { deterministicEventId, newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, DeadLetter, Directive, HandlerFailed, LifecycleChanged, Proposal, Vote } from '../../src/events/types.ts';
import { partitionOfKey } from '../../src/engine/routing.ts';
import { topicResourceType } from '../../src/kafka/client.ts';
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

  it('turns every answer it cannot write into a failure of its agent, dead-letters a record too large to keep, and goes on', async () => {
    const hostile = ['hostile'];
    const host = new AgentHost({
      kafka: ctx.kafka,
      codec: ctx.codec,
      logger: ctx.logger,
      prefix: ctx.prefix,
      definitions: ctx.definitions,
      pool: 'hostile',
      agents: [
        // 2 MB of attributes: a valid Bid the broker will not take.
        defineAgent({ id: 'huge-bid', role: 'worker', capabilities: hostile, onBidRequest: () => ({ amount: 1, attributes: 'x'.repeat(2_000_000) }) }),
        defineAgent({
          id: 'odd-throw',
          role: 'worker',
          capabilities: hostile,
          onBidRequest: () => {
            throw Object.create(null); // String() of it throws
          },
        }),
        defineAgent({
          id: 'long-throw',
          role: 'worker',
          capabilities: hostile,
          onBidRequest: () => {
            throw new Error('y'.repeat(100_000));
          },
        }),
        defineAgent({ id: 'not-an-answer', role: 'worker', capabilities: hostile, onBidRequest: () => 'lots' as never }),
        defineAgent({
          id: 'nan-report',
          role: 'worker',
          capabilities: hostile,
          onBidRequest: (_r, c) => {
            c.report('latency', Number.NaN);
            return { amount: 2 };
          },
        }),
        defineAgent({ id: 'negative-voter', role: 'voter', capabilities: [], onProposal: () => ({ choice: 'a', weight: -1 }) }),
        // A state JSON cannot hold: the stop cannot save it.
        defineAgent<{ n: bigint }>({ id: 'bigint-state', role: 'worker', capabilities: [], initialState: () => ({ n: 0n }) }),
        defineAgent({ id: 'steady', role: 'worker', capabilities: hostile, onBidRequest: () => ({ amount: 5 }) }),
      ],
    });
    let stoppedForGood: Error | undefined;
    void host.stoppedForGood.then((error) => (stoppedForGood = error));
    ctx.defer(() => host.stop());
    await host.start();

    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    const votes = await collectRaw(ctx, ctx.topic('votes'));
    const lifecycle = await collectRaw(ctx, ctx.topic('lifecycle'));
    const letters = await collectRaw(ctx, ctx.topic('dead-letters'));
    const crashed = () => stoppedForGood ?? bids.crashed() ?? lifecycle.crashed() ?? letters.crashed();

    await events.send(ctx.topic('bid-requests'), 'h-1', 'BidRequest', request('h-1', hostile));
    const proposal: Proposal = {
      envelope: newEnvelope('Proposal', 'client', { correlationId: 'h-vote' }),
      roundId: 'h-vote', protocol: 'majority', subject: '"x"', options: ['a', 'b'], eligibleVoters: ['negative-voter'], weights: {}, quorum: null, deadline: Date.now() + 60_000, parameters: null,
    };
    await events.send(ctx.topic('proposals'), 'h-vote', 'Proposal', proposal);
    // A record as large as the topic takes: its dead letter (the same bytes and more) is not.
    const [config] = (await ctx.admin.describeConfigs({ includeSynonyms: false, resources: [{ type: topicResourceType, name: ctx.topic('bid-requests'), configNames: ['max.message.bytes'] }] })).resources;
    const maxBytes = Number(config!.configEntries.find((e) => e.configName === 'max.message.bytes')!.configValue);
    await producer.send({ topic: ctx.topic('bid-requests'), messages: [{ key: 'h-big', value: Buffer.alloc(maxBytes - 120, 'z') }] });
    await events.send(ctx.topic('bid-requests'), 'h-2', 'BidRequest', request('h-2', hostile));

    const failuresOf = async () =>
      (await decodeAll<HandlerFailed>(lifecycle.messages.filter((m) => m.headers?.['mabeam-event-type']?.toString() === 'HandlerFailed'))).map((f) => f.event).filter((f) => f.subjectId.startsWith('h-'));
    // The topics of this file hold the other tests' events too: only this pool's rounds and agents count.
    const bidIds = async () =>
      new Set((await decodeAll<Bid>(bids.messages)).filter(({ event }) => event.roundId.startsWith('h-')).map(({ event }) => `${event.roundId}:${event.agentId}:${event.envelope.eventId}`));
    const ourLetters = async () => (await decodeAll<DeadLetter>(letters.messages)).map((l) => l.event).filter((l) => l.consumerGroup === host.groupId);
    // Each failure once per agent and cause (the outbox may write one twice, with the same id).
    const failureIds = async () => new Set((await failuresOf()).map((f) => f.envelope.eventId));
    await waitFor(async () => (await bidIds()).size === 2 && (await failureIds()).size === 11 && (await ourLetters()).length === 1, { what: 'the steady bids, 11 failures and the dead letter', crashed, timeoutMs: 30_000 });

    expect([...(await bidIds())].map((b) => b.split(':').slice(0, 2).join(':')).sort()).toEqual(['h-1:steady', 'h-2:steady']);
    expect((await decodeAll<Vote>(votes.messages)).filter(({ event }) => event.roundId.startsWith('h-'))).toEqual([]);
    const byAgent = new Map<string, string>();
    for (const f of await failuresOf()) {
      expect(f.envelope.eventId).toBe(deterministicEventId('handler-failed', f.agentId, f.causeEventId));
      if (f.subjectId === 'h-1' || f.subjectId === 'h-vote') byAgent.set(f.agentId, f.error);
    }
    expect(byAgent.get('huge-bid')).toMatch(/^its answer could not be written: the broker refused Bid [\w-]+ \(\d+ bytes\) on .*bids: /);
    expect(byAgent.get('odd-throw')).toBe('the handler threw a object that cannot be described');
    expect(byAgent.get('long-throw')).toBe(`${'y'.repeat(maxHandlerErrorLength)}… (100000 characters)`);
    expect(byAgent.get('not-an-answer')).toMatch(/^Invalid Bid: amount: /);
    expect(byAgent.get('nan-report')).toBe('Invalid MetricSample: value: NaN is not a finite number');
    expect(byAgent.get('negative-voter')).toBe('Invalid Vote: weight: must not be negative');

    const [letter] = await ourLetters();
    expect(letter!).toMatchObject({ reasonCode: 'BAD_MAGIC_BYTE', sourceTopic: ctx.topic('bid-requests'), value: null, key: Buffer.from('h-big') });
    expect(letter!.reason).toMatch(new RegExp(`made the dead letter too large to write; its value and headers are kept only at ${ctx.topic('bid-requests')}/\\d+@\\d+`));

    // Still a running member of its pool: it answers what comes next.
    await events.send(ctx.topic('bid-requests'), 'h-after', 'BidRequest', request('h-after', hostile));
    await waitFor(async () => [...(await bidIds())].some((b) => b.startsWith('h-after:steady:')), { what: 'the answer to a request after the hostile ones', crashed });
    expect(new Set(host.states.values())).toEqual(new Set(['running']));

    // Stopping saves every state it can; the agent whose state it cannot save did not stop cleanly.
    await host.stop('test done');
    expect(host.states.get('bigint-state')).toBe('failed');
    expect([...host.states].filter(([id]) => id !== 'bigint-state').every(([, s]) => s === 'stopped')).toBe(true);
    const last = await waitFor(async () => {
      const list = (await decodeAll<LifecycleChanged>(lifecycle.messages.filter((m) => m.headers?.['mabeam-event-type']?.toString() === 'LifecycleChanged')))
        .map((t) => t.event)
        .filter((e) => e.agentId === 'bigint-state');
      return list.at(-1)?.to === 'failed' && list.at(-1);
    }, { what: 'bigint-state reported failed' });
    expect(last).toMatchObject({ from: 'stopping', reason: 'test done; its state cannot be saved: Do not know how to serialize a BigInt' });
    expect(stoppedForGood).toBeUndefined();
  });
  it('keeps its partitions through a handler slower than the session timeout: the request is handled once', { timeout: 60_000 }, async () => {
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    const calls: string[] = [];
    const slow = defineAgent({
      id: 'slow-e',
      role: 'worker',
      capabilities: ['ponder'],
      onBidRequest: async (r) => {
        calls.push(r.roundId);
        if (r.roundId === 'r-slow') await new Promise((resolve) => setTimeout(resolve, 7_000)); // over twice the 3 s session timeout
        return { amount: 5 };
      },
    });
    const host = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, agents: [slow], pool: 'slow', sessionTimeoutMs: 3_000, heartbeatIntervalMs: 1_000 });
    ctx.defer(() => host.stop('test over'));
    await host.start();
    const events = new EventProducer(await ctx.producer(), ctx.codec);
    await events.send(ctx.topic('bid-requests'), 'r-slow', 'BidRequest', request('r-slow', ['ponder']));
    await events.send(ctx.topic('bid-requests'), 'r-after', 'BidRequest', request('r-after', ['ponder']));
    const answered = await waitFor(async () => {
      const list = (await decodeAll<Bid>(bids.messages)).map((m) => m.event).filter((b) => b.agentId === 'slow-e');
      return list.length >= 2 && list;
    }, { what: 'both bids of the slow agent', crashed: bids.crashed, timeoutMs: 30_000 });
    expect(answered.map((b) => b.roundId).sort()).toEqual(['r-after', 'r-slow']);
    // A member that lost its partitions mid-handler would be handed r-slow again by the group.
    expect(calls.filter((id) => id === 'r-slow')).toEqual(['r-slow']);
  });
  it('works on the partitions of a fetch at once: a slow handler on one holds back no request on another, and an agent sees its requests one at a time', async () => {
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let inQuick = 0;
    let overlapped = false;
    const options = {
      kafka: ctx.kafka,
      codec: ctx.codec,
      logger: ctx.logger,
      prefix: ctx.prefix,
      definitions: ctx.definitions,
      pool: 'side-by-side',
      agents: [
        defineAgent({ id: 'held-f', role: 'worker', capabilities: ['held'], onBidRequest: async () => (await gate, { amount: 1 }) }),
        defineAgent({
          id: 'quick-g',
          role: 'worker',
          capabilities: ['quick'],
          onBidRequest: async () => {
            overlapped ||= inQuick > 0;
            inQuick++;
            await new Promise((resolve) => setTimeout(resolve, 50));
            inQuick--;
            return { amount: 2 };
          },
        }),
      ],
    };
    // A first instance pins the pool's start positions; the requests are written while no instance
    // runs, so the next one reads them all in its first fetch.
    const first = new AgentHost(options);
    await first.start();
    await first.stop('pinned');
    const partitions = (await ctx.admin.fetchTopicMetadata({ topics: [ctx.topic('bid-requests')] })).topics[0]!.partitions.length;
    // Round ids on four different partitions, the held one's first (the lowest: kafkajs hands a fetch's partitions out in order).
    const byPartition = new Map<number, string>();
    for (let n = 0; byPartition.size < 4; n++) {
      const id = `c-${n}`;
      const p = partitionOfKey(Buffer.from(id), partitions);
      if (!byPartition.has(p)) byPartition.set(p, id);
    }
    const [heldId, ...quickIds] = [...byPartition].sort(([a], [b]) => a - b).map(([, id]) => id) as [string, ...string[]];
    const ids = [heldId, ...quickIds];
    const events = new EventProducer(await ctx.producer(), ctx.codec);
    await events.send(ctx.topic('bid-requests'), heldId, 'BidRequest', request(heldId, ['held']));
    await Promise.all(quickIds.map((id) => events.send(ctx.topic('bid-requests'), id, 'BidRequest', request(id, ['quick']))));
    const host = new AgentHost(options);
    // Stopping waits for the held handler: the gate opens first.
    ctx.defer(() => (open(), host.stop('test over')));
    await host.start();
    const ours = async () => (await decodeAll<Bid>(bids.messages)).map((m) => m.event).filter((b) => ids.includes(b.roundId));
    // The held request's partition waits on its handler; the others are answered meanwhile.
    await waitFor(async () => (await ours()).length === 3, { what: 'the quick agent\'s three bids while the held one waits', crashed: bids.crashed });
    expect((await ours()).map((b) => b.agentId)).toEqual(['quick-g', 'quick-g', 'quick-g']);
    open();
    await waitFor(async () => (await ours()).some((b) => b.agentId === 'held-f'), { what: 'the held bid once its handler returns', crashed: bids.crashed });
    // Three requests on three partitions reached the quick agent together; its handler never ran twice at once.
    expect(overlapped).toBe(false);
  });
});
