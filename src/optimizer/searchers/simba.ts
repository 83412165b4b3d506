/**
 * Stochastic mini-batch ascent, after DSPy's SIMBA optimizer for agent
 * programs: keep a small pool of the best candidates so far, draw a parent
 * from it by a softmax over their average scores, and propose a mutation of
 * it; every proposal names the mini-batch of evaluation examples it is to be
 * scored on, and a candidate's score is its average over every mini-batch it
 * was scored on.
 *
 * Each proposal, in order:
 *   1. Start-up: the first nStartupTrials proposals (and any made before a
 *      scored result exists) are uniform draws from the space.
 *   2. The pool is the best poolSize candidates by average loss (ties: the
 *      one told first), among every candidate told so far; a candidate that
 *      left it comes back if later results raise its average.
 *   3. Re-evaluation (only with nBatches > 1): with probability
 *      reevaluateRate, a pool candidate that is not pending and has not yet
 *      been scored on every mini-batch is drawn by the softmax and proposed
 *      again, unchanged, on a mini-batch it has not been scored on (drawn
 *      uniformly). A candidate that looks good on one easy batch is so
 *      checked on others before it breeds for long; averages are plain, so
 *      until then batches of unequal difficulty do bias the ranking.
 *   4. Otherwise, mutation: a parent is drawn by the softmax; each parameter
 *      that has more than one value is mutated with probability
 *      mutationRate (at least one always is):
 *        - float / int: a Gaussian step on the internal scale (ln for a log
 *          parameter) with standard deviation scale × (internal range),
 *          clipped to the bounds and snapped to the grid; a grid value the
 *          step did not move goes one grid step in the step's direction;
 *        - choice: another value, uniformly; boolean: flipped;
 *        - agentSet: one move drawn uniformly among those the size bounds
 *          allow — add a non-member, drop a member, or swap a member for a
 *          non-member.
 *      The scale shrinks slowly with the scored results after start-up:
 *      scale = mutationScale / sqrt(1 + (results − nStartupTrials) / 50),
 *      e.g. 0.15 at first and 0.075 after 150 results past start-up.
 *      A mutation that repeats a scored, pending or just-proposed candidate is
 *      drawn again (from a new parent), up to 32 times, then a uniform draw
 *      is tried as many times; only when all of those repeat is a repeat
 *      proposed. The mini-batch of a new candidate is round-robin:
 *      (proposals made so far) mod nBatches.
 *
 * The softmax: pool losses are normalised to [0, 1] by the pool's min and
 * max (1 = best), so the temperature means the same on any scale of
 * objective; weight = exp((normalised − 1) / temperature). With the default
 * 0.2 the worst pool member is drawn about e^−5 ≈ 1/150 as often as the
 * best; a pool whose members all score the same is drawn uniformly.
 *
 * Results: a complete trial's value counts; a pruned trial counts with its
 * last intermediate value (one without any is ignored); a failed trial is
 * ignored. A trial told twice counts once. Losses are values negated for a
 * maximised objective.
 *
 * Mini-batches: each proposal carries `miniBatch` in 0..nBatches−1 and the
 * evaluator scores the candidate on that part of its examples, telling the
 * id back in the result's `miniBatch` (a result without one counts for the
 * average but not as covering a batch). simbaMiniBatch says which examples
 * a mini-batch is for a given number of examples and the options nBatches
 * and batchSize. nBatches 1 (the default) means every proposal is scored on
 * the whole set.
 *
 * Single-objective only: a study with several objectives is refused at init.
 *
 * Reads: init, ask (with the pending trials), tell. State: the space, the
 * options, the seed, the number of proposals made, the candidates told so
 * far with each of their scored results, and the ids of the trials told.
 */
import { z } from 'zod';
import { MabeamError } from '../../errors.ts';
import { checkSeed, deriveSeed, Random } from '../random.ts';
import {
  canonicalJson,
  decodeParam,
  defineSpace,
  encodeParam,
  internalBounds,
  paramNames,
  repairTeam,
  sampleSpace,
  type AgentSetParam,
  type NumericParam,
  type ParamSpec,
  type Params,
  type SearchSpace,
} from '../space.ts';
import { checkAskCount, checkPending, checkResult, digestOf, directionsSchema, lossOf, parseConfig } from './internals.ts';
import type { AskResult, BaseSearcherConfig, PendingTrial, Proposal, ProposalOrigin, Searcher, TrialResult } from './types.ts';

