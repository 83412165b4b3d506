/**
 * The pure core of a study, with no broker: declarations, reports and clock
 * ticks decided (study/decide.ts) against simulated evaluators and a fake
 * clock (studyHarness.ts); the log they write folded back (resume = replay);
 * recorded studies re-run into other searchers.
 */
import { describe, expect, it } from 'vitest';
import type { Rejection, StudyCompleted, StudyCreated } from '../../src/events/types.ts';
import type { Params } from '../../src/optimizer/space.ts';
import { bestCurve, bestTrials, type BestTrial } from '../../src/optimizer/study/best.ts';
import { decideReport, type Emitted } from '../../src/optimizer/study/decide.ts';
import { distance, rerunStudy } from '../../src/optimizer/study/rerun.ts';
import type { StudyEvent, StudyRun, TrialRun } from '../../src/optimizer/study/run.ts';
import { applyStudyEvent } from '../../src/optimizer/study/studyLog.ts';
import { ofType, StudyHarness, type Evaluate } from './studyHarness.ts';
import { branin } from './studyLoop.ts';

const space = { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } };
const loss = [{ name: 'loss', direction: 'minimize' }];

function spec(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'branin', space, objectives: loss, budget: { trials: 10 }, parallelism: 2, searcher: 'random', ...over };
}

const onBranin: Evaluate = (p) => ({ values: [branin(p)] });

/** The single Rejection a decision wrote. */
function rejection(events: Emitted[]): Rejection {
  expect(events.map((e) => e.type)).toEqual(['Rejection']);
  return events[0]!.event as Rejection;
}

/** The random searcher's count of trials told. */
function told(run: StudyRun): number {
  return (run.searcherState as { told: number }).told;
}

function withoutAliveAt(trials: readonly TrialRun[]): Array<Omit<TrialRun, 'aliveAt'>> {
  return trials.map(({ aliveAt: _, ...rest }) => rest);
}

function fold(events: readonly StudyEvent[]): Map<string, StudyRun> {
  const runs = new Map<string, StudyRun>();
  for (const e of events) applyStudyEvent(runs, e);
  return runs;
}

/** Best so far never gets worse (minimize): null only before the first value. */
function expectMonotone(curve: ReadonlyArray<number | null>): void {
  for (let i = 1; i < curve.length; i++) {
    if (curve[i - 1] === null) continue;
    expect(curve[i]).not.toBeNull();
    expect(curve[i]!).toBeLessThanOrEqual(curve[i - 1]!);
  }
}

describe('declaring a study', () => {
  it('starts a valid study: StudyCreated echoed, then parallelism trials proposed and assigned least-loaded', () => {
    const h = new StudyHarness({ evaluators: ['e-c', 'e-a', 'e-b'], extraLoad: { 'e-a': 1 } });
    const declared = spec({ parallelism: 3 });
    const events = h.declare('s1', declared, { seed: 11 });
    expect(events.map((e) => e.type)).toEqual(['StudyCreated', 'TrialProposed', 'TrialProposed', 'TrialProposed', 'TrialAssigned', 'TrialAssigned', 'TrialAssigned']);

    const created = events[0]!.event as StudyCreated;
    expect(created).toMatchObject({ studyId: 's1', requesterId: 'cli-1', seed: 11, spec: JSON.stringify(declared) });
    expect(created.envelope).toMatchObject({ eventType: 'StudyCreated', causationId: 'input-1', correlationId: 's1', producerId: 'optimizer-1', eventTime: h.now });

    const proposed = ofType(events, 'TrialProposed');
    expect(proposed.map((p) => [p.number, p.trialId, p.searcher])).toEqual([
      [1, 's1#1', 'random'],
      [2, 's1#2', 'random'],
      [3, 's1#3', 'random'],
    ]);
    // e-a holds one attempt already: the two idle evaluators first (ties by agent id), then e-a.
    const assigned = ofType(events, 'TrialAssigned');
    expect(assigned.map((a) => [a.trialId, a.agentId, a.attempt, a.rule, a.leaseMs])).toEqual([
      ['s1#1', 'e-b', 1, 'least-loaded', 10_000],
      ['s1#2', 'e-c', 1, 'least-loaded', 10_000],
      ['s1#3', 'e-a', 1, 'least-loaded', 10_000],
    ]);
    expect(assigned.map((a) => a.params)).toEqual(proposed.map((p) => p.params));

    const run = h.run('s1');
    expect(run.trials.map((t) => [t.state, t.agentId, t.attempt])).toEqual([
      ['assigned', 'e-b', 1],
      ['assigned', 'e-c', 1],
      ['assigned', 'e-a', 1],
    ]);
    expect(run.finished).toBe(0);
    expect(run.completed).toBeNull();
  });

  it('spreads trials by load over every study the evaluators work for', () => {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b', 'e-c'] });
    h.declare('first', spec({ parallelism: 2 }));
    const second = ofType(h.declare('second', spec({ parallelism: 2 })), 'TrialAssigned');
    // e-a and e-b hold the first study's trials: e-c first, then e-a (load 1, the lower id).
    expect(second.map((a) => a.agentId)).toEqual(['e-c', 'e-a']);
  });

  it.each<[string, unknown, string | RegExp]>([
    ['a bad space', spec({ space: { x: { type: 'float', low: 5, high: 1 } } }), 'Invalid study: Invalid search space: x: low (5) must not exceed high (1)'],
    ['an unknown searcher', spec({ searcher: 'annealing' }), 'Invalid study: searcher: unknown searcher "annealing"; known: random, simba, tpe'],
    [
      'TPE with two objectives',
      spec({ searcher: 'tpe', objectives: [{ name: 'f1', direction: 'minimize' }, { name: 'f2', direction: 'maximize' }] }),
      /^Invalid study: .*TPE.*one objective/,
    ],
    ['apply on an unknown param', spec({ apply: { y: 'var.y' } }), 'Invalid study: apply: "y" is not a parameter of the space (x1, x2)'],
    ['an unknown field', { ...spec(), colour: 'red' }, 'Invalid study: study: unknown field(s) colour'],
    ['a spec that is not JSON', '{"space": ', /^Invalid study: spec is not JSON/],
  ])('rejects %s with one Rejection INVALID_STUDY', (_what, declared, message) => {
    const h = new StudyHarness();
    const r = rejection(h.declare('s-bad', declared));
    expect(r).toMatchObject({ subjectId: 's-bad', rejectedEventId: 'input-1', rejectedEventType: 'StudyCreated', agentId: null, reasonCode: 'INVALID_STUDY' });
    if (typeof message === 'string') expect(r.reason).toBe(message);
    else expect(r.reason).toMatch(message);
    expect(h.runs.has('s-bad')).toBe(false);
    // Nothing was started: the id is still free.
    expect(h.declare('s-bad', spec())[0]!.type).toBe('StudyCreated');
  });

  it('rejects a second declaration of the same id with DUPLICATE_STUDY and keeps the first', () => {
    const h = new StudyHarness();
    h.declare('s1', spec(), { requesterId: 'cli-1' });
    const before = h.run('s1');
    const r = rejection(h.declare('s1', spec({ parallelism: 5 }), { requesterId: 'cli-2' }));
    expect(r).toMatchObject({ subjectId: 's1', rejectedEventId: 'input-2', reasonCode: 'DUPLICATE_STUDY' });
    expect(r.reason).toContain('exists already (declared by cli-1)');
    expect(h.run('s1')).toBe(before);
    expect(before.trials).toHaveLength(2);
  });
});

