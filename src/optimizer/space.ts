/**
 * A study's search space, declared as plain JSON data: one entry per
 * parameter (float, int, choice, boolean, agentSet = a team drawn from
 * candidates). Parameter values are plain JSON too.
 *
 * Besides validation, this file holds what every searcher needs: uniform
 * sampling, checking a set of values, and the encoding to the internal
 * representation searchers model:
 *   - float / int: one number, ln(value) for a log parameter;
 *   - choice: the index of the value; boolean: 0 (false) or 1 (true);
 *   - agentSet: one 0/1 per candidate (1 = in the team), in candidate order.
 * Parameters are always visited in sorted name order, so the same space
 * written with its keys in another order draws the same values.
 */
import { z } from 'zod';
import { MabeamError } from '../errors.ts';
import type { Random } from './random.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface FloatParam {
  type: 'float';
  low: number;
  high: number;
  /** Sample and model ln(value): for scales such as learning rates (low must be > 0). */
  log?: boolean;
  /** Values are low, low + step, …, high. */
  step?: number;
}
export interface IntParam {
  type: 'int';
  low: number;
  high: number;
  log?: boolean;
  /** Default 1. */
  step?: number;
}
export interface ChoiceParam {
  type: 'choice';
  values: JsonValue[];
}
export interface BooleanParam {
  type: 'boolean';
}
/** A team composition: a subset of the candidates with minSize ≤ size ≤ maxSize. */
export interface AgentSetParam {
  type: 'agentSet';
  candidates: string[];
  /** Default 1. */
  minSize?: number;
  /** Default: every candidate. */
  maxSize?: number;
}
export type ParamSpec = FloatParam | IntParam | ChoiceParam | BooleanParam | AgentSetParam;
export type NumericParam = FloatParam | IntParam;

/** Parameter name → its declaration. */
export type SearchSpace = Record<string, ParamSpec>;
/** Parameter name → its value. */
export type Params = Record<string, unknown>;

/** JSON with object keys sorted: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ---- validation -----------------------------------------------------------

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.null(), z.boolean(), z.number().finite(), z.string(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);
const finite = z.number().finite();
const numericShape = { low: finite, high: finite, log: z.boolean().optional(), step: finite.positive().optional() };
const paramSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('float'), ...numericShape }).strict(),
  z.object({ type: z.literal('int'), ...numericShape, low: finite.int(), high: finite.int(), step: finite.int().positive().optional() }).strict(),
  z.object({ type: z.literal('choice'), values: z.array(jsonValue).min(1, 'must list at least one value') }).strict(),
  z.object({ type: z.literal('boolean') }).strict(),
  z
    .object({
      type: z.literal('agentSet'),
      candidates: z.array(z.string().min(1)).min(1, 'must list at least one candidate'),
      minSize: finite.int().nonnegative().optional(),
      maxSize: finite.int().positive().optional(),
    })
    .strict(),
]);
const spaceSchema = z
  .record(z.string(), paramSchema)
  .refine((s) => Object.keys(s).length > 0, 'a search space needs at least one parameter');

/** Cross-field rules, each message saying what would be right. */
function problemsOf(name: string, p: z.infer<typeof paramSchema>): string[] {
  const out: string[] = [];
  const say = (m: string) => out.push(`${name}: ${m}`);
  if (!/^[A-Za-z_][A-Za-z0-9_.:-]*$/.test(name)) say('a parameter name must start with a letter or _ and hold letters, digits and _ . : - only');
  switch (p.type) {
    case 'float':
    case 'int': {
      if (p.low > p.high) say(`low (${p.low}) must not exceed high (${p.high})`);
      if (p.log && p.low <= 0) say(`a log-scale parameter needs low > 0, not ${p.low}`);
      if (p.log && p.step !== undefined && !(p.type === 'int' && p.step === 1)) say('log and step cannot be combined (use one or the other)');
      if (p.step !== undefined && p.low <= p.high) {
        const k = (p.high - p.low) / p.step;
        if (Math.abs(k - Math.round(k)) > 1e-9 * Math.max(1, k)) say(`high - low (${p.high - p.low}) must be a whole number of steps of ${p.step}; e.g. high = ${p.low + Math.floor(k) * p.step}`);
      }
      break;
    }
    case 'choice': {
      const seen = new Set<string>();
      for (const v of p.values) {
        const key = canonicalJson(v);
        if (seen.has(key)) say(`the value ${key} is listed twice`);
        seen.add(key);
      }
      break;
    }
    case 'agentSet': {
      const dup = p.candidates.filter((c, i) => p.candidates.indexOf(c) !== i);
      if (dup.length > 0) say(`candidates listed twice: ${[...new Set(dup)].join(', ')}`);
      const min = p.minSize ?? 1;
      const max = p.maxSize ?? p.candidates.length;
      if (max > p.candidates.length) say(`maxSize (${max}) exceeds the number of candidates (${p.candidates.length})`);
      if (min > max) say(`minSize (${min}) must not exceed maxSize (${max})`);
      break;
    }
    case 'boolean':
      break;
  }
  return out;
}

