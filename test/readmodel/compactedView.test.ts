import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetterWriter } from '../../src/deadletters/deadLetterWriter.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import type { VariableState } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { CompactedView } from '../../src/readmodel/compactedView.ts';
import { viewScripts } from '../../src/readmodel/scripts.ts';
import { testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
let redis: Redis;
beforeAll(async () => {
  ctx = await testContext('view');
  // A database of its own, so flushing it touches no other test.
  redis = new Redis(ctx.stack.redisUrl, { db: 3 });
  ctx.defer(() => redis.quit());
});
afterAll(() => ctx?.close());

const variable = (variableId: string, version: number, value: unknown): VariableState => ({
  envelope: newEnvelope('VariableState', 'writer-1', { correlationId: variableId }),
  variableId,
  version,
  valueType: 'float',
  value: JSON.stringify(value),
  writerId: 'writer-1',
  definition: null,
});

describe('a Redis view of a compacted topic', () => {
  it('holds the latest value per key, forgets tombstoned keys, and is rebuilt from the topic after a flush', async () => {
    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    const topic = ctx.topic('variables');
    await events.send(topic, 'temperature', 'VariableState', variable('temperature', 1, 0.7));
    await events.send(topic, 'model', 'VariableState', variable('model', 1, 'small'));
    await events.send(topic, 'temperature', 'VariableState', variable('temperature', 2, 0.4));
    await producer.send({ topic, messages: [{ key: 'model', value: null }] });
    await producer.send({ topic, messages: [{ key: 'temperature', value: Buffer.from('not avro') }] });

    const view = new CompactedView({
      kafka: ctx.kafka,
      redis,
      codec: ctx.codec,
      deadLetters: new DeadLetterWriter({ producer, codec: ctx.codec, topic: ctx.topic('dead-letters'), producerId: 'view', logger: ctx.logger }),
      logger: ctx.logger,
      topic,
      definition: ctx.definition('variables'),
      namespace: `mabeam:${ctx.prefix}:variables`,
      project: (d) => ({ version: (d.event as unknown as VariableState).version, value: JSON.parse((d.event as unknown as VariableState).value) }),
    });
    ctx.defer(() => view.stop());
    await view.start();
    // The last record is undecodable: it goes to dead-letters and the view still catches up.
    await view.caughtUp();

    expect(await view.get('temperature')).toEqual({ version: 2, value: 0.4 });
    expect(await view.get('model')).toBeUndefined();
    expect([...(await view.entries()).keys()]).toEqual(['temperature']);

    await redis.flushdb();
    expect(await view.get('temperature')).toEqual({ version: 2, value: 0.4 });

    await events.send(topic, 'temperature', 'VariableState', variable('temperature', 3, 0.9));
    await view.caughtUp();
    expect(await view.get('temperature')).toEqual({ version: 3, value: 0.9 });
  });

  it('of a topic written in transactions, catches up when a partition ends in an aborted transaction', async () => {
    const topic = ctx.topic('variables');
    const producer = createTransactionalProducer(ctx.kafka, uniqueName('owner'));
    await producer.connect();
    ctx.defer(() => producer.disconnect());
    const message = async (version: number, value: number) => ({ key: 'pressure', value: await ctx.codec.encode('VariableState', variable('pressure', version, value)) });
    const before = await totalEnd(topic);
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [await message(1, 1.0)] });
    await committed.commit();
    const aborted = await producer.transaction(); // an owner that failed mid-batch
    await aborted.send({ topic, messages: [await message(2, 2.0)] });
    await aborted.abort();
    // The broker writes the markers after abort() returns; the tail is only an aborted one once they are in.
    await waitFor(async () => (await totalEnd(topic)) === before + 4, { what: 'the abort marker' });

    const view = new CompactedView({
      kafka: ctx.kafka, redis, codec: ctx.codec, logger: ctx.logger, topic, definition: ctx.definition('variables'), namespace: `mabeam:${ctx.prefix}:aborted`, transactional: true,
      deadLetters: new DeadLetterWriter({ producer: await ctx.producer(), codec: ctx.codec, topic: ctx.topic('dead-letters'), producerId: 'view', logger: ctx.logger }),
      project: (d) => ({ version: (d.event as unknown as VariableState).version }),
    });
    ctx.defer(() => view.stop());
    await view.start();
    await view.caughtUp(5_000); // the aborted record is never delivered, yet its offsets count as read
    expect(await view.get('pressure')).toEqual({ version: 1 });
  });

  it('applies a record at most once and never goes back to an older offset', async () => {
    const scripts = viewScripts(redis);
    const keys = { values: `${ctx.prefix}:s:values`, offsets: `${ctx.prefix}:s:offsets`, generation: `${ctx.prefix}:s:generation`, memberships: `${ctx.prefix}:s:m` };
    await redis.set(keys.generation, 'g1');
    expect(await scripts.applyRecord(keys, 'g1', 0, '5', 'k', '"five"')).toBe('applied');
    expect(await scripts.applyRecord(keys, 'g1', 0, '5', 'k', '"five again"')).toBe('already-applied');
    expect(await scripts.applyRecord(keys, 'g1', 0, '4', 'k', '"four"')).toBe('already-applied');
    expect(await scripts.applyRecord(keys, 'g0', 0, '9', 'k', '"old generation"')).toBe('old-generation');
    expect(await scripts.applyRecord(keys, 'g1', 1, '0', 'k', null)).toBe('applied');
    expect(await redis.hgetall(keys.values)).toEqual({});
    expect(await redis.hgetall(keys.offsets)).toEqual({ '0': '5', '1': '0' });
  });

  it('keeps secondary indexes exact as a value changes and when it is deleted', async () => {
    const scripts = viewScripts(redis);
    const keys = { values: `${ctx.prefix}:i:values`, offsets: `${ctx.prefix}:i:offsets`, generation: `${ctx.prefix}:i:generation`, memberships: `${ctx.prefix}:i:m` };
    await redis.set(keys.generation, 'g');
    const set = (name: string) => `${ctx.prefix}:i:index:${name}`;
    await scripts.applyRecord(keys, 'g', 0, '0', 'a1', '{}', [set('gpu'), set('plan')]);
    await scripts.applyRecord(keys, 'g', 0, '1', 'a2', '{}', [set('gpu')]);
    expect((await redis.smembers(set('gpu'))).sort()).toEqual(['a1', 'a2']);
    await scripts.applyRecord(keys, 'g', 0, '2', 'a1', '{}', [set('code')]);
    expect(await redis.smembers(set('gpu'))).toEqual(['a2']);
    expect(await redis.smembers(set('plan'))).toEqual([]);
    expect(await redis.smembers(set('code'))).toEqual(['a1']);
    await scripts.applyRecord(keys, 'g', 0, '3', 'a2', null);
    expect(await redis.smembers(set('gpu'))).toEqual([]);
    expect(await redis.hgetall(keys.memberships)).toEqual({ a1: JSON.stringify([set('code')]) });
  });
});

/** The sum of the topic's partition ends. */
async function totalEnd(topic: string): Promise<number> {
  return (await ctx.admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
}
