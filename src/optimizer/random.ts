/**
 * Seeded randomness for the optimizer. Every draw a searcher makes comes from
 * a generator whose seed (a 32-bit integer) or state (four 32-bit integers, a
 * plain array) can be written into a log event; replaying the events rebuilds
 * the same generator and so the same proposals. Nothing here reads the clock
 * or Math.random.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';
import { MabeamError } from '../errors.ts';

/** The generator's state as JSON: four 32-bit integers. */
export type RandomState = number[];

/** Murmur3's finaliser: a bijection of 32-bit integers that spreads every input bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The seed of the `index`-th draw stream of a study seeded with `seed`
 * (an unsigned 32-bit integer). Counter-based, so the k-th proposal's seed
 * depends only on the study seed and k: a fold that is resumed need not
 * replay the draws of earlier proposals to know it.
 */
export function deriveSeed(seed: number, index: number): number {
  return fmix32((fmix32(seed >>> 0) ^ Math.imul((index >>> 0) + 1, 0x9e3779b9)) >>> 0);
}

/** Refuses a seed that is not a safe integer (seeds travel in events, so they must be exact). */
export function checkSeed(seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new MabeamError('VALIDATION_FAILED', `A random seed must be a whole number, not ${JSON.stringify(seed) ?? String(seed)}`);
  }
  return seed >>> 0;
}

/**
 * A mutable wrapper over xoroshiro128+ for use inside one fold step: build it
 * from a seed or a state, draw, then keep `state()` in the fold's state.
 */
export class Random {
  private readonly rng: JumpableRandomGenerator;

  private constructor(rng: JumpableRandomGenerator) {
    this.rng = rng;
  }

  static fromSeed(seed: number): Random {
    return new Random(xoroshiro128plus(checkSeed(seed) | 0));
  }

  static fromState(state: readonly number[]): Random {
    if (state.length !== 4 || !state.every((n) => Number.isInteger(n))) {
      throw new MabeamError('VALIDATION_FAILED', `A random state must be four whole numbers, not ${JSON.stringify(state)}`);
    }
    return new Random(xoroshiro128plusFromState(state));
  }

  /** The state to write down; a Random built from it draws what this one would draw next. */
  state(): RandomState {
    return [...this.rng.getState()];
  }

  /** Uniform in [0, 1). */
  float(): number {
    return uniformFloat64(this.rng);
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.float();
  }

  /** Uniform integer in [low, high], both included. */
  int(low: number, high: number): number {
    if (!Number.isInteger(low) || !Number.isInteger(high) || low > high) throw new RangeError(`int(${low}, ${high}): bounds must be whole numbers with low <= high`);
    return uniformInt(this.rng, low, high);
  }

  /** An unsigned 32-bit integer (a seed for another stream). */
  uint32(): number {
    return this.rng.next() >>> 0;
  }

  /**
   * Normal by the Box–Muller transform. Only the cosine half of each pair is
   * used, so that no draw is cached outside `state()`.
   */
  normal(mean = 0, sd = 1): number {
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** An index drawn with probability proportional to its (non-negative) weight. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    if (!(total > 0)) throw new RangeError('weighted draw needs a positive total weight');
    let u = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i] as number;
      if (u < 0) return i;
    }
    // Rounding left a sliver: the last index with a positive weight.
    for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] as number) > 0) return i;
    return weights.length - 1;
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = out[i] as T;
      out[i] = out[j] as T;
      out[j] = t;
    }
    return out;
  }
}
