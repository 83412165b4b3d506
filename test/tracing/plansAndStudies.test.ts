/**
 * One trace across a plan and across a study on the real broker: the
 * client's request, what the planner or optimizer writes for it (the
 * assignment), and what the agent reports for the assignment — with an
 * in-memory span exporter.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { StudyClient } from '../../src/optimizer/client.ts';
import { Optimizer } from '../../src/optimizer/optimizer.ts';
import { PlanClient } from '../../src/planner/client.ts';
import { Planner } from '../../src/planner/planner.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

const exporter = new InMemorySpanExporter();
let ctx: TestContext;

beforeAll(async () => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  ctx = await testContext('trace-plans');
  // One agent per capability: a step goes to it directly, without an auction.
  const planner = new Planner({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, agents: { agents: async (c) => (c === 'traced-step' ? ['stepper'] : []) } });
  ctx.defer(() => planner.stop());
  const optimizer = new Optimizer({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, evaluators: { evaluators: async (c) => (c === 'evaluate' ? ['ev'] : []) } });
  ctx.defer(() => optimizer.stop());
  const host = new AgentHost({
    kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'traced-plans', sign: false,
    agents: [
      // A lease of 3 s (the plan's timeoutMs below): a heartbeat every second, so the step's reports include one.
      defineAgent({ id: 'stepper', role: 'worker', capabilities: ['traced-step'], onStep: async (step) => {
        await sleep(1_500);
        return { done: step.stepId };
      } }),
      defineAgent({ id: 'ev', role: 'evaluator', capabilities: ['evaluate'], onTrial: async (trial, context) => {
        await context.intermediate(0, 1);
        return Number(trial.params['x']);
      } }),
    ],
  });
  ctx.defer(() => host.stop());
  await Promise.all([planner.start(), optimizer.start(), host.start()]);
}, 120_000);
afterAll(async () => {
  await ctx?.close();
  trace.disable();
});

const traceIdOf = (m: KafkaMessage): string | undefined => m.headers?.['traceparent']?.toString().split('-')[1];
const typeOf = (m: KafkaMessage) => m.headers?.['mabeam-event-type']?.toString();
const keyed = (messages: KafkaMessage[], key: string) => messages.filter((m) => m.key?.toString() === key);

/** The finished spans of a trace, once `done` says they are all there. */
function spansOf(traceId: string, done: (names: string[]) => boolean): Promise<ReadableSpan[]> {
  return waitFor(() => {
    const all = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    return done(all.map((s) => s.name)) && all;
  }, { what: `the spans of trace ${traceId}`, timeoutMs: 20_000 });
}

/** The spans whose parent is not in the trace (only the request's send should be). */
function roots(spans: ReadableSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  return spans.filter((s) => !s.parentSpanContext || !ids.has(s.parentSpanContext.spanId)).map((s) => s.name);
}