describe('reports', () => {
  function started(): StudyHarness {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b'] });
    h.declare('s', spec({ parallelism: 2, budget: { trials: 3 } }));
    return h;
  }

  it('rejects reports that are not for the current attempt of a trial of a started study', () => {
    const h = started();
    const run = h.run('s');
    const one = h.attemptOf('s', 1);
    expect(one.agentId).toBe('e-a');
    const startedBy = (over: Partial<typeof one>) => h.report('TrialStarted', { ...one, instanceId: 'host', leaseMs: 10_000, ...over });

    expect(rejection(startedBy({ attempt: 2 }))).toMatchObject({ subjectId: 's', agentId: 'e-a', reasonCode: 'STALE_ATTEMPT', rejectedEventType: 'TrialStarted' });
    expect(rejection(startedBy({ agentId: 'e-b' })).reasonCode).toBe('NOT_ASSIGNED');
    expect(rejection(startedBy({ trialId: 's#9' })).reasonCode).toBe('UNKNOWN_TRIAL');
    expect(rejection(startedBy({ trialId: 'other#1' })).reasonCode).toBe('UNKNOWN_TRIAL');
    const unknown = rejection(startedBy({ studyId: 'nope', trialId: 'nope#1' }));
    expect(unknown).toMatchObject({ subjectId: 'nope', reasonCode: 'UNKNOWN_STUDY' });
    expect(h.runs.has('nope')).toBe(false);
    // A rejected report changes nothing.
    expect(h.run('s')).toBe(run);
  });

  it('rejects a wrong number of values and non-finite values with INVALID_VALUES', () => {
    const h = started();
    const run = h.run('s');
    const one = h.attemptOf('s', 1);
    const cases: Array<[Emitted[], string]> = [
      [h.report('TrialCompleted', { ...one, values: [1, 2], constraints: [] }), 'The completion has 2 value(s) but the study has 1.'],
      [h.report('TrialCompleted', { ...one, values: [Number.NaN], constraints: [] }), 'The completion must be finite numbers, not [null].'],
      [h.report('TrialCompleted', { ...one, values: [Number.POSITIVE_INFINITY], constraints: [] }), 'The completion must be finite numbers, not [null].'],
      [h.report('TrialCompleted', { ...one, values: [1], constraints: [0] }), 'Its constraints has 1 value(s) but the study has 0.'],
      [h.report('TrialReported', { ...one, step: 1, values: [], pruned: false }), 'The report at step 1 has 0 value(s) but the study has 1.'],
      [h.report('TrialReported', { ...one, step: 2, values: [Number.NEGATIVE_INFINITY], pruned: false }), 'The report at step 2 must be finite numbers, not [null].'],
      [h.report('TrialReported', { ...one, step: -1, values: [1], pruned: false }), 'The step must be a whole number >= 0, not -1.'],
    ];
    for (const [events, reason] of cases) expect(rejection(events)).toMatchObject({ reasonCode: 'INVALID_VALUES', agentId: 'e-a', reason });
    expect(h.run('s')).toBe(run);
    expect(run.trials[0]!.state).toBe('assigned');
  });

  it('counts a trial once: a second completion is TRIAL_FINISHED, and a completed study answers STUDY_COMPLETED', () => {
    const h = started();
    const one = h.attemptOf('s', 1);
    expect(h.report('TrialStarted', { ...one, instanceId: 'host', leaseMs: 10_000 }).map((e) => e.type)).toEqual(['TrialStarted']);
    const done = h.report('TrialCompleted', { ...one, values: [4.5], constraints: [] });
    expect(done.map((e) => e.type)).toEqual(['TrialCompleted', 'TrialProposed', 'TrialAssigned']);
    // e-a is free again, e-b still holds trial 2.
    expect(ofType(done, 'TrialAssigned')[0]).toMatchObject({ trialId: 's#3', agentId: 'e-a', attempt: 1 });
    const run = h.run('s');
    expect(run.finished).toBe(1);
    expect(told(run)).toBe(1);
    expect(run.trials[0]).toMatchObject({ state: 'complete', values: [4.5] });

    const again = rejection(h.report('TrialCompleted', { ...one, values: [0.1], constraints: [] }));
    expect(again).toMatchObject({ reasonCode: 'TRIAL_FINISHED', reason: 'Trial s#1 is complete already; it counts once.' });
    expect(rejection(h.report('TrialFailed', { ...one, error: 'late', final: false })).reasonCode).toBe('TRIAL_FINISHED');
    expect(h.run('s')).toBe(run);
    expect(run.finished).toBe(1);
    expect(told(run)).toBe(1);
    expect(run.trials[0]!.values).toEqual([4.5]);

    h.evaluate('s', onBranin);
    const completed = h.run('s');
    expect(completed.completed).toMatchObject({ reason: 'trials', trials: 3 });
    expect(told(completed)).toBe(3);
    const late = rejection(h.report('TrialHeartbeat', h.attemptOf('s', 3)));
    expect(late).toMatchObject({ reasonCode: 'STUDY_COMPLETED', reason: 'Study s has completed (trials).' });
    expect(rejection(h.report('TrialCompleted', { ...one, values: [0], constraints: [] })).reasonCode).toBe('STUDY_COMPLETED');
    h.now += 60_000;
    expect(h.tick()).toEqual([]);
  });
});

