/**
 * What the searchers share: config and result checks, the digest of a
 * searcher's state, and losses (the value to minimise, whatever the direction).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MabeamError } from '../../errors.ts';
import { canonicalJson, checkParams, type SearchSpace } from '../space.ts';
import type { Direction, PendingTrial, TrialResult } from './types.ts';

export const directionsSchema = z.array(z.enum(['minimize', 'maximize'])).min(1, 'name at least one direction (minimize or maximize)');

/** Parses a searcher's config against its schema, or throws INVALID_OPTIONS saying what is wrong. */
export function parseConfig<T>(schema: z.ZodType<T>, config: unknown, searcher: string): T {
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ');
    throw new MabeamError('INVALID_OPTIONS', `Invalid ${searcher} searcher options: ${where}`, { details: { issues: parsed.error.issues } });
  }
  return parsed.data;
}

/** A short hash (16 hex digits of SHA-256) of a JSON value, independent of key order. */
export function digestOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}

/** Refuses a told result that does not fit the study: bad params, or values that do not match the objectives. */
export function checkResult(space: SearchSpace, directions: readonly Direction[], trial: TrialResult): void {
  const bad = (m: string) => new MabeamError('VALIDATION_FAILED', `Trial ${trial.id}: ${m}`, { details: { trialId: trial.id } });
  if (typeof trial.id !== 'string' || trial.id.length === 0) throw new MabeamError('VALIDATION_FAILED', 'A told trial needs an id');
  if (!['complete', 'pruned', 'failed'].includes(trial.status)) throw bad(`status must be complete, pruned or failed, not ${JSON.stringify(trial.status)}`);
  const problem = checkParams(space, trial.params);
  if (problem) throw bad(`its params do not fit the search space: ${problem}`);
  if (trial.status === 'complete') {
    if (trial.values === null) throw bad('a complete trial needs values');
    if (trial.values.length !== directions.length) throw bad(`has ${trial.values.length} values for ${directions.length} objectives`);
  }
  if (trial.values && !trial.values.every((v) => typeof v === 'number' && !Number.isNaN(v))) throw bad(`values must be numbers, not ${JSON.stringify(trial.values)}`);
}

/** Refuses pending trials whose params do not fit the space. */
export function checkPending(space: SearchSpace, pending: readonly PendingTrial[]): void {
  for (const p of pending) {
    const problem = checkParams(space, p.params);
    if (problem) throw new MabeamError('VALIDATION_FAILED', `Pending trial ${p.id ?? '(no id)'}: its params do not fit the search space: ${problem}`);
  }
}

/** The value to minimise: the objective as told, negated for maximize. */
export function lossOf(value: number, direction: Direction): number {
  return direction === 'maximize' ? -value : value;
}

export function checkAskCount(n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new MabeamError('VALIDATION_FAILED', `ask needs a whole number of proposals >= 0, not ${n}`);
}
