import { topicResourceType } from '../../src/kafka/client.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MabeamError } from '../../src/errors.ts';
import { applyTopics, parseTopicDefinition, type TopicDefinition } from '../../src/topics/index.ts';
import { testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('topics', { applyTopics: false });
});
afterAll(() => ctx?.close());

async function topicConfig(topic: string, names: string[]): Promise<Record<string, string>> {
  const { resources } = await ctx.admin.describeConfigs({ includeSynonyms: false, resources: [{ type: topicResourceType, name: topic, configNames: names }] });
  return Object.fromEntries(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
}

describe('topics apply', () => {
  it('creates every topic, then changes nothing on a second run', async () => {
    const first = await applyTopics(ctx.admin, ctx.definitions, { prefix: ctx.prefix });
    expect(first.changes.map((c) => c.kind)).toEqual(ctx.definitions.map(() => 'created'));
    expect(first.warnings).toContain(`bids: replication factor 3 capped at 1 (the cluster has 1 broker)`);
    const topics = await ctx.admin.listTopics();
    for (const d of ctx.definitions) expect(topics).toContain(ctx.topic(d.name));

    const second = await applyTopics(ctx.admin, ctx.definitions, { prefix: ctx.prefix });
    expect(second.changes).toEqual(ctx.definitions.map((d) => ({ kind: 'unchanged', topic: ctx.topic(d.name) })));
  });

  it('makes the state topics really compacted and the round topics co-partitioned', async () => {
    for (const name of ['agents', 'agent-state', 'variables']) {
      expect(await topicConfig(ctx.topic(name), ['cleanup.policy']), name).toEqual({ 'cleanup.policy': 'compact' });
    }
    expect(await topicConfig(ctx.topic('bids'), ['cleanup.policy', 'retention.ms', 'min.insync.replicas'])).toEqual({
      'cleanup.policy': 'delete',
      'retention.ms': '-1',
      'min.insync.replicas': '1',
    });
    const metadata = await ctx.admin.fetchTopicMetadata({ topics: ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'].map((n) => ctx.topic(n)) });
    expect(new Set(metadata.topics.map((t) => t.partitions.length))).toEqual(new Set([12]));
  });

  it('restores drifted configs and keeps configs it does not manage', async () => {
    const bids = ctx.topic('bids');
    await ctx.admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: topicResourceType,
          name: bids,
          configEntries: [
            { name: 'cleanup.policy', value: 'delete' },
            { name: 'retention.ms', value: '1000' },
            { name: 'min.insync.replicas', value: '1' },
            { name: 'max.message.bytes', value: '2000000' },
          ],
        },
      ],
    });
    // the broker's view of configs follows the controller's a moment later
    await waitFor(async () => (await topicConfig(bids, ['retention.ms']))['retention.ms'] === '1000', { what: 'the drifted config' });
    const report = await applyTopics(ctx.admin, ctx.definitions, { prefix: ctx.prefix });
    expect(report.changes.filter((c) => c.kind !== 'unchanged')).toEqual([
      { kind: 'updated', topic: bids, configs: { 'retention.ms': { from: '1000', to: '-1' } } },
    ]);
    await waitFor(async () => (await topicConfig(bids, ['retention.ms']))['retention.ms'] === '-1', { what: 'the restored config' });
    expect(await topicConfig(bids, ['retention.ms', 'max.message.bytes'])).toEqual({ 'retention.ms': '-1', 'max.message.bytes': '2000000' });
  });

  it('adds partitions a definition gains, and refuses to shrink', async () => {
    const name = uniqueName('grow');
    const definition = (partitions: number): TopicDefinition =>
      parseTopicDefinition({ name, purpose: 'test', key: 'k', partitions, replicationFactor: 1, eventTypes: ['io.mabeam.events.Bid'], config: {} }, 'test');
    await applyTopics(ctx.admin, [definition(2)], { prefix: ctx.prefix });
    const grown = await applyTopics(ctx.admin, [definition(3)], { prefix: ctx.prefix });
    await waitFor(async () => (await ctx.admin.fetchTopicMetadata({ topics: [`${ctx.prefix}.${name}`] })).topics[0]!.partitions.length === 3, { what: 'the new partition' });
    expect(grown.changes).toEqual([{ kind: 'updated', topic: `${ctx.prefix}.${name}`, configs: {}, partitions: { from: 2, to: 3 } }]);
    const [meta] = (await ctx.admin.fetchTopicMetadata({ topics: [`${ctx.prefix}.${name}`] })).topics;
    expect(meta!.partitions).toHaveLength(3);
    const error = await applyTopics(ctx.admin, [definition(1)], { prefix: ctx.prefix }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MabeamError);
    expect((error as MabeamError).code).toBe('TOPIC_PARTITIONS_SHRINK');
    expect((error as MabeamError).message).toMatch(/has 3 partitions but its definition asks for 1/);
  });
});