export interface SimbaConfig extends BaseSearcherConfig {
  /** Candidates kept in the pool parents are drawn from. Default 8. */
  poolSize?: number;
  /** Softmax temperature over the pool's scores normalised to [0, 1]. Default 0.2. */
  temperature?: number;
  /** Probability that each parameter is mutated (at least one always is). Default 0.3. */
  mutationRate?: number;
  /** Standard deviation of a numeric step, as a fraction of the parameter's internal range (shrinking slowly, see above). Default 0.15. */
  mutationScale?: number;
  /** Uniform proposals before the ascent starts. Default 8. */
  nStartupTrials?: number;
  /** Mini-batches the evaluation examples are split into. Default 1: the whole set. */
  nBatches?: number;
  /** Examples per mini-batch; null (the default): the examples split into nBatches parts as even as can be. */
  batchSize?: number | null;
  /** Probability of re-proposing a pool candidate on a mini-batch it has not been scored on (only with nBatches > 1). Default 0.2. */
  reevaluateRate?: number;
}

export type ResolvedSimbaConfig = Required<SimbaConfig>;

export const simbaDefaults: Readonly<Omit<ResolvedSimbaConfig, 'directions'>> = Object.freeze({
  poolSize: 8,
  temperature: 0.2,
  mutationRate: 0.3,
  mutationScale: 0.15,
  nStartupTrials: 8,
  nBatches: 1,
  batchSize: null,
  reevaluateRate: 0.2,
});

const configSchema = z
  .object({
    directions: directionsSchema.refine((d) => d.length === 1, 'SIMBA handles one objective only; use the random searcher for several objectives'),
    poolSize: z.number().int().positive().default(simbaDefaults.poolSize),
    temperature: z.number().positive().finite().default(simbaDefaults.temperature),
    mutationRate: z.number().gt(0, 'must be above 0 (at least one parameter is always mutated)').lte(1).default(simbaDefaults.mutationRate),
    mutationScale: z.number().positive().lte(1, 'is a fraction of the parameter range: at most 1').default(simbaDefaults.mutationScale),
    nStartupTrials: z.number().int().nonnegative().default(simbaDefaults.nStartupTrials),
    nBatches: z.number().int().positive().default(simbaDefaults.nBatches),
    batchSize: z.number().int().positive().nullable().default(simbaDefaults.batchSize),
    reevaluateRate: z.number().gte(0).lte(1).default(simbaDefaults.reevaluateRate),
  })
  .strict();

/** One scored result of a candidate. */
export interface SimbaEvaluation {
  trialId: string;
  /** The mini-batch it was scored on, or null when the result did not say. */
  miniBatch: number | null;
  /** Loss (minimised): the value, negated for a maximised objective. */
  loss: number;
}

/** A set of params told at least once with a score. */
export interface SimbaCandidate {
  /** canonicalJson(params): equal params, one candidate. */
  key: string;
  params: Params;
  /** In the order told. */
  evaluations: SimbaEvaluation[];
}

export interface SimbaState {
  searcher: 'simba';
  space: SearchSpace;
  config: ResolvedSimbaConfig;
  seed: number;
  /** Proposals made so far: the next proposal draws from deriveSeed(seed, proposed). */
  proposed: number;
  /** Every candidate with a scored result, in the order first told. */
  candidates: SimbaCandidate[];
  /** Ids of the trials told (scored or not), so that a trial told twice counts once. */
  told: string[];
  /** Failed trials told so far. */
  failed: number;
}

/** A mutation is drawn this many times before falling back to a uniform draw, which is tried as many times. */
const ATTEMPTS = 32;
/** Results after start-up over which the mutation scale shrinks by 1/sqrt(2). */
const SCALE_RESULTS = 50;

