import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Producer } from 'kafkajs';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import { readToEnd } from '../../src/kafka/readToEnd.ts';
import { waitForLeaders } from '../../src/topics/apply.ts';
import { testContext, uniqueName, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('coordcache', { applyTopics: false });
});
afterAll(() => ctx?.close());

/** The requests a producer sends, by kafkajs API name. */
function countRequests(producer: Producer): Map<string, number> {
  const counts = new Map<string, number>();
  producer.on(producer.events.REQUEST, ({ payload }) => void counts.set(payload.apiName, (counts.get(payload.apiName) ?? 0) + 1));
  return counts;
}

async function topicWithLeader(): Promise<string> {
  const topic = uniqueName('coordcache');
  await ctx.admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: false });
  await waitForLeaders(ctx.admin, [topic]);
  return topic;
}

describe('coordinators found once per producer, on the real broker', () => {
  it('ten transactions with offsets ask where their coordinators are once each, not four times a transaction, and all commit', async () => {
    const topic = await topicWithLeader();
    const groupId = uniqueName('coordcache-group');
    const producer = createTransactionalProducer(ctx.kafka, uniqueName('coordcache-txn'));
    const requests = countRequests(producer);
    await producer.connect();
    ctx.defer(() => producer.disconnect());
    for (let i = 0; i < 10; i++) {
      const txn = await producer.transaction();
      await txn.send({ topic, messages: [{ key: 'k', value: `v${i}` }] });
      await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: String(i + 1) }] }] });
      await txn.commit();
    }
    // Without the cache: one lookup for InitProducerId and four per transaction, 41.
    expect(requests.get('GroupCoordinator')).toBeLessThanOrEqual(2);
    expect(requests.get('EndTxn')).toBe(10);
    const values: string[] = [];
    await readToEnd(ctx.kafka, { topics: [topic], onRecord: ({ message }) => void values.push(message.value!.toString()) });
    expect(values).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
    const [committed] = await ctx.admin.fetchOffsets({ groupId, topics: [topic] });
    expect(committed!.partitions[0]!.offset).toBe('10');
  });

  it('a producer fenced by a newer one with its transactional id still fails to commit, and the newer one commits', async () => {
    const topic = await topicWithLeader();
    const id = uniqueName('coordcache-fenced');
    const old = createTransactionalProducer(ctx.kafka, id);
    await old.connect();
    ctx.defer(() => old.disconnect());
    const warm = await old.transaction();
    await warm.send({ topic, messages: [{ key: 'k', value: 'first' }] });
    await warm.commit();
    const open = await old.transaction();
    await open.send({ topic, messages: [{ key: 'k', value: 'fenced' }] });
    const newer = createTransactionalProducer(ctx.kafka, id);
    await newer.connect();
    ctx.defer(() => newer.disconnect());
    // Its first transaction takes the id (InitProducerId), which fences the old producer.
    const txn = await newer.transaction();
    await expect(open.commit()).rejects.toThrow();
    await txn.send({ topic, messages: [{ key: 'k', value: 'newer' }] });
    await txn.commit();
    const values: string[] = [];
    await readToEnd(ctx.kafka, { topics: [topic], onRecord: ({ message }) => void values.push(message.value!.toString()) });
    expect(values).toEqual(['first', 'newer']);
  });
});
