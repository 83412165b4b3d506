export { startStack, stopStack, stackStatus, stopNamedStack, type StartedStack, type StackStatus } from './localStack.ts';
export { readStackState } from './state.ts';
export { resolveStackOptions, stackDefaults, defaultCacheDir, type LocalStackOptions, type ResolvedStackOptions } from './options.ts';
export { endpointsFromEnvironment, resolveEndpoints } from './endpoints.ts';
export type { StackEndpoints, StackState, StackStartReport, ServiceState, ServiceName, ServiceOrigin, ServiceHealth, ServicePorts, PortChange } from './types.ts';
