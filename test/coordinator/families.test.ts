import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import type { BidRequest, Proposal, RoundClosed } from '../../src/events/types.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { serveMetrics } from '../../src/metrics/server.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { replayRounds } from '../../src/replay/replayRounds.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

/**
 * Every protocol family over the real broker: one coordinator, one pool of
 * agents that answer by protocol, each round among at least three agents.
 */
type BidAnswer = { amount: number; bundle?: string[]; attributes?: Record<string, unknown> } | undefined;
type Strategy = (request: BidRequest, parameters: Record<string, unknown>) => BidAnswer;
type Stance = (proposal: Proposal, parameters: Record<string, unknown>) => { choice: string } | undefined;

/** What each agent does, by protocol. */
const bidding: Record<string, Record<string, Strategy>> = {};
const voting: Record<string, Record<string, Stance>> = {};
const agentIds = ['a', 'b', 'c', 'd', 'lead', 'root'];
const asking = (p: Record<string, unknown>) => (p['asking'] ?? p['startPrice'] ?? 0) as number;
const priceOf = (p: Record<string, unknown>) => (p['price'] ?? p['startPrice']) as number;

let ctx: TestContext;
let client: RoundClient;
let metrics: Metrics;
let outcomes: Awaited<ReturnType<typeof collectRaw>>;
let requests: Awaited<ReturnType<typeof collectRaw>>;
beforeAll(async () => {
  ctx = await testContext('families');
  metrics = createMetrics({ registry: new Registry() });
  const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, metrics });
  ctx.defer(() => coordinator.stop());
  const agents = agentIds.map((id) =>
    defineAgent({
      id,
      role: 'worker',
      capabilities: ['compute'],
      onBidRequest: (request: BidRequest) => bidding[request.protocol]?.[id]?.(request, request.parameters ? JSON.parse(request.parameters) : {}),
      onProposal: (proposal: Proposal) => voting[proposal.protocol]?.[id]?.(proposal, proposal.parameters ? JSON.parse(proposal.parameters) : {}),
    }),
  );
  const host = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'families', agents, metrics });
  ctx.defer(() => host.stop());
  client = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
  ctx.defer(() => client.stop());
  await Promise.all([coordinator.start(), host.start(), client.start()]);
  outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
  requests = await collectRaw(ctx, ctx.topic('bid-requests'));
});
afterAll(() => ctx?.close());

/** The stage closings of a round as the outcomes topic holds them. */
async function closings(roundId: string): Promise<RoundClosed[]> {
  const decoded = await Promise.all(outcomes.messages.filter((m) => m.key?.toString() === roundId).map((m) => ctx.codec.decode(m.value)));
  return decoded.filter((d) => d.type === 'RoundClosed').map((d) => d.event as unknown as RoundClosed);
}