describe('retry policy', () => {
  it('retries a failed attempt on an evaluator that has not tried the trial, until maxAttempts', () => {
    // e-b is busy elsewhere, yet it gets the retry: e-a has tried the trial.
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b'], extraLoad: { 'e-b': 5 } });
    h.declare('s', spec({ parallelism: 1, budget: { trials: 3 }, retry: { maxAttempts: 2 } }));
    const first = h.attemptOf('s', 1);
    expect(first).toMatchObject({ agentId: 'e-a', attempt: 1 });
    h.report('TrialStarted', { ...first, instanceId: 'host', leaseMs: 10_000 });

    const failed = h.report('TrialFailed', { ...first, error: 'boom', final: false });
    expect(failed.map((e) => e.type)).toEqual(['TrialFailed', 'TrialRetried', 'TrialAssigned']);
    expect(ofType(failed, 'TrialFailed')[0]).toMatchObject({ trialId: 's#1', attempt: 1, agentId: 'e-a', error: 'boom', final: false });
    expect(ofType(failed, 'TrialRetried')[0]).toMatchObject({ trialId: 's#1', attempt: 2, previousAgentId: 'e-a', reasonCode: 'EVALUATION_FAILED', reason: 'attempt 1 on e-a failed: boom' });
    expect(ofType(failed, 'TrialAssigned')[0]).toMatchObject({ trialId: 's#1', number: 1, attempt: 2, agentId: 'e-b' });
    expect(h.run('s').trials[0]).toMatchObject({ state: 'assigned', attempt: 2, agentId: 'e-b', triedBy: ['e-a', 'e-b'], errors: ['boom'] });
    expect(h.run('s').finished).toBe(0);

    // The first attempt is over: its evaluator's late word does not count.
    expect(rejection(h.report('TrialCompleted', { ...first, values: [1], constraints: [] })).reasonCode).toBe('STALE_ATTEMPT');

    const second = h.attemptOf('s', 1);
    expect(second).toMatchObject({ agentId: 'e-b', attempt: 2 });
    const last = h.report('TrialFailed', { ...second, error: 'boom again', final: false });
    expect(last.map((e) => e.type)).toEqual(['TrialFailed', 'TrialProposed', 'TrialAssigned']);
    expect(ofType(last, 'TrialFailed')[0]).toMatchObject({ attempt: 2, agentId: 'e-b', final: true });
    const run = h.run('s');
    expect(run.trials[0]).toMatchObject({ state: 'failed', attempt: 2, errors: ['boom', 'boom again'] });
    expect(run.finished).toBe(1);
    expect(told(run)).toBe(1);
    expect(rejection(h.report('TrialStarted', { ...second, instanceId: 'host', leaseMs: 10_000 })).reasonCode).toBe('TRIAL_FINISHED');
  });

  it('gives a retry back to the only evaluator there is, as the next attempt', () => {
    const h = new StudyHarness({ evaluators: ['e-a'] });
    h.declare('s', spec({ parallelism: 1, retry: { maxAttempts: 3 } }));
    let attempts = 0;
    h.evaluate('s', (p, a) => (a.number === 1 && a.attempt < 3 ? { error: `flaky ${++attempts}` } : { values: [branin(p)] }), { until: (r) => r.finished >= 1 });
    const t = h.run('s').trials[0]!;
    expect(t).toMatchObject({ state: 'complete', attempt: 3, triedBy: ['e-a', 'e-a', 'e-a'], errors: ['flaky 1', 'flaky 2'] });
    expect(ofType(h.log, 'TrialAssigned').filter((a) => a.number === 1).map((a) => a.attempt)).toEqual([1, 2, 3]);
  });

  it('fails at once without retryOnError', () => {
    const h = new StudyHarness();
    h.declare('s', spec({ parallelism: 1, retry: { retryOnError: false } }));
    const one = h.attemptOf('s', 1);
    const events = h.report('TrialFailed', { ...one, error: 'bad params', final: false });
    expect(events.map((e) => e.type)).toEqual(['TrialFailed', 'TrialProposed', 'TrialAssigned']);
    expect(ofType(events, 'TrialFailed')[0]).toMatchObject({ attempt: 1, final: true });
    expect(h.run('s').trials[0]!.state).toBe('failed');
    expect(h.run('s').finished).toBe(1);
  });

  it('retries an attempt whose lease ran out (never started, or no sign of life) elsewhere; a heartbeat renews the lease', () => {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b', 'e-c'] });
    const t0 = h.now;
    h.declare('s', spec({ parallelism: 2, retry: { leaseMs: 1000 } }));
    expect([h.attemptOf('s', 1).agentId, h.attemptOf('s', 2).agentId]).toEqual(['e-a', 'e-b']);
    h.now = t0 + 100;
    h.report('TrialStarted', { ...h.attemptOf('s', 1), instanceId: 'host-a', leaseMs: 1000 });
    h.now = t0 + 600;
    expect(h.report('TrialHeartbeat', h.attemptOf('s', 1))).toEqual([]);
    expect(h.run('s').trials[0]!.aliveAt).toBe(t0 + 600);

    h.now = t0 + 999;
    expect(h.tick()).toEqual([]);

    // Trial 2 was assigned at t0 and never started.
    h.now = t0 + 1000;
    const notStarted = h.tick();
    expect(notStarted.map((e) => e.type)).toEqual(['TrialRetried', 'TrialAssigned']);
    expect(ofType(notStarted, 'TrialRetried')[0]).toMatchObject({
      trialId: 's#2', attempt: 2, previousAgentId: 'e-b', reasonCode: 'NOT_STARTED', reason: 'attempt 1 was not started by e-b for 1000 ms (lease 1000 ms)',
    });
    expect(notStarted[0]!.event.envelope.causationId).toBeNull();
    // Not e-b (it had the trial); e-c is idle, e-a runs trial 1.
    expect(ofType(notStarted, 'TrialAssigned')[0]).toMatchObject({ trialId: 's#2', attempt: 2, agentId: 'e-c' });

    // Trial 1 started at t0 + 100 and would have run out now, but for its heartbeat.
    h.now = t0 + 1100;
    expect(h.tick()).toEqual([]);
    h.now = t0 + 1599;
    expect(h.tick()).toEqual([]);
    h.now = t0 + 1600;
    const expired = h.tick();
    expect(expired.map((e) => e.type)).toEqual(['TrialRetried', 'TrialAssigned']);
    expect(ofType(expired, 'TrialRetried')[0]).toMatchObject({
      trialId: 's#1', attempt: 2, previousAgentId: 'e-a', reasonCode: 'LEASE_EXPIRED', reason: 'attempt 1 had no sign of life from e-a for 1000 ms (lease 1000 ms)',
    });
    expect(ofType(expired, 'TrialAssigned')[0]).toMatchObject({ trialId: 's#1', attempt: 2, agentId: 'e-b' });
    expect(h.run('s').trials.map((t) => [t.state, t.attempt, t.agentId])).toEqual([
      ['assigned', 2, 'e-b'],
      ['assigned', 2, 'e-c'],
    ]);
  });

  it('fails a trial for good when its last attempt runs out of lease', () => {
    const h = new StudyHarness({ evaluators: ['e-a'] });
    h.declare('s', spec({ parallelism: 1, retry: { leaseMs: 500, maxAttempts: 1 } }));
    h.now += 500;
    const events = h.tick();
    expect(events.map((e) => e.type)).toEqual(['TrialFailed', 'TrialProposed', 'TrialAssigned']);
    expect(ofType(events, 'TrialFailed')[0]).toMatchObject({ trialId: 's#1', attempt: 1, agentId: 'e-a', final: true });
    expect(ofType(events, 'TrialFailed')[0]!.error).toMatch(/^NOT_STARTED: attempt 1 was not started by e-a for 500 ms \(lease 500 ms\); no attempts left$/);
    expect(h.run('s').trials[0]!.state).toBe('failed');
    expect(h.run('s').finished).toBe(1);
  });
});

