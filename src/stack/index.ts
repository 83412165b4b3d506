export { startStack, stopStack, stackStatus, stopNamedStack, type StartedStack, type StackStatus } from './localStack.ts';
export { readStackState } from './state.ts';
export { resolveStackOptions, stackDefaults, defaultCacheDir, type LocalStackOptions, type ResolvedStackOptions } from './options.ts';
export { endpointsFromEnvironment, resolveEndpoints, environmentFor } from './endpoints.ts';
export type { StackEndpoints, KafkaSasl, BasicAuth, StackState, StackStartReport, ServiceState, ServiceName, ServiceOrigin, ServiceHealth, ServicePorts, PortChange } from './types.ts';
export { credentialsFile, readStackCredentials, writePasswordFiles, type StackCredentials, type PasswordFiles } from './credentials.ts';
export { upsertScramUser, deleteScramUser, describeScramUser, type ScramAdminOptions, type ScramUserOptions } from './scram.ts';