describe('protocol families over Kafka', () => {
  it('English auction: stage after stage over the topics, the highest value wins near the second-highest', async () => {
    const values: Record<string, number> = { a: 40, b: 95, c: 70 };
    bidding['english'] = Object.fromEntries(Object.keys(values).map((id) => [id, (_r: BidRequest, p: Record<string, unknown>) => {
      if (p['leader'] === id) return undefined;
      return asking(p) <= values[id]! ? { amount: asking(p) } : { amount: 0, attributes: { pass: true } };
    }]));
    const roundId = `english-${Date.now()}`;
    const outcome = await client.auction({ roundId, protocol: 'english', item: 'a licence', bidders: ['a', 'b', 'c'], parameters: { increment: 10, startPrice: 10 } });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['b'] });
    expect(outcome.price).toBeGreaterThanOrEqual(60);
    expect(outcome.price).toBeLessThanOrEqual(80);
    const stages = await waitFor(async () => {
      const c = await closings(roundId);
      return c.some((s) => s.final) && c;
    }, { what: 'the closings of every stage' });
    expect(stages.length).toBeGreaterThan(3);
    expect(stages.map((c) => c.stage)).toEqual(stages.map((_, i) => i));
    expect(stages.map((c) => c.final)).toEqual(stages.map((_, i) => i === stages.length - 1));
    // Each later stage is a request on the bid-requests topic, keyed by the round, with its asking price.
    await waitFor(async () => {
      const decoded = await Promise.all(requests.messages.filter((m) => m.key?.toString() === roundId).map((m) => ctx.codec.decode(m.value)));
      const asked = decoded.map((d) => d.event as unknown as BidRequest);
      expect(asked.map((r) => r.stage)).toEqual(stages.map((c) => c.stage));
      return true;
    }, { what: 'the stage requests' });
  });

  it('Dutch auction: the price falls until the first taker', async () => {
    const values: Record<string, number> = { a: 55, b: 72, c: 38 };
    bidding['dutch'] = Object.fromEntries(Object.keys(values).map((id) => [id, (_r: BidRequest, p: Record<string, unknown>) =>
      priceOf(p) <= values[id]! ? { amount: priceOf(p) } : { amount: 0, attributes: { pass: true } }]));
    const outcome = await client.auction({ protocol: 'dutch', item: 'a slot', bidders: ['a', 'b', 'c'], parameters: { startPrice: 100, decrement: 10 } });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['b'], price: 70 });
  });

  it('combinatorial auction: the best set of disjoint bundles wins', async () => {
    bidding['combinatorial'] = {
      a: () => ({ amount: 10, bundle: ['cpu', 'gpu'] }),
      b: () => ({ amount: 6, bundle: ['cpu'] }),
      c: () => ({ amount: 8, bundle: ['gpu', 'ram'], attributes: { alternatives: [{ bundle: ['ram'], amount: 3 }] } }),
    };
    const outcome = await client.auction({ protocol: 'combinatorial', item: 'a rack', bidders: ['a', 'b', 'c'], parameters: { items: ['cpu', 'gpu', 'ram'] } });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['b', 'c'], price: 14 });
    expect(JSON.parse(outcome.value!)).toEqual({ b: ['cpu'], c: ['gpu', 'ram'] });
  });

  it('markets: a double auction clears buyers against sellers, and price finding converges in stages', async () => {
    bidding['double-auction'] = {
      a: () => ({ amount: 10, attributes: { side: 'buy', quantity: 2 } }),
      b: () => ({ amount: 8, attributes: { side: 'buy' } }),
      c: () => ({ amount: 6, attributes: { side: 'sell', quantity: 2 } }),
      d: () => ({ amount: 9, attributes: { side: 'sell' } }),
    };
    const cleared = await client.auction({ protocol: 'double-auction', item: 'gpu-hours', bidders: ['a', 'b', 'c', 'd'] });
    expect(cleared).toMatchObject({ status: 'decided', winners: ['a', 'c'] });
    expect(cleared.price).toBeGreaterThanOrEqual(6);
    expect(cleared.price).toBeLessThanOrEqual(9);
    expect(JSON.parse(cleared.value!)).toEqual([{ buyer: 'a', seller: 'c', quantity: 2 }]);

    // Demand 12 − p split among two buyers, supply p: clears at 6.
    bidding['equilibrium'] = {
      a: (_r, p) => ({ amount: Math.max(0, 12 - priceOf(p)) / 2, attributes: { side: 'buy' } }),
      b: (_r, p) => ({ amount: Math.max(0, 12 - priceOf(p)) / 2, attributes: { side: 'buy' } }),
      c: (_r, p) => ({ amount: priceOf(p), attributes: { side: 'sell' } }),
    };
    const found = await client.auction({ protocol: 'equilibrium', item: 'bandwidth', bidders: ['a', 'b', 'c'], parameters: { startPrice: 2, adjustment: 0.25, tolerance: 0.1 } });
    expect(found.status).toBe('decided');
    expect(Math.abs(found.price! - 6)).toBeLessThanOrEqual(0.05);
  });

  it('negotiation and conflict resolution: weighted mean within bounds, priority, time sharing', async () => {
    voting['weighted-mean'] = { a: () => ({ choice: '0.2' }), b: () => ({ choice: '0.5' }), c: () => ({ choice: '0.9' }) };
    const negotiated = await client.consensus({ protocol: 'weighted-mean', subject: 'learning rate', voters: ['a', 'b', 'c'], weights: { a: 1, b: 1, c: 2 }, parameters: { min: 0, max: 0.6 } });
    expect(negotiated).toMatchObject({ status: 'decided', value: '0.6' }); // mean 0.625, clamped to 0.6

    voting['priority'] = { a: () => ({ choice: 'scale up' }), b: () => ({ choice: 'scale down' }), c: () => ({ choice: 'hold' }) };
    const resolved = await client.consensus({ protocol: 'priority', subject: 'replicas', voters: ['a', 'b', 'c'], weights: { a: 1, b: 5, c: 3 } });
    expect(resolved).toMatchObject({ status: 'decided', winners: ['b'], value: '"scale down"' });

    voting['compromise'] = { a: () => ({ choice: 'gpu-0' }), b: () => ({ choice: 'gpu-0' }), c: () => ({ choice: 'gpu-0' }) };
    const shared = await client.consensus({ protocol: 'compromise', subject: 'gpu-0', voters: ['a', 'b', 'c'], weights: { a: 1, b: 1, c: 2 }, parameters: { mode: 'time-sharing', periodMs: 1000 } });
    expect(JSON.parse(shared.value!)).toEqual([
      { agentId: 'a', startMs: 0, endMs: 250 },
      { agentId: 'b', startMs: 250, endMs: 500 },
      { agentId: 'c', startMs: 500, endMs: 1000 },
    ]);
  });

  it('resource requests become grants with conditions; an overbooked resource is a conflict resolved by priority', async () => {
    bidding['resource-grant'] = {
      a: () => ({ amount: 4, attributes: { priority: 1 } }),
      b: () => ({ amount: 5, attributes: { priority: 3 } }),
      c: () => ({ amount: 3, attributes: { priority: 2, minimum: 2 } }),
    };
    const granted = await client.auction({ protocol: 'resource-grant', item: 'gpu', bidders: ['a', 'b', 'c'], parameters: { capacity: 8, leaseMs: 60_000, conditions: ['release on idle'] } });
    expect(granted.status).toBe('decided');
    expect(JSON.parse(granted.value!)).toEqual([
      { agentId: 'b', quantity: 5, leaseMs: 60_000, conditions: ['release on idle'] },
      { agentId: 'c', quantity: 3, leaseMs: 60_000, conditions: ['release on idle'] },
    ]);
    expect(JSON.parse(granted.details ?? 'null')).toMatchObject({ conflict: { demand: 12, capacity: 8, strategy: 'priority' } });
  });

  it('hierarchical delegation escalates past subordinates that decline or do not answer', async () => {
    bidding['delegation'] = {
      a: () => ({ amount: 0, attributes: { pass: true } }),
      b: () => ({ amount: 0, attributes: { pass: true } }),
      // c never answers: its tier closes at the stage deadline.
      lead: () => ({ amount: 12 }),
    };
    const roundId = `delegation-${Date.now()}`;
    const outcome = await client.auction({ roundId, protocol: 'delegation', item: 'migrate the index', bidders: ['a', 'b', 'c'], deadlineMs: 1_500, parameters: { escalation: [['lead'], ['root']] } });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['lead'], price: 12 });
    const stages = await waitFor(async () => {
      const c = await closings(roundId);
      return c.some((s) => s.final) && c;
    }, { what: 'the closings of every stage' });
    expect(stages.map((c) => [c.stage, c.cause, c.final])).toEqual([[0, 'deadline', false], [1, 'complete', true]]);
  });

  it('barrier and leader election among three agents', async () => {
    voting['barrier'] = { a: () => ({ choice: 'arrived' }), b: () => ({ choice: 'arrived' }), c: () => ({ choice: 'arrived' }) };
    expect(await client.consensus({ protocol: 'barrier', subject: 'epoch 3', voters: ['a', 'b', 'c'] })).toMatchObject({ status: 'decided', value: '"released"' });
    voting['leader-election'] = { a: () => ({ choice: 'c' }), b: () => ({ choice: 'c' }), c: () => ({ choice: 'a' }) };
    expect(await client.consensus({ protocol: 'leader-election', subject: 'shard 1', voters: ['a', 'b', 'c'] })).toMatchObject({ status: 'decided', winners: ['c'] });
  });

  it('the coordinator\'s metrics, scraped from /metrics, count these rounds by protocol', async () => {
    const server = await serveMetrics({ registry: metrics.registry, port: 0, host: '127.0.0.1' });
    ctx.defer(() => server.close());
    const text = await (await fetch(server.url)).text();
    for (const protocol of ['english', 'dutch', 'combinatorial', 'double-auction', 'weighted-mean', 'delegation']) {
      const count = text.match(new RegExp(`mabeam_coordination_latency_seconds_count\\{[^}]*protocol="${protocol}"[^}]*\\} (\\d+)`));
      expect(Number(count?.[1] ?? 0), protocol).toBeGreaterThan(0);
    }
    expect(text).toMatch(/mabeam_round_stages_total\{protocol="english"\} [1-9]/);
    expect(text).toMatch(/mabeam_answers_total\{protocol="combinatorial",kind="bid"\} 3/);
    // The agents' host reports its pool's consumer lag per topic.
    expect(text).toMatch(/mabeam_consumer_lag\{group="[^"]+\.agents\.families",topic="[^"]+\.bid-requests"\} \d+/);
  });

  it('re-running the log through the protocols gives the same outcomes, stage by stage (a stage closed at its deadline included)', async () => {
    const log = await readLog(ctx.kafka, ctx.codec, ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'].map((t) => ctx.topic(t)));
    const report = await replayRounds(log, defaultProtocols());
    expect(report.incomplete).toBe(0);
    expect(report.rounds.filter((r) => !r.identical)).toEqual([]);
    expect(report.identical).toBe(report.rounds.length);
    expect(new Set(report.rounds.map((r) => r.protocol))).toEqual(new Set(['english', 'dutch', 'combinatorial', 'double-auction', 'equilibrium', 'weighted-mean', 'priority', 'compromise', 'resource-grant', 'delegation', 'barrier', 'leader-election']));
  });
});
