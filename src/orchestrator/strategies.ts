/**
 * The default coordination strategy of each variable type: what directives a
 * variable's current value means when its definition names no coordination
 * function. Pure functions of the record and the agents the registry knows;
 * directives come out in a fixed order (the value's order, then
 * affectedAgents order), so the same record always plans the same directives.
 *
 * - agent_selection — the value is the selected agent ids. With
 *   `constraints.requirements` (capabilities) only selected agents the
 *   registry lists with every one of them stay selected (an agent it does
 *   not know has none); then at most `constraints.maxConcurrent` of them, in
 *   the value's order. Each one left gets `activate`
 *   `{ variableId, version }`; every other affected agent, and every
 *   selected agent that was dropped, gets `deactivate`
 *   `{ variableId, version }`, plus `reason` when it was selected but
 *   dropped (missing capabilities, over maxConcurrent).
 * - resource_allocation — the value is agent → amount. Every affected agent,
 *   then every other agent the value names, gets `allocate_resources`
 *   `{ resource, amount }` (resource: `constraints.resource`, else the
 *   variable id; an affected agent the value leaves out gets 0).
 * - communication_topology — every member gets `update_communication`
 *   `{ topology, peers }` (star also `hub`). Members are affectedAgents in
 *   order. broadcast and mesh: all other members; ring: the previous and
 *   the next member (wrapping; one peer when there are two members, none
 *   when one); star: the hub is `constraints.hub`, else the first member —
 *   a hub outside affectedAgents is added as the first member — and it
 *   peers with everyone while everyone else peers with the hub.
 * - adaptation_rate, performance_threshold, coordination_pattern, custom —
 *   every affected agent gets `adjust_parameters` `{ [variableId]: value }`.
 */
import { MabeamError } from '../errors.ts';
import { topologies, type Topology, type VariableType } from '../variables/model.ts';
import type { VariableRecord } from '../variables/types.ts';
import type { CoordinationContext, CoordinationFunction, PlannedDirective } from './functions.ts';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function wrongValue(variable: VariableRecord, expected: string): MabeamError {
  return new MabeamError('VALIDATION_FAILED', `Variable ${variable.id} (${variable.definition.type}) must hold ${expected}, not ${JSON.stringify(variable.value)}.`);
}

export const agentSelectionStrategy: CoordinationFunction = (variable, context) => {
  const { id, version, value, definition } = variable;
  if (!Array.isArray(value) || !value.every((a) => typeof a === 'string')) throw wrongValue(variable, 'a list of agent ids');
  const requirements = Array.isArray(definition.constraints['requirements']) ? (definition.constraints['requirements'] as unknown[]).filter((r): r is string => typeof r === 'string') : [];
  const max = definition.constraints['maxConcurrent'];
  const limit = typeof max === 'number' && Number.isFinite(max) && max >= 0 ? Math.floor(max) : Infinity;
  const capabilities = new Map(context.agents.map((a) => [a.agentId, a.capabilities]));

  const active: string[] = [];
  const dropped = new Map<string, string>();
  for (const agentId of new Set(value)) {
    const has = capabilities.get(agentId) ?? [];
    const missing = requirements.filter((r) => !has.includes(r));
    if (missing.length > 0) dropped.set(agentId, `missing capabilities: ${missing.join(', ')}`);
    else if (active.length >= limit) dropped.set(agentId, `over maxConcurrent ${limit}`);
    else active.push(agentId);
  }
  const others = [...new Set([...definition.affectedAgents, ...dropped.keys()])].filter((a) => !active.includes(a));
  return [
    ...active.map((agentId): PlannedDirective => ({ agentId, action: 'activate', parameters: { variableId: id, version } })),
    ...others.map((agentId): PlannedDirective => ({
      agentId,
      action: 'deactivate',
      parameters: { variableId: id, version, ...(dropped.has(agentId) ? { reason: dropped.get(agentId) } : {}) },
    })),
  ];
};

export const resourceAllocationStrategy: CoordinationFunction = (variable) => {
  const { value, definition } = variable;
  if (!isRecord(value) || !Object.values(value).every((v) => typeof v === 'number' && Number.isFinite(v))) throw wrongValue(variable, 'an object of amounts');
  const resource = typeof definition.constraints['resource'] === 'string' ? definition.constraints['resource'] : variable.id;
  const named = Object.keys(value).filter((a) => !definition.affectedAgents.includes(a)).sort();
  return [...new Set(definition.affectedAgents), ...named].map((agentId) => ({
    agentId,
    action: 'allocate_resources',
    parameters: { resource, amount: (value[agentId] as number | undefined) ?? 0 },
  }));
};

/** Each member's peers in a topology; members in order, hub first for a star. */
export function topologyPeers(topology: Topology, agents: readonly string[], hub?: string): Array<{ agentId: string; peers: string[] }> {
  const members = [...new Set(topology === 'star' && hub !== undefined ? [hub, ...agents] : agents)];
  const n = members.length;
  switch (topology) {
    case 'broadcast':
    case 'mesh':
      return members.map((agentId) => ({ agentId, peers: members.filter((m) => m !== agentId) }));
    case 'ring':
      return members.map((agentId, i) => ({ agentId, peers: [...new Set([members[(i - 1 + n) % n]!, members[(i + 1) % n]!])].filter((m) => m !== agentId) }));
    case 'star': {
      const center = members[0];
      return members.map((agentId) => ({ agentId, peers: agentId === center ? members.slice(1) : [center!] }));
    }
  }
}

export const communicationTopologyStrategy: CoordinationFunction = (variable) => {
  const { value, definition } = variable;
  if (typeof value !== 'string' || !(topologies as readonly string[]).includes(value)) throw wrongValue(variable, `one of ${topologies.join(', ')}`);
  const topology = value as Topology;
  const configuredHub = typeof definition.constraints['hub'] === 'string' ? definition.constraints['hub'] : undefined;
  const hub = topology === 'star' ? (configuredHub ?? definition.affectedAgents[0]) : undefined;
  return topologyPeers(topology, definition.affectedAgents, hub).map(({ agentId, peers }) => ({
    agentId,
    action: 'update_communication',
    parameters: { topology, peers, ...(hub !== undefined ? { hub } : {}) },
  }));
};

export const adjustParametersStrategy: CoordinationFunction = (variable) =>
  [...new Set(variable.definition.affectedAgents)].map((agentId) => ({ agentId, action: 'adjust_parameters', parameters: { [variable.id]: variable.value } }));

export const defaultStrategies: Readonly<Record<VariableType, CoordinationFunction>> = Object.freeze({
  agent_selection: agentSelectionStrategy,
  resource_allocation: resourceAllocationStrategy,
  communication_topology: communicationTopologyStrategy,
  adaptation_rate: adjustParametersStrategy,
  performance_threshold: adjustParametersStrategy,
  coordination_pattern: adjustParametersStrategy,
  custom: adjustParametersStrategy,
});

/** The default strategy's directives for a variable. */
export function defaultStrategy(variable: VariableRecord, context: CoordinationContext): PlannedDirective[] {
  const strategy = defaultStrategies[variable.definition.type];
  if (!strategy) throw new MabeamError('VALIDATION_FAILED', `Variable ${variable.id} has an unknown type "${variable.definition.type}".`);
  return strategy(variable, context);
}
