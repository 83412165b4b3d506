// The optimizer's pure core: search spaces, seeded draws, searchers and
// pruners as folds over trial events, Pareto fronts. No Kafka here: the
// study events and the member that runs them on the engine build on this.
export * from './space.ts';
export { Random, deriveSeed } from './random.ts';
export * from './searchers/index.ts';
export { prunerNames, checkPrunable, parsePrunerConfig, createPruner, isPrune, medianPruner, ashaPruner, nonePruner, rungStep, type PrunerName, type PrunerSpec, type Pruner, type BoundPruner, type PruneDecision, type ReportResult, type TrialReport } from './pruners/index.ts';
export { dominates, constrainedDominates, violation, isFeasible, paretoFronts, paretoFront, type ObjectiveTrial } from './pareto.ts';
