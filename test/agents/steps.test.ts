import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { tieBreak } from '../../src/agents/dispatch.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { loadAgentModule } from '../../src/agents/loadModule.ts';
import { StepError } from '../../src/agents/steps.ts';
import type { Step, StepContext } from '../../src/agents/types.ts';
import { deterministicEventId, newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, HandlerFailed, StepAssigned, StepCompleted, StepFailed, StepRetried, StepStarted } from '../../src/events/types.ts';
import { stepRoundId } from '../../src/planner/stepRounds.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
let events: EventProducer;
let host: AgentHost;
let inputs: Awaited<ReturnType<typeof collectRaw>>;

/** Every step the worker was handed, and how its slow steps ended. */
const calls: Step[] = [];
const aborted = new Map<string, string | null>();

async function slow(step: Step, context: StepContext<unknown>): Promise<unknown> {
  // Runs until it is taken away; what it answers then must not be written.
  await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
  aborted.set(`${step.planId}/${step.stepId}#${step.attempt}`, context.stopReason);
  return 'too late';
}

const agents = [
  defineAgent({
    id: 'worker',
    role: 'worker',
    capabilities: ['compute'],
    stepCost: (step) => (step.escalated ? 5 : 3),
    onStep: async (step, context) => {
      calls.push(step);
      if (step.stepId.startsWith('slow')) return slow(step, context);
      if (step.stepId === 'fail-hard') throw new StepError('the input cannot be parsed', { retriable: false });
      if (step.stepId === 'fail-soft') throw new Error('the GPU fell over');
      return { by: context.agentId, got: step.inputs };
    },
  }),
  defineAgent({ id: 'passer', role: 'worker', capabilities: ['compute'], stepCost: () => undefined, onStep: () => 'never' }),
  // No stepCost: it bids its load (0 when idle) and a tie-break.
  defineAgent({ id: 'idle', role: 'worker', capabilities: ['compute'], onStep: () => 'never' }),
  defineAgent({
    id: 'broken-cost',
    role: 'worker',
    capabilities: ['compute'],
    stepCost: () => {
      throw new Error('no price list');
    },
    onStep: () => 'never',
  }),
  // Runs steps, and bids in other rounds, but lacks the capability: a step's auction is not for it.
  defineAgent({ id: 'gpu-only', role: 'worker', capabilities: ['gpu'], onStep: () => 'never', onBidRequest: () => ({ amount: 1 }) }),
  // Runs no steps: a step's auction reaches its onBidRequest, as any auction does.
  defineAgent({ id: 'bidder', role: 'worker', capabilities: ['compute'], onBidRequest: () => ({ amount: 7 }) }),
];

beforeAll(async () => {
  ctx = await testContext('steps');
  events = new EventProducer(await ctx.producer(), ctx.codec);
  host = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, agents, pool: 'steps', heartbeatIntervalMs: 1_000 });
  ctx.defer(() => host.stop());
  await host.start();
  inputs = await collectRaw(ctx, ctx.topic('plan-inputs'));
});
afterAll(() => ctx?.close());

async function decoded<T>(messages: KafkaMessage[]): Promise<Array<{ type: string; event: T }>> {
  return Promise.all(messages.map(async (m) => {
    const d = await ctx.codec.decode<T>(m.value);
    return { type: d.type, event: d.event };
  }));
}

type Report = { type: string; event: StepStarted & StepCompleted & StepFailed };

/** What the agents reported of one plan on plan-inputs, in order. */
async function reportsOf(planId: string): Promise<Report[]> {
  return (await decoded<Report['event']>(inputs.messages)).filter((r) => r.event.planId === planId);
}

/** Waits until `match` is among a plan's reports, and returns them. */
async function untilReported(planId: string, match: (r: Report) => boolean, what: string): Promise<Report[]> {
  return waitFor(async () => {
    const list = await reportsOf(planId);
    return list.some(match) && list;
  }, { what, crashed: inputs.crashed, timeoutMs: 15_000 });
}

function assigned(planId: string, stepId: string, options: { attempt?: number; agentId?: string; inputs?: unknown; leaseMs?: number } = {}): StepAssigned {
  const attempt = options.attempt ?? 1;
  return {
    envelope: newEnvelope('StepAssigned', 'planner', { correlationId: planId }),
    planId,
    stepId,
    attempt,
    agentId: options.agentId ?? 'worker',
    capability: 'compute',
    roundId: stepRoundId(planId, stepId, attempt),
    rule: 'delegation',
    inputs: JSON.stringify(options.inputs ?? {}),
    leaseMs: options.leaseMs ?? 3_000,
    escalated: false,
  };
}

const assign = (a: StepAssigned) => events.send(ctx.topic('plans'), a.planId, 'StepAssigned', a);
const finished = (stepId: string, attempt = 1) => (r: Report) => (r.type === 'StepCompleted' || r.type === 'StepFailed') && r.event.stepId === stepId && r.event.attempt === attempt;

