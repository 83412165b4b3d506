import { describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { PlanEvent } from '../../src/planner/events.ts';
import { evolve, pending, resultsOf, startPlan, type PlanRun } from '../../src/planner/run.ts';

const planJson = JSON.stringify({
  goal: { n: 3 },
  steps: [
    { id: 'fetch', capability: 'http', inputs: { n: {} } },
    { id: 'parse', capability: 'text', inputs: { page: { step: 'fetch' } } },
    { id: 'scan', capability: 'security', inputs: { page: { step: 'fetch' } } },
    { id: 'report', capability: 'text', inputs: { a: { step: 'parse' }, b: { step: 'scan' } } },
  ],
});

let clock = 1_000;
/** An event of plan p, its envelope made here. */
function ev<T extends PlanEvent['type']>(type: T, body: Omit<Extract<PlanEvent, { type: T }>['event'], 'envelope' | 'planId'>): Extract<PlanEvent, { type: T }> {
  clock += 10;
  return { type, event: { envelope: newEnvelope('RoundClosed', 'test', { eventTime: clock }), planId: 'p', ...body } } as unknown as Extract<PlanEvent, { type: T }>;
}

function start(): PlanRun {
  return startPlan(ev('PlanCreated', { plan: planJson, requesterId: 'cli', goalType: null }).event);
}

/** Runs a step's one attempt to completion on an agent. */
function runStep(run: PlanRun, stepId: string, agentId: string, result: unknown, attempt = 1): void {
  evolve(run, ev('StepAssigned', { stepId, attempt, agentId, roundId: `r-${stepId}-${attempt}`, leaseMs: 5_000, capability: 'c', rule: 'test', inputs: '{}', escalated: false }));
  evolve(run, ev('StepStarted', { stepId, attempt, agentId, leaseMs: 5_000, instanceId: 'i' }));
  evolve(run, ev('StepCompleted', { stepId, attempt, agentId, result: JSON.stringify(result) }));
}

describe('a plan as the fold of its events', () => {
  it('moves a diamond from its root to its join, each step ready once its upstream completed, and completes with every result', () => {
    const run = start();
    expect(pending(run).changes.map((c) => c.stepId)).toEqual(['fetch']);
    evolve(run, ev('StepReady', { stepId: 'fetch', reason: 'no upstream step' }));
    expect(pending(run).changes).toEqual([]);
    runStep(run, 'fetch', 'a1', { body: 'x' });
    expect(pending(run).changes.map((c) => `${c.stepId} ${c.to}`)).toEqual(['parse ready', 'scan ready']);
    for (const id of ['parse', 'scan']) evolve(run, ev('StepReady', { stepId: id, reason: 'upstream fetch completed' }));
    runStep(run, 'scan', 'a3', { findings: 0 });
    expect(pending(run).changes).toEqual([]);
    runStep(run, 'parse', 'a2', { words: 1 });
    expect(pending(run).changes.map((c) => c.stepId)).toEqual(['report']);
    evolve(run, ev('StepReady', { stepId: 'report', reason: 'upstream parse, scan completed' }));
    expect(pending(run).outcome).toBeUndefined();
    runStep(run, 'report', 'a2', 'done');
    expect(pending(run).outcome).toEqual({ status: 'completed' });
    expect(Object.fromEntries(resultsOf(run))).toEqual({ fetch: { body: 'x' }, parse: { words: 1 }, scan: { findings: 0 }, report: 'done' });
    expect(run.steps.get('report')).toMatchObject({ state: 'completed', attempt: 1, agentId: 'a2', roundId: 'r-report-1', triedBy: ['a2'] });
  });

  it('records a step\'s result once: a superseded attempt\'s late result and a second result change nothing', () => {
    const run = start();
    evolve(run, ev('StepReady', { stepId: 'fetch', reason: 'no upstream step' }));
    evolve(run, ev('StepAssigned', { stepId: 'fetch', attempt: 1, agentId: 'a1', roundId: 'r1', leaseMs: 5_000, capability: 'c', rule: 'test', inputs: '{}', escalated: false }));
    evolve(run, ev('StepStarted', { stepId: 'fetch', attempt: 1, agentId: 'a1', leaseMs: 5_000, instanceId: 'i' }));
    const notBefore = clock + 500;
    evolve(run, ev('StepRetried', { stepId: 'fetch', attempt: 2, previousAgentId: 'a1', reasonCode: 'LEASE_EXPIRED', reason: 'no sign of life from a1', notBefore, escalated: false }));
    expect(run.steps.get('fetch')).toMatchObject({ state: 'retrying', attempt: 2, agentId: null, notBefore });
    evolve(run, ev('StepAssigned', { stepId: 'fetch', attempt: 2, agentId: 'a2', roundId: 'r2', leaseMs: 5_000, capability: 'c', rule: 'test', inputs: '{}', escalated: false }));
    // a1 wakes up and answers its attempt 1: superseded.
    evolve(run, ev('StepCompleted', { stepId: 'fetch', attempt: 1, agentId: 'a1', result: '"stale"' }));
    expect(run.steps.get('fetch')!.state).toBe('assigned');
    evolve(run, ev('StepCompleted', { stepId: 'fetch', attempt: 2, agentId: 'a2', result: '"fresh"' }));
    evolve(run, ev('StepCompleted', { stepId: 'fetch', attempt: 2, agentId: 'a2', result: '"again"' }));
    expect(run.steps.get('fetch')).toMatchObject({ state: 'completed', result: 'fresh', triedBy: ['a1', 'a2'] });
  });

  it('a step failed for good skips what depends on it, and the plan fails naming it', () => {
    const run = start();
    evolve(run, ev('StepReady', { stepId: 'fetch', reason: 'no upstream step' }));
    runStep(run, 'fetch', 'a1', 'page');
    for (const id of ['parse', 'scan']) evolve(run, ev('StepReady', { stepId: id, reason: 'upstream fetch completed' }));
    runStep(run, 'parse', 'a2', 'words');
    evolve(run, ev('StepAssigned', { stepId: 'scan', attempt: 1, agentId: 'a3', roundId: null, leaseMs: 5_000, capability: 'c', rule: 'test', inputs: '{}', escalated: false }));
    evolve(run, ev('StepFailed', { stepId: 'scan', attempt: 1, agentId: 'a3', error: 'scanner refused the page', retriable: false, final: true, escalated: false }));
    expect(pending(run).changes).toEqual([{ stepId: 'report', to: 'skipped', reason: 'upstream scan failed' }]);
    evolve(run, ev('StepSkipped', { stepId: 'report', reason: 'upstream scan failed' }));
    expect(pending(run).outcome).toEqual({ status: 'failed', reason: 'failed: scan; no result from report', failed: ['scan'] });
    evolve(run, ev('PlanFailed', { reason: 'failed: scan; no result from report', failed: ['scan'] }));
    expect(run.outcome).toMatchObject({ status: 'failed', failed: ['scan'] });
    expect(pending(run).outcome).toBeUndefined();
  });

  it('refuses events for steps the plan does not have', () => {
    const run = start();
    expect(() => evolve(run, ev('StepReady', { stepId: 'ghost', reason: 'x' }))).toThrow('Plan p has no step "ghost"');
  });
});
