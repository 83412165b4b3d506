import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MabeamError, describeError } from '../errors.ts';
import { defineAgent } from './defineAgent.ts';
import type { AgentDefinition } from './types.ts';

export interface AgentModule {
  agents: Array<Readonly<AgentDefinition<unknown>>>;
  pool?: string;
}

/**
 * Loads a module that defines agents. Its default export is one agent
 * definition, an array of them, or `{ agents, pool }`.
 */
export async function loadAgentModule(path: string): Promise<AgentModule> {
  const file = resolve(path);
  try {
    await access(file);
  } catch {
    throw new MabeamError('AGENT_MODULE_INVALID', `No agent module at ${file}.`);
  }
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    throw new MabeamError('AGENT_MODULE_INVALID', `Loading ${file} failed: ${describeError(error)}`, { cause: error });
  }
  const exported = loaded.default;
  const shape = exported && typeof exported === 'object' && 'agents' in exported ? (exported as { agents: unknown; pool?: unknown }) : { agents: exported };
  const list = Array.isArray(shape.agents) ? shape.agents : [shape.agents];
  if (list.length === 0 || list.some((a) => !a || typeof a !== 'object')) {
    throw new MabeamError('AGENT_MODULE_INVALID', `${file} must export (as default) an agent definition, an array of them, or { agents, pool }.`);
  }
  const agents = list.map((a) => defineAgent(a as AgentDefinition<unknown>));
  return typeof shape.pool === 'string' ? { agents, pool: shape.pool } : { agents };
}
