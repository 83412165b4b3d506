import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame } from '../../src/codec/wireFormat.ts';
import { EventConsumer } from '../../src/consumer/eventConsumer.ts';
import { DeadLetterWriter } from '../../src/deadletters/deadLetterWriter.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, DeadLetter, Vote } from '../../src/events/types.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('deadletters');
});
afterAll(() => ctx?.close());

const bid = (roundId: string, agentId: string, amount = 10): Bid => ({
  envelope: newEnvelope('Bid', agentId, { correlationId: roundId }),
  roundId,
  agentId,
  amount,
  bundle: [],
  attributes: '{}',
});

describe('dead letters', () => {
  it('sends every bad message there with its reason and bytes, and keeps consuming', async () => {
    const producer = await ctx.producer();
    const bids = ctx.topic('bids');
    const groupId = uniqueName('bidders');
    const handled: Array<{ offset: string; agentId: string }> = [];
    const consumer = new EventConsumer({
      kafka: ctx.kafka,
      groupId,
      topics: [{ topic: bids, definition: ctx.definition('bids') }],
      codec: ctx.codec,
      deadLetters: new DeadLetterWriter({ producer, codec: ctx.codec, topic: ctx.topic('dead-letters'), producerId: 'bidders-1', consumerGroup: groupId, metrics: ctx.metrics, logger: ctx.logger }),
      logger: ctx.logger,
      fromBeginning: true,
      onEvent: (decoded, context) => {
        const agentId = (decoded.event as unknown as Bid).agentId;
        if (agentId === 'explodes') throw new Error('handler blew up');
        handled.push({ offset: context.offset, agentId });
      },
    });
    ctx.defer(() => consumer.stop());

    const bidType = ctx.catalog.get('Bid')!.type;
    const bidId = await ctx.codec.schemaId('Bid');
    const vote: Vote = { envelope: newEnvelope('Vote', 'a'), roundId: 'r1', agentId: 'a', choice: 'yes', weight: null, reason: null };
    // One partition key for all, so offsets follow this order.
    const key = 'r1';
    const inputs: Array<{ label: string; value: Buffer | null; key?: string; expect: string }> = [
      { label: 'good-1', value: await ctx.codec.encode('Bid', bid(key, 'good-1')), expect: 'handled' },
      { label: 'garbage', value: Buffer.from([0, 0, 0, 0]), expect: 'TRUNCATED_MESSAGE' },
      { label: 'json', value: Buffer.from('{"roundId":"r1","amount":5}'), expect: 'BAD_MAGIC_BYTE' },
      { label: 'unknown-id', value: frame(2_000_000_000, bidType.toBuffer(bid(key, 'x'))), expect: 'UNKNOWN_SCHEMA_ID' },
      { label: 'good-2', value: await ctx.codec.encode('Bid', bid(key, 'good-2')), expect: 'handled' },
      { label: 'nan', value: frame(bidId, bidType.toBuffer(bid(key, 'nan', Number.NaN))), expect: 'VALIDATION_FAILED' },
      { label: 'wrong-key', value: await ctx.codec.encode('Bid', bid('r2', 'wrong-key')), expect: 'VALIDATION_FAILED' },
      { label: 'vote-on-bids', value: await ctx.codec.encode('Vote', vote), expect: 'UNEXPECTED_EVENT_TYPE' },
      { label: 'bad-body', value: frame(bidId, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), expect: 'UNDECODABLE_BODY' },
      { label: 'null', value: null, expect: 'EMPTY_MESSAGE' },
      { label: 'explodes', value: await ctx.codec.encode('Bid', bid(key, 'explodes')), expect: 'HANDLER_FAILED' },
      { label: 'good-3', value: await ctx.codec.encode('Bid', bid(key, 'good-3')), expect: 'handled' },
    ];
    await producer.send({ topic: bids, messages: inputs.map((i) => ({ key, value: i.value, headers: { label: i.label } })) });
    await consumer.start();

    const { messages: letters, crashed: readerCrash } = await collectRaw(ctx, ctx.topic('dead-letters'));
    const bad = inputs.filter((i) => i.expect !== 'handled');
    await waitFor(() => handled.length === 3 && letters.length === bad.length, { crashed: () => consumer.crash ?? readerCrash(), what: 'all inputs', timeoutMs: 30_000 });

    expect(handled.map((h) => h.agentId)).toEqual(['good-1', 'good-2', 'good-3']);
    const decoded = await Promise.all(letters.map(async (m) => (await ctx.codec.decode<DeadLetter>(m.value, { allowedTypes: ctx.definition('dead-letters').eventTypes })).event));
    const byLabel = new Map(decoded.map((d) => [d.headers.find((h) => h.key === 'label')!.value!.toString(), d]));
    for (const input of bad) {
      const letter = byLabel.get(input.label);
      expect(letter, input.label).toBeDefined();
      expect(letter!.reasonCode, input.label).toBe(input.expect);
      expect(letter!.reason.length, input.label).toBeGreaterThan(10);
      expect(letter!.sourceTopic).toBe(bids);
      expect(letter!.consumerGroup).toBe(groupId);
      expect(letter!.key?.toString()).toBe(key);
      // the original bytes, byte for byte
      if (input.value === null) expect(letter!.value).toBeNull();
      else expect(letter!.value!.equals(input.value), input.label).toBe(true);
    }
    expect(byLabel.get('nan')!.reason).toMatch(/amount: NaN is not a finite number/);
    expect(byLabel.get('wrong-key')!.reason).toMatch(/key is "r1" but bids is keyed by roundId \("r2"\)/);
    expect(byLabel.get('explodes')!.reason).toMatch(/handler blew up/);
    expect(byLabel.get('unknown-id')!.schemaId).toBe(2_000_000_000);

    // Nothing lost: every offset was handled or dead-lettered, exactly once.
    const accounted = [...handled.map((h) => Number(h.offset)), ...decoded.map((d) => d.sourceOffset)].sort((a, b) => a - b);
    const first = accounted[0]!;
    expect(accounted).toEqual(inputs.map((_, i) => first + i));

    // The metric counts them by reason.
    const metric = await ctx.metrics.deadLetters.get();
    const counts = Object.fromEntries(metric.values.map((v) => [v.labels.reason, v.value]));
    expect(counts).toEqual({
      TRUNCATED_MESSAGE: 1,
      BAD_MAGIC_BYTE: 1,
      UNKNOWN_SCHEMA_ID: 1,
      VALIDATION_FAILED: 2,
      UNEXPECTED_EVENT_TYPE: 1,
      UNDECODABLE_BODY: 1,
      EMPTY_MESSAGE: 1,
      HANDLER_FAILED: 1,
    });

    // The group's committed offset moves past the last message.
    await waitFor(
      async () => {
        const [offsets] = await ctx.admin.fetchOffsets({ groupId, topics: [bids] });
        const committed = offsets!.partitions.map((p) => Number(p.offset)).reduce((a, b) => Math.max(a, b), -1);
        return committed === first + inputs.length;
      },
      { what: 'the committed offset' },
    );
  });
});
