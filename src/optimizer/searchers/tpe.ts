/**
 * Tree-structured Parzen Estimator, after Optuna's TPESampler with its
 * defaults (univariate, n_startup_trials 10, n_ei_candidates 24,
 * gamma(n) = min(ceil(0.1 n), 25) with n the trials told, prior weight 1,
 * magic clip on, consider_endpoints off, Optuna's default weights: flat for
 * the newest 25 observations, a linear ramp for older ones).
 *
 * Each proposal: rank the observations (complete trials by loss, then pruned
 * trials by how far they got, then — the constant liar — pending trials, as
 * if they were worse than anything observed); the best gamma(n) make the
 * "below" group, the rest "above". For each parameter on its own, fit a
 * Parzen estimator to each group (truncated Gaussians on the internal scale,
 * ln for log parameters, widths from the gaps to the neighbouring kernels,
 * with a prior kernel; a smoothed histogram for choices and booleans), draw
 * 24 candidates from the below estimator and keep the one with the largest
 * log l(x) − log g(x).
 *
 * Candidates are scored with every Gaussian kernel at the same peak height
 * (its density times its width σ; for a stepped or integer parameter, its
 * mass on the value's cell times σ), which is how Optuna's TPESampler scored
 * continuous parameters up to version 3.4. Wide kernels, the prior's above
 * all, then weigh more, which flattens g most: candidates are chosen for
 * where the below group is dense more than for where the above group is
 * sparse. Against normalised densities (equalHeightKernels: false, as
 * Optuna ≥ 3.5 scores), with 8 trials pending, it ended with a lower median
 * regret after 100 trials on each of the 11 functions of
 * `bench/optimizer-quality.ts --more` (30 seeds), and on 8 of them one trial at a time.
 *
 * multivariate: true models the parameters jointly: one product kernel per
 * observation over every parameter (each coordinate with its own width, by
 * the same neighbour rule), a candidate drawn from one kernel of the below
 * mixture for all its parameters at once, and scored by the joint densities
 * (normalised: equal heights would weigh a product kernel by the product of
 * its widths, and measured worse).
 *
 * An agentSet is modelled as one boolean per candidate (each a smoothed
 * two-bin histogram, as a boolean parameter); a candidate team is drawn bit
 * by bit from the below estimators, repaired to minSize..maxSize by adding or
 * dropping random members, and scored by the sum of its bits' log ratios
 * (jointly with the other parameters, when multivariate). That generalises
 * across teams that share members, where a categorical over all subsets
 * would learn nothing about a team until it has tried it.
 *
 * Single-objective only: a study with several objectives is refused at init
 * (use the random searcher for those until a multi-objective TPE exists).
 *
 * Reads: init, ask (with the pending trials), tell. State: the space, the
 * options, the seed, the number of proposals made and the told trials.
 */
import { z } from 'zod';
import { MabeamError } from '../../errors.ts';
import { checkSeed, deriveSeed, Random } from '../random.ts';
import {
  decodeParam,
  defineSpace,
  encodeParam,
  internalBounds,
  internalCell,
  paramNames,
  repairTeam,
  sampleSpace,
  type ParamSpec,
  type Params,
  type SearchSpace,
} from '../space.ts';
import { checkAskCount, checkPending, checkResult, digestOf, directionsSchema, lossOf, parseConfig } from './internals.ts';
import type { AskResult, BaseSearcherConfig, PendingTrial, Proposal, Searcher, TrialResult } from './types.ts';

