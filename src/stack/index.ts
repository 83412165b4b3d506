export { startStack, stopStack, stackStatus, stopNamedStack, type StartedStack, type StackStatus } from './localStack.ts';
export { readStackState } from './state.ts';
export { resolveStackOptions, stackDefaults, defaultCacheDir, type LocalStackOptions, type ResolvedStackOptions } from './options.ts';
export { endpointsFromEnvironment, resolveEndpoints, environmentFor } from './endpoints.ts';
export type { StackEndpoints, KafkaSasl, BasicAuth, StackState, StackStartReport, ServiceState, ServiceName, ServiceOrigin, ServiceHealth, ServicePorts, PortChange } from './types.ts';
