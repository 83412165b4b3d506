import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSnapshots } from '../../src/agents/snapshots.ts';
import { EventCodec } from '../../src/codec/codec.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { AgentStateSnapshot } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { createRegistryClient } from '../../src/schemas/registry.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('snapshots');
});
afterAll(() => ctx?.close());

const snapshot = (agentId: string, sequence: number, state: unknown): AgentStateSnapshot => ({
  envelope: newEnvelope('AgentStateSnapshot', agentId),
  agentId,
  instanceId: 'host-1',
  sequence,
  state: Buffer.from(JSON.stringify(state)),
  contentType: 'application/json',
});

describe('reading agent state snapshots', () => {
  it('gives the latest snapshot of each agent asked for, and keeps the latest readable one past an undecodable record', async () => {
    const topic = ctx.topic('agent-state');
    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);
    await events.send(topic, 'a', 'AgentStateSnapshot', snapshot('a', 1, { n: 1 }));
    await events.send(topic, 'b', 'AgentStateSnapshot', snapshot('b', 1, { n: 10 }));
    await events.send(topic, 'a', 'AgentStateSnapshot', snapshot('a', 2, { n: 2 }));
    await events.send(topic, 'c', 'AgentStateSnapshot', snapshot('c', 1, { n: 100 }));
    await producer.send({ topic, messages: [{ key: 'b', value: Buffer.from('not avro') }] });
    const read = await readSnapshots(ctx.kafka, ctx.codec, topic, ['a', 'b'], ctx.logger);
    expect([...read.keys()].sort()).toEqual(['a', 'b']);
    expect(read.get('a')?.sequence).toBe(2);
    expect(read.get('b')?.sequence).toBe(1);
  });

  it('does not return without a snapshot it could not read because the registry was unreachable', async () => {
    const topic = ctx.topic('agent-state');
    await new EventProducer(await ctx.producer(), ctx.codec).send(topic, 'd', 'AgentStateSnapshot', snapshot('d', 7, { n: 7 }));
    // A codec of its own (no schema cached) whose registry does not answer.
    const unreachable = 'http://127.0.0.1:9';
    const codec = new EventCodec({ registry: createRegistryClient(unreachable, 500), registryUrl: unreachable, catalog: ctx.catalog });
    // Before, the snapshot was skipped and the agent started from its initial state.
    await expect(readSnapshots(ctx.kafka, codec, topic, ['d'], ctx.logger, 3_000)).rejects.toMatchObject({ code: 'LOG_READ_TIMEOUT', retriable: true });
    // With the registry back, the same read gives it.
    expect((await readSnapshots(ctx.kafka, ctx.codec, topic, ['d'], ctx.logger)).get('d')?.sequence).toBe(7);
  });
});