export interface TpeConfig extends BaseSearcherConfig {
  /** Proposals are uniform until this many trials are complete or pruned. Default 10. */
  nStartupTrials?: number;
  /** Candidates drawn from the below estimator per parameter (per proposal, when multivariate). Default 24. */
  nEiCandidates?: number;
  /** gamma(n) = min(ceil(gammaRatio × n), gammaMax). Defaults 0.1 and 25. */
  gammaRatio?: number;
  gammaMax?: number;
  /** Weight of the prior kernel. Default 1. */
  priorWeight?: number;
  /** Lower bound on kernel widths: range / min(100, 1 + kernels). Default true. */
  considerMagicClip?: boolean;
  /** Let the first and last kernels reach to the bounds. Default false. */
  considerEndpoints?: boolean;
  /** Count pending trials as worse than every observation. Default true. */
  constantLiar?: boolean;
  /** Model the parameters jointly (one product kernel per observation over all of them) instead of one by one. Default false. */
  multivariate?: boolean;
  /**
   * Score candidates with every Gaussian kernel at the same peak height
   * (false: by normalised densities). Default: true, and false when
   * multivariate (a product kernel's height would be the product of its
   * widths, which buries every observation under the prior).
   */
  equalHeightKernels?: boolean;
}

export type ResolvedTpeConfig = Required<TpeConfig>;

/** The defaults; equalHeightKernels defaults to !multivariate. */
export const tpeDefaults: Readonly<Omit<ResolvedTpeConfig, 'directions' | 'equalHeightKernels'>> = Object.freeze({
  nStartupTrials: 10,
  nEiCandidates: 24,
  gammaRatio: 0.1,
  gammaMax: 25,
  priorWeight: 1,
  considerMagicClip: true,
  considerEndpoints: false,
  constantLiar: true,
  multivariate: false,
});

const configSchema = z
  .object({
    directions: directionsSchema.refine((d) => d.length === 1, 'TPE handles one objective only; use the random searcher for several objectives'),
    nStartupTrials: z.number().int().nonnegative().default(tpeDefaults.nStartupTrials),
    nEiCandidates: z.number().int().positive().default(tpeDefaults.nEiCandidates),
    gammaRatio: z.number().gt(0).lte(1).default(tpeDefaults.gammaRatio),
    gammaMax: z.number().int().positive().default(tpeDefaults.gammaMax),
    priorWeight: z.number().positive().finite().default(tpeDefaults.priorWeight),
    considerMagicClip: z.boolean().default(tpeDefaults.considerMagicClip),
    considerEndpoints: z.boolean().default(tpeDefaults.considerEndpoints),
    constantLiar: z.boolean().default(tpeDefaults.constantLiar),
    multivariate: z.boolean().default(tpeDefaults.multivariate),
    equalHeightKernels: z.boolean().optional(),
  })
  .strict()
  .transform((c) => ({ ...c, equalHeightKernels: c.equalHeightKernels ?? !c.multivariate }));

/** A told trial as TPE keeps it (failed trials are not kept: they carry no information). */
export interface TpeObservation {
  id: string;
  params: Params;
  status: 'complete' | 'pruned';
  /** The loss (minimised) of a complete trial, or of a pruned trial's last intermediate value; null for a pruned trial without one. */
  loss: number | null;
  /** A pruned trial's last step, or null. */
  step: number | null;
}

export interface TpeState {
  searcher: 'tpe';
  space: SearchSpace;
  config: ResolvedTpeConfig;
  seed: number;
  /** Proposals made so far: the next proposal draws from deriveSeed(seed, proposed). */
  proposed: number;
  /** Complete and pruned trials, in the order they were told. */
  observations: TpeObservation[];
  /** Failed trials told so far. */
  failed: number;
  /**
   * A hash chained over every observation told (each one's hash with the
   * chain so far): what a proposal's digest is computed from instead of the
   * whole list, so a digest costs the same at the thousandth trial as at the first.
   */
  history: string;
}

