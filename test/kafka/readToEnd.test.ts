import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MabeamError, isMabeamError } from '../../src/errors.ts';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import { readToEnd, type ReadRecord } from '../../src/kafka/readToEnd.ts';
import { waitForLeaders } from '../../src/topics/apply.ts';
import { testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('read-to-end', { applyTopics: false });
});
afterAll(() => ctx?.close());

/** A topic of its own for each test. */
async function newTopic(partitions = 1): Promise<string> {
  const topic = uniqueName('rte');
  await ctx.admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: false });
  ctx.defer(() => ctx.admin.deleteTopics({ topics: [topic] }).catch(() => undefined));
  await waitForLeaders(ctx.admin, [topic]);
  return topic;
}

/** The broker writes a transaction's markers after commit() / abort() return: wait until the partition ends at `end`. */
async function markersWritten(topic: string, end: number, partition = 0): Promise<void> {
  await waitFor(async () => Number((await ctx.admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)?.high) === end, { what: `${topic}/${partition} to end at ${end}` });
}

async function transactional(): Promise<Producer> {
  const producer = createTransactionalProducer(ctx.kafka, uniqueName('writer'));
  await producer.connect();
  ctx.defer(() => producer.disconnect());
  return producer;
}

/** Reads and returns the values read, as `partition:value`. */
async function values(topics: string[], options: Partial<Parameters<typeof readToEnd>[1]> = {}): Promise<{ read: string[]; ends: Map<string, number> }> {
  const read: string[] = [];
  const { ends } = await readToEnd(ctx.kafka, {
    topics,
    timeoutMs: 20_000,
    groupPrefix: `${ctx.prefix}.read`,
    onRecord: (r: ReadRecord) => void read.push(`${r.partition}:${r.message.value?.toString()}`),
    ...options,
  });
  return { read, ends };
}

