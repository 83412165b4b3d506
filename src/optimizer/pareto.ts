/**
 * Multi-objective helpers: dominance between objective vectors, constrained
 * dominance, and the Pareto front(s) of completed trials.
 *
 * Constraints follow Optuna's `constraints_func`: a trial is feasible when
 * every constraint value is ≤ 0; its violation is the sum of the positive
 * parts. Constrained dominance is Deb's rule (as in NSGA-II): a feasible trial
 * dominates an infeasible one; between two infeasible trials the one with the
 * lower total violation dominates (equal violations: neither); between two
 * feasible trials, plain Pareto dominance on the objectives.
 *
 * Everything here is pure and order-stable: fronts list trials in the order
 * they were given, so replaying a study gives the same "best trials" list.
 */
import { MabeamError } from '../errors.ts';

/** The direction of one objective. */
export type Direction = 'minimize' | 'maximize';

/** A completed trial as the multi-objective helpers see it. */
export interface ObjectiveTrial {
  readonly trialId: string;
  /** One value per objective, in the order of the study's directions. */
  readonly values: readonly number[];
  /** Constraint values (feasible when all are ≤ 0); absent or empty: no constraints. */
  readonly constraints?: readonly number[] | undefined;
}

function checkVector(values: readonly number[], directions: readonly Direction[], what: string): void {
  if (values.length !== directions.length) {
    throw new MabeamError('INVALID_OPTIONS', `${what} has ${values.length} objective value(s) but the study has ${directions.length} direction(s); give one value per objective.`);
  }
  for (const [i, v] of values.entries()) {
    if (Number.isNaN(v)) throw new MabeamError('INVALID_OPTIONS', `${what}: objective ${i} is NaN; a completed trial needs a number for every objective.`);
  }
}

function checkDirections(directions: readonly Direction[]): void {
  if (directions.length === 0) throw new MabeamError('INVALID_OPTIONS', 'A study needs at least one objective direction (minimize or maximize).');
  for (const [i, d] of directions.entries()) {
    if (d !== 'minimize' && d !== 'maximize') {
      throw new MabeamError('INVALID_OPTIONS', `directions[${i}] is ${JSON.stringify(d)}; it must be 'minimize' or 'maximize'.`);
    }
  }
}

/** -1 when a is better than b on this objective, 1 when worse, 0 when equal. */
function compareOne(a: number, b: number, direction: Direction): -1 | 0 | 1 {
  if (a === b) return 0;
  const aBetter = direction === 'minimize' ? a < b : a > b;
  return aBetter ? -1 : 1;
}

/**
 * Pareto dominance: a is no worse than b on every objective and strictly
 * better on at least one. Equal vectors do not dominate each other.
 */
export function dominates(a: readonly number[], b: readonly number[], directions: readonly Direction[]): boolean {
  checkDirections(directions);
  checkVector(a, directions, 'The first vector');
  checkVector(b, directions, 'The second vector');
  return dominatesUnchecked(a, b, directions);
}

function dominatesUnchecked(a: readonly number[], b: readonly number[], directions: readonly Direction[]): boolean {
  let strictlyBetter = false;
  for (let i = 0; i < directions.length; i++) {
    const c = compareOne(a[i]!, b[i]!, directions[i]!);
    if (c === 1) return false;
    if (c === -1) strictlyBetter = true;
  }
  return strictlyBetter;
}

/** Total constraint violation: the sum of the positive constraint values (0 when feasible). */
export function violation(constraints: readonly number[] | undefined): number {
  if (constraints === undefined) return 0;
  let total = 0;
  for (const [i, c] of constraints.entries()) {
    if (Number.isNaN(c)) throw new MabeamError('INVALID_OPTIONS', `Constraint ${i} is NaN; constraint values must be numbers (≤ 0 means satisfied).`);
    if (c > 0) total += c;
  }
  return total;
}

/** Feasible when every constraint value is ≤ 0 (no constraints: feasible). */
export function isFeasible(constraints: readonly number[] | undefined): boolean {
  return violation(constraints) === 0;
}

/** Deb's constrained dominance between two trials (see the file header). */
export function constrainedDominates(a: ObjectiveTrial, b: ObjectiveTrial, directions: readonly Direction[]): boolean {
  checkDirections(directions);
  checkVector(a.values, directions, `Trial ${a.trialId}`);
  checkVector(b.values, directions, `Trial ${b.trialId}`);
  return constrainedDominatesUnchecked(violation(a.constraints), a.values, violation(b.constraints), b.values, directions);
}

function constrainedDominatesUnchecked(va: number, a: readonly number[], vb: number, b: readonly number[], directions: readonly Direction[]): boolean {
  if (va === 0 && vb === 0) return dominatesUnchecked(a, b, directions);
  if (va === 0) return true;
  if (vb === 0) return false;
  return va < vb;
}

/**
 * Non-dominated sorting under constrained dominance: front 0 is the Pareto
 * front, front 1 what is non-dominated once front 0 is removed, and so on.
 * Each front keeps the input order. O(n²·m), which is fine for study sizes.
 */
export function paretoFronts<T extends ObjectiveTrial>(trials: readonly T[], directions: readonly Direction[]): T[][] {
  checkDirections(directions);
  const violations = trials.map((t) => {
    checkVector(t.values, directions, `Trial ${t.trialId}`);
    return violation(t.constraints);
  });
  const n = trials.length;
  const dominatedBy = new Array<number>(n).fill(0);
  const dominatesList: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const ti = trials[i]!;
      const tj = trials[j]!;
      if (constrainedDominatesUnchecked(violations[i]!, ti.values, violations[j]!, tj.values, directions)) {
        dominatesList[i]!.push(j);
        dominatedBy[j]!++;
      } else if (constrainedDominatesUnchecked(violations[j]!, tj.values, violations[i]!, ti.values, directions)) {
        dominatesList[j]!.push(i);
        dominatedBy[i]!++;
      }
    }
  }
  const fronts: T[][] = [];
  let current: number[] = [];
  for (let i = 0; i < n; i++) if (dominatedBy[i] === 0) current.push(i);
  while (current.length > 0) {
    fronts.push(current.map((i) => trials[i]!));
    const next: number[] = [];
    for (const i of current) {
      for (const j of dominatesList[i]!) {
        dominatedBy[j]!--;
        if (dominatedBy[j] === 0) next.push(j);
      }
    }
    // Keep the input order inside each front.
    current = next.sort((x, y) => x - y);
  }
  return fronts;
}

/**
 * The Pareto front of completed trials under constrained dominance, in input
 * order. Trials with equal objective vectors are all on it (neither dominates
 * the other). When some trial is feasible the front holds only feasible
 * trials; when none is, it holds the trials with the least total violation.
 */
export function paretoFront<T extends ObjectiveTrial>(trials: readonly T[], directions: readonly Direction[]): T[] {
  return paretoFronts(trials, directions)[0] ?? [];
}