export const simbaSearcher: Searcher<SimbaState, SimbaConfig> = {
  name: 'simba',

  init(space: SearchSpace, config: SimbaConfig, seed: number): SimbaState {
    if (Array.isArray(config?.directions) && config.directions.length > 1) {
      throw new MabeamError('INVALID_OPTIONS', `The SIMBA searcher handles one objective only, and this study has ${config.directions.length} (${config.directions.join(', ')}); use the random searcher for several objectives`);
    }
    const resolved = parseConfig(configSchema, config, 'simba') as ResolvedSimbaConfig;
    return { searcher: 'simba', space: defineSpace(space), config: resolved, seed: checkSeed(seed), proposed: 0, candidates: [], told: [], failed: 0 };
  },

  ask(state: SimbaState, n: number, pending: readonly PendingTrial[] = []): AskResult<SimbaState> {
    checkAskCount(n);
    checkPending(state.space, pending);
    const proposals: Proposal[] = [];
    const running = pending.map((p) => p.params);
    const busy = new Set(running.map(canonicalJson));
    const toldKeys = new Set(state.candidates.map((c) => c.key));
    const pool = simbaPool(state);
    let current = state;
    for (let i = 0; i < n; i++) {
      const seed = deriveSeed(current.seed, current.proposed);
      const digest = digestOf({ state: current, pending: running });
      const { params, miniBatch, origin } = propose(current, pool, toldKeys, busy, Random.fromSeed(seed));
      proposals.push({ params, seed, digest, miniBatch, origin });
      running.push(params);
      busy.add(canonicalJson(params));
      current = { ...current, proposed: current.proposed + 1 };
    }
    return { state: current, proposals };
  },

  skip(state, _params) {
    return { ...state, proposed: state.proposed + 1 };
  },

  tell(state: SimbaState, trial: TrialResult): SimbaState {
    checkResult(state.space, state.config.directions, trial);
    const { miniBatch } = trial;
    if (miniBatch !== undefined && !(Number.isInteger(miniBatch) && miniBatch >= 0 && miniBatch < state.config.nBatches)) {
      throw new MabeamError('VALIDATION_FAILED', `Trial ${trial.id}: miniBatch must be a whole number in 0..${state.config.nBatches - 1}, not ${JSON.stringify(miniBatch)}`, { details: { trialId: trial.id } });
    }
    // A trial is counted once: a second report of a told trial changes nothing.
    if (state.told.includes(trial.id)) return state;
    const told = [...state.told, trial.id];
    if (trial.status === 'failed') return { ...state, told, failed: state.failed + 1 };
    const value = trial.values?.[0];
    if (value === undefined) return { ...state, told };
    const evaluation: SimbaEvaluation = { trialId: trial.id, miniBatch: miniBatch ?? null, loss: lossOf(value, state.config.directions[0]!) };
    const key = canonicalJson(trial.params);
    const at = state.candidates.findIndex((c) => c.key === key);
    const candidates =
      at < 0
        ? [...state.candidates, { key, params: trial.params, evaluations: [evaluation] }]
        : state.candidates.map((c, i) => (i === at ? { ...c, evaluations: [...c.evaluations, evaluation] } : c));
    return { ...state, told, candidates };
  },
};

// ---- pool and softmax -----------------------------------------------------

/** A candidate's average loss over its scored results. */
export function averageLoss(candidate: SimbaCandidate): number {
  let sum = 0;
  for (const e of candidate.evaluations) sum += e.loss;
  return sum / candidate.evaluations.length;
}

/** The pool: the best poolSize candidates by average loss, best first, ties in the order first told. */
export function simbaPool(state: SimbaState): SimbaCandidate[] {
  const scored = state.candidates.map((c, i) => ({ c, i, loss: averageLoss(c) }));
  scored.sort((a, b) => (a.loss < b.loss ? -1 : a.loss > b.loss ? 1 : a.i - b.i));
  return scored.slice(0, state.config.poolSize).map((s) => s.c);
}

/**
 * Softmax weights of the given pool members: their average losses
 * normalised by the min and max over the whole pool (finite ones; an
 * infinite loss is the worst or the best there is), 1 for the best.
 */
function softmaxWeights(members: readonly SimbaCandidate[], pool: readonly SimbaCandidate[], temperature: number): number[] {
  const finite = pool.map(averageLoss).filter((l) => Number.isFinite(l));
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  const scores = members.map((m) => {
    const loss = averageLoss(m);
    return loss === -Infinity ? 1 : loss === Infinity ? 0 : max > min ? (max - loss) / (max - min) : 1;
  });
  // Shifted by the members' best score: the same draw, and no weight underflows to all zeros at a small temperature.
  const top = Math.max(...scores);
  return scores.map((score) => Math.exp((score - top) / temperature));
}

