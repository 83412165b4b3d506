/**
 * Pruners by name, with their configs validated once, here.
 *
 * Multi-objective studies: pruning compares one intermediate value against
 * other trials', and with several objectives there is no single value to
 * compare (Optuna 4 prunes on the first objective, experimentally; we do not
 * pick one silently). So `createPruner` refuses every pruner but 'none' when
 * the study has more than one direction. Report a single scalar (for example
 * a weighted sum) in a single-objective study if you need pruning.
 */
import { z } from 'zod';
import { MabeamError } from '../../errors.ts';
import type { Direction } from '../pareto.ts';
import { ashaConfigSchema, ashaPruner } from './asha.ts';
import { medianConfigSchema, medianPruner } from './median.ts';
import { nonePruner } from './none.ts';
import type { BoundPruner, Pruner } from './types.ts';

export type { BoundPruner, Direction, Pruner, PruneDecision, ReportResult, TrialReport } from './types.ts';
export { isPrune } from './types.ts';
export { medianPruner, medianDefaults, medianConfigSchema, type MedianConfig, type MedianState } from './median.ts';
export { ashaPruner, ashaDefaults, ashaConfigSchema, rungStep, type AshaConfig, type AshaState } from './asha.ts';
export { nonePruner, type NoneConfig, type NoneState } from './none.ts';

export const prunerNames = ['none', 'median', 'asha'] as const;
export type PrunerName = (typeof prunerNames)[number];

/** How a study names its pruner: `{ name: 'asha', config: { reductionFactor: 3 } }`. */
export interface PrunerSpec {
  readonly name: string;
  readonly config?: unknown;
}

const schemas: Record<PrunerName, z.ZodType> = {
  none: z.strictObject({}),
  median: medianConfigSchema,
  asha: ashaConfigSchema,
};

const pruners: Record<PrunerName, Pruner<never, unknown>> = {
  none: nonePruner as Pruner<never, unknown>,
  median: medianPruner as Pruner<never, unknown>,
  asha: ashaPruner as Pruner<never, unknown>,
};

function isPrunerName(name: string): name is PrunerName {
  return (prunerNames as readonly string[]).includes(name);
}

/** Refuses pruning for a study with several objectives (see the file header), or with none. */
export function checkPrunable(name: string, directions: readonly Direction[]): void {
  if (directions.length === 0) {
    throw new MabeamError('INVALID_OPTIONS', 'A study needs at least one objective direction before a pruner can be set up.');
  }
  if (directions.length > 1 && name !== 'none') {
    throw new MabeamError(
      'INVALID_OPTIONS',
      `The '${name}' pruner cannot be used in a study with ${directions.length} objectives: pruning on one of several objectives is not defined. ` +
        "Use pruner 'none', or a single objective.",
      { details: { pruner: name, objectives: directions.length } },
    );
  }
}

/** The validated config of a pruner (defaults filled in), or a MabeamError INVALID_OPTIONS saying what is wrong. */
export function parsePrunerConfig(spec: PrunerSpec): { name: PrunerName; config: unknown } {
  if (!isPrunerName(spec.name)) {
    throw new MabeamError('INVALID_OPTIONS', `Unknown pruner ${JSON.stringify(spec.name)}; known pruners: ${prunerNames.map((n) => `'${n}'`).join(', ')}.`);
  }
  const parsed = schemas[spec.name].safeParse(spec.config ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => (i.code === 'unrecognized_keys' ? `unknown option(s) ${i.keys.join(', ')}` : `${i.path.join('.') || 'config'}: ${i.message}`))
      .join('; ');
    throw new MabeamError('INVALID_OPTIONS', `Invalid config for the '${spec.name}' pruner: ${problems}.`, { details: { pruner: spec.name } });
  }
  return { name: spec.name, config: parsed.data };
}

/** A pruner with its config bound, for a study with these objective directions. */
export function createPruner(spec: PrunerSpec, directions: readonly Direction[]): BoundPruner {
  const { name, config } = parsePrunerConfig(spec);
  checkPrunable(name, directions);
  const pruner = pruners[name];
  return {
    name,
    init: () => pruner.init(config as never),
    start: (state, trialId) => pruner.start(state, trialId),
    report: (state, report, direction) => pruner.report(state, report, direction),
    complete: (state, trialId, value) => pruner.complete(state, trialId, value),
  };
}
