import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecodedEvent } from '../../src/codec/codec.ts';
import { EventConsumer, type EventContext } from '../../src/consumer/eventConsumer.ts';
import { DeadLetterWriter } from '../../src/deadletters/deadLetterWriter.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('roundtrip');
});
afterAll(() => ctx?.close());

describe('an Avro event through a real topic', () => {
  it('arrives decoded exactly as sent, in the wire format, with its trace headers', async () => {
    const producer = await ctx.producer();
    const received: Array<{ decoded: DecodedEvent; context: EventContext }> = [];
    const consumer = new EventConsumer({
      kafka: ctx.kafka,
      groupId: uniqueName('roundtrip'),
      topics: [{ topic: ctx.topic('bids'), definition: ctx.definition('bids') }],
      codec: ctx.codec,
      deadLetters: new DeadLetterWriter({ producer, codec: ctx.codec, topic: ctx.topic('dead-letters'), producerId: 'test', logger: ctx.logger }),
      logger: ctx.logger,
      fromBeginning: true,
      onEvent: (decoded, context) => void received.push({ decoded, context }),
    });
    ctx.defer(() => consumer.stop());
    await consumer.start();

    const bid: Bid = {
      envelope: newEnvelope('Bid', 'agent-1', { correlationId: 'round-1', causationId: 'request-1' }),
      roundId: 'round-1',
      agentId: 'agent-1',
      amount: 41.5,
      bundle: ['gpu'],
      attributes: '{"region":"eu"}',
    };
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await new EventProducer(producer, ctx.codec).send(ctx.topic('bids'), bid.roundId, 'Bid', bid, { trace: { traceparent } });

    const { decoded, context } = await waitFor(() => received[0], { crashed: () => consumer.crash, what: 'the bid' });
    expect(decoded.type).toBe('Bid');
    expect(decoded.fullName).toBe('io.mabeam.events.Bid');
    expect(decoded.event).toEqual(bid);
    expect(context.key).toBe('round-1');
    expect(context.headers?.['traceparent']?.toString()).toBe(traceparent);
    expect(context.headers?.['mabeam-event-type']?.toString()).toBe('Bid');

    // The id in the bytes is the registry's id for the Bid subject.
    const latest = await fetch(`${ctx.stack.schemaRegistryUrl}/subjects/io.mabeam.events.Bid/versions/latest`).then((r) => r.json() as Promise<{ id: number }>);
    expect(decoded.schemaId).toBe(latest.id);
  });

  it('refuses to encode an invalid event, saying which field is wrong', async () => {
    const bad = { envelope: newEnvelope('Bid', 'agent-1'), roundId: 'r', agentId: 'a', amount: 'ten', bundle: [], attributes: '{}' };
    await expect(ctx.codec.encode('Bid', bad)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/amount: "ten" is not a valid double/) });
  });
});
