/**
 * A counterfactual re-run of a study: its recorded evaluations replayed into
 * another searcher, without evaluating anything, in the study's own rhythm
 * (see rhythmOf), for as many trials as the study finished. Evaluations
 * are cached by (params, mini-batch) — one on the whole set answers for any
 * mini-batch of the same params. A proposal never evaluated is a miss: the
 * report lists it, with the nearest recorded evaluation (normalised
 * distance in the search space), and with `nearest` that evaluation's
 * values stand in for it (marked); without, the trial is told as failed.
 *
 * Pure: no Kafka, no clock; the same study, searcher and seed give the same report.
 */
import { MabeamError } from '../../errors.ts';
import { violation } from '../pareto.ts';
import { canonicalJson, encodeParam, internalBounds, type Params, type SearchSpace } from '../space.ts';
import type { TrialResult } from '../searchers/types.ts';
import { bestCurve, curveOf } from './best.ts';
import type { StudyRun } from './run.ts';
import { createSearcher } from './searchers.ts';

export interface RerunOptions {
  searcher: string;
  /** The searcher's options; default: the study's own when it is the study's searcher, else its defaults. */
  config?: Record<string, unknown>;
  /** Default: the study's seed. */
  seed?: number;
  /** Let the nearest recorded evaluation stand in for a proposal never evaluated. */
  nearest?: boolean;
}

export interface RerunMiss {
  /** The trial number in the re-run. */
  number: number;
  params: Params;
  miniBatch: number | null;
  /** The nearest recorded evaluation and its distance (0 = same params on another mini-batch). */
  nearest: { trialId: string; distance: number; values: number[] } | null;
}

export interface RerunReport {
  studyId: string;
  trials: number;
  recorded: { searcher: string; curve: Array<number | null>; best: number | null };
  rerun: { searcher: string; seed: number; curve: Array<number | null>; best: number | null; hits: number; misses: RerunMiss[]; stoodIn: number };
  /** Agent calls made by the re-run: always 0 (nothing is evaluated). */
  evaluations: 0;
}

interface Recorded {
  trialId: string;
  params: Params;
  miniBatch: number | null;
  values: number[];
  constraints: number[];
  status: 'complete' | 'pruned';
  step: number | null;
}

function cacheKey(params: Params, miniBatch: number | null): string {
  return canonicalJson({ params, miniBatch });
}

/**
 * A point of a space as numbers to measure distances between: numeric
 * parameters scaled to [0, 1] of their internal range, a team as its
 * membership mask, a choice or boolean as its JSON (compared for equality).
 */
type Point = Array<number | number[] | string>;

function pointOf(space: SearchSpace, params: Params): Point {
  return Object.entries(space).map(([name, spec]) => {
    if (spec.type === 'float' || spec.type === 'int') {
      const { low, high } = internalBounds(spec);
      return high > low ? (encodeParam(spec, params[name])[0]! - low) / (high - low) : 0;
    }
    if (spec.type === 'agentSet') return encodeParam(spec, params[name]);
    return canonicalJson(params[name]);
  });
}

function pointDistance(a: Point, b: Point): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    let d: number;
    if (typeof x === 'number') d = Math.abs(x - (y as number));
    else if (Array.isArray(x)) {
      const yy = y as number[];
      let union = 0;
      let differ = 0;
      for (let j = 0; j < x.length; j++) {
        if (x[j] === 1 || yy[j] === 1) union += 1;
        if (x[j] !== yy[j]) differ += 1;
      }
      d = union === 0 ? 0 : differ / union;
    } else d = x === y ? 0 : 1;
    sum += d * d;
  }
  return Math.sqrt(sum);
}

/** Distance of two points of a space, each parameter's part in [0, 1] (a team's: the share of its members that differ). */
export function distance(space: SearchSpace, a: Params, b: Params): number {
  return pointDistance(pointOf(space, a), pointOf(space, b));
}

/**
 * When the study asked its searcher and when it told it, by trial number,
 * in log order: an asynchronous study tells each trial as it finished; one
 * run in batches asks a batch, then tells it in trial order. The re-run asks
 * and tells its own trial n at the same points, so the other searcher works
 * in the same rhythm (and the same searcher with the same seed proposes
 * exactly what was recorded).
 */
