import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { AgentRegistry } from '../../src/agents/registry.ts';
import { testContext, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
let redis: Redis;
beforeAll(async () => {
  ctx = await testContext('registry');
  redis = new Redis(ctx.stack.redisUrl, { db: 4 });
  ctx.defer(() => redis.quit());
});
afterAll(() => ctx?.close());

describe('agent registry', () => {
  it('finds agents by id, capability, role and state, reports health, and survives a Redis flush', async () => {
    const host = new AgentHost({
      kafka: ctx.kafka,
      codec: ctx.codec,
      logger: ctx.logger,
      prefix: ctx.prefix,
      definitions: ctx.definitions,
      pool: 'fleet',
      heartbeatIntervalMs: 200,
      agents: [
        defineAgent({ id: 'planner', role: 'planner', capabilities: ['plan', 'gpu'], resources: { memoryMb: 512 }, onBidRequest: () => null }),
        defineAgent({ id: 'coder', role: 'worker', capabilities: ['code', 'gpu'], onBidRequest: () => null }),
        defineAgent({ id: 'critic', role: 'worker', capabilities: ['review'], onProposal: () => null }),
      ],
    });
    ctx.defer(() => host.stop());
    await host.start();

    const producer = await ctx.producer();
    const registry = new AgentRegistry({ kafka: ctx.kafka, redis, codec: ctx.codec, producer, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    ctx.defer(() => registry.stop());
    await registry.start();
    await registry.caughtUp();

    expect(await registry.byCapability('gpu')).toEqual(['coder', 'planner']);
    expect(await registry.byRole('worker')).toEqual(['coder', 'critic']);
    expect(await registry.byState('running')).toEqual(['coder', 'critic', 'planner']);
    expect(await registry.find({ capabilities: ['gpu', 'plan'], state: 'running' })).toEqual(['planner']);
    expect(await registry.get('planner')).toMatchObject({
      agentId: 'planner',
      role: 'planner',
      capabilities: ['plan', 'gpu'],
      resources: { memoryMb: 512 },
      consumerGroup: `${ctx.prefix}.agents.fleet`,
      lifecycle: { state: 'running', instanceId: host.instanceId },
    });
    expect(await registry.get('nobody')).toBeUndefined();

    const health = await registry.health();
    expect(health.map((h) => [h.agentId, h.health, h.groupMembers])).toEqual([
      ['coder', 'alive', 1],
      ['critic', 'alive', 1],
      ['planner', 'alive', 1],
    ]);
    expect(health[0]!.resources).toMatchObject({ instanceId: host.instanceId, pid: process.pid, consumerLag: 0 });
    expect(health[0]!.resources!.memoryRssBytes).toBeGreaterThan(10_000_000);

    // Redis is only a copy: flushed, the lookups rebuild from the topics.
    await redis.flushdb();
    expect(await registry.byCapability('gpu')).toEqual(['coder', 'planner']);
    expect(await registry.byState('running')).toEqual(['coder', 'critic', 'planner']);

    await host.stop('maintenance');
    await registry.caughtUp();
    expect(await registry.byState('stopped')).toEqual(['coder', 'critic', 'planner']);
    expect(await registry.byState('running')).toEqual([]);
    const dead = await waitFor(async () => {
      const h = await registry.health(['coder']);
      return h[0]!.health === 'dead' && h[0]!;
    }, { what: 'coder to be reported dead' });
    expect(dead.reason).toMatch(/consumer group is empty|intervals/);
  });

  it('a disposable view (one process\'s own) keeps its Redis keys with a time to live while it runs, and removes them when it stops', async () => {
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'disposable', heartbeatIntervalMs: 200,
      agents: [defineAgent({ id: 'tidy', role: 'worker', capabilities: ['sweep'], onBidRequest: () => null })],
    });
    ctx.defer(() => host.stop());
    await host.start();
    const viewName = `planner:instance-${Date.now()}`;
    const registry = new AgentRegistry({ kafka: ctx.kafka, redis, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, viewName, disposable: true });
    await registry.start();
    await registry.caughtUp();
    await waitFor(async () => (await registry.find({ capabilities: ['sweep'] })).includes('tidy'), { what: 'the agent in the view' });
    // Each key expires (10 min by default) unless the view renews it, keys made since included (within 5 s): a process that dies leaves nothing for long.
    const keys = await waitFor(async () => {
      const found = await redis.keys(`mabeam:${ctx.prefix}:${viewName}:*`);
      const ttls = await Promise.all(found.map((k) => redis.pttl(k)));
      return found.length > 3 && ttls.every((t) => t > 0 && t <= 600_000) && found;
    }, { what: 'every key of the view with a time to live', timeoutMs: 15_000 });
    expect(keys.some((k) => k.endsWith(':agents:values'))).toBe(true);
    await registry.stop();
    expect(await redis.keys(`mabeam:${ctx.prefix}:${viewName}:*`)).toEqual([]);
  });
});