describe('budget', () => {
  it('completes after budget.trials finished trials with the best feasible trial and the variables it applies', () => {
    const h = new StudyHarness();
    h.declare('s', spec({ parallelism: 1, budget: { trials: 5 }, constraints: ['c'], apply: { x1: 'var.b', x2: 'var.a' } }));
    // value, constraint (≤ 0 is satisfied): trial 2 has the lowest value but breaks its constraint.
    const table = [[10, -1], [1, 2], [5, -1], [3, 0], [8, -1]] as const;
    h.evaluate('s', (_p, a) => ({ values: [table[a.number - 1]![0]], constraints: [table[a.number - 1]![1]] }));
    const run = h.run('s');
    expect(ofType(h.log, 'TrialProposed')).toHaveLength(5);
    const completions = ofType(h.log, 'StudyCompleted');
    expect(completions).toHaveLength(1);
    const completed = completions[0]!;
    expect(h.log.at(-1)!.type).toBe('StudyCompleted');
    expect(completed).toMatchObject({ studyId: 's', reason: 'trials', trials: 5, applied: ['var.a', 'var.b'] });
    const best = JSON.parse(completed.best) as BestTrial[];
    expect(best).toEqual([{ trialId: 's#4', number: 4, params: run.trials[3]!.params, values: [3], constraints: [0] }]);
    expect(bestTrials(run)).toEqual(best);
    expect(run.completed).toEqual((({ envelope: _, ...rest }: StudyCompleted) => rest)(completed));
    expect(bestCurve(run)).toEqual([10, 10, 5, 3, 3]);
    h.now += 60_000;
    expect(h.tick()).toEqual([]);
  });

  it('with every trial infeasible, the least violation wins', () => {
    const h = new StudyHarness();
    h.declare('s', spec({ parallelism: 1, budget: { trials: 3 }, constraints: ['c'], apply: true }));
    const table = [[1, 3], [9, 0.5], [2, 1]] as const;
    h.evaluate('s', (_p, a) => ({ values: [table[a.number - 1]![0]], constraints: [table[a.number - 1]![1]] }));
    const completed = ofType(h.log, 'StudyCompleted')[0]!;
    expect((JSON.parse(completed.best) as BestTrial[]).map((b) => b.number)).toEqual([2]);
    expect(completed.applied).toEqual(['x1', 'x2']);
  });

  it('completes on budget.timeMs at the first tick after it', () => {
    const h = new StudyHarness();
    const createdAt = h.now;
    h.declare('s', spec({ parallelism: 1, budget: { timeMs: 5000 } }));
    h.evaluate('s', onBranin, { until: (r) => r.finished >= 3 });
    const run = h.run('s');
    expect(run.trials).toHaveLength(4);
    h.now = createdAt + 4999;
    expect(h.tick()).toEqual([]);
    h.now = createdAt + 5000;
    const events = h.tick();
    expect(events.map((e) => e.type)).toEqual(['StudyCompleted']);
    const completed = events[0]!.event as StudyCompleted;
    expect(completed).toMatchObject({ reason: 'time', trials: 3, applied: [] });
    expect(JSON.parse(completed.best)).toEqual(bestTrials(h.run('s')));
    expect(rejection(h.report('TrialCompleted', { ...h.attemptOf('s', 4), values: [1], constraints: [] })).reasonCode).toBe('STUDY_COMPLETED');
  });

  it('completes a multi-objective study with the Pareto front as its best', () => {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b', 'e-c'] });
    const objectives = [{ name: 'cost', direction: 'minimize' }, { name: 'quality', direction: 'maximize' }];
    h.declare('s', spec({ objectives, parallelism: 3, budget: { trials: 30 } }), { seed: 3 });
    const score = (p: Params): [number, number] => {
      const x1 = p['x1'] as number;
      const x2 = p['x2'] as number;
      return [x1 + 5 + x2 / 3, Math.sqrt(x1 + 5) - x2 / 10];
    };
    h.evaluate('s', (p) => ({ values: score(p) }));
    const run = h.run('s');
    const completed = ofType(h.log, 'StudyCompleted')[0]!;
    expect(completed).toMatchObject({ reason: 'trials', trials: 30, applied: [] });
    const dominates = (a: number[], b: number[]) => a[0]! <= b[0]! && a[1]! >= b[1]! && (a[0]! < b[0]! || a[1]! > b[1]!);
    const front = run.trials.filter((t) => !run.trials.some((o) => dominates(o.values!, t.values!))).map((t) => t.number);
    expect(front.length).toBeGreaterThan(1);
    const best = JSON.parse(completed.best) as BestTrial[];
    expect(best.map((b) => b.number).sort((a, b) => a - b)).toEqual(front);
    for (const b of best) expect(b.values).toEqual(run.trials[b.number - 1]!.values);
  });
});

