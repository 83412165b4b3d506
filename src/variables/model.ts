/**
 * Variables: orchestration variables (which agents are active, how resources
 * are split, the topology agents talk in, how fast the system adapts, …) and
 * ordinary typed variables (a float in a range, an integer, a choice, …).
 * A definition is data — it travels in the log — so coordination and
 * adaptation functions are named here and registered in code
 * (see orchestrator/functions.ts).
 */
import { z } from 'zod';
import { MabeamError } from '../errors.ts';

export const variableTypes = [
  'agent_selection',
  'resource_allocation',
  'communication_topology',
  'adaptation_rate',
  'performance_threshold',
  'coordination_pattern',
  'custom',
] as const;
export type VariableType = (typeof variableTypes)[number];

export const topologies = ['broadcast', 'ring', 'star', 'mesh'] as const;
export type Topology = (typeof topologies)[number];

/** What values a variable takes. */
export type ValueType =
  | { kind: 'float'; min: number; max: number }
  | { kind: 'integer'; min?: number; max?: number }
  | { kind: 'choice'; options: string[] }
  | { kind: 'boolean' }
  /** A set of agent ids, drawn from `among` when given (agent selection). */
  | { kind: 'agents'; among?: string[]; max?: number }
  /** Non-negative amounts by key (resource allocation: agent → share). */
  | { kind: 'allocation'; total?: number }
  /** An object; with `fields`, each named field has its own type and must be present. */
  | { kind: 'struct'; fields?: Record<string, ValueType> };

export type Value = number | string | boolean | string[] | Record<string, unknown>;

export interface VariableDefinition {
  id: string;
  type: VariableType;
  valueType: ValueType;
  /** The value the variable starts with. */
  initial: Value;
  /** Agents the variable concerns: they vote on consensus changes and get its directives. */
  affectedAgents: string[];
  /** Name of a registered coordination function; the type's default strategy when absent. */
  coordination?: string;
  /** Name of a registered adaptation function; the variable does not adapt when absent. */
  adaptation?: string;
  /** Free-form constraints the functions read (e.g. requirements, maxConcurrent, resources). */
  constraints: Record<string, unknown>;
  scope: 'global' | 'team' | 'agent';
  description?: string;
}

const id = z.string().min(1).max(200).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only');
const valueType: z.ZodType<ValueType> = z.lazy(() =>
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('float'), min: z.number().finite(), max: z.number().finite() }).refine((t) => t.min <= t.max, 'min must not exceed max'),
    z.object({ kind: z.literal('integer'), min: z.number().int().optional(), max: z.number().int().optional() }).refine((t) => t.min === undefined || t.max === undefined || t.min <= t.max, 'min must not exceed max'),
    z.object({ kind: z.literal('choice'), options: z.array(z.string().min(1)).min(1) }),
    z.object({ kind: z.literal('boolean') }),
    z.object({ kind: z.literal('agents'), among: z.array(id).optional(), max: z.number().int().positive().optional() }),
    z.object({ kind: z.literal('allocation'), total: z.number().finite().positive().optional() }),
    z.object({ kind: z.literal('struct'), fields: z.record(z.string(), valueType).optional() }),
  ]) as z.ZodType<ValueType>,
);

const definitionSchema = z.object({
  id,
  type: z.enum(variableTypes),
  valueType,
  initial: z.unknown(),
  affectedAgents: z.array(id).default([]),
  coordination: z.string().min(1).optional(),
  adaptation: z.string().min(1).optional(),
  constraints: z.record(z.string(), z.unknown()).default({}),
  scope: z.enum(['global', 'team', 'agent']).default('global'),
  description: z.string().optional(),
});

export type VariableDefinitionInput = Omit<VariableDefinition, 'affectedAgents' | 'constraints' | 'scope'> & Partial<Pick<VariableDefinition, 'affectedAgents' | 'constraints' | 'scope'>>;

