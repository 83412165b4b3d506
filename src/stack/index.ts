export { startStack, stopStack, stackStatus, stopNamedStack, readStackState, type StartedStack, type StackStatus } from './localStack.ts';
export { resolveStackOptions, stackDefaults, defaultCacheDir, type LocalStackOptions, type ResolvedStackOptions } from './options.ts';
export { endpointsFromEnvironment, resolveEndpoints } from './endpoints.ts';
export type { StackEndpoints, StackState, StackStartReport, ServiceState, ServiceName, ServiceOrigin } from './types.ts';