// ---- one proposal ---------------------------------------------------------

function propose(state: SimbaState, pool: readonly SimbaCandidate[], toldKeys: ReadonlySet<string>, busy: ReadonlySet<string>, rng: Random): { params: Params; miniBatch: number; origin: ProposalOrigin } {
  const uniform: ProposalOrigin = { kind: 'uniform' };
  const { config, space } = state;
  const roundRobin = state.proposed % config.nBatches;
  const taken = (params: Params) => {
    const key = canonicalJson(params);
    return busy.has(key) || toldKeys.has(key);
  };
  if (state.proposed < config.nStartupTrials || pool.length === 0) return { params: uniformFresh(space, taken, rng), miniBatch: roundRobin, origin: uniform };

  if (config.nBatches > 1 && rng.float() < config.reevaluateRate) {
    const eligible = pool.filter((c) => !busy.has(c.key) && batchesLeft(c, config.nBatches).length > 0);
    if (eligible.length > 0) {
      const chosen = eligible[rng.weighted(softmaxWeights(eligible, pool, config.temperature))]!;
      return { params: chosen.params, miniBatch: rng.pick(batchesLeft(chosen, config.nBatches)), origin: { kind: 'reevaluation', parent: chosen.params } };
    }
  }

  const weights = softmaxWeights(pool, pool, config.temperature);
  const results = state.candidates.reduce((s, c) => s + c.evaluations.length, 0);
  const scale = config.mutationScale / Math.sqrt(1 + Math.max(0, results - config.nStartupTrials) / SCALE_RESULTS);
  let params: Params = {};
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const parent = pool[rng.weighted(weights)]!.params;
    params = mutate(space, parent, config.mutationRate, scale, rng);
    if (!taken(params)) {
      const mutated = paramNames(space).filter((name) => canonicalJson(params[name]) !== canonicalJson(parent[name]));
      return { params, miniBatch: roundRobin, origin: { kind: 'mutation', parent, mutated } };
    }
  }
  return { params: uniformFresh(space, taken, rng, params), miniBatch: roundRobin, origin: uniform };
}

/** The mini-batches a candidate has not been scored on yet, in order. */
function batchesLeft(candidate: SimbaCandidate, nBatches: number): number[] {
  const seen = new Set(candidate.evaluations.map((e) => e.miniBatch));
  const out: number[] = [];
  for (let b = 0; b < nBatches; b++) if (!seen.has(b)) out.push(b);
  return out;
}

/** A uniform draw that is not taken, trying ATTEMPTS times; else the fallback (or the last draw). */
function uniformFresh(space: SearchSpace, taken: (p: Params) => boolean, rng: Random, fallback?: Params): Params {
  let params: Params = {};
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    params = sampleSpace(space, rng);
    if (!taken(params)) return params;
  }
  return fallback ?? params;
}

/** Whether a parameter has more than one value, so that a mutation can change it. */
function movable(spec: ParamSpec): boolean {
  switch (spec.type) {
    case 'float':
    case 'int':
      return spec.high > spec.low;
    case 'choice':
      return spec.values.length > 1;
    case 'boolean':
      return true;
    case 'agentSet': {
      const min = spec.minSize ?? 1;
      const max = spec.maxSize ?? spec.candidates.length;
      return !(min === max && (min === 0 || min === spec.candidates.length));
    }
  }
}

/** A mutated copy of parent: each parameter that can change with probability rate, at least one. */
function mutate(space: SearchSpace, parent: Params, rate: number, scale: number, rng: Random): Params {
  const out: Params = {};
  for (const name of paramNames(space)) out[name] = parent[name];
  const names = paramNames(space).filter((name) => movable(space[name]!));
  if (names.length === 0) return out;
  const chosen = names.map(() => rng.float() < rate);
  if (!chosen.some(Boolean)) chosen[rng.int(0, names.length - 1)] = true;
  names.forEach((name, i) => {
    if (chosen[i]) out[name] = mutateParam(space[name]!, parent[name], scale, rng);
  });
  return out;
}

