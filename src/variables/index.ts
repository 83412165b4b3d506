export * from './model.ts';
export * from './types.ts';
export { decideChange, type ChangeDecision } from './decide.ts';
export { VariableLog } from './variableLog.ts';
export { VariableOwner, type VariableOwnerOptions } from './owner.ts';
export { VariablesClient, type VariablesClientOptions } from './client.ts';
export { proposeVariableChange, type ProposeOptions } from './consensus.ts';
