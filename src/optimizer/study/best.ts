/**
 * A study's best: for one objective the best complete trial (feasible ones
 * first, then the least constraint violation, then the value; the earliest
 * on a tie), for several the Pareto front of complete trials (constrained
 * dominance). Also the best-so-far curve: the best value after each
 * finished trial, in the order they finished.
 */
import { paretoFront, violation } from '../pareto.ts';
import type { Params } from '../space.ts';
import type { StudyRun, TrialRun } from './run.ts';

export interface BestTrial {
  trialId: string;
  number: number;
  params: Params;
  values: number[];
  constraints: number[];
}

function asBest(t: TrialRun): BestTrial {
  return { trialId: t.trialId, number: t.number, params: t.params, values: t.values ?? [], constraints: t.constraints };
}

/** The best trial of a single-objective study, or the Pareto front of a multi-objective one; empty before any trial completes. */
export function bestTrials(run: StudyRun): BestTrial[] {
  const complete = run.trials.filter((t) => t.state === 'complete' && t.values !== null);
  if (complete.length === 0) return [];
  const directions = run.study.directions;
  if (directions.length === 1) {
    const better = (a: TrialRun, b: TrialRun) => {
      const va = violation(a.constraints);
      const vb = violation(b.constraints);
      if (va !== vb) return va < vb;
      const x = a.values![0]!;
      const y = b.values![0]!;
      return directions[0] === 'minimize' ? x < y : x > y;
    };
    let best = complete[0]!;
    for (const t of complete.slice(1)) if (better(t, best)) best = t;
    return [asBest(best)];
  }
  const objective = complete.map((t) => ({ trialId: t.trialId, values: t.values!, constraints: t.constraints, trial: t }));
  return paretoFront(objective, directions).map((o) => asBest(o.trial));
}

/**
 * Best value of the first objective after 1, 2, … finished trials (in the
 * order they finished; pruned and failed trials add no value but count),
 * null until a feasible trial completes.
 */
export function bestCurve(run: StudyRun): Array<number | null> {
  const finished = run.trials.filter((t) => t.finishedAt !== null).sort((a, b) => a.finishedAt! - b.finishedAt! || a.number - b.number);
  return curveOf(finished.map((t) => (t.state === 'complete' && violation(t.constraints) === 0 ? t.values![0]! : null)), run.study.directions[0]!);
}

/** Best so far of a sequence of values (null: no value), by direction. */
export function curveOf(values: ReadonlyArray<number | null>, direction: 'minimize' | 'maximize'): Array<number | null> {
  const out: Array<number | null> = [];
  let best: number | null = null;
  for (const v of values) {
    if (v !== null && (best === null || (direction === 'minimize' ? v < best : v > best))) best = v;
    out.push(best);
  }
  return out;
}