function mutateParam(spec: ParamSpec, value: unknown, scale: number, rng: Random): unknown {
  switch (spec.type) {
    case 'float':
    case 'int':
      return mutateNumeric(spec, value as number, scale, rng);
    case 'choice': {
      const index = encodeParam(spec, value)[0]!;
      if (spec.values.length < 2) return value;
      const other = rng.int(0, spec.values.length - 2);
      return spec.values[other >= index ? other + 1 : other];
    }
    case 'boolean':
      return value !== true;
    case 'agentSet':
      return mutateTeam(spec, value as string[], rng);
  }
}

function mutateNumeric(spec: NumericParam, value: number, scale: number, rng: Random): number {
  const { low, high } = internalBounds(spec);
  if (!(high > low) || spec.low === spec.high) return value;
  const x = encodeParam(spec, value)[0]!;
  const delta = rng.normal(0, scale * (high - low));
  const moved = decodeParam(spec, [Math.min(high, Math.max(low, x + delta))]) as number;
  const step = spec.step ?? (spec.type === 'int' ? 1 : undefined);
  if (moved !== value || step === undefined) return moved;
  // A grid value the step did not move: one grid step its way, or the other way at a bound.
  const up = decodeParam(spec, [encodeParam(spec, Math.min(spec.high, value + step))[0]!]) as number;
  const down = decodeParam(spec, [encodeParam(spec, Math.max(spec.low, value - step))[0]!]) as number;
  if (delta >= 0) return up !== value ? up : down;
  return down !== value ? down : up;
}

/** One move the size bounds allow, drawn uniformly: add a non-member, drop a member, or swap one for the other. */
function mutateTeam(spec: AgentSetParam, team: readonly string[], rng: Random): string[] {
  const mask = encodeParam(spec, team);
  const members = mask.flatMap((m, i) => (m === 1 ? [i] : []));
  const others = mask.flatMap((m, i) => (m === 0 ? [i] : []));
  const min = spec.minSize ?? 1;
  const max = spec.maxSize ?? spec.candidates.length;
  const moves: Array<'add' | 'drop' | 'swap'> = [];
  if (others.length > 0 && members.length < max) moves.push('add');
  if (members.length > 0 && members.length > min) moves.push('drop');
  if (others.length > 0 && members.length > 0) moves.push('swap');
  if (moves.length === 0) return [...team];
  const move = rng.pick(moves);
  if (move !== 'drop') mask[rng.pick(others)] = 1;
  if (move !== 'add') mask[rng.pick(members)] = 0;
  return decodeParam(spec, repairTeam(spec, mask, rng)) as string[];
}

/**
 * The examples mini-batch `miniBatch` stands for, out of nExamples (indices
 * 0..nExamples−1): with batchSize null, the examples split into nBatches
 * contiguous parts as even as can be; with a batchSize, that many examples
 * from miniBatch × batchSize on, wrapping around (never more than every
 * example). Shuffle the examples once, by a seed of the study's own, before
 * indexing them if their order means anything.
 */
export function simbaMiniBatch(config: Pick<ResolvedSimbaConfig, 'nBatches' | 'batchSize'>, miniBatch: number, nExamples: number): number[] {
  const { nBatches, batchSize } = config;
  if (!Number.isInteger(miniBatch) || miniBatch < 0 || miniBatch >= nBatches) {
    throw new MabeamError('VALIDATION_FAILED', `A mini-batch id must be a whole number in 0..${nBatches - 1}, not ${miniBatch}`);
  }
  if (!Number.isInteger(nExamples) || nExamples < 0) throw new MabeamError('VALIDATION_FAILED', `The number of examples must be a whole number >= 0, not ${nExamples}`);
  if (batchSize === null) {
    const from = Math.floor((miniBatch * nExamples) / nBatches);
    const to = Math.floor(((miniBatch + 1) * nExamples) / nBatches);
    return Array.from({ length: to - from }, (_, i) => from + i);
  }
  const size = Math.min(batchSize, nExamples);
  return Array.from({ length: size }, (_, i) => (miniBatch * batchSize + i) % nExamples);
}
