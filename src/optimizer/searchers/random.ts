/**
 * Random search: every proposal is drawn uniformly from the space (see
 * sampleSpace), from its own seed. Results told do not change what comes
 * next; any number of objectives is accepted.
 *
 * Reads: init, ask, tell. State: the space, the seed and two counters.
 */
import { z } from 'zod';
import { deriveSeed, checkSeed, Random } from '../random.ts';
import { defineSpace, sampleSpace, type SearchSpace } from '../space.ts';
import { checkAskCount, checkPending, checkResult, digestOf, directionsSchema, parseConfig } from './internals.ts';
import type { AskResult, BaseSearcherConfig, Direction, PendingTrial, Proposal, Searcher, TrialResult } from './types.ts';

export interface RandomSearcherState {
  searcher: 'random';
  space: SearchSpace;
  directions: Direction[];
  seed: number;
  /** Proposals made so far: the next proposal draws from deriveSeed(seed, proposed). */
  proposed: number;
  /** Trials told so far (complete, pruned or failed). */
  told: number;
}

const configSchema = z.object({ directions: directionsSchema }).strict();

export const randomSearcher: Searcher<RandomSearcherState, BaseSearcherConfig> = {
  name: 'random',

  init(space: SearchSpace, config: BaseSearcherConfig, seed: number): RandomSearcherState {
    const { directions } = parseConfig(configSchema, config, 'random');
    return { searcher: 'random', space: defineSpace(space), directions, seed: checkSeed(seed), proposed: 0, told: 0 };
  },

  ask(state: RandomSearcherState, n: number, pending: readonly PendingTrial[] = []): AskResult<RandomSearcherState> {
    checkAskCount(n);
    checkPending(state.space, pending);
    const proposals: Proposal[] = [];
    let current = state;
    for (let i = 0; i < n; i++) {
      const seed = deriveSeed(current.seed, current.proposed);
      proposals.push({ params: sampleSpace(current.space, Random.fromSeed(seed)), seed, digest: digestOf(current) });
      current = { ...current, proposed: current.proposed + 1 };
    }
    return { state: current, proposals };
  },

  skip(state, _params) {
    return { ...state, proposed: state.proposed + 1 };
  },

  tell(state: RandomSearcherState, trial: TrialResult): RandomSearcherState {
    checkResult(state.space, state.directions, trial);
    return { ...state, told: state.told + 1 };
  },
};
