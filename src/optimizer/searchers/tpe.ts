/**
 * Tree-structured Parzen Estimator, univariate, after Optuna's TPESampler
 * with its defaults (n_startup_trials 10, n_ei_candidates 24,
 * gamma(n) = min(ceil(0.1 n), 25), prior weight 1, magic clip on,
 * consider_endpoints off, Optuna's default weights: flat for the newest 25
 * observations, a linear ramp for older ones).
 *
 * Each proposal: rank the observations (complete trials by loss, then pruned
 * trials by how far they got, then — the constant liar — pending trials, as
 * if they were worse than anything observed); the best gamma(n) make the
 * "below" group, the rest "above". For each parameter on its own, fit a
 * Parzen estimator to each group (truncated Gaussians on the internal scale,
 * ln for log parameters, with a prior kernel; a smoothed histogram for
 * choices and booleans), draw 24 candidates from the below estimator and keep
 * the one with the largest log l(x) − log g(x).
 *
 * An agentSet is modelled as one boolean per candidate (each a smoothed
 * two-bin histogram, as a boolean parameter); a candidate team is drawn bit
 * by bit from the below estimators, repaired to minSize..maxSize by adding or
 * dropping random members, and scored by the sum of its bits' log ratios.
 * That generalises across teams that share members, where a categorical over
 * all subsets would learn nothing about a team until it has tried it.
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
  type AgentSetParam,
  type NumericParam,
  type Params,
  type SearchSpace,
} from '../space.ts';
import { checkAskCount, checkPending, checkResult, digestOf, directionsSchema, lossOf, parseConfig } from './internals.ts';
import type { AskResult, BaseSearcherConfig, PendingTrial, Proposal, Searcher, TrialResult } from './types.ts';

export interface TpeConfig extends BaseSearcherConfig {
  /** Proposals are uniform until this many trials are complete or pruned. Default 10. */
  nStartupTrials?: number;
  /** Candidates drawn from the below estimator per parameter. Default 24. */
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
}

export type ResolvedTpeConfig = Required<TpeConfig>;

export const tpeDefaults: Readonly<Omit<ResolvedTpeConfig, 'directions'>> = Object.freeze({
  nStartupTrials: 10,
  nEiCandidates: 24,
  gammaRatio: 0.1,
  gammaMax: 25,
  priorWeight: 1,
  considerMagicClip: true,
  considerEndpoints: false,
  constantLiar: true,
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
  })
  .strict();

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
}