describe('reading topics to their end', () => {
  it('reads empty topics without starting a consumer', async () => {
    const [a, b] = [await newTopic(2), await newTopic(1)];
    const groupPrefix = `${ctx.prefix}.empty`;
    const { read, ends } = await values([a, b], { groupPrefix });
    expect(read).toEqual([]);
    expect(ends).toEqual(new Map([[`${a}/0`, 0], [`${a}/1`, 0], [`${b}/0`, 0]]));
    const groups = (await ctx.admin.listGroups()).groups.map((g) => g.groupId);
    expect(groups.filter((g) => g.includes(groupPrefix))).toEqual([]);
  });

  it('reads what was committed and ends on an aborted tail', async () => {
    const topic = await newTopic();
    const producer = await transactional();
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ value: '1' }, { value: '2' }] });
    await committed.commit();
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ value: 'x' }, { value: 'y' }] });
    await aborted.abort();
    await markersWritten(topic, 6);
    const { read, ends } = await values([topic]);
    expect(read).toEqual(['0:1', '0:2']);
    // Two records, a commit marker, two aborted records and an abort marker.
    expect(ends.get(`${topic}/0`)).toBe(6);
  });

  it('ends on a committed tail whose last offset is a commit marker, and starts where asked', async () => {
    const topic = await newTopic();
    const producer = await transactional();
    for (const batch of [['1', '2'], ['3']]) {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: batch.map((value) => ({ value })) });
      await tx.commit();
    }
    await markersWritten(topic, 5);
    const whole = await values([topic]);
    expect(whole.read).toEqual(['0:1', '0:2', '0:3']);
    expect(whole.ends.get(`${topic}/0`)).toBe(5);
    // From offset 3 (the record after the first commit marker); from the end, nothing.
    expect((await values([topic], { from: new Map([[`${topic}/0`, 3]]) })).read).toEqual(['0:3']);
    expect((await values([topic], { from: new Map([[`${topic}/0`, 5]]) })).read).toEqual([]);
  });

  it('reads only the partitions asked for, and nothing written after the call', async () => {
    const topic = await newTopic(3);
    const producer = await ctx.producer();
    for (const partition of [0, 1, 2]) await producer.send({ topic, messages: [1, 2, 3].map((i) => ({ partition, value: `p${partition}-${i}` })) });
    let wroteMore = false;
    const read: string[] = [];
    const { ends } = await values([topic], {
      partitions: [1, 2],
      onRecord: async (r) => {
        read.push(`${r.partition}:${r.message.value?.toString()}`);
        if (wroteMore) return;
        wroteMore = true; // written while reading: past the end the call saw
        await producer.send({ topic, messages: [{ partition: 1, value: 'late' }, { partition: 2, value: 'late' }] });
      },
    });
    const read1 = read.filter((v) => v.startsWith('1:'));
    const read2 = read.filter((v) => v.startsWith('2:'));
    expect(read1).toEqual(['1:p1-1', '1:p1-2', '1:p1-3']);
    expect(read2).toEqual(['2:p2-1', '2:p2-2', '2:p2-3']);
    expect(read).toHaveLength(6);
    expect(ends).toEqual(new Map([[`${topic}/1`, 3], [`${topic}/2`, 3]]));
  });

  it('retries a record whose handler fails retriably, the same record again, and rejects on any other failure', async () => {
    const topic = await newTopic();
    const producer = await ctx.producer();
    await producer.send({ topic, messages: ['a', 'b', 'c'].map((value) => ({ value })) });
    const attempts: string[] = [];
    const read: string[] = [];
    await readToEnd(ctx.kafka, {
      topics: [topic],
      onRecord: ({ message }) => {
        const value = message.value!.toString();
        attempts.push(value);
        if (value === 'b' && attempts.filter((v) => v === 'b').length < 3) throw new MabeamError('REGISTRY_UNAVAILABLE', 'registry down');
        read.push(value);
      },
    });
    expect(attempts).toEqual(['a', 'b', 'b', 'b', 'c']);
    expect(read).toEqual(['a', 'b', 'c']);

    const failure = readToEnd(ctx.kafka, {
      topics: [topic],
      onRecord: ({ message }) => {
        if (message.value!.toString() === 'b') throw new MabeamError('VALIDATION_FAILED', 'bad record');
      },
    });
    await expect(failure).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('reads what was committed before an open transaction without waiting for it', async () => {
    const topic = await newTopic(2);
    const producer = await ctx.producer();
    await producer.send({ topic, messages: [{ partition: 0, value: 'ok' }, { partition: 1, value: 'before' }] });
    const writer = await transactional();
    const open = await writer.transaction();
    await open.send({ topic, messages: [{ partition: 1, value: 'pending' }] });
    const { read, ends } = await values([topic]);
    await open.commit();
    await markersWritten(topic, 3, 1);
    expect(read.sort()).toEqual(['0:ok', '1:before']);
    expect(ends).toEqual(new Map([[`${topic}/0`, 1], [`${topic}/1`, 1]]));
    // Committed since: read now.
    expect((await values([topic])).read.sort()).toEqual(['0:ok', '1:before', '1:pending']);
  });

  it('times out with LOG_READ_TIMEOUT naming the partitions not yet read and the failure that held them', async () => {
    const topic = await newTopic(2);
    const producer = await ctx.producer();
    await producer.send({ topic, messages: [{ partition: 0, value: 'ok' }, { partition: 1, value: 'stuck' }, { partition: 1, value: 'after' }] });
    const read: string[] = [];
    let error: unknown;
    try {
      await readToEnd(ctx.kafka, {
        topics: [topic],
        timeoutMs: 2_000,
        onRecord: ({ partition, message }) => {
          if (message.value!.toString() === 'stuck') throw new MabeamError('REGISTRY_UNAVAILABLE', 'registry down');
          read.push(`${partition}:${message.value!.toString()}`);
        },
      });
    } catch (e) {
      error = e;
    }
    expect(isMabeamError(error, 'LOG_READ_TIMEOUT')).toBe(true);
    expect((error as MabeamError).retriable).toBe(true);
    expect((error as MabeamError).message).toContain(`${topic}/1 at 0 of 2`);
    expect((error as MabeamError).message).toContain('registry down');
    // Partitions are read one batch at a time: partition 0 may be read or still wait behind partition 1.
    expect((error as MabeamError).details['behind']).toContainEqual({ topic, partition: 1, position: 0, end: 2 });
    // The record after the one that kept failing was never handed over.
    expect(read.filter((r) => r.startsWith('1:'))).toEqual([]);
  });
});
