/**
 * A plan: a DAG of steps, each needing a capability, taking inputs from the
 * goal, from upstream steps' results or as given values, with a timeout, a
 * retry policy and a trigger rule. `parsePlan` checks one once — shape,
 * unique step ids, inputs that name steps that exist, no cycle (the cycle is
 * named), a result that names steps — and fills in the defaults, so the
 * planner, the CLI and a replay read the same plan from the same event.
 *
 * Pure: no Kafka. (The plan events and the planner that runs plans on the
 * engine build on this.)
 */
import { z } from 'zod';
import { MabeamError } from '../errors.ts';

const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'letters, digits, ".", "_" or "-", starting with a letter or digit');

const inputSchema = z.union([
  // `{}` or `{ goal: "field", path?: "a.b" }`: from the goal (the field named like the input by default).
  z.strictObject({ goal: z.string().min(1).optional(), path: z.string().min(1).optional() }),
  z.strictObject({ step: idSchema, path: z.string().min(1).optional() }),
  z.strictObject({ value: z.unknown() }),
]);

const stepSchema = z.strictObject({
  id: idSchema,
  capability: z.string().min(1),
  /** Named inputs: `{ goal: "field" }`, `{ step: "id", path?: "a.b" }` or `{ value: … }`. */
  inputs: z.record(z.string().min(1), inputSchema).default({}),
  /** Steps this one waits for besides those its inputs name. */
  after: z.array(idSchema).default([]),
  timeoutMs: z.number().int().positive().default(60_000),
  retry: z
    .strictObject({
      maxAttempts: z.number().int().positive().max(100).default(3),
      backoffMs: z.number().int().nonnegative().default(1_000),
      backoffFactor: z.number().min(1).max(10).default(2),
      maxBackoffMs: z.number().int().positive().default(60_000),
    })
    .default({ maxAttempts: 3, backoffMs: 1_000, backoffFactor: 2, maxBackoffMs: 60_000 }),
  trigger: z.enum(['all-success', 'all-done', 'one-failed']).default('all-success'),
  /**
   * After its last attempt fails, hand the step up through hierarchical
   * delegation instead of failing it: one more attempt, offered to the agents
   * with the first capability of `to`, then (no taker there) the next.
   */
  escalate: z.union([z.literal(false), z.strictObject({ to: z.array(z.string().min(1)).min(1) })]).default(false),
});

const assignmentSchema = z
  .strictObject({
    /** The auction protocol that chooses among capable agents: delegation (lowest cost wins, passes allowed) or another auction. */
    protocol: z.string().min(1).default('delegation'),
    /** How long a step's auction waits for bids before it closes, ms (it closes sooner once every asked agent answered). */
    biddingMs: z.number().int().positive().max(600_000).default(2_000),
  })
  .default({ protocol: 'delegation', biddingMs: 2_000 });

const planSchema = z.strictObject({
  goal: z.record(z.string(), z.unknown()).default({}),
  steps: z.array(stepSchema).min(1, 'a plan needs at least one step'),
  /** The plan's result: named values taken from steps' results. Default: every sink step's result by its id. */
  result: z.record(z.string().min(1), z.strictObject({ step: idSchema, path: z.string().min(1).optional() })).optional(),
  /** How long the plan may take from its creation, ms: past it, the plan fails. */
  deadlineMs: z.number().int().positive().optional(),
  assignment: assignmentSchema,
});

export type StepInput = { goal?: string; path?: string } | { step: string; path?: string } | { value: unknown };

export interface PlanStep {
  id: string;
  capability: string;
  inputs: Record<string, StepInput>;
  after: string[];
  timeoutMs: number;
  retry: { maxAttempts: number; backoffMs: number; backoffFactor: number; maxBackoffMs: number };
  trigger: 'all-success' | 'all-done' | 'one-failed';
  escalate: false | { to: string[] };
}

export interface Plan {
  goal: Record<string, unknown>;
  /** In the order given. */
  steps: PlanStep[];
  result: Record<string, { step: string; path?: string }>;
  deadlineMs?: number;
  assignment: { protocol: string; biddingMs: number };
}

/** The steps a step waits for: those its inputs name and its `after`, without repeats, in order. */
export function upstreamOf(step: PlanStep): string[] {
  const out: string[] = [];
  for (const input of Object.values(step.inputs)) if ('step' in input && !out.includes(input.step)) out.push(input.step);
  for (const id of step.after) if (!out.includes(id)) out.push(id);
  return out;
}

/** A cycle among the steps, as the ids around it (first repeated last), or undefined. */
export function findCycle(steps: readonly PlanStep[]): string[] | undefined {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'open') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'open');
    path.push(id);
    for (const up of upstreamOf(byId.get(id)!)) {
      if (!byId.has(up)) continue;
      const cycle = visit(up);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const s of steps) {
    const cycle = visit(s.id);
    // Found walking upstream: say it in the order work would flow.
    if (cycle) return cycle.reverse();
  }
  return undefined;
}

