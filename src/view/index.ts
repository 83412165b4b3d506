export { createViewServer, viewDefaults, type ViewServer, type ViewServerOptions } from './server.ts';
export { LiveView } from './live.ts';
export { liveDefaults, type LiveViewOptions } from './options.ts';
export type { AgentFilter } from './agents.ts';
export type * from './types.ts';
