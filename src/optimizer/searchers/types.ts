/**
 * A searcher is a pure fold over a study's events:
 *
 *   init(space, config, seed)     → state        (StudyCreated)
 *   ask(state, n, pending)        → state + n proposals   (TrialProposed × n)
 *   tell(state, trial)            → state        (TrialCompleted / TrialPruned / TrialFailed)
 *
 * The state is plain JSON (it can be snapshotted and compared) and every
 * function is deterministic: no clock, no Math.random. Each proposal carries
 * the seed its draws came from and a digest of everything it was computed
 * from, so a replayed study can check it proposes the same thing.
 */
import type { Direction } from '../pareto.ts';
import type { Params, SearchSpace } from '../space.ts';

/** An objective's direction: one definition for searchers, pruners and Pareto fronts. */
export type { Direction } from '../pareto.ts';

export type TrialStatus = 'complete' | 'pruned' | 'failed';

/** A finished trial, as the searcher is told it. */
export interface TrialResult {
  id: string;
  params: Params;
  /**
   * One value per objective for a complete trial; for a pruned trial its last
   * intermediate value(s) when there are any, else null; null for a failed one.
   */
  values: number[] | null;
  status: TrialStatus;
  /** For a pruned trial: the step of its last intermediate value (later steps rank better). */
  step?: number;
  /** The mini-batch of evaluation examples it was scored on, as its proposal named it (searchers that name none leave it out). */
  miniBatch?: number;
}

export type ProposalOrigin = { kind: 'uniform' } | { kind: 'mutation'; parent: Params; mutated: string[] } | { kind: 'reevaluation'; parent: Params };

/** A trial proposed and not yet told (running on some worker). */
export interface PendingTrial {
  id?: string;
  params: Params;
}

export interface Proposal {
  params: Params;
  /** The seed of the random stream this proposal's draws came from (unsigned 32-bit). */
  seed: number;
  /** A short hash of the searcher state and the pending trials this proposal was computed from. */
  digest: string;
  /**
   * The mini-batch of evaluation examples to score it on (0..nBatches − 1),
   * for searchers that evaluate on mini-batches (SIMBA); undefined otherwise:
   * score it on the whole set. Tell it back in the trial's result.
   */
  miniBatch?: number;
  /**
   * How the proposal was made, for searchers that say (SIMBA): a uniform
   * draw, a mutation of a parent (which params changed), or a pool candidate
   * evaluated again on another mini-batch. Written into the TrialProposed.
   */
  origin?: ProposalOrigin;
}

export interface AskResult<S> {
  state: S;
  proposals: Proposal[];
}

/** Options every searcher takes. */
export interface BaseSearcherConfig {
  /** One direction per objective. */
  directions: Direction[];
}

export interface Searcher<S, C extends BaseSearcherConfig = BaseSearcherConfig> {
  readonly name: string;
  init(space: SearchSpace, config: C, seed: number): S;
  /** n proposals; each one also treats the earlier proposals of this same ask as pending. */
  ask(state: S, n: number, pending?: readonly PendingTrial[]): AskResult<S>;
  tell(state: S, trial: TrialResult): S;
  /**
   * The state after a proposal made (and logged) earlier, without computing
   * it again: what a reader folding a study's log uses when it does not
   * check the proposals. Optional; without it the reader asks again.
   */
  skip?(state: S, params: Params): S;
}