export const tpeSearcher: Searcher<TpeState, TpeConfig> = {
  name: 'tpe',

  init(space: SearchSpace, config: TpeConfig, seed: number): TpeState {
    if (Array.isArray(config?.directions) && config.directions.length > 1) {
      throw new MabeamError('INVALID_OPTIONS', `The TPE searcher handles one objective only, and this study has ${config.directions.length} (${config.directions.join(', ')}); use the random searcher for several objectives`);
    }
    const resolved = parseConfig(configSchema, config, 'tpe') as ResolvedTpeConfig;
    return { searcher: 'tpe', space: defineSpace(space), config: resolved, seed: checkSeed(seed), proposed: 0, observations: [], failed: 0 };
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
      const digest = digestOf({ state: current, pending: considered });
      const params = propose(current, considered, Random.fromSeed(seed));
      proposals.push({ params, seed, digest });
      running.push(params);
      current = { ...current, proposed: current.proposed + 1 };
    }
    return { state: current, proposals };
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
    return { ...state, observations: [...state.observations, observation] };
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

function propose(state: TpeState, pending: readonly Params[], rng: Random): Params {
  const { observations, config, space } = state;
  const complete = observations.filter((o) => o.status === 'complete').length;
  if (observations.length < config.nStartupTrials || complete === 0) return sampleSpace(space, rng);

  // Chronological list of everything ranked: told trials, then pending ones.
  const ranked = [...observations.map((o) => ({ params: o.params, key: rankKey(o) })), ...pending.map((params) => ({ params, key: [3, 0, 0] as RankKey }))];
  const nBelow = Math.min(Math.ceil(config.gammaRatio * ranked.length), config.gammaMax);
  const order = ranked.map((_, i) => i).sort((i, j) => compareKeys(ranked[i]!.key, ranked[j]!.key) || i - j);
  const belowSet = new Set(order.slice(0, nBelow));
  const below = ranked.filter((_, i) => belowSet.has(i)).map((r) => r.params);
  const above = ranked.filter((_, i) => !belowSet.has(i)).map((r) => r.params);

  const out: Params = {};
  for (const name of paramNames(space)) {
    const spec = space[name]!;
    const lo = below.map((p) => encodeParam(spec, p[name]));
    const hi = above.map((p) => encodeParam(spec, p[name]));
    switch (spec.type) {
      case 'float':
      case 'int':
        out[name] = sampleNumeric(spec, lo.map((e) => e[0]!), hi.map((e) => e[0]!), config, rng);
        break;
      case 'choice':
      case 'boolean': {
        const k = spec.type === 'choice' ? spec.values.length : 2;
        const index = sampleCategorical(k, lo.map((e) => e[0]!), hi.map((e) => e[0]!), config, rng);
        out[name] = decodeParam(spec, [index]);
        break;
      }
      case 'agentSet':
        out[name] = decodeParam(spec, sampleTeam(spec, lo, hi, config, rng));
        break;
    }
  }
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

// ---- numeric parameters ---------------------------------------------------

interface Mixture {
  weights: number[];
  mus: number[];
  sigmas: number[];
  low: number;
  high: number;
}

function numericMixture(obs: readonly number[], low: number, high: number, config: ResolvedTpeConfig): Mixture {
  const range = high - low;
  const priorMu = 0.5 * (low + high);
  const withPrior = [...obs, priorMu];
  const order = withPrior.map((_, i) => i).sort((i, j) => withPrior[i]! - withPrior[j]! || i - j);
  const sorted = [low, ...order.map((i) => withPrior[i]!), high];
  const sortedSigmas: number[] = [];
  for (let i = 1; i < sorted.length - 1; i++) sortedSigmas.push(Math.max(sorted[i]! - sorted[i - 1]!, sorted[i + 1]! - sorted[i]!));
  if (!config.considerEndpoints && sorted.length >= 4) {
    sortedSigmas[0] = sorted[2]! - sorted[1]!;
    sortedSigmas[sortedSigmas.length - 1] = sorted[sorted.length - 2]! - sorted[sorted.length - 3]!;
  }
  const sigmas = new Array<number>(withPrior.length);
  order.forEach((original, rank) => (sigmas[original] = sortedSigmas[rank]!));
  const minSigma = config.considerMagicClip ? range / Math.min(100, 1 + obs.length + 1) : 1e-12;
  const clipped = sigmas.slice(0, obs.length).map((s) => Math.min(range, Math.max(minSigma, s)));
  return {
    weights: mixtureWeights(obs.length, config.priorWeight),
    mus: obs.length === 0 ? [priorMu] : withPrior,
    sigmas: obs.length === 0 ? [range] : [...clipped, range],
    low,
    high,
  };
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

/** log density (or, with a cell, log mass) of the truncated mixture at x. */
function mixtureLogPdf(m: Mixture, x: number, cell: { low: number; high: number } | undefined): number {
  const terms = m.mus.map((mu, k) => {
    const s = m.sigmas[k]!;
    const z = normalMass((m.low - mu) / s, (m.high - mu) / s);
    const w = m.weights[k]!;
    if (w <= 0 || z <= 0) return -Infinity;
    const p = cell
      ? Math.log(Math.max(0, normalMass((cell.low - mu) / s, (cell.high - mu) / s)))
      : -0.5 * ((x - mu) / s) ** 2 - Math.log(s) - LOG_SQRT_2PI;
    return Math.log(w) + p - Math.log(z);
  });
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

function sampleNumeric(spec: NumericParam, below: readonly number[], above: readonly number[], config: ResolvedTpeConfig, rng: Random): number {
  const { low, high } = internalBounds(spec);
  if (!(high > low)) return decodeParam(spec, [low]) as number;
  const l = numericMixture(below, low, high, config);
  const g = numericMixture(above, low, high, config);
  let best = NaN;
  let bestScore = -Infinity;
  for (let c = 0; c < config.nEiCandidates; c++) {
    const k = rng.weighted(l.weights);
    const raw = drawTruncated(l.mus[k]!, l.sigmas[k]!, low, high, rng);
    const value = decodeParam(spec, [raw]) as number;
    const cell = internalCell(spec, value);
    const x = spec.log ? Math.log(value) : value;
    const score = mixtureLogPdf(l, x, cell) - mixtureLogPdf(g, x, cell);
    if (Number.isNaN(best) || score > bestScore) {
      best = value;
      bestScore = score;
    }
  }
  return best;
}

// ---- categorical parameters -----------------------------------------------

/** The mixture's marginal over k choices: each observation a one-hot smoothed by priorWeight / kernels, plus a uniform prior kernel. */
function categoricalMarginal(k: number, obs: readonly number[], priorWeight: number): number[] {
  if (obs.length === 0) return new Array<number>(k).fill(1 / k);
  const kernels = obs.length + 1;
  const weights = mixtureWeights(obs.length, priorWeight);
  const smoothing = priorWeight / kernels;
  const rowTotal = smoothing * k + 1;
  const p = new Array<number>(k).fill(weights[obs.length]! / k);
  obs.forEach((index, i) => {
    const w = weights[i]!;
    for (let c = 0; c < k; c++) p[c]! += (w * (smoothing + (c === index ? 1 : 0))) / rowTotal;
  });
  return p;
}

function sampleCategorical(k: number, below: readonly number[], above: readonly number[], config: ResolvedTpeConfig, rng: Random): number {
  const l = categoricalMarginal(k, below, config.priorWeight);
  const g = categoricalMarginal(k, above, config.priorWeight);
  let best = -1;
  let bestScore = -Infinity;
  for (let c = 0; c < config.nEiCandidates; c++) {
    const index = rng.weighted(l);
    const score = Math.log(l[index]!) - Math.log(g[index]!);
    if (best < 0 || score > bestScore) {
      best = index;
      bestScore = score;
    }
  }
  return best;
}

function sampleTeam(spec: AgentSetParam, below: readonly number[][], above: readonly number[][], config: ResolvedTpeConfig, rng: Random): number[] {
  const bits = spec.candidates.map((_, j) => ({
    l: categoricalMarginal(2, below.map((m) => m[j]!), config.priorWeight),
    g: categoricalMarginal(2, above.map((m) => m[j]!), config.priorWeight),
  }));
  let best: number[] = [];
  let bestScore = -Infinity;
  for (let c = 0; c < config.nEiCandidates; c++) {
    const mask = repairTeam(spec, bits.map((b) => rng.weighted(b.l)), rng);
    let score = 0;
    mask.forEach((bit, j) => (score += Math.log(bits[j]!.l[bit]!) - Math.log(bits[j]!.g[bit]!)));
    if (best.length === 0 || score > bestScore) {
      best = mask;
      bestScore = score;
    }
  }
  return best;
}
