/**
 * Resource grants. The BidRequest offers `parameters.capacity` (a positive
 * number) of a resource; `parameters.strategy` says how a conflict is
 * resolved ("priority", the default, or "proportional"); `parameters.leaseMs`
 * (a positive whole number) and `parameters.conditions` (strings), when
 * given, are copied onto every grant. Each requester answers with a Bid:
 * `amount` is the quantity it asks for (more than 0: INVALID_AMOUNT
 * otherwise), `attributes.priority` a finite number (default 0) and
 * `attributes.minimum` the least it can use (default: all it asks; from 0 to
 * what it asks) — anything else is refused (INVALID_ANSWER).
 *
 * When all that is asked fits the capacity, everyone gets what it asked.
 * Otherwise there is a conflict, resolved by the strategy:
 * - priority: requests are served in order of priority, highest first, ties
 *   going to the earlier bid (event time), then the lower agent id (by code
 *   unit); each gets min(asked, what is left), unless that is 0 or below its
 *   minimum — then it gets nothing and the quantity stays for the next ones.
 * - proportional: every ask is scaled by capacity / total asked; while a
 *   share falls below its requester's minimum, the last such requester in
 *   the priority order above is dropped and the capacity is shared again
 *   among the others (one at a time, so no more are dropped than need be);
 *   once the asks left fit, each gets what it asked.
 * The round is decided when at least one grant is made; the grants are listed
 * in the priority order above, the winners sorted by agent id. Closes when
 * every named requester has asked, else at the deadline with the requests
 * counted.
 */
import type { Protocol, RoundAnswer, RoundOpen } from '../types.ts';
import { everyBidderAnswered } from '../auctions/ranking.ts';

const strategies = ['priority', 'proportional'] as const;
type Strategy = (typeof strategies)[number];

interface Request {
  agentId: string;
  asked: number;
  priority: number;
  minimum: number;
  eventTime: number;
}

const byCode = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const requestOf = (answer: RoundAnswer): Request => ({
  agentId: answer.agentId,
  asked: answer.amount!,
  priority: (answer.attributes?.['priority'] as number | undefined) ?? 0,
  minimum: (answer.attributes?.['minimum'] as number | undefined) ?? answer.amount!,
  eventTime: answer.eventTime,
});

/** Priority order: highest priority, then earlier bid, then lower agent id. */
const served = (a: Request, b: Request) => b.priority - a.priority || a.eventTime - b.eventTime || byCode(a.agentId, b.agentId);

interface Refusal {
  agentId: string;
  asked: number;
  minimum: number;
  reason: string;
}

function byPriority(requests: readonly Request[], capacity: number): { granted: Map<string, number>; refusals: Refusal[] } {
  const granted = new Map<string, number>();
  const refusals: Refusal[] = [];
  let left = capacity;
  for (const r of requests) {
    const q = Math.min(r.asked, left);
    if (q > 0 && q >= r.minimum) {
      granted.set(r.agentId, q);
      left -= q;
    } else refusals.push({ agentId: r.agentId, asked: r.asked, minimum: r.minimum, reason: `only ${q} left, under its minimum ${r.minimum}` });
  }
  return { granted, refusals };
}

function proportionally(requests: readonly Request[], capacity: number): { granted: Map<string, number>; refusals: Refusal[] } {
  const active = [...requests];
  const refusals: Refusal[] = [];
  for (;;) {
    const total = active.reduce((n, r) => n + r.asked, 0);
    const scale = total <= capacity ? 1 : capacity / total;
    const share = (r: Request) => (scale === 1 ? r.asked : (capacity * r.asked) / total);
    const short = active.filter((r) => share(r) <= 0 || share(r) < r.minimum);
    const dropped = short.at(-1);
    if (!dropped) return { granted: new Map(active.map((r) => [r.agentId, share(r)])), refusals };
    refusals.push({ agentId: dropped.agentId, asked: dropped.asked, minimum: dropped.minimum, reason: `a proportional share of ${share(dropped)} is under its minimum ${dropped.minimum}` });
    active.splice(active.indexOf(dropped), 1);
  }
}

