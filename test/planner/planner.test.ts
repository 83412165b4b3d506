import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { DeadLetter, PlanRequested, StepCompleted } from '../../src/events/types.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { PlanClient, type PlanResult } from '../../src/planner/client.ts';
import type { LoggedEvent } from '../../src/planner/planLog.ts';
import { readPlan } from '../../src/planner/planLog.ts';
import type { PlanRun } from '../../src/planner/run.ts';
import { runAgentProcess, runCliProcess, stopAgentProcess, type AgentProcess } from '../agentProcesses.ts';
import { testContext, waitFor, type TestContext } from '../helpers.ts';

/**
 * Plans run end to end: planner processes (`mabeam planner run`), worker
 * agent processes (examples/agents/stepWorker.ts) that count every step they
 * run in a file, and a coordinator for the step auctions.
 */
const worker = fileURLToPath(new URL('../../examples/agents/stepWorker.ts', import.meta.url));

let ctx: TestContext;
let client: PlanClient;
const planners: AgentProcess[] = [];
const counts = join(tmpdir(), `plans-${process.pid}-${Date.now()}.count`);

/** Where the first planner serves its metrics. */
const metricsPort = 20_000 + Math.floor(Math.random() * 1_000);

function startPlanner(port?: number): AgentProcess {
  const p = runCliProcess(ctx.stack, ['planner', 'run', '--prefix', ctx.prefix, '--session-timeout-ms', '3000', ...(port ? ['--metrics-port', String(port)] : [])]);
  ctx.defer(() => stopAgentProcess(p));
  planners.push(p);
  return p;
}

function startWorker(id: string, capabilities: string, env: Record<string, string> = {}): AgentProcess {
  const p = runAgentProcess(ctx.stack, worker, ['--prefix', ctx.prefix, '--heartbeat-ms', '500', '--session-timeout-ms', '3000'], { WORKER_ID: id, CAPABILITIES: capabilities, COUNT_FILE: counts, ...env });
  ctx.defer(() => stopAgentProcess(p));
  return p;
}

beforeAll(async () => {
  ctx = await testContext('plans');
  const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
  ctx.defer(() => coordinator.stop());
  client = new PlanClient({ kafka: ctx.kafka, producer: await ctx.producer(), codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, requesterId: 'plan-test' });
  // Five workers with three capabilities for the diamond; a reviewer for escalations.
  const workers = [
    startWorker('split-1', 'split'),
    startWorker('map-1', 'map', { DELAY_MS: '300' }),
    startWorker('map-2', 'map', { DELAY_MS: '300' }),
    startWorker('map-3', 'map', { DELAY_MS: '300' }),
    startWorker('join-1', 'join,chain', { DELAY_MS: '200', FAIL_STEPS: 'doomed,delicate' }),
    startWorker('reviewer-1', 'review'),
  ];
  await Promise.all([coordinator.start(), startPlanner(metricsPort).ready, ...workers.map((w) => w.ready)]);
}, 120_000);
afterAll(() => ctx?.close());

/** Lines `planId stepId attempt` of every step run by a worker, for one plan. */
async function runsOf(planId: string): Promise<string[]> {
  const text = await readFile(counts, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.startsWith(`${planId} `)).map((l) => l.slice(planId.length + 1));
}

const typesOf = (events: LoggedEvent[], stepId?: string) => events.filter((e) => stepId === undefined || (e.event as { stepId?: string }).stepId === stepId).map((e) => e.type);

async function run(request: Parameters<PlanClient['run']>[0], planId: string, timeoutMs = 90_000): Promise<{ result: PlanResult; events: LoggedEvent[] }> {
  const events: LoggedEvent[] = [];
  const result = await client.run(request, { planId, timeoutMs, onEvent: (e) => events.push(e) });
  return { result, events };
}

/** A diamond of 20 steps: split → 18 maps → join. */
const diamond = {
  goal: { text: 'twenty' },
  steps: [
    { id: 'split', capability: 'split', inputs: { text: {} } },
    ...Array.from({ length: 18 }, (_, i) => ({ id: `m${i}`, capability: 'map', inputs: { from: { step: 'split', path: 'by' }, part: { value: i } } })),
    { id: 'join', capability: 'join', inputs: Object.fromEntries(Array.from({ length: 18 }, (_, i) => [`m${i}`, { step: `m${i}`, path: 'by' }])) },
  ],
};