describe('pruning', () => {
  it('prunes a poor trial at a rung (asha) right after its report; the pruned trial counts and a new one is proposed', () => {
    const h = new StudyHarness();
    h.declare('s', spec({ parallelism: 1, budget: { trials: 4 }, pruner: { name: 'asha', config: { minResource: 1, reductionFactor: 2 } } }));
    // Rungs at steps 1, 2, 4, …
    const one = h.attemptOf('s', 1);
    h.report('TrialStarted', { ...one, instanceId: 'host', leaseMs: 10_000 });
    expect(h.report('TrialReported', { ...one, step: 1, values: [1], pruned: false }).map((e) => e.type)).toEqual(['TrialReported']);
    expect(h.report('TrialReported', { ...one, step: 2, values: [0.9], pruned: false }).map((e) => e.type)).toEqual(['TrialReported']);
    h.report('TrialCompleted', { ...one, values: [0.8], constraints: [] });

    const two = h.attemptOf('s', 2);
    h.report('TrialStarted', { ...two, instanceId: 'host', leaseMs: 10_000 });
    const poor = h.report('TrialReported', { ...two, step: 1, values: [5], pruned: false });
    expect(poor.map((e) => e.type)).toEqual(['TrialReported', 'TrialPruned', 'TrialProposed', 'TrialAssigned']);
    // The report is written back with the pruner's verdict on it (what its evaluator waits for).
    expect(ofType(poor, 'TrialReported')[0]).toMatchObject({ trialId: 's#2', attempt: 1, step: 1, values: [5], pruned: true });
    const pruned = ofType(poor, 'TrialPruned')[0]!;
    expect(pruned).toMatchObject({ trialId: 's#2', attempt: 1, step: 1, rule: 'asha' });
    expect(pruned.reason).toContain('is not in the best 1 of the 2 trial(s) that reached rung 0');
    expect(ofType(poor, 'TrialProposed')[0]!.number).toBe(3);
    const run = h.run('s');
    expect(run.trials[1]).toMatchObject({ state: 'pruned', lastStep: 1, lastValues: [5] });
    expect(run.finished).toBe(2);
    expect(told(run)).toBe(2);
    expect(rejection(h.report('TrialReported', { ...two, step: 2, values: [4], pruned: false })).reasonCode).toBe('TRIAL_FINISHED');

    // A good value at the rung goes on.
    const three = h.attemptOf('s', 3);
    expect(h.report('TrialReported', { ...three, step: 1, values: [0.5], pruned: false }).map((e) => e.type)).toEqual(['TrialReported']);
    expect(h.run('s').trials[2]!.state).toBe('assigned');
  });
});