const strategyOf = (open: RoundOpen): Strategy => (open.parameters['strategy'] as Strategy | undefined) ?? 'priority';

export const resourceGrant: Protocol = {
  name: 'resource-grant',
  kind: 'auction',
  validate: (open) => {
    const { capacity, strategy, leaseMs, conditions } = open.parameters;
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) return `A resource grant needs parameters.capacity, a positive number, not ${JSON.stringify(capacity ?? null)}.`;
    if (strategy !== undefined && !strategies.includes(strategy as Strategy)) return `parameters.strategy must be "priority" or "proportional", not ${JSON.stringify(strategy)}.`;
    if (leaseMs !== undefined && (typeof leaseMs !== 'number' || !Number.isSafeInteger(leaseMs) || leaseMs <= 0)) return `parameters.leaseMs must be a positive whole number of ms, not ${JSON.stringify(leaseMs)}.`;
    if (conditions !== undefined && (!Array.isArray(conditions) || conditions.some((c) => typeof c !== 'string'))) return 'parameters.conditions must be a list of strings.';
    return undefined;
  },
  check: (_open, answer) => {
    const amount = answer.amount!;
    if (amount <= 0) return { reasonCode: 'INVALID_AMOUNT', reason: 'A request must ask for more than 0.' };
    const priority = answer.attributes?.['priority'];
    if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority))) {
      return { reasonCode: 'INVALID_ANSWER', reason: `attributes.priority must be a finite number, not ${JSON.stringify(priority)}.` };
    }
    const minimum = answer.attributes?.['minimum'];
    if (minimum !== undefined && (typeof minimum !== 'number' || !Number.isFinite(minimum) || minimum < 0 || minimum > amount)) {
      return { reasonCode: 'INVALID_ANSWER', reason: `attributes.minimum must be a number from 0 to the ${amount} asked, not ${JSON.stringify(minimum)}.` };
    }
    return undefined;
  },
  complete: (open, counted) => everyBidderAnswered(open.eligible, counted),
  decide: (open, counted) => {
    const capacity = open.parameters['capacity'] as number;
    const strategy = strategyOf(open);
    const requests = counted.map(requestOf).sort(served);
    const demand = requests.reduce((n, r) => n + r.asked, 0);
    const conflict = demand > capacity ? { demand, capacity, strategy } : null;
    const { granted, refusals } = !conflict
      ? { granted: new Map(requests.map((r) => [r.agentId, r.asked])), refusals: [] }
      : strategy === 'proportional'
        ? proportionally(requests, capacity)
        : byPriority(requests, capacity);
    const { leaseMs, conditions } = open.parameters as { leaseMs?: number; conditions?: string[] };
    const grants = requests
      .filter((r) => granted.has(r.agentId))
      .map((r) => ({ agentId: r.agentId, quantity: granted.get(r.agentId)!, ...(leaseMs !== undefined ? { leaseMs } : {}), ...(conditions !== undefined ? { conditions } : {}) }));
    const details = {
      conflict,
      refusals,
      requests: requests.map((r) => ({ agentId: r.agentId, asked: r.asked, priority: r.priority, minimum: r.minimum })),
    };
    if (grants.length === 0) {
      return { status: 'no-decision', winners: [], price: null, value: null, reason: requests.length === 0 ? 'no requests' : 'no request could be granted its minimum', details };
    }
    const given = grants.reduce((n, g) => n + g.quantity, 0);
    return {
      status: 'decided',
      winners: grants.map((g) => g.agentId).sort(byCode),
      price: null,
      value: JSON.stringify(grants),
      reason: conflict
        ? `demand ${demand} exceeds capacity ${capacity}: ${grants.length} of ${requests.length} granted ${given} by ${strategy}`
        : `all ${requests.length} request${requests.length === 1 ? '' : 's'} granted (${demand} of ${capacity})`,
      details,
    };
  },
};
