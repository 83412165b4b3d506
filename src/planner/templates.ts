/**
 * Goal templates: how a goal of a type becomes a plan. A planner holds the
 * templates it was given (`mabeam planner run --templates ./module.ts`) and
 * the built-in ones; a goal names its type, or comes with its plan whole.
 * The plan a template makes is written whole in PlanCreated, so replaying a
 * plan never needs the template again.
 */
import { MabeamError, describeError } from '../errors.ts';
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface GoalTemplate {
  /** The goal type it decomposes. */
  type: string;
  description?: string;
  /** The plan (as parsePlan takes it) for a goal; throw to refuse the goal (the built-in ones throw VALIDATION_FAILED). Must depend on the goal only. */
  plan: (goal: Record<string, unknown>) => unknown;
}

/**
 * `map-reduce`: goal `{ items: [...], map: "capability", reduce?: "capability" }`
 * → one step per item (`map-0`, `map-1`, …, input `item`), then, with
 * `reduce`, one step taking every map result (inputs `r0`, `r1`, …).
 */
export const mapReduce: GoalTemplate = {
  type: 'map-reduce',
  description: 'one step per item on the map capability, then a reduce step over all their results',
  plan: (goal) => {
    const items = goal['items'];
    const map = goal['map'];
    const reduce = goal['reduce'];
    const invalid = (message: string) => new MabeamError('VALIDATION_FAILED', message, { details: { goalType: 'map-reduce' } });
    if (!Array.isArray(items) || items.length === 0) throw invalid('a map-reduce goal needs items: a non-empty array');
    if (typeof map !== 'string' || map.length === 0) throw invalid('a map-reduce goal needs map: the capability of its map steps');
    if (reduce !== undefined && (typeof reduce !== 'string' || reduce.length === 0)) throw invalid('reduce, when given, is the capability of the reduce step');
    const steps: unknown[] = items.map((item, i) => ({ id: `map-${i}`, capability: map, inputs: { item: { value: item } } }));
    if (reduce) steps.push({ id: 'reduce', capability: reduce, inputs: Object.fromEntries(items.map((_, i) => [`r${i}`, { step: `map-${i}` }])) });
    return { goal, steps };
  },
};

export const builtinTemplates: readonly GoalTemplate[] = [mapReduce];

export class Templates {
  private readonly byType = new Map<string, GoalTemplate>();

  constructor(templates: Iterable<GoalTemplate> = builtinTemplates) {
    for (const t of templates) this.register(t);
  }

  register(template: GoalTemplate): void {
    if (typeof template?.type !== 'string' || template.type.length === 0 || typeof template.plan !== 'function') {
      throw new MabeamError('INVALID_OPTIONS', 'A goal template needs a type (a non-empty string) and a plan(goal) function.');
    }
    this.byType.set(template.type, template);
  }

  get(type: string): GoalTemplate | undefined {
    return this.byType.get(type);
  }

  types(): string[] {
    return [...this.byType.keys()].sort();
  }
}

/** Templates from a module: its default export or `templates`, one template or an array of them. */
export async function loadTemplates(path: string): Promise<GoalTemplate[]> {
  const file = resolve(path);
  try {
    await access(file);
  } catch {
    throw new MabeamError('INVALID_OPTIONS', `No templates module at ${file}.`);
  }
  let mod: { default?: unknown; templates?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as typeof mod;
  } catch (error) {
    throw new MabeamError('INVALID_OPTIONS', `Loading ${file} failed: ${describeError(error)}`, { cause: error });
  }
  const found = mod.templates ?? mod.default;
  const list = Array.isArray(found) ? found : found ? [found] : [];
  if (list.length === 0) throw new MabeamError('INVALID_OPTIONS', `${path} exports no goal templates (export default or templates: { type, plan(goal) } or an array of them).`);
  return list as GoalTemplate[];
}
