/**
 * Median stopping rule, with the semantics of Optuna's MedianPruner:
 *
 * - nothing is pruned until `nStartupTrials` trials have completed (and never
 *   before the first one has);
 * - nothing is pruned while the trial's last step is below `nWarmupSteps`;
 * - after warm-up, a trial is judged once per `intervalSteps` window (offset
 *   by the warm-up), at the first step it reports in that window;
 * - it is pruned when its best intermediate value so far is strictly worse
 *   than the median of the values that completed trials reported at that
 *   same step (pruned and running trials do not count); with fewer than
 *   `nMinTrials` such values it is not judged;
 * - a trial whose values so far are all NaN is pruned; NaN values of
 *   completed trials are left out of the median.
 *
 * The step judged is the trial's last (highest) step, as in Optuna: a report
 * that arrives out of order does not move it back.
 *
 * Reads: TrialStarted, TrialReported, TrialCompleted. Decides: TrialPruned
 * with rule 'median'.
 */
import { z } from 'zod';
import type { Direction, Pruner, ReportResult, TrialReport } from './types.ts';
import { CONTINUE, prune } from './types.ts';
import { checkReport, insertSorted, medianOfSorted, withEntry, withMember, withoutEntry } from './internals.ts';

export const medianDefaults = Object.freeze({ nStartupTrials: 5, nWarmupSteps: 0, intervalSteps: 1, nMinTrials: 1 });

const count = (min: number) => z.int('must be a whole number').min(min, `must be at least ${min}`);

export const medianConfigSchema = z.strictObject({
  nStartupTrials: count(0).default(medianDefaults.nStartupTrials),
  nWarmupSteps: count(0).default(medianDefaults.nWarmupSteps),
  intervalSteps: count(1).default(medianDefaults.intervalSteps),
  nMinTrials: count(1).default(medianDefaults.nMinTrials),
});

export type MedianConfig = z.output<typeof medianConfigSchema>;

interface RunningTrial {
  /** step → first value reported at it */
  readonly values: ReadonlyMap<number, number>;
  readonly lastStep: number;
}

export interface MedianState {
  readonly config: MedianConfig;
  readonly completed: number;
  /** step → ascending values of completed trials at that step (no NaN) */
  readonly completedByStep: ReadonlyMap<number, readonly number[]>;
  readonly running: ReadonlyMap<string, RunningTrial>;
  readonly finished: ReadonlySet<string>;
}

/** Optuna's check: the trial reported nothing else since the start of the current interval window. */
function firstInWindow(trial: RunningTrial, config: MedianConfig): boolean {
  const { nWarmupSteps: warmup, intervalSteps: interval } = config;
  const windowStart = Math.floor((trial.lastStep - warmup) / interval) * interval + warmup;
  let previous = -1;
  for (const s of trial.values.keys()) if (s !== trial.lastStep && s > previous) previous = s;
  return previous < windowStart;
}

function bestSoFar(trial: RunningTrial, direction: Direction): number {
  let best = Number.NaN;
  for (const v of trial.values.values()) {
    if (Number.isNaN(v)) continue;
    if (Number.isNaN(best) || (direction === 'minimize' ? v < best : v > best)) best = v;
  }
  return best;
}

export const medianPruner: Pruner<MedianConfig, MedianState> = {
  name: 'median',

  init(config) {
    return { config, completed: 0, completedByStep: new Map(), running: new Map(), finished: new Set() };
  },

  start(state, trialId) {
    if (state.finished.has(trialId)) return state;
    return { ...state, running: withoutEntry(state.running, trialId) };
  },

  report(state, report: TrialReport, direction: Direction): ReportResult<MedianState> {
    checkReport(report);
    const { trialId, step, value } = report;
    if (state.finished.has(trialId)) return { state, decision: CONTINUE };
    const before = state.running.get(trialId) ?? { values: new Map<number, number>(), lastStep: -1 };
    const trial: RunningTrial = before.values.has(step)
      ? before
      : { values: withEntry(before.values, step, value), lastStep: Math.max(before.lastStep, step) };
    const next: MedianState = trial === before && state.running.has(trialId) ? state : { ...state, running: withEntry(state.running, trialId, trial) };
    const { config } = state;

    if (state.completed === 0 || state.completed < config.nStartupTrials) return { state: next, decision: CONTINUE };
    if (trial.lastStep < config.nWarmupSteps) return { state: next, decision: CONTINUE };
    if (!firstInWindow(trial, config)) return { state: next, decision: CONTINUE };

    const at = trial.lastStep;
    const best = bestSoFar(trial, direction);
    const pruned = (reason: string): ReportResult<MedianState> => ({
      state: { ...next, running: withoutEntry(next.running, trialId), finished: withMember(next.finished, trialId) },
      decision: prune('median', reason),
    });
    if (Number.isNaN(best)) return pruned(`every intermediate value of trial ${trialId} up to step ${at} is NaN`);

    const others = state.completedByStep.get(at) ?? [];
    if (others.length === 0 || others.length < config.nMinTrials) return { state: next, decision: CONTINUE };
    const median = medianOfSorted(others);
    const worse = direction === 'minimize' ? best > median : best < median;
    if (!worse) return { state: next, decision: CONTINUE };
    return pruned(
      `best intermediate value ${best} of trial ${trialId} up to step ${at} is worse than the median ${median} ` +
        `of ${others.length} completed trial(s) at step ${at} (${direction})`,
    );
  },

  complete(state, trialId) {
    if (state.finished.has(trialId)) return state;
    const trial = state.running.get(trialId);
    let completedByStep = state.completedByStep;
    if (trial !== undefined) {
      const merged = new Map(completedByStep);
      for (const [step, v] of trial.values) {
        if (Number.isNaN(v)) continue;
        merged.set(step, insertSorted(merged.get(step) ?? [], v));
      }
      completedByStep = merged;
    }
    return {
      ...state,
      completed: state.completed + 1,
      completedByStep,
      running: withoutEntry(state.running, trialId),
      finished: withMember(state.finished, trialId),
    };
  },
};
