import { describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { ashaPruner, createPruner, isPrune, medianPruner, parsePrunerConfig, rungStep, type BoundPruner, type Direction, type PruneDecision } from '../../src/optimizer/pruners/index.ts';

type Event = { start: string } | { report: string; step: number; value: number } | { complete: string };

const start = (id: string): Event => ({ start: id });
const report = (id: string, step: number, value: number): Event => ({ report: id, step, value });
const complete = (id: string): Event => ({ complete: id });
/** A trial that reports `values` at steps 0, 1, 2, … and completes. */
const finished = (id: string, values: number[]): Event[] => [start(id), ...values.map((v, step) => report(id, step, v)), complete(id)];

interface Judged {
  trialId: string;
  step: number;
  decision: PruneDecision;
}

function fold(pruner: BoundPruner, events: readonly Event[], direction: Direction = 'minimize', from: unknown = pruner.init()): { state: unknown; judged: Judged[] } {
  let state = from;
  const judged: Judged[] = [];
  for (const e of events) {
    if ('start' in e) state = pruner.start(state, e.start);
    else if ('complete' in e) state = pruner.complete(state, e.complete);
    else {
      const r = pruner.report(state, { trialId: e.report, step: e.step, value: e.value }, direction);
      state = r.state;
      judged.push({ trialId: e.report, step: e.step, decision: r.decision });
    }
  }
  return { state, judged };
}

const prunedOf = (judged: Judged[]) => judged.filter((j) => isPrune(j.decision)).map((j) => `${j.trialId}@${j.step}`);
const last = (judged: Judged[]) => judged.at(-1)!.decision;

describe('median pruner', () => {
  // Completed trials (minimize): medians 11 at step 0, 9 at step 1, 7 at step 2.
  const history = [...finished('a', [10, 8, 6]), ...finished('b', [12, 10, 8]), ...finished('c', [11, 9, 7])];
  const median = (config: Record<string, unknown> = {}) => createPruner({ name: 'median', config: { nStartupTrials: 3, ...config } }, ['minimize']);

  it('prunes a trial clearly worse than the median at its step, and not one that is better', () => {
    const { judged } = fold(median(), [...history, start('bad'), report('bad', 1, 20), start('good'), report('good', 1, 5)]);
    expect(judged.at(-2)!.decision).toEqual({ prune: true, rule: 'median', reason: expect.stringContaining('median 9') });
    expect(last(judged)).toBe('continue');
  });

  it("judges the trial's best value so far, not its last", () => {
    const { judged } = fold(median(), [...history, start('d'), report('d', 0, 5), report('d', 1, 100)]);
    expect(prunedOf(judged)).toEqual([]);
  });

  it('prunes nothing until nStartupTrials trials have completed', () => {
    const twoDone = [...finished('a', [10, 8, 6]), ...finished('b', [12, 10, 8])];
    const { judged, state } = fold(median(), [...twoDone, start('d'), report('d', 0, 100), report('d', 1, 100)]);
    expect(prunedOf(judged)).toEqual([]);
    const after = fold(median(), [...finished('c', [11, 9, 7]), report('d', 2, 100)], 'minimize', state);
    expect(prunedOf(after.judged)).toEqual(['d@2']);
  });

  it('prunes nothing before the first completed trial, even with nStartupTrials 0', () => {
    const running = [start('a'), report('a', 0, 1), start('b'), report('b', 0, 100)];
    expect(prunedOf(fold(median({ nStartupTrials: 0 }), running).judged)).toEqual([]);
  });

  it('prunes nothing during the warm-up steps', () => {
    const { judged } = fold(median({ nWarmupSteps: 2 }), [...history, start('d'), report('d', 0, 100), report('d', 1, 100), report('d', 2, 100)]);
    expect(judged.slice(-3).map((j) => j.decision === 'continue')).toEqual([true, true, false]);
  });

  it('judges once per interval window, at the first step reported in it', () => {
    const config = { intervalSteps: 2 };
    const steps = [...history, start('d'), report('d', 0, 50), report('d', 1, 100)];
    // Pruned at step 0, the first of window [0, 2).
    expect(prunedOf(fold(median(config), steps).judged)).toEqual(['d@0']);
    // A trial first reporting at step 2 is judged there (window [2, 4)); its step 3 is not, though it would be pruned at it.
    const late = [...finished('a', [10, 8, 6, 5]), ...finished('b', [12, 10, 8, 7]), ...finished('c', [11, 9, 7, 6]), start('e'), report('e', 2, 7), report('e', 3, 100)];
    expect(fold(median(config), late).judged.slice(-2).map((j) => j.decision)).toEqual(['continue', 'continue']);
  });

  it('needs nMinTrials completed values at the step', () => {
    const { judged } = fold(median({ nMinTrials: 4 }), [...history, start('d'), report('d', 0, 100)]);
    expect(last(judged)).toBe('continue');
  });

  it('maximize: prunes below the median, keeps above it', () => {
    const up = [...finished('a', [0.5, 0.6]), ...finished('b', [0.7, 0.8]), ...finished('c', [0.6, 0.7])];
    const pruner = median();
    const { judged } = fold(pruner, [...up, start('bad'), report('bad', 0, 0.3), start('good'), report('good', 0, 0.9), start('same'), report('same', 0, 0.6)], 'maximize');
    expect(judged.slice(-3).map((j) => isPrune(j.decision))).toEqual([true, false, false]);
    // The same values under minimize: the other way round (the tie at the median is kept either way).
    const { judged: down } = fold(pruner, [...up, start('bad'), report('bad', 0, 0.3), start('good'), report('good', 0, 0.9), start('same'), report('same', 0, 0.6)], 'minimize');
    expect(down.slice(-3).map((j) => isPrune(j.decision))).toEqual([false, true, false]);
  });

  it('compares with completed trials only: running and pruned ones do not move the median', () => {
    const events = [...history, start('r'), report('r', 0, 1000), start('p'), report('p', 0, 1000), start('d'), report('d', 0, 10.5)];
    // Counting r and p, the median at step 0 would be 12 and e (11.2) would pass; it is 11.
    const { judged } = fold(median(), [...events, start('e'), report('e', 0, 11.2)]);
    expect(prunedOf(judged)).toEqual(['r@0', 'p@0', 'e@0']);
  });

  it('prunes a trial whose values are all NaN', () => {
    expect(last(fold(median(), [...history, start('d'), report('d', 0, Number.NaN)]).judged)).toEqual({ prune: true, rule: 'median', reason: expect.stringContaining('NaN') });
  });

  it('judges a retried trial afresh: a restart forgets what the dead attempt reported', () => {
    const attempt = [...history, start('d'), report('d', 0, 1)];
    expect(last(fold(median(), [...attempt, report('d', 1, 100)]).judged)).toBe('continue');
    expect(isPrune(last(fold(median(), [...attempt, start('d'), report('d', 1, 100)]).judged))).toBe(true);
  });

  it('ignores reports of trials already pruned or completed', () => {
    const { judged } = fold(median(), [...history, start('d'), report('d', 0, 100), report('d', 1, 100), report('a', 3, 1000)]);
    expect(judged.slice(-3).map((j) => j.decision === 'continue')).toEqual([false, true, true]);
  });

  it('never changes the state it is given', () => {
    const pruner = median();
    const { state } = fold(pruner, history);
    const snapshot = JSON.stringify(state, (_k, v) => (v instanceof Map ? [...v] : v instanceof Set ? [...v] : v));
    pruner.report(state, { trialId: 'x', step: 0, value: 100 }, 'minimize');
    pruner.complete(state, 'y');
    expect(JSON.stringify(state, (_k, v) => (v instanceof Map ? [...v] : v instanceof Set ? [...v] : v))).toBe(snapshot);
  });
});

describe('ASHA (successive halving) pruner', () => {
  const asha = (config: Record<string, unknown> = {}, direction: Direction = 'minimize') =>
    createPruner({ name: 'asha', config: { minResource: 1, reductionFactor: 3, ...config } }, [direction]);

  it('puts rungs at minResource · η^(s + k)', () => {
    const config = { reductionFactor: 3, minEarlyStoppingRate: 0 };
    expect([0, 1, 2].map((k) => rungStep(1, config, k))).toEqual([1, 3, 9]);
    expect(rungStep(2, { reductionFactor: 3, minEarlyStoppingRate: 1 }, 0)).toBe(6);
  });

  // Nine trials t1..t9 whose value at step 1 is their number (minimize).
  const atRung0 = (order: number[]) => order.flatMap((v) => [start(`t${v}`), report(`t${v}`, 0, v + 10), report(`t${v}`, 1, v)]);

  it('η = 3: the top third at each of the rungs 1, 3, 9 is promoted, the rest pruned', () => {
    const events = [
      ...atRung0([3, 2, 1, 4, 5, 6, 7, 8, 9]),
      // The three promoted reach step 3 (rung 1): only the best of them goes on.
      report('t1', 2, 0.6), report('t1', 3, 0.5),
      report('t3', 3, 0.7),
      report('t2', 3, 0.9),
      // t1 alone at step 9 (rung 2) is promoted and completes.
      report('t1', 9, 0.1),
      complete('t1'),
    ];
    const { judged } = fold(asha(), events);
    expect(prunedOf(judged)).toEqual(['t4@1', 't5@1', 't6@1', 't7@1', 't8@1', 't9@1', 't3@3', 't2@3']);
    const prunes = judged.filter((j) => isPrune(j.decision)).map((j) => j.decision);
    expect(prunes.every((d) => isPrune(d) && d.rule === 'asha')).toBe(true);
    expect(prunes[0]).toMatchObject({ reason: expect.stringContaining('not in the best 1 of the 4 trial(s) that reached rung 0 (step 1') });
  });

  it('a step below the first rung is not judged; one report can pass several rungs', () => {
    const { judged, state } = fold(asha(), [start('a'), report('a', 0, 5), report('a', 2, 5), report('a', 9, 5)]);
    expect(judged.map((j) => j.decision)).toEqual(['continue', 'continue', 'continue']);
    expect((state as { rungs: number[][] }).rungs).toEqual([[5], [5], [5]]);
  });

  it('a decision depends on the set of values already at the rung, not on the order they came in', () => {
    // The trial arriving ninth with value 3 is judged against t1..t8 whatever their order: best 3 of 9, promoted.
    const earlier = [1, 2, 4, 5, 6, 7, 8, 9];
    const orders = [earlier, [...earlier].reverse(), [5, 9, 1, 7, 2, 8, 4, 6], [9, 8, 7, 6, 5, 4, 2, 1]];
    for (const order of orders) {
      expect(last(fold(asha(), atRung0([...order, 3])).judged)).toBe('continue');
      // …and with 4.5 in place of 3 it is not in the best three: pruned, again whatever the order.
      const judged = fold(asha(), [...atRung0(order), start('x'), report('x', 1, 4.5)]).judged;
      expect(isPrune(last(judged))).toBe(true);
    }
  });

  it('asynchronous by definition: a trial is judged against those that reached the rung before it', () => {
    // Arriving best-first, 2 is judged against {1, 2} (n < η: only the best goes on) and pruned;
    // arriving after six others, it is in the best ⌊7/3⌋ = 2 and promoted.
    expect(prunedOf(fold(asha(), atRung0([1, 2, 3, 4, 5, 6, 7, 8, 9])).judged)).toEqual(['t2@1', 't3@1', 't4@1', 't5@1', 't6@1', 't7@1', 't8@1', 't9@1']);
    expect(prunedOf(fold(asha(), atRung0([1, 4, 5, 6, 7, 8, 2, 9, 3])).judged)).toEqual(['t4@1', 't5@1', 't6@1', 't7@1', 't8@1', 't9@1']);
  });

  it('replays deterministically: the same events give the same decisions and states', () => {
    const events = [...atRung0([5, 9, 1, 7, 2, 8, 4, 6, 3]), report('t1', 3, 0.5), report('t2', 3, 0.4), report('t5', 3, 0.3), complete('t1')];
    const pruner = asha();
    const first = fold(pruner, events);
    const second = fold(pruner, events);
    expect(second.judged).toEqual(first.judged);
    expect(second.state).toEqual(first.state);
    // Folding on from a mid-study state twice (as a resumed optimizer would) agrees too.
    const mid = fold(pruner, events.slice(0, 10)).state;
    expect(fold(pruner, events.slice(10), 'minimize', mid).judged).toEqual(fold(pruner, events.slice(10), 'minimize', mid).judged);
    expect(fold(pruner, events.slice(10), 'minimize', mid).judged).toEqual(first.judged.slice(fold(pruner, events.slice(0, 10)).judged.length));
  });

  it('maximize: the highest values are promoted', () => {
    const events = [3, 2, 1].flatMap((v) => [start(`t${v}`), report(`t${v}`, 1, -v)]);
    // -3, then -2 (better), then -1 (better): each the best so far, all promoted; then -4: pruned.
    const { judged } = fold(asha({}, 'maximize'), [...events, start('t4'), report('t4', 1, -4)], 'maximize');
    expect(prunedOf(judged)).toEqual(['t4@1']);
  });

  it('ties go to the trial being judged', () => {
    const { judged } = fold(asha(), [start('a'), report('a', 1, 1), start('b'), report('b', 1, 1)]);
    expect(prunedOf(judged)).toEqual([]);
  });

  it('bootstrapCount: the first trials at a rung are pruned until that many have reached it', () => {
    const { judged } = fold(asha({ bootstrapCount: 2 }), [1, 2, 3].flatMap((v) => [start(`t${v}`), report(`t${v}`, 1, 10 - v)]));
    expect(prunedOf(judged)).toEqual(['t1@1', 't2@1']);
  });

  it("minResource 'auto': nothing is pruned until a trial completed; then it is ⌊its last step / 100⌋", () => {
    const pruner = createPruner({ name: 'asha', config: { reductionFactor: 3 } }, ['minimize']);
    const before = fold(pruner, [start('a'), report('a', 1, 1), start('b'), report('b', 1, 100)]);
    expect(prunedOf(before.judged)).toEqual([]);
    const events = [report('a', 300, 1), complete('a'), start('c'), report('c', 2, 1), report('c', 3, 1), start('d'), report('d', 3, 5)];
    const after = fold(pruner, events, 'minimize', before.state);
    expect((after.state as { minResource: number }).minResource).toBe(3);
    expect(prunedOf(after.judged)).toEqual(['d@3']);
  });

  it('prunes a trial that reaches a rung with NaN', () => {
    expect(isPrune(last(fold(asha(), [start('a'), report('a', 1, Number.NaN)]).judged))).toBe(true);
  });

  it('a retried trial competes once: the restart takes back the dead attempt’s rung values', () => {
    const events = [start('a'), report('a', 1, 5), start('b'), report('b', 1, 1)];
    const { state } = fold(asha(), events);
    const retried = fold(asha(), [start('b'), report('b', 1, 1)], 'minimize', state);
    expect((retried.state as { rungs: number[][] }).rungs[0]).toEqual([1, 5]);
    expect(last(retried.judged)).toBe('continue');
  });

  it('never changes the state it is given', () => {
    const pruner = asha();
    const { state } = fold(pruner, atRung0([3, 2, 1]));
    const copy = structuredClone(state);
    pruner.report(state, { trialId: 'x', step: 9, value: 0 }, 'minimize');
    pruner.start(state, 't1');
    pruner.complete(state, 't2');
    expect(state).toEqual(copy);
  });
});

describe('pruner registry', () => {
  const expectInvalid = (fn: () => unknown, message: RegExp) => {
    try {
      fn();
    } catch (error) {
      expect(isMabeamError(error, 'INVALID_OPTIONS')).toBe(true);
      expect((error as Error).message).toMatch(message);
      return;
    }
    throw new Error('expected an INVALID_OPTIONS error');
  };

  it('fills in defaults (those of Optuna)', () => {
    expect(parsePrunerConfig({ name: 'median' }).config).toEqual({ nStartupTrials: 5, nWarmupSteps: 0, intervalSteps: 1, nMinTrials: 1 });
    expect(parsePrunerConfig({ name: 'asha' }).config).toEqual({ minResource: 'auto', reductionFactor: 4, minEarlyStoppingRate: 0, bootstrapCount: 0 });
  });

  it('says what is wrong with a config', () => {
    expectInvalid(() => parsePrunerConfig({ name: 'median', config: { nWarmupSteps: -1 } }), /'median' pruner: nWarmupSteps: must be at least 0\./);
    expectInvalid(() => parsePrunerConfig({ name: 'median', config: { intervalSteps: 1.5 } }), /intervalSteps: must be a whole number/);
    expectInvalid(() => parsePrunerConfig({ name: 'median', config: { nWarmupStep: 3 } }), /unknown option\(s\) nWarmupStep/);
    expectInvalid(() => parsePrunerConfig({ name: 'asha', config: { reductionFactor: 1 } }), /reductionFactor: must be at least 2/);
    expectInvalid(() => parsePrunerConfig({ name: 'asha', config: { minResource: 0 } }), /minResource: must be 'auto' or a whole number ≥ 1/);
    expectInvalid(() => parsePrunerConfig({ name: 'asha', config: { bootstrapCount: 2 } }), /bootstrapCount: must be 0 while minResource is 'auto'/);
    expectInvalid(() => parsePrunerConfig({ name: 'hyperband' }), /Unknown pruner "hyperband"; known pruners: 'none', 'median', 'asha'/);
  });

  it('refuses median and ASHA for a study with several objectives; none is fine', () => {
    expectInvalid(() => createPruner({ name: 'asha' }, ['minimize', 'maximize']), /cannot be used in a study with 2 objectives: pruning on one of several objectives is not defined/);
    expectInvalid(() => createPruner({ name: 'median' }, ['minimize', 'minimize']), /Use pruner 'none'/);
    const none = createPruner({ name: 'none' }, ['minimize', 'maximize']);
    expect(none.report(none.init(), { trialId: 'a', step: 0, value: 1e9 }, 'minimize').decision).toBe('continue');
  });

  it('refuses malformed reports', () => {
    const pruner = createPruner({ name: 'median' }, ['minimize']);
    expectInvalid(() => pruner.report(pruner.init(), { trialId: 'a', step: -1, value: 1 }, 'minimize'), /step -1; a step is a whole number ≥ 0/);
    expectInvalid(() => pruner.report(pruner.init(), { trialId: 'a', step: 0.5, value: 1 }, 'minimize'), /a step is a whole number/);
  });

  it('the built-ins are the same objects as their modules export', () => {
    expect(createPruner({ name: 'median' }, ['minimize']).name).toBe(medianPruner.name);
    expect(createPruner({ name: 'asha' }, ['minimize']).name).toBe(ashaPruner.name);
  });
});
