import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterAbortedMessages } from '../../src/kafka/abortedFilter.ts';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import { readToEnd } from '../../src/kafka/readToEnd.ts';
import { waitForLeaders } from '../../src/topics/apply.ts';
import { testContext, uniqueName, type TestContext } from '../helpers.ts';

const message = (offset: number, producerId: string, key: Buffer | null = Buffer.from('k'), inTransaction = true) => ({ offset: String(offset), key, batchContext: { producerId, inTransaction } });
const marker = (offset: number, producerId: string) => message(offset, producerId, Buffer.from([0, 0, 0, 0]));

describe('read_committed filtering of aborted transactions', () => {
  it('drops every aborted producer\'s records when a fetch starts past the first offset of several aborted transactions', () => {
    // A and B both aborted; the fetch starts at offset 2, after both began.
    const kept = filterAbortedMessages({
      messages: [message(2, 'B'), message(3, 'A'), marker(4, 'A'), marker(5, 'B'), message(6, 'C', Buffer.from('k'), false)],
      abortedTransactions: [{ firstOffset: '0', producerId: 'A' }, { firstOffset: '1', producerId: 'B' }],
    });
    expect(kept.map((m) => m.offset)).toEqual(['4', '5', '6']);
  });

  it('keeps a producer\'s records after its abort marker, and committed producers\' records throughout', () => {
    const kept = filterAbortedMessages({
      messages: [message(0, 'A'), message(1, 'C'), marker(2, 'A'), message(3, 'A')],
      abortedTransactions: [{ firstOffset: '0', producerId: 'A' }],
    });
    expect(kept.map((m) => m.offset)).toEqual(['1', '2', '3']);
  });
});

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('aborted', { applyTopics: false });
});
afterAll(() => ctx?.close());

describe('kafkajs consumers with the fix, on the real broker', () => {
  it('a read starting inside two interleaved aborted transactions sees only the committed record', async () => {
    const topic = uniqueName('aborted');
    await ctx.admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: false });
    // Until the partition's leader serves it (kafkajs's own wait gives up on a broker that is still electing).
    await waitForLeaders(ctx.admin, [topic]);
    const [a, b] = [createTransactionalProducer(ctx.kafka, uniqueName('txn-a')), createTransactionalProducer(ctx.kafka, uniqueName('txn-b'))];
    await Promise.all([a.connect(), b.connect()]);
    ctx.defer(() => Promise.all([a.disconnect(), b.disconnect()]));
    const [ta, tb] = [await a.transaction(), await b.transaction()];
    // Offsets 0..3: a1, b1, b2, a2 — the read below starts at b2, a record of the second-listed aborted transaction.
    await ta.send({ topic, messages: [{ key: 'k', value: 'a1' }] });
    await tb.send({ topic, messages: [{ key: 'k', value: 'b1' }] });
    await tb.send({ topic, messages: [{ key: 'k', value: 'b2' }] });
    await ta.send({ topic, messages: [{ key: 'k', value: 'a2' }] });
    await ta.abort();
    await tb.abort();
    const plain = await ctx.producer();
    await plain.send({ topic, messages: [{ key: 'k', value: 'committed' }] });
    // A group whose committed position is offset 2: its first fetch starts after both transactions began.
    const groupId = uniqueName('reader');
    await ctx.admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '2' }] });
    const consumer = ctx.kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    ctx.defer(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topic });
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.CRASH, ({ payload }) => reject(payload.error));
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value!.toString());
          if (message.value!.toString() === 'committed') resolve();
        },
      });
    });
    expect(seen).toEqual(['committed']);
    // readToEnd agrees from the beginning.
    const all: string[] = [];
    await readToEnd(ctx.kafka, { topics: [topic], onRecord: ({ message }) => void all.push(message.value!.toString()) });
    expect(all).toEqual(['committed']);
  });
});