export const tpeSearcher: Searcher<TpeState, TpeConfig> = {
  name: 'tpe',

  init(space: SearchSpace, config: TpeConfig, seed: number): TpeState {
    if (Array.isArray(config?.directions) && config.directions.length > 1) {
      throw new MabeamError('INVALID_OPTIONS', `The TPE searcher handles one objective only, and this study has ${config.directions.length} (${config.directions.join(', ')}); use the random searcher for several objectives`);
    }
    const resolved = parseConfig(configSchema, config, 'tpe') as ResolvedTpeConfig;
    return { searcher: 'tpe', space: defineSpace(space), config: resolved, seed: checkSeed(seed), proposed: 0, observations: [], failed: 0, history: '' };
  },

  ask(state: TpeState, n: number, pending: readonly PendingTrial[] = []): AskResult<TpeState> {
    checkAskCount(n);
    checkPending(state.space, pending);
    const proposals: Proposal[] = [];
    const running = pending.map((p) => p.params);
    let current = state;
    for (let i = 0; i < n; i++) {
      const seed = deriveSeed(current.seed, current.proposed);
      const considered = current.config.constantLiar ? running : [];
      const { observations: _, ...summary } = current;
      const digest = digestOf({ state: summary, pending: considered });
      const params = propose(current, considered, Random.fromSeed(seed));
      proposals.push({ params, seed, digest });
      running.push(params);
      current = { ...current, proposed: current.proposed + 1 };
    }
    return { state: current, proposals };
  },

  skip(state, _params) {
    return { ...state, proposed: state.proposed + 1 };
  },

  tell(state: TpeState, trial: TrialResult): TpeState {
    checkResult(state.space, state.config.directions, trial);
    // A trial is counted once: a second report of a told trial changes nothing.
    if (state.observations.some((o) => o.id === trial.id)) return state;
    if (trial.status === 'failed') return { ...state, failed: state.failed + 1 };
    const direction = state.config.directions[0]!;
    const value = trial.values?.[0];
    const observation: TpeObservation = {
      id: trial.id,
      params: trial.params,
      status: trial.status,
      loss: value === undefined ? null : lossOf(value, direction),
      step: trial.status === 'pruned' ? (trial.step ?? null) : null,
    };
    return { ...state, observations: [...state.observations, observation], history: digestOf([state.history, observation]) };
  },
};

// ---- one proposal ---------------------------------------------------------

/** How observations rank (lower is better): complete by loss, then pruned by step (later first) and loss, then pending. */
type RankKey = [group: number, a: number, b: number];

function rankKey(o: TpeObservation): RankKey {
  if (o.status === 'complete') return [0, o.loss ?? Infinity, 0];
  if (o.loss !== null) return [1, -(o.step ?? 0), o.loss];
  return [2, 0, 0];
}