/**
 * A busy study: TPE after 4 startup trials, ASHA, three evaluators, a lease
 * of 1 s; every 7th trial fails on its first attempt, every 11th (from 5)
 * is taken and never answered on its first attempt, the others report at
 * steps 1, 2 and 4 before completing. Runs until `finished` trials are.
 */
function busyStudy(seed: number, finished: number): StudyHarness {
  const h = new StudyHarness({ evaluators: ['e-a', 'e-b', 'e-c'] });
  h.declare('busy', spec({
    searcher: { name: 'tpe', config: { nStartupTrials: 4 } },
    pruner: { name: 'asha', config: { minResource: 1, reductionFactor: 2 } },
    parallelism: 3,
    budget: { trials: 60 },
    retry: { leaseMs: 1000, maxAttempts: 3 },
  }), { seed });
  const evaluate: Evaluate = (p, a) => {
    if (a.attempt === 1 && a.number % 7 === 0) return { error: 'evaluator crashed' };
    if (a.attempt === 1 && a.number % 11 === 5) return { silent: true };
    const v = branin(p);
    return { values: [v], reports: [1, 2, 4].map((step) => ({ step, values: [v * (1 + 1 / step)] })) };
  };
  // Rounds of a few trials, each followed by a tick 400 ms on: an attempt never answered runs out of lease on the third.
  while (h.run('busy').finished < finished) {
    const target = Math.min(finished, h.run('busy').finished + 4);
    h.evaluate('busy', evaluate, { until: (r) => r.finished >= target });
    h.now += 400;
    h.tick();
  }
  return h;
}

describe('resume = replay', () => {
  it('rebuilds the live run from its log and goes on with the same next proposals', () => {
    const h = busyStudy(21, 25);
    const live = h.run('busy');
    expect(live.completed).toBeNull();
    // The run went through every kind of decision.
    for (const type of ['TrialPruned', 'TrialFailed', 'TrialRetried', 'TrialReported'] as const) expect(ofType(h.log, type).length).toBeGreaterThan(0);
    expect(ofType(h.log, 'TrialRetried').some((r) => r.reasonCode === 'NOT_STARTED')).toBe(true);
    // A heartbeat is not written; it renews the lease of the live run only.
    const running = live.trials.find((t) => t.state === 'assigned' || t.state === 'running')!;
    h.now += 5;
    expect(h.report('TrialHeartbeat', h.attemptOf('busy', running.number))).toEqual([]);
    const now = h.run('busy');

    const rebuilt = fold(h.studyLog('busy')).get('busy')!;
    expect(rebuilt.diverged).toEqual([]);
    expect(now.diverged).toEqual([]);
    expect(rebuilt.searcherState).toEqual(now.searcherState);
    expect(rebuilt.prunerState).toEqual(now.prunerState);
    expect(withoutAliveAt(rebuilt.trials)).toEqual(withoutAliveAt(now.trials));
    expect(rebuilt.finished).toBe(now.finished);
    expect(rebuilt.completed).toEqual(now.completed);
    expect([rebuilt.createdAt, rebuilt.seed, rebuilt.requesterId]).toEqual([now.createdAt, now.seed, now.requesterId]);

    // One more report, decided on both: the same events, the same next proposal.
    const next = now.trials.find((t) => t.state === 'assigned' || t.state === 'running')!;
    const input = h.input('TrialCompleted', { ...h.attemptOf('busy', next.number), values: [1.5], constraints: [] }, next.agentId!);
    const ctx = h.ctx();
    const onLive = decideReport(now, 'TrialCompleted', input, ctx);
    const onRebuilt = decideReport(rebuilt, 'TrialCompleted', input, ctx);
    expect(ofType(onLive.events, 'TrialProposed')).toHaveLength(1);
    expect(onRebuilt.events).toEqual(onLive.events);
    expect(onRebuilt.run!.searcherState).toEqual(onLive.run!.searcherState);
  });

  it('rebuilds a completed study the same way', () => {
    const h = new StudyHarness();
    h.declare('s', spec({ searcher: 'tpe', budget: { trials: 12 }, apply: true }));
    h.evaluate('s', onBranin);
    const live = h.run('s');
    const rebuilt = fold(h.studyLog('s')).get('s')!;
    expect(rebuilt.completed).not.toBeNull();
    expect(rebuilt.completed).toEqual(live.completed);
    expect(withoutAliveAt(rebuilt.trials)).toEqual(withoutAliveAt(live.trials));
    expect(rebuilt.searcherState).toEqual(live.searcherState);
  });

  it('keeps a logged proposal the searcher would not make (the log wins) and lists it in diverged', () => {
    const h = new StudyHarness();
    h.declare('s', spec({ budget: { trials: 6 } }));
    h.evaluate('s', onBranin);
    const live = h.run('s');
    const altered: Params = { x1: 1.25, x2: 2.5 };
    const log = h.studyLog('s').map((e): StudyEvent => (e.type === 'TrialProposed' && e.event.number === 2 ? { type: 'TrialProposed', event: { ...e.event, params: JSON.stringify(altered) } } : e));
    const rebuilt = fold(log).get('s')!;
    expect(rebuilt.diverged).toEqual([{ number: 2, logged: altered, asked: live.trials[1]!.params }]);
    expect(rebuilt.trials[1]!.params).toEqual(altered);
    const others = (run: StudyRun) => withoutAliveAt(run.trials).filter((t) => t.number !== 2);
    expect(others(rebuilt)).toEqual(others(live));
    expect(rebuilt.finished).toBe(6);
    expect(rebuilt.completed).toEqual(live.completed);
  });
});