describe.concurrent('plans run by agent processes', () => {
  it('a 20-step diamond over 5 agents with 3 capabilities completes with the joined results; the maps run in parallel; each step ran once', { timeout: 120_000 }, async () => {
    const planId = `${ctx.prefix}-diamond`;
    const { result, events } = await run({ plan: diamond }, planId);
    expect(result.status).toBe('completed');
    const r = result as Extract<PlanResult, { status: 'completed' }>;
    const join = r.result['join'] as { by: string; inputs: Record<string, string> };
    expect(join.by).toBe('join-1');
    // The join got, for each map, the worker that ran it (as that worker answered).
    for (let i = 0; i < 18; i++) expect(join.inputs[`m${i}`]).toBe(r.run.steps.get(`m${i}`)!.agentId);
    expect(new Set(Object.values(join.inputs))).toEqual(new Set(['map-1', 'map-2', 'map-3']));
    // Several agents could take each map: an auction chose; one split and one join agent: assigned directly.
    const assigned = events.filter((e) => e.type === 'StepAssigned').map((e) => e.event as { stepId: string; roundId: string | null; rule: string });
    // (On a loaded machine an agent whose heartbeats run late is left out of an auction while others are current: a map may then go to the only one seen running.)
    const maps = assigned.filter((a) => a.stepId.startsWith('m'));
    expect(maps.every((a) => (a.roundId !== null && /^delegation auction: /.test(a.rule)) || (a.roundId === null && a.rule === 'the only running agent with capability map')), JSON.stringify(maps)).toBe(true);
    expect(maps.filter((a) => a.roundId !== null).length).toBeGreaterThan(0);
    expect(assigned.find((a) => a.stepId === 'split')).toMatchObject({ roundId: null, rule: 'the only running agent with capability split' });
    // Parallel where the DAG allows: maps' [started, completed] intervals overlap.
    const at = (type: string, stepId: string) => (events.find((e) => e.type === type && (e.event as { stepId: string }).stepId === stepId)!.event.envelope.eventTime);
    const intervals = Array.from({ length: 18 }, (_, i) => [at('StepStarted', `m${i}`), at('StepCompleted', `m${i}`)] as const);
    const overlapping = Math.max(...intervals.map(([s]) => intervals.filter(([s2, e2]) => s2 <= s && s < e2).length));
    expect(overlapping).toBeGreaterThanOrEqual(2);
    // Nothing starts before what it needs completed.
    for (let i = 0; i < 18; i++) expect(at('StepStarted', `m${i}`)).toBeGreaterThanOrEqual(at('StepCompleted', 'split'));
    expect(at('StepStarted', 'join')).toBeGreaterThanOrEqual(Math.max(...intervals.map(([, e]) => e)));
    // Each step ran once, on its last attempt (an earlier one may have found no taker on a loaded machine), as its events say.
    const ran = await runsOf(planId);
    const retries = events.filter((e) => e.type === 'StepRetried').map((e) => e.event);
    expect(ran.sort(), JSON.stringify(retries)).toEqual(diamond.steps.map((s) => `${s.id} ${r.run.steps.get(s.id)!.attempt}`).sort());
    // The planner counts what it decided (the diamond's maps were auctioned, its split and join assigned directly).
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^mabeam_plans_total\{status="completed"\} [1-9]/m);
    expect(metrics).toMatch(/^mabeam_steps_total\{outcome="assigned-auction"\} [1-9]/m);
    expect(metrics).toMatch(/^mabeam_steps_total\{outcome="assigned-direct"\} [1-9]/m);
    // The plan's log folds into the same plan as the one followed live.
    const read = await readPlan(ctx.kafka, ctx.codec, ctx.logger, ctx.prefix, planId);
    expect(snapshot(read.run!)).toEqual(snapshot(r.run));
  });

  it('a step that fails for good skips what needs it and fails the plan; with escalation, a reviewer takes it', { timeout: 120_000 }, async () => {
    const chain = (escalate: boolean) => ({
      plan: {
        steps: [
          { id: 'first', capability: 'chain' },
          { id: escalate ? 'delicate' : 'doomed', capability: 'chain', after: ['first'], ...(escalate ? { escalate: { to: ['review'] } } : {}) },
          { id: 'last', capability: 'chain', after: [escalate ? 'delicate' : 'doomed'] },
          { id: 'cleanup', capability: 'chain', after: ['last'], trigger: 'all-done' },
        ],
        result: { last: { step: 'last' } },
      },
    });
    const [failing, escalating] = await Promise.all([run(chain(false), `${ctx.prefix}-doomed`), run(chain(true), `${ctx.prefix}-escalated`)]);
    expect(failing.result).toMatchObject({ status: 'failed', reason: expect.stringContaining('failed: doomed') });
    const f = (failing.result as { run: PlanRun }).run;
    expect(f.steps.get('doomed')).toMatchObject({ state: 'failed', attempt: 1 });
    expect(f.steps.get('last')).toMatchObject({ state: 'skipped', reason: 'upstream doomed failed' });
    expect(f.steps.get('cleanup')!.state).toBe('completed');
    expect(failing.events.find((e) => e.type === 'StepFailed')!.event).toMatchObject({ retriable: false, final: true });
    expect(typesOf(failing.events, 'doomed')).not.toContain('StepRetried');

    expect(escalating.result.status).toBe('completed');
    const e = (escalating.result as { run: PlanRun }).run;
    expect(e.steps.get('delicate')).toMatchObject({ state: 'completed', attempt: 2, escalated: true, agentId: 'reviewer-1', triedBy: ['join-1', 'reviewer-1'] });
    expect(escalating.events.find((x) => x.type === 'StepRetried')!.event).toMatchObject({ reasonCode: 'ESCALATED', escalated: true });
  });

  it('bad plans are rejected with every problem and nothing runs', { timeout: 60_000 }, async () => {
    const noAgent = await run({ plan: { steps: [{ id: 'a', capability: 'teleport' }, { id: 'b', capability: 'chain', after: ['a'] }] } }, `${ctx.prefix}-no-agent`);
    expect(noAgent.result).toMatchObject({ status: 'rejected', rejection: { reasonCode: 'NO_AGENT', problems: ['step "a" needs capability "teleport", which no agent offers'] } });
    const unknownType = await run({ type: 'moonshot', goal: {} }, `${ctx.prefix}-unknown-type`);
    expect(unknownType.result).toMatchObject({ status: 'rejected', rejection: { reasonCode: 'UNKNOWN_GOAL_TYPE' } });
    const badTemplate = await run({ type: 'map-reduce', goal: { items: [] } }, `${ctx.prefix}-bad-template`);
    expect(badTemplate.result).toMatchObject({ status: 'rejected', rejection: { reasonCode: 'INVALID_PLAN', reason: expect.stringContaining('items: a non-empty array') } });
    expect(await runsOf(`${ctx.prefix}-no-agent`)).toEqual([]);
    // Garbage and a request under another plan's key go to dead-letters with the reason; the planner goes on.
    const producer = await ctx.producer();
    await producer.send({ topic: ctx.topic('plan-inputs'), messages: [{ key: `${ctx.prefix}-garbage`, value: Buffer.from('{"plan": "not avro"}') }] });
    const misKeyed: PlanRequested = { envelope: newEnvelope('PlanRequested', 'someone'), planId: `${ctx.prefix}-mis-keyed`, requesterId: 'someone', goal: '{}', goalType: null, plan: JSON.stringify({ steps: [{ id: 'a', capability: 'chain' }] }) };
    await producer.send({ topic: ctx.topic('plan-inputs'), messages: [{ key: 'another-plan', value: await ctx.codec.encode('PlanRequested', misKeyed) }] });
    const dead = await waitFor(async () => {
      const list = (await readLog(ctx.kafka, ctx.codec, [ctx.topic('dead-letters')])).map((r) => r.decoded.event as unknown as DeadLetter).filter((d) => d.sourceTopic === ctx.topic('plan-inputs'));
      return list.length >= 2 && list;
    }, { what: 'two dead letters from plan-inputs', timeoutMs: 30_000 });
    expect(dead.map((d) => d.key?.toString())).toEqual(expect.arrayContaining([`${ctx.prefix}-garbage`, 'another-plan']));
    expect(dead.find((d) => d.key?.toString() === 'another-plan')!.reason).toMatch(/the message key is "another-plan" but plan-inputs is keyed by planId/);
    // A goal of a template: map-reduce over the maps, reduced by join.
    const mapped = await run({ type: 'map-reduce', goal: { items: ['x', 'y', 'z'], map: 'map', reduce: 'join' } }, `${ctx.prefix}-map-reduce`);
    expect(mapped.result.status).toBe('completed');
    expect(((mapped.result as { result: Record<string, { inputs: Record<string, { inputs: { item: string } }> }> }).result['reduce']!.inputs['r2']!.inputs.item)).toBe('z');
  });
});

