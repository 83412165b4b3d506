export { defineAgent } from './defineAgent.ts';
export { AgentHost, hostDefaults, instanceHeader, type AgentHostOptions } from './host.ts';
export { AgentRegistry, type AgentRegistryOptions, type RegisteredAgent, type AgentLifecycle, type AgentHealth, type AgentResources } from './registry.ts';
export { assessHealth, trackHealth, defaultHealthPolicy, type Health, type HealthPolicy, type HealthSignal, type HealthChange } from './health.ts';
export { transition, canTransition, lifecycleTransitions, lifecycleStates } from './lifecycle.ts';
export { eligibleForBidRequest, eligibleForProposal, addressedTo } from './eligibility.ts';
export { loadAgentModule, type AgentModule } from './loadModule.ts';
export { readSnapshots } from './snapshots.ts';
export type { AgentDefinition, AgentContext, AgentHandlers, BidAnswer, VoteAnswer, Trial, TrialAnswer, TrialContext } from './types.ts';