function rhythmOf(run: StudyRun): Array<{ ask: number } | { tell: number }> {
  const trials = [...run.trials].sort((a, b) => a.number - b.number);
  if (run.study.spec.schedule === 'batch') {
    const out: Array<{ ask: number } | { tell: number }> = [];
    const p = run.study.spec.parallelism;
    for (let i = 0; i < trials.length; i += p) {
      const batch = trials.slice(i, i + p);
      for (const t of batch) out.push({ ask: t.number });
      for (const t of batch) if (t.finishedSeq !== null) out.push({ tell: t.number });
    }
    return out;
  }
  const steps: Array<{ seq: number; step: { ask: number } | { tell: number } }> = [];
  for (const t of trials) {
    steps.push({ seq: t.proposedSeq, step: { ask: t.number } });
    if (t.finishedSeq !== null) steps.push({ seq: t.finishedSeq, step: { tell: t.number } });
  }
  return steps.sort((a, b) => a.seq - b.seq).map((s) => s.step);
}

export function rerunStudy(run: StudyRun, options: RerunOptions): RerunReport {
  const spec = run.study.spec;
  const directions = run.study.directions;
  // Without options of its own, the study's searcher re-runs with the study's options.
  const config = options.config ?? (options.searcher === spec.searcher.name ? spec.searcher.config : {});
  const searcher = createSearcher(options.searcher, spec.space, { ...config, directions });
  const seed = options.seed ?? run.seed;
  const recorded: Recorded[] = run.trials
    .filter((t) => (t.state === 'complete' && t.values) || (t.state === 'pruned' && t.lastValues))
    .map((t) => ({ trialId: t.trialId, params: t.params, miniBatch: t.miniBatch, values: (t.state === 'complete' ? t.values : t.lastValues)!, constraints: t.constraints, status: t.state as 'complete' | 'pruned', step: t.lastStep }));
  if (recorded.length === 0) throw new MabeamError('VALIDATION_FAILED', `Study ${run.studyId} has no recorded evaluation to re-run.`);
  const points = recorded.map((r) => pointOf(spec.space, r.params));
  const cache = new Map<string, Recorded>();
  for (const r of recorded) if (!cache.has(cacheKey(r.params, r.miniBatch))) cache.set(cacheKey(r.params, r.miniBatch), r);
  const budget = run.finished;
  let state = searcher.init(seed);
  const asked = new Map<number, { number: number; params: Params; miniBatch: number | null }>();
  const pending = new Set<number>();
  const told: Array<number | null> = [];
  const misses: RerunMiss[] = [];
  let hits = 0;
  let stoodIn = 0;
  for (const step of rhythmOf(run)) {
    if ('ask' in step) {
      const { state: next, proposals } = searcher.ask(state, 1, [...pending].map((n) => ({ id: `rerun#${n}`, params: asked.get(n)!.params })));
      state = next;
      const p = proposals[0]!;
      asked.set(step.ask, { number: step.ask, params: p.params, miniBatch: p.miniBatch ?? null });
      pending.add(step.ask);
      continue;
    }
    const trial = asked.get(step.tell)!;
    pending.delete(step.tell);
    // An evaluation on the whole set (no mini-batch) stands for every mini-batch of the same params.
    const hit = cache.get(cacheKey(trial.params, trial.miniBatch)) ?? cache.get(cacheKey(trial.params, null));
    let result: TrialResult;
    if (hit) {
      hits += 1;
      result = { id: `rerun#${trial.number}`, params: trial.params, values: hit.values, status: hit.status, ...(hit.status === 'pruned' && hit.step !== null ? { step: hit.step } : {}) };
      told.push(hit.status === 'complete' && violation(hit.constraints) === 0 ? hit.values[0]! : null);
    } else {
      let near: Recorded | undefined;
      let best = Number.POSITIVE_INFINITY;
      const point = pointOf(spec.space, trial.params);
      for (const [i, r] of recorded.entries()) {
        const d = pointDistance(point, points[i]!);
        if (d < best) [best, near] = [d, r];
      }
      misses.push({ number: trial.number, params: trial.params, miniBatch: trial.miniBatch, nearest: near ? { trialId: near.trialId, distance: best, values: near.values } : null });
      if (options.nearest && near) {
        stoodIn += 1;
        result = { id: `rerun#${trial.number}`, params: trial.params, values: near.values, status: near.status, ...(near.status === 'pruned' && near.step !== null ? { step: near.step } : {}) };
        told.push(near.status === 'complete' && violation(near.constraints) === 0 ? near.values[0]! : null);
      } else {
        result = { id: `rerun#${trial.number}`, params: trial.params, values: null, status: 'failed' };
        told.push(null);
      }
    }
    state = searcher.tell(state, result);
  }
  const recordedCurve = bestCurve(run);
  const rerunCurve = curveOf(told, directions[0]!);
  return {
    studyId: run.studyId,
    trials: budget,
    recorded: { searcher: spec.searcher.name, curve: recordedCurve, best: recordedCurve.at(-1) ?? null },
    rerun: { searcher: options.searcher, seed, curve: rerunCurve, best: rerunCurve.at(-1) ?? null, hits, misses, stoodIn },
    evaluations: 0,
  };
}
