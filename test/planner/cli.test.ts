import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanAudit } from '../../src/audit/index.ts';
import { partitionOfKey } from '../../src/engine/routing.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { EventTypeName } from '../../src/events/types.ts';
import { parsePlan } from '../../src/planner/plan.ts';
import { stepRoundId } from '../../src/planner/stepRounds.ts';
import { eventHeaders } from '../../src/producer/eventProducer.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { runCli } from '../agentProcesses.ts';
import { testContext, type TestContext } from '../helpers.ts';

/**
 * `mabeam plan …` against the real stack, with no planner: bad goals are
 * refused before anything is produced, and plans whose events are written
 * to `plans` here (as a planner would) are shown by status, result, audit
 * and cancel.
 */
let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('plan-cli');
});
afterAll(() => ctx?.close());

const plan = (args: string[], timeoutMs = 60_000) => runCli(ctx.stack, ['plan', ...args, '--prefix', ctx.prefix], {}, timeoutMs);

async function goalFile(name: string, text: string): Promise<string> {
  const path = join(tmpdir(), `${ctx.prefix}-${name}.json`);
  await writeFile(path, text);
  return path;
}

type Written = { type: EventTypeName; at: number; body: Record<string, unknown>; eventId?: string; causationId?: string };

/** Writes events to a topic on the key's partition (murmur2, as the engine places keys), each at the time given. */
async function writeEvents(topic: string, key: string, events: Written[]): Promise<void> {
  const producer = await ctx.producer();
  const partition = partitionOfKey(Buffer.from(key), ctx.definition(topic).partitions);
  const messages = [];
  for (const e of events) {
    const envelope = newEnvelope(e.type, 'test-writer', { correlationId: key, eventTime: e.at, ...(e.eventId ? { eventId: e.eventId } : {}), ...(e.causationId ? { causationId: e.causationId } : {}) });
    const event = { envelope, ...e.body };
    messages.push({ key, partition, value: await ctx.codec.encode(e.type, event), headers: { [eventHeaders.type]: e.type, [eventHeaders.id]: envelope.eventId } });
  }
  await producer.send({ topic: ctx.topic(topic), messages });
}

/** Plan events on `plans`, as a planner would write them. */
const writePlanEvents = (planId: string, events: Written[]) => writeEvents('plans', planId, events);

async function planInputs(): Promise<Array<{ type: string; key: string | null }>> {
  const records = await readLog(ctx.kafka, ctx.codec, [ctx.topic('plan-inputs')]);
  return records.map((r) => ({ type: r.decoded.type, key: r.key }));
}

const twoSteps = parsePlan({
  steps: [
    { id: 'a', capability: 'compute', inputs: { x: { value: 1 } }, retry: { maxAttempts: 2, backoffMs: 500 } },
    { id: 'b', capability: 'compute', inputs: { y: { step: 'a', path: 'v' } } },
  ],
});

