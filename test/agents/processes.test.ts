import { fileURLToPath } from 'node:url';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceHeader } from '../../src/agents/host.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { AgentStateSnapshot, Bid, BidRequest, Directive, LifecycleChanged } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { runAgentProcess, stopAgentProcess } from '../agentProcesses.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('processes');
});
afterAll(() => ctx?.close());

const counter = fileURLToPath(new URL('../fixtures/agents/counter.ts', import.meta.url));
const processArgs = (prefix: string) => ['--prefix', prefix, '--session-timeout-ms', '3000', '--heartbeat-ms', '500'];

function start(agentId: string) {
  const p = runAgentProcess(ctx.stack, counter, processArgs(ctx.prefix), { FIXTURE_AGENT_ID: agentId });
  ctx.defer(() => stopAgentProcess(p));
  return p;
}

async function requestBids(events: EventProducer, count: number, label: string): Promise<string[]> {
  const rounds = Array.from({ length: count }, () => uniqueName(label));
  for (const roundId of rounds) {
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
      roundId, protocol: 'first-price', item: '"slot"', requiredCapabilities: ['count'], eligibleAgents: [], reservePrice: null, deadline: Date.now() + 60_000, parameters: null,
    };
    await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
  }
  return rounds;
}

async function bidsOf(messages: KafkaMessage[], agentId: string) {
  const all = await Promise.all(messages.map(async (m) => ({ bid: (await ctx.codec.decode<Bid>(m.value)).event, instance: m.headers?.[instanceHeader]?.toString() })));
  return all.filter((b) => b.bid.agentId === agentId);
}

describe('agents as separate OS processes', () => {
  it('shares an agent\'s requests between two replicas, each request once, and the survivor takes over a killed one', async () => {
    const events = new EventProducer(await ctx.producer(), ctx.codec);
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    const a = start('replicated');
    const readyA = await a.ready;
    const b = start('replicated');
    const readyB = await b.ready;
    // Both members hold partitions once the group has rebalanced to two.
    await waitFor(async () => {
      const [group] = (await ctx.admin.describeGroups([readyA.groupId])).groups;
      return group?.state === 'Stable' && group.members.length === 2;
    }, { what: 'a stable group of two replicas' });

    const first = await requestBids(events, 24, 'rep1');
    const answered = await waitFor(async () => {
      const list = await bidsOf(bids.messages, 'replicated');
      return new Set(list.map((x) => x.bid.roundId)).size >= 24 && list;
    }, { what: '24 answered requests', crashed: bids.crashed });
    expect([...new Set(answered.map((x) => x.bid.roundId))].sort()).toEqual([...first].sort());
    const byInstance = new Set(answered.map((x) => x.instance));
    expect(byInstance).toEqual(new Set([readyA.instanceId, readyB.instanceId])); // and split between them

    process.kill(a.pid, 'SIGKILL');
    await a.exited;
    const second = await requestBids(events, 24, 'rep2');
    const after = await waitFor(async () => {
      const list = (await bidsOf(bids.messages, 'replicated')).filter((x) => x.bid.roundId.includes('rep2'));
      return new Set(list.map((x) => x.bid.roundId)).size >= 24 && list;
    }, { what: 'the survivor to answer every request', crashed: bids.crashed, timeoutMs: 30_000 });
    expect([...new Set(after.map((x) => x.bid.roundId))].sort()).toEqual([...second].sort());
    expect(new Set(after.map((x) => x.instance))).toEqual(new Set([readyB.instanceId]));
    // Delivery is at least once: a request the killed replica answered but had not yet committed is
    // answered again by the survivor — with the same event id, so the duplicate is recognisable.
    const all = await bidsOf(bids.messages, 'replicated');
    const idsByRound = new Map<string, Set<string>>();
    for (const { bid } of all) idsByRound.set(bid.roundId, (idsByRound.get(bid.roundId) ?? new Set()).add(bid.envelope.eventId));
    expect(idsByRound.size).toBe(48);
    expect([...idsByRound.values()].filter((ids) => ids.size !== 1)).toEqual([]);
  });

  it('migrates an agent with state to a new process: it continues from that state, nothing lost or done twice', async () => {
    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    const lifecycle = await collectRaw(ctx, ctx.topic('lifecycle'));
    const a = start('mover');
    const readyA = await a.ready;

    const before = await requestBids(events, 5, 'mig-before');
    await waitFor(async () => (await bidsOf(bids.messages, 'mover')).length >= 5, { what: 'five bids before migration' });

    const migrate: Directive = { envelope: newEnvelope('Directive', 'operator'), agentId: 'mover', action: 'migrate', parameters: null, roundId: null, variableId: null };
    await events.send(ctx.topic('directives'), 'mover', 'Directive', migrate);
    // Requests that arrive while the agent is handed over: handled by the old process or the new, once.
    const during = await requestBids(events, 4, 'mig-during');
    expect(await a.exited).toEqual({ code: 0, signal: null });

    const b = start('mover');
    const readyB = await b.ready;
    expect(readyB.instanceId).not.toBe(readyA.instanceId);
    const after = await requestBids(events, 5, 'mig-after');

    const all = await waitFor(async () => {
      const list = await bidsOf(bids.messages, 'mover');
      return list.length >= 14 && list;
    }, { what: 'all 14 bids', crashed: bids.crashed, timeoutMs: 30_000 });
    expect(all.map((x) => x.bid.roundId).sort()).toEqual([...before, ...during, ...after].sort());
    // The bid is the count of requests the agent has handled: state carried over, no gaps, no repeats.
    expect(all.map((x) => x.bid.amount).sort((p, q) => p - q)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    const afterBids = all.filter((x) => x.bid.roundId.includes('mig-after'));
    expect(new Set(afterBids.map((x) => x.instance))).toEqual(new Set([readyB.instanceId]));
    expect(Math.min(...afterBids.map((x) => x.bid.amount))).toBeGreaterThan(5);

    const transitions = await waitFor(async () => {
      const list = (await Promise.all(lifecycle.messages.map((m) => ctx.codec.decode<LifecycleChanged>(m.value))))
        .filter((d) => d.type === 'LifecycleChanged' && d.event.agentId === 'mover')
        .map((d) => `${d.event.from ?? '(new)'}>${d.event.to}`);
      return list.length >= 6 && list;
    }, { what: 'the lifecycle of the migration' });
    expect(transitions).toEqual(['(new)>starting', 'starting>running', 'running>migrating', 'migrating>stopped', '(new)>starting', 'starting>running']);

    const snapshots = await collectRaw(ctx, ctx.topic('agent-state'));
    const snapshot = await waitFor(async () => {
      for (const m of snapshots.messages) {
        const s = (await ctx.codec.decode<AgentStateSnapshot>(m.value)).event;
        if (s.agentId === 'mover') return s;
      }
      return undefined;
    }, { what: 'the state snapshot' });
    expect(snapshot.instanceId).toBe(readyA.instanceId);
    expect(JSON.parse(snapshot.state.toString()).handled).toBeGreaterThanOrEqual(5);
  });
});