describe('plans through failures', () => {
  it('an agent SIGKILLed while it runs a step: the step is re-auctioned after its lease and completes once', { timeout: 120_000 }, async () => {
    const slow = [startWorker('slow-1', 'slow', { DELAY_MS: '6000' }), startWorker('slow-2', 'slow', { DELAY_MS: '6000' })];
    await Promise.all(slow.map((w) => w.ready));
    const planId = `${ctx.prefix}-killed-agent`;
    const events: LoggedEvent[] = [];
    // A lease of 5 s: heartbeats (every third of it) of a live agent on a loaded machine are not late by that much.
    const done = client.run({ plan: { steps: [{ id: 'long', capability: 'slow', timeoutMs: 5_000, retry: { maxAttempts: 3, backoffMs: 0 } }] } }, { planId, timeoutMs: 90_000, onEvent: (e) => events.push(e) });
    const started = await waitFor(() => events.find((e) => e.type === 'StepStarted')?.event as { agentId: string } | undefined, { what: 'the step to start', timeoutMs: 30_000 });
    const victim = slow[started.agentId === 'slow-1' ? 0 : 1]!;
    victim.process.kill('SIGKILL');
    const result = await done;
    expect(result.status).toBe('completed');
    const step = (result as { run: PlanRun }).run.steps.get('long')!;
    const other = started.agentId === 'slow-1' ? 'slow-2' : 'slow-1';
    expect(step, JSON.stringify(events.filter((e) => e.type === 'StepFailed' || e.type === 'StepRetried').map((e) => e.event))).toMatchObject({ state: 'completed', attempt: 2, agentId: other, triedBy: [started.agentId, other] });
    expect(events.filter((e) => e.type === 'StepCompleted')).toHaveLength(1);
    expect(events.find((e) => e.type === 'StepFailed')!.event).toMatchObject({ attempt: 1, agentId: started.agentId, error: expect.stringMatching(/^LEASE_EXPIRED/) });
    expect(await runsOf(planId)).toEqual(['long 1', 'long 2']);
    // A late result from the superseded attempt is refused as an event on the plan's log.
    const late: StepCompleted = { envelope: newEnvelope('StepCompleted', started.agentId, { correlationId: planId }), planId, stepId: 'long', attempt: 1, agentId: started.agentId, result: '"late"' };
    await (await ctx.producer()).send({ topic: ctx.topic('plan-inputs'), messages: [{ key: planId, value: await ctx.codec.encode('StepCompleted', late) }] });
    const refused = await waitFor(async () => (await readPlan(ctx.kafka, ctx.codec, ctx.logger, ctx.prefix, planId)).events.find((e) => e.e.type === 'Rejection' && e.e.event.rejectedEventId === late.envelope.eventId), { what: 'the late result refused', timeoutMs: 30_000 });
    expect(refused.e.event).toMatchObject({ reasonCode: 'PLAN_FINISHED', agentId: started.agentId });
    expect((await readPlan(ctx.kafka, ctx.codec, ctx.logger, ctx.prefix, planId)).run!.steps.get('long')!.result).toMatchObject({ by: other });
  });

  it('the planner SIGKILLed mid-plan: another resumes it and no completed step runs again', { timeout: 150_000 }, async () => {
    const second = startPlanner();
    await second.ready;
    const planId = `${ctx.prefix}-killed-planner`;
    const steps = Array.from({ length: 8 }, (_, i) => ({ id: `c${i}`, capability: 'chain', ...(i > 0 ? { inputs: { previous: { step: `c${i - 1}`, path: 'step' } } } : {}) }));
    const events: LoggedEvent[] = [];
    const done = client.run({ plan: { steps } }, { planId, timeoutMs: 120_000, onEvent: (e) => events.push(e) });
    await waitFor(() => events.filter((e) => e.type === 'StepCompleted').length >= 3, { what: 'three steps completed', timeoutMs: 60_000 });
    // The planner that decides the plan is the one writing its log.
    const writer = events.at(-1)!.event.envelope.producerId;
    const owners = await Promise.all(planners.map(async (p) => ({ p, id: (await p.ready).instanceId })));
    const victim = owners.find((o) => o.id === writer);
    expect(victim, `the planner ${writer}`).toBeDefined();
    victim!.p.process.kill('SIGKILL');
    const result = await done;
    expect(result.status).toBe('completed');
    const producers = new Set(events.map((e) => e.event.envelope.producerId).filter((id) => id.startsWith('planner-')));
    expect(producers.size).toBe(2);
    // The agents ran every step exactly once.
    expect(await runsOf(planId)).toEqual(steps.map((s) => `${s.id} 1`));
    expect((result as { result: Record<string, { inputs: { previous: string } }> }).result['c7']!.inputs.previous).toBe('c6');
  });
});

/** What a plan's state is, comparable. */
function snapshot(run: PlanRun): unknown {
  return { outcome: run.outcome, steps: [...run.steps.values()].map((s) => ({ ...s })) };
}
