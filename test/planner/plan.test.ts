import { describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { backoffBefore, dependantsOf, findCycle, parsePlan, resolveInputs, topologicalOrder, type Plan } from '../../src/planner/plan.ts';
import { planOutcome, settleWaiting, type StepState } from '../../src/planner/progress.ts';

/** The message of the VALIDATION_FAILED a bad plan gets. */
function problem(raw: unknown, options?: Parameters<typeof parsePlan>[1]): string {
  try {
    parsePlan(raw, options);
  } catch (error) {
    expect(isMabeamError(error) && error.code).toBe('VALIDATION_FAILED');
    return (error as Error).message;
  }
  throw new Error('the plan was accepted');
}

/** A diamond: fetch → (parse, scan) → report. */
const diamond = {
  goal: { url: 'https://example.org/data', depth: 2 },
  steps: [
    { id: 'fetch', capability: 'http', inputs: { url: {} } },
    { id: 'parse', capability: 'text', inputs: { page: { step: 'fetch', path: 'body' } } },
    { id: 'scan', capability: 'security', inputs: { page: { step: 'fetch' }, depth: { goal: 'depth' } } },
    { id: 'report', capability: 'text', inputs: { parsed: { step: 'parse' }, findings: { step: 'scan', path: 'items' }, format: { value: 'md' } } },
  ],
};

describe('plans', () => {
  it('fills in the defaults and takes every sink step\'s result as the plan\'s', () => {
    const plan = parsePlan(diamond);
    expect(plan.steps.map((s) => s.id)).toEqual(['fetch', 'parse', 'scan', 'report']);
    expect(plan.steps[0]).toMatchObject({ timeoutMs: 60_000, trigger: 'all-success', escalate: false, after: [], retry: { maxAttempts: 3, backoffMs: 1_000, backoffFactor: 2, maxBackoffMs: 60_000 } });
    expect(plan.result).toEqual({ report: { step: 'report' } });
    expect(topologicalOrder(plan)).toEqual(['fetch', 'parse', 'scan', 'report']);
    expect(dependantsOf(plan).get('fetch')).toEqual(['parse', 'scan']);
  });

  it('resolves a step\'s inputs from the goal, upstream results (with paths) and given values', () => {
    const plan = parsePlan(diamond);
    const results = new Map<string, unknown>([['fetch', { body: '<html>' }], ['parse', { words: 3 }], ['scan', { items: ['x'] }]]);
    expect(resolveInputs(plan, plan.steps[0]!, results)).toEqual({ url: 'https://example.org/data' });
    expect(resolveInputs(plan, plan.steps[1]!, results)).toEqual({ page: '<html>' });
    expect(resolveInputs(plan, plan.steps[2]!, results)).toEqual({ page: { body: '<html>' }, depth: 2 });
    expect(resolveInputs(plan, plan.steps[3]!, results)).toEqual({ parsed: { words: 3 }, findings: ['x'], format: 'md' });
  });

  it('refuses a cycle, naming it in the order work would flow', () => {
    const message = problem({
      steps: [
        { id: 'a', capability: 'x', after: ['c'] },
        { id: 'b', capability: 'x', inputs: { v: { step: 'a' } } },
        { id: 'c', capability: 'x', inputs: { v: { step: 'b' } } },
        { id: 'd', capability: 'x' },
      ],
    });
    expect(message).toContain('the steps form a cycle: ');
    const cycle = /cycle: (.*)$/.exec(message)![1]!.split(' → ');
    expect(cycle[0]).toBe(cycle.at(-1));
    expect(new Set(cycle)).toEqual(new Set(['a', 'b', 'c']));
    // Each step is followed by one that waits for it.
    const waitsFor: Record<string, string> = { b: 'a', c: 'b', a: 'c' };
    for (let i = 1; i < cycle.length; i++) expect(waitsFor[cycle[i]!]).toBe(cycle[i - 1]);
    expect(findCycle(parsePlan(diamond).steps)).toBeUndefined();
    expect(problem({ steps: [{ id: 'a', capability: 'x', inputs: { me: { step: 'a' } } }] })).toContain('input "me" names the step itself');
  });

  it('names every problem: duplicate ids, inputs and after naming no step, goal fields that are not there, results naming no step, capabilities no agent offers', () => {
    const message = problem(
      {
        goal: { known: 1 },
        steps: [
          { id: 'a', capability: 'x', inputs: { q: { goal: 'unknown' }, known: {} } },
          { id: 'a', capability: 'y' },
          { id: 'b', capability: 'z', inputs: { v: { step: 'ghost' } }, after: ['phantom'] },
        ],
        result: { out: { step: 'nowhere' } },
      },
      { capabilities: ['x', 'y'] },
    );
    expect(message).toContain('step "a" is defined twice');
    expect(message).toContain('step "a": input "q" takes goal field "unknown", which the goal does not have');
    expect(message).not.toContain('input "known"');
    expect(message).toContain('step "b": input "v" names no step ("ghost")');
    expect(message).toContain('step "b": after names no step ("phantom")');
    expect(message).toContain('step "b" needs capability "z", which no agent offers');
    expect(message).toContain('result "out" names no step ("nowhere")');
  });

  it('refuses what is not a plan, saying where', () => {
    expect(problem({ steps: [] })).toContain('steps: a plan needs at least one step');
    expect(problem({ steps: [{ id: 'a', capability: 'x', trigger: 'sometimes' }] })).toContain('steps.0.trigger');
    expect(problem({ steps: [{ id: 'a b', capability: 'x' }] })).toContain('steps.0.id');
    expect(problem({ steps: [{ id: 'a', capability: 'x', colour: 'red' }] })).toContain('unknown field(s) colour');
    expect(problem({ steps: [{ id: 'a', capability: 'x', inputs: { v: { step: 'a', value: 1 } } }] })).toContain('steps.0.inputs.v');
  });

  it('backs off between attempts: backoff × factor^(attempt − 2), capped', () => {
    const step = parsePlan({ steps: [{ id: 'a', capability: 'x', retry: { maxAttempts: 6, backoffMs: 100, backoffFactor: 3, maxBackoffMs: 1_000 } }] }).steps[0]!;
    expect([1, 2, 3, 4, 5].map((n) => backoffBefore(step, n))).toEqual([0, 100, 300, 900, 1_000]);
  });
});

describe('trigger rules and outcomes', () => {
  const states = (entries: Record<string, StepState>) => new Map(Object.entries(entries));
  const plan = (steps: unknown[]): Plan => parsePlan({ steps });

  it('all-success: ready once every upstream completed; a failure upstream skips the steps after it, transitively', () => {
    const p = parsePlan(diamond);
    expect(settleWaiting(p, states({}))).toEqual([{ stepId: 'fetch', to: 'ready', reason: 'no upstream step' }]);
    expect(settleWaiting(p, states({ fetch: 'completed' })).map((c) => `${c.stepId} ${c.to}`)).toEqual(['parse ready', 'scan ready']);
    expect(settleWaiting(p, states({ fetch: 'completed', parse: 'completed', scan: 'running' }))).toEqual([]);
    expect(settleWaiting(p, states({ fetch: 'completed', parse: 'completed', scan: 'completed' })).map((c) => `${c.stepId} ${c.to}`)).toEqual(['report ready']);
    const failed = settleWaiting(p, states({ fetch: 'failed' }));
    expect(failed.map((c) => `${c.stepId} ${c.to}`)).toEqual(['parse skipped', 'scan skipped', 'report skipped']);
    expect(failed[0]!.reason).toBe('upstream fetch failed');
    expect(failed[2]!.reason).toBe('upstream parse skipped, scan skipped');
  });

  it('all-done runs after its upstream finished however; one-failed runs only when one failed', () => {
    const p = plan([
      { id: 'work', capability: 'x' },
      { id: 'cleanup', capability: 'x', after: ['work'], trigger: 'all-done' },
      { id: 'alert', capability: 'x', after: ['work'], trigger: 'one-failed' },
    ]);
    expect(settleWaiting(p, states({ work: 'running' }))).toEqual([]);
    expect(settleWaiting(p, states({ work: 'completed' })).map((c) => `${c.stepId} ${c.to}`)).toEqual(['cleanup ready', 'alert skipped']);
    expect(settleWaiting(p, states({ work: 'failed' })).map((c) => `${c.stepId} ${c.to}`)).toEqual(['cleanup ready', 'alert ready']);
    expect(settleWaiting(p, states({ work: 'skipped' })).map((c) => `${c.stepId} ${c.to}`)).toEqual(['cleanup ready', 'alert skipped']);
  });

  it('a plan has an outcome once every step has finished: completed when its result steps completed, else failed naming why', () => {
    const p = parsePlan(diamond);
    expect(planOutcome(p, states({ fetch: 'completed', parse: 'completed', scan: 'completed', report: 'running' }))).toBeUndefined();
    expect(planOutcome(p, states({ fetch: 'completed', parse: 'completed', scan: 'completed', report: 'completed' }))).toEqual({ status: 'completed' });
    expect(planOutcome(p, states({ fetch: 'completed', parse: 'completed', scan: 'failed', report: 'skipped' }))).toEqual({ status: 'failed', reason: 'failed: scan; no result from report', failed: ['scan'] });
    // A failure off the result's path does not fail the plan.
    const side = plan([
      { id: 'main', capability: 'x' },
      { id: 'notify', capability: 'x', after: ['main'], trigger: 'all-done' },
      { id: 'optional', capability: 'x' },
    ]);
    const withResult = parsePlan({ steps: side.steps, result: { out: { step: 'main' } } });
    expect(planOutcome(withResult, states({ main: 'completed', notify: 'completed', optional: 'failed' }))).toEqual({ status: 'completed' });
  });

  it('a wide fan-out and a long chain settle in one pass each', () => {
    const fan = plan([{ id: 'root', capability: 'x' }, ...Array.from({ length: 50 }, (_, i) => ({ id: `leaf-${i}`, capability: 'x', after: ['root'] })), { id: 'join', capability: 'x', after: Array.from({ length: 50 }, (_, i) => `leaf-${i}`) }]);
    expect(settleWaiting(fan, states({ root: 'completed' }))).toHaveLength(50);
    const chain = plan(Array.from({ length: 100 }, (_, i) => ({ id: `s${i}`, capability: 'x', ...(i > 0 ? { after: [`s${i - 1}`] } : {}) })));
    expect(topologicalOrder(chain)).toEqual(Array.from({ length: 100 }, (_, i) => `s${i}`));
    // The first step failing skips all 99 after it, in order.
    const skipped = settleWaiting(chain, states({ s0: 'failed' }));
    expect(skipped.map((c) => c.stepId)).toEqual(Array.from({ length: 99 }, (_, i) => `s${i + 1}`));
    expect(skipped.every((c) => c.to === 'skipped')).toBe(true);
  });
});
