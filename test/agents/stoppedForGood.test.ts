import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleChanged } from '../../src/events/types.ts';
import { runAgentProcess, stopAgentProcess } from '../agentProcesses.ts';
import { sendSnappyRecord } from '../foreignRecords.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

// Its own topics: the record that stops a consumer here would stop every agent of another file too.
let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('stopped');
});
afterAll(() => ctx?.close());

const counter = fileURLToPath(new URL('../fixtures/agents/counter.ts', import.meta.url));

describe('an agent process whose consumer stops for good', () => {
  it('reports its agent failed, says why on stderr and exits with code 1', async () => {
    const lifecycle = await collectRaw(ctx, ctx.topic('lifecycle'));
    const p = runAgentProcess(ctx.stack, counter, ['--prefix', ctx.prefix, '--session-timeout-ms', '3000', '--heartbeat-ms', '500'], { FIXTURE_AGENT_ID: 'poisoned' });
    ctx.defer(() => stopAgentProcess(p));
    const ready = await p.ready;

    // A client with compression.type=snappy writes a request; kafkajs cannot read the batch and
    // stops the consumer for good (KafkaJSNotImplemented, no restart).
    await sendSnappyRecord(await ctx.producer(), ctx.topic('bid-requests'), 'round-snappy', Buffer.from('{"from":"another client"}'));

    await waitFor(() => p.process.exitCode !== null || p.process.signalCode !== null, { what: 'the agent process to exit', timeoutMs: 30_000 });
    expect(await p.exited).toEqual({ code: 1, signal: null });
    expect(p.stderr()).toMatch(new RegExp(`stopped for good: the consumer of group ${ready.groupId} crashed and kafkajs will not restart it: Snappy compression not implemented`));

    const transitions = await waitFor(async () => {
      const list = (await Promise.all(lifecycle.messages.map((m) => ctx.codec.decode<LifecycleChanged>(m.value))))
        .filter((d) => d.type === 'LifecycleChanged' && d.event.agentId === 'poisoned')
        .map(({ event: e }) => ({ move: `${e.from ?? '(new)'}>${e.to}`, reason: e.reason, instanceId: e.instanceId }));
      return list.length >= 3 && list;
    }, { what: 'the lifecycle of the poisoned agent', crashed: lifecycle.crashed });
    expect(transitions.map((t) => t.move)).toEqual(['(new)>starting', 'starting>running', 'running>failed']);
    expect(transitions[2]).toMatchObject({ instanceId: ready.instanceId, reason: expect.stringContaining('Snappy compression not implemented') });
  });
});
