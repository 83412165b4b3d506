export type { AskResult, BaseSearcherConfig, Direction, PendingTrial, Proposal, ProposalOrigin, Searcher, TrialResult, TrialStatus } from './types.ts';
export { randomSearcher, type RandomSearcherState } from './random.ts';
export { tpeSearcher, tpeDefaults, type ResolvedTpeConfig, type TpeConfig, type TpeObservation, type TpeState } from './tpe.ts';
export { simbaSearcher, simbaDefaults, simbaPool, simbaMiniBatch, averageLoss, type ResolvedSimbaConfig, type SimbaCandidate, type SimbaConfig, type SimbaEvaluation, type SimbaState } from './simba.ts';
