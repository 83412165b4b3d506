export { auditRound, roundTopicNames } from './round.ts';
export { auditVariable, describeCause } from './variable.ts';
export { auditAgent, lifecycleStory } from './agent.ts';
export { auditPlan } from './plan.ts';
export type * from './types.ts';
export type * from './plan.ts';