describe('trace context of a plan', () => {
  it('the plan\'s request, its step\'s assignment and the step\'s reports share one trace id, through the agent\'s span of the step', { timeout: 60_000 }, async () => {
    const [inputs, plans] = await Promise.all([collectRaw(ctx, ctx.topic('plan-inputs')), collectRaw(ctx, ctx.topic('plans'))]);
    const client = new PlanClient({ kafka: ctx.kafka, producer: await ctx.producer(), codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, requesterId: 'trace-test' });
    const planId = `${ctx.prefix}-plan`;
    const result = await client.run({ plan: { steps: [{ id: 'only', capability: 'traced-step', timeoutMs: 3_000 }], result: { only: { step: 'only' } } } }, { planId, timeoutMs: 45_000 });
    expect(result).toMatchObject({ status: 'completed', result: { only: { done: 'only' } } });

    await waitFor(() => keyed(plans.messages, planId).some((m) => typeOf(m) === 'PlanCompleted') && keyed(inputs.messages, planId).some((m) => typeOf(m) === 'StepCompleted'), { what: 'the plan\'s records', timeoutMs: 20_000 });
    const request = keyed(inputs.messages, planId).find((m) => typeOf(m) === 'PlanRequested')!;
    const traceId = traceIdOf(request);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const records = [...keyed(inputs.messages, planId), ...keyed(plans.messages, planId)];
    expect(records.map((m) => [typeOf(m), traceIdOf(m)])).toEqual(records.map((m) => [typeOf(m), traceId]));
    const types = new Set(records.map(typeOf));
    for (const t of ['PlanRequested', 'PlanCreated', 'StepAssigned', 'StepStarted', 'StepHeartbeat', 'StepCompleted', 'PlanCompleted']) expect(types, t).toContain(t);

    // The spans: the client's send, the planner's handling of each input, the agent's span of the step.
    const stepSpan = `process ${ctx.topic('plans')}`;
    const spans = await spansOf(traceId!, (names) => names.includes(stepSpan) && names.filter((n) => n === `process ${ctx.topic('plan-inputs')}`).length >= 3);
    const step = spans.find((s) => s.name === stepSpan)!;
    expect(step.attributes).toMatchObject({ 'messaging.kafka.message.key': planId, 'mabeam.plan_id': planId, 'mabeam.step_id': 'only', 'mabeam.attempt': '1', 'mabeam.agent_id': 'stepper' });
    expect(step.attributes['messaging.consumer.group.name']).toBe(`${ctx.prefix}.agents.traced-plans`);
    expect(spans.find((s) => s.name === `send ${ctx.topic('plan-inputs')}`)?.attributes['mabeam.plan_id']).toBe(planId);
    expect(roots(spans)).toEqual([`send ${ctx.topic('plan-inputs')}`]);
  });
});

describe('trace context of a study', () => {
  it('the study\'s creation, its trial\'s assignment and the trial\'s reports share the request\'s trace id', { timeout: 60_000 }, async () => {
    const [inputs, studies] = await Promise.all([collectRaw(ctx, ctx.topic('study-inputs')), collectRaw(ctx, ctx.topic('studies'))]);
    const client = new StudyClient({ kafka: ctx.kafka, producer: await ctx.producer(), codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, requesterId: 'trace-test' });
    const studyId = `${ctx.prefix}-study`;
    const spec = { space: { x: { type: 'float', low: 0, high: 1 } }, objectives: [{ name: 'v', direction: 'minimize' }], budget: { trials: 1 }, parallelism: 1 };
    const result = await client.run(spec, { studyId, timeoutMs: 45_000 });
    expect(result.status).toBe('completed');

    await waitFor(() => keyed(inputs.messages, studyId).some((m) => typeOf(m) === 'TrialCompleted') && keyed(studies.messages, studyId).some((m) => typeOf(m) === 'StudyCompleted'), { what: 'the study\'s records', timeoutMs: 20_000 });
    const created = keyed(inputs.messages, studyId).find((m) => typeOf(m) === 'StudyCreated')!;
    const traceId = traceIdOf(created);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const records = [...keyed(inputs.messages, studyId), ...keyed(studies.messages, studyId)];
    expect(records.map((m) => [typeOf(m), traceIdOf(m)])).toEqual(records.map((m) => [typeOf(m), traceId]));
    const types = new Set(records.map(typeOf));
    for (const t of ['StudyCreated', 'TrialAssigned', 'TrialStarted', 'TrialReported', 'TrialCompleted', 'StudyCompleted']) expect(types, t).toContain(t);

    const trialSpan = `process ${ctx.topic('studies')}`;
    const spans = await spansOf(traceId!, (names) => names.includes(trialSpan));
    expect(spans.find((s) => s.name === trialSpan)!.attributes).toMatchObject({ 'mabeam.study_id': studyId, 'mabeam.attempt': '1', 'mabeam.agent_id': 'ev' });
    expect(roots(spans)).toEqual([`send ${ctx.topic('study-inputs')}`]);
  });
});
