export { directiveActions, isDirectiveAction, type DirectiveAction } from './actions.ts';
export {
  FunctionRegistry,
  registerCoordination,
  registerAdaptation,
  sharedFunctions,
  type AgentInfo,
  type CoordinationContext,
  type PlannedDirective,
  type CoordinationFunction,
  type AdaptationFunction,
  type Adaptation,
} from './functions.ts';
export {
  defaultStrategy,
  defaultStrategies,
  agentSelectionStrategy,
  resourceAllocationStrategy,
  communicationTopologyStrategy,
  adjustParametersStrategy,
  topologyPeers,
} from './strategies.ts';
export { planDirectives, directiveEvent, directiveEventId } from './directives.ts';
export { planAdaptations, relevantSamples, variableLabel, type AdaptationTrigger, type PlannedChange, type AdaptationProblem } from './adaptation.ts';
export { SystemAdapter, type SystemAdapterOptions, type AppliedAdaptation } from './adapter.ts';
export {
  coordinateSystem,
  adaptSystem,
  systemStatus,
  agentInfos,
  readRecentEvents,
  type AgentSource,
  type CoordinateSystemOptions,
  type CoordinationReport,
  type SentDirective,
  type SystemStatusOptions,
  type SystemStatus,
} from './orchestrator.ts';
export { allocateByMarket, marketItem, type MarketAllocationOptions } from './market.ts';
