import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Directive, LifecycleChanged } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { backoffDelay, parseSupervisorSpec, Supervisor, type SupervisorEvent } from '../../src/supervisor/supervisor.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('supervisor');
});
afterAll(() => ctx?.close());

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/agents/${name}.ts`, import.meta.url));

/** A supervisor of one child, recording its events; stopped after the test file. */
async function supervise(child: Record<string, unknown>, agentId: string) {
  const producer = await ctx.producer();
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor({
    spec: parseSupervisorSpec({ prefix: ctx.prefix, children: [{ backoff: { initialMs: 50, factor: 2, maxMs: 500 }, args: ['--session-timeout-ms', '3000', '--heartbeat-ms', '500'], ...child }] }),
    producer,
    codec: ctx.codec,
    logger: ctx.logger,
    env: { ...process.env, KAFKA_BROKERS: ctx.stack.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: ctx.stack.schemaRegistryUrl, REDIS_URL: ctx.stack.redisUrl, FIXTURE_AGENT_ID: agentId },
  });
  supervisor.on('event', (e: SupervisorEvent) => events.push(e));
  ctx.defer(() => supervisor.stop());
  supervisor.start();
  return { supervisor, events };
}

async function lifecycleOf(agentId: string) {
  const { messages, crashed } = await collectRaw(ctx, ctx.topic('lifecycle'));
  return {
    crashed,
    transitions: async () =>
      (await Promise.all(messages.map(async (m) => ctx.codec.decode<LifecycleChanged>(m.value))))
        .filter((d) => d.type === 'LifecycleChanged' && d.event.agentId === agentId)
        .map(({ event: e }) => `${e.from ?? '(new)'}>${e.to}`),
  };
}

describe('supervisor', () => {
  it('restarts a permanent agent killed with SIGKILL: running → failed → starting → running', async () => {
    const { supervisor, events } = await supervise({ id: 'perm', module: fixture('counter'), restart: 'permanent' }, 'perm');
    const first = await waitFor(() => events.find((e) => e.type === 'ready'), { what: 'the agent process to be ready', timeoutMs: 30_000 });
    process.kill(first.pid, 'SIGKILL');
    const second = await waitFor(() => events.filter((e) => e.type === 'ready')[1], { what: 'the restarted process to be ready', timeoutMs: 30_000 });
    expect(second.pid).not.toBe(first.pid);
    expect(events.find((e) => e.type === 'exit')).toMatchObject({ id: 'perm', pid: first.pid, signal: 'SIGKILL', decision: 'restart', delayMs: 50 });
    expect(supervisor.child('perm')).toMatchObject({ status: 'running', pid: second.pid });

    const lifecycle = await lifecycleOf('perm');
    const transitions = await waitFor(async () => {
      const t = await lifecycle.transitions();
      return t.length >= 5 && t;
    }, { what: 'the lifecycle events', crashed: lifecycle.crashed });
    expect(transitions).toEqual(['(new)>starting', 'starting>running', 'running>failed', 'failed>starting', 'starting>running']);
  });

  it('does not restart a transient agent that exits normally', async () => {
    const { supervisor, events } = await supervise({ id: 'trans', module: fixture('counter'), restart: 'transient' }, 'trans');
    await waitFor(() => events.find((e) => e.type === 'ready'), { what: 'the agent process to be ready', timeoutMs: 30_000 });
    const stop: Directive = { envelope: newEnvelope('Directive', 'operator'), agentId: 'trans', action: 'stop', parameters: null, roundId: null, variableId: null };
    await new EventProducer(await ctx.producer(), ctx.codec).send(ctx.topic('directives'), 'trans', 'Directive', stop);
    const exit = await waitFor(() => events.find((e) => e.type === 'exit'), { what: 'the agent to exit', timeoutMs: 30_000 });
    expect(exit).toMatchObject({ code: 0, signal: null, decision: 'not-restarted' });
    expect(supervisor.child('trans')!.status).toBe('exited');
    expect(events.filter((e) => e.type === 'spawned')).toHaveLength(1);
    const lifecycle = await lifecycleOf('trans');
    expect(await waitFor(async () => {
      const t = await lifecycle.transitions();
      return t.length >= 4 && t;
    }, { what: 'the lifecycle events' })).toEqual(['(new)>starting', 'starting>running', 'running>stopping', 'stopping>stopped']);
  });

  it('leaves an agent that crashes past its restart budget failed and stopped', async () => {
    const { supervisor, events } = await supervise({ id: 'crashy', module: fixture('crashing'), restart: 'permanent', maxRestarts: 2, periodMs: 60_000 }, 'crashy');
    const gaveUp = await waitFor(() => events.find((e) => e.type === 'exit' && e.decision === 'gave-up'), { what: 'the supervisor to give up', timeoutMs: 30_000 });
    expect(gaveUp).toMatchObject({ code: 1 });
    expect(events.filter((e) => e.type === 'exit').map((e) => e.type === 'exit' && [e.decision, e.delayMs])).toEqual([
      ['restart', 50],
      ['restart', 100],
      ['gave-up', undefined],
    ]);
    expect(supervisor.child('crashy')!.status).toBe('failed');
    const lifecycle = await lifecycleOf('crashy');
    expect(await waitFor(async () => {
      const t = await lifecycle.transitions();
      return t.length >= 5 && t;
    }, { what: 'the lifecycle events' })).toEqual(['(new)>failed', 'failed>starting', 'starting>failed', 'failed>starting', 'starting>failed']);
    // Stays stopped: nothing more is spawned.
    expect(events.filter((e) => e.type === 'spawned')).toHaveLength(3);
  });
});

describe('supervisor spec', () => {
  it('fills defaults and names what is wrong', () => {
    const spec = parseSupervisorSpec({ children: [{ id: 'a', module: 'a.ts' }] });
    expect(spec.prefix).toBe('mabeam');
    expect(spec.children[0]).toMatchObject({ restart: 'permanent', maxRestarts: 3, periodMs: 60_000, backoff: { initialMs: 200, factor: 2, maxMs: 10_000 }, stopTimeoutMs: 10_000 });
    expect(() => parseSupervisorSpec({ children: [{ id: 'a', module: 'a.ts', restart: 'sometimes' }] }, 'sup.json')).toThrow(/sup.json: children.0.restart: Invalid option/);
    expect(() => parseSupervisorSpec({ children: [{ id: 'a', module: 'x' }, { id: 'a', module: 'y' }] })).toThrow(/child ids must be unique/);
    expect(() => parseSupervisorSpec({ children: [] })).toThrow(/children/);
  });

  it('runs an agent module or another command, each with its own environment', () => {
    const spec = parseSupervisorSpec({ children: [{ id: 'c', command: ['coordinator', 'run'], env: { MABEAM_LOG_LEVEL: 'debug' } }, { id: 'a', module: 'a.ts' }] });
    expect(spec.children.map((c) => [c.command, c.module, c.env])).toEqual([[['coordinator', 'run'], undefined, { MABEAM_LOG_LEVEL: 'debug' }], [undefined, 'a.ts', {}]]);
    expect(() => parseSupervisorSpec({ children: [{ id: 'a', module: 'a.ts', command: ['view'] }] })).toThrow(/either an agent module or a command/);
    expect(() => parseSupervisorSpec({ children: [{ id: 'a' }] })).toThrow(/either an agent module or a command/);
    expect(() => parseSupervisorSpec({ children: [{ id: 'a', command: [] }] })).toThrow(/children.0.command/);
  });

  it('backs off exponentially up to a cap', () => {
    const spec = { backoff: { initialMs: 100, factor: 2, maxMs: 1_000 } };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(spec, n))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });
});
