/**
 * Searchers by name, bound to a study's space and config: what a study
 * holds, whatever its searcher's state type.
 */
import { MabeamError } from '../../errors.ts';
import { randomSearcher, simbaSearcher, tpeSearcher, type AskResult, type PendingTrial, type Searcher, type TrialResult } from '../searchers/index.ts';
import type { Params, SearchSpace } from '../space.ts';

export interface StudySearcher {
  readonly name: string;
  init(seed: number): unknown;
  ask(state: unknown, n: number, pending?: readonly PendingTrial[]): AskResult<unknown>;
  tell(state: unknown, trial: TrialResult): unknown;
  /** The state after a logged proposal, without computing it (asks again when the searcher cannot skip). */
  skip(state: unknown, params: Params, pending: readonly PendingTrial[]): unknown;
}

// Each searcher's state type is its own; the registry holds them side by side.
const searchers = new Map<string, Searcher<any, any>>([
  [randomSearcher.name, randomSearcher],
  [tpeSearcher.name, tpeSearcher],
  [simbaSearcher.name, simbaSearcher],
]);

/** Makes a searcher known to studies (a built-in, or one of the user's own). */
export function registerSearcher(searcher: Searcher<any, any>): void {
  searchers.set(searcher.name, searcher);
}

export function searcherNames(): string[] {
  return [...searchers.keys()].sort();
}

/** A searcher bound to a space and a config; the config is checked here (by a first init). */
export function createSearcher(name: string, space: SearchSpace, config: Record<string, unknown>): StudySearcher {
  const searcher = searchers.get(name);
  if (!searcher) throw new MabeamError('INVALID_OPTIONS', `Unknown searcher "${name}"; known: ${searcherNames().join(', ')}`);
  searcher.init(space, config, 0);
  return {
    name,
    init: (seed) => searcher.init(space, config, seed),
    ask: (state, n, pending) => searcher.ask(state, n, pending),
    tell: (state, trial) => searcher.tell(state, trial),
    skip: (state, params, pending) => (searcher.skip ? searcher.skip(state, params) : searcher.ask(state, 1, pending).state),
  };
}