/** A checked definition, or a VALIDATION_FAILED error that says what is wrong. */
export function defineVariable(input: VariableDefinitionInput | unknown): VariableDefinition {
  const parsed = definitionSchema.safeParse(input);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || 'definition'}: ${i.message}`).join('; ');
    throw new MabeamError('VALIDATION_FAILED', `Invalid variable definition: ${where}`, { details: { issues: parsed.error.issues } });
  }
  const definition = parsed.data as VariableDefinition;
  const problem = checkValue(definition.valueType, definition.initial);
  if (problem) throw new MabeamError('VALIDATION_FAILED', `Invalid variable definition ${definition.id}: the initial value ${problem.reason}`, { details: { reasonCode: problem.reasonCode } });
  return definition;
}

export type ValueProblem = { reasonCode: 'WRONG_TYPE' | 'OUT_OF_RANGE'; reason: string };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const wrong = (expected: string, value: unknown): ValueProblem => ({ reasonCode: 'WRONG_TYPE', reason: `must be ${expected}, not ${JSON.stringify(value) ?? String(value)}` });
const range = (reason: string): ValueProblem => ({ reasonCode: 'OUT_OF_RANGE', reason });

/** Why a value does not fit a type (WRONG_TYPE or OUT_OF_RANGE), or undefined when it does. */
export function checkValue(type: ValueType, value: unknown): ValueProblem | undefined {
  switch (type.kind) {
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) return wrong('a finite number', value);
      return value < type.min || value > type.max ? range(`${value} is outside [${type.min}, ${type.max}]`) : undefined;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return wrong('a whole number', value);
      if (type.min !== undefined && value < type.min) return range(`${value} is under the minimum ${type.min}`);
      return type.max !== undefined && value > type.max ? range(`${value} is over the maximum ${type.max}`) : undefined;
    case 'choice':
      if (typeof value !== 'string') return wrong(`one of ${type.options.join(', ')}`, value);
      return type.options.includes(value) ? undefined : range(`"${value}" is not one of ${type.options.join(', ')}`);
    case 'boolean':
      return typeof value === 'boolean' ? undefined : wrong('true or false', value);
    case 'agents': {
      if (!Array.isArray(value) || !value.every((a) => typeof a === 'string' && a.length > 0)) return wrong('a list of agent ids', value);
      if (new Set(value).size !== value.length) return range('names an agent twice');
      const outside = type.among ? value.filter((a) => !type.among!.includes(a)) : [];
      if (outside.length > 0) return range(`names agents the variable does not cover: ${outside.join(', ')}`);
      return type.max !== undefined && value.length > type.max ? range(`selects ${value.length} agents, more than ${type.max}`) : undefined;
    }
    case 'allocation': {
      if (!isRecord(value) || !Object.values(value).every((v) => typeof v === 'number' && Number.isFinite(v))) return wrong('an object of amounts', value);
      if (Object.values(value).some((v) => (v as number) < 0)) return range('has a negative amount');
      const sum = Object.values(value).reduce<number>((s, v) => s + (v as number), 0);
      return type.total !== undefined && sum > type.total + 1e-9 ? range(`allocates ${sum}, more than the total ${type.total}`) : undefined;
    }
    case 'struct': {
      if (!isRecord(value)) return wrong('an object', value);
      for (const [name, fieldType] of Object.entries(type.fields ?? {})) {
        if (!(name in value)) return wrong(`an object with field "${name}"`, value);
        const problem = checkValue(fieldType, value[name]);
        if (problem) return { reasonCode: problem.reasonCode, reason: `field "${name}" ${problem.reason}` };
      }
      return undefined;
    }
  }
}

// Constructors in the spirit of the seeds: a definition with sensible defaults per type.

type Common = { affectedAgents?: string[]; coordination?: string; adaptation?: string; constraints?: Record<string, unknown>; scope?: VariableDefinition['scope']; description?: string };

const common = (o: Common) => ({
  ...(o.affectedAgents ? { affectedAgents: o.affectedAgents } : {}),
  ...(o.coordination ? { coordination: o.coordination } : {}),
  ...(o.adaptation ? { adaptation: o.adaptation } : {}),
  ...(o.scope ? { scope: o.scope } : {}),
  ...(o.description ? { description: o.description } : {}),
});

/** Which agents are active. The value is the selected agent ids; by default all of them, up to maxConcurrent. */
export function agentSelection(id: string, o: Common & { agents: string[]; initial?: string[]; maxConcurrent?: number; requirements?: string[] }): VariableDefinition {
  const initial = o.initial ?? o.agents.slice(0, o.maxConcurrent ?? o.agents.length);
  return defineVariable({
    id, type: 'agent_selection', valueType: { kind: 'agents', among: o.agents, ...(o.maxConcurrent ? { max: o.maxConcurrent } : {}) }, initial,
    ...common(o), affectedAgents: o.affectedAgents ?? o.agents,
    constraints: { ...o.constraints, ...(o.maxConcurrent ? { maxConcurrent: o.maxConcurrent } : {}), ...(o.requirements ? { requirements: o.requirements } : {}) },
  });
}

/** How a resource is split among agents. The value is agent → amount; by default an even split of the total. */
export function resourceAllocation(id: string, o: Common & { agents: string[]; total: number; resource?: string; initial?: Record<string, number>; strategy?: 'even' | 'proportional' | 'market' }): VariableDefinition {
  const even = Object.fromEntries(o.agents.map((a) => [a, o.total / Math.max(1, o.agents.length)]));
  return defineVariable({
    id, type: 'resource_allocation', valueType: { kind: 'allocation', total: o.total }, initial: o.initial ?? even,
    ...common(o), affectedAgents: o.affectedAgents ?? o.agents,
    constraints: { ...o.constraints, resource: o.resource ?? id, strategy: o.strategy ?? 'even' },
  });
}

/** The topology agents talk in: broadcast, ring, star or mesh. */
export function communicationTopology(id: string, o: Common & { agents: string[]; initial?: Topology; hub?: string }): VariableDefinition {
  return defineVariable({
    id, type: 'communication_topology', valueType: { kind: 'choice', options: [...topologies] }, initial: o.initial ?? 'mesh',
    ...common(o), affectedAgents: o.affectedAgents ?? o.agents, constraints: { ...o.constraints, ...(o.hub ? { hub: o.hub } : {}) },
  });
}

/** How fast the system adapts: a float in [min, max] (default [0, 1], starting at 0.1). */
export function adaptationRate(id: string, o: Common & { min?: number; max?: number; initial?: number } = {}): VariableDefinition {
  return defineVariable({ id, type: 'adaptation_rate', valueType: { kind: 'float', min: o.min ?? 0, max: o.max ?? 1 }, initial: o.initial ?? 0.1, ...common(o), constraints: o.constraints ?? {} });
}

/** A performance level that triggers adaptation: a float in [min, max] (default [0, 1], starting at 0.8). */
export function performanceThreshold(id: string, o: Common & { min?: number; max?: number; initial?: number; metric?: string } = {}): VariableDefinition {
  return defineVariable({
    id, type: 'performance_threshold', valueType: { kind: 'float', min: o.min ?? 0, max: o.max ?? 1 }, initial: o.initial ?? 0.8,
    ...common(o), constraints: { ...o.constraints, ...(o.metric ? { metric: o.metric } : {}) },
  });
}

/** Which coordination pattern the team uses, among named patterns (default: the first). */
export function coordinationPattern(id: string, o: Common & { patterns: string[]; initial?: string }): VariableDefinition {
  return defineVariable({ id, type: 'coordination_pattern', valueType: { kind: 'choice', options: o.patterns }, initial: o.initial ?? o.patterns[0], ...common(o), constraints: o.constraints ?? {} });
}

/** An ordinary typed variable (a float in a range, an integer, a choice such as a model name, a boolean, a struct). */
export function typedVariable(id: string, valueType: ValueType, initial: Value, o: Common = {}): VariableDefinition {
  return defineVariable({ id, type: 'custom', valueType, initial, ...common(o), constraints: o.constraints ?? {} });
}
