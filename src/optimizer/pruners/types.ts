/**
 * A pruner is a pure fold over a study's trial events. The optimizer feeds it
 * TrialStarted, TrialReported and TrialCompleted (in log order) and writes
 * every prune decision to the log as a TrialPruned event naming the rule;
 * replaying the same events from `init` gives the same decisions. No clock,
 * no random draw, no mutation: each call returns a new state and leaves the
 * one it was given as it was.
 *
 * Pruners judge one objective. A study with several objectives cannot be
 * pruned (which objective would decide?), so the registry refuses any pruner
 * but 'none' for it (see `checkPrunable` in index.ts).
 */
import type { Direction } from '../pareto.ts';

export type { Direction } from '../pareto.ts';

/** One intermediate value of a trial (a TrialReported event). */
export interface TrialReport {
  readonly trialId: string;
  /** The resource used so far (epoch, examples seen, …): a whole number ≥ 0. */
  readonly step: number;
  readonly value: number;
}

/** What a pruner decided about a report; a prune becomes a TrialPruned event. */
export type PruneDecision = 'continue' | { readonly prune: true; readonly rule: string; readonly reason: string };

export interface ReportResult<S> {
  readonly state: S;
  readonly decision: PruneDecision;
}

export interface Pruner<C, S> {
  /** The registry name, also the `rule` of its decisions. */
  readonly name: string;
  /** The state before any trial event; the config is already validated. */
  init(config: C): S;
  /**
   * A trial (re)started (TrialStarted). A trial that starts again after an
   * evaluator died is judged afresh: what its earlier attempt reported is
   * forgotten, so it is never counted twice.
   */
  start(state: S, trialId: string): S;
  /**
   * An intermediate value. Reports of a trial already completed or pruned
   * are ignored ('continue', state unchanged): the study owns trial states.
   * A step reported twice by the same attempt keeps the first value.
   */
  report(state: S, report: TrialReport, direction: Direction): ReportResult<S>;
  /**
   * A trial completed (TrialCompleted). The final value is accepted for
   * symmetry with the event; the built-in rules compare intermediate values.
   */
  complete(state: S, trialId: string, value?: number): S;
}

/** A pruner with its config bound: what the optimizer holds. */
export interface BoundPruner<S = unknown> {
  readonly name: string;
  init(): S;
  start(state: S, trialId: string): S;
  report(state: S, report: TrialReport, direction: Direction): ReportResult<S>;
  complete(state: S, trialId: string, value?: number): S;
}

export const CONTINUE: PruneDecision = 'continue';

export function prune(rule: string, reason: string): PruneDecision {
  return { prune: true, rule, reason };
}

export function isPrune(decision: PruneDecision): decision is { readonly prune: true; readonly rule: string; readonly reason: string } {
  return decision !== 'continue';
}
