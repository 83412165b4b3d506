import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { MetricSample } from '../../src/events/types.ts';
import { MabeamError } from '../../src/errors.ts';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import { TopicFollower } from '../../src/readmodel/topicFollower.ts';
import { testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

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
    const before = await totalEnd(topic);
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [await message(1)] });
    await committed.commit();
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [await message(2), await message(3)] });
    await aborted.abort();
    // The broker writes the markers after abort() returns; the tail is only an aborted one once they are in.
    await waitFor(async () => (await totalEnd(topic)) === before + 5, { what: 'the abort marker' });

    // Everything committed is read, and the aborted tail does not hold the wait up to its timeout.
    await follower.caughtUp(5_000);
    expect(seen).toEqual([1]);
  });

  it('reads a record again when its handler fails retriably, never past it', async () => {
    const topic = ctx.topic('outcomes');
    const producer = await ctx.producer();
    for (const value of ['a', 'b', 'c']) await producer.send({ topic, messages: [{ key: 'one-partition', value }] });
    const attempts: string[] = [];
    const seen: string[] = [];
    const follower = new TopicFollower({
      kafka: ctx.kafka, topic, groupPrefix: `${ctx.prefix}.retrying`, logger: ctx.logger,
      onMessage: (m) => {
        const value = m.value!.toString();
        attempts.push(value);
        if (value === 'b' && attempts.filter((v) => v === 'b').length < 3) throw new MabeamError('REGISTRY_UNAVAILABLE', 'registry down');
        seen.push(value);
      },
    });
    ctx.defer(() => follower.stop());
    await follower.start();
    expect(attempts).toEqual(['a', 'b', 'b', 'b', 'c']);
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('stops for good, and says so to a waiter, when a handler fails for good', async () => {
    const topic = ctx.topic('directives');
    const producer = await ctx.producer();
    await producer.send({ topic, messages: [{ key: 'k', value: 'poison' }] });
    const follower = new TopicFollower({
      kafka: ctx.kafka, topic, groupPrefix: `${ctx.prefix}.failing`, logger: ctx.logger,
      onMessage: () => {
        throw new MabeamError('VALIDATION_FAILED', 'cannot be handled');
      },
    });
    ctx.defer(() => follower.stop());
    await expect(follower.start()).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
    expect((await follower.stoppedForGood).message).toContain('cannot be handled');
  });
});

/** The sum of the topic's partition ends. */
async function totalEnd(topic: string): Promise<number> {
  return (await ctx.admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
}
