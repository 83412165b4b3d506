/**
 * Asynchronous successive halving (ASHA), with the semantics of Optuna's
 * SuccessiveHalvingPruner.
 *
 * Rung k sits at step minResource · η^(s + k) (η = `reductionFactor`,
 * s = `minEarlyStoppingRate`). When a trial's last step reaches its next
 * rung, its value at that step is recorded at the rung, and the trial is
 * promoted only if that value is among the best ⌊n/η⌋ of the n values
 * recorded at the rung so far (its own included; while n < η, only if it is
 * the best so far — there is no pausing a trial to wait for others). Else it
 * is pruned. One report can cross several rungs; each is judged in turn.
 * Ties go to the trial being judged (≤ for minimize, ≥ for maximize).
 *
 * Order: this is what "asynchronous" means. A trial is judged when it reaches
 * a rung, against the values already recorded there, and is never revisited.
 * So a decision depends on which values reached the rung before it (as a set:
 * their order among themselves does not matter) and on nothing else; the
 * same event sequence always yields the same decisions. Values of trials
 * pruned or completed later stay at the rung: every trial that reached a rung
 * competes there.
 *
 * `minResource: 'auto'` (Optuna's default) is fixed at the first report after
 * a trial completed: max(⌊last step of the longest completed trial / 100⌋, 1);
 * until then nothing is pruned. `bootstrapCount`: a trial at a rung with at
 * most that many values recorded (its own included) is pruned.
 *
 * Reads: TrialStarted, TrialReported, TrialCompleted. Decides: TrialPruned
 * with rule 'asha'.
 */
import { z } from 'zod';
import type { Direction, Pruner, ReportResult, TrialReport } from './types.ts';
import { CONTINUE, prune } from './types.ts';
import { checkReport, insertSorted, removeSorted, withEntry, withMember, withoutEntry } from './internals.ts';

export const ashaDefaults = Object.freeze({
  minResource: 'auto' as 'auto' | number,
  reductionFactor: 4,
  minEarlyStoppingRate: 0,
  bootstrapCount: 0,
});

const minResourceRule = "must be 'auto' or a whole number ≥ 1";

export const ashaConfigSchema = z
  .strictObject({
    minResource: z
      .union([z.literal('auto', minResourceRule), z.int(minResourceRule).min(1, minResourceRule)], { error: minResourceRule })
      .default(ashaDefaults.minResource),
    reductionFactor: z.int('must be a whole number').min(2, 'must be at least 2').default(ashaDefaults.reductionFactor),
    minEarlyStoppingRate: z
      .int('must be a whole number')
      .min(0, 'must be at least 0')
      .default(ashaDefaults.minEarlyStoppingRate),
    bootstrapCount: z.int('must be a whole number').min(0, 'must be at least 0').default(ashaDefaults.bootstrapCount),
  })
  .refine((c) => !(c.bootstrapCount > 0 && c.minResource === 'auto'), {
    error: "must be 0 while minResource is 'auto'; give minResource as a whole number ≥ 1 to use it",
    path: ['bootstrapCount'],
  });

export type AshaConfig = z.output<typeof ashaConfigSchema>;

interface RunningTrial {
  /** values this attempt recorded, one per rung passed (index = rung) */
  readonly recorded: readonly number[];
  readonly lastStep: number;
}

export interface AshaState {
  readonly config: AshaConfig;
  /** the resolved min resource; undefined while 'auto' has nothing to go on */
  readonly minResource: number | undefined;
  /** rung → ascending values recorded there (by every trial that reached it) */
  readonly rungs: readonly (readonly number[])[];
  readonly running: ReadonlyMap<string, RunningTrial>;
  readonly finished: ReadonlySet<string>;
  /** the highest last step of a completed trial, for 'auto' */
  readonly longestCompleted: number | undefined;
}

/** Rung k's step. */
export function rungStep(minResource: number, config: Pick<AshaConfig, 'reductionFactor' | 'minEarlyStoppingRate'>, rung: number): number {
  return minResource * config.reductionFactor ** (config.minEarlyStoppingRate + rung);
}

