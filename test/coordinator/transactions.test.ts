import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { testContext, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('txns');
});
afterAll(() => ctx?.close());

describe('coordinator transactions', () => {
  it('a round is one transaction: reading back its own outcome makes none, and a clean stop commits those offsets', async () => {
    const metrics = createMetrics({ registry: new Registry() });
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, metrics });
    ctx.defer(() => coordinator.stop());
    await coordinator.start();
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'txn-bidders',
      agents: ['a', 'b', 'c'].map((id, i) => defineAgent({ id, role: 'worker', capabilities: ['gpu'], onBidRequest: () => ({ amount: 10 + i }) })),
    });
    ctx.defer(() => host.stop());
    await host.start();
    const client = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => client.stop());
    await client.start();
    const transactions = async () => (await metrics.transactions.get()).values.reduce((sum, v) => sum + v.value, 0);

    const before = await transactions();
    const outcome = await client.auction({ protocol: 'first-price', item: 'gpu-hour', bidders: ['a', 'b', 'c'] });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['c'] });
    await waitFor(async () => (await transactions()) > before, { what: 'the round\'s transaction counted' });
    // Its outcome and closing are read back by the coordinator itself within milliseconds; an
    // offsets-only transaction for them would follow 200 ms later. A second is far past that.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await transactions()) - before).toBe(1);

    // Stopping writes what waits: the group has read all of its outcomes topic. The round's partition
    // holds its closing, its outcome and the marker of the transaction that wrote them.
    const outcomesRead = async () => {
      const [committed] = await ctx.admin.fetchOffsets({ groupId: coordinator.groupId, topics: [ctx.topic('outcomes')] });
      const ends = new Map((await ctx.admin.fetchTopicOffsets(ctx.topic('outcomes'))).map((p) => [p.partition, Number(p.high)]));
      const written = [...ends].filter(([, end]) => end > 0);
      expect(written).toHaveLength(1);
      const [partition, end] = written[0]!;
      expect(end).toBe(3);
      return Number(committed!.partitions.find((p) => p.partition === partition)?.offset ?? -1);
    };
    expect(await outcomesRead()).toBeLessThan(2);
    await coordinator.stop();
    expect(await outcomesRead()).toBe(2);
  });
});
