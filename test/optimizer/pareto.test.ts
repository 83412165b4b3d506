import { describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { constrainedDominates, dominates, isFeasible, paretoFront, paretoFronts, violation, type Direction, type ObjectiveTrial } from '../../src/optimizer/pareto.ts';

// Objective 0 is a cost (minimize), objective 1 a quality (maximize).
const mixed: Direction[] = ['minimize', 'maximize'];
const trial = (trialId: string, values: number[], constraints?: number[]): ObjectiveTrial => (constraints ? { trialId, values, constraints } : { trialId, values });
const ids = (trials: readonly ObjectiveTrial[]) => trials.map((t) => t.trialId);

describe('dominance', () => {
  it('respects each objective’s direction', () => {
    expect(dominates([1, 5], [2, 4], mixed)).toBe(true);
    expect(dominates([2, 4], [1, 5], mixed)).toBe(false);
    expect(dominates([1, 5], [1, 4], mixed)).toBe(true); // equal cost, better quality
    expect(dominates([1, 5], [0, 4], mixed)).toBe(false); // a trade-off: neither
    expect(dominates([0, 4], [1, 5], mixed)).toBe(false);
    expect(dominates([1, 5], [2, 4], ['maximize', 'minimize'])).toBe(false);
    expect(dominates([2, 4], [1, 5], ['maximize', 'minimize'])).toBe(true);
  });

  it('equal vectors do not dominate each other', () => {
    expect(dominates([1, 5], [1, 5], mixed)).toBe(false);
  });

  it('refuses vectors that do not match the directions, NaN, and unknown directions', () => {
    const invalid = (fn: () => unknown, message: RegExp) => {
      let error: unknown;
      try {
        fn();
      } catch (e) {
        error = e;
      }
      expect(isMabeamError(error, 'INVALID_OPTIONS')).toBe(true);
      expect((error as Error).message).toMatch(message);
    };
    invalid(() => dominates([1], [1, 2], mixed), /1 objective value\(s\) but the study has 2 direction\(s\)/);
    invalid(() => dominates([1, Number.NaN], [1, 2], mixed), /objective 1 is NaN/);
    invalid(() => dominates([1], [2], ['up' as Direction]), /must be 'minimize' or 'maximize'/);
    invalid(() => paretoFront([trial('a', [1, 2])], []), /at least one objective/);
    invalid(() => violation([Number.NaN]), /Constraint 0 is NaN/);
  });
});

describe('constraints', () => {
  it('feasible when every constraint is ≤ 0; violation sums the positive parts', () => {
    expect(isFeasible(undefined)).toBe(true);
    expect(isFeasible([])).toBe(true);
    expect(isFeasible([0, -3])).toBe(true);
    expect(isFeasible([0.001, -3])).toBe(false);
    expect(violation([2, -5, 0.5])).toBe(2.5);
  });

  it('a feasible trial dominates an infeasible one, whatever the objectives', () => {
    const feasible = trial('f', [100, 0], [-1]);
    const infeasible = trial('i', [0, 100], [0.1]);
    expect(constrainedDominates(feasible, infeasible, mixed)).toBe(true);
    expect(constrainedDominates(infeasible, feasible, mixed)).toBe(false);
  });

  it('between infeasible trials the lower total violation wins; equal violations: neither', () => {
    const a = trial('a', [100, 0], [0.2, -1]);
    const b = trial('b', [0, 100], [0.1, 0.1]); // 0.2 in all, as a
    const c = trial('c', [50, 50], [0.1]);
    expect(constrainedDominates(c, a, mixed)).toBe(true);
    expect(constrainedDominates(a, c, mixed)).toBe(false);
    expect(constrainedDominates(a, b, mixed)).toBe(false);
    expect(constrainedDominates(b, a, mixed)).toBe(false);
  });

  it('between feasible trials, plain Pareto dominance', () => {
    expect(constrainedDominates(trial('a', [1, 5], [-1]), trial('b', [2, 4], [0]), mixed)).toBe(true);
    expect(constrainedDominates(trial('a', [1, 5], [-1]), trial('b', [0, 4], [0]), mixed)).toBe(false);
  });
});

describe('Pareto front', () => {
  const A = trial('A', [1, 5]);
  const B = trial('B', [2, 6]); // costs more, better quality: a trade-off with A
  const C = trial('C', [3, 4]); // dominated by A (and B)
  const D = trial('D', [1, 5]); // the same as A
  const E = trial('E', [0, 1]); // cheapest, worst quality: a trade-off
  const F = trial('F', [2, 5]); // dominated by A and B, dominates C

  it('two objectives with mixed directions: the non-dominated trials, in input order', () => {
    expect(ids(paretoFront([A, B, C, D, E, F], mixed))).toEqual(['A', 'B', 'D', 'E']);
  });

  it('ties: trials with equal vectors are all on the front', () => {
    expect(ids(paretoFront([D, C, A], mixed))).toEqual(['D', 'A']);
  });

  it('stable: the same set, listed in the order given', () => {
    expect(ids(paretoFront([E, F, D, C, B, A], mixed))).toEqual(['E', 'D', 'B', 'A']);
  });

  it('the same values under other directions give another front', () => {
    // Both minimized: E (0, 1) dominates every other trial.
    expect(ids(paretoFront([A, B, C, D, E, F], ['minimize', 'minimize']))).toEqual(['E']);
  });

  it('non-dominated sorting: each later front is what remains non-dominated, each in input order', () => {
    expect(paretoFronts([A, B, C, D, E, F], mixed).map(ids)).toEqual([['A', 'B', 'D', 'E'], ['F'], ['C']]);
    expect(paretoFronts([E, F, C, B, A, D], mixed).map(ids)).toEqual([['E', 'B', 'A', 'D'], ['F'], ['C']]);
    const G = trial('G', [1.5, 4]); // dominated by A, a trade-off with F, dominates C
    expect(paretoFronts([G, C, F, A], mixed).map(ids)).toEqual([['A'], ['G', 'F'], ['C']]);
    // X2 is dominated by Q only and X3 by P only: the second front still lists X2 first.
    const P = trial('P', [0, 1]);
    const Q = trial('Q', [5, 10]);
    const X2 = trial('X2', [6, 9]);
    const X3 = trial('X3', [1, 0.5]);
    expect(paretoFronts([P, Q, X2, X3], mixed).map(ids)).toEqual([['P', 'Q'], ['X2', 'X3']]);
  });

  it('constraints: an infeasible trial is off the front even when its objectives are the best', () => {
    const cheatBest = trial('X', [-10, 100], [0.5]);
    const front = paretoFront([A, B, cheatBest, E], mixed);
    expect(ids(front)).toEqual(['A', 'B', 'E']);
    // A constraint exactly at 0 is satisfied.
    expect(ids(paretoFront([trial('Y', [-10, 100], [0]), A], mixed))).toEqual(['Y']);
  });

  it('constraints: with no feasible trial, the least violating ones form the front', () => {
    const front = paretoFront([trial('p', [1, 1], [0.3]), trial('q', [5, 0], [0.1, 0.1]), trial('r', [0, 9], [0.2]), trial('s', [9, 0], [0.5])], mixed);
    expect(ids(front)).toEqual(['q', 'r']);
  });

  it('an empty study has an empty front', () => {
    expect(paretoFront([], mixed)).toEqual([]);
    expect(paretoFronts([], mixed)).toEqual([]);
  });

  it('keeps the caller’s trial objects (and their extra fields)', () => {
    const withParams = [{ ...A, params: { x: 1 } }, { ...C, params: { x: 2 } }];
    expect(paretoFront(withParams, mixed)[0]!.params).toEqual({ x: 1 });
  });
});