function promotable(value: number, competing: readonly number[], eta: number, direction: Direction): { ok: boolean; threshold: number; keep: number } {
  const keep = Math.max(Math.floor(competing.length / eta), 1);
  const threshold = direction === 'minimize' ? competing[keep - 1]! : competing[competing.length - keep]!;
  return { ok: direction === 'minimize' ? value <= threshold : value >= threshold, threshold, keep };
}

export const ashaPruner: Pruner<AshaConfig, AshaState> = {
  name: 'asha',

  init(config) {
    return {
      config,
      minResource: config.minResource === 'auto' ? undefined : config.minResource,
      rungs: [],
      running: new Map(),
      finished: new Set(),
      longestCompleted: undefined,
    };
  },

  start(state, trialId) {
    const earlier = state.running.get(trialId);
    if (state.finished.has(trialId) || earlier === undefined) return state;
    // A retried attempt starts over: its earlier rung values must not compete (or count twice).
    const rungs = state.rungs.map((values, k) => (k < earlier.recorded.length ? removeSorted(values, earlier.recorded[k]!) : values));
    return { ...state, rungs, running: withoutEntry(state.running, trialId) };
  },

  report(state, report: TrialReport, direction: Direction): ReportResult<AshaState> {
    checkReport(report);
    const { trialId, step, value } = report;
    if (state.finished.has(trialId)) return { state, decision: CONTINUE };
    const before = state.running.get(trialId) ?? { recorded: [], lastStep: -1 };
    if (step <= before.lastStep) {
      // Out of order or repeated: the last step and its first value stand, and were judged already.
      const next = state.running.has(trialId) ? state : { ...state, running: withEntry(state.running, trialId, before) };
      return { state: next, decision: CONTINUE };
    }
    const { config } = state;
    let minResource = state.minResource;
    if (minResource === undefined && state.longestCompleted !== undefined) minResource = Math.max(Math.floor(state.longestCompleted / 100), 1);

    let rungs = state.rungs;
    const recorded = before.recorded.slice();
    let decision: ReportResult<AshaState>['decision'] = CONTINUE;
    if (minResource !== undefined) {
      for (let rung = recorded.length; step >= rungStep(minResource, config, rung); rung++) {
        const at = rungStep(minResource, config, rung);
        if (Number.isNaN(value)) {
          decision = prune('asha', `trial ${trialId} reached rung ${rung} (step ${at}) with NaN at step ${step}`);
          break;
        }
        const competing = insertSorted(rungs[rung] ?? [], value);
        rungs = rungs.length > rung ? rungs.map((v, k) => (k === rung ? competing : v)) : [...rungs, competing];
        recorded.push(value);
        if (competing.length <= config.bootstrapCount) {
          decision = prune(
            'asha',
            `trial ${trialId} reached rung ${rung} (step ${at}) as ${competing.length} of the ${config.bootstrapCount} trial(s) bootstrapCount asks for before any promotion`,
          );
          break;
        }
        const verdict = promotable(value, competing, config.reductionFactor, direction);
        if (!verdict.ok) {
          decision = prune(
            'asha',
            `value ${value} of trial ${trialId} at step ${step} is not in the best ${verdict.keep} of the ${competing.length} trial(s) ` +
              `that reached rung ${rung} (step ${at}, reduction factor ${config.reductionFactor}, ${direction}; the cut is ${verdict.threshold})`,
          );
          break;
        }
      }
    }
    const trial: RunningTrial = { recorded, lastStep: step };
    const next: AshaState =
      decision === CONTINUE
        ? { ...state, minResource, rungs, running: withEntry(state.running, trialId, trial) }
        : { ...state, minResource, rungs, running: withoutEntry(state.running, trialId), finished: withMember(state.finished, trialId) };
    return { state: next, decision };
  },

  complete(state, trialId) {
    if (state.finished.has(trialId)) return state;
    const trial = state.running.get(trialId);
    const last = trial?.lastStep;
    const longestCompleted = last === undefined || last < 0 ? state.longestCompleted : Math.max(state.longestCompleted ?? 0, last);
    return { ...state, longestCompleted, running: withoutEntry(state.running, trialId), finished: withMember(state.finished, trialId) };
  },
};