describe('determinism', () => {
  /** Events as compared: a clock decision's id is fresh (random), an answer's is derived from its input. */
  const comparable = (events: readonly Emitted[]) =>
    events.map((e) => (e.event.envelope.causationId === null ? { ...e, event: { ...e.event, envelope: { ...e.event.envelope, eventId: '(clock)' } } } : e));

  it('the same seed and the same inputs give the same events', () => {
    const a = busyStudy(5, 20).log;
    const b = busyStudy(5, 20).log;
    expect(a.length).toBeGreaterThan(100);
    expect(comparable(a)).toEqual(comparable(b));
    // Answers to inputs carry the same ids; clock decisions get fresh ones.
    const answered = a.filter((e) => e.event.envelope.causationId !== null);
    expect(answered.map((e) => e.event.envelope.eventId)).toEqual(b.filter((e) => e.event.envelope.causationId !== null).map((e) => e.event.envelope.eventId));
    const clock = a.findIndex((e) => e.event.envelope.causationId === null);
    expect(clock).toBeGreaterThanOrEqual(0);
    expect(a[clock]!.event.envelope.eventId).not.toBe(b[clock]!.event.envelope.eventId);

    const other = ofType(busyStudy(6, 20).log, 'TrialProposed').map((p) => p.params);
    expect(other).not.toEqual(ofType(a, 'TrialProposed').map((p) => p.params));
  });

  it('a redelivered input gets the same answer, ids included', () => {
    const h = new StudyHarness();
    h.declare('s', spec());
    const run = h.run('s');
    const input = h.input('TrialCompleted', { ...h.attemptOf('s', 1), values: [2], constraints: [] }, 'e-a');
    const first = decideReport(run, 'TrialCompleted', input, h.ctx());
    const again = decideReport(run, 'TrialCompleted', input, h.ctx());
    expect(again.events).toEqual(first.events);
    expect(first.events[0]!.event.envelope).toMatchObject({ causationId: input.envelope.eventId, correlationId: 's' });
  });
});

describe('rerunStudy', () => {
  let recorded: StudyRun | undefined;
  function tpeStudy(): StudyRun {
    if (recorded) return recorded;
    const h = new StudyHarness();
    h.declare('tpe-study', spec({ searcher: 'tpe', budget: { trials: 30 }, parallelism: 2 }), { seed: 5 });
    h.evaluate('tpe-study', onBranin);
    const run = h.run('tpe-study');
    expect(run.completed?.reason).toBe('trials');
    return (recorded = run);
  }

  it('replays the recorded evaluations into the same searcher and seed: every proposal hits', () => {
    const run = tpeStudy();
    const report = rerunStudy(run, { searcher: 'tpe' });
    expect(report).toMatchObject({ studyId: 'tpe-study', trials: 30, evaluations: 0 });
    expect(report.rerun).toMatchObject({ searcher: 'tpe', seed: 5, hits: 30, misses: [], stoodIn: 0 });
    expect(report.recorded.searcher).toBe('tpe');
    expect(report.recorded.curve).toEqual(bestCurve(run));
    expect(report.rerun.curve).toEqual(report.recorded.curve);
    expect(report.rerun.best).toBe(report.recorded.best);
    expect(report.recorded.best).toBe(bestTrials(run)[0]!.values[0]);
  });

  it('lists the proposals never evaluated with their nearest recorded evaluation; nearest stands in', () => {
    const run = tpeStudy();
    const recorded = run.trials.filter((t) => t.state === 'complete');
    for (const options of [{ searcher: 'tpe', seed: 99 }, { searcher: 'random' }]) {
      const report = rerunStudy(run, options);
      expect(report.evaluations).toBe(0);
      expect(report.rerun.hits + report.rerun.misses.length).toBe(30);
      expect(report.rerun.misses.length).toBeGreaterThan(0);
      expect(report.rerun.curve).toHaveLength(30);
      expect(report.recorded.curve).toHaveLength(30);
      expectMonotone(report.rerun.curve);
      expectMonotone(report.recorded.curve);
      for (const miss of report.rerun.misses) {
        const distances = recorded.map((t) => distance(run.study.spec.space, miss.params, t.params));
        const nearest = recorded[distances.indexOf(Math.min(...distances))]!;
        expect(miss.nearest).toEqual({ trialId: nearest.trialId, distance: Math.min(...distances), values: nearest.values });
        expect(miss.nearest!.distance).toBeGreaterThan(0);
      }

      const standIn = rerunStudy(run, { ...options, nearest: true });
      expect(standIn.rerun.misses.length).toBeGreaterThan(0);
      expect(standIn.rerun.stoodIn).toBe(standIn.rerun.misses.length);
      expect(standIn.rerun.hits + standIn.rerun.stoodIn).toBe(30);
      expect(standIn.rerun.curve).toHaveLength(30);
      expectMonotone(standIn.rerun.curve);
      expect(standIn.rerun.best).not.toBeNull();
      expect(standIn.evaluations).toBe(0);
    }
    // Pure: the same inputs give the same report.
    expect(rerunStudy(run, { searcher: 'tpe', seed: 99, nearest: true })).toEqual(rerunStudy(run, { searcher: 'tpe', seed: 99, nearest: true }));
  });

  it('re-runs a recorded study of 1,000 trials', () => {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b', 'e-c', 'e-d'] });
    h.declare('big', spec({ budget: { trials: 1000 }, parallelism: 4 }), { seed: 17 });
    const started = performance.now();
    h.evaluate('big', onBranin, { stepMs: 1 });
    const studyMs = performance.now() - started;
    const run = h.run('big');
    expect(run.completed).toMatchObject({ reason: 'trials', trials: 1000 });

    const t0 = performance.now();
    const report = rerunStudy(run, { searcher: 'tpe' });
    const ms = performance.now() - t0;
    console.log(`rerun of a 1000-trial study (random) with tpe: ${ms.toFixed(0)} ms; hits ${report.rerun.hits}, misses ${report.rerun.misses.length}; the study itself ran in memory in ${studyMs.toFixed(0)} ms`);
    expect(report).toMatchObject({ trials: 1000, evaluations: 0 });
    expect(report.rerun.curve).toHaveLength(1000);
    expect(report.recorded.curve).toHaveLength(1000);
    expectMonotone(report.recorded.curve);
    expectMonotone(report.rerun.curve);
  });
});