/**
 * A checked search space with defaults filled in (int step 1, agentSet
 * minSize 1 and maxSize = every candidate), or a VALIDATION_FAILED error
 * whose message lists every problem.
 */
export function defineSpace(input: unknown): SearchSpace {
  const parsed = spaceSchema.safeParse(input);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || 'space'}: ${i.message}`).join('; ');
    throw new MabeamError('VALIDATION_FAILED', `Invalid search space: ${where}`, { details: { issues: parsed.error.issues } });
  }
  const problems = Object.entries(parsed.data).flatMap(([name, p]) => problemsOf(name, p));
  if (problems.length > 0) throw new MabeamError('VALIDATION_FAILED', `Invalid search space: ${problems.join('; ')}`, { details: { problems } });
  const space: SearchSpace = {};
  for (const name of Object.keys(parsed.data).sort()) {
    const p = parsed.data[name]!;
    switch (p.type) {
      case 'float':
        space[name] = { type: 'float', low: p.low, high: p.high, ...(p.log ? { log: true } : {}), ...(p.step !== undefined ? { step: p.step } : {}) };
        break;
      case 'int':
        space[name] = { type: 'int', low: p.low, high: p.high, ...(p.log ? { log: true } : {}), step: p.step ?? 1 };
        break;
      case 'choice':
        space[name] = { type: 'choice', values: p.values };
        break;
      case 'boolean':
        space[name] = { type: 'boolean' };
        break;
      case 'agentSet':
        space[name] = { type: 'agentSet', candidates: p.candidates, minSize: p.minSize ?? 1, maxSize: p.maxSize ?? p.candidates.length };
        break;
    }
  }
  return space;
}

/** The parameter names in the order every searcher visits them. */
export function paramNames(space: SearchSpace): string[] {
  return Object.keys(space).sort();
}

const sizeBounds = (p: AgentSetParam): [number, number] => [p.minSize ?? 1, p.maxSize ?? p.candidates.length];

// ---- checking values ------------------------------------------------------

/** Why a value does not fit its parameter, or undefined when it does. */
export function checkParam(spec: ParamSpec, value: unknown): string | undefined {
  const show = () => JSON.stringify(value) ?? String(value);
  switch (spec.type) {
    case 'float':
    case 'int': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a finite number, not ${show()}`;
      if (spec.type === 'int' && !Number.isInteger(value)) return `must be a whole number, not ${show()}`;
      const tol = 1e-9 * Math.max(1, Math.abs(spec.high - spec.low));
      if (value < spec.low - tol || value > spec.high + tol) return `${value} is outside [${spec.low}, ${spec.high}]`;
      if (spec.step !== undefined) {
        const k = (value - spec.low) / spec.step;
        if (Math.abs(k - Math.round(k)) > 1e-6) return `${value} is not on the grid ${spec.low} + k × ${spec.step}`;
      }
      return undefined;
    }
    case 'choice':
      return indexOfChoice(spec, value) < 0 ? `${show()} is not one of ${spec.values.map(canonicalJson).join(', ')}` : undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be true or false, not ${show()}`;
    case 'agentSet': {
      if (!Array.isArray(value) || !value.every((a) => typeof a === 'string')) return `must be a list of candidate ids, not ${show()}`;
      if (new Set(value).size !== value.length) return 'names a candidate twice';
      const outside = value.filter((a) => !spec.candidates.includes(a));
      if (outside.length > 0) return `names agents that are not candidates: ${outside.join(', ')}`;
      const [min, max] = sizeBounds(spec);
      return value.length < min || value.length > max ? `has ${value.length} members, not between ${min} and ${max}` : undefined;
    }
  }
}

/** Why a set of values does not fit the space (a missing, unknown or bad parameter), or undefined. */
export function checkParams(space: SearchSpace, params: Params): string | undefined {
  const problems: string[] = [];
  for (const name of paramNames(space)) {
    if (!(name in params)) problems.push(`${name}: missing`);
    else {
      const problem = checkParam(space[name]!, params[name]);
      if (problem) problems.push(`${name}: ${problem}`);
    }
  }
  for (const name of Object.keys(params)) if (!(name in space)) problems.push(`${name}: not a parameter of the space`);
  return problems.length > 0 ? problems.join('; ') : undefined;
}

function indexOfChoice(spec: ChoiceParam, value: unknown): number {
  const key = canonicalJson(value);
  return spec.values.findIndex((v) => canonicalJson(v) === key);
}

// ---- encoding -------------------------------------------------------------

const enc = (spec: NumericParam, x: number) => (spec.log ? Math.log(x) : x);

/**
 * The continuous internal interval a numeric parameter is modelled on:
 * [low, high] (logs for a log parameter), widened by half a step on each
 * side for a stepped or integer parameter so every grid value owns a cell
 * of the same width.
 */
export function internalBounds(spec: NumericParam): { low: number; high: number } {
  const half = spec.step !== undefined ? spec.step / 2 : spec.type === 'int' ? 0.5 : 0;
  return { low: enc(spec, spec.low - half), high: enc(spec, spec.high + half) };
}

/** The internal cell of a grid value ([value ± step/2], encoded), or undefined for a continuous parameter. */
export function internalCell(spec: NumericParam, value: number): { low: number; high: number } | undefined {
  const step = spec.step ?? (spec.type === 'int' ? 1 : undefined);
  if (step === undefined) return undefined;
  return { low: enc(spec, value - step / 2), high: enc(spec, value + step / 2) };
}

/** How many internal numbers a parameter takes (1, or one per candidate for an agentSet). */
export function encodedWidth(spec: ParamSpec): number {
  return spec.type === 'agentSet' ? spec.candidates.length : 1;
}

/** The internal representation of a (checked) value. */
export function encodeParam(spec: ParamSpec, value: unknown): number[] {
  switch (spec.type) {
    case 'float':
    case 'int':
      return [enc(spec, value as number)];
    case 'choice':
      return [indexOfChoice(spec, value)];
    case 'boolean':
      return [value === true ? 1 : 0];
    case 'agentSet': {
      const members = new Set(value as string[]);
      return spec.candidates.map((c) => (members.has(c) ? 1 : 0));
    }
  }
}

const tidy = (x: number) => Number.parseFloat(x.toPrecision(12));

/** Snaps a numeric value into [low, high] and onto its grid. */
function snap(spec: NumericParam, x: number): number {
  const step = spec.step ?? (spec.type === 'int' ? 1 : undefined);
  let v = Math.min(spec.high, Math.max(spec.low, x));
  if (step !== undefined) {
    const k = Math.round((v - spec.low) / step);
    const last = Math.round((spec.high - spec.low) / step);
    v = spec.low + Math.min(last, Math.max(0, k)) * step;
    v = spec.type === 'int' ? Math.round(v) : tidy(v);
  }
  return v;
}

/**
 * The value an internal representation stands for: numbers are clamped into
 * range and snapped to their grid, indices rounded and clamped. An agentSet
 * decodes to the candidates whose entry is ≥ 0.5, in candidate order, with no
 * size repair (see repairTeam).
 */
export function decodeParam(spec: ParamSpec, internal: readonly number[]): JsonValue {
  const x = internal[0] ?? 0;
  switch (spec.type) {
    case 'float':
    case 'int':
      return snap(spec, spec.log ? Math.exp(x) : x);
    case 'choice':
      return spec.values[Math.min(spec.values.length - 1, Math.max(0, Math.round(x)))]!;
    case 'boolean':
      return x >= 0.5;
    case 'agentSet':
      return spec.candidates.filter((_, i) => (internal[i] ?? 0) >= 0.5);
  }
}

/**
 * Brings a 0/1 membership mask to a size in [minSize, maxSize] by adding
 * random non-members or dropping random members; the rest of the mask is
 * kept. Returns a new mask.
 */
export function repairTeam(spec: AgentSetParam, mask: readonly number[], rng: Random): number[] {
  const out = mask.map((m) => (m >= 0.5 ? 1 : 0));
  const [min, max] = sizeBounds(spec);
  let size = out.reduce<number>((s, m) => s + m, 0);
  while (size > max) {
    out[rng.pick(out.flatMap((m, i) => (m === 1 ? [i] : [])))] = 0;
    size--;
  }
  while (size < min) {
    out[rng.pick(out.flatMap((m, i) => (m === 0 ? [i] : [])))] = 1;
    size++;
  }
  return out;
}

// ---- sampling -------------------------------------------------------------

/**
 * One value drawn uniformly: floats uniform on their scale (log-uniform for a
 * log parameter), grid values uniform over the grid, a log int log-uniform
 * over its cells; a team by drawing its size uniformly in [minSize, maxSize],
 * then that many candidates uniformly.
 */
export function sampleParam(spec: ParamSpec, rng: Random): JsonValue {
  switch (spec.type) {
    case 'float':
    case 'int': {
      if (spec.log) {
        const { low, high } = internalBounds(spec);
        return snap(spec, Math.exp(rng.uniform(low, high)));
      }
      const step = spec.step ?? (spec.type === 'int' ? 1 : undefined);
      if (step === undefined) return spec.low + (spec.high - spec.low) * rng.float();
      const last = Math.round((spec.high - spec.low) / step);
      return snap(spec, spec.low + rng.int(0, last) * step);
    }
    case 'choice':
      return spec.values[rng.int(0, spec.values.length - 1)]!;
    case 'boolean':
      return rng.float() < 0.5;
    case 'agentSet': {
      const [min, max] = sizeBounds(spec);
      const size = rng.int(min, max);
      const chosen = new Set(rng.shuffle(spec.candidates).slice(0, size));
      return spec.candidates.filter((c) => chosen.has(c));
    }
  }
}

/** A whole set of values drawn uniformly, parameters in sorted name order. */
export function sampleSpace(space: SearchSpace, rng: Random): Params {
  const out: Params = {};
  for (const name of paramNames(space)) out[name] = sampleParam(space[name]!, rng);
  return out;
}
