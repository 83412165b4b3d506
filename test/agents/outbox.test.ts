import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../src/events/types.ts';
import { Outbox } from '../../src/agents/outbox.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('outbox');
});
afterAll(() => ctx?.close());

/** An outbox on a producer of its own, and how many produce requests that producer has made. */
async function outboxCountingRequests(): Promise<{ outbox: Outbox; produceRequests: () => number }> {
  const producer = await ctx.producer();
  let requests = 0;
  producer.on(producer.events.REQUEST, ({ payload }) => {
    if (payload.apiName === 'Produce') requests++;
  });
  const outbox = new Outbox({ producer, codec: ctx.codec, instanceId: 'outbox-test', topic: ctx.topic, logger: ctx.logger });
  return { outbox, produceRequests: () => requests };
}

describe('outbox', () => {
  it('writes what is sent while a batch is on its way in one next batch, keeps the order of sends one after another, and a lone send waits for nothing', async () => {
    const heartbeats = await collectRaw(ctx, ctx.topic('heartbeats'));
    const { outbox, produceRequests } = await outboxCountingRequests();

    // Twenty sends at once: the first goes out alone, the other nineteen wait for it and go out together.
    await Promise.all(Array.from({ length: 20 }, (_, i) => outbox.send([outbox.heartbeat('together', i + 1, 1_000, 0)])));
    expect(produceRequests()).toBe(2);

    // Sends one after another: one request each, in order.
    for (let i = 1; i <= 5; i++) await outbox.send([outbox.heartbeat('in-turn', i, 1_000, 0)]);
    expect(produceRequests()).toBe(7);

    const sequences = async (agentId: string) =>
      (await Promise.all(heartbeats.messages.map(async (m) => (await ctx.codec.decode<Heartbeat>(m.value)).event))).filter((h) => h.agentId === agentId).map((h) => h.sequence);
    await waitFor(async () => (await sequences('together')).length === 20 && (await sequences('in-turn')).length === 5, { what: 'all 25 heartbeats', crashed: heartbeats.crashed });
    expect((await sequences('together')).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await sequences('in-turn')).toEqual([1, 2, 3, 4, 5]);
  });

  it('a record the broker refuses costs only its own send: it is written as its replacement, the others of its batch as they are', async () => {
    const heartbeats = await collectRaw(ctx, ctx.topic('heartbeats'));
    const { outbox } = await outboxCountingRequests();
    const refused = { ...outbox.heartbeat('refused', 1, 1_000, 0) };
    // A 2 MB host name: a valid Heartbeat the broker will not take.
    refused.event = { ...(refused.event as Heartbeat), host: 'h'.repeat(2_000_000) };
    refused.instead = () => outbox.heartbeat('refused', 2, 1_000, 0);
    // The first send holds the batch on its way; the refused one and two others wait and share the next.
    await Promise.all([
      outbox.send([outbox.heartbeat('first', 1, 1_000, 0)]),
      outbox.send([outbox.heartbeat('beside', 1, 1_000, 0)]),
      outbox.send([refused]),
      outbox.send([outbox.heartbeat('beside', 2, 1_000, 0)]),
    ]);
    const written = async () => (await Promise.all(heartbeats.messages.map(async (m) => (await ctx.codec.decode<Heartbeat>(m.value)).event))).filter((h) => ['first', 'beside', 'refused'].includes(h.agentId)).map((h) => `${h.agentId}:${h.sequence}`);
    await waitFor(async () => (await written()).includes('refused:2') && (await written()).includes('beside:2'), { what: 'the replacement and the other heartbeats', crashed: heartbeats.crashed });
    expect(new Set(await written())).toEqual(new Set(['first:1', 'beside:1', 'refused:2', 'beside:2']));
  });
});
