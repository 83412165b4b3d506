import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { MetricSample } from '../../src/events/types.ts';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import { TopicFollower } from '../../src/readmodel/topicFollower.ts';
import { testContext, uniqueName, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('follower');
});
afterAll(() => ctx?.close());

describe('following a topic', () => {
  it('counts a partition read when all that is left of it is an aborted transaction', async () => {
    const topic = ctx.topic('metrics');
    const seen: number[] = [];
    const follower = new TopicFollower({
      kafka: ctx.kafka, topic, groupPrefix: `${ctx.prefix}.follower`,
      onMessage: async (m) => void seen.push((await ctx.codec.decode<MetricSample>(m.value)).event.value),
    });
    ctx.defer(() => follower.stop());
    await follower.start();

    const producer = createTransactionalProducer(ctx.kafka, uniqueName('writer'));
    await producer.connect();
    ctx.defer(() => producer.disconnect());
    const message = async (value: number) => ({
      key: 'probe',
      value: await ctx.codec.encode('MetricSample', { envelope: newEnvelope('MetricSample', 'probe'), name: 'step', value, labels: {}, source: 'probe' } satisfies MetricSample),
    });
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [await message(1)] });
    await committed.commit();
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [await message(2), await message(3)] });
    await aborted.abort();

    // Everything committed is read, and the aborted tail does not hold the wait up to its timeout.
    await follower.caughtUp(5_000);
    expect(seen).toEqual([1]);
  });
});
