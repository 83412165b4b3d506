/**
 * Weighted-mean negotiation of a numeric value. The proposal names the
 * voters; each answers with its position as `choice`: a number written as a
 * decimal string ("12", "-0.5", "1e3"; anything else, or a number too large
 * to be finite, is refused as INVALID_CHOICE). A voter's weight comes from
 * the proposal (`weights`, default 1), never from the voter; a voter of
 * weight 0 or less counts nothing.
 *
 * The decision is the weighted mean of the positions cast (summed in agent-id
 * order, so every coordinator gets the same number), then clamped into
 * [parameters.min, parameters.max] when the proposal states them (either may
 * be left out; they must be finite and min <= max). No tie can arise.
 * Closes when every voter has voted, else at the deadline with the votes
 * cast; none (or none with weight, or a sum too large to be finite)
 * decides nothing.
 */
import type { Protocol, RoundOpen } from '../types.ts';
import { everyVoterAnswered, requireVoters } from '../consensus/tally.ts';

const decimal = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The number a decimal string states, or undefined when it states none (or not a finite one). */
export function parseDecimal(text: string | undefined): number | undefined {
  if (text === undefined || !decimal.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

export const checkDecimal: Protocol['check'] = (_open, answer) =>
  parseDecimal(answer.choice) === undefined ? { reasonCode: 'INVALID_CHOICE', reason: `A position is a number written as a decimal string, not ${JSON.stringify(answer.choice ?? null)}.` } : undefined;

export const byCode = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function bounds(open: RoundOpen): { min?: number; max?: number } {
  const { min, max } = open.parameters as { min?: number; max?: number };
  return { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
}

export const weightedMean: Protocol = {
  name: 'weighted-mean',
  kind: 'consensus',
  validate: (open) => {
    const missing = requireVoters(open);
    if (missing) return missing;
    if (Object.values(open.weights).some((w) => !Number.isFinite(w))) return 'Weights must be finite.';
    const { min, max } = open.parameters;
    for (const [name, v] of [['min', min], ['max', max]] as const) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) return `parameters.${name} must be a finite number, not ${JSON.stringify(v)}.`;
    }
    if (typeof min === 'number' && typeof max === 'number' && min > max) return `parameters.min (${min}) is above parameters.max (${max}).`;
    return undefined;
  },
  check: checkDecimal,
  complete: everyVoterAnswered,
  decide: (open, counted) => {
    const cast = [...counted].sort((a, b) => byCode(a.agentId, b.agentId));
    const positions = Object.fromEntries(cast.map((v) => [v.agentId, parseDecimal(v.choice)!]));
    const weights = Object.fromEntries(cast.map((v) => [v.agentId, open.weights[v.agentId] ?? 1]));
    let sum = 0;
    let weight = 0;
    for (const v of cast) {
      const w = weights[v.agentId]!;
      if (w <= 0) continue;
      sum += w * positions[v.agentId]!;
      weight += w;
    }
    if (weight === 0) {
      const reason = cast.length === 0 ? 'no valid votes' : 'no vote with a weight above 0';
      return { status: 'no-decision', winners: [], price: null, value: null, reason, details: { positions, weights, mean: null, clamped: false } };
    }
    const mean = sum / weight;
    if (!Number.isFinite(mean)) return { status: 'no-decision', winners: [], price: null, value: null, reason: 'the weighted sum of the positions is too large for a number', details: { positions, weights, mean: null, clamped: false } };
    const { min, max } = bounds(open);
    const value = Math.min(max ?? Infinity, Math.max(min ?? -Infinity, mean));
    const clamped = value !== mean;
    return {
      status: 'decided',
      winners: [],
      price: null,
      value: JSON.stringify(value),
      reason: `weighted mean ${mean} of ${cast.length} position${cast.length === 1 ? '' : 's'}${clamped ? `, clamped to ${value}` : ''}`,
      details: { positions, weights, mean, clamped, ...bounds(open) },
    };
  },
};
