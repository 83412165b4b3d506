/**
 * A study declaration — what `mabeam optimize run study.json` reads and a
 * StudyCreated event carries (as JSON in `spec`) — checked once, with every
 * default filled in, so the optimizer, the CLI and a replay all read the
 * same study from the same event.
 */
import { z } from 'zod';
import { MabeamError } from '../../errors.ts';
import type { Direction } from '../pareto.ts';
import { createPruner, parsePrunerConfig, type BoundPruner } from '../pruners/index.ts';
import { defineSpace, type SearchSpace } from '../space.ts';
import { createSearcher, searcherNames, type StudySearcher } from './searchers.ts';

const nameSchema = z.string().min(1).max(200);

const objectiveSchema = z.strictObject({ name: nameSchema, direction: z.enum(['minimize', 'maximize']) });

const componentSchema = z.union([nameSchema, z.strictObject({ name: nameSchema, config: z.record(z.string(), z.unknown()).optional() })]);

const specSchema = z.strictObject({
  name: nameSchema.optional(),
  space: z.record(z.string(), z.unknown()),
  objectives: z.array(objectiveSchema).min(1, 'name at least one objective'),
  constraints: z.array(nameSchema).default([]),
  budget: z
    .strictObject({
      trials: z.number().int().positive().max(1_000_000).optional(),
      timeMs: z.number().int().positive().optional(),
    })
    .default({ trials: 100 })
    .refine((b) => b.trials !== undefined || b.timeMs !== undefined, 'give trials, timeMs or both'),
  parallelism: z.number().int().positive().max(1000).default(1),
  schedule: z.enum(['async', 'batch']).default('async'),
  searcher: componentSchema.default('tpe'),
  pruner: componentSchema.default('none'),
  retry: z
    .strictObject({
      maxAttempts: z.number().int().positive().max(100).default(3),
      leaseMs: z.number().int().min(200).default(10_000),
      retryOnError: z.boolean().default(true),
    })
    .default({ maxAttempts: 3, leaseMs: 10_000, retryOnError: true }),
  evaluators: z
    .strictObject({ capability: nameSchema.default('evaluate') })
    .default({ capability: 'evaluate' }),
  apply: z.union([z.boolean(), z.record(z.string(), nameSchema)]).default(false),
});

export interface StudySpec {
  name?: string;
  space: SearchSpace;
  objectives: Array<{ name: string; direction: Direction }>;
  /** Constraint names: a trial reports one value per constraint, ≤ 0 is satisfied. */
  constraints: string[];
  budget: { trials?: number; timeMs?: number };
  /** How many trials are evaluated at once. */
  parallelism: number;
  /**
   * async (default): a new trial is proposed as soon as one finishes, from
   * everything told so far (constant liar for the running ones) — what is
   * proposed depends on the order evaluations finish. batch: `parallelism`
   * trials are proposed together and the next batch only once all of them
   * have finished, told in trial order — the same seed then gives the same
   * study however quick the evaluators are.
   */
  schedule: 'async' | 'batch';
  searcher: { name: string; config: Record<string, unknown> };
  pruner: { name: string; config: Record<string, unknown> };
  /** The retry policy: an attempt is retried (same params, another evaluator) when its lease runs out or, with retryOnError, when it raises. */
  retry: { maxAttempts: number; leaseMs: number; retryOnError: boolean };
  /** Evaluators are the running agents with this capability. */
  evaluators: { capability: string };
  /** Params to apply as variable changes when the study completes: param name → variable id. */
  apply: Record<string, string>;
}

/** A checked study: its spec, and the searcher and pruner it builds. */
export interface Study {
  spec: StudySpec;
  directions: Direction[];
  searcher: StudySearcher;
  pruner: BoundPruner;
}

function component(c: string | { name: string; config?: Record<string, unknown> | undefined }): { name: string; config: Record<string, unknown> } {
  return typeof c === 'string' ? { name: c, config: {} } : { name: c.name, config: c.config ?? {} };
}

/**
 * Checks a study declaration (parsed JSON) and builds its searcher and
 * pruner, or throws VALIDATION_FAILED naming every problem found.
 */
export function parseStudy(raw: unknown): Study {
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || 'study'}: ${i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message}`).join('; ');
    throw new MabeamError('VALIDATION_FAILED', `Invalid study: ${where}`, { details: { issues: parsed.error.issues } });
  }
  const d = parsed.data;
  const fail = (m: string, cause?: unknown) => new MabeamError('VALIDATION_FAILED', `Invalid study: ${m}`, cause === undefined ? {} : { cause });
  let space: SearchSpace;
  try {
    space = defineSpace(d.space);
  } catch (error) {
    throw fail((error as Error).message, error);
  }
  if (Object.keys(space).length === 0) throw fail('space: give at least one parameter');
  const names = d.objectives.map((o) => o.name);
  if (new Set(names).size !== names.length) throw fail(`objectives: names must differ (${names.join(', ')})`);
  const directions = d.objectives.map((o) => o.direction);
  const apply: Record<string, string> = d.apply === true ? Object.fromEntries(Object.keys(space).map((p) => [p, p])) : d.apply === false ? {} : d.apply;
  for (const param of Object.keys(apply)) if (!(param in space)) throw fail(`apply: "${param}" is not a parameter of the space (${Object.keys(space).join(', ')})`);
  if (Object.keys(apply).length > 0 && directions.length > 1) throw fail('apply: a study with several objectives has a Pareto front, not one best trial to apply; apply needs a single objective');
  const spec: StudySpec = {
    ...(d.name !== undefined ? { name: d.name } : {}),
    space,
    objectives: d.objectives,
    constraints: d.constraints,
    budget: { ...(d.budget.trials !== undefined ? { trials: d.budget.trials } : {}), ...(d.budget.timeMs !== undefined ? { timeMs: d.budget.timeMs } : {}) },
    parallelism: d.parallelism,
    schedule: d.schedule,
    searcher: component(d.searcher),
    pruner: component(d.pruner),
    retry: d.retry,
    evaluators: d.evaluators,
    apply,
  };
  if (!searcherNames().includes(spec.searcher.name)) throw fail(`searcher: unknown searcher "${spec.searcher.name}"; known: ${searcherNames().join(', ')}`);
  let searcher: StudySearcher;
  let pruner: BoundPruner;
  try {
    searcher = createSearcher(spec.searcher.name, spec.space, { ...spec.searcher.config, directions });
    const checked = parsePrunerConfig(spec.pruner);
    pruner = createPruner({ name: checked.name, config: checked.config }, directions);
  } catch (error) {
    throw fail((error as Error).message, error);
  }
  return { spec, directions, searcher, pruner };
}