describe('agents that run plan steps', () => {
  it('bid in a step auction by their step cost, or pass; agents without the capability stay out; agents without onStep answer as before', async () => {
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    const lifecycle = await collectRaw(ctx, ctx.topic('lifecycle'));
    const roundId = stepRoundId('p-bid', 'train', 1);
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', 'planner', { correlationId: roundId }),
      roundId,
      protocol: 'delegation',
      item: JSON.stringify({ kind: 'plan-step', planId: 'p-bid', stepId: 'train', attempt: 1, capability: 'compute', escalated: false, inputs: { n: 1 } }),
      requiredCapabilities: [],
      eligibleAgents: [],
      reservePrice: null,
      deadline: Date.now() + 60_000,
      parameters: JSON.stringify({ escalation: [] }),
    };
    await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);

    // One batch carries every answer to the request: once these are in, nothing else is coming.
    const failed = async () => (await decoded<HandlerFailed>(lifecycle.messages)).filter((f) => f.type === 'HandlerFailed' && f.event.subjectId === roundId).map((f) => f.event);
    const answers = await waitFor(async () => {
      const list = (await decoded<Bid>(bids.messages)).map((b) => b.event).filter((b) => b.roundId === roundId);
      return list.length >= 4 && (await failed()).length === 1 && list;
    }, { what: 'the answers to the step auction', crashed: () => bids.crashed() ?? lifecycle.crashed() });
    const byAgent = Object.fromEntries(answers.map((b) => [b.agentId, { amount: b.amount, attributes: b.attributes === null ? null : JSON.parse(b.attributes) }]));
    expect(byAgent).toEqual({
      worker: { amount: 3, attributes: null },
      passer: { amount: 0, attributes: { pass: true } },
      // Idle: its load 0, and a tie-break below 0.5 drawn from its id and the round's.
      idle: { amount: tieBreak('idle', roundId), attributes: null },
      bidder: { amount: 7, attributes: null },
    });
    expect(answers.find((b) => b.agentId === 'worker')!.envelope.eventId).toBe(deterministicEventId('bid', 'worker', request.envelope.eventId));
    expect(await failed()).toEqual([expect.objectContaining({ agentId: 'broken-cost', handler: 'stepCost', error: 'no price list', causeEventId: request.envelope.eventId })]);
  });

  it('runs an assigned step once: started, then completed with the result of the inputs it was given; the same assignment again runs nothing', async () => {
    const planId = uniqueName('plan');
    const assignment = assigned(planId, 'double', { inputs: { x: 2, from: { up: [1, 2] } } });
    await assign(assignment);
    const reports = await untilReported(planId, finished('double'), 'the step completed');
    expect(reports.map((r) => r.type)).toEqual(['StepStarted', 'StepCompleted']);
    const [started, completed] = reports;
    expect(started!.event).toMatchObject({ planId, stepId: 'double', attempt: 1, agentId: 'worker', instanceId: host.instanceId, leaseMs: 3_000 });
    expect(started!.event.envelope.eventId).toBe(deterministicEventId('step-started', planId, 'double', '1', 'worker'));
    expect(started!.event.envelope.causationId).toBe(assignment.envelope.eventId);
    expect(completed!.event).toMatchObject({ planId, stepId: 'double', attempt: 1, agentId: 'worker' });
    expect(JSON.parse(completed!.event.result!)).toEqual({ by: 'worker', got: { x: 2, from: { up: [1, 2] } } });
    expect(calls.filter((c) => c.planId === planId)).toEqual([{ planId, stepId: 'double', attempt: 1, capability: 'compute', escalated: false, inputs: { x: 2, from: { up: [1, 2] } } }]);

    // Delivered again, then another step of the plan behind it on the same partition: once that one is done, so is the repeat.
    await assign(assignment);
    await assign(assigned(planId, 'after'));
    await untilReported(planId, finished('after'), 'the step after the repeat');
    expect(calls.filter((c) => c.planId === planId).map((c) => c.stepId)).toEqual(['double', 'after']);
    expect((await reportsOf(planId)).filter((r) => r.event.stepId === 'double').map((r) => r.type)).toEqual(['StepStarted', 'StepCompleted']);
  });

  it('reports a StepError that is not retriable as a failure for good, and any other throw as retriable', async () => {
    const planId = uniqueName('plan');
    await assign(assigned(planId, 'fail-hard'));
    await assign(assigned(planId, 'fail-soft'));
    await untilReported(planId, finished('fail-hard'), 'the hard failure');
    const reports = await untilReported(planId, finished('fail-soft'), 'the soft failure');
    // The two run side by side: either may be reported first.
    const failures = reports.filter((r) => r.type === 'StepFailed').map((r) => r.event).sort((a, b) => a.stepId.localeCompare(b.stepId));
    expect(failures).toEqual([
      expect.objectContaining({ stepId: 'fail-hard', attempt: 1, agentId: 'worker', error: 'the input cannot be parsed', retriable: false, final: false, escalated: false }),
      expect.objectContaining({ stepId: 'fail-soft', attempt: 1, agentId: 'worker', error: 'the GPU fell over', retriable: true, final: false, escalated: false }),
    ]);
    expect(reports.filter((r) => r.type === 'StepCompleted')).toEqual([]);
  });

  it('heartbeats a running step, and stops it when the step is retried as a later attempt: its signal fires and nothing more is reported for it', async () => {
    const planId = uniqueName('plan');
    // A short lease: a heartbeat every 100 ms.
    await assign(assigned(planId, 'slow', { leaseMs: 300 }));
    await untilReported(planId, (r) => r.type === 'StepHeartbeat' && r.event.stepId === 'slow', 'a heartbeat of the slow step');
    const retried: StepRetried = {
      envelope: newEnvelope('StepRetried', 'planner', { correlationId: planId }),
      planId, stepId: 'slow', attempt: 2, previousAgentId: 'worker', reasonCode: 'LEASE_EXPIRED', reason: 'no heartbeat', notBefore: Date.now(), escalated: false,
    };
    await events.send(ctx.topic('plans'), planId, 'StepRetried', retried);
    const reason = await waitFor(() => aborted.has(`${planId}/slow#1`) && aborted.get(`${planId}/slow#1`), { what: 'the slow step aborted', crashed: inputs.crashed });
    expect(reason).toBe('retried as attempt 2 (LEASE_EXPIRED: no heartbeat)');

    // The handler has answered; a step behind it on the plan's partition shows what was written meanwhile.
    await assign(assigned(planId, 'after'));
    const reports = await untilReported(planId, finished('after'), 'the step after the retry');
    expect(reports.filter((r) => r.event.stepId === 'slow' && r.type !== 'StepHeartbeat').map((r) => r.type)).toEqual(['StepStarted']);
  });

  it('the example step worker runs steps, counts them in its file and fails the steps it is told to for good', async () => {
    const countFile = join(tmpdir(), `${uniqueName('steps')}.count`);
    const env = { WORKER_ID: 'example-worker', CAPABILITIES: 'compute,report', DELAY_MS: '10', COUNT_FILE: countFile, FAIL_STEPS: 'bad,worse' };
    // The module reads its environment when it is loaded.
    Object.assign(process.env, env);
    const module = await loadAgentModule(fileURLToPath(new URL('../../examples/agents/stepWorker.ts', import.meta.url))).finally(() => {
      for (const name of Object.keys(env)) delete process.env[name];
    });
    expect(module.agents.map((a) => [a.id, a.capabilities])).toEqual([['example-worker', ['compute', 'report']]]);
    const example = new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, agents: module.agents });
    ctx.defer(() => example.stop());
    await example.start();

    const planId = uniqueName('plan');
    await assign(assigned(planId, 'good', { agentId: 'example-worker', inputs: { q: 'a' } }));
    await assign(assigned(planId, 'bad', { agentId: 'example-worker' }));
    await untilReported(planId, finished('bad'), 'the example worker\'s failed step');
    const reports = await untilReported(planId, finished('good'), 'the example worker\'s completed step');
    const good = reports.find(finished('good'))!;
    expect(good.type).toBe('StepCompleted');
    expect(JSON.parse(good.event.result!)).toEqual({ by: 'example-worker', step: 'good', inputs: { q: 'a' } });
    expect(reports.find(finished('bad'))!.event).toMatchObject({ error: 'example-worker is set to fail step bad', retriable: false });
    // The two steps run side by side: their lines may come in either order.
    expect((await readFile(countFile, 'utf8')).split('\n').filter(Boolean).sort()).toEqual([`${planId} bad 1`, `${planId} good 1`]);
  });

  it('a host that stops reports its running steps failed, retriable, and aborts them', async () => {
    const planId = uniqueName('plan');
    await assign(assigned(planId, 'slow-stop'));
    await untilReported(planId, (r) => r.type === 'StepStarted' && r.event.stepId === 'slow-stop', 'the step started');
    await host.stop('test done');
    expect(aborted.get(`${planId}/slow-stop#1`)).toBe('host stopping: test done');
    const reports = await untilReported(planId, finished('slow-stop'), 'the stopped step\'s failure');
    expect(reports.filter((r) => r.type !== 'StepHeartbeat').map((r) => [r.type, r.event.error ?? null, r.event.retriable ?? null])).toEqual([
      ['StepStarted', null, null],
      ['StepFailed', 'agent stopping: test done', true],
    ]);
  });
});