function compareKeys(x: RankKey, y: RankKey): number {
  for (let i = 0; i < 3; i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0 && !Number.isNaN(d)) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * The below group (the best gamma(n), n = the trials told: pending ones
 * neither count nor ever rank among them) and the above group (the rest,
 * pending ones last), each in chronological order.
 */
export function splitObservations(state: TpeState, pending: readonly Params[]): { below: Params[]; above: Params[] } {
  const { observations, config } = state;
  const ranked = [...observations.map((o) => ({ params: o.params, key: rankKey(o) })), ...pending.map((params) => ({ params, key: [3, 0, 0] as RankKey }))];
  const nBelow = Math.min(Math.ceil(config.gammaRatio * observations.length), config.gammaMax);
  const order = ranked.map((_, i) => i).sort((i, j) => compareKeys(ranked[i]!.key, ranked[j]!.key) || i - j);
  const belowSet = new Set(order.slice(0, nBelow));
  return { below: ranked.filter((_, i) => belowSet.has(i)).map((r) => r.params), above: ranked.filter((_, i) => !belowSet.has(i)).map((r) => r.params) };
}

function propose(state: TpeState, pending: readonly Params[], rng: Random): Params {
  const { observations, config, space } = state;
  const complete = observations.filter((o) => o.status === 'complete').length;
  if (observations.length < config.nStartupTrials || complete === 0) return sampleSpace(space, rng);
  const { below, above } = splitObservations(state, pending);
  const models = paramNames(space).map((name) => paramModel(name, space[name]!, below, above, config));
  if (config.multivariate) return bestCandidate(models, config.nEiCandidates, true, rng);
  const out: Params = {};
  for (const model of models) Object.assign(out, bestCandidate([model], config.nEiCandidates, false, rng));
  return out;
}

// ---- weights --------------------------------------------------------------

/** Optuna's default weights: 1 for the newest 25 observations, a ramp from 1/n up to 1 for older ones. */
function observationWeights(n: number): number[] {
  if (n < 25) return new Array<number>(n).fill(1);
  const ramp = n - 25;
  const w: number[] = [];
  for (let i = 0; i < ramp; i++) w.push(ramp === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (ramp - 1));
  for (let i = 0; i < 25; i++) w.push(1);
  return w;
}

/** Mixture weights: one per observation, then the prior's, normalised. */
function mixtureWeights(n: number, priorWeight: number): number[] {
  if (n === 0) return [1];
  const w = [...observationWeights(n), priorWeight];
  const total = w.reduce((s, x) => s + x, 0);
  return w.map((x) => x / total);
}

// ---- Parzen estimators ----------------------------------------------------

/**
 * One internal coordinate of a Parzen estimator, with one kernel per
 * observation and then the prior kernel: a truncated Gaussian each for a
 * number (logMass: the log of its mass inside the bounds), a row of choice
 * probabilities each for a choice, a boolean or one member bit of a team.
 */
type Coordinate =
  | { kind: 'numeric'; low: number; high: number; mus: number[]; sigmas: number[]; logMass: number[]; equalHeights: boolean; densityBase: number[]; massBase: number[] }
  | { kind: 'categorical'; rows: number[][] };

/** A point on one coordinate: a number (with its cell, for a stepped or integer parameter) or a choice index. */
interface Point {
  x: number;
  cell?: { low: number; high: number } | undefined;
}

/** The kernel weights (shared by every coordinate) and the coordinates of one or more parameters. */
interface Estimator {
  weights: number[];
  coordinates: Coordinate[];
}

/** A parameter's below (l) and above (g) estimators, and how drawn coordinates become its value. */
interface ParamModel {
  name: string;
  /** Set for a numeric parameter with one value only: nothing to model. */
  only?: number;
  l: Estimator;
  g: Estimator;
  /** The value that drawn internal coordinates stand for, and the points it is scored at (snapped to the grid, a team repaired). */
  decode(raw: number[], rng: Random): { value: unknown; points: Point[] };
}

/**
 * Kernel widths from the gaps between neighbouring kernels (the larger of a
 * kernel's two gaps; the first and last take their inner one unless
 * considerEndpoints), the prior's centre among them, then clipped to
 * [range / min(100, kernels + 1), range] with the magic clip.
 */
function neighbourSigmas(obs: readonly number[], low: number, high: number, config: ResolvedTpeConfig): number[] {
  const mus = [...obs, 0.5 * (low + high)];
  const order = mus.map((_, i) => i).sort((i, j) => mus[i]! - mus[j]! || i - j);
  const sorted = [low, ...order.map((i) => mus[i]!), high];
  const sortedSigmas: number[] = [];
  for (let i = 1; i < sorted.length - 1; i++) sortedSigmas.push(Math.max(sorted[i]! - sorted[i - 1]!, sorted[i + 1]! - sorted[i]!));
  if (!config.considerEndpoints && sorted.length >= 4) {
    sortedSigmas[0] = sorted[2]! - sorted[1]!;
    sortedSigmas[sortedSigmas.length - 1] = sorted[sorted.length - 2]! - sorted[sorted.length - 3]!;
  }
  const sigmas = new Array<number>(mus.length);
  order.forEach((original, rank) => (sigmas[original] = sortedSigmas[rank]!));
  const range = high - low;
  const minSigma = config.considerMagicClip ? range / Math.min(100, 1 + mus.length) : 1e-12;
  return sigmas.slice(0, obs.length).map((s) => Math.min(range, Math.max(minSigma, s)));
}

function numericCoordinate(obs: readonly number[], low: number, high: number, config: ResolvedTpeConfig): Coordinate {
  const mus = [...obs, 0.5 * (low + high)];
  const sigmas = [...(obs.length === 0 ? [] : neighbourSigmas(obs, low, high, config)), high - low];
  const logMass = mus.map((mu, k) => Math.log(normalMass((low - mu) / sigmas[k]!, (high - mu) / sigmas[k]!)));
  const equalHeights = config.equalHeightKernels;
  // What every score of kernel k adds to its exponent (or its cell mass's log), worked out once per estimator, not per candidate.
  const massBase = logMass.map((m, k) => -m + (equalHeights ? Math.log(sigmas[k]!) : 0));
  const densityBase = massBase.map((b, k) => b - Math.log(sigmas[k]!) - LOG_SQRT_2PI);
  return { kind: 'numeric', low, high, mus, sigmas, logMass, equalHeights, densityBase, massBase };
}

/** Each observation a one-hot smoothed by priorWeight / kernels, then a uniform prior row. */
function categoricalCoordinate(k: number, obs: readonly number[], priorWeight: number): Coordinate {
  const smoothing = priorWeight / (obs.length + 1);
  const rowTotal = smoothing * k + 1;
  const rows = obs.map((index) => Array.from({ length: k }, (_, c) => (smoothing + (c === index ? 1 : 0)) / rowTotal));
  rows.push(new Array<number>(k).fill(1 / k));
  return { kind: 'categorical', rows };
}

function paramModel(name: string, spec: ParamSpec, below: readonly Params[], above: readonly Params[], config: ResolvedTpeConfig): ParamModel {
  const lo = below.map((p) => encodeParam(spec, p[name]));
  const hi = above.map((p) => encodeParam(spec, p[name]));
  const fit = (coordinates: (obs: number[][]) => Coordinate[]) => ({
    l: { weights: mixtureWeights(lo.length, config.priorWeight), coordinates: coordinates(lo) },
    g: { weights: mixtureWeights(hi.length, config.priorWeight), coordinates: coordinates(hi) },
  });
  switch (spec.type) {
    case 'float':
    case 'int': {
      const { low, high } = internalBounds(spec);
      if (!(high > low)) {
        const only = decodeParam(spec, [low]) as number;
        return { name, only, ...fit(() => []), decode: () => ({ value: only, points: [] }) };
      }
      return {
        name,
        ...fit((obs) => [numericCoordinate(obs.map((e) => e[0]!), low, high, config)]),
        decode: (raw) => {
          const value = decodeParam(spec, raw) as number;
          return { value, points: [{ x: spec.log ? Math.log(value) : value, cell: internalCell(spec, value) }] };
        },
      };
    }
    case 'choice':
    case 'boolean': {
      const k = spec.type === 'choice' ? spec.values.length : 2;
      return {
        name,
        ...fit((obs) => [categoricalCoordinate(k, obs.map((e) => e[0]!), config.priorWeight)]),
        decode: (raw) => ({ value: decodeParam(spec, raw), points: [{ x: raw[0]! }] }),
      };
    }
    case 'agentSet':
      return {
        name,
        ...fit((obs) => spec.candidates.map((_, j) => categoricalCoordinate(2, obs.map((m) => m[j]!), config.priorWeight))),
        decode: (raw, rng) => {
          const mask = repairTeam(spec, raw, rng);
          return { value: decodeParam(spec, mask), points: mask.map((x) => ({ x })) };
        },
      };
  }
}

/** erfc with fractional error below 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit), good in the tails. */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** P(a ≤ Z ≤ b) for a standard normal, computed in whichever tail keeps precision. */
function normalMass(a: number, b: number): number {
  if (a >= 0) return 0.5 * (erfc(a / Math.SQRT2) - erfc(b / Math.SQRT2));
  if (b <= 0) return 0.5 * (erfc(-b / Math.SQRT2) - erfc(-a / Math.SQRT2));
  return 1 - 0.5 * erfc(-a / Math.SQRT2) - 0.5 * erfc(b / Math.SQRT2);
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

function logSumExp(xs: readonly number[]): number {
  let max = -Infinity;
  for (const x of xs) if (x > max) max = x;
  if (max === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - max);
  return max + Math.log(s);
}

/**
 * The log score of kernel k of a coordinate at a point: a choice's
 * probability; a Gaussian's truncated density (or mass on the cell), times σ
 * with equal heights.
 */
function kernelLogScore(c: Coordinate, k: number, p: Point): number {
  if (c.kind === 'categorical') return Math.log(c.rows[k]![p.x]!);
  const mu = c.mus[k]!;
  const s = c.sigmas[k]!;
  if (p.cell) return Math.log(Math.max(0, normalMass((p.cell.low - mu) / s, (p.cell.high - mu) / s))) + c.massBase[k]!;
  const z = (p.x - mu) / s;
  return -0.5 * z * z + c.densityBase[k]!;
}

/**
 * The log score of a mixture of product kernels at one point per
 * coordinate, over the given coordinates of some estimators built on the
 * same observations (so with the same kernel weights): log Σ_k w_k Π score_k.
 */
function logScore(estimators: readonly Estimator[], coordinates: readonly (readonly number[])[], points: readonly (readonly Point[])[]): number {
  const weights = estimators[0]!.weights;
  const terms = new Array<number>(weights.length);
  for (let k = 0; k < weights.length; k++) {
    const w = weights[k]!;
    if (!(w > 0)) {
      terms[k] = -Infinity;
      continue;
    }
    let sum = Math.log(w);
    for (let m = 0; m < estimators.length; m++) {
      const e = estimators[m]!;
      const cs = coordinates[m]!;
      const ps = points[m]!;
      for (let i = 0; i < cs.length; i++) sum += kernelLogScore(e.coordinates[cs[i]!]!, k, ps[i]!);
    }
    terms[k] = sum;
  }
  return logSumExp(terms);
}

/** A draw from one truncated kernel, by rejection (mus lie inside the bounds and sigmas ≤ the range, so at least a third is kept). */
function drawTruncated(mu: number, sigma: number, low: number, high: number, rng: Random): number {
  for (let i = 0; i < 1000; i++) {
    const x = rng.normal(mu, sigma);
    if (x >= low && x <= high) return x;
  }
  return Math.min(high, Math.max(low, mu));
}

function drawFromKernel(c: Coordinate, k: number, rng: Random): number {
  return c.kind === 'categorical' ? rng.weighted(c.rows[k]!) : drawTruncated(c.mus[k]!, c.sigmas[k]!, c.low, c.high, rng);
}

/**
 * nEiCandidates candidates for the given parameters, drawn from their below
 * estimators; the one with the largest log l(x) − log g(x) is kept. Jointly:
 * one kernel per candidate for every coordinate, scored by the joint
 * mixtures. Otherwise every coordinate draws its own kernel, and the score
 * is the sum of the coordinates' own log ratios.
 */
function bestCandidate(models: readonly ParamModel[], nEiCandidates: number, joint: boolean, rng: Random): Params {
  const out: Params = {};
  const live: ParamModel[] = [];
  for (const m of models) {
    if (m.only !== undefined) out[m.name] = m.only;
    else live.push(m);
  }
  if (live.length === 0) return out;
  const ls = live.map((m) => m.l);
  const gs = live.map((m) => m.g);
  const all = live.map((m) => m.l.coordinates.map((_, i) => i));
  let best: Params = {};
  let bestScore = -Infinity;
  for (let c = 0; c < nEiCandidates; c++) {
    const shared = joint ? rng.weighted(ls[0]!.weights) : -1;
    const candidate: Params = {};
    const points: Point[][] = [];
    for (const m of live) {
      const raw = m.l.coordinates.map((coordinate) => drawFromKernel(coordinate, joint ? shared : rng.weighted(m.l.weights), rng));
      const decoded = m.decode(raw, rng);
      candidate[m.name] = decoded.value;
      points.push(decoded.points);
    }
    let score = 0;
    if (joint) score = logScore(ls, all, points) - logScore(gs, all, points);
    else {
      all.forEach((indices, m) =>
        indices.forEach((i) => {
          score += logScore([ls[m]!], [[i]], [[points[m]![i]!]]) - logScore([gs[m]!], [[i]], [[points[m]![i]!]]);
        }),
      );
    }
    if (c === 0 || score > bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return Object.assign(out, best);
}
