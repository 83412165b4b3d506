import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { MetricSample } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('readlog');
});
afterAll(() => ctx?.close());

describe('reading the log', () => {
  it('reads a topic whole, or only the last offsets of each partition', async () => {
    const events = new EventProducer(await ctx.producer(), ctx.codec);
    const topic = ctx.topic('metrics');
    for (let i = 0; i < 30; i++) {
      const sample: MetricSample = { envelope: newEnvelope('MetricSample', 'probe'), name: 'step', value: i, labels: {}, source: 'probe' };
      await events.send(topic, 'probe', 'MetricSample', sample); // one key: one partition
    }
    const values = (records: Awaited<ReturnType<typeof readLog>>) => records.map((r) => (r.decoded.event as unknown as MetricSample).value);
    expect(values(await readLog(ctx.kafka, ctx.codec, [topic]))).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const tail = await readLog(ctx.kafka, ctx.codec, [topic], { lastPerPartition: 5 });
    expect(values(tail)).toEqual([25, 26, 27, 28, 29]);
    expect(tail.map((r) => r.offset)).toEqual([25, 26, 27, 28, 29]);
  });

  it('returns the records that do not decode with their positions and reasons, beside the events', async () => {
    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    const topic = ctx.topic('metrics');
    const key = 'undecodable-probe';
    const sample = (value: number): MetricSample => ({ envelope: newEnvelope('MetricSample', 'probe'), name: 'mixed', value, labels: {}, source: 'probe' });
    await events.send(topic, key, 'MetricSample', sample(1));
    const [garbage] = await producer.send({ topic, messages: [{ key, value: Buffer.from('garbage') }] });
    const [unknownId] = await producer.send({ topic, messages: [{ key, value: Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 1, 2]) }] });
    await events.send(topic, key, 'MetricSample', sample(2));
    const log = await readLog(ctx.kafka, ctx.codec, [topic]);
    expect(log.filter((r) => (r.decoded.event as unknown as MetricSample).name === 'mixed').map((r) => (r.decoded.event as unknown as MetricSample).value)).toEqual([1, 2]);
    expect(log.undecodable.map(({ message: _, ...where }) => where)).toEqual([
      { topic, partition: garbage!.partition, offset: Number(garbage!.baseOffset), code: 'BAD_MAGIC_BYTE', key },
      { topic, partition: unknownId!.partition, offset: Number(unknownId!.baseOffset), code: 'UNKNOWN_SCHEMA_ID', key },
    ]);
  });
});