/** Steps in an order where every step comes after all it waits for (stable: ties in the order given). */
export function topologicalOrder(plan: Plan): string[] {
  const left = new Map(plan.steps.map((s) => [s.id, upstreamOf(s).length]));
  const down = dependantsOf(plan);
  const out: string[] = [];
  let ready = plan.steps.filter((s) => left.get(s.id) === 0).map((s) => s.id);
  while (ready.length > 0) {
    const next: string[] = [];
    for (const id of ready) {
      out.push(id);
      for (const d of down.get(id) ?? []) {
        const n = left.get(d)! - 1;
        left.set(d, n);
        if (n === 0) next.push(d);
      }
    }
    ready = plan.steps.map((s) => s.id).filter((id) => next.includes(id));
  }
  return out;
}

/** For each step, the steps that wait for it, in the order given. */
export function dependantsOf(plan: Plan): Map<string, string[]> {
  const out = new Map<string, string[]>(plan.steps.map((s) => [s.id, []]));
  for (const s of plan.steps) for (const up of upstreamOf(s)) out.get(up)?.push(s.id);
  return out;
}

/**
 * Checks a plan (parsed JSON) and fills in its defaults, or throws
 * VALIDATION_FAILED naming every problem: a duplicate step id, an input or
 * `after` naming no step, a goal input naming no goal field, a cycle, a
 * result naming no step. `capabilities`, when given, are those some agent
 * offers: a step needing another is a problem too.
 */
export function parsePlan(raw: unknown, options: { capabilities?: readonly string[] } = {}): Plan {
  const parsed = planSchema.safeParse(raw);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || 'plan'}: ${i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message}`).join('; ');
    throw new MabeamError('VALIDATION_FAILED', `Invalid plan: ${where}`, { details: { issues: parsed.error.issues } });
  }
  const d = parsed.data;
  const steps: PlanStep[] = d.steps.map((s) => ({ ...s, inputs: s.inputs as Record<string, StepInput> }));
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const s of steps) {
    if (ids.has(s.id)) problems.push(`step "${s.id}" is defined twice`);
    ids.add(s.id);
  }
  for (const s of steps) {
    for (const [name, input] of Object.entries(s.inputs)) {
      if ('step' in input && !ids.has(input.step)) problems.push(`step "${s.id}": input "${name}" names no step ("${input.step}")`);
      if ('step' in input && input.step === s.id) problems.push(`step "${s.id}": input "${name}" names the step itself`);
      if (!('step' in input) && !('value' in input)) {
        const field = input.goal ?? name;
        if (!(field in d.goal)) problems.push(`step "${s.id}": input "${name}" takes goal field "${field}", which the goal does not have`);
      }
    }
    for (const id of s.after) if (!ids.has(id)) problems.push(`step "${s.id}": after names no step ("${id}")`);
    if (options.capabilities && !options.capabilities.includes(s.capability)) problems.push(`step "${s.id}" needs capability "${s.capability}", which no agent offers`);
    if (options.capabilities && s.escalate) {
      for (const c of s.escalate.to) if (!options.capabilities.includes(c)) problems.push(`step "${s.id}" escalates to capability "${c}", which no agent offers`);
    }
  }
  if (problems.length === 0) {
    const cycle = findCycle(steps);
    if (cycle) problems.push(`the steps form a cycle: ${cycle.join(' → ')}`);
  }
  const plan: Plan = { goal: d.goal, steps, result: {}, assignment: d.assignment, ...(d.deadlineMs !== undefined ? { deadlineMs: d.deadlineMs } : {}) };
  if (d.result) {
    for (const [name, r] of Object.entries(d.result)) if (!ids.has(r.step)) problems.push(`result "${name}" names no step ("${r.step}")`);
    plan.result = d.result as Plan['result'];
  } else if (problems.length === 0) {
    const down = dependantsOf(plan);
    plan.result = Object.fromEntries(steps.filter((s) => (down.get(s.id) ?? []).length === 0).map((s) => [s.id, { step: s.id }]));
  }
  if (problems.length > 0) throw new MabeamError('VALIDATION_FAILED', `Invalid plan: ${problems.join('; ')}`, { details: { problems } });
  return plan;
}

/** The capabilities a plan needs agents for: its steps' and their escalation tiers'. */
export function capabilitiesOf(plan: Plan): string[] {
  const out = new Set<string>();
  for (const s of plan.steps) {
    out.add(s.capability);
    if (s.escalate) for (const c of s.escalate.to) out.add(c);
  }
  return [...out].sort();
}

/** The value at a dotted path of a JSON value (undefined when it is not there). */
export function atPath(value: unknown, path: string | undefined): unknown {
  if (path === undefined) return value;
  let v: unknown = value;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** A step's inputs from the goal and the results so far (every upstream step it takes a result from must have one). */
export function resolveInputs(plan: Plan, step: PlanStep, results: ReadonlyMap<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(step.inputs)) {
    if ('value' in input) out[name] = input.value;
    else if ('step' in input) out[name] = atPath(results.get(input.step), input.path);
    else out[name] = atPath(plan.goal[input.goal ?? name], input.path);
  }
  return out;
}

/** How long before attempt `attempt` (2, 3, …) of a step starts: backoff × factor^(attempt − 2), at most maxBackoffMs. */
export function backoffBefore(step: PlanStep, attempt: number): number {
  if (attempt <= 1) return 0;
  return Math.min(step.retry.maxBackoffMs, step.retry.backoffMs * step.retry.backoffFactor ** (attempt - 2));
}