describe('mabeam plan', () => {
  it('refuses bad goals with exit 2 and a clear message, producing nothing', async () => {
    // Each is checked before anything is produced; they run side by side.
    const [invalidJson, cycle, noStep, neither, badTimeout] = await Promise.all([
      goalFile('invalid', '{"plan": {"steps": [').then((f) => plan(['run', f])),
      goalFile('cycle', JSON.stringify({ plan: { steps: [{ id: 'a', capability: 'c', after: ['b'] }, { id: 'b', capability: 'c', inputs: { v: { step: 'a' } } }] } })).then((f) => plan(['run', f])),
      goalFile('nostep', JSON.stringify({ plan: { steps: [{ id: 'a', capability: 'c', inputs: { v: { step: 'missing' } } }] } })).then((f) => plan(['run', f])),
      goalFile('neither', JSON.stringify({ goal: { x: 1 } })).then((f) => plan(['run', f])),
      goalFile('ok', JSON.stringify({ type: 'map-reduce', goal: { items: [1], map: 'compute' } })).then((f) => plan(['run', f, '--timeout', 'soon'])),
    ]);
    expect(invalidJson.code).toBe(2);
    expect(invalidJson.stderr).toMatch(/is not JSON/);
    expect(invalidJson.stderr).toMatch(/\[VALIDATION_FAILED\]/);
    expect(cycle.code).toBe(2);
    expect(cycle.stderr).toMatch(/the steps form a cycle: (a → b → a|b → a → b)/);
    expect(noStep.code).toBe(2);
    expect(noStep.stderr).toContain('step "a": input "v" names no step ("missing")');
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/needs a type/);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toMatch(/--timeout/);

    expect(await planInputs()).toEqual([]);
  });

  it('says NOT_IN_LOG (exit 2) for a plan never submitted', async () => {
    const commands = ['status', 'result', 'audit', 'cancel'];
    const runs = await Promise.all(commands.map((command) => plan([command, 'plan-never-submitted'])));
    for (const [i, r] of runs.entries()) {
      expect(r.code, `${commands[i]}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/\[NOT_IN_LOG\]/);
    }
  });

  it('status, result and audit tell a plan from its log: steps, attempts, the retry, the auction whose round is not in the log, refusals, the outcome', async () => {
    const planId = 'plan-cli-done';
    const t0 = Date.parse('2026-03-01T10:00:00.000Z');
    const round2 = stepRoundId(planId, 'a', 2);
    await writePlanEvents(planId, [
      { type: 'PlanCreated', at: t0, body: { planId, requesterId: 'cli-test', goalType: null, plan: JSON.stringify(twoSteps) } },
      { type: 'StepReady', at: t0, body: { planId, stepId: 'a', reason: 'no upstream step' } },
      { type: 'StepAssigned', at: t0 + 10, body: { planId, stepId: 'a', attempt: 1, agentId: 'w2', capability: 'compute', roundId: null, rule: 'the only running agent with capability compute', inputs: JSON.stringify({ x: 1 }), leaseMs: 60_000, escalated: false } },
      { type: 'StepStarted', at: t0 + 20, body: { planId, stepId: 'a', attempt: 1, agentId: 'w2', instanceId: 'host-2', leaseMs: 60_000 } },
      { type: 'StepFailed', at: t0 + 120, body: { planId, stepId: 'a', attempt: 1, agentId: 'w2', error: 'disk full', retriable: true, final: false, escalated: false } },
      { type: 'StepRetried', at: t0 + 120, body: { planId, stepId: 'a', attempt: 2, previousAgentId: 'w2', reasonCode: 'STEP_FAILED', reason: 'attempt 1 on w2 failed: disk full', notBefore: t0 + 620, escalated: false } },
      { type: 'StepAuctioned', at: t0 + 650, body: { planId, stepId: 'a', attempt: 2, roundId: round2, protocol: 'delegation', asked: ['w1', 'w3'], tiers: [], deadline: t0 + 2_650 } },
      { type: 'StepAssigned', at: t0 + 700, body: { planId, stepId: 'a', attempt: 2, agentId: 'w1', capability: 'compute', roundId: round2, rule: 'delegation auction: w1 (tier 0) takes the task at cost 0', inputs: JSON.stringify({ x: 1 }), leaseMs: 60_000, escalated: false } },
      { type: 'StepStarted', at: t0 + 710, body: { planId, stepId: 'a', attempt: 2, agentId: 'w1', instanceId: 'host-1', leaseMs: 60_000 } },
      { type: 'StepCompleted', at: t0 + 910, body: { planId, stepId: 'a', attempt: 2, agentId: 'w1', result: JSON.stringify({ v: 2 }) } },
      { type: 'Rejection', at: t0 + 950, body: { subjectId: planId, rejectedEventId: 'late-report', rejectedEventType: 'StepCompleted', agentId: 'w2', reasonCode: 'STEP_FINISHED', reason: 'Step a is completed already; its result counts once.' } },
      { type: 'StepReady', at: t0 + 910, body: { planId, stepId: 'b', reason: 'upstream a completed' } },
      { type: 'StepAssigned', at: t0 + 920, body: { planId, stepId: 'b', attempt: 1, agentId: 'w3', capability: 'compute', roundId: null, rule: 'the only running agent with capability compute', inputs: JSON.stringify({ y: 2 }), leaseMs: 60_000, escalated: false } },
      { type: 'StepStarted', at: t0 + 930, body: { planId, stepId: 'b', attempt: 1, agentId: 'w3', instanceId: 'host-3', leaseMs: 60_000 } },
      { type: 'StepCompleted', at: t0 + 1_430, body: { planId, stepId: 'b', attempt: 1, agentId: 'w3', result: JSON.stringify({ sum: 3 }) } },
      { type: 'PlanCompleted', at: t0 + 1_430, body: { planId, result: JSON.stringify({ b: { sum: 3 } }) } },
    ]);

    // Every reader side by side (each is a process of its own).
    const [status, text, result, audit, story, cancel] = await Promise.all([
      plan(['status', planId, '--json']), plan(['status', planId]), plan(['result', planId]), plan(['audit', planId, '--json']), plan(['audit', planId]), plan(['cancel', planId]),
    ]);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as { status: string; result: unknown; steps: Array<Record<string, unknown>>; durationMs: number; goalType: unknown; requesterId: string };
    expect(s).toMatchObject({ status: 'completed', result: { b: { sum: 3 } }, durationMs: 1_430, goalType: null, requesterId: 'cli-test' });
    expect(s.steps).toEqual([
      expect.objectContaining({ stepId: 'a', capability: 'compute', state: 'completed', attempt: 2, agentId: 'w1', triedBy: ['w2', 'w1'], roundId: round2, errors: ['disk full'], result: { v: 2 } }),
      expect.objectContaining({ stepId: 'b', capability: 'compute', state: 'completed', attempt: 1, agentId: 'w3', triedBy: ['w3'], roundId: null, result: { sum: 3 } }),
    ]);

    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/status\s+completed/);
    expect(text.stdout).toMatch(/a\s+compute\s+completed\s+2\s+w1\s+w2, w1\s+step:plan-cli-done\/a#2/);

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ b: { sum: 3 } });

    expect(audit.code, audit.stderr).toBe(0);
    const a = JSON.parse(audit.stdout) as PlanAudit;
    expect(a.status).toBe('completed');
    expect(a.steps.map((x) => x.stepId)).toEqual(['a', 'b']);
    const [stepA, stepB] = a.steps;
    expect(stepA!.ready).toEqual({ reason: 'no upstream step', eventTime: t0 });
    expect(stepA!.durationMs).toBe(910);
    expect(stepA!.attempts).toHaveLength(2);
    const [first, second] = stepA!.attempts;
    expect(first!.auction).toBeNull();
    expect(first!.assigned).toMatchObject({ agentId: 'w2', roundId: null, rule: 'the only running agent with capability compute', inputs: { x: 1 }, waitedMs: 10 });
    expect(first!.started).toMatchObject({ instanceId: 'host-2', afterAssignedMs: 10 });
    expect(first!.failed).toMatchObject({ agentId: 'w2', error: 'disk full', retriable: true, final: false, durationMs: 100 });
    expect(first!.retried).toMatchObject({ attempt: 2, reasonCode: 'STEP_FAILED', reason: 'attempt 1 on w2 failed: disk full', backoffMs: 500 });
    expect(second!.retryOf).toMatchObject({ reasonCode: 'STEP_FAILED', previousAgentId: 'w2' });
    expect(second!.auction).toMatchObject({ roundId: round2, protocol: 'delegation', asked: ['w1', 'w3'], tiers: [], deadline: t0 + 2_650 });
    expect(second!.auction!.round).toMatchObject({ roundId: round2, found: false, bids: [], outcome: null });
    expect(second!.auction!.round.note).toMatch(/no round .* in the log/);
    expect(second!.assigned).toMatchObject({ agentId: 'w1', roundId: round2, rule: 'delegation auction: w1 (tier 0) takes the task at cost 0', waitedMs: 80 });
    expect(second!.completed).toMatchObject({ agentId: 'w1', result: { v: 2 }, durationMs: 200 });
    expect(stepB!.upstream).toEqual(['a']);
    expect(stepB!.attempts).toHaveLength(1);
    expect(stepB!.attempts[0]!.completed).toMatchObject({ agentId: 'w3', result: { sum: 3 }, durationMs: 500 });
    expect(a.refusals).toEqual([expect.objectContaining({ agentId: 'w2', reasonCode: 'STEP_FINISHED', rejectedEventType: 'StepCompleted' })]);
    expect(a.outcome).toMatchObject({ status: 'completed', result: { b: { sum: 3 } }, durationMs: 1_430 });
    expect(a.read).toMatchObject({ events: 16, rounds: 1 });

    expect(story.code, story.stderr).toBe(0);
    expect(story.stdout).toContain('Plan plan-cli-done: completed after 1.4 s');
    expect(story.stdout).toMatch(/retried\s+as attempt 2 .*STEP_FAILED/);
    expect(story.stdout).toMatch(/no round step:plan-cli-done\/a#2 in the log/);
    expect(story.stdout).toMatch(/STEP_FINISHED/);

    expect(cancel.code).toBe(3);
    expect(cancel.stderr).toMatch(/completed already/);
  });

  it('a plan that has not finished: its open auction\'s bids in the audit; result exits 3 with its status; cancel with no planner exits 3 after --timeout; a rejected plan shows its problems', async () => {
    const planId = 'plan-cli-running';
    const now = Date.now();
    const roundId = stepRoundId(planId, 'a', 1);
    await writePlanEvents(planId, [
      { type: 'PlanCreated', at: now, body: { planId, requesterId: 'cli-test', goalType: 'map-reduce', plan: JSON.stringify(twoSteps) } },
      { type: 'StepReady', at: now, body: { planId, stepId: 'a', reason: 'no upstream step' } },
      { type: 'StepAuctioned', at: now + 5, body: { planId, stepId: 'a', attempt: 1, roundId, protocol: 'delegation', asked: ['w1', 'w2'], tiers: [['w9']], deadline: now + 60_000 } },
    ]);
    // The auction's request and two answers, as the planner and the agents would write them (no coordinator decides it here).
    const item = { kind: 'plan-step', planId, stepId: 'a', attempt: 1, capability: 'compute', escalated: false, inputs: { x: 1 } };
    await writeEvents('bid-requests', roundId, [
      { type: 'BidRequest', at: now + 5, eventId: `${planId}-request`, body: { roundId, protocol: 'delegation', item: JSON.stringify(item), requiredCapabilities: [], eligibleAgents: ['w1', 'w2'], reservePrice: null, deadline: now + 60_000, parameters: JSON.stringify({ escalation: [['w9']] }), stage: 0, earlierStages: [] } },
    ]);
    await writeEvents('bids', roundId, [
      { type: 'Bid', at: now + 10, causationId: `${planId}-request`, body: { roundId, agentId: 'w1', amount: 3, bundle: [], attributes: null } },
      { type: 'Bid', at: now + 11, causationId: `${planId}-request`, body: { roundId, agentId: 'w2', amount: 0, bundle: [], attributes: JSON.stringify({ pass: true }) } },
    ]);
    const rejectedId = 'plan-cli-rejected';
    await writePlanEvents(rejectedId, [
      { type: 'PlanRejected', at: Date.now(), body: { planId: rejectedId, requesterId: 'cli-test', reasonCode: 'NO_AGENT', reason: 'Invalid plan: step "a" needs capability "gpu", which no agent offers', problems: ['step "a" needs capability "gpu", which no agent offers'] } },
    ]);
    // Every reader side by side (each is a process of its own); the cancel last, as it writes.
    const [openAudit, openStory, result, statusRun, rejectedStatus, rejectedResult, rejectedAuditRun] = await Promise.all([
      plan(['audit', planId, '--json']), plan(['audit', planId]), plan(['result', planId]), plan(['status', planId, '--json']),
      plan(['status', rejectedId, '--json']), plan(['result', rejectedId]), plan(['audit', rejectedId, '--json']),
    ]);
    const open = JSON.parse(openAudit.stdout) as PlanAudit;
    expect(open.status).toBe('running');
    expect(open.outcome).toBeNull();
    const auction = open.steps[0]!.attempts[0]!.auction!;
    expect(auction).toMatchObject({ roundId, asked: ['w1', 'w2'], tiers: [['w9']] });
    expect(auction.round).toMatchObject({ found: true, state: 'open', protocol: 'delegation', stages: [{ stage: 0, asked: ['w1', 'w2'] }], outcome: null });
    expect(auction.round.bids.map((b) => [b.agentId, b.amount, b.pass])).toEqual([['w1', 3, false], ['w2', null, true]]);
    expect(openStory.stdout).toMatch(/asked w1, w2; then tier 1 w9/);
    expect(openStory.stdout).toMatch(/w1\s+3\s+neither/);
    expect(openStory.stdout).toMatch(/w2\s+pass/);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/has not completed: running: 0\/2 steps finished/);
    const status = JSON.parse(statusRun.stdout) as { status: string; steps: Array<{ state: string }> };
    expect(status.status).toBe('running');
    expect(status.steps.map((x) => x.state)).toEqual(['ready', 'waiting']);
    expect(status.steps[0]).toMatchObject({ roundId, agentId: null, attempt: 0 });

    const cancel = await plan(['cancel', planId, '--timeout', '2s', '--reason', 'not needed']);
    expect(cancel.code).toBe(3);
    expect(cancel.stderr).toMatch(/not cancelled within 2s/);
    const inputs = await readLog(ctx.kafka, ctx.codec, [ctx.topic('plan-inputs')]);
    expect(inputs.filter((r) => r.key === planId).map((r) => [r.decoded.type, (r.decoded.event as { reason?: string }).reason])).toEqual([['PlanCancelled', 'not needed']]);

    const rejected = JSON.parse(rejectedStatus.stdout) as { status: string; rejection: { reasonCode: string; problems: string[] } };
    expect(rejected).toMatchObject({ status: 'rejected', rejection: { reasonCode: 'NO_AGENT', problems: ['step "a" needs capability "gpu", which no agent offers'] } });
    expect(rejectedResult.code).toBe(3);
    expect(rejectedResult.stderr).toMatch(/rejected: .*\[NO_AGENT\]\n {2}- step "a" needs capability "gpu"/);
    const rejectedAudit = JSON.parse(rejectedAuditRun.stdout) as PlanAudit;
    expect(rejectedAudit).toMatchObject({ status: 'rejected', steps: [], rejected: { reasonCode: 'NO_AGENT' } });
  });

  it('run --no-wait submits and prints the plan id; run with no planner exits 3 after --timeout', async () => {
    const file = await goalFile('mapreduce', JSON.stringify({ type: 'map-reduce', goal: { items: [1, 2], map: 'compute' } }));
    const submitted = await plan(['run', file, '--no-wait', '--id', 'plan-cli-submitted']);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stdout.trim()).toBe('plan-cli-submitted');
    const waited = await plan(['run', file, '--id', 'plan-cli-waited', '--timeout', '2s']);
    expect(waited.code).toBe(3);
    expect(waited.stderr).toMatch(/plan plan-cli-waited did not finish within 2s/);
    const requested = (await planInputs()).filter((r) => r.type === 'PlanRequested').map((r) => r.key);
    expect(requested.sort()).toEqual(['plan-cli-submitted', 'plan-cli-waited']);
  });
});
