/**
 * Compromise between conflicting claims. The claimants are the proposal's
 * named voters; each answers with its claim as `choice`. Weights come from
 * the proposal (default 1; finite and not negative). `parameters.mode`:
 *
 * - "weighted-average" (default): claims are numbers written as decimal
 *   strings (anything else is refused as INVALID_CHOICE); the value is their
 *   weighted average (summed in agent-id order), the winners every claimant
 *   that answered, in the proposal's order. Weights that sum to 0 decide
 *   nothing.
 * - "time-sharing": claims are anything (a vote without a choice is refused);
 *   `parameters.periodMs` (a positive whole number, required) is split among
 *   the claimants that answered in proportion to their weights, one slice
 *   after another in the proposal's order. Each gets
 *   floor(periodMs * weight / total weight) whole ms; the ms left by the
 *   rounding go one each to the first claimants of positive weight, in the
 *   proposal's order. A claimant of weight 0 gets an empty slice. The value
 *   is `[{ agentId, startMs, endMs }]`, offsets within the period; the
 *   winners are the claimants with a non-empty slice.
 *
 * No tie can arise in either mode. Closes when every claimant has answered,
 * else at the deadline among those that answered; none decides nothing.
 */
import type { Protocol, RoundAnswer, RoundOpen, Verdict } from '../types.ts';
import { everyVoterAnswered, requireVoters } from '../consensus/tally.ts';
import { byCode, checkDecimal, parseDecimal } from '../negotiation/weightedMean.ts';
import { inVoterOrder } from './priority.ts';

const modes = ['weighted-average', 'time-sharing'] as const;
type Mode = (typeof modes)[number];

const modeOf = (open: RoundOpen): Mode => (open.parameters['mode'] as Mode | undefined) ?? 'weighted-average';
const weightOf = (open: RoundOpen, agentId: string) => open.weights[agentId] ?? 1;

const none = (reason: string, details: Record<string, unknown>): Verdict => ({ status: 'no-decision', winners: [], price: null, value: null, reason, details });

function weightedAverage(open: RoundOpen, claimants: readonly RoundAnswer[]): Verdict {
  const claims = Object.fromEntries(claimants.map((a) => [a.agentId, parseDecimal(a.choice)!]));
  const weights = Object.fromEntries(claimants.map((a) => [a.agentId, weightOf(open, a.agentId)]));
  const details = { mode: 'weighted-average', claims, weights };
  if (claimants.length === 0) return none('no claims', details);
  let sum = 0;
  let total = 0;
  for (const id of Object.keys(claims).sort(byCode)) {
    sum += weights[id]! * claims[id]!;
    total += weights[id]!;
  }
  if (total === 0) return none('the claimants that answered have no weight', details);
  const average = sum / total;
  if (!Number.isFinite(average)) return none('the weighted sum of the claims is too large for a number', details);
  return {
    status: 'decided',
    winners: claimants.map((a) => a.agentId),
    price: null,
    value: JSON.stringify(average),
    reason: `weighted average ${average} of ${claimants.length} claim${claimants.length === 1 ? '' : 's'}`,
    details,
  };
}

function timeSharing(open: RoundOpen, claimants: readonly RoundAnswer[]): Verdict {
  const periodMs = open.parameters['periodMs'] as number;
  const claims = Object.fromEntries(claimants.map((a) => [a.agentId, a.choice!]));
  const weights = Object.fromEntries(claimants.map((a) => [a.agentId, weightOf(open, a.agentId)]));
  const details = { mode: 'time-sharing', periodMs, claims, weights };
  if (claimants.length === 0) return none('no claims', details);
  const ids = claimants.map((a) => a.agentId);
  let total = 0;
  for (const id of [...ids].sort(byCode)) total += weights[id]!;
  if (total === 0) return none('the claimants that answered have no weight', details);
  const shares = ids.map((id) => Math.floor((periodMs * weights[id]!) / total));
  const takers = ids.map((id, i) => (weights[id]! > 0 ? i : -1)).filter((i) => i >= 0);
  let left = periodMs - shares.reduce((a, b) => a + b, 0);
  for (let n = 0; left > 0; left--, n++) shares[takers[n % takers.length]!]! += 1;
  // Floating-point rounding may overshoot by a ms or so: take it back from the last claimants.
  for (let n = takers.length - 1; left < 0; n = (n + takers.length - 1) % takers.length) {
    if (shares[takers[n]!]! > 0) {
      shares[takers[n]!]! -= 1;
      left++;
    }
  }
  let startMs = 0;
  const slices = ids.map((agentId, i) => {
    const slice = { agentId, startMs, endMs: startMs + shares[i]! };
    startMs = slice.endMs;
    return slice;
  });
  const winners = slices.filter((s) => s.endMs > s.startMs).map((s) => s.agentId);
  return {
    status: 'decided',
    winners,
    price: null,
    value: JSON.stringify(slices),
    reason: `${periodMs} ms shared by ${winners.length} claimant${winners.length === 1 ? '' : 's'} in proportion to their weights`,
    details,
  };
}

export const compromise: Protocol = {
  name: 'compromise',
  kind: 'consensus',
  validate: (open) => {
    const missing = requireVoters(open);
    if (missing) return missing;
    if (Object.values(open.weights).some((w) => !Number.isFinite(w) || w < 0)) return 'Weights must be finite and not negative.';
    const mode = open.parameters['mode'];
    if (mode !== undefined && !modes.includes(mode as Mode)) return `parameters.mode must be ${modes.map((m) => `"${m}"`).join(' or ')}, not ${JSON.stringify(mode)}.`;
    const periodMs = open.parameters['periodMs'];
    if (modeOf(open) === 'time-sharing' && (typeof periodMs !== 'number' || !Number.isSafeInteger(periodMs) || periodMs <= 0)) {
      return `Time-sharing needs parameters.periodMs, a positive whole number of ms, not ${JSON.stringify(periodMs ?? null)}.`;
    }
    return undefined;
  },
  check: (open, answer, counted) =>
    modeOf(open) === 'weighted-average'
      ? checkDecimal!(open, answer, counted)
      : typeof answer.choice === 'string'
        ? undefined
        : { reasonCode: 'INVALID_CHOICE', reason: 'A claim is the vote\'s choice; this vote has none.' },
  complete: everyVoterAnswered,
  decide: (open, counted) => {
    const claimants = inVoterOrder(open, counted);
    return modeOf(open) === 'time-sharing' ? timeSharing(open, claimants) : weightedAverage(open, claimants);
  },
};
