/**
 * A planner and an optimizer that require signatures: a forged StepCompleted
 * or TrialCompleted (the assigned agent's id, a valid schema, another
 * result, unsigned) written with a plain kafkajs producer is refused with a
 * Rejection on the plan's or study's log and counted; the plan completes
 * with the honest agent's signed result, the trial with its signed values.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Rejection, StepAssigned, StepCompleted, TrialAssigned, TrialCompleted } from '../../src/events/types.ts';
import { StudyClient } from '../../src/optimizer/client.ts';
import { Optimizer } from '../../src/optimizer/optimizer.ts';
import { PlanClient } from '../../src/planner/client.ts';
import type { LoggedEvent } from '../../src/planner/planLog.ts';
import { Planner } from '../../src/planner/planner.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
let planner: Planner;
let optimizer: Optimizer;
beforeAll(async () => {
  ctx = await testContext('forged-steps');
  planner = new Planner({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, metrics: ctx.metrics, agents: { agents: async (c) => (c === 'chain' ? ['worker-s'] : []) }, requireSignatures: true });
  ctx.defer(() => planner.stop());
  optimizer = new Optimizer({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, metrics: ctx.metrics, evaluators: { evaluators: async (c) => (c === 'evaluate' ? ['ev'] : []) }, requireSignatures: true });
  ctx.defer(() => optimizer.stop());
  const host = new AgentHost({
    kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, keysDir: mkdtempSync(join(tmpdir(), 'mabeam-steps-keys-')),
    agents: [defineAgent({ id: 'worker-s', role: 'worker', capabilities: ['chain'], onStep: async () => {
      await sleep(1_500);
      return { by: 'honest' };
    } }), defineAgent({ id: 'ev', role: 'evaluator', capabilities: ['evaluate'], onTrial: async () => {
      await sleep(1_500);
      return 0.5;
    } })],
    pool: 'signers',
  });
  ctx.defer(() => host.stop());
  await Promise.all([planner.start(), optimizer.start(), host.start()]);
});
afterAll(() => ctx?.close());

describe('a planner that requires signatures', () => {
  it('refuses a forged step result and completes the plan with the signed one', async () => {
    const producer = await ctx.producer();
    const client = new PlanClient({ kafka: ctx.kafka, producer, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, requesterId: 'forged-test' });
    const planId = `${ctx.prefix}-plan`;
    const events: LoggedEvent[] = [];
    let forgedId: string | undefined;
    let forging: Promise<unknown> | undefined;
    const result = await client.run({ plan: { steps: [{ id: 'only', capability: 'chain' }], result: { only: { step: 'only' } } } }, {
      planId,
      timeoutMs: 45_000,
      onEvent: (e) => {
        events.push(e);
        if (e.type !== 'StepAssigned' || forging) return;
        const a = e.event as StepAssigned;
        const forged: StepCompleted = { envelope: newEnvelope('StepCompleted', 'worker-s', { correlationId: planId }), planId, stepId: a.stepId, attempt: a.attempt, agentId: 'worker-s', result: JSON.stringify({ by: 'forger' }) };
        forgedId = forged.envelope.eventId;
        forging = ctx.codec.encode('StepCompleted', forged).then((value) => producer.send({ topic: ctx.topic('plan-inputs'), messages: [{ key: planId, value }] }));
      },
    });
    await forging;
    expect(result).toMatchObject({ status: 'completed', result: { only: { by: 'honest' } } });
    const rejection = events.find((e) => e.type === 'Rejection')?.event as Rejection | undefined;
    expect(rejection).toMatchObject({ rejectedEventId: forgedId, agentId: 'worker-s', reasonCode: 'FORGED', reason: expect.stringMatching(/not signed/) });
    const counted = (await ctx.metrics.forgedEvents.get()).values.find((v) => v.labels['topic'] === ctx.topic('plan-inputs') && v.labels['reason'] === 'FORGED');
    expect(counted?.value).toBe(1);
  });
});

describe('an optimizer that requires signatures', () => {
  it('refuses a forged trial result and completes the trial with the signed one', async () => {
    const producer = await ctx.producer();
    const client = new StudyClient({ kafka: ctx.kafka, producer, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, requesterId: 'forged-test' });
    const rejections: Rejection[] = [];
    let forgedId: string | undefined;
    let forging: Promise<unknown> | undefined;
    const spec = { space: { x: { type: 'float', low: 0, high: 1 } }, objectives: [{ name: 'v', direction: 'minimize' }], budget: { trials: 1 }, parallelism: 1 };
    const result = await client.run(spec, {
      timeoutMs: 45_000,
      onEvent: (e) => {
        if (e.type === 'Rejection') rejections.push(e.event);
        if (e.type !== 'TrialAssigned' || forging) return;
        const a = e.event as TrialAssigned;
        const forged: TrialCompleted = { envelope: newEnvelope('TrialCompleted', 'ev', { correlationId: a.studyId }), studyId: a.studyId, trialId: a.trialId, attempt: a.attempt, agentId: 'ev', values: [-100], constraints: [] };
        forgedId = forged.envelope.eventId;
        forging = ctx.codec.encode('TrialCompleted', forged).then((value) => producer.send({ topic: ctx.topic('study-inputs'), messages: [{ key: a.studyId, value }] }));
      },
    });
    await forging;
    expect(result.status).toBe('completed');
    expect(result.status === 'completed' && result.run.trials.map((t) => t.values)).toEqual([[0.5]]);
    expect(rejections).toEqual([expect.objectContaining({ rejectedEventId: forgedId, agentId: 'ev', reasonCode: 'FORGED' })]);
    const counted = (await ctx.metrics.forgedEvents.get()).values.find((v) => v.labels['topic'] === ctx.topic('study-inputs') && v.labels['reason'] === 'FORGED');
    expect(counted?.value).toBe(1);
  });
});