describe('batch schedule', () => {
  /** A Branin study of 24 trials in batches of 4, each batch finished in the order `order` gives. */
  function runBatches(order: (batch: number[]) => number[]): Array<{ number: number; params: string }> {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b', 'e-c', 'e-d'] });
    const studyId = 'batch';
    h.declare(studyId, {
      space: { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } }, objectives: [{ name: 'v', direction: 'minimize' }],
      budget: { trials: 24 }, parallelism: 4, schedule: 'batch', searcher: { name: 'tpe', config: { nStartupTrials: 4 } },
    }, { seed: 11 });
    while (!h.run(studyId).completed) {
      const running = h.run(studyId).trials.filter((t) => t.state === 'assigned').map((t) => t.number);
      expect(running.length).toBeGreaterThan(0);
      for (const n of order(running)) {
        const a = h.attemptOf(studyId, n);
        const t = h.run(studyId).trials[n - 1]!;
        h.now += 5;
        h.report('TrialStarted', { ...a, instanceId: 'i', leaseMs: 10_000 });
        h.report('TrialCompleted', { ...a, values: [branin(t.params)], constraints: [] });
      }
    }
    return ofType(h.log, 'TrialProposed').map((p) => ({ number: p.number, params: p.params }));
  }

  it('proposes the next batch only when the whole batch has finished, and the same proposals whichever evaluator finishes first', () => {
    const inOrder = runBatches((b) => b);
    const reversed = runBatches((b) => [...b].reverse());
    const shuffled = runBatches((b) => [b[2]!, b[0]!, b[3]!, b[1]!].filter((x) => x !== undefined));
    expect(inOrder).toHaveLength(24);
    expect(reversed).toEqual(inOrder);
    expect(shuffled).toEqual(inOrder);
  });
});

describe('rerun in the study\'s rhythm', () => {
  it('an asynchronous study whose evaluations finished out of order re-runs with its own searcher and seed to exactly its recorded proposals', () => {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b', 'e-c'] });
    const studyId = 'rhythm';
    h.declare(studyId, {
      space: { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } }, objectives: [{ name: 'v', direction: 'minimize' }],
      budget: { trials: 30 }, parallelism: 3, searcher: { name: 'tpe', config: { nStartupTrials: 5 } },
    }, { seed: 5 });
    let turn = 0;
    while (!h.run(studyId).completed) {
      const running = h.run(studyId).trials.filter((t) => t.state === 'assigned');
      // The newest running trial finishes first every other time: completions come out of proposal order.
      const t = turn++ % 2 === 0 ? running.at(-1)! : running[0]!;
      const a = h.attemptOf(studyId, t.number);
      h.now += 5;
      h.report('TrialStarted', { ...a, instanceId: 'i', leaseMs: 10_000 });
      h.report('TrialCompleted', { ...a, values: [branin(t.params)], constraints: [] });
    }
    const run = h.run(studyId);
    const finishOrder = [...run.trials].sort((x, y) => x.finishedSeq! - y.finishedSeq!).map((x) => x.number);
    expect(finishOrder).not.toEqual([...finishOrder].sort((x, y) => x - y));
    const report = rerunStudy(run, { searcher: 'tpe' });
    expect(report.rerun.misses).toHaveLength(0);
    expect(report.rerun.hits).toBe(30);
    expect(report.rerun.curve).toEqual(report.recorded.curve);
  });
});

describe('reading a study without asking its searcher again', () => {
  it.each(['random', 'tpe', 'simba'])('%s: folding the log with skip gives the state asking again gives', (searcher) => {
    const h = new StudyHarness({ evaluators: ['e-a', 'e-b'] });
    h.declare('skip', {
      space: { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } }, objectives: [{ name: 'v', direction: 'minimize' }],
      budget: { trials: 25 }, parallelism: 2, searcher,
    }, { seed: 3 });
    h.evaluate('skip', (params) => ({ values: [branin(params)] }));
    const fold = (verify: boolean) => {
      const runs = new Map<string, StudyRun>();
      for (const e of h.studyLog('skip')) applyStudyEvent(runs, e, undefined, verify);
      return runs.get('skip')!;
    };
    const checked = fold(true);
    const skipped = fold(false);
    expect(checked.diverged).toEqual([]);
    expect(skipped.searcherState).toEqual(checked.searcherState);
    expect(skipped.searcherState).toEqual(h.run('skip').searcherState);
  });
});
